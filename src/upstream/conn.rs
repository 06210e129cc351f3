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
//! something came, and the connection is closed. This is what nginx does
//! with the read event it keeps on idle upstream connections.
//!
//! The poll is a monoio `readable` future, polled once with a no-op waker so
//! that its operation is in the ring, and dropped (which cancels it) when
//! the connection is taken. It borrows the stream, so the stream sits in an
//! `Rc` that the poll holds a clone of while it is armed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use monoio::net::TcpStream;

/// A connection to a target.
pub struct Upstream {
    stream: Rc<TcpStream>,
    /// Made when the connection is first pooled, then armed and disarmed
    /// each time it goes idle and is taken again (no allocation then).
    watch: Option<Box<dyn Watch>>,
}

impl Upstream {
    pub fn new(stream: TcpStream) -> Upstream {
        Upstream {
            stream: Rc::new(stream),
            watch: None,
        }
    }

    /// The stream, for IO. Only a pooled connection has its poll armed, and
    /// a connection in use is not in a pool, so the `Rc` is not shared.
    #[inline]
    pub fn stream(&mut self) -> &mut TcpStream {
        Rc::get_mut(&mut self.stream).expect("a connection in use has no armed poll")
    }

    /// The stream alone, for a tunnel (it will not be pooled again).
    pub fn into_stream(self) -> TcpStream {
        drop(self.watch);
        Rc::into_inner(self.stream).expect("a connection in use has no armed poll")
    }

    /// Arms the poll, as the connection goes idle. False when something has
    /// arrived already (the epoll driver can tell at once): do not pool it.
    pub fn arm(&mut self) -> bool {
        let watch = self.watch.get_or_insert_with(new_watch);
        watch.arm(&self.stream);
        !watch.fired()
    }

    /// Disarms the poll, as the connection is taken from the pool. False
    /// when the poll fired: bytes, an end of stream or an error arrived
    /// while the connection was idle, and it must be closed.
    pub fn disarm(&mut self) -> bool {
        match &mut self.watch {
            Some(watch) => {
                let quiet = !watch.fired();
                watch.disarm();
                quiet
            }
            None => true,
        }
    }
}

/// The poll of one connection, behind a trait object because the future's
/// type has no name.
trait Watch {
    /// Starts watching `stream` for anything to read.
    fn arm(&mut self, stream: &Rc<TcpStream>);
    /// Whether the poll has fired since it was armed.
    fn fired(&mut self) -> bool;
    /// Stops watching (cancels the operation in the ring).
    fn disarm(&mut self);
}

/// A readiness future made by `make`, kept pinned in one box for the life
/// of the connection and replaced in place each time it is armed.
struct Readable<F> {
    make: fn(Rc<TcpStream>) -> F,
    poll: Pin<Box<Option<F>>>,
}

impl<F: Future<Output = io::Result<()>>> Watch for Readable<F> {
    fn arm(&mut self, stream: &Rc<TcpStream>) {
        self.poll.set(Some((self.make)(stream.clone())));
    }

    fn fired(&mut self) -> bool {
        // The first poll submits the operation; later ones look at whether
        // it completed. No task is woken: the waker is a no-op.
        match self.poll.as_mut().as_pin_mut() {
            Some(fut) => {
                let mut cx = Context::from_waker(Waker::noop());
                matches!(fut.poll(&mut cx), Poll::Ready(_))
            }
            None => false,
        }
    }

    fn disarm(&mut self) {
        self.poll.set(None);
    }
}

/// Waits until `stream` has something to read (bytes or its end) or fails.
/// Not relaxed: on epoll a stale readiness is checked with `poll(2)` when
/// the connection goes idle, not taken for an arrival.
fn readable(stream: Rc<TcpStream>) -> impl Future<Output = io::Result<()>> {
    async move { stream.readable(false).await }
}

fn new_watch() -> Box<dyn Watch> {
    Box::new(Readable {
        make: readable,
        poll: Box::pin(None),
    })
}
