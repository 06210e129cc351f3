//! A pooled target connection carries one client's request at a time, and
//! nothing from a target reaches a client unless it answers that client's
//! request: bytes a target sends while its connection sits idle in the pool
//! (a late body, an unasked-for second response, its end of stream) mean the
//! connection is never reused, on every reuse, however soon.

mod support;

use std::time::Duration;

use support::*;

const POISON: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON";

/// Waits until `target` has written its late bytes `n` times in all.
fn wait_for_late_writes(target: &Backend, n: usize) {
    assert!(
        wait_for(Duration::from_secs(5), || target.late_writes() >= n),
        "the target did not write its late bytes"
    );
}

/// After `first` (a request the target answers, then follows with unasked
/// bytes), each of several new clients gets the answer to its own request.
fn no_client_gets_the_late_bytes(mode: Mode, first: (&str, &str), answer_len: usize) {
    let target = Backend::start("t");
    let lb = start_balancer(&[&target], &[]);
    for round in 1..=3 {
        target.set_mode(mode.clone());
        let mut c = Client::connect(lb.addr());
        let r = c.request(first.0, first.1, &[], b"");
        assert_eq!(r.body.len(), answer_len, "round {round}: {r:?}");
        wait_for_late_writes(&target, round);
        // The next requests come at once, on other client connections.
        target.set_mode(Mode::Echo);
        for i in 0..3 {
            let path = format!("/next-{round}-{i}");
            let mut next = Client::connect(lb.addr());
            let r = next.request("POST", &path, &[], path.as_bytes());
            assert_eq!(r.status, 200, "round {round}: {r:?}");
            assert_eq!(
                r.body_str(),
                path,
                "round {round}: another answer came back"
            );
        }
    }
}

#[test]
fn a_second_response_sent_after_a_head_answer_reaches_no_client() {
    let mode = Mode::Then(Box::new(Mode::Ok), POISON.to_vec());
    no_client_gets_the_late_bytes(mode, ("HEAD", "/x"), 0);
}

#[test]
fn a_late_body_after_204_reaches_no_client() {
    let mode = Mode::Then(Box::new(Mode::Status(204)), b"late body".to_vec());
    no_client_gets_the_late_bytes(mode, ("GET", "/x"), 0);
}

#[test]
fn a_late_body_after_304_reaches_no_client() {
    let mode = Mode::Then(Box::new(Mode::Status(304)), POISON.to_vec());
    no_client_gets_the_late_bytes(mode, ("GET", "/x"), 0);
}

#[test]
fn bytes_sent_late_past_content_length_reach_no_client() {
    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec();
    let mode = Mode::Then(Box::new(Mode::Raw(answer)), POISON.to_vec());
    no_client_gets_the_late_bytes(mode, ("GET", "/x"), 2);
}

#[test]
fn bytes_past_content_length_in_the_same_write_reach_no_client() {
    let target = Backend::start("t");
    let lb = start_balancer(&[&target], &[]);
    let mut answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec();
    answer.extend_from_slice(POISON);
    target.set_mode(Mode::Raw(answer));
    let r = get(lb.addr(), "/x");
    assert_eq!((r.status, r.body_str().as_str()), (200, "ok"));
    target.set_mode(Mode::Echo);
    let mut c = Client::connect(lb.addr());
    let r = c.request("POST", "/mine", &[], b"mine");
    assert_eq!(r.body_str(), "mine");
    assert_eq!(
        target.connections(),
        3,
        "health check, the spoilt one, a new one"
    );
}

#[test]
fn a_connection_the_target_closed_while_idle_is_not_reused() {
    // The target ends every connection right after answering, without
    // saying so. No request, not even a GET (which could be sent again and
    // gets no peek), is written to such a connection: the target never
    // receives a byte after its FIN, and every request gets its answer.
    let target = Backend::start("t");
    target.close_idle_after_response(true);
    let lb = start_balancer(&[&target], &[]);
    let mut c = Client::connect(lb.addr());
    for i in 0..20 {
        let fins = target.fins_sent();
        let r = c.request("GET", &format!("/get-{i}"), &[], b"");
        assert_eq!(r.status, 200, "{r:?}");
        // The target's FIN is on its way before the next request.
        assert!(wait_for(Duration::from_secs(5), || target.fins_sent() > fins));
    }
    assert_eq!(target.requests(), 20, "each GET reached the target once");
    assert_eq!(
        target.bytes_after_fin(),
        0,
        "a request was written to a connection the target had closed"
    );
}
