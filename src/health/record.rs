//! One target's health record: its checks (rise and fall) and ejections,
//! and what each event means for its bits (in rotation, fallback, slow
//! start). `Targets` keeps one per slot and writes the bits it is told to.

use std::time::{Duration, Instant};

use super::ejection::Ejections;
use super::rise_fall::RiseFall;
use super::Rules;

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

/// A move in or out of rotation (the target's bit in the health bitmap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Into rotation; in slow start (its share growing from 0) when
    /// `slow_start`.
    Join { slow_start: bool },
    /// Out of rotation.
    Leave,
}

/// What a health check means for a target's bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterCheck {
    /// It was the target's first check.
    pub first: bool,
    /// Whether the target is to be in rotation now.
    pub in_rotation: bool,
    /// The check passed: the target is a fallback candidate (picked from
    /// when no target is in rotation), whatever rise, fall and ejection say.
    pub fallback: bool,
    /// The move to make, when its bit (as read before the check) is wrong.
    pub rotation: Option<Rotation>,
}

/// What a health check changed, as the prober logs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    /// The target's first check: it is in rotation or not, as it said.
    First(bool),
    /// It went into rotation (`true`) or out of it (`false`).
    Changed(bool),
    /// Nothing changed.
    Same,
}

impl AfterCheck {
    /// The outcome, given whether the move changed the bit (another worker
    /// may have cleared it meanwhile).
    pub fn outcome(&self, changed: bool) -> CheckOutcome {
        match (self.first, changed) {
            (true, _) => CheckOutcome::First(self.in_rotation),
            (false, true) => CheckOutcome::Changed(self.in_rotation),
            (false, false) => CheckOutcome::Same,
        }
    }
}

/// Where a target goes when its ejection is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EjectionOver {
    /// Its checks pass: back into rotation (this move is always a join).
    Back(Rotation),
    /// Its checks fail: it stays out, degraded, until they pass `rise` times.
    Degraded,
}

/// One target's health record. Lives behind the target table's lock: only
/// the prober, an ejecting worker and worker 0's housekeeping touch it.
#[derive(Debug, Clone, Default)]
pub struct HealthRecord {
    /// Joined the set after start-up (a reload added it): its first passing
    /// check starts a slow start, like a return does.
    joined_late: bool,
    checks: RiseFall,
    ejections: Ejections,
}

impl HealthRecord {
    /// A fresh record; `joined_late` when a reload added the target.
    pub fn new(joined_late: bool) -> HealthRecord {
        HealthRecord {
            joined_late,
            ..HealthRecord::default()
        }
    }

    /// Whether the target should be in rotation (its bit set): its checks
    /// say healthy and it is not ejected.
    pub fn in_rotation(&self) -> bool {
        self.checks.is_healthy() && !self.ejections.is_ejected()
    }

    /// Whether it has had a health check.
    pub fn is_checked(&self) -> bool {
        self.checks.is_checked()
    }

    pub fn is_ejected(&self) -> bool {
        self.ejections.is_ejected()
    }

    /// How the target stands, given whether its bit is set now.
    pub fn standing(&self, bit: bool) -> Standing {
        match (self.ejections.is_ejected(), bit) {
            (true, _) => Standing::Ejected,
            (false, true) => Standing::Healthy,
            (false, false) => Standing::Degraded,
        }
    }

    /// Records a health check that `passed`. `bit` is the target's bit
    /// before it: clear while the target is neither ejected nor new means
    /// live traffic degraded it, and it must pass `rise` checks from now on.
    pub fn record_check(&mut self, passed: bool, bit: bool, rules: &Rules) -> AfterCheck {
        let first = !self.checks.is_checked();
        let degraded_by_traffic = !bit && !self.ejections.is_ejected();
        self.checks
            .record(passed, degraded_by_traffic, rules.rise, rules.fall);
        let in_rotation = self.in_rotation();
        // A target that returns, or that a reload added, slow-starts; one
        // found healthy at start-up gets its full share at once.
        let returning = !first || self.joined_late;
        let rotation = match (bit, in_rotation) {
            (false, true) => Some(Rotation::Join {
                slow_start: returning && rules.slow_start.is_some(),
            }),
            (true, false) => Some(Rotation::Leave),
            _ => None,
        };
        AfterCheck {
            first,
            in_rotation,
            fallback: passed,
            rotation,
        }
    }

    /// Ejects the target at `now` (out of rotation whatever its checks
    /// say); returns for how long. `None` when it is ejected already.
    pub fn eject(&mut self, now: Instant, rules: &Rules) -> Option<Duration> {
        self.ejections.eject(now, rules.eject_base, rules.eject_max)
    }

    /// Ends the ejection if its time is up at `now`: where the target goes,
    /// or `None` when there was nothing to end.
    pub fn end_ejection(&mut self, now: Instant, rules: &Rules) -> Option<EjectionOver> {
        if !self.ejections.end(now) {
            return None;
        }
        Some(if self.in_rotation() {
            EjectionOver::Back(Rotation::Join {
                slow_start: rules.slow_start.is_some(),
            })
        } else {
            EjectionOver::Degraded
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        rise: 2,
        fall: 3,
        eject_base: Duration::from_secs(10),
        eject_max: Duration::from_secs(300),
        slow_start: None,
    };

    const SLOW: Rules = Rules {
        slow_start: Some(Duration::from_secs(30)),
        ..RULES
    };

    /// Feeds checks, keeping the bit as `Targets` would; returns the
    /// rotation after each.
    fn run(r: &mut HealthRecord, checks: &[bool]) -> Vec<bool> {
        checks
            .iter()
            .map(|&passed| {
                let bit = r.in_rotation();
                r.record_check(passed, bit, &RULES).in_rotation
            })
            .collect()
    }

    #[test]
    fn the_first_check_decides_and_says_so() {
        let mut r = HealthRecord::default();
        let after = r.record_check(true, false, &RULES);
        assert_eq!(
            after,
            AfterCheck {
                first: true,
                in_rotation: true,
                fallback: true,
                rotation: Some(Rotation::Join { slow_start: false }),
            }
        );
        assert_eq!(after.outcome(true), CheckOutcome::First(true));
        let mut r = HealthRecord::default();
        let after = r.record_check(false, false, &RULES);
        assert_eq!((after.in_rotation, after.rotation), (false, None));
        assert_eq!(after.outcome(false), CheckOutcome::First(false));
    }

    #[test]
    fn falls_after_three_and_rises_after_two() {
        let mut r = HealthRecord::default();
        let seen = run(&mut r, &[true, false, false, false, true, true]);
        assert_eq!(seen, [true, true, true, false, false, true]);
    }

    #[test]
    fn the_fallback_is_the_last_check_whatever_rise_and_fall_say() {
        let mut r = HealthRecord::default();
        run(&mut r, &[true]);
        let after = r.record_check(false, true, &RULES);
        assert!(after.in_rotation && !after.fallback);
        let mut r = HealthRecord::default();
        run(&mut r, &[false]);
        let after = r.record_check(true, false, &RULES);
        assert!(!after.in_rotation && after.fallback);
    }

    #[test]
    fn a_target_degraded_by_traffic_needs_rise_checks() {
        let mut r = HealthRecord::default();
        run(&mut r, &[true]);
        // A worker cleared the bit after a 500.
        let after = r.record_check(true, false, &RULES);
        assert_eq!((after.in_rotation, after.rotation), (false, None));
        let after = r.record_check(true, false, &RULES);
        assert_eq!(after.rotation, Some(Rotation::Join { slow_start: false }));
        assert_eq!(after.outcome(true), CheckOutcome::Changed(true));
        assert_eq!(after.outcome(false), CheckOutcome::Same);
    }

    #[test]
    fn a_falling_target_leaves() {
        let mut r = HealthRecord::default();
        run(&mut r, &[true, false, false]);
        let after = r.record_check(false, true, &RULES);
        assert_eq!(after.rotation, Some(Rotation::Leave));
        assert_eq!(after.outcome(true), CheckOutcome::Changed(false));
    }

    #[test]
    fn returning_and_late_targets_slow_start_but_not_those_found_at_start() {
        let mut r = HealthRecord::default();
        let after = r.record_check(true, false, &SLOW);
        assert_eq!(after.rotation, Some(Rotation::Join { slow_start: false }));
        let mut r = HealthRecord::new(true);
        let after = r.record_check(true, false, &SLOW);
        assert_eq!(after.rotation, Some(Rotation::Join { slow_start: true }));
        let mut r = HealthRecord::default();
        r.record_check(false, false, &SLOW);
        r.record_check(true, false, &SLOW);
        let after = r.record_check(true, false, &SLOW);
        assert_eq!(after.rotation, Some(Rotation::Join { slow_start: true }));
    }

    #[test]
    fn an_ejection_takes_the_target_out_until_it_ends() {
        let t0 = Instant::now();
        let mut r = HealthRecord::default();
        run(&mut r, &[true]);
        assert_eq!(r.eject(t0, &RULES), Some(Duration::from_secs(10)));
        assert_eq!(r.eject(t0, &RULES), None, "already ejected");
        assert!(!r.in_rotation());
        assert_eq!(r.standing(false), Standing::Ejected);
        // Its checks pass meanwhile: no move while it is ejected.
        let after = r.record_check(true, false, &RULES);
        assert_eq!((after.in_rotation, after.rotation), (false, None));
        assert_eq!(r.end_ejection(t0 + Duration::from_secs(9), &RULES), None);
        assert_eq!(
            r.end_ejection(t0 + Duration::from_secs(10), &SLOW),
            Some(EjectionOver::Back(Rotation::Join { slow_start: true }))
        );
        assert_eq!(r.standing(true), Standing::Healthy);
    }

    #[test]
    fn an_ejected_target_whose_checks_fail_stays_out() {
        let t0 = Instant::now();
        let mut r = HealthRecord::default();
        run(&mut r, &[true]);
        r.eject(t0, &RULES);
        run(&mut r, &[false, false, false]);
        assert_eq!(
            r.end_ejection(t0 + Duration::from_secs(10), &RULES),
            Some(EjectionOver::Degraded)
        );
        assert_eq!(r.standing(false), Standing::Degraded);
    }
}
