//! Soak under faults: many keep-alive clients send GETs in a loop while,
//! on a fixed schedule, one target is stopped (its listener closed and its
//! connections cut, some with a request in flight), one answers 500 for a
//! while and one fails its health checks for a while. The scenario runs
//! several times, each round with fresh targets and a fresh balancer.
//!
//! What must hold: every request gets a whole answer (a 200, or a 5xx from
//! the balancer or a target), and a connection the balancer keeps alive
//! carries the next request. The one failure a client may see is a response
//! cut mid-body by the target that was stopped (part of it had been relayed
//! when it died); anything else (a connection closed or reset before a whole
//! answer, a garbled answer, a hang) fails the test.

mod support;
use support::*;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Keep-alive client connections, each sending its next GET as soon as it
/// has the answer to the last one.
const CLIENTS: usize = 16;

/// Times the scenario runs (about 3 s each), going through the setups in turn.
const ROUNDS: usize = 8;

/// A client waits this long for an answer: the faults here never make a
/// correct balancer take more than milliseconds, so a wait this long is a
/// hang.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the stopped target takes over each request, so that some are in
/// flight (sent, not yet answered) when its connections are cut.
const STOPPED_DELAY: Duration = Duration::from_millis(1);

/// The schedule of one round, in ms from the moment the clients start. The
/// faults overlap: from about 1000 ms (three failed checks after 450 ms) to
/// 1600 ms the stopped target is gone, the unhealthy one is out of rotation
/// and the failing one answers 500.
const FAIL_500_AT: u64 = 300;
const UNHEALTHY_AT: u64 = 450;
const STOP_AT: u64 = 600;
const OK_AGAIN_AT: u64 = 1600;
const HEALTHY_AGAIN_AT: u64 = 2100;
const END_AT: u64 = 2800;

/// Failures shown when the test fails (all are printed as they come).
const SHOWN: usize = 40;

/// What the clients of one round saw.
#[derive(Default)]
struct Tally {
    /// Whole answers, by status.
    statuses: BTreeMap<u16, usize>,
    /// Responses cut mid-body by the stopped target: allowed.
    cuts: Vec<String>,
    /// Requests without a whole answer: each one is a failure.
    failures: Vec<String>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.cuts.extend(other.cuts);
        self.failures.extend(other.failures);
    }

    fn answers(&self) -> usize {
        self.statuses.values().sum()
    }
}

fn connect(addr: SocketAddr) -> std::io::Result<Client> {
    let mut client = Client::try_connect(addr)?;
    client.set_read_timeout(ANSWER_TIMEOUT);
    Ok(client)
}

/// One client: GETs on one keep-alive connection until `stop`; after an
/// answer with `Connection: close`, a cut or a failure it connects again.
fn client_loop(
    id: usize,
    addr: SocketAddr,
    stopped: &str,
    t0: Instant,
    stop: &AtomicBool,
) -> Tally {
    let mut tally = Tally::default();
    let mut client = None;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let c = match &mut client {
            Some(c) => c,
            None => match connect(addr) {
                Ok(c) => client.insert(c),
                Err(e) => {
                    let at = t0.elapsed().as_millis();
                    tally
                        .failures
                        .push(format!("client {id} at {at} ms: connect: {e}"));
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        n += 1;
        let path = format!("/soak/{id}/{n}");
        let answer = c
            .try_send(&request_bytes("GET", &path, &[], b""))
            .and_then(|()| c.try_read_response_to("GET"));
        let at = t0.elapsed().as_millis();
        // Whether the connection carries the next request.
        let keep = match answer {
            Ok(r) if r.truncated && r.header("x-backend") == Some(stopped) => {
                tally.cuts.push(format!(
                    "GET {path} at {at} ms: {} from {stopped} cut after {} body bytes",
                    r.status,
                    r.raw_body.len()
                ));
                false
            }
            Ok(r) if r.truncated => {
                tally.failures.push(format!(
                    "GET {path} at {at} ms: {} from {:?} cut after {} body bytes, \
                     though that target did not die",
                    r.status,
                    r.header("x-backend"),
                    r.raw_body.len()
                ));
                false
            }
            Ok(r) => {
                *tally.statuses.entry(r.status).or_default() += 1;
                !r.header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"))
            }
            Err(e) => {
                tally.failures.push(format!(
                    "GET {path} at {at} ms: no whole answer ({:?}: {e})",
                    e.kind()
                ));
                false
            }
        };
        if !keep {
            client = None;
        }
    }
    tally
}

/// Sleeps until `ms` after `t0`.
fn at(t0: Instant, ms: u64) {
    let when = t0 + Duration::from_millis(ms);
    thread::sleep(when.saturating_duration_since(Instant::now()));
}

/// How one round sets the balancer up. Each exercises a different way of
/// failing over.
#[derive(Clone, Copy, Debug)]
enum Setup {
    /// Four targets (one never fails), default flags.
    Defaults,
    /// No pooled connections: every request goes on a fresh connection, so
    /// the requests in flight when the target stops fail on a connection
    /// that was not reused. No ejection either: the target that answers 500
    /// gets traffic again after each health check it passes.
    Fresh,
    /// Three targets, all of which fail at some point, and no ejection:
    /// while the faults overlap no other target is left to try, and the
    /// 500 itself is relayed as the answer.
    NoSpare,
    /// Four targets and no retry budget: a request whose target fails is
    /// answered at once (the 500 itself, or a 502), never retried.
    NoRetries,
}

const SETUPS: [Setup; 4] = [
    Setup::Defaults,
    Setup::Fresh,
    Setup::NoSpare,
    Setup::NoRetries,
];

/// One round of the scenario.
fn round(setup: Setup) -> (Tally, Vec<String>) {
    let stopped = Backend::start("stopped");
    let failing = Backend::start("failing");
    let unhealthy = Backend::start("unhealthy");
    let steady = Backend::start("steady");
    stopped.set_mode(Mode::Delay(STOPPED_DELAY));
    let mut flags = vec!["--workers", "2", "--health-interval", "200ms"];
    let mut targets = vec![&stopped, &failing, &unhealthy, &steady];
    match setup {
        Setup::Defaults => {}
        Setup::Fresh => flags.extend(["--pool-size", "0", "--eject-after", "0"]),
        Setup::NoSpare => {
            flags.extend(["--eject-after", "0"]);
            targets.pop();
        }
        Setup::NoRetries => flags.extend(["--retry-budget", "0%", "--retry-floor", "0"]),
    }
    let lb = start_balancer(&targets, &flags);

    let addr = lb.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let stop = Arc::clone(&stop);
            let name = stopped.name().to_string();
            thread::spawn(move || client_loop(id, addr, &name, t0, &stop))
        })
        .collect();
    at(t0, FAIL_500_AT);
    failing.set_mode(Mode::Status(500));
    at(t0, UNHEALTHY_AT);
    unhealthy.set_healthy(false);
    at(t0, STOP_AT);
    stopped.stop();
    at(t0, OK_AGAIN_AT);
    failing.set_mode(Mode::Ok);
    at(t0, HEALTHY_AGAIN_AT);
    unhealthy.set_healthy(true);
    at(t0, END_AT);
    stop.store(true, Ordering::Relaxed);

    let mut tally = Tally::default();
    for client in clients {
        tally.add(client.join().expect("client thread"));
    }
    // The faults happened as planned (or the round proves nothing).
    let mut missed = Vec::new();
    let failing_500 = format!(
        "health: {} healthy -> degraded (answered 500)",
        target_name(&failing)
    );
    let unhealthy_out = format!(
        "health: {} healthy -> degraded (health check answered 503)",
        target_name(&unhealthy)
    );
    for line in [failing_500, unhealthy_out] {
        if !lb.log_contains(&line) {
            missed.push(format!("no `{line}` in the log"));
        }
    }
    if stopped.requests() == 0 {
        missed.push("the stopped target got no request before it stopped".into());
    }
    (tally, missed)
}

#[test]
fn every_get_gets_a_whole_answer_while_targets_stop_fail_and_flap() {
    let mut total = Tally::default();
    let mut missed = Vec::new();
    for i in 0..ROUNDS {
        let setup = SETUPS[i % SETUPS.len()];
        let (tally, round_missed) = round(setup);
        eprintln!(
            "round {i} ({setup:?}): {} answers {:?}, {} cut mid-body by the stopped target, {} failures",
            tally.answers(),
            tally.statuses,
            tally.cuts.len(),
            tally.failures.len()
        );
        for f in &tally.failures {
            eprintln!("round {i} ({setup:?}): {f}");
        }
        missed.extend(
            round_missed
                .into_iter()
                .map(|m| format!("round {i} ({setup:?}): {m}")),
        );
        total.add(tally);
    }
    assert!(
        total.failures.is_empty(),
        "{} of {} requests got no whole answer (the first {SHOWN}):\n{}",
        total.failures.len(),
        total.answers() + total.cuts.len() + total.failures.len(),
        total.failures[..total.failures.len().min(SHOWN)].join("\n")
    );
    assert!(missed.is_empty(), "faults not exercised: {missed:#?}");
    assert!(
        total.statuses.get(&200).copied().unwrap_or(0) > 1000,
        "too little traffic went through: {:?}",
        total.statuses
    );
}
