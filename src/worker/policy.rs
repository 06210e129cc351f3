//! A worker's side of target selection and failure handling: picking with
//! the configured algorithm, counting failures in a row towards ejection,
//! ending ejections (worker 0), and the retry budget and backoff.

use std::time::{Duration, Instant};

use super::{Worker, HOUSEKEEPING};
use crate::balance::{Candidates, Picker};
use crate::log::human;
use crate::retry::backoff;

/// Why a target failed a request, for ejection and its log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Status(u16),
    Refused,
    ConnectFailed,
    ConnectTimeout,
    NoResponse,
    ResponseTimeout,
    InvalidResponse,
    Broken,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status(s) => write!(f, "answered {s}"),
            Failure::Refused => f.write_str("connection refused"),
            Failure::ConnectFailed => f.write_str("connect failed"),
            Failure::ConnectTimeout => f.write_str("connect timed out"),
            Failure::NoResponse => f.write_str("closed without an answer"),
            Failure::ResponseTimeout => f.write_str("response timed out"),
            Failure::InvalidResponse => f.write_str("invalid response"),
            Failure::Broken => f.write_str("connection failed mid-response"),
        }
    }
}

impl Worker {
    /// The target for the next attempt of a request that already went to
    /// `tried`.
    #[inline]
    pub fn pick(&self, tried: &mut Vec<u32>) -> Option<usize> {
        let targets = &self.shared.targets;
        let config = self.config();
        let now = self.coarse_now();
        let mut picker = self.picker.borrow_mut();
        if config.algorithm.times_latency() {
            picker.set_clock(self.nanos_since_start(now));
        }
        let share = |slot| targets.slow_start_share(slot, targets.since_epoch(now));
        let candidates = Candidates {
            health: &targets.health,
            fallback: &targets.passed,
            slow_start: config
                .slow_start
                .map(|_| (&targets.slow_start, &share as &dyn Fn(usize) -> f64)),
        };
        picker.pick(&candidates, tried)
    }

    /// Whether another target than those in `tried` could be picked.
    pub fn has_candidate(&self, tried: &[u32]) -> bool {
        let targets = &self.shared.targets;
        Picker::has_candidate(&targets.health, &targets.passed, tried)
    }

    /// Nanoseconds from the worker's start to `now`.
    fn nanos_since_start(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_nanos() as u64
    }

    /// When an attempt's request is sent, for its latency (p2c-ewma only:
    /// no clock is read otherwise).
    #[inline]
    pub fn latency_start(&self) -> Option<Instant> {
        self.config().algorithm.times_latency().then(Instant::now)
    }

    /// The response head of an attempt sent at `sent` to `slot` arrived.
    pub fn observe_latency(&self, slot: usize, sent: Instant) {
        let now = Instant::now();
        let mut picker = self.picker.borrow_mut();
        picker.set_clock(self.nanos_since_start(now));
        picker.observe_latency(slot, now.saturating_duration_since(sent).as_nanos() as u64);
    }

    /// An attempt on `slot` starts (counted for least-connections).
    #[inline]
    pub fn attempt_started(&self, slot: usize) {
        if self.config().algorithm.counts_in_flight() {
            self.picker.borrow_mut().started(slot);
        }
    }

    #[inline]
    pub fn attempt_finished(&self, slot: usize) {
        if self.config().algorithm.counts_in_flight() {
            self.picker.borrow_mut().finished(slot);
        }
    }

    /// `slot` answered below 500: its failures in a row start again.
    #[inline]
    pub fn target_succeeded(&self, slot: usize) {
        self.failure_streaks.borrow_mut().succeeded(slot);
    }

    /// `slot` failed a request: after `--eject-after` failures in a row on
    /// this worker it is ejected.
    pub fn target_failed(&self, slot: usize, why: Failure) {
        let Some(count) = self.failure_streaks.borrow_mut().failed(slot) else {
            return;
        };
        let gen = self.slot_gen(slot);
        let Some(ejection) = self.shared.targets.eject(slot, gen, Instant::now()) else {
            return;
        };
        if let Some(s) = self.target(slot) {
            let from = if ejection.was_healthy {
                "healthy"
            } else {
                "degraded"
            };
            log!(
                warn,
                "health: {} {from} -> ejected for {} ({count} failures in a row, last: {why})",
                s.target.name,
                human(ejection.length)
            );
        }
    }

    /// Worker 0, each tick: ends the ejections whose time is up, and the
    /// slow starts that are over.
    pub(super) fn end_ejections(&self, now: Instant) {
        let targets = &self.shared.targets;
        self.refresh_targets();
        for (slot, back) in targets.end_ejections(now) {
            if let Some(s) = self.target(slot) {
                if back {
                    log!(
                        info,
                        "health: {} ejected -> healthy (ejection over)",
                        s.target.name
                    );
                } else {
                    log!(
                        info,
                        "health: {} ejected -> degraded (ejection over; health checks failing)",
                        s.target.name
                    );
                }
            }
        }
        targets.end_slow_starts();
    }

    /// The current second of this worker's clock (for the retry budget).
    #[inline]
    fn second(&self) -> u64 {
        self.ticks.get() / (1000 / HOUSEKEEPING.as_millis() as u64)
    }

    /// Counts a request in the retry budget.
    #[inline]
    pub fn record_request(&self) {
        self.budget.borrow_mut().record_request(self.second());
    }

    /// Takes a retry from the budget; false (and counted) when it is spent.
    pub fn try_retry(&self) -> bool {
        let granted = self.budget.borrow_mut().try_retry(self.second());
        if !granted {
            if let Some(m) = self.metrics {
                m.retries_refused.add(1);
            }
        }
        granted
    }

    /// Retries still allowed by the budget.
    pub fn retries_available(&self) -> u64 {
        self.budget.borrow_mut().available(self.second())
    }

    /// The wait before retry number `retry` of a request.
    pub fn backoff(&self, retry: usize) -> Duration {
        backoff(
            retry,
            self.shared.config.retry_backoff,
            &mut self.rng.borrow_mut(),
        )
    }
}
