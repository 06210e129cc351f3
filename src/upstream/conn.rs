//! An upstream connection, and the readiness poll that watches it while it
//! sits idle in a pool.
//!
//! A target may write on a connection nobody asked anything on: a late body
//! after a bodiless answer, a second unasked-for response, a 408 before it
//! closes, or just the FIN of its own keep-alive timeout. Whatever arrives
//! while the connection is idle would be read as the answer to the next
//! request sent on it, which may be another client's: such a connection must
//! never be reused. A peek before each reuse costs a syscall per request, so
//! instead a readiness poll is armed in the ring when the connection goes
//! idle and looked at (without a syscall) when it is taken: if it fired,
//! something came, and the connection is closed. nginx does the same with
//! the read event it keeps on idle upstream connections.
//!
//! The poll is a monoio `readable` future, polled with a no-op waker: the
//! first poll puts its operation in the ring, later ones look whether it
//! completed. It is never dropped while pending (monoio boxes what a
//! cancelled operation leaves behind, an allocation per request): a
//! connection taken with its poll pending carries it through the exchange,
//! where the response makes it fire, and a new one is armed when the
//! connection is pooled again. The future must own what it polls, and the
//! stream is in use meanwhile, so it polls a second descriptor of the same
//! socket (a `dup`, made once when the connection is first pooled).
//!
//! On the epoll driver a readiness poll is no help: a task can take the
//! connection before the worker has read the epoll events that say
//! something came (its reads on other sockets complete without waiting),
//! and `tests/pool_safety.rs` caught such a connection reused after its
//! FIN. There a `MSG_PEEK` checks the connection when it is taken: one
//! syscall per reuse, on the fallback driver only.

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Waker};

use monoio::net::TcpStream;

use super::TargetStream;

use crate::stream::is_idle_and_open;

/// A connection to a target.
pub struct Upstream {
    stream: TargetStream,
    /// Made when the connection is first pooled, then armed again each time
    /// it goes back (without allocating).
    watch: Option<Box<dyn Watch>>,
    /// It began with a PROXY header naming one client (a `proxy=v2`
    /// target): it carries that client's requests only, and never goes to
    /// the worker's pool.
    private: bool,
}

impl Upstream {
    pub fn new(stream: TargetStream) -> Upstream {
        Upstream {
            stream,
            watch: None,
            private: false,
        }
    }

    /// A connection that began with a PROXY header naming one client.
    pub fn private(stream: TargetStream) -> Upstream {
        Upstream {
            private: true,
            ..Upstream::new(stream)
        }
    }

    /// Whether it carries one client's requests only (see `private`).
    #[inline]
    pub fn is_private(&self) -> bool {
        self.private
    }

    #[inline]
    pub fn stream(&mut self) -> &mut TargetStream {
        &mut self.stream
    }

    /// The stream alone, for a tunnel (it will not be pooled again).
    pub fn into_stream(self) -> TargetStream {
        self.stream
    }

    /// Arms the poll as the connection goes idle (on io_uring; on epoll the
    /// connection is peeked at when taken). False when it cannot be watched,
    /// or its poll fired at once: do not keep it (in a pool, or for its
    /// client).
    pub fn arm(&mut self) -> bool {
        if self.stream.has_buffered() {
            return false;
        }
        if monoio::utils::is_legacy() {
            return true;
        }
        if self.watch.is_none() {
            match new_watch(self.stream.tcp()) {
                Ok(watch) => self.watch = Some(watch),
                Err(_) => return false,
            }
        }
        self.watch.as_mut().is_some_and(|w| w.arm())
    }

    /// Whether nothing arrived since the connection went idle: bytes, an end
    /// of stream or an error make the poll fire (or the peek see them, on
    /// epoll), and such a connection must be closed. The poll stays armed
    /// while the connection is in use.
    pub fn is_quiet(&mut self) -> bool {
        match &mut self.watch {
            Some(watch) => !watch.fired(),
            None if monoio::utils::is_legacy() => !readable_now(self.stream.tcp()),
            None => is_idle_and_open(self.stream.tcp()),
        }
    }
}

/// The poll of one connection, behind a trait object because the future's
/// type has no name.
trait Watch {
    /// Arms a poll unless one is armed already (one that has not fired
    /// still watches). False when it fired at once.
    fn arm(&mut self) -> bool;
    /// Whether the armed poll has fired.
    fn fired(&mut self) -> bool;
}

/// A readiness future made by `make` on `probe`, kept pinned in one box for
/// the life of the connection and replaced in place each time it is armed.
struct Readable<F> {
    /// A second descriptor of the connection's socket.
    probe: Rc<TcpStream>,
    make: fn(Rc<TcpStream>) -> F,
    poll: Pin<Box<Option<F>>>,
}

impl<F: Future<Output = io::Result<()>>> Watch for Readable<F> {
    fn arm(&mut self) -> bool {
        if self.poll.is_some() && !self.fired() {
            return true;
        }
        // The one it replaces has completed: dropping it frees nothing.
        self.poll.set(Some((self.make)(self.probe.clone())));
        !self.fired()
    }

    fn fired(&mut self) -> bool {
        let Some(fut) = self.poll.as_mut().as_pin_mut() else {
            return false;
        };
        let mut cx = Context::from_waker(Waker::noop());
        if fut.poll(&mut cx).is_pending() {
            return false;
        }
        self.poll.set(None);
        true
    }
}

/// Waits until `stream` has something to read (bytes or its end) or fails.
/// Not relaxed: on epoll a stale readiness is checked with `poll(2)` when
/// the poll is armed, not taken for an arrival.
/// On epoll: whether the driver has seen the socket readable since a read
/// last drained it (bytes, an end of stream or an error came), without a
/// syscall: one poll of a relaxed readiness wait, which is ready at once or
/// not. It sees what arrived up to the worker's last `epoll_wait`, as the
/// io_uring watch sees up to its last look at the ring; a request that could
/// not be sent again still pays for a peek (`Pool::take`).
fn readable_now(stream: &TcpStream) -> bool {
    let wait = std::pin::pin!(stream.readable(true));
    let mut cx = Context::from_waker(Waker::noop());
    wait.poll(&mut cx).is_ready()
}

async fn readable(stream: Rc<TcpStream>) -> io::Result<()> {
    stream.readable(false).await
}

/// A watch on a second descriptor of `stream`'s socket.
fn new_watch(stream: &TcpStream) -> io::Result<Box<dyn Watch>> {
    // SAFETY: the descriptor belongs to `stream`, which is open and
    // borrowed for the whole call; the borrow ends with it (dup(2) makes the
    // owned copy).
    let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) }.try_clone_to_owned()?;
    let probe = TcpStream::from_std(std::net::TcpStream::from(fd))?;
    Ok(Box::new(Readable {
        probe: Rc::new(probe),
        make: readable,
        poll: Box::pin(None),
    }))
}
