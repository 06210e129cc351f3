//! Tests of the harness itself (tests/support/), against `Backend` directly.

mod support;
use support::*;

use std::io::ErrorKind;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

fn sh() -> &'static Path {
    Path::new("/bin/sh")
}

#[test]
fn ok_mode_answers_200_with_its_name() {
    let b = Backend::start("alpha");
    let r = get(b.addr(), "/x");
    assert_eq!(r.status, 200);
    assert_eq!(r.body_str(), "alpha");
    assert_eq!(r.header("x-backend"), Some("alpha"));
    assert_eq!(r.header("Content-Length"), Some("5"));
    assert!(!r.truncated);
    assert_eq!(b.name(), "alpha");
}

#[test]
fn status_mode_answers_that_status_and_keeps_the_connection() {
    let b = Backend::start("s");
    b.set_mode(Mode::Status(500));
    let mut c = Client::connect(b.addr());
    for _ in 0..2 {
        let r = c.request("GET", "/", &[], b"");
        assert_eq!(r.status, 500);
        assert_eq!(r.body_str(), "s status 500");
        assert_eq!(r.header("x-backend"), Some("s"));
    }
    assert_eq!(b.connections(), 1);
}

#[test]
fn chunked_mode_keeps_raw_and_decoded_bodies() {
    let b = Backend::start("chunky");
    b.set_mode(Mode::Chunked);
    let mut c = Client::connect(b.addr());
    let r = c.request("GET", "/", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.body_str(), "chunky");
    assert_eq!(r.raw_body, b"2\r\nch\r\n2\r\nun\r\n2\r\nky\r\n0\r\n\r\n");
    // The connection stays usable after the last chunk.
    assert_eq!(c.request("GET", "/", &[], b"").body_str(), "chunky");
}

#[test]
fn until_close_mode_ends_the_body_at_close() {
    let b = Backend::start("uc");
    b.set_mode(Mode::UntilClose);
    let mut c = Client::connect(b.addr());
    let r = c.request("GET", "/", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.body_str(), "uc");
    assert!(!r.truncated);
    assert!(c.is_closed(WAIT));
}

#[test]
fn close_after_response_mode_announces_and_closes() {
    let b = Backend::start("car");
    b.set_mode(Mode::CloseAfterResponse);
    let mut c = Client::connect(b.addr());
    let r = c.request("GET", "/", &[], b"");
    assert_eq!(r.body_str(), "car");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed(WAIT));
}

#[test]
fn hang_mode_never_answers_until_stopped() {
    let b = Backend::start("h");
    b.set_mode(Mode::Hang);
    let mut c = Client::connect(b.addr());
    c.send_request("POST", "/", &[], b"payload");
    assert!(b.wait_for_requests(1, WAIT));
    c.set_read_timeout(Duration::from_millis(200));
    let err = c.try_read_response_to("POST").unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
    assert!(c.buffered().is_empty());
    assert_eq!(b.last_request().unwrap().body, b"payload");
    assert_eq!(b.open_connections(), 1);
    b.stop();
    assert!(c.is_closed(WAIT));
    assert!(c.buffered().is_empty());
}

#[test]
fn reset_before_response_mode_resets_without_a_byte() {
    let b = Backend::start("r");
    b.set_mode(Mode::ResetBeforeResponse);
    let mut c = Client::connect(b.addr());
    c.send_request("GET", "/", &[], b"");
    let err = c.try_read_response_to("GET").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert!(c.buffered().is_empty());
    assert_eq!(b.requests(), 1);
}

#[test]
fn close_before_response_mode_closes_cleanly_without_a_byte() {
    let b = Backend::start("c");
    b.set_mode(Mode::CloseBeforeResponse);
    let mut c = Client::connect(b.addr());
    c.send_request("GET", "/", &[], b"");
    let err = c.try_read_response_to("GET").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
    assert!(c.buffered().is_empty());
    assert_eq!(b.requests(), 1);
}

#[test]
fn die_mid_body_mode_truncates_the_body() {
    let b = Backend::start("d");
    b.set_mode(Mode::DieMidBody);
    let mut c = Client::connect(b.addr());
    let r = c.request("GET", "/", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("1000"));
    assert!(r.truncated);
    assert_eq!(r.body.len(), DIE_MID_BODY_SENT);
    assert!(c.is_closed(WAIT));
}

#[test]
fn raw_mode_sends_exact_bytes_and_pipelined_responses_read_in_order() {
    let b = Backend::start("raw");
    let two = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nb";
    b.set_mode(Mode::Raw(two.to_vec()));
    let mut c = Client::connect(b.addr());
    c.send_request("GET", "/", &[], b"");
    // Both responses come in one write; the second stays buffered.
    let first = c.read_response();
    assert_eq!((first.status, first.body_str().as_str()), (200, "a"));
    let second = c.read_response();
    assert_eq!((second.status, second.body_str().as_str()), (404, "b"));
    assert!(c.buffered().is_empty());
}

#[test]
fn interim_100_is_its_own_response() {
    let b = Backend::start("raw");
    b.set_mode(Mode::Raw(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi".to_vec(),
    ));
    let mut c = Client::connect(b.addr());
    c.send_request("GET", "/", &[], b"");
    let interim = c.read_response();
    assert_eq!(interim.status, 100);
    assert!(interim.is_interim() && interim.body.is_empty());
    assert_eq!(c.read_response().body_str(), "hi");

    // `request` skips the interim response.
    let r = c.request("GET", "/", &[], b"");
    assert_eq!((r.status, r.body_str().as_str()), (200, "hi"));
}

#[test]
fn backend_sends_100_continue_when_asked() {
    let b = Backend::start("e");
    b.set_mode(Mode::Echo);
    let mut c = Client::connect(b.addr());
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    assert_eq!(c.read_response().status, 100);
    c.send(b"abc");
    let r = c.read_response();
    assert_eq!((r.status, r.body_str().as_str()), (200, "abc"));
}

#[test]
fn echo_mode_returns_the_decoded_request_body() {
    let b = Backend::start("echo");
    b.set_mode(Mode::Echo);
    let mut c = Client::connect(b.addr());
    let r = c.request("POST", "/len", &[], b"hello");
    assert_eq!(r.body_str(), "hello");
    assert_eq!(r.header("x-backend"), Some("echo"));

    let chunked = b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: x\r\n\r\n";
    let r = c.request(
        "POST",
        "/chunked",
        &[("Transfer-Encoding", "chunked")],
        chunked,
    );
    assert_eq!(r.body_str(), "abcde");
    let rec = b.last_request().unwrap();
    assert_eq!(rec.path, "/chunked");
    assert_eq!(rec.body, b"abcde");
    assert_eq!(rec.header("transfer-encoding"), Some("chunked"));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let b = Backend::start("p");
    b.set_mode(Mode::Echo);
    let mut c = Client::connect(b.addr());
    let mut both = request_bytes("POST", "/1", &[], b"one");
    both.extend(request_bytes("POST", "/2", &[], b"two"));
    c.send(&both);
    assert_eq!(c.read_response().body_str(), "one");
    assert_eq!(c.read_response().body_str(), "two");
    let paths: Vec<_> = b.requests_log().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/1", "/2"]);
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let b = Backend::start("k");
    let mut c = Client::connect(b.addr());
    for i in 0..5 {
        let r = c.request("GET", &format!("/{i}"), &[], b"");
        assert_eq!(r.body_str(), "k");
        assert_eq!(r.header("connection"), None);
    }
    assert_eq!(b.connections(), 1);
    assert_eq!(b.requests(), 5);
    assert!(b.requests_log().iter().all(|r| r.conn == 1));
    // `Connection: close` from the client ends it.
    let r = c.request("GET", "/", &[("Connection", "close")], b"");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed(WAIT));
}

#[test]
fn head_response_has_no_body() {
    let b = Backend::start("head");
    let mut c = Client::connect(b.addr());
    let r = c.request("HEAD", "/", &[], b"");
    assert_eq!(r.header("content-length"), Some("4"));
    assert!(r.body.is_empty());
    assert_eq!(c.request("GET", "/", &[], b"").body_str(), "head");
}

#[test]
fn counters_and_request_log() {
    let b = Backend::start("n");
    let mut c = Client::connect(b.addr());
    c.request("GET", HEALTH_PATH, &[], b"");
    c.request(
        "PUT",
        "/a?b=c",
        &[("X-Test", "1"), ("x-test", "2")],
        b"body",
    );
    get(b.addr(), "/second");
    assert_eq!(b.health_checks(), 1);
    assert_eq!(b.requests(), 2);
    assert_eq!(b.connections(), 2);
    let log = b.requests_log();
    let put = &log[0];
    assert_eq!(
        (put.method.as_str(), put.path.as_str(), put.version),
        ("PUT", "/a?b=c", 1)
    );
    assert_eq!(put.header("host"), Some("test"));
    assert_eq!(put.header("x-TEST"), Some("1"));
    assert_eq!(put.header_all("X-Test"), ["1", "2"]);
    assert_eq!(put.body_str(), "body");
    assert_eq!(put.conn, 1);
    let last = b.last_request().unwrap();
    assert_eq!((last.path.as_str(), last.conn), ("/second", 2));
    assert!(b.wait_for_requests(2, WAIT));
    assert!(!b.wait_for_requests(3, Duration::from_millis(20)));
}

#[test]
fn health_toggles_and_ignores_the_mode() {
    let b = Backend::start("hc");
    b.set_mode(Mode::Hang);
    let r = get(b.addr(), HEALTH_PATH);
    assert_eq!((r.status, r.body_str().as_str()), (200, "ok"));
    b.set_healthy(false);
    assert_eq!(get(b.addr(), HEALTH_PATH).status, 503);
    b.set_healthy(true);
    assert_eq!(get(b.addr(), HEALTH_PATH).status, 200);
    assert_eq!(b.health_checks(), 3);
    assert_eq!(b.requests(), 0);
    assert!(b.wait_for_health_checks(3, WAIT));
}

#[test]
fn health_pattern_cycles_from_the_next_check_and_records_answers() {
    let b = Backend::start("hp");
    b.set_mode(Mode::Hang);
    assert_eq!(get(b.addr(), HEALTH_PATH).status, 200);
    b.set_health_pattern(&[true, false, false]);
    assert!(b.is_healthy(), "the pattern starts with the next check");
    let statuses: Vec<u16> = (0..7).map(|_| get(b.addr(), HEALTH_PATH).status).collect();
    assert_eq!(statuses, [200, 503, 503, 200, 503, 503, 200]);
    assert!(!b.is_healthy(), "next in the pattern: a failure");
    let r = get(b.addr(), HEALTH_PATH);
    assert_eq!((r.status, r.body_str().as_str()), (503, "unhealthy"));

    // A new pattern starts from its first entry; set_healthy is a pattern
    // of one.
    b.set_health_pattern(&[false, true]);
    assert_eq!(get(b.addr(), HEALTH_PATH).status, 503);
    b.set_healthy(true);
    assert_eq!(get(b.addr(), HEALTH_PATH).status, 200);
    assert_eq!(get(b.addr(), HEALTH_PATH).status, 200);
    assert_eq!(
        b.health_answers(),
        [true, true, false, false, true, false, false, true, false, false, true, true]
    );
    assert_eq!(b.health_checks(), 12);
    assert_eq!(b.requests(), 0);
}

#[test]
#[should_panic(expected = "needs an entry")]
fn an_empty_health_pattern_is_refused() {
    Backend::start("empty").set_health_pattern(&[]);
}

#[test]
fn close_idle_after_response_closes_without_announcing() {
    let b = Backend::start("idle");
    b.close_idle_after_response(true);
    let mut c = Client::connect(b.addr());
    let r = c.request("GET", "/", &[], b"");
    assert_eq!(r.body_str(), "idle");
    assert_eq!(r.header("connection"), None);
    assert!(c.is_closed(WAIT));
}

#[test]
fn stop_refuses_connects_and_closes_open_connections() {
    let b = Backend::start("gone");
    let addr = b.addr();
    let mut c = Client::connect(addr);
    assert_eq!(c.request("GET", "/", &[], b"").status, 200);
    b.stop();
    assert!(c.is_closed(WAIT));
    let err = TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    b.stop(); // idempotent
    drop(b);

    // The address can be taken again to bring the target back.
    let _back = Backend::start_on("back", addr).expect("rebind");
    assert_eq!(get(addr, "/").body_str(), "back");
}

#[test]
fn is_closed_is_false_on_an_open_connection() {
    let b = Backend::start("open");
    let mut c = Client::connect(b.addr());
    assert!(!c.is_closed(Duration::from_millis(50)));
    assert_eq!(c.request("GET", "/", &[], b"").status, 200);
}

#[test]
fn balancer_start_with_reads_the_address_and_collects_output() {
    let b = Backend::start("behind");
    let script = format!(
        "echo 'x: listening on {} with 1 workers (io_uring); 1 targets' >&2; echo 'to stdout'; echo 'later line' >&2; exec sleep 30",
        b.addr()
    );
    let mut lb = Balancer::start_with(sh(), &["-c", &script]);
    assert_eq!(lb.addr(), b.addr());
    assert_eq!(lb.url("/p"), format!("http://{}/p", b.addr()));
    assert!(lb.wait_for_log("later line", WAIT));
    assert!(lb.wait_for_log("to stdout", WAIT));
    assert!(lb.log_contains("listening on"));
    assert!(!lb.log_contains("never printed"));
    assert!(lb.log().iter().any(|l| l.starts_with("x: listening on")));
    assert!(lb.pid() > 0);
    assert_eq!(get(lb.addr(), "/").body_str(), "behind");
    lb.kill();
    assert!(lb.wait_exit(WAIT).is_some());
}

#[test]
fn balancer_terminate_and_wait_exit() {
    let script = "echo 'listening on 127.0.0.1:1 ok' >&2; exec sleep 30";
    let mut lb = Balancer::start_with(sh(), &["-c", script]);
    assert!(lb.wait_exit(Duration::from_millis(20)).is_none());
    lb.terminate();
    let status = lb.wait_exit(WAIT).expect("exits on SIGTERM");
    assert!(!status.success());
}

#[test]
#[should_panic(expected = "exited")]
fn balancer_start_with_panics_when_the_program_exits_first() {
    Balancer::start_with(sh(), &["-c", "echo 'bad flag' >&2; exit 2"]);
}

#[test]
fn run_with_reports_exit_code_and_output() {
    let out = Balancer::run_with(sh(), &["-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.code, Some(3));
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
}

#[test]
fn request_bytes_adds_host_and_length() {
    assert_eq!(
        request_bytes("POST", "/", &[], b"ab"),
        b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n\r\nab"
    );
    assert_eq!(
        request_bytes("GET", "/", &[("host", "h")], b""),
        b"GET / HTTP/1.1\r\nhost: h\r\n\r\n"
    );
}

#[test]
fn bad_framing_is_counted_and_answered_400() {
    let b = Backend::start("strict");
    let mut c = Client::connect(b.addr());
    c.send(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 400);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed(WAIT));
    assert_eq!(b.requests(), 1);
    assert_eq!(b.last_request().unwrap().path, "/x");
}
