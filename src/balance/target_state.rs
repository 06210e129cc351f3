//! What the balancer believes about one target, from its health checks and
//! from passive ejection: the rules, without clocks or sockets.
//!
//! - Health checks move a target between healthy and degraded only after
//!   `rise` passing or `fall` failing checks in a row; its first check
//!   decides at once.
//! - Live traffic may degrade a target at once (a 500, a refused connect):
//!   the bit in the health bitmap is cleared by the worker that saw it, and
//!   the next check notices and starts counting `rise` afresh.
//! - Passive ejection takes a target out for a while, whatever its checks
//!   say: `base` for the first ejection, doubling for each ejection in a row
//!   up to `max`. One step of "in a row" is forgiven for each `base` the
//!   target then spends in rotation without being ejected.

use std::time::{Duration, Instant};

/// How a target stands, as the admin endpoint shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Healthy,
    Degraded,
    Ejected,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Healthy => "healthy",
            Standing::Degraded => "degraded",
            Standing::Ejected => "ejected",
        }
    }
}

/// Rise and fall thresholds, and the ejection times.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub rise: u32,
    pub fall: u32,
    pub eject_base: Duration,
    pub eject_max: Duration,
}

/// One target's health record. Lives behind the target table's lock: only
/// the prober, an ejecting worker and worker 0's housekeeping touch it.
#[derive(Debug, Clone, Default)]
pub struct TargetState {
    /// Joined the set after start-up (a reload added it): its first passing
    /// check starts a slow start, like a return does.
    pub joined_late: bool,
    /// Had at least one health check.
    checked: bool,
    /// The verdict of the checks (with rise and fall applied).
    checks_healthy: bool,
    passes: u32,
    fails: u32,
    /// Ejected until then.
    ejected_until: Option<Instant>,
    /// Ejections in a row (after forgiveness).
    ejections: u32,
    /// When the last ejection ended (or began, while it lasts).
    last_ejection: Option<Instant>,
}

impl TargetState {
    /// Whether the target should be in rotation (its bit set).
    pub fn in_rotation(&self) -> bool {
        self.checks_healthy && self.ejected_until.is_none()
    }

    /// Whether it has had a health check.
    pub fn is_checked(&self) -> bool {
        self.checked
    }

    pub fn is_ejected(&self) -> bool {
        self.ejected_until.is_some()
    }

    /// How the target stands, given whether its bit is set now.
    pub fn standing(&self, bit: bool) -> Standing {
        match (self.ejected_until, bit) {
            (Some(_), _) => Standing::Ejected,
            (None, true) => Standing::Healthy,
            (None, false) => Standing::Degraded,
        }
    }

    /// Records a health check. `bit` is the target's bit before it: when
    /// the checks had it healthy but the bit is clear (and it is not
    /// ejected), live traffic degraded it, and it must pass `rise` checks
    /// from now on. Returns whether it should be in rotation after it.
    pub fn record_check(&mut self, passed: bool, bit: bool, t: &Thresholds) -> bool {
        if self.checks_healthy && !bit && self.ejected_until.is_none() {
            self.checks_healthy = false;
            self.passes = 0;
        }
        if passed {
            self.passes = self.passes.saturating_add(1);
            self.fails = 0;
        } else {
            self.fails = self.fails.saturating_add(1);
            self.passes = 0;
        }
        if !self.checked {
            self.checked = true;
            self.checks_healthy = passed;
        } else if self.checks_healthy && self.fails >= t.fall {
            self.checks_healthy = false;
        } else if !self.checks_healthy && self.passes >= t.rise {
            self.checks_healthy = true;
        }
        self.in_rotation()
    }

    /// Ejects the target at `now`; returns for how long. Already ejected:
    /// `None` (a second worker reaching its threshold changes nothing).
    pub fn eject(&mut self, now: Instant, t: &Thresholds) -> Option<Duration> {
        if self.ejected_until.is_some() {
            return None;
        }
        if let Some(last) = self.last_ejection {
            let calm = now.saturating_duration_since(last);
            let forgiven = calm.as_nanos() / t.eject_base.as_nanos().max(1);
            self.ejections = self
                .ejections
                .saturating_sub(forgiven.min(u32::MAX as u128) as u32);
        }
        let doubling = self.ejections.min(20);
        self.ejections = self.ejections.saturating_add(1);
        let length = t
            .eject_base
            .saturating_mul(1 << doubling)
            .min(t.eject_max.max(t.eject_base));
        self.ejected_until = Some(now + length);
        self.last_ejection = Some(now + length);
        Some(length)
    }

    /// Ends the ejection if its time is up at `now`: `Some(in rotation)`
    /// when it ended, `None` when there was nothing to end.
    pub fn end_ejection(&mut self, now: Instant) -> Option<bool> {
        match self.ejected_until {
            Some(until) if until <= now => {
                self.ejected_until = None;
                Some(self.in_rotation())
            }
            _ => None,
        }
    }
}

/// A duration as an operator writes it: `300ms`, `10s`, `1.5s`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        let s = format!("{:.3}", d.as_secs_f64());
        format!("{}s", s.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        rise: 2,
        fall: 3,
        eject_base: Duration::from_secs(10),
        eject_max: Duration::from_secs(300),
    };

    /// Feeds checks, keeping the bit as the prober would; returns the
    /// rotation after each.
    fn run(s: &mut TargetState, checks: &[bool]) -> Vec<bool> {
        checks
            .iter()
            .map(|&passed| {
                let bit = s.in_rotation();
                s.record_check(passed, bit, &T)
            })
            .collect()
    }

    #[test]
    fn the_first_check_decides() {
        let mut s = TargetState::default();
        assert_eq!(run(&mut s, &[true]), [true]);
        let mut s = TargetState::default();
        assert_eq!(run(&mut s, &[false]), [false]);
    }

    #[test]
    fn falls_after_three_and_rises_after_two() {
        let mut s = TargetState::default();
        let seen = run(&mut s, &[true, false, false, false, true, true]);
        assert_eq!(seen, [true, true, true, false, false, true]);
    }

    #[test]
    fn a_flapping_target_keeps_its_state() {
        let mut s = TargetState::default();
        let pattern: Vec<bool> = (0..40).map(|i| i % 2 == 0).collect();
        assert!(run(&mut s, &pattern).iter().all(|&r| r));
        let mut s = TargetState::default();
        let pattern: Vec<bool> = (0..40).map(|i| i % 2 == 1).collect();
        assert!(run(&mut s, &pattern).iter().all(|&r| !r));
    }

    #[test]
    fn a_target_degraded_by_traffic_needs_rise_checks() {
        let mut s = TargetState::default();
        run(&mut s, &[true]);
        // A worker cleared the bit after a 500.
        assert!(!s.record_check(true, false, &T));
        assert!(s.record_check(true, false, &T));
    }

    #[test]
    fn ejections_grow_and_are_forgiven() {
        let t0 = Instant::now();
        let mut s = TargetState::default();
        run(&mut s, &[true]);
        assert_eq!(s.eject(t0, &T), Some(Duration::from_secs(10)));
        assert_eq!(s.eject(t0, &T), None, "already ejected");
        assert!(!s.in_rotation());
        assert_eq!(s.standing(false), Standing::Ejected);
        assert_eq!(s.end_ejection(t0 + Duration::from_secs(9)), None);
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(s.end_ejection(t1), Some(true));
        assert_eq!(s.eject(t1, &T), Some(Duration::from_secs(20)));
        let t2 = t1 + Duration::from_secs(20);
        s.end_ejection(t2);
        assert_eq!(s.eject(t2, &T), Some(Duration::from_secs(40)));
        // Long calm after it: forgiven back to the base.
        let t3 = t2 + Duration::from_secs(40 + 10 * 5);
        s.end_ejection(t3);
        assert_eq!(s.eject(t3, &T), Some(Duration::from_secs(10)));
    }

    #[test]
    fn ejections_are_capped() {
        let mut now = Instant::now();
        let mut s = TargetState::default();
        let mut last = Duration::ZERO;
        for _ in 0..30 {
            last = s.eject(now, &T).unwrap();
            now += last;
            s.end_ejection(now);
        }
        assert_eq!(last, Duration::from_secs(300));
    }

    #[test]
    fn an_ejected_target_whose_checks_fail_stays_out() {
        let t0 = Instant::now();
        let mut s = TargetState::default();
        run(&mut s, &[true]);
        s.eject(t0, &T);
        run(&mut s, &[false, false, false]);
        assert_eq!(s.end_ejection(t0 + Duration::from_secs(10)), Some(false));
        assert_eq!(s.standing(false), Standing::Degraded);
    }

    #[test]
    fn durations_read_like_flags() {
        assert_eq!(human(Duration::from_millis(300)), "300ms");
        assert_eq!(human(Duration::from_secs(10)), "10s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
    }
}
