//! The Prometheus text exposition of [`Metrics`]: every family summed over
//! the workers, section by section, in a fixed order (scrapes and tests
//! compare it line by line).

use crate::tls::HandshakeFailure;
use std::fmt::Write;

use crossbeam_utils::CachePadded;

use super::{Counter, Metrics, TargetCounters, WorkerMetrics, BUCKETS_US};
use crate::health::Standing;
use crate::targets::Targets;

/// A per-target family read from the workers' counters: name, type, help,
/// and which counter.
type CounterFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&TargetCounters) -> &Counter,
);

/// Summed over the workers that count for the slot's current target.
const TARGET_COUNTERS: [CounterFamily; 5] = [
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

/// A per-target family read from the shared target set: name, type, help,
/// and its value for a slot.
type StandingFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Targets, usize) -> u64,
);

const TARGET_STANDING: [StandingFamily; 4] = [
    (
        "lb_target_healthy",
        "gauge",
        "1 when the target passes its health checks, else 0.",
        |t, i| u64::from(t.health.is_healthy(i)),
    ),
    (
        "lb_target_health_transitions_total",
        "counter",
        "Changes of the target's health.",
        |t, i| t.transitions(i),
    ),
    (
        "lb_target_ejected",
        "gauge",
        "1 while the target is ejected for failing live traffic, else 0.",
        |t, i| u64::from(t.standing(i) == Standing::Ejected),
    ),
    (
        "lb_target_ejections_total",
        "counter",
        "Times the target was ejected for failing live traffic.",
        |t, i| t.ejections(i),
    ),
];

/// A family of the workers' own counters: one counter summed over the
/// workers, or a gauge with one series per worker.
enum WorkerFamily {
    Total(&'static str, &'static str, fn(&WorkerMetrics) -> &Counter),
    PerWorker(&'static str, &'static str, fn(&WorkerMetrics) -> &Counter),
}

const WORKER_FAMILIES: [WorkerFamily; 11] = [
    WorkerFamily::Total(
        "lb_retry_budget_refused_total",
        "Retries the retry budget refused: the failure went to the client.",
        |w| &w.retries_refused,
    ),
    WorkerFamily::PerWorker(
        "lb_worker_retry_budget_available",
        "Retries the worker's retry budget allows now.",
        |w| &w.retry_budget,
    ),
    WorkerFamily::Total(
        "lb_replay_budget_refused_total",
        "Request bodies streamed, not buffered for replay, because the worker's \
         --max-replay-memory was spent.",
        |w| &w.replay_refused,
    ),
    WorkerFamily::Total(
        "lb_client_body_timeouts_total",
        "Requests answered 408 because their body missed --client-body-timeout.",
        |w| &w.body_timeouts,
    ),
    WorkerFamily::Total(
        "lb_dropped_underscore_fields_total",
        "Request header fields dropped for an underscore in their name.",
        |w| &w.underscored_dropped,
    ),
    WorkerFamily::Total(
        "lb_proxy_header_refused_total",
        "Connections closed for a missing or invalid PROXY protocol header \
         (--proxy-protocol).",
        |w| &w.proxy_header_refused,
    ),
    WorkerFamily::Total(
        "lb_spliced_bytes_total",
        "Response body bytes moved from a target to a client without a copy \
         (splice(2), plain TCP on both sides).",
        |w| &w.spliced_bytes,
    ),
    WorkerFamily::PerWorker(
        "lb_worker_replay_bytes",
        "Bytes of request bodies the worker holds buffered for replay.",
        |w| &w.replay_bytes,
    ),
    WorkerFamily::PerWorker(
        "lb_worker_open_connections",
        "Open client connections on the worker.",
        |w| &w.open,
    ),
    WorkerFamily::PerWorker(
        "lb_worker_pooled_connections",
        "Idle pooled target connections on the worker.",
        |w| &w.pooled,
    ),
    WorkerFamily::PerWorker(
        "lb_worker_parked_connections",
        "Client connections idle between requests for longer than 5 ms, \
         parked: holding no buffer (updated every 100 ms).",
        |w| &w.parked,
    ),
];

/// The status classes of `lb_target_responses_total`, in counter order.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

impl Metrics {
    /// The Prometheus text exposition of every counter, summed over workers.
    pub fn render(&self, targets: &Targets) -> String {
        let mut out = String::with_capacity(4096);
        let r = Render {
            workers: &self.workers,
            named: named(targets),
        };
        r.target_counters(&mut out);
        r.target_responses(&mut out);
        r.target_standing(&mut out, targets);
        r.worker_families(&mut out);
        r.tls(&mut out);
        r.durations(&mut out);
        process(&mut out, self);
        out
    }
}

/// A target with series: its slot, its name escaped for a label, and the
/// generation of the slot's target.
struct Named {
    slot: usize,
    label: String,
    gen: u64,
}

/// The targets in their slots, in slot order; empty slots have no series.
fn named(targets: &Targets) -> Vec<Named> {
    let (_, slots) = targets.snapshot();
    slots
        .iter()
        .enumerate()
        .filter_map(|(slot, s)| {
            let s = s.as_ref()?;
            Some(Named {
                slot,
                label: escape(&s.target.name),
                gen: s.gen,
            })
        })
        .collect()
}

/// What an exposition is made from: the workers' counters and the targets
/// that have series.
struct Render<'m> {
    workers: &'m [CachePadded<WorkerMetrics>],
    named: Vec<Named>,
}

impl Render<'_> {
    /// A counter summed over every worker.
    fn sum(&self, f: impl Fn(&WorkerMetrics) -> u64) -> u64 {
        self.workers
            .iter()
            .map(|w| f(w))
            .fold(0u64, u64::wrapping_add)
    }

    /// A slot's counter summed over the workers that count for its current
    /// target.
    fn sum_slot(&self, t: &Named, f: impl Fn(&TargetCounters) -> u64) -> u64 {
        self.workers
            .iter()
            .filter(|w| w.targets[t.slot].gen.get() == t.gen)
            .map(|w| f(&w.targets[t.slot]))
            .fold(0u64, u64::wrapping_add)
    }

    /// A family with one series per target.
    fn per_target(
        &self,
        out: &mut String,
        (name, kind, help): (&str, &str, &str),
        value: impl Fn(&Named) -> u64,
    ) {
        header(out, name, kind, help);
        for t in &self.named {
            let _ = writeln!(out, "{name}{{target=\"{}\"}} {}", t.label, value(t));
        }
    }

    fn target_counters(&self, out: &mut String) {
        for (name, kind, help, field) in TARGET_COUNTERS {
            self.per_target(out, (name, kind, help), |t| {
                self.sum_slot(t, |c| field(c).get())
            });
        }
    }

    fn target_responses(&self, out: &mut String) {
        header(
            out,
            "lb_target_responses_total",
            "counter",
            "Responses from the target, by status class.",
        );
        for t in &self.named {
            for (class, label) in CLASSES.iter().enumerate() {
                let v = self.sum_slot(t, |c| c.responses[class].get());
                let _ = writeln!(
                    out,
                    "lb_target_responses_total{{target=\"{}\",class=\"{label}\"}} {v}",
                    t.label
                );
            }
        }
    }

    fn target_standing(&self, out: &mut String, targets: &Targets) {
        for (name, kind, help, value) in TARGET_STANDING {
            self.per_target(out, (name, kind, help), |t| value(targets, t.slot));
        }
    }

    fn worker_families(&self, out: &mut String) {
        for family in WORKER_FAMILIES {
            match family {
                WorkerFamily::Total(name, help, field) => {
                    header(out, name, "counter", help);
                    let _ = writeln!(out, "{name} {}", self.sum(|w| field(w).get()));
                }
                WorkerFamily::PerWorker(name, help, field) => {
                    header(out, name, "gauge", help);
                    for (id, w) in self.workers.iter().enumerate() {
                        let _ = writeln!(out, "{name}{{worker=\"{id}\"}} {}", field(w).get());
                    }
                }
            }
        }
    }

    /// TLS handshakes with clients: done (full or resumed), and failed by
    /// reason.
    fn tls(&self, out: &mut String) {
        let name = "lb_tls_handshakes_total";
        header(out, name, "counter", "TLS handshakes done with clients.");
        for (i, resumed) in ["false", "true"].iter().enumerate() {
            let v = self.sum(|w| w.tls_handshakes[i].get());
            let _ = writeln!(out, "{name}{{resumed=\"{resumed}\"}} {v}");
        }
        let name = "lb_tls_handshake_failures_total";
        header(
            out,
            name,
            "counter",
            "TLS handshakes with clients that failed, by reason.",
        );
        for reason in HandshakeFailure::ALL {
            let v = self.sum(|w| w.tls_failures[reason.index()].get());
            let _ = writeln!(out, "{name}{{reason=\"{}\"}} {v}", reason.as_str());
        }
    }

    /// The request-duration histogram: cumulative buckets, sum, count.
    fn durations(&self, out: &mut String) {
        header(
            out,
            "lb_request_duration_seconds",
            "histogram",
            "Time from a request's head to the end of its answer.",
        );
        let mut cumulative = 0u64;
        for (b, le) in BUCKETS_US.iter().enumerate() {
            cumulative += self.sum(|w| w.durations[b].get());
            let _ = writeln!(
                out,
                "lb_request_duration_seconds_bucket{{le=\"{}\"}} {cumulative}",
                *le as f64 / 1e6
            );
        }
        cumulative += self.sum(|w| w.durations[BUCKETS_US.len()].get());
        let total_us = self.sum(|w| w.duration_sum_us.get());
        let _ = write!(
            out,
            "lb_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}\n\
             lb_request_duration_seconds_sum {}\n\
             lb_request_duration_seconds_count {cumulative}\n",
            total_us as f64 / 1e6
        );
    }
}

/// Uptime, start time and version.
fn process(out: &mut String, m: &Metrics) {
    header(
        out,
        "lb_uptime_seconds",
        "gauge",
        "Seconds since the balancer started.",
    );
    let uptime = m.started.elapsed().as_secs_f64();
    let _ = writeln!(out, "lb_uptime_seconds {uptime:.3}");
    header(
        out,
        "lb_start_time_seconds",
        "gauge",
        "Start time of the balancer, in seconds since the Unix epoch.",
    );
    let _ = writeln!(out, "lb_start_time_seconds {:.3}", m.started_unix);
    header(
        out,
        "lb_build_info",
        "gauge",
        "The balancer's version, as a label; always 1.",
    );
    let version = env!("CARGO_PKG_VERSION");
    let _ = writeln!(out, "lb_build_info{{version=\"{version}\"}} 1");
}

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
            tls: None,
            proxy_v2: false,
            source: None,
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
    fn families_come_in_a_fixed_order() {
        let text = Metrics::new(1, 4).render(&targets());
        let types: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        assert_eq!(
            types,
            [
                "lb_target_requests_total counter",
                "lb_target_retries_total counter",
                "lb_target_connect_failures_total counter",
                "lb_target_timeouts_total counter",
                "lb_target_in_flight gauge",
                "lb_target_responses_total counter",
                "lb_target_healthy gauge",
                "lb_target_health_transitions_total counter",
                "lb_target_ejected gauge",
                "lb_target_ejections_total counter",
                "lb_retry_budget_refused_total counter",
                "lb_worker_retry_budget_available gauge",
                "lb_replay_budget_refused_total counter",
                "lb_client_body_timeouts_total counter",
                "lb_dropped_underscore_fields_total counter",
                "lb_proxy_header_refused_total counter",
                "lb_spliced_bytes_total counter",
                "lb_worker_replay_bytes gauge",
                "lb_worker_open_connections gauge",
                "lb_worker_pooled_connections gauge",
                "lb_worker_parked_connections gauge",
                "lb_tls_handshakes_total counter",
                "lb_tls_handshake_failures_total counter",
                "lb_request_duration_seconds histogram",
                "lb_uptime_seconds gauge",
                "lb_start_time_seconds gauge",
                "lb_build_info gauge",
            ]
        );
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
