//! End to end: large response bodies of known length go from the target's
//! socket to the client's by splice(2), without a copy through the
//! balancer; and everything that can go wrong midway (a target that
//! stalls, resets or says more than its body; a client that reads slowly or
//! leaves) ends as it does for a copied body.

mod support;
use support::*;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;

/// A deterministic, non-repeating-looking payload of `len` bytes.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn large(len: usize) -> (Vec<u8>, Vec<u8>) {
    let body = payload(len);
    let response = raw_response(
        &format!("HTTP/1.1 200 OK\r\nContent-Length: {}", body.len()),
        &body,
    );
    (body, response)
}

/// The distinct connections the target's requests (not its health checks)
/// came over.
fn request_conns(backend: &Backend) -> usize {
    let mut conns: Vec<usize> = backend.requests_log().iter().map(|r| r.conn).collect();
    conns.dedup();
    conns.len()
}

fn spliced(lb: &Balancer) -> f64 {
    Scrape::take(lb).get("lb_spliced_bytes_total")
}

#[test]
fn a_large_body_is_spliced_and_both_connections_carry_on() {
    let (body, response) = large(MIB);
    let backend = Backend::start("a");
    backend.set_mode(Mode::Raw(response));
    let lb = start_balancer(&[&backend], &["--splice", "--admin", "127.0.0.1:0"]);
    let mut c = Client::connect(lb.addr());
    for round in 0..3 {
        let r = c.request("GET", &format!("/big/{round}"), &[], b"");
        assert_eq!(r.status, 200);
        assert!(!r.truncated, "round {round}: the body was cut short");
        assert!(
            r.body == body,
            "round {round}: the 1 MiB body changed on the way"
        );
    }
    // All but what the first read of each response took went by splice.
    let moved = spliced(&lb);
    assert!(
        moved >= 3.0 * (MIB - 64 * 1024) as f64,
        "only {moved} bytes were spliced for three 1 MiB bodies"
    );
    // Keep-alive on both sides.
    assert_eq!(
        request_conns(&backend),
        1,
        "the target connection was not reused"
    );
    assert_eq!(c.request("GET", "/", &[], b"").status, 200);
}

#[test]
fn a_small_body_is_copied_not_spliced() {
    let backend = Backend::start("a");
    backend.set_mode(Mode::Raw(large(16 * 1024).1));
    let lb = start_balancer(&[&backend], &["--splice", "--admin", "127.0.0.1:0"]);
    let r = Client::connect(lb.addr()).request("GET", "/", &[], b"");
    assert_eq!((r.status, r.body.len()), (200, 16 * 1024));
    assert_eq!(spliced(&lb), 0.0);
}

#[test]
fn without_the_flag_a_large_body_is_copied() {
    let (body, response) = large(MIB);
    let backend = Backend::start("a");
    backend.set_mode(Mode::Raw(response));
    let lb = start_balancer(&[&backend], &["--admin", "127.0.0.1:0"]);
    let r = Client::connect(lb.addr()).request("GET", "/", &[], b"");
    assert!(r.body == body);
    assert_eq!(spliced(&lb), 0.0);
}

#[test]
fn bytes_a_target_sends_beyond_a_spliced_body_never_reach_a_client() {
    let (body, mut response) = large(MIB);
    let smuggled = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!";
    response.extend_from_slice(smuggled);
    let backend = Backend::start("a");
    backend.set_mode(Mode::Raw(response));
    let lb = start_balancer(&[&backend], &["--splice", "--admin", "127.0.0.1:0"]);
    let mut c = Client::connect(lb.addr());
    for round in 0..2 {
        let r = c.request("GET", &format!("/{round}"), &[], b"");
        assert_eq!(r.status, 200);
        assert!(
            r.body == body,
            "round {round}: not the body ({} bytes)",
            r.body.len()
        );
    }
    assert!(spliced(&lb) > 0.0);
    // The connection that said too much was closed, not pooled: the second
    // request went over a new one.
    assert_eq!(request_conns(&backend), 2);
    assert!(c.buffered().is_empty(), "extra bytes reached the client");
}

#[test]
fn a_target_that_stalls_mid_body_is_cut_off_after_the_idle_timeout() {
    let (body, _) = large(MIB);
    let sent = &body[..300 * 1024];
    let backend = Backend::start("a");
    backend.set_mode(Mode::Raw(raw_response(
        &format!("HTTP/1.1 200 OK\r\nContent-Length: {}", body.len()),
        sent,
    )));
    let lb = start_balancer(&[&backend], &["--splice", "--idle-timeout", "500ms"]);
    let mut c = Client::connect(lb.addr());
    let start = Instant::now();
    let r = c.request("GET", "/stalls", &[], b"");
    let took = start.elapsed();
    assert_eq!(r.status, 200);
    assert!(r.truncated, "a body cut short arrived whole");
    assert!(r.body == sent, "not the bytes the target sent");
    assert!(
        took >= Duration::from_millis(450),
        "cut off after only {took:?} with --idle-timeout 500ms"
    );
    assert!(
        wait_for(WAIT, || backend.open_connections() == 0),
        "the stalled upstream connection is still open"
    );
}

/// A target on its own thread that answers health checks, and answers any
/// other request with a head announcing `announced` bytes of body, `sent`
/// of them, then a reset.
fn target_that_resets_mid_body(announced: usize, sent: Vec<u8>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let sent = sent.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                loop {
                    while !head.ends_with(b"\r\n\r\n") {
                        match conn.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    if head.starts_with(b"GET /_health ") {
                        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if conn.write_all(ok).is_err() {
                            return;
                        }
                        head.clear();
                        continue;
                    }
                    let start = format!("HTTP/1.1 200 OK\r\nContent-Length: {announced}\r\n\r\n");
                    let _ = conn.write_all(start.as_bytes());
                    let _ = conn.write_all(&sent);
                    // SO_LINGER 0: the close sends RST.
                    set_linger_zero(&conn);
                    return;
                }
            });
        }
    });
    addr
}

#[test]
fn a_target_that_resets_mid_body_cuts_the_client_off_and_the_balancer_carries_on() {
    let (body, _) = large(MIB);
    let sent = body[..400 * 1024].to_vec();
    let target = target_that_resets_mid_body(body.len(), sent.clone());
    let good = Backend::start("good");
    let addr = target.to_string();
    let lb = start_balancer(&[&good], &["--splice", "-b", &addr]);
    // Round robin: one of two requests goes to the target that resets.
    let mut cut = 0;
    for _ in 0..2 {
        let mut c = Client::connect(lb.addr());
        let r = c.request("GET", "/", &[], b"");
        assert_eq!(r.status, 200);
        if r.body_str() == "good" {
            continue;
        }
        cut += 1;
        assert!(r.truncated, "a body cut short arrived whole");
        assert!(
            r.body.len() <= sent.len() && r.body == sent[..r.body.len()],
            "bytes the target never sent reached the client"
        );
        assert!(c.is_closed(WAIT), "the client connection stayed open");
    }
    assert_eq!(cut, 1, "no request went to the target that resets");
    let r = Client::connect(lb.addr()).request("GET", "/", &[], b"");
    assert_eq!(r.status, 200);
}

#[test]
fn a_client_that_reads_slowly_gets_the_whole_body() {
    let (body, response) = large(4 * MIB);
    let backend = Backend::start("a");
    backend.set_mode(Mode::Raw(response));
    let lb = start_balancer(&[&backend], &["--splice", "--admin", "127.0.0.1:0"]);
    let mut c = Client::connect(lb.addr());
    c.send(&request_bytes("GET", "/big", &[], b""));
    // Not reading for a while fills the socket buffers on the way, so the
    // balancer has to wait for room in the client's socket.
    std::thread::sleep(Duration::from_millis(300));
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert!(!r.truncated);
    assert!(r.body == body, "the 4 MiB body changed on the way");
    assert!(spliced(&lb) > 0.0);
    assert_eq!(c.request("GET", "/again", &[], b"").body.len(), body.len());
}

#[test]
fn a_client_that_leaves_mid_body_frees_the_target_connection() {
    let (_, response) = large(8 * MIB);
    let backend = Backend::start("a");
    backend.set_mode(Mode::Raw(response));
    let lb = start_balancer(&[&backend], &["--splice"]);
    let mut c = TcpStream::connect(lb.addr()).unwrap();
    c.write_all(&request_bytes("GET", "/big", &[], b""))
        .unwrap();
    let mut some = vec![0u8; 256 * 1024];
    c.read_exact(&mut some).unwrap();
    c.shutdown(Shutdown::Both).unwrap();
    drop(c);
    // The rest of the body can no longer be delivered: the target's
    // connection is closed, not pooled half-read.
    assert!(
        wait_for(WAIT, || backend.open_connections() == 0),
        "the target connection is still open"
    );
    let r = Client::connect(lb.addr()).request("GET", "/next", &[], b"");
    assert_eq!((r.status, r.body.len()), (200, 8 * MIB));
}

/// A spliced body leaves both sockets non-blocking (on io_uring, where they
/// are made blocking): what the connections carry next, copied through the
/// balancer, must still wait for room and for bytes rather than fail.
#[test]
fn after_a_spliced_body_a_copied_one_still_waits_for_a_slow_reader() {
    let (body, spliced_response) = large(8 * MIB);
    let mut chunked = Vec::new();
    for piece in body.chunks(1_000_000) {
        chunked.extend(format!("{:x}\r\n", piece.len()).into_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let chunked_response = raw_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", &chunked);
    let backend = Backend::start("a");
    backend.set_mode(Mode::Raw(spliced_response));
    let lb = start_balancer(&[&backend], &["--splice", "--admin", "127.0.0.1:0"]);
    let mut c = Client::connect(lb.addr());
    assert!(c.request("GET", "/spliced", &[], b"").body == body);
    assert!(spliced(&lb) > 0.0);
    backend.set_mode(Mode::Raw(chunked_response));
    for round in 0..2 {
        c.send(&request_bytes("GET", &format!("/copied/{round}"), &[], b""));
        std::thread::sleep(Duration::from_millis(300));
        let r = c.read_response();
        assert_eq!(r.status, 200);
        assert!(!r.truncated, "round {round}: cut short");
        assert!(r.body == body, "round {round}: the body changed on the way");
    }
    assert_eq!(
        request_conns(&backend),
        1,
        "the target connection was not reused"
    );
}
