//! A worker's idle keep-alive connections to each target: bounded, reused
//! most-recently-returned first, checked with a peek before each reuse.

use monoio::net::TcpStream;

use crate::stream::is_idle_and_open;

/// Idle connections per target, owned by one worker (no locks: nothing
/// here crosses threads).
pub struct Pool {
    idle: Vec<Vec<TcpStream>>,
    per_target: usize,
}

impl Pool {
    /// A pool for `targets` targets keeping at most `per_target` idle
    /// connections to each.
    pub fn new(targets: usize, per_target: usize) -> Pool {
        Pool {
            idle: (0..targets).map(|_| Vec::new()).collect(),
            per_target,
        }
    }

    /// An idle connection to `target` that is still open, if any. The
    /// newest is tried first: it is the least likely to have been closed by
    /// the target's idle timeout. Closed ones found on the way are dropped.
    pub fn take(&mut self, target: usize) -> Option<TcpStream> {
        let idle = &mut self.idle[target];
        while let Some(stream) = idle.pop() {
            if is_idle_and_open(&stream) {
                return Some(stream);
            }
        }
        None
    }

    /// Returns a connection after a complete exchange. When the pool for
    /// that target is full, the oldest connection is closed instead.
    pub fn put(&mut self, target: usize, stream: TcpStream) {
        if self.per_target == 0 {
            return;
        }
        let idle = &mut self.idle[target];
        if idle.len() >= self.per_target {
            idle.remove(0);
        }
        idle.push(stream);
    }

    /// Closes every idle connection to `target` (it failed: its other
    /// connections are suspect too).
    pub fn clear(&mut self, target: usize) {
        self.idle[target].clear();
    }
}
