//! A worker's clocks: a coarse `now` moved on once per housekeeping tick
//! (free to read on every request), the ticks themselves (the retry
//! budget's seconds), and the expiries of parked connections, one canceller
//! per tick shared by all that expire together (no timer per connection).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use monoio::io::{CancelHandle, Canceller};

/// How often a worker closes expired pooled connections and moves its
/// coarse clock on.
pub const HOUSEKEEPING: Duration = Duration::from_millis(100);

pub struct Clock {
    /// Read once per tick: good enough to age idle connections.
    coarse_now: Cell<Instant>,
    /// When the worker was made: the origin of the picker's latency clock.
    started: Instant,
    /// Housekeeping ticks so far.
    ticks: Cell<u64>,
    /// Cancellers of parked connections' reads, by the tick at which their
    /// idle time is up.
    expiries: RefCell<BTreeMap<u64, Canceller>>,
}

impl Clock {
    pub fn new() -> Clock {
        let now = Instant::now();
        Clock {
            coarse_now: Cell::new(now),
            started: now,
            ticks: Cell::new(0),
            expiries: RefCell::new(BTreeMap::new()),
        }
    }

    /// Now, to within `HOUSEKEEPING`.
    #[inline]
    pub fn now(&self) -> Instant {
        self.coarse_now.get()
    }

    /// A deadline `after` from now: never early, up to one tick late, and
    /// free of a clock read.
    #[inline]
    pub fn soon(&self, after: Duration) -> Instant {
        self.coarse_now.get() + after + HOUSEKEEPING
    }

    /// The current second (for the retry budget).
    #[inline]
    pub fn second(&self) -> u64 {
        self.ticks.get() / (1000 / HOUSEKEEPING.as_millis() as u64)
    }

    /// Nanoseconds from the worker's start to `now`.
    pub fn nanos_since_start(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_nanos() as u64
    }

    /// A handle that cancels an operation once `after` has passed (to
    /// within a tick).
    pub fn expiry(&self, after: Duration) -> CancelHandle {
        let due = self.ticks.get() + 1 + (after.as_millis() / HOUSEKEEPING.as_millis()) as u64;
        self.expiries.borrow_mut().entry(due).or_default().handle()
    }

    /// One tick: the coarse clock moves to `now`, and the expiries due are
    /// cancelled.
    pub fn tick(&self, now: Instant) {
        self.coarse_now.set(now);
        let tick = self.ticks.get() + 1;
        self.ticks.set(tick);
        let due = {
            let mut expiries = self.expiries.borrow_mut();
            let later = expiries.split_off(&(tick + 1));
            std::mem::replace(&mut *expiries, later)
        };
        for canceller in due.into_values() {
            canceller.cancel();
        }
    }

    /// Cancels every expiry now (a drain closes parked connections).
    pub fn expire_all(&self) {
        let all = std::mem::take(&mut *self.expiries.borrow_mut());
        for canceller in all.into_values() {
            canceller.cancel();
        }
    }
}
