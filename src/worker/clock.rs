//! A worker's clocks: a coarse `now` moved on once per housekeeping tick
//! (free to read on every request), the ticks themselves (the retry
//! budget's seconds), and the expiries of parked connections, one canceller
//! per tick shared by all that expire together (no timer per connection),
//! in a ring of cancellers reused tick after tick (no allocation once each
//! has been made).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use monoio::io::{CancelHandle, Canceller};

/// How often a worker closes expired pooled connections and moves its
/// coarse clock on.
pub const HOUSEKEEPING: Duration = Duration::from_millis(100);

/// Most ticks ahead an expiry can be set (409.6 s); a longer wait expires
/// at the last of them, and its owner waits again.
const MAX_EXPIRY_RING: u64 = 4096;

pub struct Clock {
    /// Read once per tick: good enough to age idle connections.
    coarse_now: Cell<Instant>,
    /// When the worker was made: the origin of the picker's latency clock.
    started: Instant,
    /// Housekeeping ticks so far.
    ticks: Cell<u64>,
    /// Cancellers of parked connections' reads, by the tick at which their
    /// idle time is up, modulo their number (as many as the longest wait
    /// has ticks).
    expiries: RefCell<Vec<Option<Canceller>>>,
    /// Cancellers whose tick has come, to be used again for a later one
    /// (made new in place: no allocation once there are enough of them).
    spent: RefCell<VecDeque<Canceller>>,
}

impl Clock {
    /// A clock whose expiries reach `longest_wait` ahead.
    pub fn new(longest_wait: Duration) -> Clock {
        let now = Instant::now();
        let ring = (longest_wait.as_millis() / HOUSEKEEPING.as_millis()) as u64 + 3;
        let ring = ring.min(MAX_EXPIRY_RING);
        Clock {
            coarse_now: Cell::new(now),
            started: now,
            ticks: Cell::new(0),
            expiries: RefCell::new((0..ring).map(|_| None).collect()),
            // Room for every canceller the ring can hold, so that a tick
            // never grows it.
            spent: RefCell::new(VecDeque::with_capacity(ring as usize)),
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
    /// within a tick), or once the ring's reach has, if that is sooner.
    pub fn expiry(&self, after: Duration) -> CancelHandle {
        let mut ring = self.expiries.borrow_mut();
        let len = ring.len() as u64;
        let ahead = (after.as_millis() / HOUSEKEEPING.as_millis()) as u64;
        let due = self.ticks.get() + 1 + ahead.min(len - 2);
        ring[(due % len) as usize]
            .get_or_insert_with(|| match self.spent.borrow_mut().pop_front() {
                Some(mut spent) => {
                    // The one cancelled longest ago: its reads have ended
                    // (or else `renew` makes a new one).
                    spent.renew();
                    spent
                }
                None => Canceller::new(),
            })
            .handle()
    }

    /// One tick: the coarse clock moves to `now`, and the expiries due are
    /// cancelled.
    pub fn tick(&self, now: Instant) {
        self.coarse_now.set(now);
        let tick = self.ticks.get() + 1;
        self.ticks.set(tick);
        let mut ring = self.expiries.borrow_mut();
        let len = ring.len() as u64;
        if let Some(due) = ring[(tick % len) as usize].take() {
            due.cancel_ops();
            self.spent.borrow_mut().push_back(due);
        }
    }

    /// Cancels every expiry now (a drain closes parked connections).
    pub fn expire_all(&self) {
        for due in self
            .expiries
            .borrow_mut()
            .iter_mut()
            .filter_map(Option::take)
        {
            due.cancel_ops();
            self.spent.borrow_mut().push_back(due);
        }
    }
}
