//! How targets move in and out of rotation: health check verdicts (rise and
//! fall), passive ejection and its end, slow start. These are the cold paths
//! that write the shared bitmaps; picks only read them.

use std::sync::atomic::Ordering;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use super::Targets;
use crate::balance::{Standing, TargetState};

/// What a health check changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    /// The target's first check: it is in rotation or not, as it said.
    First(bool),
    /// It went into rotation (`true`) or out of it (`false`).
    Changed(bool),
    /// Nothing changed.
    Same,
}

/// An ejection that took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ejection {
    /// How long it lasts.
    pub length: Duration,
    /// Whether the target was in rotation when it was ejected.
    pub was_healthy: bool,
}

impl Targets {
    fn records(&self) -> MutexGuard<'_, Vec<TargetState>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a slot's health record afresh (its target left, or a new one
    /// took it; `late` when a reload added it).
    pub(super) fn forget(&self, slot: usize, late: bool) {
        let mut records = self.records();
        if records[slot].is_ejected() {
            self.ejected.fetch_sub(1, Ordering::Relaxed);
        }
        records[slot] = TargetState::default();
        records[slot].joined_late = late;
        self.passed.mark_degraded(slot);
        self.slow_start.mark_degraded(slot);
        self.ejections[slot].store(0, Ordering::Relaxed);
    }

    /// Times the slot's target was ejected.
    pub fn ejections(&self, slot: usize) -> u64 {
        self.ejections[slot].load(Ordering::Relaxed)
    }

    /// Records the result of a health check of the target of generation
    /// `gen` in `slot` (ignored if the slot changed hands meanwhile), and
    /// sets its bits accordingly.
    pub fn record_check(&self, slot: usize, gen: u64, passed: bool) -> CheckOutcome {
        if !self.holds(slot, gen) {
            return CheckOutcome::Same;
        }
        let mut records = self.records();
        let record = &mut records[slot];
        let first = !record.is_checked();
        let bit = self.health.is_healthy(slot);
        let in_rotation = record.record_check(passed, bit, &self.rules.thresholds);
        if passed {
            self.passed.mark_healthy(slot);
        } else {
            self.passed.mark_degraded(slot);
        }
        let slow = !first || record.joined_late;
        let changed = match (bit, in_rotation) {
            (false, true) => self.rejoin(slot, slow),
            (true, false) => self.mark_degraded(slot),
            _ => false,
        };
        match (first, changed) {
            (true, _) => CheckOutcome::First(in_rotation),
            (false, true) => CheckOutcome::Changed(in_rotation),
            (false, false) => CheckOutcome::Same,
        }
    }

    /// Puts a slot back in rotation, in slow start when `slow` and
    /// `--slow-start` is on; true when that is a change.
    fn rejoin(&self, slot: usize, slow: bool) -> bool {
        if slow && self.rules.slow_start.is_some() {
            let ms = self.epoch.elapsed().as_millis() as u64;
            self.rejoined_ms[slot].store(ms, Ordering::Relaxed);
            self.slow_start.mark_healthy(slot);
        }
        self.mark_healthy(slot)
    }

    /// Ejects the target in `slot` (generation `gen`) at `now`: out of
    /// rotation whatever its checks say, for a time that grows with each
    /// ejection in a row. `None` when it was ejected already (or left).
    pub fn eject(&self, slot: usize, gen: u64, now: Instant) -> Option<Ejection> {
        if !self.holds(slot, gen) {
            return None;
        }
        let mut records = self.records();
        let length = records[slot].eject(now, &self.rules.thresholds)?;
        self.ejected.fetch_add(1, Ordering::Relaxed);
        self.ejections[slot].fetch_add(1, Ordering::Relaxed);
        let was_healthy = self.mark_degraded(slot);
        Some(Ejection {
            length,
            was_healthy,
        })
    }

    /// Ends the ejections whose time is up at `now`; returns each slot that
    /// left ejection and whether it went back into rotation (it does when
    /// its health checks pass). One relaxed load when nothing is ejected.
    pub fn end_ejections(&self, now: Instant) -> Vec<(usize, bool)> {
        if self.ejected.load(Ordering::Relaxed) == 0 {
            return Vec::new();
        }
        let mut records = self.records();
        let mut ended = Vec::new();
        for (slot, record) in records.iter_mut().enumerate() {
            if let Some(in_rotation) = record.end_ejection(now) {
                self.ejected.fetch_sub(1, Ordering::Relaxed);
                if in_rotation {
                    self.rejoin(slot, true);
                }
                ended.push((slot, in_rotation));
            }
        }
        ended
    }

    /// Takes targets whose slow start is over out of it.
    pub fn end_slow_starts(&self) {
        if self.rules.slow_start.is_none() {
            return;
        }
        for w in 0..self.slow_start.word_count() {
            let mut bits = self.slow_start.word(w);
            while bits != 0 {
                let slot = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if self.slow_start_share(slot, self.epoch.elapsed()) >= 1.0 {
                    self.slow_start.mark_degraded(slot);
                }
            }
        }
    }

    /// The share of its traffic a target in slow start gets `since_epoch`
    /// (see [`Targets::since_epoch`]): from 0 when it rejoined to 1 after
    /// `--slow-start`.
    pub fn slow_start_share(&self, slot: usize, since_epoch: Duration) -> f64 {
        let Some(length) = self.rules.slow_start else {
            return 1.0;
        };
        let rejoined = Duration::from_millis(self.rejoined_ms[slot].load(Ordering::Relaxed));
        let elapsed = since_epoch.saturating_sub(rejoined);
        (elapsed.as_secs_f64() / length.as_secs_f64()).min(1.0)
    }

    /// The time since the set was made, the clock slow start is measured by.
    pub fn since_epoch(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.epoch)
    }

    /// How the target in `slot` stands now.
    pub fn standing(&self, slot: usize) -> Standing {
        self.records()[slot].standing(self.health.is_healthy(slot))
    }
}
