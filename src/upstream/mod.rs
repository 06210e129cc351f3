//! The target side: per-worker pools of keep-alive connections, and the
//! prober that keeps the health bitmap fresh.

mod pool;
pub mod prober;

pub use pool::Pool;
