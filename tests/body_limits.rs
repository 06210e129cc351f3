//! Request bodies are bounded as a whole: in time (`--client-body-timeout`,
//! 408, however steadily the bytes trickle in) and, for the copies kept to
//! replay them, in memory per worker (`--max-replay-memory`: past it a body
//! is streamed to one target instead of buffered).

mod support;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use support::*;

/// Sends a POST whose body of `len` bytes trickles in, a byte every 100 ms,
/// from a thread; returns the client (to read the answer) and when it began.
fn trickle_post(lb: &Balancer, len: usize) -> (Client, Instant) {
    let mut c = Client::connect(lb.addr());
    let len_value = len.to_string();
    c.send(&request_bytes(
        "POST",
        "/slow",
        &[("Content-Length", len_value.as_str())],
        b"",
    ));
    let began = Instant::now();
    let mut writer = c.stream().try_clone().expect("clone the client socket");
    thread::spawn(move || {
        for _ in 0..len {
            if writer.write_all(b"x").is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
    (c, began)
}

#[test]
fn a_buffered_body_that_trickles_past_the_body_timeout_gets_408() {
    let target = Backend::start("a");
    let lb = start_balancer(
        &[&target],
        &[
            "--client-body-timeout",
            "1s",
            "--idle-timeout",
            "10s",
            "--admin",
            "127.0.0.1:0",
        ],
    );
    // 50 bytes at 10 a second: every read comes well inside the idle timeout.
    let (mut c, began) = trickle_post(&lb, 50);
    let r = c.read_response();
    let took = began.elapsed();
    assert_eq!(r.status, 408, "{r:?}");
    assert!(
        took < Duration::from_secs(3),
        "408 after {took:?} with --client-body-timeout 1s"
    );
    assert_eq!(target.requests(), 0);
    assert_eq!(Scrape::take(&lb).get("lb_client_body_timeouts_total"), 1.0);
}

#[test]
fn a_streamed_body_that_trickles_past_the_body_timeout_is_cut_off() {
    let target = Backend::start("a");
    target.set_mode(Mode::Echo);
    let lb = start_balancer(
        &[&target],
        &[
            "--client-body-timeout",
            "1s",
            "--idle-timeout",
            "10s",
            "--max-replay-body",
            "4",
        ],
    );
    let (mut c, began) = trickle_post(&lb, 50);
    // Part of the body went to the target before the deadline: the client
    // gets a 408 and the connection closes.
    if let Ok(r) = c.try_read_response_to("POST") {
        assert_eq!(r.status, 408, "{r:?}");
    }
    assert!(c.is_closed(Duration::from_secs(5)));
    let took = began.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "cut off after {took:?} with --client-body-timeout 1s"
    );
}

/// Sends a POST with an 800-byte body to targets that both answer 500;
/// returns how many attempts it took (2 when its body was replayed).
fn attempts_of_a_post(lb: &Balancer, a: &Backend, b: &Backend) -> usize {
    let before = a.requests() + b.requests();
    let mut c = Client::connect(lb.addr());
    let r = c.request("POST", "/p", &[], &[b'y'; 800]);
    assert_eq!(r.status, 500);
    a.requests() + b.requests() - before
}

#[test]
fn past_the_replay_memory_a_body_is_streamed_not_replayed() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(500));
    b.set_mode(Mode::Status(500));
    let lb = start_balancer(
        &[&a, &b],
        &[
            "--max-replay-body",
            "1000",
            "--max-replay-memory",
            "1000",
            "--admin",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(
        attempts_of_a_post(&lb, &a, &b),
        2,
        "replayed while there is room"
    );

    // A body announced whole and not sent holds nothing.
    let mut announced = Client::connect(lb.addr());
    announced.send(&request_bytes(
        "POST",
        "/announced",
        &[("Content-Length", "1000")],
        b"",
    ));
    // A body on its way in holds what has arrived of it: 790 of its 800.
    let mut held = Client::connect(lb.addr());
    held.send(&request_bytes(
        "POST",
        "/held",
        &[("Content-Length", "800")],
        &[b'z'; 790],
    ));
    assert!(
        wait_for(Duration::from_secs(5), || Scrape::take(&lb)
            .get("lb_worker_replay_bytes{worker=\"0\"}")
            == 790.0),
        "the held body is not counted as it arrived"
    );
    assert_eq!(
        attempts_of_a_post(&lb, &a, &b),
        1,
        "replayed past the budget"
    );
    assert_eq!(Scrape::take(&lb).get("lb_replay_budget_refused_total"), 1.0);

    // Its client leaves: the memory is free again.
    drop(held);
    drop(announced);
    assert!(wait_for(Duration::from_secs(5), || Scrape::take(&lb)
        .get("lb_worker_replay_bytes{worker=\"0\"}")
        == 0.0));
    assert_eq!(attempts_of_a_post(&lb, &a, &b), 2);
}
