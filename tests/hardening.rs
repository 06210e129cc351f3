//! End to end: how the balancer holds up against slow, idle and greedy
//! clients and misbehaving targets (header, response and idle timeouts on
//! both sides, the connection limit), protocol upgrades (tunnels),
//! `Expect: 100-continue`, the fields a proxy sets or drops, keep-alive
//! towards targets, and the requests it refuses without forwarding.

mod support;
use support::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// The upstream connection each request came on, in order.
fn upstream_conns(backend: &Backend) -> Vec<usize> {
    backend.requests_log().iter().map(|r| r.conn).collect()
}

/// Reads exactly `n` raw bytes (buffered ones first).
fn read_exactly(c: &mut Client, n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    c.read_exact(&mut bytes)
        .unwrap_or_else(|e| panic!("reading {n} bytes: {e}"));
    bytes
}

// ---------------------------------------------------------------------------
// Slow clients and slow targets

#[test]
fn slow_clients_do_not_hold_up_a_fast_one_and_each_gets_408() {
    const SLOW: usize = 100;
    let backend = Backend::start("a");
    let lb = start_balancer(&[&backend], &["--client-header-timeout", "1s"]);
    // A first head is due from the accept: the slow clients' deadlines run
    // from here.
    let connected = Instant::now();
    let mut slow: Vec<Client> = (0..SLOW).map(|_| Client::connect(lb.addr())).collect();
    let writers: Vec<TcpStream> = slow
        .iter()
        .map(|c| c.stream().try_clone().expect("clone a client socket"))
        .collect();
    // A head that never ends, sent a byte every 100 ms on every connection.
    let mut head = b"GET /slow HTTP/1.1\r\nHost: t\r\nX-Slow: ".to_vec();
    head.resize(head.len() + 100, b'z');
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let dripper = {
        let (stop, rounds) = (Arc::clone(&stop), Arc::clone(&rounds));
        thread::spawn(move || {
            let mut writers: Vec<Option<TcpStream>> = writers.into_iter().map(Some).collect();
            for &byte in &head {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                for w in writers.iter_mut() {
                    let failed = match w {
                        Some(s) => s.write_all(&[byte]).is_err(),
                        None => false,
                    };
                    if failed {
                        *w = None;
                    }
                }
                rounds.fetch_add(1, Ordering::SeqCst);
                // The pace of a slow client, not a wait for a condition.
                thread::sleep(Duration::from_millis(100));
            }
        })
    };
    assert!(
        wait_for(WAIT, || rounds.load(Ordering::SeqCst) >= 1),
        "the slow clients did not start"
    );

    let mut fast = Client::connect(lb.addr());
    for i in 0..50 {
        let r = fast.request("GET", &format!("/fast/{i}"), &[], b"");
        assert_eq!(
            (r.status, r.body_str().as_str()),
            (200, "a"),
            "fast request {i}"
        );
    }
    let fast_done = began.elapsed();
    assert!(
        fast_done < Duration::from_secs(1),
        "the fast client needed {fast_done:?} for 50 requests, longer than the slow \
         clients' header timeout"
    );

    let deadline = began + WAIT;
    for (i, c) in slow.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        c.set_read_timeout(left.max(Duration::from_millis(1)));
        let r = c
            .try_read_response_to("GET")
            .unwrap_or_else(|e| panic!("slow client {i}: no answer by {WAIT:?}: {e}"));
        assert_eq!(r.status, 408, "slow client {i}: {}", r.body_str());
        assert_short_text_line(&r);
        if i == 0 {
            let at = connected.elapsed();
            assert!(at >= Duration::from_millis(950), "408 after only {at:?}");
        }
    }
    stop.store(true, Ordering::SeqCst);
    dripper.join().expect("the slow clients' thread");
    for (i, c) in slow.iter_mut().enumerate() {
        assert!(c.is_closed(WAIT), "slow client {i} left open after its 408");
    }
    assert_eq!(
        backend.requests(),
        50,
        "only the fast requests were forwarded"
    );
}

#[test]
fn a_target_that_does_not_start_its_response_in_time_gets_504_and_its_connection_closed() {
    let backend = Backend::start("a");
    backend.set_mode(Mode::Hang);
    let lb = start_balancer(&[&backend], &["--response-timeout", "300ms"]);
    let mut c = Client::connect(lb.addr());
    let start = Instant::now();
    let r = c.request("GET", "/hang", &[], b"");
    let took = start.elapsed();
    assert_eq!(r.status, 504, "{}", r.body_str());
    assert_short_text_line(&r);
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "504 after {took:?} with --response-timeout 300ms"
    );
    // A hanging target keeps its side open: only the balancer can close it.
    assert!(
        wait_for(WAIT, || backend.open_connections() == 0),
        "the hanging upstream connection is still open ({} open)",
        backend.open_connections()
    );

    backend.set_mode(Mode::Ok);
    let r = Client::connect(lb.addr()).request("GET", "/next", &[], b"");
    assert_eq!((r.status, r.body_str().as_str()), (200, "a"));
    let conns = upstream_conns(&backend);
    assert_eq!(conns.len(), 2);
    assert_ne!(conns[0], conns[1], "the timed-out connection was reused");
}

// ---------------------------------------------------------------------------
// Idle connections

#[test]
fn an_idle_keep_alive_client_is_closed_without_a_byte() {
    let backend = Backend::start("a");
    let lb = start_balancer(&[&backend], &["--idle-timeout", "500ms"]);
    let mut c = Client::connect(lb.addr());
    assert_eq!(c.request("GET", "/", &[], b"").status, 200);
    let idle = Instant::now();
    assert!(c.is_closed(WAIT), "idle client still open after {WAIT:?}");
    let took = idle.elapsed();
    assert!(
        took >= Duration::from_millis(450),
        "closed after only {took:?} with --idle-timeout 500ms"
    );
    assert!(
        c.buffered().is_empty(),
        "bytes before the close: {:?}",
        String::from_utf8_lossy(c.buffered())
    );
}

#[test]
fn an_idle_pooled_upstream_connection_is_closed_and_a_later_request_opens_a_new_one() {
    let backend = Backend::start("a");
    let lb = start_balancer(&[&backend], &["--idle-timeout", "500ms"]);
    let r = Client::connect(lb.addr()).request("GET", "/first", &[], b"");
    assert_eq!(r.status, 200);
    // The target keeps its connections open: only the balancer closes it.
    assert!(
        wait_for(WAIT, || backend.open_connections() == 0),
        "the idle pooled connection is still open after {WAIT:?}"
    );

    let r = Client::connect(lb.addr()).request("GET", "/later", &[], b"");
    assert_eq!((r.status, r.body_str().as_str()), (200, "a"));
    let conns = upstream_conns(&backend);
    assert_eq!(conns.len(), 2);
    assert_ne!(conns[0], conns[1], "the closed connection was used again");
}

#[test]
fn a_stalled_response_body_is_cut_off_after_the_idle_timeout() {
    let backend = Backend::start("a");
    // Half the announced body, then silence (the target keeps its side open).
    backend.set_mode(Mode::Raw(raw_response(
        "HTTP/1.1 200 OK\r\nContent-Length: 10",
        b"hello",
    )));
    let lb = start_balancer(&[&backend], &["--idle-timeout", "500ms"]);
    let mut c = Client::connect(lb.addr());
    let start = Instant::now();
    let r = c.request("GET", "/stalls", &[], b"");
    let took = start.elapsed();
    assert_eq!(r.status, 200);
    assert!(
        r.truncated,
        "a body cut short arrived whole: {:?}",
        r.body_str()
    );
    assert_eq!(r.body_str(), "hello");
    assert!(
        took >= Duration::from_millis(450),
        "cut off after only {took:?} with --idle-timeout 500ms"
    );
    assert!(
        wait_for(WAIT, || backend.open_connections() == 0),
        "the stalled upstream connection is still open"
    );
}

// ---------------------------------------------------------------------------
// Connection limit

/// `GET /` on a new connection; its status, or `None` if no answer came.
fn status_of_a_new_connection(lb: &Balancer) -> Option<u16> {
    let mut c = Client::try_connect(lb.addr()).ok()?;
    c.try_send(&request_bytes("GET", "/", &[], b"")).ok()?;
    c.try_read_response_to("GET").ok().map(|r| r.status)
}

#[test]
fn past_max_connections_a_new_connection_gets_503_until_one_closes() {
    let backend = Backend::start("a");
    let lb = start_balancer(&[&backend], &["--max-connections", "2"]);
    let mut first = Client::connect(lb.addr());
    let mut second = Client::connect(lb.addr());
    assert_eq!(first.request("GET", "/1", &[], b"").status, 200);
    assert_eq!(second.request("GET", "/2", &[], b"").status, 200);

    let mut third = Client::connect(lb.addr());
    let r = third.request("GET", "/3", &[], b"");
    assert_eq!(r.status, 503);
    assert_eq!(r.body_str().trim_end(), "too many connections");
    assert!(
        third.is_closed(WAIT),
        "the connection over the limit was left open"
    );

    // The first two are still served.
    assert_eq!(first.request("GET", "/1b", &[], b"").status, 200);
    assert_eq!(second.request("GET", "/2b", &[], b"").status, 200);
    assert_eq!(backend.requests(), 4, "the refused request was forwarded");

    drop(first);
    assert!(
        wait_for(WAIT, || status_of_a_new_connection(&lb) == Some(200)),
        "no new connection served after one of the two closed"
    );
}

// ---------------------------------------------------------------------------
// Protocol upgrades (tunnels)

/// A masked WebSocket text frame carrying `Hello` (RFC 6455 section 5.7).
const MASKED_HELLO: &[u8] = &[
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];

/// A balancer in front of a `Mode::Upgrade` target, with `flags`.
fn upgrade_setup(flags: &[&str]) -> (Backend, Balancer) {
    let backend = Backend::start("ws");
    backend.set_mode(Mode::Upgrade);
    let lb = start_balancer(&[&backend], flags);
    (backend, lb)
}

/// Sends the handshake (with `extra`) and reads the answer, which must be a 101.
fn open_tunnel(lb: &Balancer, extra: &[u8]) -> (Client, Response) {
    let mut c = Client::connect(lb.addr());
    c.send(&upgrade_request(extra));
    let r = c.read_response();
    assert_eq!(
        r.status,
        101,
        "answer to the handshake: {} {:?}",
        r.body_str(),
        r.headers
    );
    (c, r)
}

/// Sends `bytes` through the tunnel and checks they come back.
fn assert_echoed(c: &mut Client, bytes: &[u8]) {
    c.send(bytes);
    let back = read_exactly(c, bytes.len());
    assert!(back == bytes, "{} bytes changed on the way", bytes.len());
}

#[test]
fn a_websocket_upgrade_gets_the_targets_101_and_the_target_sees_the_upgrade() {
    let (backend, lb) = upgrade_setup(&[]);
    let (_c, r) = open_tunnel(&lb, b"");
    assert_eq!(r.header("Upgrade"), Some("websocket"), "{:?}", r.headers);
    assert_eq!(r.header("Connection"), Some("Upgrade"), "{:?}", r.headers);
    assert_eq!(
        r.header("Sec-WebSocket-Accept"),
        Some(WEBSOCKET_ACCEPT),
        "{:?}",
        r.headers
    );
    assert!(r.body.is_empty());

    let seen = backend
        .last_request()
        .expect("the target got the handshake");
    assert_eq!(
        seen.header_all("Upgrade"),
        vec!["websocket"],
        "{:?}",
        seen.headers
    );
    let connection = seen.header_all("Connection");
    assert!(
        connection.len() == 1 && connection[0].eq_ignore_ascii_case("upgrade"),
        "Connection as the target saw it: {connection:?}"
    );
    assert_eq!(seen.header("Sec-WebSocket-Key"), Some(WEBSOCKET_KEY));
    assert_eq!(seen.header("Sec-WebSocket-Version"), Some("13"));
}

#[test]
fn bytes_go_both_ways_through_a_websocket_tunnel() {
    let (_backend, lb) = upgrade_setup(&[]);
    let (mut c, _) = open_tunnel(&lb, b"");
    assert_echoed(&mut c, MASKED_HELLO);
    let big: Vec<u8> = (0..256 * 1024).map(|i| (i * 7 % 253) as u8).collect();
    assert_echoed(&mut c, &big);
    assert_echoed(&mut c, b"after the big one");
}

#[test]
fn bytes_sent_with_the_upgrade_request_reach_the_target() {
    let (_backend, lb) = upgrade_setup(&[]);
    let (mut c, _) = open_tunnel(&lb, MASKED_HELLO);
    let back = read_exactly(&mut c, MASKED_HELLO.len());
    assert_eq!(back, MASKED_HELLO);
    assert_echoed(&mut c, b"more");
}

#[test]
fn closing_the_client_closes_the_tunnel_to_the_target() {
    let (backend, lb) = upgrade_setup(&[]);
    let (mut c, _) = open_tunnel(&lb, b"");
    assert_echoed(&mut c, MASKED_HELLO);
    assert!(backend.open_connections() >= 1);
    drop(c);
    assert!(
        wait_for(WAIT, || backend.open_connections() == 0),
        "the target's side of the tunnel is still open after the client closed"
    );
}

#[test]
fn closing_the_target_closes_the_tunnel_to_the_client() {
    let (backend, lb) = upgrade_setup(&[]);
    let (mut c, _) = open_tunnel(&lb, b"");
    assert_echoed(&mut c, MASKED_HELLO);
    backend.stop();
    assert!(
        c.is_closed(WAIT),
        "the client's side of the tunnel is still open after the target closed"
    );
}

#[test]
fn a_silent_tunnel_is_closed_on_both_sides_after_the_idle_timeout() {
    let (backend, lb) = upgrade_setup(&["--idle-timeout", "500ms"]);
    let (mut c, _) = open_tunnel(&lb, b"");
    assert_echoed(&mut c, MASKED_HELLO);
    let quiet = Instant::now();
    assert!(c.is_closed(WAIT), "the silent tunnel is still open");
    let took = quiet.elapsed();
    assert!(
        took >= Duration::from_millis(450),
        "closed after only {took:?} with --idle-timeout 500ms"
    );
    assert!(
        c.buffered().is_empty(),
        "bytes before the close: {:?}",
        c.buffered()
    );
    assert!(
        wait_for(WAIT, || backend.open_connections() == 0),
        "the target's side of the silent tunnel is still open"
    );
}

#[test]
fn a_tunnel_with_traffic_outlives_the_idle_timeout() {
    let (_backend, lb) = upgrade_setup(&["--idle-timeout", "500ms"]);
    let (mut c, _) = open_tunnel(&lb, b"");
    let start = Instant::now();
    let mut i = 0u32;
    while start.elapsed() < Duration::from_millis(1200) {
        assert_echoed(&mut c, format!("ping {i}").as_bytes());
        i += 1;
        // The pace of the traffic: well inside the idle timeout.
        thread::sleep(Duration::from_millis(150));
    }
    assert_echoed(&mut c, b"still open");
}

#[test]
fn a_101_the_client_did_not_ask_for_is_502() {
    let backend = Backend::start("a");
    backend.set_mode(Mode::Raw(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
            .to_vec(),
    ));
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    let r = c.request("GET", "/plain", &[], b"");
    assert_eq!(r.status, 502, "{:?}", r.headers);
    assert_short_text_line(&r);
}

// ---------------------------------------------------------------------------
// Expect: 100-continue

/// The head of `POST /up` with `Expect: 100-continue` and a 5-byte body.
fn expect_continue_head() -> Vec<u8> {
    request_bytes(
        "POST",
        "/up",
        &[("Expect", "100-continue"), ("Content-Length", "5")],
        b"",
    )
}

#[test]
fn expect_continue_relays_the_targets_100_then_the_body() {
    let backend = Backend::start("a");
    backend.set_mode(Mode::Echo);
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    let start = Instant::now();
    c.send(&expect_continue_head());
    let interim = c.read_response();
    let took = start.elapsed();
    assert_eq!(interim.status, 100);
    assert!(
        took < Duration::from_millis(800),
        "the target's 100 took {took:?}: it was not relayed"
    );
    c.send(b"hello");
    let r = c.read_response();
    assert_eq!((r.status, r.body_str().as_str()), (200, "hello"));
    let seen = backend.last_request().expect("the target got the request");
    assert_eq!(seen.body_str(), "hello");
}

#[test]
fn a_final_answer_to_expect_continue_reaches_the_client_without_the_body_and_closes() {
    let backend = Backend::start("a");
    backend.set_mode(Mode::RejectExpect(417));
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    c.send(&expect_continue_head());
    let r = c.read_response();
    assert_eq!(r.status, 417, "{}", r.body_str());
    assert_eq!(r.body_str(), "a status 417");
    // A client that sends its body anyway: it must go nowhere.
    let _ = c.try_send(b"hello");
    let rest = c.read_until_close(WAIT);
    assert!(
        rest.is_empty(),
        "bytes after the 417: {:?}",
        String::from_utf8_lossy(&rest)
    );
    assert!(
        c.is_closed(Duration::from_millis(10)),
        "client connection left open"
    );
    assert!(
        wait_for(WAIT, || backend.open_connections() == 0),
        "the upstream connection is still open"
    );
    let seen = backend.last_request().expect("the target got the head");
    assert!(
        seen.raw_body.is_empty(),
        "the target got body bytes: {:?}",
        seen.body_str()
    );
    assert_eq!(backend.requests(), 1);
}

#[test]
fn a_target_that_never_sends_100_gets_the_body_after_the_balancers_own_100() {
    let backend = Backend::start("a");
    backend.set_mode(Mode::NoContinue);
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    let start = Instant::now();
    c.send(&expect_continue_head());
    let interim = c.read_response();
    let took = start.elapsed();
    assert_eq!(interim.status, 100);
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(3),
        "the balancer's 100 came after {took:?}, not about 1 s"
    );
    c.send(b"hello");
    let r = c.read_response();
    assert_eq!((r.status, r.body_str().as_str()), (200, "hello"));
    assert_eq!(
        backend.last_request().expect("forwarded").body_str(),
        "hello"
    );
}

// ---------------------------------------------------------------------------
// Fields a proxy sets or drops

#[test]
fn x_forwarded_proto_http_replaces_the_clients_own() {
    let backend = Backend::start("a");
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    assert_eq!(c.request("GET", "/plain", &[], b"").status, 200);
    let seen = backend.last_request().expect("forwarded");
    assert_eq!(seen.header_all("X-Forwarded-Proto"), vec!["http"]);

    let r = c.request("GET", "/spoofed", &[("X-Forwarded-Proto", "https")], b"");
    assert_eq!(r.status, 200);
    let seen = backend.last_request().expect("forwarded");
    assert_eq!(
        seen.header_all("X-Forwarded-Proto"),
        vec!["http"],
        "{:?}",
        seen.headers
    );
}

#[test]
fn trailer_field_is_dropped_from_requests_and_trailers_go_through() {
    let backend = Backend::start("a");
    backend.set_mode(Mode::Echo);
    let lb = start_balancer(&[&backend], &[]);
    let chunks: &[u8] = b"5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n";
    let mut c = Client::connect(lb.addr());
    let r = c.request(
        "POST",
        "/",
        &[("Trailer", "X-Sum"), ("Transfer-Encoding", "chunked")],
        chunks,
    );
    assert_eq!((r.status, r.body_str().as_str()), (200, "hello"));
    let seen = backend.last_request().expect("forwarded");
    assert_eq!(seen.header("Trailer"), None, "{:?}", seen.headers);
    assert_eq!(
        String::from_utf8_lossy(&seen.raw_body),
        String::from_utf8_lossy(chunks),
        "the chunked body (with its trailer) changed on the way"
    );
}

#[test]
fn trailer_field_is_dropped_from_responses_and_trailers_go_through() {
    let chunks: &[u8] = b"5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n";
    let backend = Backend::start("a");
    backend.set_mode(Mode::Raw(raw_response(
        "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked",
        chunks,
    )));
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    let r = c.request("GET", "/", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Trailer"), None, "{:?}", r.headers);
    assert_eq!(
        String::from_utf8_lossy(&r.raw_body),
        String::from_utf8_lossy(chunks),
        "the chunked body (with its trailer) changed on the way"
    );
    assert_eq!(r.body_str(), "hello");
}

// ---------------------------------------------------------------------------
// Bad responses

#[test]
fn a_response_with_chunked_and_content_length_is_502_and_its_connection_is_not_reused() {
    let backend = Backend::start("a");
    backend.set_mode(Mode::Raw(raw_response(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5",
        b"5\r\nhello\r\n0\r\n\r\n",
    )));
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    let r = c.request("GET", "/ambiguous", &[], b"");
    assert_eq!(r.status, 502, "{:?} {:?}", r.headers, r.body_str());
    assert_short_text_line(&r);
    // The target keeps its side open after a Raw answer: only the balancer closes it.
    assert!(
        wait_for(WAIT, || backend.open_connections() == 0),
        "the upstream connection of the ambiguous response is still open"
    );

    backend.set_mode(Mode::Ok);
    let r = Client::connect(lb.addr()).request("GET", "/next", &[], b"");
    assert_eq!((r.status, r.body_str().as_str()), (200, "a"));
    let conns = upstream_conns(&backend);
    assert_eq!(conns.len(), 2);
    assert_ne!(conns[0], conns[1], "the connection was reused");
}

// ---------------------------------------------------------------------------
// Keep-alive towards targets

#[test]
fn http10_clients_share_one_kept_alive_upstream_connection() {
    let backend = Backend::start("a");
    let lb = start_balancer(&[&backend], &[]);

    // Without keep-alive: one request per client connection.
    for i in 0..2 {
        let mut c = Client::connect(lb.addr());
        c.send(format!("GET /plain{i} HTTP/1.0\r\n\r\n").as_bytes());
        assert_eq!(c.read_response().status, 200, "plain HTTP/1.0 request {i}");
        // Closed: the exchange is over and the upstream back in the pool.
        assert!(c.is_closed(WAIT), "HTTP/1.0 client {i} left open");
    }
    // With keep-alive: two on one client connection.
    let mut c = Client::connect(lb.addr());
    for i in 0..2 {
        c.send(format!("GET /kept{i} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").as_bytes());
        let r = c.read_response();
        assert_eq!(r.status, 200, "keep-alive HTTP/1.0 request {i}");
        assert_eq!(r.header("Connection"), Some("keep-alive"));
    }

    let log = backend.requests_log();
    assert_eq!(log.len(), 4);
    for seen in &log {
        assert_eq!(seen.version, 0, "{} went up as HTTP/1.1", seen.path);
        assert_eq!(
            seen.header_all("Connection"),
            vec!["keep-alive"],
            "{}: {:?}",
            seen.path,
            seen.headers
        );
    }
    let conns = upstream_conns(&backend);
    assert!(
        conns.iter().all(|&c| c == conns[0]),
        "requests came on upstream connections {conns:?}"
    );
}

#[test]
fn connection_close_clients_share_one_kept_alive_upstream_connection() {
    let backend = Backend::start("a");
    let lb = start_balancer(&[&backend], &[]);
    for i in 0..3 {
        let mut c = Client::connect(lb.addr());
        let r = c.request("GET", &format!("/{i}"), &[("Connection", "close")], b"");
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(r.header("Connection"), Some("close"), "request {i}");
        assert!(c.is_closed(WAIT), "client {i} left open");
    }
    let log = backend.requests_log();
    assert_eq!(log.len(), 3);
    for seen in &log {
        assert_eq!(
            seen.header("Connection"),
            None,
            "{}: {:?}",
            seen.path,
            seen.headers
        );
    }
    let conns = upstream_conns(&backend);
    assert!(
        conns.iter().all(|&c| c == conns[0]),
        "requests came on upstream connections {conns:?}"
    );
}

// ---------------------------------------------------------------------------
// Requests refused without forwarding

/// A chunked request whose body goes bad at `bad` (a chunk-size line),
/// followed by a request that must never reach the target: the client gets
/// a 400 and is closed, and nothing after the bad chunk is forwarded.
fn assert_bad_body_rejected(bad: &[u8]) {
    let backend = Backend::start("a");
    backend.set_mode(Mode::Echo);
    let lb = start_balancer(&[&backend], &[]);
    let mut raw =
        b"POST /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
            .to_vec();
    raw.extend_from_slice(bad);
    raw.extend_from_slice(b"\r\nSMUGGLED\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut c = Client::connect(lb.addr());
    c.send(&raw);
    let r = c.read_response();
    assert_eq!(r.status, 400, "{}", r.body_str());
    assert_eq!(r.header("Connection"), Some("close"));
    assert_short_text_line(&r);
    assert!(c.is_closed(WAIT), "connection left open after the 400");

    // Anything forwarded on that account came before this.
    let after = Client::connect(lb.addr()).request("GET", "/after", &[], b"");
    assert_eq!(after.status, 200);
    for seen in backend.requests_log() {
        assert_ne!(
            seen.path, "/smuggled",
            "the request after the bad chunk got through"
        );
        let raw = String::from_utf8_lossy(&seen.raw_body);
        assert!(
            !raw.contains("SMUGGLED"),
            "{} carried bytes from after the bad chunk: {raw:?}",
            seen.path
        );
    }
}

#[test]
fn rejects_content_length_with_transfer_encoding() {
    assert_rejected(
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n\
          0\r\n\r\n",
        400,
    );
}

#[test]
fn rejects_two_different_content_lengths() {
    assert_rejected(
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        400,
    );
}

#[test]
fn rejects_chunked_in_http10() {
    assert_rejected(
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn rejects_whitespace_before_a_colon() {
    assert_rejected(b"GET / HTTP/1.1\r\nHost: t\r\nX-A : 1\r\n\r\n", 400);
}

#[test]
fn rejects_obs_fold() {
    assert_rejected(
        b"GET / HTTP/1.1\r\nHost: t\r\nX-A: one\r\n two\r\n\r\n",
        400,
    );
}

#[test]
fn rejects_nul_in_a_header_value() {
    assert_rejected(b"GET / HTTP/1.1\r\nHost: t\r\nX-A: o\0ne\r\n\r\n", 400);
}

#[test]
fn rejects_bare_cr_in_a_header_value() {
    assert_rejected(b"GET / HTTP/1.1\r\nHost: t\r\nX-A: o\rne\r\n\r\n", 400);
}

#[test]
fn rejects_http11_without_host() {
    assert_rejected(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400);
}

#[test]
fn rejects_two_host_fields() {
    assert_rejected(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
}

#[test]
fn rejects_an_unknown_http_version() {
    assert_rejected(b"GET / HTTP/1.2\r\nHost: t\r\n\r\n", 400);
}

#[test]
fn rejects_a_head_over_max_header_bytes_with_431() {
    let raw = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(1100)
    );
    assert_rejected_with(&["--max-header-bytes", "1024"], raw.as_bytes(), 431);
}

#[test]
fn rejects_a_request_line_over_max_header_bytes_with_414() {
    let raw = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(1100));
    assert_rejected_with(&["--max-header-bytes", "1024"], raw.as_bytes(), 414);
}

#[test]
fn rejects_a_bad_chunk_size() {
    assert_bad_body_rejected(b"zz");
}

#[test]
fn rejects_a_chunk_size_that_overflows() {
    assert_bad_body_rejected(b"fffffffffffffffff");
}

#[test]
fn a_101_the_client_did_not_ask_for_is_502_on_the_100_continue_path_too() {
    // The target answers the head at once with a 101, before the body.
    let backend = Backend::start("a");
    backend.set_mode(Mode::RejectExpect(101));
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    c.send(&request_bytes(
        "POST",
        "/u101",
        &[("Expect", "100-continue"), ("Content-Length", "5")],
        b"",
    ));
    let r = c.read_response();
    assert_eq!(r.status, 502, "{:?}", r.headers);
    assert_short_text_line(&r);
    // No tunnel: what the client sends next never reaches the target (which
    // records everything that arrives after its 101 as the body).
    let _ = c.try_send(b"hello");
    let _ = c.try_send(
        b"POST /smuggled HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
    );
    assert!(c.is_closed(Duration::from_secs(5)));
    let log = backend.requests_log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(!log[0].body_str().contains("smuggled"), "{log:?}");
}

// ---------------------------------------------------------------------------
// The first request's head is due within the header timeout from the accept

#[test]
fn a_connection_that_never_sends_a_byte_is_closed_at_the_header_timeout() {
    let backend = Backend::start("a");
    let lb = start_balancer(
        &[&backend],
        &["--client-header-timeout", "1s", "--idle-timeout", "60s"],
    );
    let mut c = Client::connect(lb.addr());
    let start = Instant::now();
    assert!(
        c.is_closed(Duration::from_secs(4)),
        "a silent connection is still open after 4s with --client-header-timeout 1s"
    );
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");
    assert!(c.buffered().is_empty(), "{:?}", c.buffered());
}

#[test]
fn a_first_request_that_comes_late_but_in_time_is_served() {
    let backend = Backend::start("a");
    let lb = start_balancer(&[&backend], &["--client-header-timeout", "2s"]);
    let mut c = Client::connect(lb.addr());
    // Past the moment an idle connection is parked, well before the deadline.
    thread::sleep(Duration::from_millis(300));
    assert_eq!(c.request("GET", "/", &[], b"").status, 200);
}

#[test]
fn a_head_begun_late_is_still_due_at_the_header_timeout_from_the_accept() {
    let backend = Backend::start("a");
    let lb = start_balancer(&[&backend], &["--client-header-timeout", "1s"]);
    let mut c = Client::connect(lb.addr());
    let start = Instant::now();
    thread::sleep(Duration::from_millis(600));
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n");
    let r = c.read_response();
    let took = start.elapsed();
    assert_eq!(r.status, 408);
    assert!(
        took < Duration::from_millis(1500),
        "408 after {took:?}: the deadline ran from the first byte, not the accept"
    );
}

#[test]
fn between_requests_a_client_is_kept_for_the_idle_timeout_not_the_header_timeout() {
    let backend = Backend::start("a");
    let lb = start_balancer(
        &[&backend],
        &["--client-header-timeout", "300ms", "--idle-timeout", "5s"],
    );
    let mut c = Client::connect(lb.addr());
    assert_eq!(c.request("GET", "/1", &[], b"").status, 200);
    thread::sleep(Duration::from_millis(800));
    assert_eq!(c.request("GET", "/2", &[], b"").status, 200);
}
