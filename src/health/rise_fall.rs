//! Rise and fall: health checks move a target between healthy and degraded
//! only after `rise` passing or `fall` failing checks in a row, so that a
//! flapping target keeps its state. Its first check decides at once.

/// The verdict of a target's health checks, with rise and fall applied.
#[derive(Debug, Clone, Copy, Default)]
pub struct RiseFall {
    /// Had at least one check.
    checked: bool,
    /// The checks' verdict.
    healthy: bool,
    /// Passing, or failing, checks in a row (one of them is 0).
    passes: u32,
    fails: u32,
}

impl RiseFall {
    /// Whether the target has had a check.
    pub fn is_checked(&self) -> bool {
        self.checked
    }

    /// The checks' verdict: healthy.
    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// Records a check that `passed`. `degraded_by_traffic`: live traffic
    /// took the target out since the last check; a healthy verdict is then
    /// dropped, and it takes `rise` passing checks from now on to return.
    /// Returns the verdict after it.
    pub fn record(
        &mut self,
        passed: bool,
        degraded_by_traffic: bool,
        rise: u32,
        fall: u32,
    ) -> bool {
        if self.healthy && degraded_by_traffic {
            self.healthy = false;
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
            self.healthy = passed;
        } else if self.healthy && self.fails >= fall {
            self.healthy = false;
        } else if !self.healthy && self.passes >= rise {
            self.healthy = true;
        }
        self.healthy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RISE: u32 = 2;
    const FALL: u32 = 3;

    /// Feeds checks, nothing else degrading the target; returns the
    /// verdict after each.
    fn run(r: &mut RiseFall, checks: &[bool]) -> Vec<bool> {
        checks
            .iter()
            .map(|&passed| r.record(passed, false, RISE, FALL))
            .collect()
    }

    #[test]
    fn the_first_check_decides() {
        assert_eq!(run(&mut RiseFall::default(), &[true]), [true]);
        assert_eq!(run(&mut RiseFall::default(), &[false]), [false]);
    }

    #[test]
    fn falls_after_three_and_rises_after_two() {
        let seen = run(
            &mut RiseFall::default(),
            &[true, false, false, false, true, true],
        );
        assert_eq!(seen, [true, true, true, false, false, true]);
    }

    #[test]
    fn a_flapping_target_keeps_its_state() {
        let pattern: Vec<bool> = (0..40).map(|i| i % 2 == 0).collect();
        assert!(run(&mut RiseFall::default(), &pattern).iter().all(|&h| h));
        let pattern: Vec<bool> = (0..40).map(|i| i % 2 == 1).collect();
        assert!(run(&mut RiseFall::default(), &pattern).iter().all(|&h| !h));
    }

    #[test]
    fn a_target_degraded_by_traffic_needs_rise_checks() {
        let mut r = RiseFall::default();
        run(&mut r, &[true]);
        assert!(!r.record(true, true, RISE, FALL));
        assert!(r.record(true, false, RISE, FALL));
    }
}
