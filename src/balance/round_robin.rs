//! Round robin over the health bitmap: from a per-worker cursor, the next
//! healthy target found with bit operations on the bitmap's words.

use std::cell::Cell;

use crossbeam_utils::CachePadded;

use super::HealthBitmap;

/// A worker's round-robin cursor. Each worker owns one; it is padded to a
/// cache line so that no two workers' cursors ever share one.
#[derive(Debug, Default)]
pub struct RoundRobin {
    cursor: CachePadded<Cell<usize>>,
}

impl RoundRobin {
    /// A cursor starting at `start` (workers start at different places so
    /// that their first requests spread).
    pub fn new(start: usize) -> RoundRobin {
        RoundRobin {
            cursor: CachePadded::new(Cell::new(start)),
        }
    }

    /// The next healthy target at or after the cursor, skipping `tried`
    /// (targets this request already went to), and moves the cursor past it.
    #[inline]
    pub fn pick(&self, health: &HealthBitmap, tried: &[u32]) -> Option<usize> {
        let found = next_healthy(health, self.cursor.get(), tried)?;
        self.cursor.set(found + 1);
        Some(found)
    }
}

/// Bits of word `w` that belong to targets in `tried`.
#[inline]
pub(super) fn tried_mask(w: usize, tried: &[u32]) -> u64 {
    tried
        .iter()
        .filter(|&&t| t as usize / 64 == w)
        .fold(0, |m, &t| m | 1u64 << (t % 64))
}

/// The first healthy target not in `tried`, scanning circularly from `from`
/// (taken modulo the number of targets).
pub fn next_healthy(health: &HealthBitmap, from: usize, tried: &[u32]) -> Option<usize> {
    let len = health.len();
    if len == 0 {
        return None;
    }
    let start = from % len;
    let words = health.word_count();
    let first = start / 64;
    let candidates = |w: usize| health.word(w) & !tried_mask(w, tried);

    // Bits at or above `start` in its own word, then the following words,
    // wrapping round, and finally the bits below `start`.
    let high = candidates(first) & (!0u64 << (start % 64));
    if high != 0 {
        return Some(first * 64 + high.trailing_zeros() as usize);
    }
    for step in 1..words {
        let w = (first + step) % words;
        let bits = candidates(w);
        if bits != 0 {
            return Some(w * 64 + bits.trailing_zeros() as usize);
        }
    }
    let low = candidates(first) & !(!0u64 << (start % 64));
    (low != 0).then(|| first * 64 + low.trailing_zeros() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The obvious implementation, to compare against.
    fn reference(h: &HealthBitmap, from: usize, tried: &[u32]) -> Option<usize> {
        let len = h.len();
        (0..len)
            .map(|k| (from % len + k) % len)
            .find(|&i| h.is_healthy(i) && !tried.contains(&(i as u32)))
    }

    #[test]
    fn cycles_through_healthy_targets_in_order() {
        let h = HealthBitmap::with_healthy(5, &[0, 2, 3]);
        let rr = RoundRobin::new(0);
        let picks: Vec<_> = (0..6).map(|_| rr.pick(&h, &[]).unwrap()).collect();
        assert_eq!(picks, vec![0, 2, 3, 0, 2, 3]);
    }

    #[test]
    fn none_when_nothing_is_healthy() {
        let rr = RoundRobin::new(0);
        assert_eq!(rr.pick(&HealthBitmap::with_healthy(3, &[]), &[]), None);
        assert_eq!(rr.pick(&HealthBitmap::with_healthy(0, &[]), &[]), None);
        assert_eq!(rr.pick(&HealthBitmap::with_healthy(3, &[1]), &[1]), None);
    }

    #[test]
    fn skips_tried_targets() {
        let h = HealthBitmap::with_healthy(4, &[0, 1, 2, 3]);
        let rr = RoundRobin::new(1);
        assert_eq!(rr.pick(&h, &[1, 2]), Some(3));
        assert_eq!(rr.pick(&h, &[0, 1, 3]), Some(2));
        assert_eq!(rr.pick(&h, &[0, 1, 2, 3]), None);
    }

    #[test]
    fn matches_the_obvious_scan_across_many_words() {
        // A deterministic spread of bitmaps, cursors and tried sets.
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..2000 {
            let len = 1 + (next() % 200) as usize;
            let density = next() % 4;
            let healthy: Vec<usize> = (0..len).filter(|_| next() % 4 < density).collect();
            let h = HealthBitmap::with_healthy(len, &healthy);
            let tried: Vec<u32> = (0..next() % 4)
                .map(|_| (next() % len as u64) as u32)
                .collect();
            let from = next() as usize % (3 * len);
            assert_eq!(
                next_healthy(&h, from, &tried),
                reference(&h, from, &tried),
                "len {len} from {from} healthy {healthy:?} tried {tried:?}"
            );
        }
    }

    #[test]
    fn spreads_evenly() {
        let h = HealthBitmap::with_healthy(70, &(0..70).collect::<Vec<_>>());
        let rr = RoundRobin::new(13);
        let mut counts = [0u32; 70];
        for _ in 0..700 {
            counts[rr.pick(&h, &[]).unwrap()] += 1;
        }
        assert!(counts.iter().all(|&c| c == 10));
    }
}
