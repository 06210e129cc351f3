//! End to end: how the balancer forwards requests and relays responses (heads, hop-by-hop fields, framing, keep-alive, pipelining, upstream reuse), and how it rejects malformed requests, bad responses and slow clients (idle ones: tests/hardening.rs).

mod support;
use support::*;

use std::time::{Duration, Instant};

/// A deterministic, non-repeating-looking payload of `len` bytes.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

// ---------------------------------------------------------------------------
// Request heads

#[test]
fn forwards_request_head_as_it_arrived_and_adds_x_forwarded_for() {
    let backend = Backend::start("a");
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    c.send(
        b"GET /some/path?q=1&r=two HTTP/1.1\r\n\
          host: example.test\r\n\
          X-Custom-Header: Some Value, with  spaces\r\n\
          x-lower-case: v\r\n\
          ACCEPT: */*\r\n\
          X-MiXeD-CaSe: 42\r\n\
          \r\n",
    );
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.body_str(), "a");

    let seen = backend.last_request().expect("the target got the request");
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.path, "/some/path?q=1&r=two");
    assert_eq!(seen.version, 1);
    let others: Vec<(String, String)> = seen
        .headers
        .iter()
        .filter(|(n, _)| {
            !n.eq_ignore_ascii_case("x-forwarded-for")
                && !n.eq_ignore_ascii_case("x-forwarded-proto")
        })
        .cloned()
        .collect();
    let expected: Vec<(String, String)> = [
        ("host", "example.test"),
        ("X-Custom-Header", "Some Value, with  spaces"),
        ("x-lower-case", "v"),
        ("ACCEPT", "*/*"),
        ("X-MiXeD-CaSe", "42"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    assert_eq!(others, expected);
    assert_eq!(seen.header_all("X-Forwarded-For"), vec!["127.0.0.1"]);
    assert_eq!(seen.header_all("X-Forwarded-Proto"), vec!["http"]);
}

#[test]
fn appends_client_address_to_existing_x_forwarded_for() {
    let backend = Backend::start("a");
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    let r = c.request("GET", "/", &[("X-Forwarded-For", "1.2.3.4")], b"");
    assert_eq!(r.status, 200);
    let seen = backend.last_request().expect("the target got the request");
    assert_eq!(
        seen.header_all("x-forwarded-for"),
        vec!["1.2.3.4, 127.0.0.1"]
    );
}

#[test]
fn drops_hop_by_hop_request_headers() {
    let backend = Backend::start("a");
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    let r = c.request(
        "GET",
        "/",
        &[
            ("Connection", "keep-alive, X-Hop"),
            ("X-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Upgrade", "websocket"),
            ("X-Kept", "yes"),
            ("Accept", "text/plain"),
        ],
        b"",
    );
    assert_eq!(r.status, 200);
    let seen = backend.last_request().expect("the target got the request");
    for name in [
        "Connection",
        "X-Hop",
        "Keep-Alive",
        "Proxy-Connection",
        "TE",
        "Upgrade",
    ] {
        assert_eq!(
            seen.header(name),
            None,
            "{name} was forwarded: {:?}",
            seen.headers
        );
    }
    assert_eq!(seen.header("X-Kept"), Some("yes"));
    assert_eq!(seen.header("Accept"), Some("text/plain"));
    assert_eq!(seen.header("Host"), Some("test"));
}

// ---------------------------------------------------------------------------
// Response heads and bodies

#[test]
fn drops_hop_by_hop_response_headers() {
    let backend = Backend::start("a");
    backend.set_mode(Mode::Raw(raw_response(
        "HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n\
         X-Other: kept\r\nContent-Length: 5",
        b"hello",
    )));
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    let r = c.request("GET", "/", &[], b"");
    assert_eq!(r.status, 200);
    for name in ["Connection", "X-Hop", "Keep-Alive"] {
        assert_eq!(
            r.header(name),
            None,
            "{name} reached the client: {:?}",
            r.headers
        );
    }
    assert_eq!(r.header("X-Other"), Some("kept"));
    assert_eq!(r.header("Content-Length"), Some("5"));
    assert_eq!(r.body_str(), "hello");
    assert!(!r.truncated);
}

#[test]
fn relays_chunked_response_framing_unchanged_and_keeps_the_connection() {
    let chunks: &[u8] = b"4;ext=1\r\nWiki\r\nA\r\npedia in c\r\n7\r\nhunks.\n\r\n0\r\n\r\n";
    let backend = Backend::start("a");
    backend.set_mode(Mode::Raw(raw_response(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked",
        chunks,
    )));
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    for _ in 0..2 {
        let r = c.request("GET", "/", &[], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
        assert_eq!(r.raw_body, chunks, "chunk framing changed on the way");
        assert_eq!(r.body_str(), "Wikipedia in chunks.\n");
        assert!(!r.truncated);
    }
    assert_eq!(backend.requests(), 2);
}

#[test]
fn forwards_chunked_request_body() {
    let backend = Backend::start("a");
    backend.set_mode(Mode::Echo);
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    let r = c.request(
        "POST",
        "/upload",
        &[("Transfer-Encoding", "chunked")],
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body_str(), "hello world");
    let seen = backend.last_request().expect("the target got the request");
    assert_eq!(seen.header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(seen.body_str(), "hello world");
}

/// The target answers `head` (no body bytes) to `method`; the client must get
/// it without a body, and a next request on the same connection must work.
fn assert_bodiless_response_then_next_request(method: &str, head: &str, status: u16) {
    let backend = Backend::start("a");
    backend.set_mode(Mode::Raw(raw_response(head, b"")));
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    let r = c.request(method, "/", &[], b"");
    assert_eq!(r.status, status);
    assert!(r.body.is_empty());
    backend.set_mode(Mode::Ok);
    let next = c.request("GET", "/next", &[], b"");
    assert_eq!(next.status, 200, "request after the {status} to {method}");
    assert_eq!(next.body_str(), "a");
    assert_eq!(backend.requests(), 2);
}

#[test]
fn head_response_has_no_body_despite_content_length() {
    assert_bodiless_response_then_next_request(
        "HEAD",
        "HTTP/1.1 200 OK\r\nContent-Length: 100",
        200,
    );
}

#[test]
fn no_content_response_has_no_body_despite_content_length() {
    assert_bodiless_response_then_next_request(
        "GET",
        "HTTP/1.1 204 No Content\r\nContent-Length: 100",
        204,
    );
}

#[test]
fn not_modified_response_has_no_body_despite_content_length() {
    assert_bodiless_response_then_next_request(
        "GET",
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 100",
        304,
    );
}

#[test]
fn response_without_length_is_relayed_until_close_then_client_is_closed() {
    let backend = Backend::start("until-close");
    backend.set_mode(Mode::UntilClose);
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    let r = c.request("GET", "/", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body_str(), "until-close");
    assert!(!r.truncated, "the body ended with a reset");
    assert!(c.is_closed(WAIT));
}

// ---------------------------------------------------------------------------
// Client connections

#[test]
fn keeps_client_connection_alive_across_requests() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let lb = start_balancer(&[&a, &b], &[]);
    let mut c = Client::connect(lb.addr());
    for (i, want) in ["a", "b", "a", "b"].iter().enumerate() {
        let r = c.request("GET", &format!("/{i}"), &[], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.body_str(), *want, "request {i}");
        assert_eq!(r.header("Connection"), None, "request {i}");
    }
    assert_eq!((a.requests(), b.requests()), (2, 2));
}

#[test]
fn answers_pipelined_requests_in_order() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    a.set_mode(Mode::Echo);
    b.set_mode(Mode::Echo);
    let lb = start_balancer(&[&a, &b], &[]);
    let requests: [(&str, &str, &[u8]); 4] = [
        ("POST", "/1", b"one"),
        ("GET", "/2", b""),
        ("POST", "/3", b"three"),
        ("POST", "/4", b"four"),
    ];
    let mut all = Vec::new();
    for (method, path, body) in requests {
        all.extend(request_bytes(method, path, &[], body));
    }
    let mut c = Client::connect(lb.addr());
    c.send(&all);
    for (i, (_, path, body)) in requests.iter().enumerate() {
        let r = c.read_response();
        assert_eq!(r.status, 200, "response {i} ({path})");
        assert_eq!(r.body, *body, "response {i} ({path})");
        let backend = if i % 2 == 0 { "a" } else { "b" };
        assert_eq!(
            r.header("X-Backend"),
            Some(backend),
            "response {i} ({path})"
        );
    }
    let seen = |b: &Backend| -> Vec<(String, String)> {
        b.requests_log()
            .iter()
            .map(|r| (r.path.clone(), r.body_str()))
            .collect()
    };
    let pair = |p: &str, b: &str| (p.to_string(), b.to_string());
    assert_eq!(seen(&a), vec![pair("/1", "one"), pair("/3", "three")]);
    assert_eq!(seen(&b), vec![pair("/2", ""), pair("/4", "four")]);
}

#[test]
fn connection_close_from_client_is_answered_with_close() {
    let backend = Backend::start("a");
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    let r = c.request("GET", "/", &[("Connection", "close")], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body_str(), "a");
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(c.is_closed(WAIT));
}

#[test]
fn http10_request_without_keep_alive_is_closed_after_response() {
    let backend = Backend::start("a");
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    c.send(b"GET /old HTTP/1.0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.body_str(), "a");
    assert!(c.is_closed(WAIT));
}

#[test]
fn http10_keep_alive_request_keeps_the_connection() {
    let backend = Backend::start("a");
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    for i in 0..2 {
        c.send(b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let r = c.read_response();
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(r.body_str(), "a", "request {i}");
        assert_eq!(r.header("Connection"), Some("keep-alive"), "request {i}");
    }
    assert_eq!(backend.requests(), 2);
}

// ---------------------------------------------------------------------------
// Upstream connections

#[test]
fn reuses_upstream_connection_across_client_connections() {
    let backend = Backend::start("a");
    let lb = start_balancer(&[&backend], &[]);
    for i in 0..3 {
        let mut c = Client::connect(lb.addr());
        let r = c.request("GET", &format!("/{i}"), &[("Connection", "close")], b"");
        assert_eq!(r.status, 200, "client {i}");
        // Once the client connection is closed, the balancer is done with
        // the exchange, and the upstream connection is back in its pool.
        assert!(c.is_closed(WAIT), "client {i}");
    }
    let conns: Vec<usize> = backend.requests_log().iter().map(|r| r.conn).collect();
    assert_eq!(conns.len(), 3);
    assert!(
        conns.iter().all(|&c| c == conns[0]),
        "requests came on upstream connections {conns:?}"
    );
}

#[test]
fn target_connection_close_gets_a_new_upstream_connection_per_request() {
    let backend = Backend::start("a");
    backend.set_mode(Mode::CloseAfterResponse);
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    for i in 0..3 {
        let r = c.request("GET", &format!("/{i}"), &[], b"");
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(r.body_str(), "a", "request {i}");
        assert_eq!(r.header("Connection"), None, "request {i}");
    }
    let mut conns: Vec<usize> = backend.requests_log().iter().map(|r| r.conn).collect();
    assert_eq!(conns.len(), 3);
    conns.dedup();
    assert_eq!(
        conns.len(),
        3,
        "an upstream connection was reused: {conns:?}"
    );
}

#[test]
fn stale_pooled_upstream_connection_does_not_fail_the_request() {
    let backend = Backend::start("a");
    backend.close_idle_after_response(true);
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    for i in 0..3 {
        let r = c.request("GET", &format!("/{i}"), &[], b"");
        assert_eq!(r.status, 200, "request {i}: {}", r.body_str());
        assert_eq!(r.body_str(), "a", "request {i}");
    }
    assert_eq!(backend.requests(), 3);
}

#[test]
fn checks_a_pooled_connection_is_open_before_reusing_it() {
    let backend = Backend::start("a");
    backend.set_mode(Mode::Echo);
    backend.close_idle_after_response(true);
    let lb = start_balancer(&[&backend], &["--max-replay-body", "1024"]);
    let mut c = Client::connect(lb.addr());
    assert_eq!(c.request("GET", "/", &[], b"").status, 200);
    // The target has closed the pooled connection (and the health check's).
    assert!(wait_for(Duration::from_secs(5), || backend
        .open_connections()
        == 0));

    // A body over the replay bound cannot be sent twice: only a check
    // before reuse keeps it off the closed connection.
    let body = payload(4096);
    let r = c.request("POST", "/", &[], &body);
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.body, body);
}

#[test]
fn keeps_at_most_pool_size_idle_connections_per_target() {
    let backend = Backend::start("a");
    backend.set_mode(Mode::Delay(Duration::from_millis(300)));
    let lb = start_balancer(&[&backend], &["--pool-size", "1"]);
    let addr = lb.addr();
    // Two requests in flight at once need two upstream connections.
    let clients: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || get(addr, "/").status))
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), 200);
    }
    let conns: std::collections::HashSet<usize> =
        backend.requests_log().iter().map(|r| r.conn).collect();
    assert_eq!(conns.len(), 2);
    // Only one goes back to the pool; the other is closed.
    assert!(
        wait_for(Duration::from_secs(5), || backend.open_connections() == 1),
        "{} open",
        backend.open_connections()
    );
    backend.set_mode(Mode::Ok);
    get(addr, "/");
    let last = backend.last_request().unwrap().conn;
    assert!(conns.contains(&last), "the kept connection is reused");
}

// ---------------------------------------------------------------------------
// Malformed requests (more in tests/hardening.rs, "Requests refused without
// forwarding")

#[test]
fn garbage_request_is_400() {
    assert_rejected(
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n",
        400,
    );
}

#[test]
fn whitespace_before_header_colon_is_400() {
    assert_rejected(b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400);
}

#[test]
fn unknown_transfer_coding_is_501() {
    assert_rejected(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: bogus, chunked\r\n\r\n0\r\n\r\n",
        501,
    );
}

/// A request head of about `len` bytes: a few large header fields.
fn big_head(len: usize) -> Vec<u8> {
    let mut raw = b"GET /big-head HTTP/1.1\r\nHost: t\r\n".to_vec();
    let mut i = 0;
    while raw.len() < len {
        raw.extend(format!("X-Big-{i}: {}\r\n", "v".repeat(4000)).into_bytes());
        i += 1;
    }
    raw.extend_from_slice(b"\r\n");
    raw
}

#[test]
fn request_head_over_64_kib_is_431() {
    // Over 128 KiB: the balancer cannot take it whole in one read into a
    // fresh buffer, so the answer does not depend on how reads split.
    assert_rejected(&big_head(140 * 1024), 431);
}

#[test]
fn request_head_over_64_kib_after_a_large_body_is_431() {
    // A head pipelined behind a large request body lands in the roomy
    // buffer that body needed: it must still be bounded.
    let backend = Backend::start("a");
    backend.set_mode(Mode::Echo);
    let lb = start_balancer(&[&backend], &[]);
    let body = payload(900 * 1024);
    let mut raw = request_bytes("POST", "/first", &[], &body);
    raw.extend(big_head(70 * 1024));
    let mut c = Client::connect(lb.addr());
    c.send(&raw);
    let first = c.read_response();
    assert_eq!(first.status, 200);
    assert!(first.body == body, "the first body changed on the way");
    let r = c.read_response();
    assert_eq!(
        r.status, 431,
        "answer to a 70 KiB head after a 900 KiB body"
    );
    assert_short_text_line(&r);
    assert!(c.is_closed(WAIT));
    let paths: Vec<String> = backend.requests_log().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, vec!["/first"], "the target saw the oversized head");
}

#[test]
fn request_line_over_the_header_bound_is_414() {
    let raw = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(17_000));
    assert_rejected(raw.as_bytes(), 414);
}

#[test]
fn connect_method_is_501() {
    assert_rejected(
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        501,
    );
}

#[test]
fn malformed_chunked_request_body_is_400() {
    assert_rejected(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        400,
    );
}

// ---------------------------------------------------------------------------
// Interim responses and bad targets

#[test]
fn expect_100_continue_gets_the_targets_continue_before_the_body() {
    let backend = Backend::start("a");
    backend.set_mode(Mode::Echo);
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    c.send(&request_bytes(
        "POST",
        "/up",
        &[("Expect", "100-continue"), ("Content-Length", "5")],
        b"",
    ));
    let interim = c.read_response();
    assert_eq!(interim.status, 100, "expected 100 Continue before the body");
    c.send(b"hello");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.body_str(), "hello");
    let seen = backend.last_request().expect("the target got the request");
    assert_eq!(
        seen.header("Expect"),
        Some("100-continue"),
        "the target answers it"
    );
    assert_eq!(seen.body_str(), "hello");
}

#[test]
fn informational_response_from_target_is_followed_by_the_final_one() {
    let backend = Backend::start("a");
    backend.set_mode(Mode::Raw(
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            .to_vec(),
    ));
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    let r = c.request("GET", "/", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body_str(), "ok");
    assert!(!r.truncated);
}

#[test]
fn invalid_response_from_target_is_502() {
    let backend = Backend::start("a");
    backend.set_mode(Mode::Raw(b"this is not HTTP at all\r\n\r\n".to_vec()));
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    let r = c.request("GET", "/", &[], b"");
    assert_eq!(r.status, 502);
    assert_short_text_line(&r);
}

// ---------------------------------------------------------------------------
// Slow clients

#[test]
fn incomplete_head_gets_408_after_client_header_timeout() {
    let backend = Backend::start("a");
    let lb = start_balancer(&[&backend], &["--client-header-timeout", "300ms"]);
    let mut c = Client::connect(lb.addr());
    let start = Instant::now();
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n");
    let r = c.read_response();
    let took = start.elapsed();
    assert_eq!(r.status, 408);
    assert_short_text_line(&r);
    assert!(
        took >= Duration::from_millis(250),
        "408 after only {took:?}"
    );
    assert!(c.is_closed(WAIT));
    assert_eq!(backend.requests(), 0);
}

// ---------------------------------------------------------------------------
// Large bodies

#[test]
fn large_response_with_content_length_arrives_whole() {
    let body = payload(1 << 20);
    let backend = Backend::start("a");
    backend.set_mode(Mode::Raw(raw_response(
        &format!("HTTP/1.1 200 OK\r\nContent-Length: {}", body.len()),
        &body,
    )));
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    let r = c.request("GET", "/big", &[], b"");
    assert_eq!(r.status, 200);
    assert!(!r.truncated);
    assert_eq!(r.body.len(), body.len());
    assert!(r.body == body, "the 1 MiB body changed on the way");
}

#[test]
fn large_chunked_response_arrives_whole() {
    let body = payload(1 << 20);
    let mut chunked = Vec::new();
    for piece in body.chunks(300_000) {
        chunked.extend(format!("{:x}\r\n", piece.len()).into_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let backend = Backend::start("a");
    backend.set_mode(Mode::Raw(raw_response(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked",
        &chunked,
    )));
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    let r = c.request("GET", "/big", &[], b"");
    assert_eq!(r.status, 200);
    assert!(!r.truncated);
    assert_eq!(r.body.len(), body.len());
    assert!(r.body == body, "the 1 MiB body changed on the way");
    assert!(
        r.raw_body == chunked,
        "the chunk framing changed on the way"
    );
}

#[test]
fn large_request_body_streams_through() {
    let body = payload(3 << 20);
    let backend = Backend::start("a");
    backend.set_mode(Mode::Echo);
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    let r = c.request("POST", "/upload", &[], &body);
    assert_eq!(r.status, 200);
    assert!(!r.truncated);
    assert_eq!(r.body.len(), body.len());
    assert!(r.body == body, "the 3 MiB body changed on the way");
    let seen = backend.last_request().expect("the target got the request");
    assert_eq!(seen.header("Content-Length"), Some("3145728"));
}

#[test]
fn a_connection_idle_long_enough_to_be_parked_is_served_again() {
    let backend = Backend::start("a");
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    for round in 0..3 {
        // Idle well past the balancer's parking delay (5 ms): its busy
        // state and buffer are given up, and its task waits for the socket.
        std::thread::sleep(Duration::from_millis(100));
        // The next request arrives a byte at a time.
        for byte in request_bytes("GET", &format!("/{round}"), &[], b"") {
            c.send(&[byte]);
        }
        let r = c.read_response();
        assert_eq!(
            (r.status, r.body_str().as_str()),
            (200, "a"),
            "round {round}"
        );
    }
    let paths: Vec<String> = backend.requests_log().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/0", "/1", "/2"]);
}
