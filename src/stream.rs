//! Socket helpers over monoio's owned-buffer IO: appending reads, gathered
//! writes of several `Bytes` in one `writev`, deadlines, and the liveness
//! peek for pooled connections; and [`Io`], the few operations the proxy
//! performs on a stream, which plain TCP and TLS (`crate::tls`) both
//! provide, so that one driver serves either.

use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use monoio::buf::{IoBufMut, IoVecBuf};
use monoio::io::{
    AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, CancelHandle, CancelableAsyncReadRent,
    Splitable,
};
use monoio::net::tcp::{TcpOwnedReadHalf, TcpOwnedWriteHalf};
use monoio::net::TcpStream;
use monoio::time::Sleep;

/// Most parts one `writev` carries; a head rarely needs more than five.
const MAX_IOVECS: usize = 64;

/// Why an IO step failed, as far as the proxy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoFail {
    /// The peer closed the stream (read returned 0, or write returned 0).
    Closed,
    /// The deadline passed. The stream must not be used again: a read that
    /// completed in the same tick has lost its bytes (see the monoio notes).
    TimedOut,
    /// The peer refused the connection.
    Refused,
    /// Any other error (reset, broken pipe, ...).
    Error,
}

impl From<io::Error> for IoFail {
    #[cold]
    fn from(e: io::Error) -> IoFail {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => IoFail::Refused,
            io::ErrorKind::TimedOut => IoFail::TimedOut,
            _ => IoFail::Error,
        }
    }
}

/// The operations the proxy performs on a stream, plain or TLS.
#[allow(async_fn_in_trait)]
pub trait Io {
    /// Reads more bytes into the spare capacity of `buf`, after what it
    /// holds, with room for at least `min_spare` made first. The buffer
    /// stays even on error; it is lost only if the future is dropped.
    async fn read_more(&mut self, buf: &mut BytesMut, min_spare: usize) -> Result<usize, IoFail>;
    /// Writes every part of `gather`, leaving it empty; on failure, says
    /// whether any byte went out.
    async fn write_gather_counted(&mut self, gather: &mut Gather) -> Result<(), WriteFail>;
    /// Writes all of `bytes`.
    async fn write_all(&mut self, bytes: Bytes) -> Result<(), IoFail>;
    /// Waits until a read would find bytes (or the end).
    async fn readable(&mut self) -> Result<(), IoFail>;
    /// Shuts the stream down for writing (TLS: after `close_notify`).
    async fn shutdown(&mut self);
}

/// A client connection's stream: what the driver needs beyond [`Io`].
#[allow(async_fn_in_trait)]
pub trait ClientStream: Io + Halves + 'static {
    /// Requests that came over it get `X-Forwarded-Proto: https`.
    const TLS: bool;
    /// Says goodbye before the connection is closed after a response (TLS:
    /// `close_notify`, which TLS clients expect; plain TCP: nothing).
    async fn goodbye(&mut self);
    /// Reads into `buf` from its start, cancelable: a cancelled read is
    /// still awaited, so bytes that came at that moment are kept, and ends
    /// with `ECANCELED`.
    async fn read_cancelable(
        &mut self,
        buf: BytesMut,
        cancel: CancelHandle,
    ) -> (io::Result<usize>, BytesMut);
    /// The address the client connected to: the accepted socket's own (one
    /// `getsockname`, the first time: monoio keeps it).
    fn local_addr(&self) -> io::Result<std::net::SocketAddr>;
    /// The TCP socket it runs over, whose readiness a parked connection
    /// waits for.
    fn socket(&self) -> &TcpStream;
    /// The socket itself when nothing is layered over it (plain TCP), so
    /// that a body can be spliced into it.
    #[inline]
    fn plain_tcp(&self) -> Option<&TcpStream> {
        (!Self::TLS).then(|| self.socket())
    }
}

/// A stream that splits into halves that work at once (for tunnels).
pub trait Halves {
    type Read: ReadHalf;
    type Write: WriteHalf;
    fn into_halves(self) -> (Self::Read, Self::Write);
}

/// The reading half of a split stream.
#[allow(async_fn_in_trait)]
pub trait ReadHalf {
    /// Reads into the spare capacity of `buf`; 0 is the end.
    async fn read_some(&mut self, buf: BytesMut) -> (io::Result<usize>, BytesMut);
}

/// The writing half of a split stream.
#[allow(async_fn_in_trait)]
pub trait WriteHalf {
    async fn write_all(&mut self, buf: BytesMut) -> (Result<(), IoFail>, BytesMut);
    async fn shutdown(&mut self);
}

impl Io for TcpStream {
    #[inline]
    async fn read_more(&mut self, buf: &mut BytesMut, min_spare: usize) -> Result<usize, IoFail> {
        tcp_read_more(self, buf, min_spare).await
    }

    #[inline]
    async fn write_gather_counted(&mut self, gather: &mut Gather) -> Result<(), WriteFail> {
        tcp_write_gather(self, gather).await
    }

    async fn write_all(&mut self, bytes: Bytes) -> Result<(), IoFail> {
        let (res, _) = AsyncWriteRentExt::write_all(self, bytes).await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn readable(&mut self) -> Result<(), IoFail> {
        TcpStream::readable(self, true).await.map_err(IoFail::from)
    }

    async fn shutdown(&mut self) {
        let _ = AsyncWriteRent::shutdown(self).await;
    }
}

impl ClientStream for TcpStream {
    const TLS: bool = false;

    #[inline]
    async fn goodbye(&mut self) {}

    #[inline]
    async fn read_cancelable(
        &mut self,
        buf: BytesMut,
        cancel: CancelHandle,
    ) -> (io::Result<usize>, BytesMut) {
        let (res, slice) = self.cancelable_read(buf.slice_mut(0..), cancel).await;
        (res, slice.into_inner())
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        TcpStream::local_addr(self)
    }

    fn socket(&self) -> &TcpStream {
        self
    }
}

impl Halves for TcpStream {
    type Read = TcpOwnedReadHalf;
    type Write = TcpOwnedWriteHalf;
    fn into_halves(self) -> (TcpOwnedReadHalf, TcpOwnedWriteHalf) {
        self.into_split()
    }
}

/// Runs `fut` under a deadline.
#[inline]
pub async fn deadline<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, IoFail>>,
) -> Result<T, IoFail> {
    match monoio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(IoFail::TimedOut),
    }
}

/// A deadline timer set again for each operation instead of made anew: one
/// per connection, living in its task (pinned there), so that a deadline
/// costs neither building a timer nor moving one around on every request.
pub struct Timer<'t>(Pin<&'t mut Sleep>);

impl<'t> Timer<'t> {
    /// Wraps a pinned timer; it is not in the timer wheel until first used.
    pub fn new(sleep: Pin<&'t mut Sleep>) -> Timer<'t> {
        Timer(sleep)
    }

    /// A timer to pin in a task and hand to `Timer::new`.
    pub fn unset() -> Sleep {
        monoio::time::sleep(Duration::from_secs(3600))
    }

    /// Waits until `until` (a backoff), with the same timer.
    pub async fn wait(&mut self, until: Instant) {
        self.0.as_mut().reset(until.into());
        self.0.as_mut().await
    }

    /// Runs `fut` until it finishes or `until` passes (a result that is
    /// ready wins over the deadline). A future cut short by the deadline is
    /// dropped: a read in it may lose bytes, so its connection must not be
    /// used again (see the monoio notes).
    ///
    /// `fut` is pinned by the caller (`pin!`), in the caller's own state,
    /// and the returned future holds two pointers: nothing is moved per
    /// operation. (An `async fn` taking `fut` by value copied it into its
    /// own state, and `select!` copied it again, at every read and write;
    /// at 1000 connections those copies wrote to lines of the connection's
    /// state that were no longer in the cache.)
    pub fn run<'a, F>(&'a mut self, until: Instant, fut: Pin<&'a mut F>) -> Deadline<'a, F> {
        self.0.as_mut().reset(until.into());
        Deadline {
            fut,
            sleep: self.0.as_mut(),
        }
    }
}

/// The future of [`Timer::run`].
#[must_use = "a deadline does nothing unless awaited"]
pub struct Deadline<'a, F> {
    fut: Pin<&'a mut F>,
    sleep: Pin<&'a mut Sleep>,
}

impl<T, F: Future<Output = Result<T, IoFail>>> Future for Deadline<'_, F> {
    type Output = Result<T, IoFail>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Poll::Ready(done) = this.fut.as_mut().poll(cx) {
            return Poll::Ready(done);
        }
        match this.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(IoFail::TimedOut)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Reads more bytes into the spare capacity of `buf` (see [`Io::read_more`]).
#[inline]
pub async fn read_more<S: Io>(
    stream: &mut S,
    buf: &mut BytesMut,
    min_spare: usize,
) -> Result<usize, IoFail> {
    stream.read_more(buf, min_spare).await
}

async fn tcp_read_more(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    min_spare: usize,
) -> Result<usize, IoFail> {
    if buf.capacity() - buf.len() < min_spare {
        buf.reserve(min_spare);
    }
    let owned = std::mem::take(buf);
    let len = owned.len();
    let (res, slice) = stream.read(owned.slice_mut(len..)).await;
    *buf = slice.into_inner();
    match res {
        Ok(0) => Err(IoFail::Closed),
        Ok(n) => Ok(n),
        Err(e) => Err(e.into()),
    }
}

/// Writes all of `bytes`.
#[inline]
pub async fn write_all<S: Io>(stream: &mut S, bytes: Bytes) -> Result<(), IoFail> {
    stream.write_all(bytes).await
}

/// A list of `Bytes` written with one `writev`: a head's kept parts, an
/// inserted header line and the first body bytes go out in one syscall
/// without being copied together. Reused per connection, so that pushing
/// allocates nothing once its vectors have grown.
#[derive(Default)]
pub struct Gather {
    parts: Vec<Bytes>,
    /// iovecs pointing into `parts`, rebuilt before each `writev`. On the
    /// heap, so the pointer handed to the kernel stays put while the future
    /// that owns the `Gather` moves.
    iov: Vec<libc::iovec>,
}

// SAFETY: `iov` describes memory owned by the `Bytes` in `parts`, which the
// `Gather` keeps alive and unchanged while the runtime owns it (between
// `sync` and the completion of the write); the `Vec` buffer behind `iov` is a
// heap allocation that does not move when the `Gather` does.
unsafe impl IoVecBuf for Gather {
    fn read_iovec_ptr(&self) -> *const libc::iovec {
        self.iov.as_ptr()
    }

    fn read_iovec_len(&self) -> usize {
        self.iov.len()
    }
}

impl Gather {
    /// Appends a part; empty parts are skipped.
    #[inline]
    pub fn push(&mut self, part: Bytes) {
        if !part.is_empty() {
            self.parts.push(part);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The parts still to write.
    pub fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    /// Total bytes left to write.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    pub fn clear(&mut self) {
        self.parts.clear();
        self.iov.clear();
    }

    /// Rebuilds the iovecs from the parts.
    fn sync(&mut self) {
        self.iov.clear();
        self.iov
            .extend(self.parts.iter().take(MAX_IOVECS).map(|p| libc::iovec {
                iov_base: p.as_ptr() as *mut libc::c_void,
                iov_len: p.len(),
            }));
    }

    /// Forgets the first `n` bytes, which were written.
    fn advance(&mut self, mut n: usize) {
        let mut done = 0;
        for part in self.parts.iter_mut() {
            if n >= part.len() {
                n -= part.len();
                done += 1;
            } else {
                part.advance(n);
                break;
            }
        }
        self.parts.drain(..done);
    }
}

/// Writes every part of `gather` and leaves it empty. On error the gather
/// is left empty too.
#[inline]
pub async fn write_gather<S: Io>(stream: &mut S, gather: &mut Gather) -> Result<(), IoFail> {
    stream
        .write_gather_counted(gather)
        .await
        .map_err(|e| e.fail)
}

/// A gathered write that failed, and whether part of it had gone out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteFail {
    pub fail: IoFail,
    /// Some bytes were written before the failure.
    pub partial: bool,
}

/// [`write_gather`] that tells, when it fails, whether any byte went out:
/// a request none of which was written never reached the target.
#[inline]
pub async fn write_gather_counted<S: Io>(
    stream: &mut S,
    gather: &mut Gather,
) -> Result<(), WriteFail> {
    stream.write_gather_counted(gather).await
}

async fn tcp_write_gather(stream: &mut TcpStream, gather: &mut Gather) -> Result<(), WriteFail> {
    let mut partial = false;
    while !gather.is_empty() {
        let mut owned = std::mem::take(gather);
        owned.sync();
        let (res, back) = stream.writev(owned).await;
        *gather = back;
        let fail = match res {
            Ok(0) => IoFail::Closed,
            Ok(n) => {
                gather.advance(n);
                partial = true;
                continue;
            }
            Err(e) => e.into(),
        };
        gather.clear();
        return Err(WriteFail { fail, partial });
    }
    gather.iov.clear();
    Ok(())
}

/// Whether an idle pooled connection is still open and quiet: a
/// non-blocking peek sees nothing to read. A closed connection reads 0; a
/// target that sent something unasked (a 408 before closing, say) has bytes
/// waiting: neither can carry a request.
pub fn is_idle_and_open(stream: &TcpStream) -> bool {
    let mut byte = 0u8;
    // SAFETY: recv writes at most 1 byte into `byte`, a valid local; the
    // fd belongs to `stream`, which outlives the call.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
}

/// Connects to `addr`, with TCP_NODELAY set. Timing out a connect is safe
/// (no data can be lost): callers bound it with a deadline.
pub async fn connect(addr: std::net::SocketAddr) -> Result<TcpStream, IoFail> {
    let stream = TcpStream::connect_addr(addr).await?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_drops_written_parts_and_trims_the_next() {
        let mut g = Gather::default();
        g.push(Bytes::from_static(b"abc"));
        g.push(Bytes::new());
        g.push(Bytes::from_static(b"defg"));
        g.push(Bytes::from_static(b"h"));
        assert_eq!(g.len(), 8);
        g.sync();
        assert_eq!(g.read_iovec_len(), 3);
        g.advance(5);
        assert_eq!(
            g.parts,
            vec![Bytes::from_static(b"fg"), Bytes::from_static(b"h")]
        );
        g.advance(3);
        assert!(g.is_empty());
    }
}
