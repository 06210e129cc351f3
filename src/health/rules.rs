//! The numbers the health rules run on, as the flags set them.

use std::time::Duration;

use super::slow_start;

/// Rise and fall, ejection times and slow start: every knob of the health
/// rules, in one value (`Shared::new` fills it from the flags).
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// `--rise`: passing checks in a row that bring a degraded target back.
    pub rise: u32,
    /// `--fall`: failing checks in a row that take a healthy target out.
    pub fall: u32,
    /// `--eject-time`: how long a first ejection lasts.
    pub eject_base: Duration,
    /// The longest an ejection lasts (unless `eject_base` is longer).
    pub eject_max: Duration,
    /// `--slow-start`: how long a returning target takes to get its full
    /// share; `None` when it gets it at once.
    pub slow_start: Option<Duration>,
}

impl Rules {
    /// The share of its traffic a target gets `since_rejoin` after it came
    /// back in slow start: 1 (full) when slow start is off.
    pub fn slow_start_share(&self, since_rejoin: Duration) -> f64 {
        match self.slow_start {
            Some(length) => slow_start::share(since_rejoin, length),
            None => 1.0,
        }
    }

    /// Whether a slow start begun `since_rejoin` ago is over (full share).
    pub fn slow_start_over(&self, since_rejoin: Duration) -> bool {
        self.slow_start_share(since_rejoin) >= 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules with the flags' defaults (`config::defaults::rules`).
    const DEFAULT: Rules = Rules {
        rise: 2,
        fall: 3,
        eject_base: Duration::from_secs(10),
        eject_max: Duration::from_secs(300),
        slow_start: None,
    };

    #[test]
    fn without_slow_start_the_share_is_full_at_once() {
        let r = DEFAULT;
        assert_eq!(r.slow_start_share(Duration::ZERO), 1.0);
        assert!(r.slow_start_over(Duration::ZERO));
    }

    #[test]
    fn a_slow_start_is_over_at_full_share() {
        let r = Rules {
            slow_start: Some(Duration::from_secs(10)),
            ..DEFAULT
        };
        assert_eq!(r.slow_start_share(Duration::from_secs(5)), 0.5);
        assert!(!r.slow_start_over(Duration::from_millis(9_999)));
        assert!(r.slow_start_over(Duration::from_secs(10)));
    }
}
