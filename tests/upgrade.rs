//! Upgrades without a dropped request: a balancer started with
//! `--upgrade-socket` hands its listening sockets to a successor started
//! with `--upgrade-from`, which serves, then tells it to drain and exit;
//! the successor offers them in turn. Clients keep sending all along
//! (keep-alive ones and one connection per request) and none of their
//! requests fails. A successor that cannot start leaves the old one
//! serving.

mod support;
use support::*;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a balancer that handed over may take to drain and exit.
const EXIT_WAIT: Duration = Duration::from_secs(15);

/// A Unix socket path of the test's own.
fn socket_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "lb-upgrade-{name}-{}-{:?}.sock",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// The flags every generation runs with: one target, the upgrade socket,
/// and for successors `--upgrade-from` the same socket.
fn generation(target: &Backend, path: &Path, successor: bool, extra: &[&str]) -> Balancer {
    let path = path.to_str().expect("a UTF-8 path");
    let addr = target.addr().to_string();
    let mut args = vec!["-b", &addr, "--workers", "2", "--upgrade-socket", path];
    if successor {
        args.extend(["--upgrade-from", path]);
    }
    args.extend_from_slice(extra);
    Balancer::start(&args)
}

/// Clients sending requests until told to stop, counting answers and
/// failures.
struct Load {
    /// Requests sent again because their kept-alive connection closed
    /// under them with no answer begun.
    retried: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    errors: Arc<std::sync::Mutex<Vec<String>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// `keep_alive` clients that reuse their connection until the balancer
    /// closes it (`Connection: close`, as a draining one does), and
    /// `one_shot` clients that open a connection per request.
    fn start(addr: std::net::SocketAddr, keep_alive: usize, one_shot: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
        let retried = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        for n in 0..keep_alive + one_shot {
            let (stop, ok, failed, errors, retried) = (
                stop.clone(),
                ok.clone(),
                failed.clone(),
                errors.clone(),
                retried.clone(),
            );
            let close = n >= keep_alive;
            threads.push(std::thread::spawn(move || {
                let mut client: Option<Client> = None;
                while !stop.load(Ordering::SeqCst) {
                    let reused = client.is_some();
                    let c = match client.as_mut() {
                        Some(c) => c,
                        None => match Client::try_connect(addr) {
                            Ok(c) => client.insert(c),
                            Err(e) => {
                                failed.fetch_add(1, Ordering::SeqCst);
                                errors.lock().unwrap().push(format!("connect: {e}"));
                                continue;
                            }
                        },
                    };
                    let headers: &[(&str, &str)] = if close {
                        &[("Connection", "close")]
                    } else {
                        &[]
                    };
                    let sent = c.try_send(&request_bytes("GET", "/up", headers, b""));
                    let answer = sent.and_then(|_| c.try_read_response_to("GET"));
                    match answer {
                        Ok(r) if r.status == 200 => {
                            ok.fetch_add(1, Ordering::SeqCst);
                            let closing = r
                                .header("Connection")
                                .is_some_and(|v| v.eq_ignore_ascii_case("close"));
                            if close || closing {
                                client = None;
                            }
                            if close {
                                // Paced: a new connection per request leaves
                                // a socket in TIME_WAIT each, and the suite
                                // runs beside tests that need free ports.
                                std::thread::sleep(Duration::from_millis(2));
                            }
                        }
                        Ok(r) => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            errors.lock().unwrap().push(format!("status {}", r.status));
                            client = None;
                        }
                        // A kept-alive connection that a draining balancer
                        // closed as the request went out (it had been idle
                        // past the parking delay: a thread descheduled on a
                        // loaded machine): no byte of an answer came, and an
                        // HTTP client sends such a request again on a new
                        // connection (RFC 9112, 9.3.1). Counted apart.
                        Err(e) if reused && is_gone(&e) => {
                            retried.fetch_add(1, Ordering::SeqCst);
                            client = None;
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            errors.lock().unwrap().push(format!("request: {e}"));
                            client = None;
                        }
                    }
                }
            }));
        }
        Load {
            retried,
            stop,
            ok,
            failed,
            errors,
            threads,
        }
    }

    fn ok(&self) -> usize {
        self.ok.load(Ordering::SeqCst)
    }

    /// Waits until `n` more requests have been answered.
    fn wait_for_more(&self, n: usize) {
        let target = self.ok() + n;
        assert!(
            wait_for(Duration::from_secs(20), || self.ok() >= target),
            "the load stalled at {} answers ({} failed: {:?})",
            self.ok(),
            self.failed.load(Ordering::SeqCst),
            self.errors.lock().unwrap()
        );
    }

    /// Stops the clients; returns (answered, failed, errors, retried).
    fn stop(self) -> (usize, usize, Vec<String>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
        let errors = self.errors.lock().unwrap().clone();
        (
            self.ok.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
            errors,
            self.retried.load(Ordering::SeqCst),
        )
    }
}

/// Three upgrades in a row under load: every request is answered, each old
/// balancer exits 0 after handing over, and the port never changes.
#[test]
fn three_upgrades_under_load_lose_no_request() {
    let target = Backend::start("t");
    let path = socket_path("chain");
    let mut current = generation(&target, &path, false, &[]);
    let addr = current.addr();
    let load = Load::start(addr, 4, 2);
    load.wait_for_more(500);
    for round in 1..=3 {
        let next = generation(&target, &path, true, &[]);
        assert_eq!(next.addr(), addr, "round {round}: the port moved");
        assert!(
            next.startup_line().contains("listeners taken over from"),
            "{}",
            next.startup_line()
        );
        let status = current.wait_exit(EXIT_WAIT);
        assert!(
            status.is_some_and(|s| s.success()),
            "round {round}: the old balancer did not drain and exit 0: {status:?}\n{}",
            current.log().join("\n")
        );
        assert!(current.log_contains("took over the listeners; draining"));
        current = next;
        load.wait_for_more(500);
    }
    let (ok, failed, errors, retried) = load.stop();
    eprintln!("{ok} answered, {failed} failed, {retried} sent again");
    assert_eq!(failed, 0, "{ok} answered, {failed} failed: {errors:?}");
    // At most once per kept-alive client per drain, and only when one was
    // descheduled past the parking delay: none on an idle machine.
    assert!(retried <= 4 * 3, "{retried} requests had to be sent again");
    assert!(ok >= 2000, "only {ok} requests answered");
}

/// A successor that fails after taking the sockets (here: it wants another
/// port) exits non-zero, and the old balancer keeps serving on its port,
/// and can still be upgraded.
#[test]
fn a_successor_that_fails_leaves_the_old_one_serving() {
    let target = Backend::start("t");
    let path = socket_path("fail");
    let mut old = generation(&target, &path, false, &[]);
    let addr = old.addr();
    let spare = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other_port = spare.local_addr().unwrap().port().to_string();
    drop(spare);
    let path_str = path.to_str().unwrap();
    let run = Balancer::run(&[
        "--bind",
        "127.0.0.1",
        "-p",
        &other_port,
        "-b",
        &target.addr().to_string(),
        "--upgrade-from",
        path_str,
    ]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("not on the --port asked"),
        "{}",
        run.stderr
    );
    assert!(
        old.wait_for_log("not handed over", Duration::from_secs(5)),
        "{}",
        old.log().join("\n")
    );
    let mut c = Client::connect(addr);
    assert_eq!(c.request("GET", "/still", &[], b"").status, 200);
    assert_eq!(old.wait_exit(Duration::from_millis(200)), None);

    // A later, good successor still takes over.
    let next = generation(&target, &path, true, &[]);
    assert_eq!(next.addr(), addr);
    assert!(old.wait_exit(EXIT_WAIT).is_some_and(|s| s.success()));
    let mut c = Client::connect(addr);
    assert_eq!(c.request("GET", "/after", &[], b"").status, 200);
}

/// A balancer that offers its listeners refuses to start when another one
/// already offers on that socket (two would steal each other's
/// successors).
#[test]
fn an_upgrade_socket_in_use_is_refused() {
    let target = Backend::start("t");
    let path = socket_path("busy");
    let _first = generation(&target, &path, false, &[]);
    let run = Balancer::run(&[
        "--bind",
        "127.0.0.1",
        "-p",
        "0",
        "-b",
        &target.addr().to_string(),
        "--upgrade-socket",
        path.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("another balancer offers"),
        "{}",
        run.stderr
    );
}

/// The admin port is handed over too when the successor asks for the same
/// address, and HTTPS listeners go with the plain ones.
#[test]
fn admin_and_tls_listeners_are_handed_over() {
    let target = Backend::start("t");
    let path = socket_path("admin");
    let ca = support::tls::Ca::new("upgrade-root");
    let leaf = ca.leaf("lb", &["lb.test"]);
    let files = leaf.files();
    let mut tls_args: Vec<&str> = vec!["--tls-port", "0"];
    tls_args.extend(files.args());
    let mut old = generation(
        &target,
        &path,
        false,
        &[&["--admin", "127.0.0.1:0"], &tls_args[..]].concat(),
    );
    let admin = old.admin_addr().to_string();
    let https = support::tls::https_addr(&old);
    let mut args = vec!["--admin", admin.as_str()];
    args.extend_from_slice(&tls_args);
    let next = generation(&target, &path, true, &args);
    assert!(old.wait_exit(EXIT_WAIT).is_some_and(|s| s.success()));
    assert_eq!(next.admin_addr().to_string(), admin);
    assert_eq!(support::tls::https_addr(&next), https);
    let config = support::tls::default_client_config(&ca.trust());
    let mut c = support::tls::TlsClient::connect(https, "lb.test", &config);
    assert_eq!(c.get("/over-tls").status, 200);
    assert!(admin_get(&next, "/targets").contains("healthy"));
}

/// Kills a process by pid when dropped (a successor the test did not start
/// itself, so that no balancer outlives the test).
struct KillOnDrop(Option<i32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // SAFETY: kill with a pid the balancer reported; at worst the
            // process is gone already and the call fails.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
}

/// SIGUSR2 makes a balancer with `--upgrade-socket` start its own
/// successor (same program, same flags), which takes over: the old one
/// drains and exits 0 and the port keeps answering.
#[test]
fn sigusr2_starts_a_successor_that_takes_over() {
    let target = Backend::start("t");
    let path = socket_path("usr2");
    let mut old = generation(&target, &path, false, &[]);
    let addr = old.addr();
    old.signal(libc::SIGUSR2);
    assert!(
        old.wait_for_log("as process ", Duration::from_secs(10)),
        "{}",
        old.log().join("\n")
    );
    let line = old
        .log()
        .into_iter()
        .find(|l| l.contains("as process "))
        .unwrap();
    let pid: i32 = line
        .rsplit("as process ")
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"));
    let _successor = KillOnDrop(Some(pid));
    let status = old.wait_exit(EXIT_WAIT);
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        old.log().join("\n")
    );
    let mut c = Client::connect(addr);
    assert_eq!(
        c.request("GET", "/from-the-successor", &[], b"").status,
        200
    );
}

/// Without `--upgrade-socket`, SIGUSR2 starts nothing and says why.
#[test]
fn sigusr2_without_an_upgrade_socket_is_ignored() {
    let target = Backend::start("t");
    let lb = start_balancer(&[&target], &[]);
    lb.signal(libc::SIGUSR2);
    lb.expect_log("needs --upgrade-socket", Duration::from_secs(5));
    let mut c = Client::connect(lb.addr());
    assert_eq!(c.request("GET", "/", &[], b"").status, 200);
}

/// The connection closed (FIN or reset) before any byte of an answer.
fn is_gone(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe
    )
}
