//! Where the health rules meet the shared bitmaps: each health event (a
//! check, an ejection, the end of one, the end of a slow start) is handed to
//! the slot's [`HealthRecord`], and the bits are written as it says. No
//! decision is made here; the rules are in [`crate::health`]. These are the
//! cold paths that write the bitmaps; picks only read them.

use std::sync::atomic::Ordering;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use super::Targets;
use crate::health::{CheckOutcome, EjectionOver, HealthRecord, Rotation, Standing};

/// An ejection that took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ejection {
    /// How long it lasts.
    pub length: Duration,
    /// Whether the target was in rotation when it was ejected.
    pub was_healthy: bool,
}

impl Targets {
    fn records(&self) -> MutexGuard<'_, Vec<HealthRecord>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a slot's health record afresh (its target left, or a new one
    /// took it; `late` when a reload added it).
    pub(super) fn forget(&self, slot: usize, late: bool) {
        let mut records = self.records();
        if records[slot].is_ejected() {
            self.ejected.fetch_sub(1, Ordering::Relaxed);
        }
        records[slot] = HealthRecord::new(late);
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
        let bit = self.health.is_healthy(slot);
        let after = records[slot].record_check(passed, bit, &self.rules);
        if after.fallback {
            self.passed.mark_healthy(slot);
        } else {
            self.passed.mark_degraded(slot);
        }
        let changed = after.rotation.is_some_and(|r| self.apply(slot, r));
        after.outcome(changed)
    }

    /// Moves a slot in or out of rotation; true when its bit changed.
    fn apply(&self, slot: usize, rotation: Rotation) -> bool {
        match rotation {
            Rotation::Join { slow_start } => {
                if slow_start {
                    let ms = self.epoch.elapsed().as_millis() as u64;
                    self.rejoined_ms[slot].store(ms, Ordering::Relaxed);
                    self.slow_start.mark_healthy(slot);
                }
                self.mark_healthy(slot)
            }
            Rotation::Leave => self.mark_degraded(slot),
        }
    }

    /// Ejects the target in `slot` (generation `gen`) at `now`: out of
    /// rotation whatever its checks say, for a time that grows with each
    /// ejection in a row. `None` when it was ejected already (or left).
    pub fn eject(&self, slot: usize, gen: u64, now: Instant) -> Option<Ejection> {
        if !self.holds(slot, gen) {
            return None;
        }
        let mut records = self.records();
        let length = records[slot].eject(now, &self.rules)?;
        self.ejected.fetch_add(1, Ordering::Relaxed);
        self.ejections[slot].fetch_add(1, Ordering::Relaxed);
        let was_healthy = self.apply(slot, Rotation::Leave);
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
            if let Some(over) = record.end_ejection(now, &self.rules) {
                self.ejected.fetch_sub(1, Ordering::Relaxed);
                let back = match over {
                    EjectionOver::Back(rotation) => {
                        self.apply(slot, rotation);
                        true
                    }
                    EjectionOver::Degraded => false,
                };
                ended.push((slot, back));
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
                let since_rejoin = self.since_rejoin(slot, self.epoch.elapsed());
                if self.rules.slow_start_over(since_rejoin) {
                    self.slow_start.mark_degraded(slot);
                }
            }
        }
    }

    /// The share of its traffic a target in slow start gets `since_epoch`
    /// (see [`Targets::since_epoch`]): from 0 when it rejoined to 1 after
    /// `--slow-start`.
    pub fn slow_start_share(&self, slot: usize, since_epoch: Duration) -> f64 {
        self.rules
            .slow_start_share(self.since_rejoin(slot, since_epoch))
    }

    /// How long before `since_epoch` the target in `slot` last rejoined.
    fn since_rejoin(&self, slot: usize, since_epoch: Duration) -> Duration {
        let rejoined = Duration::from_millis(self.rejoined_ms[slot].load(Ordering::Relaxed));
        since_epoch.saturating_sub(rejoined)
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
