//! Counters for `/metrics` (on with `--admin`). Each worker writes only its
//! own counters, with plain atomic loads and stores (no read-modify-write,
//! no shared cache line); the admin endpoint sums them when asked, and
//! renders the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam_utils::CachePadded;

use crate::targets::Targets;

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
    /// Idle pooled target connections (a gauge).
    pub pooled: Counter,
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
    /// Request durations: per bucket (not cumulative; the last is +Inf).
    durations: [Counter; BUCKETS_US.len() + 1],
    duration_sum_us: Counter,
}

impl WorkerMetrics {
    fn new(slots: usize) -> WorkerMetrics {
        WorkerMetrics {
            open: Counter::default(),
            pooled: Counter::default(),
            targets: (0..slots).map(|_| TargetCounters::default()).collect(),
            retries_refused: Counter::default(),
            retry_budget: Counter::default(),
            replay_refused: Counter::default(),
            replay_bytes: Counter::default(),
            body_timeouts: Counter::default(),
            underscored_dropped: Counter::default(),
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

/// A counter summed over the workers: name, help, and where it is.
type Total = (&'static str, &'static str, fn(&WorkerMetrics) -> &Counter);

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

    /// The Prometheus text exposition of every counter, summed over workers.
    pub fn render(&self, targets: &Targets) -> String {
        let mut out = String::with_capacity(4096);
        let (_, slots) = targets.snapshot();
        let named: Vec<(usize, String, u64)> = slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i, escape(&s.target.name), s.gen)))
            .collect();
        let sum = |f: &dyn Fn(&WorkerMetrics) -> u64| -> u64 {
            self.workers
                .iter()
                .map(|w| f(w))
                .fold(0u64, u64::wrapping_add)
        };
        // Sums a slot's counter over the workers that count for its
        // current target.
        let sum_slot = |i: usize, gen: u64, f: &dyn Fn(&TargetCounters) -> u64| -> u64 {
            self.workers
                .iter()
                .filter(|w| w.targets[i].gen.get() == gen)
                .map(|w| f(&w.targets[i]))
                .fold(0u64, u64::wrapping_add)
        };

        let per_target: [Family; 5] = [
            (
                "lb_target_requests_total",
                "counter",
                "Requests sent to the target, retries included.",
                |t| &t.requests,
            ),
            (
                "lb_target_retries_total",
                "counter",
                "Requests on the target that were retried on another target.",
                |t| &t.retries,
            ),
            (
                "lb_target_connect_failures_total",
                "counter",
                "Connections to the target that failed.",
                |t| &t.connect_failures,
            ),
            (
                "lb_target_timeouts_total",
                "counter",
                "Connects or responses of the target that missed their deadline.",
                |t| &t.timeouts,
            ),
            (
                "lb_target_in_flight",
                "gauge",
                "Requests at the target now.",
                |t| &t.in_flight,
            ),
        ];
        for (name, kind, help, field) in per_target {
            header(&mut out, name, kind, help);
            for (i, target, gen) in &named {
                let v = sum_slot(*i, *gen, &|t| field(t).get());
                let _ = writeln!(out, "{name}{{target=\"{target}\"}} {v}");
            }
        }
        header(
            &mut out,
            "lb_target_responses_total",
            "counter",
            "Responses from the target, by status class.",
        );
        for (i, target, gen) in &named {
            for (class, label) in ["1xx", "2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
                let v = sum_slot(*i, *gen, &|t| t.responses[class].get());
                let _ = writeln!(
                    out,
                    "lb_target_responses_total{{target=\"{target}\",class=\"{label}\"}} {v}"
                );
            }
        }
        header(
            &mut out,
            "lb_target_healthy",
            "gauge",
            "1 when the target passes its health checks, else 0.",
        );
        for (i, target, _) in &named {
            let v = u8::from(targets.health.is_healthy(*i));
            let _ = writeln!(out, "lb_target_healthy{{target=\"{target}\"}} {v}");
        }
        header(
            &mut out,
            "lb_target_health_transitions_total",
            "counter",
            "Changes of the target's health.",
        );
        for (i, target, _) in &named {
            let v = targets.transitions(*i);
            let _ = writeln!(
                out,
                "lb_target_health_transitions_total{{target=\"{target}\"}} {v}"
            );
        }

        header(
            &mut out,
            "lb_target_ejected",
            "gauge",
            "1 while the target is ejected for failing live traffic, else 0.",
        );
        for (i, target, _) in &named {
            let v = u8::from(targets.standing(*i) == crate::health::Standing::Ejected);
            let _ = writeln!(out, "lb_target_ejected{{target=\"{target}\"}} {v}");
        }
        header(
            &mut out,
            "lb_target_ejections_total",
            "counter",
            "Times the target was ejected for failing live traffic.",
        );
        for (i, target, _) in &named {
            let v = targets.ejections(*i);
            let _ = writeln!(out, "lb_target_ejections_total{{target=\"{target}\"}} {v}");
        }
        header(
            &mut out,
            "lb_retry_budget_refused_total",
            "counter",
            "Retries the retry budget refused: the failure went to the client.",
        );
        let _ = writeln!(
            out,
            "lb_retry_budget_refused_total {}",
            sum(&|w| w.retries_refused.get())
        );
        header(
            &mut out,
            "lb_worker_retry_budget_available",
            "gauge",
            "Retries the worker's retry budget allows now.",
        );
        for (id, w) in self.workers.iter().enumerate() {
            let _ = writeln!(
                out,
                "lb_worker_retry_budget_available{{worker=\"{id}\"}} {}",
                w.retry_budget.get()
            );
        }

        let totals: [Total; 3] = [
            (
                "lb_replay_budget_refused_total",
                "Request bodies streamed, not buffered for replay, because the worker's \
                 --max-replay-memory was spent.",
                |w| &w.replay_refused,
            ),
            (
                "lb_client_body_timeouts_total",
                "Requests answered 408 because their body missed --client-body-timeout.",
                |w| &w.body_timeouts,
            ),
            (
                "lb_dropped_underscore_fields_total",
                "Request header fields dropped for an underscore in their name.",
                |w| &w.underscored_dropped,
            ),
        ];
        for (name, help, field) in totals {
            header(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", sum(&|w| field(w).get()));
        }
        header(
            &mut out,
            "lb_worker_replay_bytes",
            "gauge",
            "Bytes of request bodies the worker holds buffered for replay.",
        );
        for (id, w) in self.workers.iter().enumerate() {
            let _ = writeln!(
                out,
                "lb_worker_replay_bytes{{worker=\"{id}\"}} {}",
                w.replay_bytes.get()
            );
        }

        header(
            &mut out,
            "lb_worker_open_connections",
            "gauge",
            "Open client connections on the worker.",
        );
        for (id, w) in self.workers.iter().enumerate() {
            let _ = writeln!(
                out,
                "lb_worker_open_connections{{worker=\"{id}\"}} {}",
                w.open.get()
            );
        }
        header(
            &mut out,
            "lb_worker_pooled_connections",
            "gauge",
            "Idle pooled target connections on the worker.",
        );
        for (id, w) in self.workers.iter().enumerate() {
            let _ = writeln!(
                out,
                "lb_worker_pooled_connections{{worker=\"{id}\"}} {}",
                w.pooled.get()
            );
        }

        header(
            &mut out,
            "lb_request_duration_seconds",
            "histogram",
            "Time from a request's head to the end of its answer.",
        );
        let mut cumulative = 0u64;
        for (b, le) in BUCKETS_US.iter().enumerate() {
            cumulative += sum(&|w| w.durations[b].get());
            let _ = writeln!(
                out,
                "lb_request_duration_seconds_bucket{{le=\"{}\"}} {cumulative}",
                *le as f64 / 1e6
            );
        }
        cumulative += sum(&|w| w.durations[BUCKETS_US.len()].get());
        let _ = writeln!(
            out,
            "lb_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let total_us = sum(&|w| w.duration_sum_us.get());
        let _ = writeln!(
            out,
            "lb_request_duration_seconds_sum {}",
            total_us as f64 / 1e6
        );
        let _ = writeln!(out, "lb_request_duration_seconds_count {cumulative}");

        header(
            &mut out,
            "lb_uptime_seconds",
            "gauge",
            "Seconds since the balancer started.",
        );
        let _ = writeln!(
            out,
            "lb_uptime_seconds {:.3}",
            self.started.elapsed().as_secs_f64()
        );
        header(
            &mut out,
            "lb_start_time_seconds",
            "gauge",
            "Start time of the balancer, in seconds since the Unix epoch.",
        );
        let _ = writeln!(out, "lb_start_time_seconds {:.3}", self.started_unix);
        header(
            &mut out,
            "lb_build_info",
            "gauge",
            "The balancer's version, as a label; always 1.",
        );
        let _ = writeln!(
            out,
            "lb_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        out
    }
}

/// A per-target metric: name, type, help, and which counter it reads.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&TargetCounters) -> &Counter,
);

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::Target;

    fn targets() -> Targets {
        let t = |port: u16| Target {
            name: format!("127.0.0.1:{port}"),
            addr: ([127, 0, 0, 1], port).into(),
            weight: 1,
        };
        Targets::new(vec![t(1), t(2)], vec![], 4)
    }

    #[test]
    fn sums_workers_and_renders_every_family() {
        let m = Metrics::new(2, 4);
        let (_, slots) = targets().snapshot();
        for w in 0..2 {
            for (i, slot) in slots.iter().enumerate() {
                if let Some(slot) = slot {
                    m.worker(w).reset_target(i, slot.gen);
                }
            }
        }
        m.worker(0).targets[0].requests.add(3);
        m.worker(1).targets[0].requests.add(4);
        m.worker(1).targets[1].response(503);
        m.worker(0).observe(700);
        m.worker(1).observe(20_000_000);
        let text = m.render(&targets());
        assert!(
            text.contains("lb_target_requests_total{target=\"127.0.0.1:1\"} 7\n"),
            "{text}"
        );
        assert!(
            text.contains("lb_target_responses_total{target=\"127.0.0.1:2\",class=\"5xx\"} 1\n")
        );
        assert!(text.contains("lb_request_duration_seconds_bucket{le=\"0.0005\"} 0\n"));
        assert!(text.contains("lb_request_duration_seconds_bucket{le=\"0.001\"} 1\n"));
        assert!(text.contains("lb_request_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("lb_request_duration_seconds_count 2\n"));
        assert!(text.contains("lb_build_info{version="));
        // Empty slots have no series.
        assert_eq!(text.matches("lb_target_healthy{").count(), 2);
    }

    #[test]
    fn gauges_go_down_too() {
        let c = Counter::default();
        c.add(2);
        c.sub(1);
        assert_eq!(c.get(), 1);
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
