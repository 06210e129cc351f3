//! Target selection: the shared health bitmap and per-worker round robin.
//! Pure code over atomics; no IO, no locks, no allocation when picking.

mod health;
mod picker;
mod rng;
mod round_robin;
mod target_state;

pub use health::HealthBitmap;
pub use picker::{Candidates, Picker};
pub use rng::Rng;
pub use round_robin::{next_healthy, RoundRobin};
pub use target_state::{human, Standing, TargetState, Thresholds};
