//! The connection a client keeps to a `proxy=v2` target between its
//! requests. Such a connection began with a PROXY header naming this client,
//! so it may carry no other client's requests: it never goes to the
//! worker's pool (which would hand it to anyone) and is never taken from it.
//! Instead it waits in the client connection itself (through a parked wait
//! too) for this client's next request to the same target, watched as a
//! pooled one is (a readiness poll, or a peek on epoll) and under the same
//! idle limit. One at a time, and none beside a connection to another
//! target: a request that goes elsewhere closes it, so that a client holds
//! no more descriptors than the connection cap counts on (its own, one
//! target connection and that one's watch). It closes with the client
//! connection too.

use std::time::Instant;

use crate::stream::is_idle_and_open;
use crate::upstream::Upstream;
use crate::worker::Worker;

/// The connection kept, and for which target (`slot` while it held the
/// target of generation `gen`), idle since `since`.
struct Kept {
    slot: usize,
    gen: u64,
    since: Instant,
    conn: Option<Upstream>,
}

/// What a client connection keeps: nothing until its first reusable
/// connection to a `proxy=v2` target (then one box, reused for the
/// connections that follow), so that other clients pay a pointer for it.
#[derive(Default)]
pub struct Private(Option<Box<Kept>>);

impl Private {
    /// The connection kept to `slot`, if there is one and it is still fit
    /// to carry a request: the slot still holds the same target, it has not
    /// been idle for `--pool-idle-timeout`, and nothing arrived on it while
    /// idle (`checked` adds a peek, as for a pooled one). One that is not
    /// fit is closed.
    pub fn take(&mut self, worker: &Worker, slot: usize, checked: bool) -> Option<Upstream> {
        let kept = self.0.as_mut().filter(|k| k.slot == slot)?;
        let mut conn = kept.conn.take()?;
        let config = worker.config();
        let max_idle = config.pool_idle_timeout.min(config.idle_timeout);
        let idle = worker.coarse_now().saturating_duration_since(kept.since);
        if kept.gen != worker.slot_gen(slot) || idle >= max_idle {
            return None;
        }
        if !conn.is_quiet() || (checked && !is_idle_and_open(conn.stream().tcp())) {
            return None;
        }
        Some(conn)
    }

    /// Closes the connection kept, if it is to another target than `slot`
    /// (a request is about to go there).
    #[inline]
    pub fn close_unless(&mut self, slot: usize) {
        if let Some(kept) = self.0.as_mut().filter(|k| k.slot != slot) {
            kept.conn = None;
        }
    }

    /// Keeps `conn` to `slot`, which can carry another request, for this
    /// client's next request there, with its poll armed; whatever was kept
    /// before is closed. Not kept (closed) with `--pool-size 0`, or when
    /// something arrived on it already.
    pub fn keep(&mut self, worker: &Worker, slot: usize, mut conn: Upstream) {
        if worker.config().pool_size == 0 || !conn.arm() {
            return;
        }
        let kept = Kept {
            slot,
            gen: worker.slot_gen(slot),
            since: worker.coarse_now(),
            conn: Some(conn),
        };
        match &mut self.0 {
            Some(held) => **held = kept,
            None => self.0 = Some(Box::new(kept)),
        }
    }
}
