//! Heap memory an idle keep-alive client connection holds once parked. The
//! balancer runs in this process under a counting global allocator (a
//! process of its own, as `tests/no_alloc.rs`), which tracks the bytes held.
//!
//! A parked connection should hold its task (its session and a readiness
//! wait: about 300 bytes) and the few small records the runtime keeps per
//! socket; no read buffer, busy-spell slot or scratch vectors. nginx holds
//! 526 bytes of resident memory per idle connection (`make idle-memory`).
//! The figure is heap bytes as asked for, not resident memory; what the
//! worker keeps spare after a burst (slots, buffers, the runtime's tables)
//! is made before the count starts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

mod counting;

mod raw;

/// Client connections in each of two rounds.
const CONNECTIONS: usize = 500;

/// Most heap bytes a parked connection may hold: its task (312 bytes),
/// monoio's shared descriptor (56), and its share of tables that grow by
/// doubling (the runtime's slab of operations, the expiry tick's set of
/// parked waits), which is why runs read 350 to 460. The task alone was
/// 2.4 KB before it was a hand-written future.
const MOST_BYTES_EACH: i64 = 600;

/// A worker gauge's value, from the admin endpoint's `/metrics`.
fn gauge(admin: SocketAddr, name: &str) -> u64 {
    let mut c = TcpStream::connect(admin).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    let prefix = format!("{name}{{worker=\"0\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .parse()
        .unwrap()
}

/// Waits until the gauge reads `want`, for at most 10 s.
fn wait_for(admin: SocketAddr, name: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = gauge(admin, name);
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{name} is {got}, not {want}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Opens `CONNECTIONS` connections and gets one answer on each, in groups
/// that send every request before reading any answer, so that a group is
/// busy at once. Groups of 100: no more than the balancer's pool keeps
/// connected to the target (128), since new target connections by the
/// hundred would overflow the test target's listen backlog (a dropped SYN
/// costs a second).
fn burst(listen: SocketAddr) -> Vec<TcpStream> {
    let mut clients: Vec<TcpStream> = (0..CONNECTIONS)
        .map(|_| TcpStream::connect(listen).unwrap())
        .collect();
    let mut buf = [0u8; 1024];
    for group in clients.chunks_mut(100) {
        raw::exchange_all(group, &mut buf);
    }
    clients
}

#[test]
fn a_parked_connection_holds_a_few_hundred_bytes_of_heap() {
    let running = raw::start_running(raw::start_target(), &["--admin", "127.0.0.1:0"]);
    let admin = running.admin.unwrap();

    // A first burst, all busy at once and then parked: the worker's
    // spares grow to their size for this many connections.
    let _first = burst(running.listen);
    wait_for(admin, "lb_worker_parked_connections", CONNECTIONS as u64);

    // Then as many more, counted, one after the other (one target
    // connection serves them all).
    let mut clients = Vec::with_capacity(CONNECTIONS);
    let mut buf = [0u8; 1024];
    let before = counting::live_bytes();
    for _ in 0..CONNECTIONS {
        let mut c = TcpStream::connect(running.listen).unwrap();
        raw::exchange(&mut c, &mut buf);
        clients.push(c);
    }
    wait_for(
        admin,
        "lb_worker_parked_connections",
        2 * CONNECTIONS as u64,
    );
    let each = (counting::live_bytes() - before) / CONNECTIONS as i64;
    println!("{each} heap bytes per parked connection");
    assert!(
        each <= MOST_BYTES_EACH,
        "a parked connection holds {each} bytes of heap, over {MOST_BYTES_EACH}"
    );
}
