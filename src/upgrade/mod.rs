//! Upgrades without a dropped connection, as HAProxy's `-x` and Pingora's
//! graceful upgrade do: the running balancer hands its listening sockets to
//! its successor, which accepts on them, so that nothing in their accept
//! queues is lost and no port is ever closed.
//!
//! A balancer started with `--upgrade-socket PATH` offers its listeners on
//! that Unix socket (a thread of its own, blocking). A new one started with
//! `--upgrade-from PATH`:
//!
//! 1. sends `take <pid>`; the old one answers with a description of its
//!    listeners (`plain ADDR`, `tls ADDR`, `admin ADDR` lines, then `end`)
//!    and their descriptors, in one message (`SCM_RIGHTS`, see [`fds`]);
//! 2. starts its workers on them (binding only what it has more of), runs
//!    its first health round, and sends `ready`;
//! 3. the old one answers `draining`, stops accepting and drains as on
//!    SIGTERM (its copies of the sockets close; the sockets stay open in the
//!    new process), then exits;
//! 4. the new one offers its own listeners on its `--upgrade-socket`, so
//!    that upgrades chain.
//!
//! A new process that fails before `ready` (a bad flag, a port it does not
//! serve) closes the connection, and the old one keeps serving.
//!
//! On SIGUSR2 a balancer with `--upgrade-socket` starts its successor itself
//! ([`successor`]): the program at the path it was started by (the new
//! binary, once a package replaced it), with the same flags. Under systemd
//! that keeps the successor in the unit, which it tells its pid.

pub mod fds;
pub mod successor;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::signals::Events;

/// How long a new process may take from `take` to `ready` (its first
/// health round included).
const READY_WAIT: Duration = Duration::from_secs(120);

/// How long either side waits for the other's next short line.
const LINE_WAIT: Duration = Duration::from_secs(10);

/// Largest description accepted.
const MAX_DESCRIPTION: usize = 64 * 1024;

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `-p`: plain HTTP.
    Plain,
    /// `--tls-port`: HTTPS.
    Tls,
    /// `--admin`.
    Admin,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Plain => "plain",
            Kind::Tls => "tls",
            Kind::Admin => "admin",
        }
    }
}

/// A listener as offered: what it serves, where, and its descriptor (owned
/// by the worker that accepts on it, alive while the process serves).
#[derive(Debug, Clone, Copy)]
pub struct Offered {
    pub kind: Kind,
    pub addr: SocketAddr,
    pub fd: RawFd,
}

/// A listener taken over from the old process.
#[derive(Debug)]
pub struct Taken {
    pub kind: Kind,
    pub addr: SocketAddr,
    pub fd: OwnedFd,
}

/// The description sent with the descriptors, one line each, in order.
pub fn describe(listeners: &[(Kind, SocketAddr)]) -> String {
    let mut text = String::new();
    for (kind, addr) in listeners {
        text.push_str(&format!("{} {addr}\n", kind.as_str()));
    }
    text.push_str("end\n");
    text
}

/// Reads a description back; `None` until its `end` line has come.
pub fn parse(text: &str) -> Result<Option<Vec<(Kind, SocketAddr)>>, String> {
    let mut listeners = Vec::new();
    for line in text.split_inclusive('\n') {
        let Some(line) = line.strip_suffix('\n') else {
            return Ok(None);
        };
        if line == "end" {
            return Ok(Some(listeners));
        }
        let bad = || format!("unexpected line in the handover: '{line}'");
        let (kind, addr) = line.split_once(' ').ok_or_else(bad)?;
        let kind = match kind {
            "plain" => Kind::Plain,
            "tls" => Kind::Tls,
            "admin" => Kind::Admin,
            _ => return Err(bad()),
        };
        listeners.push((kind, addr.parse().map_err(|_| bad())?));
    }
    Ok(None)
}

/// The new process's side of a handover in progress.
pub struct Handover {
    sock: UnixStream,
    path: PathBuf,
    /// The listeners taken, in the old process's order.
    pub listeners: Vec<Taken>,
}

/// Takes the listeners of the balancer offering them on `path`.
pub fn take(path: &Path) -> Result<Handover, String> {
    let fail = |what: String| format!("--upgrade-from {}: {what}", path.display());
    let mut sock = UnixStream::connect(path).map_err(|e| fail(format!("cannot connect: {e}")))?;
    sock.set_read_timeout(Some(LINE_WAIT))
        .and_then(|_| sock.set_write_timeout(Some(LINE_WAIT)))
        .and_then(|_| writeln!(sock, "take {}", std::process::id()))
        .map_err(|e| fail(format!("cannot ask: {e}")))?;
    let mut buf = vec![0u8; MAX_DESCRIPTION];
    let (mut len, fds) =
        fds::recv_fds(&sock, &mut buf).map_err(|e| fail(format!("no listeners came: {e}")))?;
    let described = loop {
        let text = std::str::from_utf8(&buf[..len]).map_err(|_| fail("not text".into()))?;
        if let Some(listeners) = parse(text).map_err(fail)? {
            break listeners;
        }
        let more = sock
            .read(&mut buf[len..])
            .map_err(|e| fail(format!("cut short: {e}")))?;
        if more == 0 {
            return Err(fail("the running balancer closed the handover".into()));
        }
        len += more;
    };
    if described.len() != fds.len() || fds.is_empty() {
        return Err(fail(format!(
            "{} listeners described, {} descriptors received",
            described.len(),
            fds.len()
        )));
    }
    let listeners = described
        .into_iter()
        .zip(fds)
        .map(|((kind, addr), fd)| Taken { kind, addr, fd })
        .collect();
    Ok(Handover {
        sock,
        path: path.to_path_buf(),
        listeners,
    })
}

impl Handover {
    /// Tells the old process that this one serves: it stops accepting and
    /// drains. Returns once it has said so (or gone).
    pub fn ready(self) -> Result<(), String> {
        let mut sock = self.sock;
        let fail = |what: String| format!("upgrade from {}: {what}", self.path.display());
        writeln!(sock, "ready").map_err(|e| fail(format!("cannot say ready: {e}")))?;
        let mut line = String::new();
        let _ = BufReader::new(&sock).read_line(&mut line);
        match line.trim_end() {
            "draining" | "" => Ok(()),
            other => Err(fail(format!("unexpected answer '{other}'"))),
        }
    }
}

/// Offers `listeners` on a Unix socket at `path`, on a thread of its own,
/// until a successor takes them (then raises `events.shutdown`, marked as
/// an upgrade) or a shutdown begins. `replace` removes a socket file still
/// there (from the process this one took over from).
pub fn offer(
    path: &Path,
    listeners: Vec<Offered>,
    events: &'static Events,
    replace: bool,
) -> Result<(), String> {
    let fail = |what: String| format!("--upgrade-socket {}: {what}", path.display());
    if path.exists() {
        if !replace && UnixStream::connect(path).is_ok() {
            return Err(fail("another balancer offers its listeners there".into()));
        }
        std::fs::remove_file(path).map_err(|e| fail(format!("cannot replace it: {e}")))?;
    }
    let socket = UnixListener::bind(path).map_err(|e| fail(format!("cannot listen: {e}")))?;
    std::thread::Builder::new()
        .name("upgrade".into())
        .spawn(move || serve_offers(socket, listeners, events))
        .map_err(|e| fail(format!("cannot start its thread: {e}")))?;
    Ok(())
}

/// One successor at a time, until one takes over.
fn serve_offers(socket: UnixListener, listeners: Vec<Offered>, events: &'static Events) {
    for conn in socket.incoming() {
        if events.shutdown.count() > 0 {
            return;
        }
        let Ok(conn) = conn else { continue };
        match hand_over(conn, &listeners, events) {
            Ok(pid) => {
                log!(
                    notice,
                    "upgrade: process {pid} took over the listeners; draining"
                );
                events.shutdown.raise();
                return;
            }
            Err(e) => log!(warn, "upgrade: not handed over ({e}); still serving"),
        }
    }
}

/// Sends the listeners to one successor and waits for its `ready`;
/// returns its pid.
fn hand_over(conn: UnixStream, listeners: &[Offered], events: &Events) -> Result<String, String> {
    let io = |e: std::io::Error| e.to_string();
    conn.set_read_timeout(Some(LINE_WAIT)).map_err(io)?;
    conn.set_write_timeout(Some(LINE_WAIT)).map_err(io)?;
    let mut reader = BufReader::new(&conn);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(io)?;
    let pid = match line.trim_end().strip_prefix("take ") {
        Some(pid) => pid.to_string(),
        None => return Err(format!("unexpected request '{}'", line.trim_end())),
    };
    let copies = copies(listeners, events)?;
    let described: Vec<_> = listeners.iter().map(|l| (l.kind, l.addr)).collect();
    let raw: Vec<RawFd> = copies.iter().map(AsRawFd::as_raw_fd).collect();
    fds::send_fds(&conn, describe(&described).as_bytes(), &raw).map_err(io)?;
    drop(copies);
    conn.set_read_timeout(Some(READY_WAIT)).map_err(io)?;
    line.clear();
    reader.read_line(&mut line).map_err(io)?;
    if line.trim_end() != "ready" {
        return Err(format!("process {pid} went away before it was ready"));
    }
    let _ = (&conn).write_all(b"draining\n");
    Ok(pid)
}

/// Copies of the listeners' descriptors, each checked to be the listening
/// socket it was (a worker closes its listener when a drain begins, and the
/// number could have gone to another socket since): refused once a shutdown
/// has begun, or if any is not the listener it was.
fn copies(listeners: &[Offered], events: &Events) -> Result<Vec<OwnedFd>, String> {
    if events.shutdown.count() > 0 {
        return Err("a shutdown has begun".into());
    }
    listeners
        .iter()
        .map(|l| match fds::copy_listener(l.fd, l.addr) {
            Ok(Some(copy)) => Ok(copy),
            Ok(None) => Err(format!("the listener on {} is gone", l.addr)),
            Err(e) => Err(format!("cannot copy the listener on {}: {e}", l.addr)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_reads_back() {
        let listeners = vec![
            (Kind::Plain, "0.0.0.0:8080".parse().unwrap()),
            (Kind::Plain, "0.0.0.0:8080".parse().unwrap()),
            (Kind::Tls, "[::1]:8443".parse().unwrap()),
            (Kind::Admin, "127.0.0.1:9901".parse().unwrap()),
        ];
        let text = describe(&listeners);
        assert_eq!(parse(&text), Ok(Some(listeners)));
    }

    #[test]
    fn a_description_without_its_end_is_not_complete() {
        assert_eq!(parse("plain 0.0.0.0:1\n"), Ok(None));
        assert_eq!(parse("plain 0.0.0.0:1\nen"), Ok(None));
        assert_eq!(parse(""), Ok(None));
    }

    #[test]
    fn a_bad_line_is_refused() {
        assert!(parse("udp 0.0.0.0:1\nend\n").is_err());
        assert!(parse("plain nowhere\nend\n").is_err());
        assert!(parse("plain\nend\n").is_err());
    }

    #[test]
    fn only_a_listener_still_on_its_address_is_copied() {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let copy = fds::copy_listener(listener.as_raw_fd(), addr).unwrap();
        assert!(copy.is_some());
        // A connection on the same port is not a listener.
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(fds::copy_listener(accepted.as_raw_fd(), addr)
            .unwrap()
            .is_none());
        // A listener somewhere else is not the one offered.
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(fds::copy_listener(other.as_raw_fd(), addr)
            .unwrap()
            .is_none());
        drop(client);
    }

    #[test]
    fn descriptors_cross_a_socket_pair_with_their_description() {
        let (a, b) = UnixStream::pair().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let text = describe(&[(Kind::Plain, addr)]);
        use std::os::fd::AsRawFd;
        fds::send_fds(&a, text.as_bytes(), &[listener.as_raw_fd()]).unwrap();
        let mut buf = [0u8; 256];
        let (n, fds) = fds::recv_fds(&b, &mut buf).unwrap();
        assert_eq!(&buf[..n], text.as_bytes());
        assert_eq!(fds.len(), 1);
        let taken = std::net::TcpListener::from(fds.into_iter().next().unwrap());
        assert_eq!(taken.local_addr().unwrap(), addr);
        // The same socket: a connection to it is accepted on the copy.
        drop(listener);
        let _client = std::net::TcpStream::connect(addr).unwrap();
        assert!(taken.accept().is_ok());
    }
}
