//! A client connection's task, for its whole life: its opening (a PROXY
//! header, a TLS handshake), then busy spells, and parked waits between
//! them.
//!
//! A busy spell (the large future that reads requests and forwards them)
//! runs in a slot taken from the accept loop's [`Slots`], given back when
//! the connection has been idle for `PARK_AFTER`. Parked, the connection
//! holds its [`Session`] and a wait for its socket to become readable,
//! which the worker cancels when the idle time (or, before the first
//! request, the header timeout) is up: no buffer, no slot. The task is a
//! hand-written future, not an `async fn`, because an `async fn` keeps a
//! copy of its arguments beside each await's state: this way the session
//! is held once, and an idle connection costs a few hundred bytes.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use monoio::net::tcp::Readable;

use super::{Busy, Session, Slots};
use crate::stream::ClientStream;

/// How a connection opens before its first busy spell, ending with its
/// session and the bytes read so far (`None`: it closed). Boxed: it is large
/// and only TLS connections and `--proxy-protocol` have one.
pub type Opening<S> = Pin<Box<dyn Future<Output = Option<(Session<S>, BytesMut)>>>>;

/// The future of a client connection's task.
pub struct Connection<S, F> {
    slots: Rc<Slots<S, F>>,
    state: State<S, F>,
}

enum State<S, F> {
    Opening(Opening<S>),
    /// In a busy spell, which runs in this slot.
    Busy(Pin<Box<Option<F>>>),
    /// Idle, waiting for the next request until `until` at most.
    Parked {
        session: Session<S>,
        ready: Readable,
        until: Instant,
    },
    Done,
}

impl<S: ClientStream, F: Busy<S>> Connection<S, F> {
    /// A connection that opens with `opening`.
    pub fn opening(slots: Rc<Slots<S, F>>, opening: Opening<S>) -> Connection<S, F> {
        Connection {
            slots,
            state: State::Opening(opening),
        }
    }

    /// A connection whose first busy spell starts now, with `buf`.
    pub fn busy(slots: Rc<Slots<S, F>>, session: Session<S>, buf: BytesMut) -> Connection<S, F> {
        let state = State::Busy(slots.start(session, buf));
        Connection { slots, state }
    }
}

impl<S: ClientStream + Unpin, F: Busy<S>> Future for Connection<S, F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            let next = match &mut this.state {
                State::Opening(opening) => match ready!(opening.as_mut().poll(cx)) {
                    Some((session, buf)) => State::Busy(this.slots.start(session, buf)),
                    None => State::Done,
                },
                State::Busy(slot) => {
                    let ended = match slot.as_mut().as_pin_mut() {
                        Some(busy) => ready!(busy.poll(cx)),
                        None => None,
                    };
                    // Dropping the ended spell in place frees nothing.
                    slot.set(None);
                    if let State::Busy(slot) = std::mem::replace(&mut this.state, State::Done) {
                        this.slots.give(slot);
                    }
                    match ended {
                        Some((session, wait)) => park(session, wait),
                        None => State::Done,
                    }
                }
                State::Parked {
                    session,
                    ready,
                    until,
                } => {
                    let woke = ready!(Pin::new(&mut *ready).poll(cx));
                    let worker = session.admitted.worker().clone();
                    match woke {
                        Ok(()) => match this.unpark() {
                            Some(session) => {
                                let buf = worker.client_buffers.take();
                                State::Busy(this.slots.start(session, buf))
                            }
                            None => State::Done,
                        },
                        // A wait longer than the worker's expiries reach: on.
                        Err(e)
                            if e.raw_os_error() == Some(libc::ECANCELED)
                                && worker.coarse_now() < *until
                                && !worker.draining() =>
                        {
                            *ready = readiness(session, *until);
                            continue;
                        }
                        // Idle too long, the worker drains, or it failed.
                        Err(_) => {
                            this.unpark();
                            State::Done
                        }
                    }
                }
                State::Done => return Poll::Ready(()),
            };
            this.state = next;
        }
    }
}

impl<S, F> Connection<S, F> {
    /// Ends the parked state, if it is the state: its session.
    fn unpark(&mut self) -> Option<Session<S>> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Parked { session, .. } => {
                session.admitted.worker().count_parked(false);
                Some(session)
            }
            other => {
                self.state = other;
                None
            }
        }
    }
}

impl<S, F> Drop for Connection<S, F> {
    fn drop(&mut self) {
        self.unpark();
    }
}

/// A connection whose busy spell has ended idle, waiting parked for at
/// most `wait` more.
fn park<S: ClientStream, F>(session: Session<S>, wait: Duration) -> State<S, F> {
    let worker = session.admitted.worker();
    if worker.draining() {
        // Parked as the drain began (which cancelled the others): close.
        return State::Done;
    }
    let until = worker.coarse_now() + wait;
    let ready = readiness(&session, until);
    worker.count_parked(true);
    State::Parked {
        session,
        ready,
        until,
    }
}

/// A wait for the session's socket to be readable (bytes, the end, or an
/// error), which the worker's expiries cancel by `until`. Relaxed: on epoll
/// it trusts the driver's readiness, which the busy spell's cancelled read
/// left clear; a stale one costs only a busy spell that parks again.
fn readiness<S: ClientStream>(session: &Session<S>, until: Instant) -> Readable {
    let worker = session.admitted.worker();
    let left = until.saturating_duration_since(worker.coarse_now());
    session
        .stream
        .socket()
        .cancelable_readable(true, worker.idle_expiry(left))
}
