//! systemd's readiness protocol (`sd_notify`), without a dependency: one
//! datagram to the socket named by `$NOTIFY_SOCKET` for each change of
//! state. `READY=1` once every worker listens and the first health round is
//! done; `RELOADING=1` when a reload of the targets file begins (and
//! `READY=1` when it ends); `STOPPING=1` when a drain begins. With no
//! `$NOTIFY_SOCKET` (not under systemd, or not `Type=notify`) nothing is
//! sent. A datagram that cannot be sent is dropped: telling systemd is
//! never worth failing a request or a start over.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::OnceLock;

/// The socket systemd listens on, and one to send from.
struct Notifier {
    to: SocketAddr,
    from: UnixDatagram,
}

static NOTIFIER: OnceLock<Option<Notifier>> = OnceLock::new();

/// Where `$NOTIFY_SOCKET` points: a path, or `@name` for an abstract
/// socket. `None` when unset, empty or unusable.
fn notify_socket(value: Option<std::ffi::OsString>) -> Option<SocketAddr> {
    let value = value?;
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(value.as_os_str());
    match bytes {
        [] => None,
        [b'@', name @ ..] => SocketAddr::from_abstract_name(name).ok(),
        _ => SocketAddr::from_pathname(std::path::Path::new(&value)).ok(),
    }
}

fn notifier() -> Option<&'static Notifier> {
    NOTIFIER
        .get_or_init(|| {
            let to = notify_socket(std::env::var_os("NOTIFY_SOCKET"))?;
            let from = UnixDatagram::unbound().ok()?;
            Some(Notifier { to, from })
        })
        .as_ref()
}

/// Sends `state` (lines of `KEY=value`) to systemd, if it listens.
pub fn notify(state: &str) {
    if let Some(n) = notifier() {
        let _ = n.from.send_to_addr(state.as_bytes(), &n.to);
    }
}

/// Every worker listens and the first health round is done; `status` is
/// shown by `systemctl status`.
pub fn ready(status: &str) {
    // MAINPID: after an upgrade the successor is the unit's main process
    // (the unit needs NotifyAccess=all for systemd to take it from us).
    notify(&format!(
        "READY=1\nMAINPID={}\nSTATUS={}",
        std::process::id(),
        one_line(status)
    ));
}

/// A reload begins (`Type=notify-reload` wants the time it began).
pub fn reloading() {
    notify(&format!(
        "RELOADING=1\nMONOTONIC_USEC={}",
        monotonic_micros()
    ));
}

/// A reload ended, done or refused: the balancer serves as before.
pub fn reloaded() {
    notify("READY=1");
}

/// A drain begins.
pub fn stopping() {
    notify("STOPPING=1");
}

/// `status` on one line (a newline would start another `KEY=`).
fn one_line(status: &str) -> String {
    status.replace('\n', " ")
}

/// `CLOCK_MONOTONIC` in microseconds, the clock systemd reads.
fn monotonic_micros() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_MONOTONIC always
    // exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_socket_is_a_path_or_an_abstract_name() {
        let path = notify_socket(Some("/run/systemd/notify".into())).unwrap();
        assert_eq!(
            path.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        let abstract_name = notify_socket(Some("@lb-notify".into())).unwrap();
        assert_eq!(abstract_name.as_abstract_name(), Some(&b"lb-notify"[..]));
        assert!(notify_socket(Some("".into())).is_none());
        assert!(notify_socket(None).is_none());
    }

    #[test]
    fn a_status_stays_on_one_line() {
        assert_eq!(one_line("a\nb"), "a b");
    }
}
