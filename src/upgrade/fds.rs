//! File descriptors passed between processes over a Unix stream socket
//! (`SCM_RIGHTS`): the only code of the upgrade that needs `unsafe`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// Most descriptors one message carries (listeners: two per worker and the
/// admin port).
pub const MAX_FDS: usize = 253;

/// Room for the control message of `MAX_FDS` descriptors.
const CMSG_ROOM: usize = 64 + MAX_FDS * std::mem::size_of::<RawFd>();

/// A control message buffer, aligned as its header (`cmsghdr`) must be.
#[repr(C, align(8))]
struct Control([u8; CMSG_ROOM]);

/// Sends `payload` and `fds` in one message.
pub fn send_fds(sock: &UnixStream, payload: &[u8], fds: &[RawFd]) -> io::Result<()> {
    if fds.len() > MAX_FDS || payload.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many descriptors, or nothing to say",
        ));
    }
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    };
    let mut control = Control([0u8; CMSG_ROOM]);
    let fd_bytes = std::mem::size_of_val(fds);
    // SAFETY: `msg` points at `iov` (one buffer of `payload`, read only by
    // the kernel) and at `control`, which is large enough for one header
    // and `fds` (checked against MAX_FDS above); CMSG_FIRSTHDR of a message
    // whose control length covers a header is non-null, and CMSG_DATA of it
    // has room for `fd_bytes` bytes. The descriptors are valid for the call:
    // the caller owns them.
    let sent = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            msg.msg_control = control.0.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(fd_bytes as u32) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(fd_bytes as u32) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr().cast::<u8>(),
                libc::CMSG_DATA(cmsg),
                fd_bytes,
            );
        }
        libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL)
    };
    match sent {
        n if n < 0 => Err(io::Error::last_os_error()),
        n if n as usize != payload.len() => Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "the message went out in part",
        )),
        _ => Ok(()),
    }
}

/// Receives one message into `buf`, with the descriptors it carries (each
/// closed on exec).
pub fn recv_fds(sock: &UnixStream, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = Control([0u8; CMSG_ROOM]);
    let mut fds = Vec::new();
    // SAFETY: `msg` points at `iov` (the caller's `buf`, writable for its
    // length) and at `control` (writable for its length); the kernel writes
    // at most that much of each. Walking the control messages with
    // CMSG_FIRSTHDR/CMSG_NXTHDR stays within `msg_controllen`, which the
    // kernel set; an SCM_RIGHTS message's data holds (len - CMSG_LEN(0)) /
    // 4 descriptors, read unaligned, each a new descriptor the kernel
    // installed for this process, which nothing else owns: wrapping each in
    // an OwnedFd makes it closed exactly once.
    let n = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = CMSG_ROOM as _;
        let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        if msg.msg_flags & libc::MSG_CTRUNC != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "more descriptors than expected",
            ));
        }
        n as usize
    };
    Ok((n, fds))
}

/// A copy of the listener `fd` offered for `addr`, if it still is that: a
/// worker closes its listener when a drain begins, and the number may have
/// gone to another socket (a client's, on the same port) since.
pub fn copy_listener(fd: RawFd, addr: SocketAddr) -> io::Result<Option<OwnedFd>> {
    // SAFETY: the descriptor is borrowed only to duplicate it (the
    // duplicate is checked below before any use); a closed number makes the
    // duplication fail with EBADF.
    let copy = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?;
    if !is_listening(&copy) {
        return Ok(None);
    }
    let probe = std::net::TcpListener::from(copy.try_clone()?);
    Ok((probe.local_addr()? == addr).then_some(copy))
}

/// Whether `fd` is a socket in the listening state (`SO_ACCEPTCONN`).
fn is_listening(fd: &OwnedFd) -> bool {
    let mut on: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `on`, a valid local
    // of that size; the descriptor is owned by the caller for the call.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut on as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    ret == 0 && on != 0
}
