//! Harness for the end-to-end tests: real sockets on loopback, real target
//! servers, the real binary. Each test file does `mod support; use support::*;`.
//!
//! - [`Backend`] (`backend.rs`): an HTTP/1.1 target with switchable faults
//!   ([`Mode`]), a scriptable health endpoint, counters and a log of received
//!   requests.
//! - [`Balancer`] (`balancer.rs`): the `load-balancer` binary as a child
//!   process; its address is read from its `listening on` line.
//! - [`Client`] (`client.rs`): a raw client that sends exact bytes and reads
//!   responses one at a time (1xx, chunked, until-close, pipelined).
//! - [`Scrape`] (`scrape.rs`): `/metrics`, read and parsed into series.
//! - `admin.rs`: the admin endpoint and `--targets-file` as an operator
//!   drives them (`/targets`, `POST /reload`, SIGHUP).
//! - [`TempFile`] (`tempfile.rs`): a file for a flag that takes a path.
//! - [`DnsServer`] (`dns.rs`): a DNS server on loopback for `--resolver`,
//!   answering from a table the test changes (or SERVFAIL, or nothing);
//!   and targets on 127.0.0.2, 127.0.0.3, ... sharing a port, as a name's
//!   addresses do.
//! - `checks.rs`: assertions several files make (a refused request, an
//!   answer the balancer wrote itself, a run that must fail).
//! - `wire.rs`: the buffered head and body reader both sides share.
//!
//! Nothing here sleeps a fixed time to let things settle: waits are for a
//! condition, with a deadline ([`wait_until`], [`wait_for`]).

// Each test file uses a different part of the harness.
#![allow(dead_code)]

mod admin;
mod backend;
mod balancer;
mod checks;
mod client;
mod dns;
mod scrape;
mod tempfile;
pub mod tls;
mod wire;

use std::time::{Duration, Instant};

// A test file that uses part of the harness must not warn about the rest.
#[allow(unused_imports)]
pub use admin::{
    admin, admin_get, post_reload, set_targets, sighup, sighup_reload, start_admin, target_row,
    targets_file, targets_list, targets_text, REFUSED,
};
#[allow(unused_imports)]
pub use backend::{
    raw_response, set_linger_zero, upgrade_request, Backend, Mode, Recorded, DIE_MID_BODY_LENGTH,
    DIE_MID_BODY_SENT, HEALTH_PATH, LATE_DELAY, WEBSOCKET_ACCEPT, WEBSOCKET_KEY,
};
#[allow(unused_imports)]
pub use balancer::{balancer_program, Balancer, RunOutput, ADMIN_ON, LISTENING, START_TIMEOUT};
#[allow(unused_imports)]
pub use checks::{
    assert_exit_line, assert_flag_error, assert_rejected, assert_rejected_with,
    assert_short_text_line,
};
#[allow(unused_imports)]
pub use client::{get, request_bytes, Client, Response, CLIENT_TIMEOUT};
#[allow(unused_imports)]
pub use dns::{backends_on_one_port, DnsMode, DnsServer};
#[allow(unused_imports)]
pub use scrape::Scrape;
#[allow(unused_imports)]
pub use tempfile::TempFile;
#[allow(unused_imports)]
pub(crate) use wire::is_disconnect;

/// How often the wait helpers check their condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(2);

/// Deadline of a wait for a condition that should hold almost at once (or
/// soon after a timeout under test) when the balancer is correct.
pub const WAIT: Duration = Duration::from_secs(5);

/// Checks `cond` every [`POLL_INTERVAL`] until it holds or `deadline` passes
/// (checking once more at the deadline); returns whether it held.
pub fn wait_until(deadline: Instant, mut cond: impl FnMut() -> bool) -> bool {
    loop {
        if cond() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}

/// [`wait_until`] with a deadline `timeout` from now.
pub fn wait_for(timeout: Duration, cond: impl FnMut() -> bool) -> bool {
    wait_until(Instant::now() + timeout, cond)
}

/// Starts a balancer in front of `backends` with one worker (so round robin
/// is deterministic) and a health interval long enough that the prober
/// stays out of the way after its first round; `extra` flags come last and
/// win over these.
pub fn start_balancer(backends: &[&Backend], extra: &[&str]) -> Balancer {
    start_balancer_env(backends, extra, &[])
}

/// [`start_balancer`] with extra environment variables.
pub fn start_balancer_env(backends: &[&Backend], extra: &[&str], env: &[(&str, &str)]) -> Balancer {
    let addrs: Vec<String> = backends.iter().map(|b| b.addr().to_string()).collect();
    let mut args: Vec<&str> = Vec::new();
    for a in &addrs {
        args.extend(["-b", a.as_str()]);
    }
    args.extend(["--workers", "1", "--health-interval", "60s"]);
    args.extend_from_slice(extra);
    Balancer::start_env(env, &args)
}

/// The name the balancer's log and metrics use for a target: its address
/// as given with `-b`.
pub fn target_name(b: &Backend) -> String {
    b.addr().to_string()
}

/// The `X-Backend` header of a response (which target answered).
pub fn answered_by(r: &Response) -> &str {
    r.header("x-backend").unwrap_or("<none>")
}

/// `n` GETs (`/req0`, `/req1`, ...) on one keep-alive connection, each
/// answer asserted 200.
fn oks_on_one_connection(lb: &Balancer, n: usize) -> Vec<Response> {
    let mut c = Client::connect(lb.addr());
    (0..n)
        .map(|i| {
            let r = c.request("GET", &format!("/req{i}"), &[], b"");
            assert_eq!(r.status, 200, "request {i}: {r:?}");
            r
        })
        .collect()
}

/// Which target answered each of `n` requests on one keep-alive connection
/// (its `X-Backend`), every answer asserted 200.
pub fn names_on_one_connection(lb: &Balancer, n: usize) -> Vec<String> {
    let answers = oks_on_one_connection(lb, n);
    answers.iter().map(|r| answered_by(r).to_string()).collect()
}

/// The bodies of `n` requests on one keep-alive connection, every answer
/// asserted 200 (in [`Mode::Ok`], the name of the target that answered).
pub fn get_n(lb: &Balancer, n: usize) -> Vec<String> {
    let answers = oks_on_one_connection(lb, n);
    answers.iter().map(Response::body_str).collect()
}

/// `clients` threads, each on its own connection, send `each` GETs at once;
/// asserts every answer was a 200.
pub fn requests_from_threads(addr: std::net::SocketAddr, clients: usize, each: usize) {
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                (0..each)
                    .map(|_| c.request("GET", "/", &[], b"").status)
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    for (i, client) in threads.into_iter().enumerate() {
        let statuses = client.join().expect("client thread");
        assert!(
            statuses.iter().all(|&s| s == 200),
            "client {i}: {statuses:?}"
        );
    }
}
