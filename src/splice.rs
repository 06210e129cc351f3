//! Zero-copy bodies: the rest of a response body of known length goes from
//! the target's socket to the client's through a pipe with `splice(2)`, so
//! its bytes never pass through user space (the kernel moves references to
//! the pages). Plain TCP on both sides only: TLS must see the bytes.
//!
//! The calls are non-blocking `splice(2)` made by the worker itself, on
//! either driver. io_uring's `IORING_OP_SPLICE` is not used: the kernel
//! always runs it in a worker thread of its own (io-wq), a thread hop per
//! call. When a socket has nothing to give (or no room), the task waits for
//! its readiness (a poll on io_uring, epoll otherwise) and tries again, as
//! an epoll relay would.
//!
//! Exactly the body's bytes are moved: what a target sends beyond them stays
//! in its socket, where the pool's check sees it and closes the connection.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::pin;
use std::task::{Context, Waker};
use std::time::Instant;

use monoio::net::TcpStream;

use crate::stream::{IoFail, Timer};

/// Bodies with fewer bytes than this left after the first read are copied
/// through the read buffer: for them, the calls splicing adds cost more
/// than the copies it saves.
pub const SPLICE_MIN: u64 = 32 * 1024;

/// Capacity asked of each pipe (`F_SETPIPE_SZ`; the default is 64 KiB, and
/// 1 MiB is the usual `/proc/sys/fs/pipe-max-size`).
const PIPE_SIZE: usize = 1024 * 1024;

/// Spare pipes a worker keeps; more are closed.
const SPARE_PIPES: usize = 32;

/// A pipe, empty whenever it is not lent to a splice in progress.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    size: usize,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let mut fds: [libc::c_int; 2] = [-1; 2];
        // SAFETY: pipe2 writes two descriptors into the array it is given,
        // which has room for both.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just made by pipe2 and belong to
        // nothing else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: fcntl on a descriptor owned here; no memory is passed.
        let size = unsafe {
            libc::fcntl(
                write.as_raw_fd(),
                libc::F_SETPIPE_SZ,
                PIPE_SIZE as libc::c_int,
            )
        };
        let size = if size > 0 { size as usize } else { 64 * 1024 };
        Ok(Pipe { read, write, size })
    }
}

/// A worker's spare pipes.
#[derive(Default)]
pub struct PipePool {
    free: RefCell<Vec<Pipe>>,
}

impl PipePool {
    /// An empty pipe: a spare one, or a new one.
    pub fn take(&self) -> io::Result<Pipe> {
        match self.free.borrow_mut().pop() {
            Some(pipe) => Ok(pipe),
            None => Pipe::new(),
        }
    }

    /// Gives back a pipe that a splice emptied (one cut off midway may hold
    /// bytes, and is dropped instead).
    pub fn give(&self, pipe: Pipe) {
        let mut free = self.free.borrow_mut();
        if free.len() < SPARE_PIPES {
            free.push(pipe);
        }
    }
}

/// Moves exactly `len` bytes from `from` to `to` through `pipe`. Each wait
/// for a socket ends by `until()` (taken when the wait begins). `sent`
/// counts the bytes that reached `to`. On `Ok`, the pipe is empty again.
pub async fn splice_exact(
    from: &TcpStream,
    to: &TcpStream,
    pipe: &Pipe,
    len: u64,
    timer: &mut Timer<'_>,
    until: impl Fn() -> Instant,
    sent: &mut u64,
) -> Result<(), IoFail> {
    // On io_uring the sockets are made blocking; a splice must not block
    // the worker. io_uring's own operations on them are unchanged (they
    // wait by polling either way).
    if !monoio::utils::is_legacy() {
        set_nonblocking(from.as_raw_fd())?;
        set_nonblocking(to.as_raw_fd())?;
    }
    let (source, sink) = (from.as_raw_fd(), to.as_raw_fd());
    let mut unread = len;
    let mut held = 0usize;
    while unread > 0 || held > 0 {
        if held == 0 {
            let want = unread.min(pipe.size as u64) as usize;
            match splice(source, pipe.write.as_raw_fd(), want) {
                Ok(0) => return Err(IoFail::Closed),
                Ok(n) => {
                    unread -= n as u64;
                    held = n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    timer
                        .run(until(), pin!(readiness(from.readable(false))))
                        .await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        match splice(pipe.read.as_raw_fd(), sink, held) {
            Ok(0) => return Err(IoFail::Closed),
            Ok(n) => {
                held -= n;
                *sent += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                timer
                    .run(until(), pin!(readiness(to.writable(false))))
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if monoio::utils::is_legacy() {
        forget_stale_readiness(from);
    }
    Ok(())
}

/// On epoll, the driver still takes `stream` for readable since its last
/// event: splice(2) is not one of its reads, so draining the socket did not
/// clear that. One look with poll(2) (a non-relaxed readiness wait, polled
/// once) clears it unless bytes really wait, so that the pool's check,
/// which trusts the driver, keeps the connection.
fn forget_stale_readiness(stream: &TcpStream) {
    let wait = std::pin::pin!(stream.readable(false));
    let _ = wait.poll(&mut Context::from_waker(Waker::noop()));
}

async fn readiness(wait: impl Future<Output = io::Result<()>>) -> Result<(), IoFail> {
    wait.await.map_err(IoFail::from)
}

/// One non-blocking `splice(2)` of at most `len` bytes.
fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: with null offsets, splice(2) reads and writes no memory of
    // this process; both descriptors are open for the call (their owners
    // are borrowed by the caller).
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn set_nonblocking(fd: RawFd) -> Result<(), IoFail> {
    // SAFETY: fcntl(F_SETFL) on a descriptor the caller borrows; no memory
    // is passed. A socket's other status flags are none that F_SETFL sets.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error().into());
    }
    Ok(())
}
