//! Least connections, weighted: the candidate with the fewest in-flight
//! requests per unit of weight. Ties go to the first candidate at or after a
//! per-worker cursor, which then moves past the winner, so equally loaded
//! targets take turns as in round robin.

use super::round_robin::tried_mask;
use super::HealthBitmap;

/// A worker's least-connections state: the cursor that breaks ties.
#[derive(Debug, Clone)]
pub struct LeastConnections {
    cursor: usize,
}

impl LeastConnections {
    /// A cursor starting at `start` (workers start at different places so
    /// that their first requests spread).
    pub fn new(start: usize) -> Self {
        LeastConnections { cursor: start }
    }

    /// The candidate (healthy and not in `tried`) with the least
    /// `in_flight[slot] / weights[slot]` (a weight of 0 counts as 1), or
    /// None when there is none. `in_flight` and `weights` must cover every
    /// slot of `health`.
    pub fn pick(
        &mut self,
        health: &HealthBitmap,
        in_flight: &[u32],
        weights: &[u32],
        tried: &[u32],
    ) -> Option<usize> {
        let len = health.len();
        if len == 0 {
            return None;
        }
        debug_assert!(in_flight.len() >= len && weights.len() >= len);
        // The cursor is past the last pick, so below `len` unless that was
        // the last slot or the slots shrank; spare the division otherwise.
        let start = if self.cursor < len {
            self.cursor
        } else {
            self.cursor % len
        };
        let words = health.word_count();
        let first = start / 64;
        let at_or_after_start = !0u64 << (start % 64);

        // Circularly from the cursor: the bits of its word at or above it,
        // the following words (wrapping round), then the bits below it.
        let mut best: Option<(usize, u64, u64)> = None;
        for step in 0..=words {
            let w = match first + step {
                w if w >= words => w - words,
                w => w,
            };
            let mut bits = health.word(w) & !tried_mask(w, tried);
            if step == 0 {
                bits &= at_or_after_start;
            } else if step == words {
                bits &= !at_or_after_start;
            }
            while bits != 0 {
                let slot = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let load = u64::from(in_flight[slot]);
                let weight = u64::from(weights[slot].max(1));
                // load / weight < best_load / best_weight, without dividing.
                if best.is_none_or(|(_, best_load, best_weight)| {
                    load * best_weight < best_load * weight
                }) {
                    best = Some((slot, load, weight));
                }
            }
        }
        let (chosen, _, _) = best?;
        self.cursor = chosen + 1;
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_targets_take_turns() {
        let h = HealthBitmap::with_healthy(5, &[0, 2, 3, 4]);
        let mut lc = LeastConnections::new(3);
        let picks: Vec<_> = (0..6)
            .map(|_| lc.pick(&h, &[0; 5], &[1; 5], &[]).unwrap())
            .collect();
        assert_eq!(picks, vec![3, 4, 0, 2, 3, 4]);
    }

    #[test]
    fn equal_loads_take_turns_across_words() {
        let h = HealthBitmap::with_healthy(200, &[5, 64, 130, 199]);
        let mut lc = LeastConnections::new(150);
        let (in_flight, weights) = (vec![2; 200], vec![1; 200]);
        let picks: Vec<_> = (0..5)
            .map(|_| lc.pick(&h, &in_flight, &weights, &[]).unwrap())
            .collect();
        assert_eq!(picks, vec![199, 5, 64, 130, 199]);
    }

    #[test]
    fn picks_the_least_loaded() {
        let h = HealthBitmap::with_healthy(4, &[0, 1, 2, 3]);
        let mut lc = LeastConnections::new(0);
        assert_eq!(lc.pick(&h, &[3, 2, 1, 2], &[1; 4], &[]), Some(2));
        assert_eq!(lc.pick(&h, &[3, 2, 1, 0], &[1; 4], &[]), Some(3));
    }

    #[test]
    fn weights_scale_the_load() {
        let h = HealthBitmap::with_healthy(3, &[0, 1, 2]);
        let mut lc = LeastConnections::new(0);
        // 4/4 = 1 beats 2/1 and 3/2; a weight of 0 counts as 1.
        assert_eq!(lc.pick(&h, &[2, 3, 4], &[0, 2, 4], &[]), Some(2));
        // 5/4 beats 2/1.
        assert_eq!(lc.pick(&h, &[2, 9, 5], &[1, 1, 4], &[]), Some(2));
    }

    #[test]
    fn never_picks_a_degraded_or_tried_slot() {
        let h = HealthBitmap::with_healthy(4, &[1, 2, 3]);
        let mut lc = LeastConnections::new(0);
        // Slot 0 is idle but degraded; slot 1 is idle but tried.
        assert_eq!(lc.pick(&h, &[0, 0, 5, 4], &[1; 4], &[1]), Some(3));
        assert_eq!(lc.pick(&h, &[0, 0, 5, 4], &[1; 4], &[1, 2, 3]), None);
    }

    #[test]
    fn none_when_nothing_is_healthy() {
        let mut lc = LeastConnections::new(0);
        assert_eq!(
            lc.pick(&HealthBitmap::with_healthy(3, &[]), &[0; 3], &[1; 3], &[]),
            None
        );
        assert_eq!(
            lc.pick(&HealthBitmap::with_healthy(0, &[]), &[], &[], &[]),
            None
        );
    }
}
