//! The doors through which the request path talks to its worker: pick a
//! target, count an attempt in and out, record what an attempt came to,
//! ask for a retry, wait a backoff, take and give back pooled connections.
//! Plus the worker's side of failure handling: failures in a row towards
//! ejection, and the end of ejections (worker 0).

use std::time::{Duration, Instant};

use super::Worker;
use crate::balance::{Candidates, Picker};
use crate::exchange::Policy;
use crate::health::Outcome;
use crate::log::human;
use crate::metrics::TargetCounters;
use crate::retry::backoff;
use crate::upstream::Upstream;

impl Worker {
    /// The retry settings the exchange machine applies.
    pub fn policy(&self) -> Policy {
        let config = self.config();
        Policy {
            retries: config.retries,
            retry_non_idempotent: config.retry_non_idempotent,
        }
    }

    /// The target for the next attempt of a request that already went to
    /// `tried`.
    #[inline]
    pub fn pick(&self, tried: &mut Vec<u32>) -> Option<usize> {
        let targets = &self.shared.targets;
        let config = self.config();
        let now = self.coarse_now();
        let mut picker = self.picker.borrow_mut();
        if config.algorithm.times_latency() {
            picker.set_clock(self.clock.nanos_since_start(now));
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

    /// Whether a request that went to `tried` may go to another target
    /// after `from` failed: one is left to pick, and the retry budget gives
    /// a retry (asked last: asking takes it).
    pub fn grant_retry(&self, from: usize, tried: &[u32]) -> bool {
        let targets = &self.shared.targets;
        let granted =
            Picker::has_candidate(&targets.health, &targets.passed, tried) && self.try_retry();
        if let (true, Some(m)) = (granted, self.metrics) {
            m.targets[from].retries.add(1);
        }
        granted
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
        picker.set_clock(self.clock.nanos_since_start(now));
        picker.observe_latency(slot, now.saturating_duration_since(sent).as_nanos() as u64);
    }

    /// An attempt on `slot` starts: counted as a request to it, and in
    /// flight (for the metrics, and for least-connections).
    #[inline]
    pub fn attempt_started(&self, slot: usize) {
        if let Some(m) = self.metrics {
            m.targets[slot].requests.add(1);
            m.targets[slot].in_flight.add(1);
        }
        if self.config().algorithm.counts_in_flight() {
            self.picker.borrow_mut().started(slot);
        }
    }

    /// The attempt on `slot` is over.
    #[inline]
    pub fn attempt_finished(&self, slot: usize) {
        if let Some(m) = self.metrics {
            m.targets[slot].in_flight.sub(1);
        }
        if self.config().algorithm.counts_in_flight() {
            self.picker.borrow_mut().finished(slot);
        }
    }

    /// What an attempt on `slot` came to: counted in the metrics, and
    /// applied to the target's health as `Outcome` says (failures in a row
    /// towards ejection, out of rotation at once, pooled connections closed).
    pub fn record(&self, slot: usize, outcome: Outcome) {
        if let Some(m) = self.metrics {
            count_outcome(&m.targets[slot], outcome);
        }
        if outcome.is_failure() {
            self.target_failed(slot, outcome);
        } else {
            self.target_succeeded(slot);
        }
        if outcome.degrades() {
            self.degrade(slot, outcome);
        }
        if outcome.ends_pooled() {
            self.pool.borrow_mut().clear(slot);
        }
    }

    /// A pooled connection to `slot` on which nothing arrived while it was
    /// idle, if any; `checked` adds a peek (see `Pool::take`).
    pub fn take_pooled(&self, slot: usize, checked: bool) -> Option<Upstream> {
        let gen = self.slot_gen(slot);
        let now = self.coarse_now();
        self.pool.borrow_mut().take(slot, gen, now, checked)
    }

    /// Gives back a connection to `slot` that can carry another request.
    pub fn pool_upstream(&self, slot: usize, conn: Upstream) {
        let gen = self.slot_gen(slot);
        let now = self.coarse_now();
        self.pool.borrow_mut().put(slot, gen, conn, now);
    }

    /// `slot` answered below 500: its failures in a row start again.
    #[inline]
    fn target_succeeded(&self, slot: usize) {
        self.failure_streaks.borrow_mut().succeeded(slot);
    }

    /// `slot` failed a request: after `--eject-after` failures in a row on
    /// this worker it is ejected.
    fn target_failed(&self, slot: usize, why: Outcome) {
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

    /// Counts a request in the retry budget.
    #[inline]
    pub fn record_request(&self) {
        self.budget.borrow_mut().record_request(self.clock.second());
    }

    /// Takes a retry from the budget; false (and counted) when it is spent.
    fn try_retry(&self) -> bool {
        let granted = self.budget.borrow_mut().try_retry(self.clock.second());
        if !granted {
            if let Some(m) = self.metrics {
                m.retries_refused.add(1);
            }
        }
        granted
    }

    /// Retries still allowed by the budget.
    pub fn retries_available(&self) -> u64 {
        self.budget.borrow_mut().available(self.clock.second())
    }

    /// The wait before retry number `retry` of a request.
    pub fn backoff(&self, retry: usize) -> Duration {
        backoff(
            retry,
            self.shared.config.retry_backoff,
            &mut self.rng.borrow_mut(),
        )
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

/// Counts an attempt's outcome in its target's counters.
fn count_outcome(m: &TargetCounters, outcome: Outcome) {
    match outcome {
        Outcome::Answered(status) => m.response(status),
        Outcome::Refused | Outcome::ConnectFailed => m.connect_failures.add(1),
        Outcome::ConnectTimeout => {
            m.connect_failures.add(1);
            m.timeouts.add(1);
        }
        Outcome::ResponseTimeout => m.timeouts.add(1),
        Outcome::NoResponse | Outcome::InvalidResponse | Outcome::Broken => {}
    }
}
