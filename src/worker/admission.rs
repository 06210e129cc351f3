//! A worker's client connections: how many are open against its share of
//! `--max-connections`, and the drain that stops it accepting more.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use monoio::io::{CancelHandle, Canceller};

use super::Worker;

pub struct Admission {
    /// Client connections open on this worker, and how many it may have.
    open: Cell<usize>,
    max_open: usize,
    /// Set once a shutdown began: no new connections, no more keep-alive.
    draining: Cell<bool>,
    /// Cancels the accept in flight when the worker starts draining.
    accepting: RefCell<Canceller>,
}

impl Admission {
    pub fn new(max_open: usize) -> Admission {
        Admission {
            open: Cell::new(0),
            max_open,
            draining: Cell::new(false),
            accepting: RefCell::new(Canceller::new()),
        }
    }
}

impl Worker {
    /// Whether a shutdown began: connections close after their current
    /// request instead of waiting for another.
    #[inline]
    pub fn draining(&self) -> bool {
        self.admission.draining.get()
    }

    /// Client connections open on this worker.
    pub fn open_connections(&self) -> usize {
        self.admission.open.get()
    }

    /// A handle for the accept in flight.
    pub fn accept_handle(&self) -> CancelHandle {
        self.admission.accepting.borrow().handle()
    }

    /// Starts a shutdown on this worker: the accept is cancelled, parked
    /// (idle) client connections are closed now, and the others close after
    /// the request they are busy with (or, idle for less than the parking
    /// delay, when they would have been parked).
    pub fn begin_drain(&self) {
        let admission = &self.admission;
        admission.draining.set(true);
        let _ = std::mem::take(&mut *admission.accepting.borrow_mut()).cancel();
        self.clock.expire_all();
    }

    /// Counts a new client connection in; `None` when this worker is at its
    /// share of `--max-connections`. The guard counts it out when dropped.
    pub fn admit(self: &Rc<Self>) -> Option<Admitted> {
        let open = &self.admission.open;
        if open.get() >= self.admission.max_open {
            return None;
        }
        open.set(open.get() + 1);
        self.show_open(open.get());
        Some(Admitted(self.clone()))
    }
}

/// A client connection counted against its worker's limit while it lives.
pub struct Admitted(Rc<Worker>);

impl Admitted {
    pub fn worker(&self) -> &Rc<Worker> {
        &self.0
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let open = &self.0.admission.open;
        open.set(open.get() - 1);
        self.0.show_open(open.get());
    }
}
