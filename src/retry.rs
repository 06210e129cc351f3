//! Retry policy, without clocks or sockets: a per-worker retry budget (as
//! Finagle and Linkerd do it) and the jittered backoff between retries.
//!
//! The budget keeps ten one-second buckets of requests and retries. A retry
//! is allowed while the retries of the last ten seconds stay within
//! `floor × 10` plus `percent`% of the requests of those ten seconds: a
//! quiet worker may still retry a little, and a failing fleet sees at most
//! `percent`% more attempts instead of a retry storm.

use std::time::Duration;

use crate::balance::Rng;

/// Length of the budget's window, in one-second buckets.
const WINDOW: usize = 10;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    requests: u32,
    retries: u32,
}

/// One worker's retry budget.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    percent: u64,
    floor_per_sec: u64,
    buckets: [Bucket; WINDOW],
    /// The second the newest bucket counts.
    second: u64,
}

impl RetryBudget {
    /// Retries of up to `percent`% of requests, plus `floor_per_sec` a second.
    pub fn new(percent: u32, floor_per_sec: u32) -> RetryBudget {
        RetryBudget {
            percent: percent.into(),
            floor_per_sec: floor_per_sec.into(),
            buckets: [Bucket::default(); WINDOW],
            second: 0,
        }
    }

    /// Moves the window on to `now_sec`, emptying the buckets it passes.
    #[inline]
    fn roll(&mut self, now_sec: u64) -> &mut Bucket {
        if now_sec > self.second {
            let gap = (now_sec - self.second).min(WINDOW as u64);
            for k in 1..=gap {
                self.buckets[((self.second + k) % WINDOW as u64) as usize] = Bucket::default();
            }
            self.second = now_sec;
        }
        &mut self.buckets[(self.second % WINDOW as u64) as usize]
    }

    /// Counts a request (its first attempt) at second `now_sec`.
    #[inline]
    pub fn record_request(&mut self, now_sec: u64) {
        let bucket = self.roll(now_sec);
        bucket.requests = bucket.requests.saturating_add(1);
    }

    /// Retries still allowed at `now_sec`.
    pub fn available(&mut self, now_sec: u64) -> u64 {
        self.roll(now_sec);
        let (requests, retries) = self.buckets.iter().fold((0u64, 0u64), |(a, b), k| {
            (a + u64::from(k.requests), b + u64::from(k.retries))
        });
        let allowed = self.floor_per_sec * WINDOW as u64 + requests * self.percent / 100;
        allowed.saturating_sub(retries)
    }

    /// Takes one retry from the budget; false when it is spent.
    pub fn try_retry(&mut self, now_sec: u64) -> bool {
        if self.available(now_sec) == 0 {
            return false;
        }
        let bucket = self.roll(now_sec);
        bucket.retries = bucket.retries.saturating_add(1);
        true
    }
}

/// The wait before retry number `retry` (1 for the first retry) of a
/// request: none for the first, which goes to another target at once; then
/// between half and all of `base`, `2 × base`, `4 × base` ... (at most
/// `64 × base`), drawn at random so that retries do not march in step.
pub fn backoff(retry: usize, base: Duration, rng: &mut Rng) -> Duration {
    if retry <= 1 || base.is_zero() {
        return Duration::ZERO;
    }
    let ceiling = base.saturating_mul(1 << (retry - 2).min(6));
    ceiling / 2 + ceiling.mul_f64(0.5 * rng.unit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_percentage_of_requests() {
        let mut b = RetryBudget::new(20, 0);
        let mut granted = 0;
        for _ in 0..100 {
            b.record_request(5);
            granted += u32::from(b.try_retry(5));
        }
        assert_eq!(granted, 20);
        assert_eq!(b.available(5), 0);
    }

    #[test]
    fn the_floor_allows_retries_without_requests() {
        let mut b = RetryBudget::new(20, 10);
        assert_eq!(b.available(0), 100);
        let granted = (0..150).filter(|_| b.try_retry(0)).count();
        assert_eq!(granted, 100);
    }

    #[test]
    fn the_window_forgets_old_seconds() {
        let mut b = RetryBudget::new(50, 0);
        for _ in 0..10 {
            b.record_request(1);
        }
        assert!((0..5).all(|_| b.try_retry(1)));
        assert!(!b.try_retry(1));
        assert!(!b.try_retry(10), "second 1 is still in the window at 10");
        assert_eq!(b.available(11), 0, "requests and retries left together");
        b.record_request(11);
        b.record_request(11);
        assert!(b.try_retry(11));
    }

    #[test]
    fn no_budget_no_retries() {
        let mut b = RetryBudget::new(0, 0);
        b.record_request(0);
        assert!(!b.try_retry(0));
        let mut b = RetryBudget::new(100, 0);
        b.record_request(0);
        assert!(b.try_retry(0));
        assert!(!b.try_retry(0));
    }

    #[test]
    fn backoff_grows_with_jitter() {
        let mut rng = Rng::new(1);
        let base = Duration::from_millis(10);
        assert_eq!(backoff(1, base, &mut rng), Duration::ZERO);
        for _ in 0..100 {
            let d = backoff(2, base, &mut rng);
            assert!(d >= Duration::from_millis(5) && d <= base, "{d:?}");
            let d = backoff(4, base, &mut rng);
            assert!(d >= Duration::from_millis(20) && d <= base * 4, "{d:?}");
            assert!(backoff(50, base, &mut rng) <= base * 64);
        }
        assert_eq!(backoff(3, Duration::ZERO, &mut rng), Duration::ZERO);
    }
}
