//! Retries: when the balancer tries another target (or the same one again on a
//! fresh connection), when it must not, and what the client gets in the end.

mod support;
use support::*;

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// `GET /` on a new keep-alive connection to the balancer.
fn get_one(lb: &Balancer) -> Response {
    Client::connect(lb.addr()).request("GET", "/", &[], b"")
}

/// Targets with these names, every one answering 500.
fn failing_targets(names: &[&str]) -> Vec<Backend> {
    let targets: Vec<Backend> = names.iter().map(|n| Backend::start(n)).collect();
    for t in &targets {
        t.set_mode(Mode::Status(500));
    }
    targets
}

#[test]
fn retries_on_500_with_another_target() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(500));
    let lb = start_balancer(&[&a, &b], &[]);

    let r = get_one(&lb);
    assert_eq!(r.status, 200);
    assert_eq!(r.body_str(), "B");
    assert_eq!(a.requests(), 1);
    assert_eq!(b.requests(), 1);
    let line = format!(
        "health: {} healthy -> degraded (answered 500)",
        target_name(&a)
    );
    lb.expect_log(&line, WAIT);
}

#[test]
fn a_target_that_answered_500_gets_no_traffic_until_its_health_check_passes() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(500));
    let lb = start_balancer(&[&a, &b], &[]);

    let mut c = Client::connect(lb.addr());
    assert_eq!(c.request("GET", "/", &[], b"").body_str(), "B");
    // A answers normally again, but nothing checks it for 60 s.
    a.set_mode(Mode::Ok);
    for i in 0..4 {
        let r = c.request("GET", "/", &[], b"");
        assert_eq!((r.status, answered_by(&r)), (200, "B"), "request {i}");
    }
    assert_eq!(a.requests(), 1);
    assert_eq!(b.requests(), 5);
}

#[test]
fn a_target_that_answered_500_comes_back_once_its_health_check_passes() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(500));
    let lb = start_balancer(&[&a, &b], &["--health-interval", "50ms"]);

    let mut c = Client::connect(lb.addr());
    assert_eq!(c.request("GET", "/", &[], b"").body_str(), "B");
    let down = format!(
        "health: {} healthy -> degraded (answered 500)",
        target_name(&a)
    );
    lb.expect_log(&down, WAIT);
    a.set_mode(Mode::Ok);
    let up = format!(
        "health: {} degraded -> healthy (health check answered 200)",
        target_name(&a)
    );
    lb.expect_log(&up, WAIT);

    let mut names: Vec<String> = (0..2)
        .map(|_| answered_by(&c.request("GET", "/", &[], b"")).to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["A", "B"]);
    assert_eq!(a.requests(), 2);
}

#[test]
fn never_sends_one_request_twice_to_the_same_target() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(500));
    b.set_mode(Mode::Status(500));
    let lb = start_balancer(&[&a, &b], &["--retries", "5"]);

    let r = get_one(&lb);
    assert_eq!(r.status, 500);
    assert_eq!(r.body_str(), "B status 500");
    assert_eq!(a.requests(), 1);
    assert_eq!(b.requests(), 1);
}

#[test]
fn stops_after_the_given_number_of_retries() {
    let targets = failing_targets(&["A", "B", "C", "D"]);
    let refs: Vec<&Backend> = targets.iter().collect();
    let lb = start_balancer(&refs, &["--retries", "1"]);

    let r = get_one(&lb);
    assert_eq!(r.status, 500);
    assert_eq!(r.body_str(), "B status 500");
    let counts: Vec<usize> = targets.iter().map(Backend::requests).collect();
    assert_eq!(counts, [1, 1, 0, 0]);
}

#[test]
fn with_zero_retries_the_first_500_is_forwarded() {
    let targets = failing_targets(&["A", "B", "C", "D"]);
    let refs: Vec<&Backend> = targets.iter().collect();
    let lb = start_balancer(&refs, &["--retries", "0"]);

    let r = get_one(&lb);
    assert_eq!(r.status, 500);
    assert_eq!(r.body_str(), "A status 500");
    let counts: Vec<usize> = targets.iter().map(Backend::requests).collect();
    assert_eq!(counts, [1, 0, 0, 0]);
}

#[test]
fn when_every_target_answers_500_the_client_gets_the_last_one() {
    let targets = failing_targets(&["A", "B", "C"]);
    let refs: Vec<&Backend> = targets.iter().collect();
    let lb = start_balancer(&refs, &[]);

    let r = get_one(&lb);
    assert_eq!(r.status, 500);
    assert_eq!(r.body_str(), "C status 500");
    assert_eq!(answered_by(&r), "C");
    assert!(targets.iter().all(|t| t.requests() == 1));
}

#[test]
fn does_not_retry_a_status_other_than_500() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(503));
    let lb = start_balancer(&[&a, &b], &[]);

    let r = get_one(&lb);
    assert_eq!(r.status, 503);
    assert_eq!(r.body_str(), "A status 503");
    assert_eq!(b.requests(), 0);
}

#[test]
fn retries_when_a_target_refuses_the_connection() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let lb = start_balancer(&[&a, &b], &[]);
    // Still marked healthy: the next check is 60 s away.
    a.stop();

    let r = get_one(&lb);
    assert_eq!(r.status, 200);
    assert_eq!(r.body_str(), "B");
    let line = format!(
        "health: {} healthy -> degraded (connection refused)",
        target_name(&a)
    );
    lb.expect_log(&line, WAIT);
}

#[test]
fn retries_when_a_target_resets_before_answering() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::ResetBeforeResponse);
    let lb = start_balancer(&[&a, &b], &[]);

    let r = get_one(&lb);
    assert_eq!(r.status, 200);
    assert_eq!(r.body_str(), "B");
    assert_eq!(a.requests(), 1);
    assert_eq!(b.requests(), 1);
}

#[test]
fn retries_when_a_target_closes_before_answering() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::CloseBeforeResponse);
    let lb = start_balancer(&[&a, &b], &[]);

    let r = get_one(&lb);
    assert_eq!(r.status, 200);
    assert_eq!(r.body_str(), "B");
    assert_eq!(a.requests(), 1);
    assert_eq!(b.requests(), 1);
}

#[test]
fn answers_502_when_every_target_refuses_the_connection() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let lb = start_balancer(&[&a, &b], &[]);
    a.stop();
    b.stop();

    let r = get_one(&lb);
    assert_eq!(r.status, 502);
    assert_eq!(r.body_str().trim_end(), "no target could be reached");
}

#[test]
fn closes_the_client_connection_when_an_error_leaves_part_of_the_body_unread() {
    let a = Backend::start("A");
    let lb = start_balancer(&[&a], &["--max-replay-body", "1024"]);
    a.stop();

    // A body too large to buffer: only its first part has been read when
    // every target fails, so the rest must not be taken for a next request.
    let mut client = Client::connect(lb.addr());
    let mut head = request_bytes("POST", "/", &[("Content-Length", "100000")], b"");
    head.extend(std::iter::repeat_n(b'x', 2000));
    client.send(&head);
    let r = client.read_response();
    assert_eq!(r.status, 502);
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(client.is_closed(Duration::from_secs(5)));
}

#[test]
fn keeps_the_client_connection_after_an_error_when_the_request_was_read_whole() {
    let a = Backend::start("A");
    let lb = start_balancer(&[&a], &[]);
    a.stop();

    let mut client = Client::connect(lb.addr());
    let r = client.request("POST", "/", &[], b"a small body");
    assert_eq!(r.status, 502);
    assert_eq!(r.header("Connection"), Some("keep-alive"));
    // A is degraded, but its last health check passed: with nothing else
    // to send to, the balancer tries it again rather than answer 503.
    assert_eq!(client.request("GET", "/", &[], b"").status, 502);
}

#[test]
fn answers_502_when_every_target_resets_before_answering() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::ResetBeforeResponse);
    b.set_mode(Mode::ResetBeforeResponse);
    let lb = start_balancer(&[&a, &b], &[]);

    let r = get_one(&lb);
    assert_eq!(r.status, 502);
    assert_eq!(r.body_str().trim_end(), "no target could be reached");
    assert_eq!(a.requests(), 1);
    assert_eq!(b.requests(), 1);
}

#[test]
fn answers_504_when_the_target_hangs_and_does_not_retry() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Hang);
    let lb = start_balancer(&[&a, &b], &["--response-timeout", "300ms"]);

    let started = Instant::now();
    let r = get_one(&lb);
    let took = started.elapsed();
    assert_eq!(r.status, 504);
    assert_eq!(r.body_str().trim_end(), "target did not answer in time");
    assert!(
        took >= Duration::from_millis(300),
        "answered after {took:?}"
    );
    assert_eq!(a.requests(), 1);
    assert_eq!(b.requests(), 0);
}

#[test]
fn never_retries_once_part_of_the_response_went_to_the_client() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::DieMidBody);
    let lb = start_balancer(&[&a, &b], &[]);

    let mut c = Client::connect(lb.addr());
    let r = c.request("GET", "/", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(answered_by(&r), "A");
    assert!(r.truncated, "the body should be cut short");
    assert_eq!(r.body.len(), DIE_MID_BODY_SENT);
    assert!(c.is_closed(WAIT), "the client connection should close");
    assert_eq!(b.requests(), 0);
}

#[test]
fn replays_a_content_length_body_on_retry() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(500));
    b.set_mode(Mode::Echo);
    let lb = start_balancer(&[&a, &b], &[]);

    let body = b"the body to replay";
    let r = Client::connect(lb.addr()).request("POST", "/upload", &[], body);
    assert_eq!((r.status, answered_by(&r)), (200, "B"));
    assert_eq!(r.body, body);
    assert_eq!(a.last_request().expect("A got the request").body, body);
    assert_eq!(b.last_request().expect("B got the request").body, body);
}

#[test]
fn replays_a_chunked_body_on_retry() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(500));
    b.set_mode(Mode::Echo);
    let lb = start_balancer(&[&a, &b], &[]);

    let chunked = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let r = Client::connect(lb.addr()).request(
        "POST",
        "/upload",
        &[("Transfer-Encoding", "chunked")],
        chunked,
    );
    assert_eq!((r.status, answered_by(&r)), (200, "B"));
    assert_eq!(r.body_str(), "hello world");
    assert_eq!(
        a.last_request().expect("A got the request").body_str(),
        "hello world"
    );
    assert_eq!(
        b.last_request().expect("B got the request").body_str(),
        "hello world"
    );
}

#[test]
fn does_not_replay_a_body_larger_than_the_bound() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(500));
    b.set_mode(Mode::Echo);
    let lb = start_balancer(&[&a, &b], &["--max-replay-body", "1024"]);

    let body = vec![b'z'; 4096];
    let r = Client::connect(lb.addr()).request("POST", "/upload", &[], &body);
    assert_eq!(r.status, 500);
    assert_eq!(r.body_str(), "A status 500");
    assert_eq!(b.requests(), 0);
    assert_eq!(a.last_request().expect("A got the request").body, body);
}

#[test]
fn does_not_replay_a_body_larger_than_the_bound_that_arrived_with_the_head() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(500));
    b.set_mode(Mode::Echo);
    let lb = start_balancer(&[&a, &b], &["--max-replay-body", "16"]);

    // Head and body in one small write: the balancer's first read holds both.
    let body = vec![b'z'; 64];
    let r = Client::connect(lb.addr()).request("POST", "/upload", &[], &body);
    assert_eq!(r.status, 500, "body {:?}", r.body_str());
    assert_eq!(r.body_str(), "A status 500");
    assert_eq!(b.requests(), 0);
    assert_eq!(a.last_request().expect("A got the request").body, body);
}

#[test]
fn does_not_replay_a_chunked_body_larger_than_the_bound_that_arrived_with_the_head() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(500));
    b.set_mode(Mode::Echo);
    let lb = start_balancer(&[&a, &b], &["--max-replay-body", "16"]);

    let data = "z".repeat(64);
    let chunked = format!("40\r\n{data}\r\n0\r\n\r\n");
    let r = Client::connect(lb.addr()).request(
        "POST",
        "/upload",
        &[("Transfer-Encoding", "chunked")],
        chunked.as_bytes(),
    );
    assert_eq!(r.status, 500, "body {:?}", r.body_str());
    assert_eq!(r.body_str(), "A status 500");
    assert_eq!(b.requests(), 0);
    assert_eq!(
        a.last_request().expect("A got the request").body_str(),
        data
    );
}

#[test]
fn replays_a_body_exactly_at_the_bound() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(500));
    b.set_mode(Mode::Echo);
    let lb = start_balancer(&[&a, &b], &["--max-replay-body", "1024"]);

    let body = vec![b'y'; 1024];
    let r = Client::connect(lb.addr()).request("POST", "/upload", &[], &body);
    assert_eq!((r.status, answered_by(&r)), (200, "B"));
    assert_eq!(r.body, body);
}

#[test]
fn does_not_retry_a_streamed_body_after_a_reset() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::ResetBeforeResponse);
    b.set_mode(Mode::Echo);
    let lb = start_balancer(&[&a, &b], &["--max-replay-body", "1024"]);

    let body = vec![b'z'; 4096];
    let r = Client::connect(lb.addr()).request("POST", "/upload", &[], &body);
    assert_eq!(r.status, 502);
    assert_eq!(b.requests(), 0);
}

#[test]
fn a_pooled_connection_the_target_closed_while_idle_is_not_a_failure() {
    let a = Backend::start("A");
    a.close_idle_after_response(true);
    let lb = start_balancer(&[&a], &["--retries", "0"]);

    let mut c = Client::connect(lb.addr());
    for i in 0..2 {
        let r = c.request("GET", "/", &[], b"");
        assert_eq!((r.status, r.body_str().as_str()), (200, "A"), "request {i}");
    }
    assert_eq!(a.requests(), 2);
    let conns: Vec<usize> = a.requests_log().iter().map(|r| r.conn).collect();
    assert_ne!(
        conns[0], conns[1],
        "the second request needs a new connection"
    );
    assert!(!lb.log_contains("degraded ->") && !lb.log_contains("-> degraded"));
}

#[test]
fn when_the_retry_fails_without_an_answer_the_client_gets_the_500() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(500));
    b.set_mode(Mode::ResetBeforeResponse);
    let lb = start_balancer(&[&a, &b], &[]);

    let r = get_one(&lb);
    assert_eq!(r.status, 500);
    assert_eq!(r.body_str(), "A status 500");
    assert_eq!((a.requests(), b.requests()), (1, 1));
}

#[test]
fn retries_skip_degraded_targets() {
    let targets: Vec<Backend> = ["A", "B", "C"].map(Backend::start).into();
    targets[0].set_mode(Mode::Status(500));
    targets[1].set_healthy(false);
    let refs: Vec<&Backend> = targets.iter().collect();
    let lb = start_balancer(&refs, &["--retries", "1"]);

    let r = get_one(&lb);
    assert_eq!((r.status, r.body_str().as_str()), (200, "C"));
    assert_eq!(targets[1].requests(), 0);
}

#[test]
fn retries_on_another_target_when_the_pooled_connections_to_a_stopped_target_are_dead() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let lb = start_balancer(&[&a, &b], &[]);

    let mut c = Client::connect(lb.addr());
    let first: Vec<String> = (0..2)
        .map(|_| answered_by(&c.request("GET", "/", &[], b"")).to_string())
        .collect();
    assert_eq!(first, ["A", "B"]);
    // Closes A's end of the pooled connection, and its listener.
    a.stop();
    let r = c.request("GET", "/", &[], b"");
    assert_eq!((r.status, answered_by(&r)), (200, "B"));
    assert_eq!(a.requests(), 1);
    let line = format!(
        "health: {} healthy -> degraded (connection refused)",
        target_name(&a)
    );
    lb.expect_log(&line, WAIT);
}

/// One request as [`DropsSecondRequest`] saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    /// 1 for the first connection that carried a request other than a health check.
    conn: usize,
    /// 1 for the first request on that connection.
    nth: usize,
    answered: bool,
}

/// A target that closes a kept-alive connection just as the next request
/// arrives, as a server whose idle timeout fires at that moment would: its
/// first connection carrying requests answers the first one (keep-alive),
/// then reads the second and closes (FIN) without a byte. Every other
/// connection answers normally, body `conn C request N`. `GET /_health`
/// gets 200 and a close.
struct DropsSecondRequest {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stopping: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl DropsSecondRequest {
    fn start() -> DropsSecondRequest {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let accept = {
            let (seen, stopping) = (Arc::clone(&seen), Arc::clone(&stopping));
            let data_conns = Arc::new(AtomicUsize::new(0));
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (seen, data_conns) = (Arc::clone(&seen), Arc::clone(&data_conns));
                    thread::spawn(move || serve_drops_second(stream, &data_conns, &seen));
                }
            })
        };
        DropsSecondRequest {
            addr,
            seen,
            stopping,
            accept: Some(accept),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for DropsSecondRequest {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// The path of the next request on `reader` (head only: these are GETs), or
/// `None` at end of stream.
fn read_get_path(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1)?.to_string();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" || line == "\n" {
            return Some(path);
        }
    }
}

fn serve_drops_second(stream: TcpStream, data_conns: &AtomicUsize, seen: &Mutex<Vec<Seen>>) {
    let _ = stream.set_read_timeout(Some(CLIENT_TIMEOUT));
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut conn = None;
    let mut nth = 0;
    while let Some(path) = read_get_path(&mut reader) {
        if path == HEALTH_PATH {
            let _ = out
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            return;
        }
        let conn = *conn.get_or_insert_with(|| data_conns.fetch_add(1, Ordering::SeqCst) + 1);
        nth += 1;
        let answered = !(conn == 1 && nth == 2);
        seen.lock().unwrap().push(Seen {
            conn,
            nth,
            answered,
        });
        if !answered {
            // Both handles drop: the socket closes with FIN, nothing unread.
            return;
        }
        let body = format!("conn {conn} request {nth}");
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if out.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn a_pooled_connection_closed_before_any_answer_is_retried_on_a_fresh_one_to_the_same_target() {
    let target = DropsSecondRequest::start();
    let addr = target.addr.to_string();
    let lb = Balancer::start(&[
        "-b",
        &addr,
        "--workers",
        "1",
        "--health-interval",
        "60s",
        "--retries",
        "0",
    ]);

    let mut c = Client::connect(lb.addr());
    let first = c.request("GET", "/one", &[], b"");
    assert_eq!(
        (first.status, first.body_str().as_str()),
        (200, "conn 1 request 1")
    );
    let second = c.request("GET", "/two", &[], b"");
    assert_eq!(
        (second.status, second.body_str().as_str()),
        (200, "conn 2 request 1")
    );
    let seen = |conn, nth, answered| Seen {
        conn,
        nth,
        answered,
    };
    assert_eq!(
        target.seen(),
        [seen(1, 1, true), seen(1, 2, false), seen(2, 1, true)]
    );
}

/// A target that answers the start-up health check and then never accepts
/// again, its accept queue full: connects to it hang until their deadline.
struct Unreachable {
    addr: SocketAddr,
    listener: TcpListener,
    health: Option<JoinHandle<()>>,
    /// Connections that fill the accept queue.
    fillers: Vec<TcpStream>,
}

impl Unreachable {
    /// Listens, with a thread that answers the first connection (the
    /// start-up health check) with 200 and a close.
    fn start() -> Unreachable {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        // `listen` again on a listening socket changes its backlog: with 0,
        // one connection waiting to be accepted fills the queue and later
        // SYNs are dropped.
        // SAFETY: listen(2) on a descriptor `listener` owns and keeps open
        // for the whole call; it touches no memory of ours.
        let rc = unsafe { libc::listen(listener.as_raw_fd(), 0) };
        assert_eq!(rc, 0, "listen: {}", std::io::Error::last_os_error());
        let health = {
            let listener = listener.try_clone().expect("try_clone");
            thread::spawn(move || {
                let (stream, _) = listener.accept().expect("accept the health check");
                let _ = stream.set_read_timeout(Some(CLIENT_TIMEOUT));
                let mut out = stream.try_clone().expect("try_clone");
                let mut reader = BufReader::new(stream);
                assert_eq!(read_get_path(&mut reader).as_deref(), Some(HEALTH_PATH));
                out.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                )
                .expect("answer the health check");
            })
        };
        Unreachable {
            addr,
            listener,
            health: Some(health),
            fillers: Vec::new(),
        }
    }

    /// Once the health check is answered, fills the accept queue until a
    /// connect no longer completes.
    fn stop_answering(&mut self) {
        if let Some(health) = self.health.take() {
            health.join().expect("health check thread");
        }
        for _ in 0..16 {
            match TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)) {
                Ok(s) => self.fillers.push(s),
                Err(e) if e.kind() == ErrorKind::TimedOut => return,
                Err(e) => panic!("filling the accept queue of {}: {e}", self.addr),
            }
        }
        panic!(
            "the accept queue of {} (listening: {:?}) did not fill: cannot test a connect timeout",
            self.addr,
            self.listener.local_addr()
        );
    }
}

#[test]
fn retries_when_the_connect_to_a_target_times_out() {
    let mut a = Unreachable::start();
    let b = Backend::start("B");
    let a_name = a.addr.to_string();
    let b_name = b.addr().to_string();
    let lb = Balancer::start(&[
        "-b",
        &a_name,
        "-b",
        &b_name,
        "--workers",
        "1",
        "--health-interval",
        "60s",
        "--connect-timeout",
        "200ms",
    ]);
    assert!(lb.log_contains("2 targets (2 healthy)"), "{:#?}", lb.log());
    a.stop_answering();

    let started = Instant::now();
    let r = get_one(&lb);
    let took = started.elapsed();
    assert_eq!((r.status, r.body_str().as_str()), (200, "B"));
    assert!(
        took >= Duration::from_millis(200),
        "answered after {took:?}"
    );
    let line = format!("health: {a_name} healthy -> degraded (connect timed out)");
    lb.expect_log(&line, WAIT);
}

#[test]
fn answers_504_when_the_connect_to_the_only_target_times_out() {
    let mut a = Unreachable::start();
    let a_name = a.addr.to_string();
    let lb = Balancer::start(&[
        "-b",
        &a_name,
        "--workers",
        "1",
        "--health-interval",
        "60s",
        "--connect-timeout",
        "200ms",
    ]);
    assert!(lb.log_contains("1 targets (1 healthy)"), "{:#?}", lb.log());
    a.stop_answering();

    let started = Instant::now();
    let r = get_one(&lb);
    let took = started.elapsed();
    assert_eq!(r.status, 504);
    assert_eq!(r.body_str().trim_end(), "target did not answer in time");
    assert!(
        took >= Duration::from_millis(200),
        "answered after {took:?}"
    );
}

// ---------------------------------------------------------------------------
// A request the target took and did not answer is sent again only when
// running it twice does no harm.

#[test]
fn a_post_the_target_took_and_reset_runs_once_and_is_502() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::ResetBeforeResponse);
    b.set_mode(Mode::ResetBeforeResponse);
    let lb = start_balancer(&[&a, &b], &[]);

    let mut client = Client::connect(lb.addr());
    let r = client.request("POST", "/order", &[], b"one order");
    assert_eq!(r.status, 502);
    assert_eq!(
        a.requests() + b.requests(),
        1,
        "the POST reached a target more than once"
    );
    // The body was read whole: the client connection carries on.
    assert_eq!(r.header("Connection"), Some("keep-alive"));
}

#[test]
fn a_post_is_sent_again_when_its_connect_was_refused() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    b.set_mode(Mode::Echo);
    let lb = start_balancer(&[&a, &b], &[]);
    a.stop();

    let mut client = Client::connect(lb.addr());
    let r = client.request("POST", "/order", &[], b"one order");
    assert_eq!((r.status, r.body_str().as_str()), (200, "one order"));
    assert_eq!(b.requests(), 1);
}

#[test]
fn idempotent_methods_are_sent_again_after_a_reset() {
    for method in ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"] {
        let a = Backend::start("A");
        let b = Backend::start("B");
        a.set_mode(Mode::ResetBeforeResponse);
        let lb = start_balancer(&[&a, &b], &[]);
        let mut client = Client::connect(lb.addr());
        let r = client.request(method, "/x", &[], b"");
        assert_eq!(r.status, 200, "{method}");
        assert_eq!((a.requests(), b.requests()), (1, 1), "{method}");
    }
}

#[test]
fn a_post_with_an_idempotency_key_is_sent_again_after_a_reset() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::ResetBeforeResponse);
    b.set_mode(Mode::Echo);
    let lb = start_balancer(&[&a, &b], &[]);
    let mut client = Client::connect(lb.addr());
    let r = client.request("POST", "/pay", &[("Idempotency-Key", "k-1")], b"pay once");
    assert_eq!((r.status, r.body_str().as_str()), (200, "pay once"));
    assert_eq!((a.requests(), b.requests()), (1, 1));
}

#[test]
fn retry_non_idempotent_sends_a_post_again_after_a_reset() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::ResetBeforeResponse);
    b.set_mode(Mode::Echo);
    let lb = start_balancer(&[&a, &b], &["--retry-non-idempotent"]);
    let mut client = Client::connect(lb.addr());
    let r = client.request("PATCH", "/x", &[], b"patch");
    assert_eq!((r.status, r.body_str().as_str()), (200, "patch"));
    assert_eq!((a.requests(), b.requests()), (1, 1));
}

#[test]
fn a_post_that_got_a_500_is_still_retried() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(500));
    b.set_mode(Mode::Echo);
    let lb = start_balancer(&[&a, &b], &[]);
    let mut client = Client::connect(lb.addr());
    let r = client.request("POST", "/x", &[], b"again");
    assert_eq!((r.status, r.body_str().as_str()), (200, "again"));
}

/// A target whose keep-alive timeout is as long as the pause between
/// requests closes connections just as they are reused. GETs are sent again
/// and never fail; a POST may get a 502, but never runs twice.
#[test]
fn requests_racing_a_targets_keep_alive_timeout() {
    const KEEP_ALIVE: Duration = Duration::from_millis(300);
    let a = Backend::start("A");
    a.set_mode(Mode::Echo);
    a.set_keep_alive_timeout(Some(KEEP_ALIVE));
    // A pool idle timeout longer than the target's, or every connection
    // would be closed by the balancer first and nothing would race.
    let lb = start_balancer(&[&a], &["--pool-idle-timeout", "60s"]);
    let mut client = Client::connect(lb.addr());
    let mut posts = Vec::new();
    for round in 0..24u64 {
        // Pauses around the target's timeout, a millisecond apart.
        let pause = KEEP_ALIVE + Duration::from_millis(round) - Duration::from_millis(12);
        thread::sleep(pause);
        let r = client.request("GET", &format!("/get-{round}"), &[], b"");
        assert_eq!(r.status, 200, "GET {round}: {r:?}");
        thread::sleep(pause);
        let body = format!("post-{round}");
        let r = client.request("POST", "/post", &[], body.as_bytes());
        assert!(matches!(r.status, 200 | 502), "POST {round}: {r:?}");
        posts.push(body);
    }
    let seen: Vec<String> = a
        .requests_log()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.body_str())
        .collect();
    for body in &posts {
        let n = seen.iter().filter(|s| *s == body).count();
        assert!(n <= 1, "{body} ran {n} times");
    }
}
