//! Counters for `/metrics` (on with `--admin`). Each worker writes only its
//! own counters, with plain atomic loads and stores (no read-modify-write,
//! no shared cache line); the admin endpoint sums them when asked, and
//! renders the Prometheus text format ([`Metrics::render`], in `render.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam_utils::CachePadded;

mod render;

/// A counter or gauge written by one thread and read by any.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`: only the owning worker writes, so no atomic add is needed.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    #[inline]
    pub fn sub(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_sub(n),
            Ordering::Relaxed,
        );
    }

    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds of the request-duration histogram, in microseconds.
const BUCKETS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// One worker's counters for one target slot.
#[derive(Debug, Default)]
pub struct TargetCounters {
    /// Attempts sent to the target, retries included.
    pub requests: Counter,
    /// Responses from the target by status class: 1xx to 5xx.
    pub responses: [Counter; 5],
    /// Attempts on this target that were retried on another.
    pub retries: Counter,
    pub connect_failures: Counter,
    /// Connects or responses that missed their deadline.
    pub timeouts: Counter,
    /// Requests at the target now (a gauge).
    pub in_flight: Counter,
    /// The generation of the slot's target these counters are about: a
    /// worker that has not yet seen a slot change hands still holds the
    /// old target's counts, and they are left out of the sums.
    pub gen: Counter,
}

impl TargetCounters {
    fn reset(&self) {
        for c in [
            &self.requests,
            &self.retries,
            &self.connect_failures,
            &self.timeouts,
        ] {
            c.set(0);
        }
        for c in &self.responses {
            c.set(0);
        }
    }

    /// Counts a response by its status class.
    #[inline]
    pub fn response(&self, status: u16) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.responses[class].add(1);
    }
}

/// One worker's counters.
#[derive(Debug)]
pub struct WorkerMetrics {
    /// Open client connections (a gauge).
    pub open: Counter,
    /// Idle pooled target connections (a gauge, set every tick).
    pub pooled: Counter,
    /// Parked client connections (a gauge, set every tick).
    pub parked: Counter,
    /// Per target slot.
    pub targets: Box<[TargetCounters]>,
    /// Retries the retry budget refused.
    pub retries_refused: Counter,
    /// Retries the budget allows now (a gauge, set every tick).
    pub retry_budget: Counter,
    /// Request bodies streamed, not buffered for replay, because
    /// `--max-replay-memory` was spent.
    pub replay_refused: Counter,
    /// Bytes of request bodies held for replay (a gauge, set every tick).
    pub replay_bytes: Counter,
    /// Requests answered 408 because their body missed
    /// `--client-body-timeout`.
    pub body_timeouts: Counter,
    /// Request header fields dropped for an `_` in their name.
    pub underscored_dropped: Counter,
    /// Connections closed for a missing or invalid PROXY header.
    pub proxy_header_refused: Counter,
    /// Response body bytes moved from target to client by splice(2).
    pub spliced_bytes: Counter,
    /// TLS handshakes done on the TLS port: full, resumed.
    pub tls_handshakes: [Counter; 2],
    /// TLS handshakes failed, by `HandshakeFailure` in order.
    pub tls_failures: [Counter; 7],
    /// Request durations: per bucket (not cumulative; the last is +Inf).
    durations: [Counter; BUCKETS_US.len() + 1],
    duration_sum_us: Counter,
}

impl WorkerMetrics {
    fn new(slots: usize) -> WorkerMetrics {
        WorkerMetrics {
            open: Counter::default(),
            pooled: Counter::default(),
            parked: Counter::default(),
            targets: (0..slots).map(|_| TargetCounters::default()).collect(),
            retries_refused: Counter::default(),
            retry_budget: Counter::default(),
            replay_refused: Counter::default(),
            replay_bytes: Counter::default(),
            body_timeouts: Counter::default(),
            underscored_dropped: Counter::default(),
            proxy_header_refused: Counter::default(),
            spliced_bytes: Counter::default(),
            tls_handshakes: Default::default(),
            tls_failures: Default::default(),
            durations: Default::default(),
            duration_sum_us: Counter::default(),
        }
    }

    /// Records how long one request took, from its head to the end of its
    /// answer.
    #[inline]
    pub fn observe(&self, micros: u64) {
        let bucket = BUCKETS_US
            .iter()
            .position(|&le| micros <= le)
            .unwrap_or(BUCKETS_US.len());
        self.durations[bucket].add(1);
        self.duration_sum_us.add(micros);
    }

    /// Starts a slot's counters afresh for the target of generation `gen`.
    pub fn reset_target(&self, slot: usize, gen: u64) {
        self.targets[slot].reset();
        self.targets[slot].in_flight.set(0);
        self.targets[slot].gen.set(gen);
    }
}

/// Every worker's counters, and when the process started.
pub struct Metrics {
    workers: Box<[CachePadded<WorkerMetrics>]>,
    started: Instant,
    started_unix: f64,
}

impl Metrics {
    pub fn new(workers: usize, slots: usize) -> Metrics {
        Metrics {
            workers: (0..workers)
                .map(|_| CachePadded::new(WorkerMetrics::new(slots)))
                .collect(),
            started: Instant::now(),
            started_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }

    /// Requests at the target of generation `gen` in `slot` now, all
    /// workers together.
    pub fn in_flight(&self, slot: usize, gen: u64) -> u64 {
        self.workers
            .iter()
            .filter(|w| w.targets[slot].gen.get() == gen)
            .map(|w| w.targets[slot].in_flight.get())
            .fold(0, u64::wrapping_add)
    }

    /// Worker `id`'s counters.
    pub fn worker(&self, id: usize) -> &WorkerMetrics {
        &self.workers[id]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_go_down_too() {
        let c = Counter::default();
        c.add(2);
        c.sub(1);
        assert_eq!(c.get(), 1);
    }
}
