//! Failures in a row on live traffic, per target, on one worker: the count
//! that ejects a target at `--eject-after`.

/// One worker's count of failures in a row for each slot.
#[derive(Debug, Clone)]
pub struct FailureStreaks {
    in_a_row: Vec<u32>,
    /// `--eject-after`: the count that ejects; 0 never does.
    eject_after: u32,
}

impl FailureStreaks {
    /// Streaks for `slots` targets, ejecting at `eject_after` (0: never).
    pub fn new(slots: usize, eject_after: u32) -> FailureStreaks {
        FailureStreaks {
            in_a_row: vec![0; slots],
            eject_after,
        }
    }

    /// `slot` answered well (below 500): its streak ends.
    #[inline]
    pub fn succeeded(&mut self, slot: usize) {
        self.in_a_row[slot] = 0;
    }

    /// `slot` failed a request. When its streak reaches `--eject-after`,
    /// returns the streak's length: the target is to be ejected, and its
    /// count starts again from 0.
    pub fn failed(&mut self, slot: usize) -> Option<u32> {
        let count = &mut self.in_a_row[slot];
        *count = count.saturating_add(1);
        if self.eject_after == 0 || *count < self.eject_after {
            return None;
        }
        Some(std::mem::take(count))
    }

    /// Forgets `slot`'s streak (another target took the slot).
    pub fn forget(&mut self, slot: usize) {
        self.in_a_row[slot] = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ejects_when_the_streak_reaches_eject_after_and_starts_again() {
        let mut s = FailureStreaks::new(2, 3);
        assert_eq!(s.failed(0), None);
        assert_eq!(s.failed(0), None);
        assert_eq!(s.failed(0), Some(3));
        assert_eq!(s.failed(0), None, "the count started again");
        assert_eq!(s.failed(1), None, "each slot counts alone");
    }

    #[test]
    fn a_success_ends_the_streak() {
        let mut s = FailureStreaks::new(1, 2);
        assert_eq!(s.failed(0), None);
        s.succeeded(0);
        assert_eq!(s.failed(0), None);
        assert_eq!(s.failed(0), Some(2));
    }

    #[test]
    fn a_slot_that_changed_hands_starts_afresh() {
        let mut s = FailureStreaks::new(1, 2);
        assert_eq!(s.failed(0), None);
        s.forget(0);
        assert_eq!(s.failed(0), None);
    }

    #[test]
    fn eject_after_zero_never_ejects() {
        let mut s = FailureStreaks::new(1, 0);
        assert!((0..100).all(|_| s.failed(0).is_none()));
    }
}
