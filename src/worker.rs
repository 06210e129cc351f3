//! What each worker owns (cursor, pool, buffers) and what all share (the
//! configuration and the health bitmap).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

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

/// How often a worker closes expired pooled connections and moves its
/// coarse clock on.
pub const HOUSEKEEPING: Duration = Duration::from_millis(100);

/// One worker's state: created inside its thread, never shared.
pub struct Worker {
    pub id: usize,
    pub shared: &'static Shared,
    pub rr: RoundRobin,
    pub pool: RefCell<Pool>,
    spare: RefCell<Vec<BytesMut>>,
    /// Client connections open on this worker, and how many it may have.
    open: Cell<usize>,
    max_open: usize,
    /// A clock read once per `HOUSEKEEPING` tick: good enough to age idle
    /// connections, and free to read on every request.
    coarse_now: Cell<Instant>,
}

impl Worker {
    /// Worker `id` of `workers`; the connection limit is split evenly.
    pub fn new(id: usize, workers: usize, shared: &'static Shared) -> Worker {
        let config = &shared.config;
        Worker {
            id,
            shared,
            // Start each worker's cursor at a different target, so that the
            // first requests of each core do not all go to target 0.
            rr: RoundRobin::new(id),
            pool: RefCell::new(Pool::new(
                shared.health.len(),
                config.pool_size,
                config.idle_timeout,
            )),
            spare: RefCell::new(Vec::new()),
            open: Cell::new(0),
            max_open: config.max_connections.div_ceil(workers.max(1)),
            coarse_now: Cell::new(Instant::now()),
        }
    }

    /// Now, to within `HOUSEKEEPING`.
    pub fn coarse_now(&self) -> Instant {
        self.coarse_now.get()
    }

    /// Counts a new client connection in; `None` when this worker is at its
    /// share of `--max-connections`. The guard counts it out when dropped.
    pub fn admit(self: &Rc<Self>) -> Option<Admitted> {
        if self.open.get() >= self.max_open {
            return None;
        }
        self.open.set(self.open.get() + 1);
        Some(Admitted(self.clone()))
    }

    /// Runs forever: every `HOUSEKEEPING`, moves the coarse clock on and
    /// closes pooled connections idle past `--idle-timeout`.
    pub async fn housekeeping(self: Rc<Self>) {
        loop {
            monoio::time::sleep(HOUSEKEEPING).await;
            let now = Instant::now();
            self.coarse_now.set(now);
            self.pool.borrow_mut().close_expired(now);
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

/// A client connection counted against its worker's limit while it lives.
pub struct Admitted(Rc<Worker>);

impl Admitted {
    pub fn worker(&self) -> &Rc<Worker> {
        &self.0
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get() - 1);
    }
}
