//! What each worker owns: its picker, retry budget, connection pool,
//! spare buffers, connection count and coarse clock.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::io::{CancelHandle, Canceller};

use crate::access_log::AccessLog;
use crate::balance::{Picker, Rng};
use crate::buffers::{BufferPool, ReplayMemory};
use crate::config::Config;
use crate::health::{FailureStreaks, Outcome};
use crate::metrics::WorkerMetrics;
use crate::retry::RetryBudget;
use crate::shared::Shared;
use crate::targets::{Slot, Target};
use crate::upstream::Pool;

mod policy;

/// Size of a buffer for reading a response (head and body chunks).
pub const RESPONSE_BUF: usize = 64 * 1024;

/// Response buffers kept for reuse per worker; more are freed.
const SPARE_BUFFERS: usize = 256;

/// Size of a client connection's read buffer. Small, because a pending read
/// pins it while the connection waits; it grows only for a large head or a
/// buffered body.
pub const CLIENT_BUF: usize = 4 * 1024;

/// Client read buffers kept for reuse per worker; more are freed.
const SPARE_CLIENT_BUFFERS: usize = 64;

/// A worker's copy of the target table, refreshed when the set changes.
struct View {
    generation: u64,
    slots: Vec<Option<Slot>>,
}

/// How often a worker closes expired pooled connections and moves its
/// coarse clock on.
pub const HOUSEKEEPING: Duration = Duration::from_millis(100);

/// One worker's state: created inside its thread, never shared.
pub struct Worker {
    pub id: usize,
    pub shared: &'static Shared,
    /// The algorithm's state and what this worker learnt of each target.
    picker: RefCell<Picker>,
    /// Failures in a row per target on this worker, towards ejection.
    failure_streaks: RefCell<FailureStreaks>,
    /// Retries this worker may still make, and the jitter of backoffs.
    budget: RefCell<RetryBudget>,
    rng: RefCell<Rng>,
    pool: RefCell<Pool>,
    /// Buffers for reading responses, and client connections' read buffers.
    pub response_buffers: BufferPool,
    pub client_buffers: BufferPool,
    /// Memory held in request bodies buffered for replay.
    pub replay_memory: ReplayMemory,
    /// Client connections open on this worker, and how many it may have.
    open: Cell<usize>,
    max_open: usize,
    /// A clock read once per `HOUSEKEEPING` tick: good enough to age idle
    /// connections, and free to read on every request.
    coarse_now: Cell<Instant>,
    /// When the worker was made: the origin of the picker's latency clock.
    started: Instant,
    /// This worker's counters, when `--admin` serves them.
    metrics: Option<&'static WorkerMetrics>,
    /// This worker's access log buffer, when `--access-log` is on.
    access_log: Option<AccessLog>,
    /// This worker's copy of the target table.
    view: RefCell<View>,
    /// Set once a shutdown began: no new connections, no more keep-alive.
    draining: Cell<bool>,
    /// Cancels the accept in flight when the worker starts draining.
    accepting: RefCell<Canceller>,
    /// Housekeeping ticks so far.
    ticks: Cell<u64>,
    /// Cancellers of parked connections' reads, by the tick at which their
    /// idle time is up: one per tick, shared by all that expire together.
    expiries: RefCell<BTreeMap<u64, Canceller>>,
}

impl Worker {
    /// Worker `id` of `workers`; the connection limit is split evenly.
    pub fn new(id: usize, workers: usize, shared: &'static Shared) -> Worker {
        let config = &shared.config;
        let metrics = shared.metrics.as_ref().map(|m| m.worker(id));
        let (generation, slots) = shared.targets.snapshot();
        let mut picker = Picker::new(config.algorithm, shared.targets.capacity(), id);
        for (i, slot) in slots.iter().enumerate() {
            if let Some(slot) = slot {
                picker.set_weight(i, slot.target.weight);
            }
        }
        if let Some(m) = metrics {
            for (i, slot) in slots.iter().enumerate() {
                if let Some(slot) = slot {
                    m.reset_target(i, slot.gen);
                }
            }
        }
        Worker {
            id,
            shared,
            // Start each worker's cursor at a different target, so that the
            // first requests of each core do not all go to target 0.
            picker: RefCell::new(picker),
            failure_streaks: RefCell::new(FailureStreaks::new(
                shared.targets.capacity(),
                config.eject_after,
            )),
            budget: RefCell::new(RetryBudget::new(config.retry_budget, config.retry_floor)),
            rng: RefCell::new(Rng::new(id as u64)),
            pool: RefCell::new(Pool::new(
                shared.targets.capacity(),
                config.pool_size,
                config.pool_idle_timeout.min(config.idle_timeout),
            )),
            metrics,
            access_log: shared.access_log.clone().map(AccessLog::new),
            response_buffers: BufferPool::new(RESPONSE_BUF, SPARE_BUFFERS),
            client_buffers: BufferPool::new(CLIENT_BUF, SPARE_CLIENT_BUFFERS),
            replay_memory: ReplayMemory::new(config.max_replay_memory),
            open: Cell::new(0),
            max_open: config.max_connections.div_ceil(workers.max(1)),
            coarse_now: Cell::new(Instant::now()),
            started: Instant::now(),
            view: RefCell::new(View { generation, slots }),
            draining: Cell::new(false),
            accepting: RefCell::new(Canceller::new()),
            ticks: Cell::new(0),
            expiries: RefCell::new(BTreeMap::new()),
        }
    }

    /// A handle that cancels an operation once `after` has passed (to
    /// within a `HOUSEKEEPING` tick), without a timer per operation.
    pub fn idle_expiry(&self, after: Duration) -> CancelHandle {
        let due = self.ticks.get() + 1 + (after.as_millis() / HOUSEKEEPING.as_millis()) as u64;
        self.expiries.borrow_mut().entry(due).or_default().handle()
    }

    /// Now, to within `HOUSEKEEPING`.
    pub fn coarse_now(&self) -> Instant {
        self.coarse_now.get()
    }

    /// A deadline `after` from now, from the coarse clock: never early, up
    /// to one `HOUSEKEEPING` tick late, and free of a clock read.
    pub fn soon(&self, after: Duration) -> Instant {
        self.coarse_now.get() + after + HOUSEKEEPING
    }

    /// Counts the fields with an `_` dropped from a request head.
    #[inline]
    pub fn count_underscored(&self, n: u8) {
        if let (true, Some(m)) = (n > 0, self.metrics) {
            m.underscored_dropped.add(u64::from(n));
        }
    }

    /// Counts a body streamed because the replay memory had no room for it.
    pub fn count_replay_refused(&self) {
        if let Some(m) = self.metrics {
            m.replay_refused.add(1);
        }
    }

    /// Counts a body that did not arrive within `--client-body-timeout`.
    pub fn count_body_timeout(&self) {
        if let Some(m) = self.metrics {
            m.body_timeouts.add(1);
        }
    }

    /// This worker's access log buffer, when `--access-log` is on.
    #[inline]
    pub fn access_log(&self) -> Option<&AccessLog> {
        self.access_log.as_ref()
    }

    /// Counts a finished request's time in the latency histogram.
    #[inline]
    pub fn observe_request(&self, micros: u64) {
        if let Some(m) = self.metrics {
            m.observe(micros);
        }
    }

    /// Whether requests are timed (for the metrics or the access log).
    #[inline]
    pub fn timing(&self) -> bool {
        self.metrics.is_some() || self.access_log.is_some()
    }

    /// Whether a shutdown began: connections close after their current
    /// request instead of waiting for another.
    #[inline]
    pub fn draining(&self) -> bool {
        self.draining.get()
    }

    /// Client connections open on this worker.
    pub fn open_connections(&self) -> usize {
        self.open.get()
    }

    /// A handle for the accept in flight.
    pub fn accept_handle(&self) -> CancelHandle {
        self.accepting.borrow().handle()
    }

    /// Starts a shutdown on this worker: the accept is cancelled, parked
    /// (idle) client connections are closed now, and the others close after
    /// the request they are busy with (or, idle for less than the parking
    /// delay, when they would have been parked).
    pub fn begin_drain(&self) {
        self.draining.set(true);
        let _ = std::mem::take(&mut *self.accepting.borrow_mut()).cancel();
        let parked = std::mem::take(&mut *self.expiries.borrow_mut());
        for canceller in parked.into_values() {
            canceller.cancel();
        }
    }

    /// Counts a new client connection in; `None` when this worker is at its
    /// share of `--max-connections`. The guard counts it out when dropped.
    pub fn admit(self: &Rc<Self>) -> Option<Admitted> {
        if self.open.get() >= self.max_open {
            return None;
        }
        self.open.set(self.open.get() + 1);
        if let Some(m) = self.metrics {
            m.open.set(self.open.get() as u64);
        }
        Some(Admitted(self.clone()))
    }

    /// Runs forever: every `HOUSEKEEPING`, moves the coarse clock on,
    /// closes pooled connections idle past `--idle-timeout` and cancels the
    /// reads of parked client connections whose idle time is up.
    pub async fn housekeeping(self: Rc<Self>) {
        loop {
            monoio::time::sleep(HOUSEKEEPING).await;
            let now = Instant::now();
            self.coarse_now.set(now);
            if self.id == 0 {
                self.end_ejections(now);
            }
            self.pool.borrow_mut().close_expired(now);
            if let Some(m) = self.metrics {
                m.retry_budget.set(self.retries_available());
                m.replay_bytes.set(self.replay_memory.held() as u64);
                m.pooled.set(self.pool.borrow().idle_count() as u64);
            }
            if let Some(log) = &self.access_log {
                log.tick();
            }
            let tick = self.ticks.get() + 1;
            self.ticks.set(tick);
            let due = {
                let mut expiries = self.expiries.borrow_mut();
                let later = expiries.split_off(&(tick + 1));
                std::mem::replace(&mut *expiries, later)
            };
            for canceller in due.into_values() {
                canceller.cancel();
            }
        }
    }

    pub fn config(&self) -> &'static Config {
        &self.shared.config
    }

    /// Brings this worker's copy of the target table up to date when a
    /// reload changed the set (one atomic load when it did not). Pooled
    /// connections of targets that left, or whose slot changed hands, are
    /// closed.
    #[inline]
    pub fn refresh_targets(&self) {
        if self.shared.targets.generation() != self.view.borrow().generation {
            self.reload_view();
        }
    }

    #[cold]
    fn reload_view(&self) {
        let (generation, slots) = self.shared.targets.snapshot();
        let mut view = self.view.borrow_mut();
        let mut pool = self.pool.borrow_mut();
        let mut picker = self.picker.borrow_mut();
        let mut failure_streaks = self.failure_streaks.borrow_mut();
        for (i, (old, new)) in view.slots.iter().zip(&slots).enumerate() {
            if old.as_ref().map(|s| s.gen) != new.as_ref().map(|s| s.gen) {
                pool.clear(i);
                picker.reset(i);
                failure_streaks.forget(i);
                if let (Some(m), Some(slot)) = (self.metrics, new) {
                    m.reset_target(i, slot.gen);
                }
            }
            if let Some(slot) = new {
                picker.set_weight(i, slot.target.weight);
            }
        }
        *view = View { generation, slots };
    }

    /// The target in `slot`, as this worker last saw the set.
    pub fn target(&self, slot: usize) -> Option<Slot> {
        self.view.borrow().slots[slot].clone()
    }

    /// Calls `f` with the target in `slot` (if any), borrowed from this
    /// worker's view: no reference count shared with other workers moves.
    pub fn with_target<R>(&self, slot: Option<usize>, f: impl FnOnce(Option<&Target>) -> R) -> R {
        let view = self.view.borrow();
        let slot = slot.and_then(|i| view.slots[i].as_ref());
        f(slot.map(|s| &*s.target))
    }

    /// The generation of the target in `slot`, as this worker last saw it.
    pub fn slot_gen(&self, slot: usize) -> u64 {
        self.view.borrow().slots[slot].as_ref().map_or(0, |s| s.gen)
    }

    /// Marks a target degraded after a failure seen on live traffic, and
    /// logs the change (only the worker that flips the bit logs it).
    fn degrade(&self, slot: usize, why: Outcome) {
        if self.shared.targets.mark_degraded(slot) {
            if let Some(s) = self.target(slot) {
                log!(
                    warn,
                    "health: {} healthy -> degraded ({why})",
                    s.target.name
                );
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
        let worker = &self.0;
        worker.open.set(worker.open.get() - 1);
        if let Some(m) = worker.metrics {
            m.open.set(worker.open.get() as u64);
        }
    }
}
