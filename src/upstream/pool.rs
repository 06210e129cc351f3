//! A worker's idle keep-alive connections to each target: bounded, reused
//! most-recently-returned first, watched by a readiness poll while idle (a
//! connection on which anything arrived is never reused), and closed once
//! idle for `--pool-idle-timeout`. It counts what it holds
//! ([`Pool::idle_count`]); showing that is the worker's business.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::Upstream;
use crate::stream::is_idle_and_open;

/// An idle connection, when it went idle, and the generation of the target
/// in its slot then (a slot that changed hands does not give it out).
struct Idle {
    conn: Upstream,
    since: Instant,
    gen: u64,
}

/// Idle connections per target, owned by one worker (no locks: nothing
/// here crosses threads). Each target's list is ordered oldest first, and
/// is a ring: a full list drops its oldest in O(1). (It was a `Vec` whose
/// `remove(0)` moved every other entry, 16 KB with the default 128, at each
/// return to a full pool: a quarter of the worker's own instructions at
/// 1000 client connections, where a third of returns find the pool full.)
pub struct Pool {
    idle: Vec<VecDeque<Idle>>,
    per_target: usize,
    max_idle: Duration,
    /// Idle connections held, all targets together.
    held: usize,
}

impl Pool {
    /// A pool for `targets` targets keeping at most `per_target` idle
    /// connections to each, none idle for `max_idle` or longer.
    pub fn new(targets: usize, per_target: usize, max_idle: Duration) -> Pool {
        Pool {
            idle: (0..targets).map(|_| VecDeque::new()).collect(),
            per_target,
            max_idle,
            held: 0,
        }
    }

    /// Idle connections held now, all targets together.
    pub fn idle_count(&self) -> usize {
        self.held
    }

    /// An idle connection to `target` on which nothing arrived while it was
    /// idle, if any. The newest is tried first: it is the least likely to
    /// have been closed by the target's idle timeout. Connections whose poll
    /// fired, expired ones and stale ones (from a target that had the slot
    /// before, `gen` telling) are closed.
    ///
    /// The poll sees what arrived up to the worker's last look at the ring;
    /// a request that could not be sent again if the connection turned out
    /// closed (`check`) also pays for a peek, which sees up to now.
    pub fn take(&mut self, target: usize, gen: u64, now: Instant, check: bool) -> Option<Upstream> {
        let before = self.idle[target].len();
        let idle = &mut self.idle[target];
        let mut found = None;
        while let Some(mut idle_conn) = idle.pop_back() {
            let age = now.saturating_duration_since(idle_conn.since);
            if idle_conn.gen != gen {
                continue;
            }
            if age >= self.max_idle {
                // Everything below it is older still.
                idle.clear();
                break;
            }
            let conn = &mut idle_conn.conn;
            if conn.is_quiet() && (!check || is_idle_and_open(conn.stream().tcp())) {
                found = Some(idle_conn.conn);
                break;
            }
        }
        self.held -= before - self.idle[target].len();
        found
    }

    /// Returns a connection after a complete exchange, with its poll armed.
    /// When the pool for that target is full, the oldest connection is
    /// closed instead. A connection that has something to read already is
    /// closed, not kept. So is a private one (it began with a PROXY header
    /// naming its client): no other client may be given it.
    pub fn put(&mut self, target: usize, gen: u64, mut conn: Upstream, now: Instant) {
        debug_assert!(
            !conn.is_private(),
            "a private connection offered to the pool"
        );
        if self.per_target == 0 || conn.is_private() || !conn.arm() {
            return;
        }
        let idle = &mut self.idle[target];
        if idle.len() >= self.per_target {
            idle.pop_front();
        } else {
            self.held += 1;
        }
        idle.push_back(Idle {
            conn,
            since: now,
            gen,
        });
    }

    /// Closes every idle connection to `target` (it failed: its other
    /// connections are suspect too).
    pub fn clear(&mut self, target: usize) {
        let n = self.idle[target].len();
        self.idle[target].clear();
        self.held -= n;
    }

    /// Closes the connections idle for `max_idle` or longer, before the
    /// target's own keep-alive timeout can race a request onto them.
    pub fn close_expired(&mut self, now: Instant) {
        let mut n = 0;
        for idle in &mut self.idle {
            let expired =
                idle.partition_point(|c| now.saturating_duration_since(c.since) >= self.max_idle);
            idle.drain(..expired);
            n += expired;
        }
        self.held -= n;
    }
}
