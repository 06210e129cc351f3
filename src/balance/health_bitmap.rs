//! The health bitmap: one bit per target, set when it is healthy, in atomic
//! 64-bit words shared by every worker. Written by the prober (and cleared by
//! workers that see a target fail), read on every pick.

use std::sync::atomic::{AtomicU64, Ordering};

/// Health of any number of targets, one bit each.
#[derive(Debug)]
pub struct HealthBitmap {
    words: Box<[AtomicU64]>,
    len: usize,
}

impl HealthBitmap {
    /// A bitmap for `len` targets, all degraded until a check passes.
    pub fn new(len: usize) -> HealthBitmap {
        HealthBitmap {
            words: (0..len.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            len,
        }
    }

    /// A bitmap for `len` targets with those in `healthy` healthy (for
    /// tests and benchmarks).
    pub fn with_healthy(len: usize, healthy: &[usize]) -> HealthBitmap {
        let h = HealthBitmap::new(len);
        for &i in healthy {
            h.mark_healthy(i);
        }
        h
    }

    /// Number of targets.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn locate(&self, target: usize) -> (&AtomicU64, u64) {
        assert!(target < self.len, "target {target} out of {}", self.len);
        (&self.words[target / 64], 1u64 << (target % 64))
    }

    #[inline]
    pub fn is_healthy(&self, target: usize) -> bool {
        let (word, bit) = self.locate(target);
        word.load(Ordering::Relaxed) & bit != 0
    }

    /// Sets the target's bit; true when it was clear before (a change).
    pub fn mark_healthy(&self, target: usize) -> bool {
        let (word, bit) = self.locate(target);
        word.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    /// Clears the target's bit; true when it was set before (a change).
    pub fn mark_degraded(&self, target: usize) -> bool {
        let (word, bit) = self.locate(target);
        word.fetch_and(!bit, Ordering::Relaxed) & bit != 0
    }

    /// The current value of word `i` (targets `64 * i ..`).
    #[inline]
    pub fn word(&self, i: usize) -> u64 {
        self.words[i].load(Ordering::Relaxed)
    }

    /// Number of words.
    #[inline]
    pub fn word_count(&self) -> usize {
        self.words.len()
    }

    /// How many targets are healthy now.
    pub fn healthy_count(&self) -> usize {
        (0..self.word_count())
            .map(|i| self.word(i).count_ones() as usize)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_degraded_and_reports_changes() {
        let h = HealthBitmap::new(130);
        assert_eq!(h.word_count(), 3);
        assert!(!h.is_healthy(129));
        assert!(h.mark_healthy(129));
        assert!(!h.mark_healthy(129), "no change the second time");
        assert!(h.is_healthy(129));
        assert_eq!(h.word(2), 0b10);
        assert!(h.mark_degraded(129));
        assert!(!h.mark_degraded(129));
        assert_eq!(h.healthy_count(), 0);
    }

    #[test]
    fn bits_are_independent() {
        let h = HealthBitmap::new(64);
        for i in (0..64).step_by(3) {
            h.mark_healthy(i);
        }
        for i in 0..64 {
            assert_eq!(h.is_healthy(i), i % 3 == 0);
        }
        assert_eq!(h.healthy_count(), 22);
    }

    #[test]
    #[should_panic]
    fn out_of_range_target_panics() {
        HealthBitmap::new(3).is_healthy(3);
    }
}
