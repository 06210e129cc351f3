//! Target selection: the shared health bitmap and per-worker round robin.
//! Pure code over atomics; no IO, no locks, no allocation when picking.

mod health;
mod rng;
mod round_robin;

pub use health::HealthBitmap;
pub use rng::Rng;
pub use round_robin::{next_healthy, RoundRobin};
