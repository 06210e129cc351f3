//! The target side: per-worker pools of keep-alive connections (each watched
//! while idle), over plain TCP or TLS, and the prober that keeps the health
//! bitmap fresh.

mod conn;
mod pool;
pub mod prober;
mod target_stream;

pub use conn::Upstream;
pub use pool::Pool;
pub use target_stream::TargetStream;
