//! A worker's idle keep-alive connections to each target: bounded, reused
//! most-recently-returned first, checked with a peek before each reuse, and
//! closed once idle for `--idle-timeout`.

use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use crate::stream::is_idle_and_open;

/// How long after going idle a connection is trusted without a peek.
pub const FRESH: Duration = Duration::from_secs(1);

/// An idle connection, when it went idle, and the generation of the target
/// in its slot then (a slot that changed hands does not give it out).
struct Idle {
    stream: TcpStream,
    since: Instant,
    gen: u64,
}

/// Idle connections per target, owned by one worker (no locks: nothing
/// here crosses threads). Each target's list is ordered oldest first.
pub struct Pool {
    idle: Vec<Vec<Idle>>,
    per_target: usize,
    max_idle: Duration,
}

impl Pool {
    /// A pool for `targets` targets keeping at most `per_target` idle
    /// connections to each, none idle for `max_idle` or longer.
    pub fn new(targets: usize, per_target: usize, max_idle: Duration) -> Pool {
        Pool {
            idle: (0..targets).map(|_| Vec::new()).collect(),
            per_target,
            max_idle,
        }
    }

    /// An idle connection to `target` that is still open, if any. The
    /// newest is tried first: it is the least likely to have been closed by
    /// the target's idle timeout. Closed or expired ones are dropped.
    ///
    /// A connection idle for less than `FRESH` is taken without the liveness
    /// peek (a syscall per request under load) unless `check` asks for it: a
    /// target rarely closes a connection that quietly within a second of
    /// answering on it, and if it did, a request that can be sent again is
    /// (on a fresh connection, the target having seen nothing). A request
    /// that cannot be sent twice asks for the check.
    pub fn take(
        &mut self,
        target: usize,
        gen: u64,
        now: Instant,
        check: bool,
    ) -> Option<TcpStream> {
        let idle = &mut self.idle[target];
        while let Some(conn) = idle.pop() {
            let age = now.saturating_duration_since(conn.since);
            if conn.gen != gen {
                continue;
            }
            if age >= self.max_idle {
                // Everything below it is older still.
                idle.clear();
                return None;
            }
            if (age < FRESH && !check) || is_idle_and_open(&conn.stream) {
                return Some(conn.stream);
            }
        }
        None
    }

    /// Returns a connection after a complete exchange. When the pool for
    /// that target is full, the oldest connection is closed instead.
    pub fn put(&mut self, target: usize, gen: u64, stream: TcpStream, now: Instant) {
        if self.per_target == 0 {
            return;
        }
        let idle = &mut self.idle[target];
        if idle.len() >= self.per_target {
            idle.remove(0);
        }
        idle.push(Idle {
            stream,
            since: now,
            gen,
        });
    }

    /// Closes every idle connection to `target` (it failed: its other
    /// connections are suspect too).
    pub fn clear(&mut self, target: usize) {
        self.idle[target].clear();
    }

    /// Closes the connections idle for `max_idle` or longer, before the
    /// target's own keep-alive timeout can race a request onto them.
    pub fn close_expired(&mut self, now: Instant) {
        for idle in &mut self.idle {
            let expired =
                idle.partition_point(|c| now.saturating_duration_since(c.since) >= self.max_idle);
            idle.drain(..expired);
        }
    }
}
