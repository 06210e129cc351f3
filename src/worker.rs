//! What each worker owns (cursor, pool, buffers) and what all share (the
//! configuration and the health bitmap).

use std::cell::RefCell;

use bytes::BytesMut;

use crate::balance::{HealthBitmap, RoundRobin};
use crate::config::Config;
use crate::upstream::Pool;

/// Size of a buffer for reading a response (head and body chunks).
pub const RESPONSE_BUF: usize = 64 * 1024;

/// Response buffers kept for reuse per worker; more are freed.
const SPARE_BUFFERS: usize = 256;

/// State shared by all workers for the life of the process.
pub struct Shared {
    pub config: Config,
    pub health: HealthBitmap,
}

impl Shared {
    /// Marks a target degraded after a failure seen on live traffic, and
    /// logs the change (only the worker that flips the bit logs it).
    pub fn degrade(&self, target: usize, why: &str) {
        if self.health.mark_degraded(target) {
            log!(
                "health: {} healthy -> degraded ({why})",
                self.config.backend_names[target]
            );
        }
    }
}

/// One worker's state: created inside its thread, never shared.
pub struct Worker {
    pub id: usize,
    pub shared: &'static Shared,
    pub rr: RoundRobin,
    pub pool: RefCell<Pool>,
    spare: RefCell<Vec<BytesMut>>,
}

impl Worker {
    pub fn new(id: usize, shared: &'static Shared) -> Worker {
        let targets = shared.health.len();
        Worker {
            id,
            shared,
            // Start each worker's cursor at a different target, so that the
            // first requests of each core do not all go to target 0.
            rr: RoundRobin::new(id),
            pool: RefCell::new(Pool::new(targets, shared.config.pool_size)),
            spare: RefCell::new(Vec::new()),
        }
    }

    pub fn config(&self) -> &'static Config {
        &self.shared.config
    }

    /// An empty response buffer of `RESPONSE_BUF` bytes, reused if possible.
    pub fn take_buffer(&self) -> BytesMut {
        self.spare
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| BytesMut::with_capacity(RESPONSE_BUF))
    }

    /// Gives a response buffer back. It is kept only if it can be reclaimed
    /// whole (no `Bytes` still points into it).
    pub fn give_buffer(&self, mut buf: BytesMut) {
        buf.clear();
        let mut spare = self.spare.borrow_mut();
        if spare.len() < SPARE_BUFFERS {
            // Reclaims the original allocation in place when unique.
            buf.reserve(RESPONSE_BUF);
            if buf.capacity() <= 2 * RESPONSE_BUF {
                spare.push(buf);
            }
        }
    }
}
