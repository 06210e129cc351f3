//! Passive ejection: a target is taken out for a while, whatever its checks
//! say: `--eject-time` the first time, doubling for each ejection in a row
//! up to a cap. One step of "in a row" is forgiven for each `--eject-time`
//! the target then spends without being ejected.

use std::time::{Duration, Instant};

/// Doublings stop here (2^20 times the base is past any cap worth having).
const MAX_DOUBLINGS: u32 = 20;

/// One target's ejections: the one under way, and those before it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ejections {
    /// Ejected until then.
    until: Option<Instant>,
    /// Ejections in a row (after forgiveness).
    in_a_row: u32,
    /// When the last ejection ended (or will end, while it lasts).
    last_end: Option<Instant>,
}

impl Ejections {
    pub fn is_ejected(&self) -> bool {
        self.until.is_some()
    }

    /// Ejects the target at `now`; returns for how long. Already ejected:
    /// `None` (a second worker reaching its threshold changes nothing).
    pub fn eject(&mut self, now: Instant, base: Duration, max: Duration) -> Option<Duration> {
        if self.until.is_some() {
            return None;
        }
        if let Some(last_end) = self.last_end {
            let calm = now.saturating_duration_since(last_end);
            self.in_a_row = self.in_a_row.saturating_sub(forgiven(calm, base));
        }
        let length = length(self.in_a_row, base, max);
        self.in_a_row = self.in_a_row.saturating_add(1);
        self.until = Some(now + length);
        self.last_end = Some(now + length);
        Some(length)
    }

    /// Ends the ejection if its time is up at `now`; true when it ended.
    pub fn end(&mut self, now: Instant) -> bool {
        match self.until {
            Some(until) if until <= now => {
                self.until = None;
                true
            }
            _ => false,
        }
    }
}

/// How long an ejection lasts after `before` ejections in a row: `base`,
/// doubled for each, up to `max` (or `base`, when that is longer).
pub fn length(before: u32, base: Duration, max: Duration) -> Duration {
    base.saturating_mul(1 << before.min(MAX_DOUBLINGS))
        .min(max.max(base))
}

/// Ejections in a row forgiven after `calm` without one: one per `base`.
pub fn forgiven(calm: Duration, base: Duration) -> u32 {
    let steps = calm.as_nanos() / base.as_nanos().max(1);
    steps.min(u32::MAX as u128) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default cap (`config::defaults::MAX_EJECTION`).
    const MAX_EJECTION: Duration = Duration::from_secs(300);

    const BASE: Duration = Duration::from_secs(10);

    #[test]
    fn lengths_double_up_to_the_cap() {
        let lengths: Vec<u64> = (0..7)
            .map(|n| length(n, BASE, MAX_EJECTION).as_secs())
            .collect();
        assert_eq!(lengths, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(length(u32::MAX, BASE, MAX_EJECTION), MAX_EJECTION);
    }

    #[test]
    fn a_base_longer_than_the_cap_wins() {
        let base = Duration::from_secs(600);
        assert_eq!(length(3, base, MAX_EJECTION), base);
    }

    #[test]
    fn one_step_is_forgiven_per_base_of_calm() {
        assert_eq!(forgiven(Duration::from_secs(9), BASE), 0);
        assert_eq!(forgiven(Duration::from_secs(10), BASE), 1);
        assert_eq!(forgiven(Duration::from_secs(55), BASE), 5);
        assert_eq!(forgiven(Duration::from_secs(10), Duration::ZERO), u32::MAX);
    }

    #[test]
    fn ejections_grow_and_are_forgiven() {
        let t0 = Instant::now();
        let mut e = Ejections::default();
        assert_eq!(e.eject(t0, BASE, MAX_EJECTION), Some(BASE));
        assert_eq!(e.eject(t0, BASE, MAX_EJECTION), None, "already ejected");
        assert!(!e.end(t0 + Duration::from_secs(9)));
        let t1 = t0 + BASE;
        assert!(e.end(t1));
        assert!(!e.is_ejected());
        assert_eq!(e.eject(t1, BASE, MAX_EJECTION), Some(2 * BASE));
        let t2 = t1 + 2 * BASE;
        e.end(t2);
        assert_eq!(e.eject(t2, BASE, MAX_EJECTION), Some(4 * BASE));
        // Long calm after it: forgiven back to the base.
        let t3 = t2 + 4 * BASE + 5 * BASE;
        e.end(t3);
        assert_eq!(e.eject(t3, BASE, MAX_EJECTION), Some(BASE));
    }

    #[test]
    fn ejections_are_capped() {
        let mut now = Instant::now();
        let mut e = Ejections::default();
        let mut last = Duration::ZERO;
        for _ in 0..30 {
            last = e.eject(now, BASE, MAX_EJECTION).unwrap();
            now += last;
            e.end(now);
        }
        assert_eq!(last, MAX_EJECTION);
    }
}
