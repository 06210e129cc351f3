//! Target selection: the shared health bitmap and, per worker, the ways to
//! pick a target over it: round robin, smooth weighted round robin, weighted
//! least connections, and power of two choices over peak-EWMA latency, each
//! listed in `algorithm.rs` (its `--algorithm` name and the state it keeps);
//! the picker that applies the chosen one with the fallback and slow start.
//! Which targets are in rotation is decided in [`crate::health`]; this
//! module only picks among them. A new algorithm is one file here and its
//! arms in `algorithm.rs`.
//! Pure code over atomics; no IO, no locks, no allocation when picking.
//!
//! A candidate is a slot whose health bit is set and that the request has
//! not already tried; every pick returns one, or None when there is none.

#![forbid(unsafe_code)]

mod algorithm;
mod health_bitmap;
mod least_connections;
mod p2c;
mod picker;
mod rng;
mod round_robin;
mod weighted;

pub use algorithm::Algorithm;
pub use health_bitmap::HealthBitmap;
pub use least_connections::LeastConnections;
pub use p2c::{P2c, PeakEwma, DEFAULT_DECAY_NS};
pub use picker::{Candidates, Picker};
pub use rng::Rng;
pub use round_robin::{next_healthy, RoundRobin};
pub use weighted::SmoothWeighted;
