//! Smooth weighted round robin, as nginx does it: each pick adds every
//! candidate's weight to its running `current`, takes the largest, and
//! charges the winner the total of the candidates' weights. Heavier targets
//! come up more often, interleaved rather than in bursts (5, 1, 1 gives
//! a a b a c a a).

use super::round_robin::tried_mask;
use super::HealthBitmap;

/// A worker's smooth-weighted-round-robin state: one running `current` per
/// slot. Each worker owns one; picking allocates nothing.
#[derive(Debug, Clone)]
pub struct SmoothWeighted {
    current: Vec<i64>,
}

impl SmoothWeighted {
    /// State for `slots` slots, every `current` at zero.
    pub fn new(slots: usize) -> Self {
        SmoothWeighted {
            current: vec![0; slots],
        }
    }

    /// Forgets a slot's state (its target changed).
    pub fn reset(&mut self, slot: usize) {
        self.current[slot] = 0;
    }

    /// The next slot among the candidates (healthy and not in `tried`), or
    /// None when there is none. `weights[slot]` is the slot's weight; 0
    /// counts as 1. `weights` and this state must cover every slot of
    /// `health`. Ties go to the lowest slot.
    pub fn pick(&mut self, health: &HealthBitmap, weights: &[u32], tried: &[u32]) -> Option<usize> {
        debug_assert!(self.current.len() >= health.len() && weights.len() >= health.len());
        let mut total = 0i64;
        let mut best: Option<(usize, i64)> = None;
        for w in 0..health.word_count() {
            let mut bits = health.word(w) & !tried_mask(w, tried);
            while bits != 0 {
                let slot = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let weight = i64::from(weights[slot].max(1));
                let current = &mut self.current[slot];
                *current += weight;
                total += weight;
                if best.is_none_or(|(_, top)| *current > top) {
                    best = Some((slot, *current));
                }
            }
        }
        let (chosen, _) = best?;
        self.current[chosen] -= total;
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picks(sw: &mut SmoothWeighted, h: &HealthBitmap, weights: &[u32], n: usize) -> Vec<usize> {
        (0..n).map(|_| sw.pick(h, weights, &[]).unwrap()).collect()
    }

    #[test]
    fn interleaves_like_nginx() {
        let h = HealthBitmap::with_healthy(3, &[0, 1, 2]);
        let mut sw = SmoothWeighted::new(3);
        // a a b a c a a, twice: the state is back at zero after a cycle.
        let cycle = vec![0, 0, 1, 0, 2, 0, 0];
        assert_eq!(picks(&mut sw, &h, &[5, 1, 1], 7), cycle);
        assert_eq!(picks(&mut sw, &h, &[5, 1, 1], 7), cycle);
    }

    #[test]
    fn a_whole_cycle_gives_each_slot_its_weight() {
        let weights = [3, 0, 7, 2, 1, 4];
        let h = HealthBitmap::with_healthy(130, &[0, 1, 2, 3, 4, 5]);
        let mut all_weights = vec![1; 130];
        all_weights[..6].copy_from_slice(&weights);
        let mut sw = SmoothWeighted::new(130);
        // 0 counts as 1, so a cycle is 18 picks.
        for _ in 0..3 {
            let mut counts = [0u32; 6];
            for slot in picks(&mut sw, &h, &all_weights, 18) {
                counts[slot] += 1;
            }
            assert_eq!(counts, [3, 1, 7, 2, 1, 4]);
        }
    }

    #[test]
    fn finds_slots_in_every_word() {
        let h = HealthBitmap::with_healthy(200, &[3, 70, 199]);
        let mut sw = SmoothWeighted::new(200);
        let weights = vec![1; 200];
        assert_eq!(
            picks(&mut sw, &h, &weights, 6),
            vec![3, 70, 199, 3, 70, 199]
        );
    }

    #[test]
    fn never_picks_a_degraded_or_tried_slot() {
        let h = HealthBitmap::with_healthy(4, &[0, 2, 3]);
        let mut sw = SmoothWeighted::new(4);
        let weights = [1, 100, 1, 1];
        for _ in 0..20 {
            let slot = sw.pick(&h, &weights, &[3]).unwrap();
            assert!(slot == 0 || slot == 2, "picked {slot}");
        }
        assert_eq!(sw.pick(&h, &weights, &[0, 2, 3]), None);
    }

    #[test]
    fn none_when_nothing_is_healthy() {
        let mut sw = SmoothWeighted::new(3);
        assert_eq!(
            sw.pick(&HealthBitmap::with_healthy(3, &[]), &[1, 1, 1], &[]),
            None
        );
        assert_eq!(
            SmoothWeighted::new(0).pick(&HealthBitmap::with_healthy(0, &[]), &[], &[]),
            None
        );
    }

    #[test]
    fn reset_forgets_a_slot() {
        let h = HealthBitmap::with_healthy(2, &[0, 1]);
        let mut sw = SmoothWeighted::new(2);
        assert_eq!(sw.pick(&h, &[1, 1], &[]), Some(0));
        // Slot 0 is now owed less than slot 1; after a reset they tie again.
        sw.reset(0);
        sw.reset(1);
        assert_eq!(sw.pick(&h, &[1, 1], &[]), Some(0));
    }
}
