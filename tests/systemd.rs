//! Under systemd (`Type=notify`): the balancer tells `$NOTIFY_SOCKET` that
//! it is ready once it serves, that a reload begins and ends, and that it
//! is stopping; here the socket is the test's own.

mod support;
use support::*;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Instant;

/// A notify socket of the test's own, bound to a path.
struct NotifySocket {
    socket: UnixDatagram,
    path: TempFile,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let path = TempFile::new("notify");
        let socket = UnixDatagram::bind(path.arg()).expect("bind the notify socket");
        NotifySocket { socket, path }
    }

    /// The next datagram, within `WAIT`.
    fn next(&self) -> String {
        self.socket.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).expect("no notification in time");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Datagrams until one has the line `line`; all of them.
    fn until(&self, line: &str) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            let message = self.next();
            let found = message.lines().any(|l| l == line);
            seen.push(message);
            if found {
                return seen;
            }
        }
        panic!("no {line} in {seen:?}");
    }
}

fn start(notify_socket: &str, backends: &[&Backend], extra: &[&str]) -> Balancer {
    start_balancer_env(backends, extra, &[("NOTIFY_SOCKET", notify_socket)])
}

#[test]
fn ready_once_it_serves_and_stopping_when_the_drain_begins() {
    let target = Backend::start("a");
    let notify = NotifySocket::bind();
    let mut lb = start(notify.path.arg(), &[&target], &[]);
    let ready = notify.until("READY=1");
    assert_eq!(ready.len(), 1, "{ready:?}");
    assert!(
        ready[0].contains("STATUS=listening on "),
        "the start-up line is the status: {ready:?}"
    );
    // Its pid, which after an upgrade is the unit's new main process.
    assert!(
        ready[0].contains(&format!("MAINPID={}\n", lb.pid())),
        "{ready:?}"
    );
    // Ready means serving.
    assert_eq!(get(lb.addr(), "/").status, 200);

    lb.terminate();
    notify.until("STOPPING=1");
    assert!(lb.wait_exit(WAIT).is_some(), "did not exit");
}

#[test]
fn a_reload_is_reloading_then_ready_again_done_or_refused() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let file = targets_file(&[&a]);
    let notify = NotifySocket::bind();
    let lb = start(notify.path.arg(), &[], &["--targets-file", file.arg()]);
    notify.until("READY=1");

    set_targets(&file, &[&a, &b]);
    sighup(&lb);
    let reloading = notify.next();
    assert!(
        reloading.lines().any(|l| l == "RELOADING=1")
            && reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reloading:?}"
    );
    assert_eq!(notify.next(), "READY=1");

    // A refused reload ends the same way: the running set stays, and so
    // does the service.
    file.write("not a target\n");
    sighup(&lb);
    assert!(notify.next().starts_with("RELOADING=1"));
    assert_eq!(notify.next(), "READY=1");
    assert!(
        wait_for(WAIT, || lb.log_contains(REFUSED)),
        "{:?}",
        lb.log()
    );
}

#[test]
fn an_abstract_notify_socket_is_used_too() {
    let target = Backend::start("a");
    let name = format!("lb-tests-notify-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = UnixDatagram::bind_addr(&addr).expect("bind the abstract socket");
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let _lb = start(&format!("@{name}"), &[&target], &[]);
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("no notification in time");
    let message = String::from_utf8_lossy(&buf[..n]);
    assert!(message.starts_with("READY=1\n"), "{message:?}");
}
