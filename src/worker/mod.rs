//! What each worker owns, in a few parts, each behind narrow doors:
//!
//! - `requests.rs`: what the request path asks of its worker (pick a
//!   target, count an attempt in and out, `record` what it came to, ask for
//!   a retry, wait a backoff, take and give back pooled connections). The
//!   picker, the failure streaks, the retry budget and the pool are private
//!   to it.
//! - `view.rs`: the worker's copy of the target table.
//! - `admission.rs`: open client connections against the limit, and the
//!   drain.
//! - `clock.rs`: the coarse clock, ticks and parked connections' expiries.
//! - here: the worker itself, its counters and access log, and the
//!   housekeeping tick that drives the rest.
//!
//! What all workers share is `crate::shared`.

use crate::tls::HandshakeFailure;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use monoio::io::{CancelHandle, Canceller};

use crate::access_log::AccessLog;
use crate::balance::{Picker, Rng};
use crate::buffers::{BufferPool, FreeList, ReplayMemory};
use crate::config::Config;
use crate::health::FailureStreaks;
use crate::metrics::WorkerMetrics;
use crate::retry::RetryBudget;
use crate::shared::Shared;
use crate::splice::PipePool;
use crate::stream::Gather;
use crate::upstream::Pool;

mod admission;
mod clock;
mod requests;
mod view;

pub use admission::Admitted;
pub use clock::HOUSEKEEPING;

use admission::Admission;
use clock::Clock;
use view::View;

/// Size of a buffer for reading a response (head and body chunks).
pub const RESPONSE_BUF: usize = 64 * 1024;

/// Response buffers kept for reuse per worker; more are freed.
const SPARE_BUFFERS: usize = 256;

/// Size of a client connection's read buffer. Small, because a pending read
/// pins it while the connection waits; it grows only for a large head or a
/// buffered body.
pub const CLIENT_BUF: usize = 4 * 1024;

/// Client read buffers kept for reuse per worker; more are freed.
const SPARE_CLIENT_BUFFERS: usize = 1024;

/// `Scratch` kept for reuse per worker (one per busy connection).
const SPARE_SCRATCH: usize = 1024;

/// What a busy connection fills and empties for each request: its
/// gathered writes and the targets tried, the canceller of its wait for
/// the next request, and the buffer of the lines it adds to requests.
/// Given back when it parks, so that waking allocates nothing and a parked
/// connection holds none of it.
#[derive(Default)]
pub struct Scratch {
    pub out: Gather,
    pub tried: Vec<u32>,
    pub canceller: Canceller,
    /// Room for the connection's `X-Forwarded-For` lines.
    pub forwarded: BytesMut,
}

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
    /// Spare pipes for splicing large bodies.
    pub pipes: PipePool,
    /// What a busy connection works with, kept while it is parked.
    pub scratch: FreeList<Scratch>,
    /// Client connections parked now.
    parked: Cell<usize>,
    /// Memory held in request bodies buffered for replay.
    pub replay_memory: ReplayMemory,
    /// Client connections open, against the limit; the drain.
    admission: Admission,
    /// The coarse clock, ticks and parked connections' expiries.
    clock: Clock,
    /// This worker's counters, when `--admin` serves them.
    metrics: Option<&'static WorkerMetrics>,
    /// This worker's access log buffer, when `--access-log` is on.
    access_log: Option<AccessLog>,
    /// This worker's copy of the target table.
    view: RefCell<View>,
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
            pipes: PipePool::default(),
            parked: Cell::new(0),
            scratch: FreeList::new(SPARE_SCRATCH),
            replay_memory: ReplayMemory::new(config.max_replay_memory),
            admission: Admission::new(config.max_connections.div_ceil(workers.max(1))),
            clock: Clock::new(config.idle_timeout.max(config.client_header_timeout)),
            view: RefCell::new(View { generation, slots }),
        }
    }

    /// A handle that cancels an operation once `after` has passed (to
    /// within a `HOUSEKEEPING` tick), without a timer per operation.
    pub fn idle_expiry(&self, after: Duration) -> CancelHandle {
        self.clock.expiry(after)
    }

    /// Now, to within `HOUSEKEEPING`.
    #[inline]
    pub fn coarse_now(&self) -> Instant {
        self.clock.now()
    }

    /// A deadline `after` from now, from the coarse clock: never early, up
    /// to one `HOUSEKEEPING` tick late, and free of a clock read.
    #[inline]
    pub fn soon(&self, after: Duration) -> Instant {
        self.clock.soon(after)
    }

    /// Counts a client connection parked (`true`) or woken or closed from
    /// parked (`false`).
    #[inline]
    pub fn count_parked(&self, parked: bool) {
        let n = self.parked.get();
        self.parked.set(if parked { n + 1 } else { n - 1 });
    }

    /// Shows the open connection count in the metrics.
    fn show_open(&self, open: usize) {
        if let Some(m) = self.metrics {
            m.open.set(open as u64);
        }
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

    /// Counts a connection closed for a missing or invalid PROXY header.
    pub fn count_proxy_header_refused(&self) {
        if let Some(m) = self.metrics {
            m.proxy_header_refused.add(1);
        }
    }

    /// Counts response body bytes spliced to a client.
    pub fn count_spliced(&self, bytes: u64) {
        if let Some(m) = self.metrics {
            m.spliced_bytes.add(bytes);
        }
    }

    /// Counts a TLS handshake done with a client, full or resumed.
    pub fn count_tls_handshake(&self, kind: Option<rustls::HandshakeKind>) {
        if let Some(m) = self.metrics {
            let resumed = kind == Some(rustls::HandshakeKind::Resumed);
            m.tls_handshakes[usize::from(resumed)].add(1);
        }
    }

    /// Counts a TLS handshake with a client that failed, and why.
    pub fn count_tls_failure(&self, reason: HandshakeFailure) {
        if let Some(m) = self.metrics {
            m.tls_failures[reason.index()].add(1);
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

    /// Runs forever: every `HOUSEKEEPING`, moves the coarse clock on,
    /// closes pooled connections idle past `--idle-timeout` and cancels the
    /// reads of parked client connections whose idle time is up.
    pub async fn housekeeping(self: Rc<Self>) {
        loop {
            monoio::time::sleep(HOUSEKEEPING).await;
            let now = Instant::now();
            if self.id == 0 {
                self.end_ejections(now);
            }
            self.pool.borrow_mut().close_expired(now);
            if let Some(m) = self.metrics {
                m.retry_budget.set(self.retries_available());
                m.replay_bytes.set(self.replay_memory.held() as u64);
                m.pooled.set(self.pool.borrow().idle_count() as u64);
                m.parked.set(self.parked.get() as u64);
            }
            if let Some(log) = &self.access_log {
                log.tick();
            }
            self.clock.tick(now);
        }
    }

    pub fn config(&self) -> &'static Config {
        &self.shared.config
    }
}
