//! A worker's copy of the target table, refreshed when a reload changed
//! the set: picks and logs read it without touching what other workers
//! share.

use crate::targets::{Slot, Target};
use rustls::pki_types::ServerName;

use super::Worker;

/// The table as this worker last saw it.
pub(super) struct View {
    pub(super) generation: u64,
    pub(super) slots: Vec<Option<Slot>>,
}

impl Worker {
    /// Brings this worker's copy of the target table up to date when a
    /// reload changed the set (one atomic load when it did not). Pooled
    /// connections of targets that left, or whose slot changed hands, are
    /// closed.
    #[inline]
    pub fn refresh_targets(&self) {
        if self.shared.targets.generation() != self.view.borrow().generation {
            self.reload_view();
        }
    }

    #[cold]
    fn reload_view(&self) {
        let (generation, slots) = self.shared.targets.snapshot();
        let mut view = self.view.borrow_mut();
        let mut pool = self.pool.borrow_mut();
        let mut picker = self.picker.borrow_mut();
        let mut failure_streaks = self.failure_streaks.borrow_mut();
        for (i, (old, new)) in view.slots.iter().zip(&slots).enumerate() {
            if old.as_ref().map(|s| s.gen) != new.as_ref().map(|s| s.gen) {
                pool.clear(i);
                picker.reset(i);
                failure_streaks.forget(i);
                if let (Some(m), Some(slot)) = (self.metrics, new) {
                    m.reset_target(i, slot.gen);
                }
            }
            if let Some(slot) = new {
                picker.set_weight(i, slot.target.weight);
            }
        }
        *view = View { generation, slots };
    }

    /// The target in `slot`, as this worker last saw the set.
    pub fn target(&self, slot: usize) -> Option<Slot> {
        self.view.borrow().slots[slot].clone()
    }

    /// Calls `f` with the target in `slot` (if any), borrowed from this
    /// worker's view: no reference count shared with other workers moves.
    pub fn with_target<R>(&self, slot: Option<usize>, f: impl FnOnce(Option<&Target>) -> R) -> R {
        let view = self.view.borrow();
        let slot = slot.and_then(|i| view.slots[i].as_ref());
        f(slot.map(|s| &*s.target))
    }

    /// The generation of the target in `slot`, as this worker last saw it.
    pub fn slot_gen(&self, slot: usize) -> u64 {
        self.view.borrow().slots[slot].as_ref().map_or(0, |s| s.gen)
    }

    /// Whether connections to the target in `slot` start with a PROXY
    /// header (`proxy=v2`): they are then private to one client.
    #[inline]
    pub fn sends_proxy(&self, slot: usize) -> bool {
        self.view.borrow().slots[slot]
            .as_ref()
            .is_some_and(|s| s.target.proxy_v2)
    }

    /// How to reach the target in `slot`, if the slot holds one: its
    /// address, and for a TLS target the name its certificate must have.
    pub fn target_dial(
        &self,
        slot: usize,
    ) -> Option<(std::net::SocketAddr, Option<ServerName<'static>>)> {
        self.view.borrow().slots[slot]
            .as_ref()
            .map(|s| (s.target.addr, s.target.tls.clone()))
    }
}
