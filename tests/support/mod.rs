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
//! - `wire.rs`: the buffered head and body reader both sides share.
//!
//! Nothing here sleeps a fixed time to let things settle: waits are for a
//! condition, with a deadline ([`wait_until`], [`wait_for`]).

// Each test file uses a different part of the harness.
#![allow(dead_code)]

mod backend;
mod balancer;
mod client;
mod scrape;
mod wire;

use std::time::{Duration, Instant};

// A test file that uses part of the harness must not warn about the rest.
#[allow(unused_imports)]
pub use backend::{
    Backend, Mode, Recorded, DIE_MID_BODY_LENGTH, DIE_MID_BODY_SENT, HEALTH_PATH, LATE_DELAY,
    WEBSOCKET_ACCEPT, WEBSOCKET_KEY,
};
#[allow(unused_imports)]
pub use balancer::{balancer_program, Balancer, RunOutput, ADMIN_ON, LISTENING, START_TIMEOUT};
#[allow(unused_imports)]
pub use client::{get, request_bytes, Client, Response, CLIENT_TIMEOUT};
#[allow(unused_imports)]
pub use scrape::Scrape;

/// How often the wait helpers check their condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(2);

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
    let addrs: Vec<String> = backends.iter().map(|b| b.addr().to_string()).collect();
    let mut args: Vec<&str> = Vec::new();
    for a in &addrs {
        args.extend(["-b", a.as_str()]);
    }
    args.extend(["--workers", "1", "--health-interval", "60s"]);
    args.extend_from_slice(extra);
    Balancer::start(&args)
}

/// The name the balancer's log and metrics use for a target: its address
/// as given with `-b`.
pub fn target_name(b: &Backend) -> String {
    b.addr().to_string()
}

/// Asserts a run failed with exit status 2 and exactly one line on stderr,
/// which contains each of `want` and points to --help.
pub fn assert_flag_error(args: &[&str], want: &[&str]) {
    let out = Balancer::run(args);
    assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: not one line: {:?}", out.stderr);
    for w in want {
        assert!(lines[0].contains(w), "{args:?}: {:?} lacks {w:?}", lines[0]);
    }
    assert!(
        lines[0].contains("--help"),
        "{args:?}: no hint: {:?}",
        lines[0]
    );
    assert!(
        !out.stderr.contains("panicked"),
        "{args:?}: {:?}",
        out.stderr
    );
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
