//! A worker's picker: the chosen algorithm over the health bitmap, with the
//! fallback when nothing is healthy and the slow-start filter, plus what
//! the worker learns per target from live traffic (requests in flight,
//! latency). Owned by one worker; pure code over the bitmaps.

use super::algorithm::{Learnt, Selector};
use super::{next_healthy, Algorithm, HealthBitmap, PeakEwma, DEFAULT_DECAY_NS};

/// A new target's latency estimate for p2c-ewma, before its first answer:
/// 1 ms, so that it is neither shunned nor flooded.
const INITIAL_LATENCY_NS: f64 = 1e6;

/// The shared state a pick reads.
pub struct Candidates<'a> {
    /// Targets in rotation.
    pub health: &'a HealthBitmap,
    /// Targets whose last health check passed: picked from when no target
    /// is in rotation, so that ejections and 500s never empty the set.
    pub fallback: &'a HealthBitmap,
    /// With `--slow-start`: the targets in slow start, and each one's share
    /// of its traffic now (0 to 1).
    pub slow_start: Option<(&'a HealthBitmap, &'a dyn Fn(usize) -> f64)>,
}

/// One worker's selection state.
///
/// Slow start weighs a target by its share: with `n` targets, one of them
/// at share `s` gets `s / (n - 1 + s)` of the picks.
pub struct Picker {
    /// The chosen algorithm's state.
    selector: Selector,
    /// Targets' weights, as this worker last saw the set.
    weights: Vec<u32>,
    /// Latency estimates per target (p2c-ewma only), and the clock they
    /// are read with: nanoseconds since this picker was made.
    ewma: Vec<PeakEwma>,
    now_ns: u64,
    /// Requests in flight per target, on this worker.
    in_flight: Vec<u32>,
    /// Slow start: turns earned towards the next pick, per target.
    slow_credit: Vec<f64>,
}

impl Picker {
    /// A picker for `slots` targets; `start` spreads workers' first picks.
    pub fn new(algorithm: Algorithm, slots: usize, start: usize) -> Picker {
        Picker {
            selector: algorithm.selector(slots, start),
            weights: vec![1; slots],
            ewma: vec![PeakEwma::new(INITIAL_LATENCY_NS, 0); slots],
            now_ns: 0,
            in_flight: vec![0; slots],
            slow_credit: vec![0.0; slots],
        }
    }

    /// Forgets what was learnt about a slot (another target took it).
    pub fn reset(&mut self, slot: usize) {
        self.slow_credit[slot] = 0.0;
        self.selector.reset(slot);
        self.ewma[slot] = PeakEwma::new(INITIAL_LATENCY_NS, self.now_ns);
    }

    /// Sets a slot's weight (its target joined, or a reload changed it).
    pub fn set_weight(&mut self, slot: usize, weight: u32) {
        self.weights[slot] = weight.max(1);
    }

    /// Moves the latency clock on (nanoseconds since the picker was made;
    /// p2c-ewma only).
    #[inline]
    pub fn set_clock(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
    }

    /// Records how long `slot` took to start its answer.
    pub fn observe_latency(&mut self, slot: usize, rtt_ns: u64) {
        self.ewma[slot].observe(rtt_ns, self.now_ns, DEFAULT_DECAY_NS);
    }

    /// The target for the next attempt, not one of `tried` (which is left
    /// as it was given).
    #[inline]
    pub fn pick(&mut self, c: &Candidates<'_>, tried: &mut Vec<u32>) -> Option<usize> {
        match self.pick_in(c.health, tried) {
            Some(t) => match c.slow_start {
                Some(slow) if slow.0.is_healthy(t) => {
                    Some(self.slow_pick(t, c.health, slow, tried))
                }
                _ => Some(t),
            },
            None => self.pick_in(c.fallback, tried),
        }
    }

    /// Whether `pick` would find a target among `health`, or else
    /// `fallback`, that is not in `tried` (whatever the algorithm).
    pub fn has_candidate(health: &HealthBitmap, fallback: &HealthBitmap, tried: &[u32]) -> bool {
        next_healthy(health, 0, tried).is_some() || next_healthy(fallback, 0, tried).is_some()
    }

    #[inline]
    fn pick_in(&mut self, set: &HealthBitmap, tried: &[u32]) -> Option<usize> {
        let learnt = Learnt {
            weights: &self.weights,
            in_flight: &self.in_flight,
            ewma: &self.ewma,
            now_ns: self.now_ns,
        };
        self.selector.pick(set, &learnt, tried)
    }

    /// `first` is in slow start: it takes its turn only as often as its
    /// share says (credit accrues by the share each time its turn comes);
    /// otherwise the turn passes to the next pick. When every candidate
    /// passes, `first` takes it after all.
    #[cold]
    fn slow_pick(
        &mut self,
        first: usize,
        health: &HealthBitmap,
        (slow, share): (&HealthBitmap, &dyn Fn(usize) -> f64),
        tried: &mut Vec<u32>,
    ) -> usize {
        let given = tried.len();
        let mut t = first;
        let chosen = loop {
            if !slow.is_healthy(t) {
                break t;
            }
            let credit = &mut self.slow_credit[t];
            *credit += share(t);
            if *credit >= 1.0 {
                *credit -= 1.0;
                break t;
            }
            tried.push(t as u32);
            match self.pick_in(health, tried) {
                Some(next) => t = next,
                None => break first,
            }
        };
        tried.truncate(given);
        chosen
    }

    /// A request to `slot` started.
    #[inline]
    pub fn started(&mut self, slot: usize) {
        self.in_flight[slot] += 1;
    }

    /// A request to `slot` ended.
    #[inline]
    pub fn finished(&mut self, slot: usize) {
        self.in_flight[slot] = self.in_flight[slot].saturating_sub(1);
    }

    /// Requests in flight to `slot` on this worker.
    #[cfg(test)]
    fn in_flight(&self, slot: usize) -> u32 {
        self.in_flight[slot]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falls_back_to_targets_that_passed_their_last_check() {
        let health = HealthBitmap::with_healthy(3, &[]);
        let fallback = HealthBitmap::with_healthy(3, &[2]);
        let c = Candidates {
            health: &health,
            fallback: &fallback,
            slow_start: None,
        };
        let mut p = Picker::new(Algorithm::RoundRobin, 3, 0);
        let mut tried = Vec::new();
        assert_eq!(p.pick(&c, &mut tried), Some(2));
        assert!(Picker::has_candidate(&health, &fallback, &tried));
        tried.push(2);
        assert_eq!(p.pick(&c, &mut tried), None);
        assert!(!Picker::has_candidate(&health, &fallback, &tried));
    }

    #[test]
    fn healthy_targets_come_before_the_fallback() {
        let health = HealthBitmap::with_healthy(3, &[1]);
        let fallback = HealthBitmap::with_healthy(3, &[0, 2]);
        let c = Candidates {
            health: &health,
            fallback: &fallback,
            slow_start: None,
        };
        let mut p = Picker::new(Algorithm::RoundRobin, 3, 0);
        assert!((0..10).all(|_| p.pick(&c, &mut Vec::new()) == Some(1)));
    }

    fn slow_start_share(share: f64, picks: usize) -> usize {
        let health = HealthBitmap::with_healthy(2, &[0, 1]);
        let slow = HealthBitmap::with_healthy(2, &[1]);
        let f = move |_| share;
        let c = Candidates {
            health: &health,
            fallback: &health,
            slow_start: Some((&slow, &f)),
        };
        let mut p = Picker::new(Algorithm::RoundRobin, 2, 0);
        let mut tried = Vec::new();
        let to_slow = (0..picks)
            .filter(|_| p.pick(&c, &mut tried) == Some(1))
            .count();
        assert!(tried.is_empty());
        to_slow
    }

    #[test]
    fn a_target_in_slow_start_gets_its_share() {
        // At a quarter share the slow one weighs a quarter of the other:
        // 0.25 / 1.25 of the picks.
        let n = slow_start_share(0.25, 1000);
        assert!((195..=205).contains(&n), "{n}");
        assert_eq!(slow_start_share(0.0, 1000), 0);
        assert_eq!(slow_start_share(1.0, 1000), 500);
    }

    #[test]
    fn a_target_alone_in_slow_start_still_serves() {
        let health = HealthBitmap::with_healthy(2, &[1]);
        let f = |_| 0.0;
        let c = Candidates {
            health: &health,
            fallback: &health,
            slow_start: Some((&health, &f)),
        };
        let mut p = Picker::new(Algorithm::RoundRobin, 2, 0);
        assert_eq!(p.pick(&c, &mut Vec::new()), Some(1));
    }

    #[test]
    fn counts_in_flight() {
        let mut p = Picker::new(Algorithm::RoundRobin, 2, 0);
        p.started(1);
        p.started(1);
        p.finished(1);
        assert_eq!(p.in_flight(1), 1);
        p.finished(1);
        p.finished(1);
        assert_eq!(p.in_flight(1), 0, "never below zero");
    }
}
