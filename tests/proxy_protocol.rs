//! `--proxy-protocol`: behind an L4 balancer, each connection starts with a
//! PROXY protocol header (v1 text or v2 binary) naming the client. That
//! client is what `X-Forwarded-For` and the access log see; a connection
//! without a valid header is closed without an answer, and nothing of it
//! reaches a target.

mod support;
use support::*;

use std::time::Duration;

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

fn v2(command: u8, family: u8, block: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.push(0x20 | command);
    h.push(family);
    h.extend_from_slice(&(block.len() as u16).to_be_bytes());
    h.extend_from_slice(block);
    h
}

/// TCP over IPv4 from 192.0.2.7:12345 to 10.0.0.1:80.
fn v4_block() -> Vec<u8> {
    vec![192, 0, 2, 7, 10, 0, 0, 1, 0x30, 0x39, 0, 80]
}

const GET: &[u8] = b"GET /pp HTTP/1.1\r\nHost: lb\r\n\r\n";

/// Sends `header` then a GET on one connection; the response.
fn through(lb: &Balancer, header: &[u8]) -> Response {
    let mut c = Client::connect(lb.addr());
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(GET);
    c.send(&bytes);
    c.read_response()
}

/// Sends `bytes` and asserts the connection is closed (well before the
/// header deadline, 10 s by default) without a byte of answer, and that
/// nothing reached the target.
fn assert_closed_silently(lb: &Balancer, target: &Backend, bytes: &[u8], what: &str) {
    let mut c = Client::connect(lb.addr());
    c.send(bytes);
    assert!(c.is_closed(Duration::from_secs(2)), "{what}: kept open");
    let answer = c.read_until_close(Duration::ZERO);
    assert!(
        answer.is_empty(),
        "{what}: answered {:?}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(target.requests(), 0, "{what}: reached the target");
}

#[test]
fn a_v1_header_names_the_client_for_x_forwarded_for_and_the_access_log() {
    let target = Backend::start("a");
    let log = TempFile::new("access");
    let lb = start_balancer(&[&target], &["--proxy-protocol", "--access-log", log.arg()]);
    let r = through(&lb, b"PROXY TCP4 192.0.2.7 10.0.0.1 12345 80\r\n");
    assert_eq!(r.status, 200);
    let seen = target
        .last_request()
        .expect("the request reached the target");
    assert_eq!(seen.header_all("X-Forwarded-For"), vec!["192.0.2.7"]);
    // The access log's second field is the client.
    assert!(
        wait_for(WAIT, || log.read().split(' ').nth(1) == Some("192.0.2.7")),
        "access log: {:?}",
        log.read()
    );
}

#[test]
fn a_v2_header_names_the_client_over_ipv4_and_ipv6_and_keeps_the_connection() {
    let target = Backend::start("a");
    let lb = start_balancer(&[&target], &["--proxy-protocol"]);
    assert_eq!(through(&lb, &v2(1, 0x11, &v4_block())).status, 200);
    let seen = target.last_request().unwrap();
    assert_eq!(seen.header_all("X-Forwarded-For"), vec!["192.0.2.7"]);

    let mut block = Vec::new();
    block.extend_from_slice(
        &"2001:db8::7"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    block.extend_from_slice(
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    block.extend_from_slice(&[0x0f, 0xa0, 0x01, 0xbb]);
    // A TLV (PP2_TYPE_AUTHORITY) after the addresses is allowed.
    block.extend_from_slice(&[0x02, 0x00, 0x02, b'l', b'b']);
    let mut c = Client::connect(lb.addr());
    let mut bytes = v2(1, 0x21, &block);
    bytes.extend_from_slice(GET);
    c.send(&bytes);
    assert_eq!(c.read_response().status, 200);
    // The header comes once per connection: the next request is plain.
    assert_eq!(c.request("GET", "/again", &[], b"").status, 200);
    let seen = target.last_request().unwrap();
    assert_eq!(seen.path, "/again");
    assert_eq!(seen.header_all("X-Forwarded-For"), vec!["2001:db8::7"]);
}

#[test]
fn a_local_or_unknown_header_leaves_the_connection_s_own_peer() {
    let target = Backend::start("a");
    let lb = start_balancer(&[&target], &["--proxy-protocol"]);
    assert_eq!(through(&lb, &v2(0, 0x00, &[])).status, 200);
    let seen = target.last_request().unwrap();
    assert_eq!(seen.header_all("X-Forwarded-For"), vec!["127.0.0.1"]);
    assert_eq!(through(&lb, b"PROXY UNKNOWN\r\n").status, 200);
    let seen = target.last_request().unwrap();
    assert_eq!(seen.header_all("X-Forwarded-For"), vec!["127.0.0.1"]);
}

#[test]
fn a_connection_without_a_valid_header_is_closed_and_counted() {
    let target = Backend::start("a");
    let lb = start_admin(&[&target], &["--proxy-protocol"]);
    let mut tlv_out_of_bounds = v4_block();
    tlv_out_of_bounds.extend_from_slice(&[0x04, 0x00, 0x09, b'a']);
    let mut oversized = v2(1, 0x11, &v4_block());
    oversized[14..16].copy_from_slice(&4096u16.to_be_bytes());
    let mut wrong_version = v2(1, 0x11, &v4_block());
    wrong_version[12] = 0x11;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("no header", GET.to_vec()),
        (
            "wrong signature",
            b"\r\n\r\n\0\r\nQUIX\n\x21\x11\x00\x0c".to_vec(),
        ),
        (
            "v1 too long",
            format!("PROXY TCP4 {}\r\n", "1".repeat(120)).into_bytes(),
        ),
        (
            "v1 malformed",
            b"PROXY TCP4 192.0.2.700 10.0.0.1 1 2\r\n".to_vec(),
        ),
        ("v2 wrong version", wrong_version),
        ("v2 oversized", oversized),
        ("v2 TLV out of bounds", v2(1, 0x11, &tlv_out_of_bounds)),
        ("v2 addresses too short", v2(1, 0x21, &v4_block())),
    ];
    for (what, mut bytes) in cases.clone() {
        if what != "no header" {
            bytes.extend_from_slice(GET);
        }
        assert_closed_silently(&lb, &target, &bytes, what);
    }
    let refused = "lb_proxy_header_refused_total";
    let n = cases.len() as f64;
    assert!(
        wait_for(WAIT, || Scrape::take(&lb).get(refused) == n),
        "{refused}: {}",
        Scrape::take(&lb).get(refused)
    );
}

#[test]
fn a_truncated_header_is_closed_when_the_sender_ends_its_side() {
    let target = Backend::start("a");
    // The default header deadline (10 s) is far off: the close comes from
    // the end of stream.
    let lb = start_balancer(&[&target], &["--proxy-protocol"]);
    let header = v2(1, 0x11, &v4_block());
    let mut c = Client::connect(lb.addr());
    c.send(&header[..20]);
    c.shutdown_write();
    assert!(
        c.is_closed(Duration::from_secs(2)),
        "kept open after the FIN"
    );
    assert!(c.read_until_close(Duration::ZERO).is_empty());
    assert_eq!(target.requests(), 0);
}

#[test]
fn a_stalled_header_is_closed_at_the_header_deadline() {
    let target = Backend::start("a");
    let lb = start_balancer(
        &[&target],
        &["--proxy-protocol", "--client-header-timeout", "300ms"],
    );
    let header = v2(1, 0x11, &v4_block());
    let mut c = Client::connect(lb.addr());
    c.send(&header[..20]);
    assert!(
        c.is_closed(Duration::from_secs(3)),
        "a stalled header kept open"
    );
    assert!(c.read_until_close(Duration::ZERO).is_empty());
    assert_eq!(target.requests(), 0);
}

#[test]
fn without_the_flag_a_proxy_header_is_a_malformed_request() {
    let target = Backend::start("a");
    let lb = start_balancer(&[&target], &[]);
    let r = through(&lb, b"PROXY TCP4 192.0.2.7 10.0.0.1 12345 80\r\n");
    assert_eq!(r.status, 400);
    assert_eq!(target.requests(), 0);
}
