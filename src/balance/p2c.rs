//! Power of two choices over peak-EWMA latency: draw two distinct candidates
//! at random and send the request to the cheaper, where cost is a latency
//! estimate that jumps up at once on a slow response and comes down slowly,
//! times the requests in flight. Slow or busy targets lose most draws without
//! any worker having to rank every target.

use super::round_robin::tried_mask;
use super::{HealthBitmap, Rng};

/// How fast a latency estimate forgets: the time constant of its decay
/// (10 s, as Linkerd).
pub const DEFAULT_DECAY_NS: f64 = 10e9;

/// Peak-EWMA latency estimate of one target on one worker.
#[derive(Clone, Copy, Debug)]
pub struct PeakEwma {
    estimate_ns: f64,
    stamp_ns: u64,
}

impl PeakEwma {
    /// `initial_ns`: the estimate before any observation (a new target is
    /// neither favoured nor shunned).
    pub fn new(initial_ns: f64, now_ns: u64) -> Self {
        PeakEwma {
            estimate_ns: initial_ns,
            stamp_ns: now_ns,
        }
    }

    /// Records a response latency. A latency above the estimate replaces it
    /// at once (peak); a lower one is blended in with weight
    /// w = exp(-elapsed_since_last_update / decay_ns) on the old estimate.
    pub fn observe(&mut self, rtt_ns: u64, now_ns: u64, decay_ns: f64) {
        let rtt = rtt_ns as f64;
        if rtt > self.estimate_ns {
            self.estimate_ns = rtt;
        } else {
            let kept = self.decay_since_stamp(now_ns, decay_ns);
            self.estimate_ns = self.estimate_ns * kept + rtt * (1.0 - kept);
        }
        self.stamp_ns = self.stamp_ns.max(now_ns);
    }

    /// Load: the estimate decayed towards zero for the time since the last
    /// update (so a target shunned for being slow is tried again
    /// eventually), times (in_flight + 1).
    pub fn cost(&self, now_ns: u64, decay_ns: f64, in_flight: u32) -> f64 {
        self.estimate_ns * self.decay_since_stamp(now_ns, decay_ns) * (f64::from(in_flight) + 1.0)
    }

    /// The share of the estimate still standing at `now_ns`:
    /// exp(-elapsed / decay_ns), 1 when no time has passed.
    #[inline]
    fn decay_since_stamp(&self, now_ns: u64, decay_ns: f64) -> f64 {
        debug_assert!(decay_ns > 0.0, "decay_ns must be positive");
        let elapsed = now_ns.saturating_sub(self.stamp_ns) as f64;
        (-elapsed / decay_ns).exp()
    }
}

/// A worker's power-of-two-choices state: its random number generator.
#[derive(Debug, Clone)]
pub struct P2c {
    rng: Rng,
}

impl P2c {
    /// A picker whose draws come from a generator seeded with `seed` (give
    /// each worker its own).
    pub fn new(seed: u64) -> Self {
        P2c {
            rng: Rng::new(seed),
        }
    }

    /// Two distinct candidates (healthy and not in `tried`) drawn uniformly
    /// at random; the one with the lower cost wins (a single candidate is
    /// returned as is). None when there is no candidate. `ewma` and
    /// `in_flight` must cover every slot of `health`.
    pub fn pick(
        &mut self,
        health: &HealthBitmap,
        ewma: &[PeakEwma],
        in_flight: &[u32],
        now_ns: u64,
        decay_ns: f64,
        tried: &[u32],
    ) -> Option<usize> {
        debug_assert!(ewma.len() >= health.len() && in_flight.len() >= health.len());
        let count = candidate_count(health, tried);
        match count {
            0 => None,
            1 => nth_candidate(health, tried, 0),
            _ => {
                let i = self.rng.below(count);
                let mut j = self.rng.below(count - 1);
                if j >= i {
                    j += 1;
                }
                let a = nth_candidate(health, tried, i)?;
                let b = nth_candidate(health, tried, j)?;
                let cost = |slot: usize| ewma[slot].cost(now_ns, decay_ns, in_flight[slot]);
                Some(if cost(b) < cost(a) { b } else { a })
            }
        }
    }
}

/// How many slots are candidates: healthy and not in `tried`.
fn candidate_count(health: &HealthBitmap, tried: &[u32]) -> usize {
    (0..health.word_count())
        .map(|w| (health.word(w) & !tried_mask(w, tried)).count_ones() as usize)
        .sum()
}

/// The `n`th candidate (from 0, in slot order), or None when there are no
/// more than `n` (the bitmap changed since they were counted).
fn nth_candidate(health: &HealthBitmap, tried: &[u32], mut n: usize) -> Option<usize> {
    for w in 0..health.word_count() {
        let bits = health.word(w) & !tried_mask(w, tried);
        let here = bits.count_ones() as usize;
        if n < here {
            return Some(w * 64 + nth_set_bit(bits, n as u32) as usize);
        }
        n -= here;
    }
    None
}

/// The position of the `n`th set bit of `word` (from 0, lowest first); `n`
/// must be below `word.count_ones()`. Clears the `n` lowest set bits, which
/// measured faster at 4 targets (41 against 54 ns a pick) than a binary
/// search on halves by `count_ones` (a software popcount in the baseline
/// target), and within 10% of it at 1000.
#[inline]
fn nth_set_bit(mut word: u64, n: u32) -> u32 {
    debug_assert!(n < word.count_ones());
    for _ in 0..n {
        word &= word - 1;
    }
    word.trailing_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn nth_set_bit_matches_clearing_bits_one_by_one() {
        let mut rng = Rng::new(3);
        for _ in 0..2000 {
            let word = rng.next_u64() & rng.next_u64();
            let mut rest = word;
            for n in 0..word.count_ones() {
                assert_eq!(nth_set_bit(word, n), rest.trailing_zeros(), "{word:#x} {n}");
                rest &= rest - 1;
            }
        }
        assert_eq!(nth_set_bit(1 << 63, 0), 63);
        assert_eq!(nth_set_bit(!0, 63), 63);
    }

    #[test]
    fn nth_candidate_skips_degraded_and_tried_across_words() {
        let h = HealthBitmap::with_healthy(200, &[1, 63, 64, 100, 199]);
        let tried = [63, 150];
        let all: Vec<_> = (0..5).map(|n| nth_candidate(&h, &tried, n)).collect();
        assert_eq!(all, vec![Some(1), Some(64), Some(100), Some(199), None]);
        assert_eq!(candidate_count(&h, &tried), 4);
    }

    #[test]
    fn a_slower_response_replaces_the_estimate_at_once() {
        let mut e = PeakEwma::new(10.0 * MS as f64, 0);
        e.observe(50 * MS, 1, DEFAULT_DECAY_NS);
        assert_eq!(e.cost(1, DEFAULT_DECAY_NS, 0), 50.0 * MS as f64);
    }

    #[test]
    fn a_faster_response_is_blended_in_by_elapsed_time() {
        let decay = DEFAULT_DECAY_NS;
        let mut e = PeakEwma::new(100.0 * MS as f64, 0);
        // No time passed: the old estimate keeps all its weight.
        e.observe(10 * MS, 0, decay);
        assert_eq!(e.cost(0, decay, 0), 100.0 * MS as f64);
        // One time constant: 1/e of the old estimate stays.
        let t = decay as u64;
        e.observe(10 * MS, t, decay);
        let expected = 100.0 * MS as f64 / std::f64::consts::E
            + 10.0 * MS as f64 * (1.0 - 1.0 / std::f64::consts::E);
        assert!((e.cost(t, decay, 0) - expected).abs() < 1.0);
    }

    #[test]
    fn cost_decays_with_idle_time_and_grows_with_in_flight() {
        let decay = DEFAULT_DECAY_NS;
        let e = PeakEwma::new(1000.0, 0);
        assert_eq!(e.cost(0, decay, 3), 4000.0);
        let later = e.cost(decay as u64, decay, 0);
        assert!((later - 1000.0 / std::f64::consts::E).abs() < 1e-6);
        assert!(e.cost(100 * decay as u64, decay, 0) < 1e-6);
    }

    #[test]
    fn the_cheaper_of_two_always_wins() {
        let h = HealthBitmap::with_healthy(2, &[0, 1]);
        let ewma = [
            PeakEwma::new(5.0 * MS as f64, 0),
            PeakEwma::new(MS as f64, 0),
        ];
        let mut p2c = P2c::new(1);
        for _ in 0..100 {
            assert_eq!(
                p2c.pick(&h, &ewma, &[0, 0], 0, DEFAULT_DECAY_NS, &[]),
                Some(1)
            );
        }
        // Six requests in flight make slot 1 dearer (7 ms) than slot 0 (5 ms).
        assert_eq!(
            p2c.pick(&h, &ewma, &[0, 6], 0, DEFAULT_DECAY_NS, &[]),
            Some(0)
        );
    }

    #[test]
    fn a_slow_target_loses_every_draw() {
        let n = 5;
        let h = HealthBitmap::with_healthy(n, &[0, 1, 2, 3, 4]);
        let mut ewma = [PeakEwma::new(MS as f64, 0); 5];
        ewma[2] = PeakEwma::new(10.0 * MS as f64, 0);
        let mut p2c = P2c::new(9);
        let mut counts = [0u32; 5];
        for _ in 0..10_000 {
            counts[p2c
                .pick(&h, &ewma, &[0; 5], 0, DEFAULT_DECAY_NS, &[])
                .unwrap()] += 1;
        }
        assert_eq!(counts[2], 0, "{counts:?}");
        // The others share evenly: each about a quarter.
        assert!(
            counts
                .iter()
                .enumerate()
                .all(|(i, &c)| i == 2 || (2200..2800).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn a_single_candidate_is_returned_as_is() {
        let h = HealthBitmap::with_healthy(3, &[0, 1, 2]);
        let ewma = [
            PeakEwma::new(1.0, 0),
            PeakEwma::new(1e12, 0),
            PeakEwma::new(1.0, 0),
        ];
        let mut p2c = P2c::new(0);
        assert_eq!(
            p2c.pick(&h, &ewma, &[0; 3], 0, DEFAULT_DECAY_NS, &[0, 2]),
            Some(1)
        );
    }

    #[test]
    fn none_when_there_is_no_candidate() {
        let ewma = [PeakEwma::new(1.0, 0); 3];
        let mut p2c = P2c::new(0);
        assert_eq!(
            p2c.pick(
                &HealthBitmap::with_healthy(3, &[]),
                &ewma,
                &[0; 3],
                0,
                DEFAULT_DECAY_NS,
                &[]
            ),
            None
        );
        assert_eq!(
            p2c.pick(
                &HealthBitmap::with_healthy(3, &[1]),
                &ewma,
                &[0; 3],
                0,
                DEFAULT_DECAY_NS,
                &[1]
            ),
            None
        );
        assert_eq!(
            p2c.pick(
                &HealthBitmap::with_healthy(0, &[]),
                &[],
                &[],
                0,
                DEFAULT_DECAY_NS,
                &[]
            ),
            None
        );
    }
}
