//! The target side: per-worker pools of keep-alive connections (each watched
//! while idle), and the prober that keeps the health bitmap fresh.

mod conn;
mod pool;
pub mod prober;

pub use conn::Upstream;
pub use pool::Pool;
