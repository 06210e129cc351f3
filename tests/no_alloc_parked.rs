//! Many keep-alive connections, each idle between its requests for longer
//! than the balancer waits before parking it (`PARK_AFTER`, 5 ms): every
//! request wakes a parked connection, and still nothing is allocated per
//! request. The balancer runs in this process under a counting global
//! allocator (as in `tests/no_alloc.rs`, in a process of its own so that the
//! two counts do not mix); the clients here are one thread with fixed
//! buffers, and allocate nothing while requests are counted.

use std::net::TcpStream;
use std::time::{Duration, Instant};

mod counting;

mod raw;

/// Client connections, each sending one request per round.
const CONNECTIONS: usize = 300;

/// Allocations allowed over the rounds counted: none per request, but the
/// runtime's tables grow now and then while their use still varies: the
/// set of operations each expiry tick cancels (a hash set per tick, reused
/// tick after tick, grows when a tick gets more parked connections than it
/// ever had) and monoio's slab of operations (it drops its last page when
/// that is empty at a compaction, every 2048 removals, and makes it again
/// when needed). One allocation per request would be 1500.
const MOST_ALLOCATIONS: u64 = 15;

/// The pause after each round: with the round itself, every connection
/// stays idle for longer than this, well past the parking delay (5 ms).
const PAUSE: Duration = Duration::from_millis(60);

fn round(clients: &mut [TcpStream], buf: &mut [u8]) {
    for client in clients.iter_mut() {
        raw::exchange(client, buf);
    }
    std::thread::sleep(PAUSE);
}

/// Connections busy at once in the warm-up's bursts: more than the rounds
/// counted ever have (a connection is busy for `PARK_AFTER` after its
/// answer: tens of them at this pace), and no more than the balancer's
/// pool keeps connected to the target (128): new target connections by
/// the hundred would overflow the test target's listen backlog, and a
/// dropped SYN costs a second, longer than `--idle-timeout` here.
const BURST: usize = 100;

#[test]
fn waking_parked_connections_allocates_nothing() {
    // Parked connections here wait less than a second between requests.
    let listen = raw::start_balancer_with(raw::start_target(), &["--idle-timeout", "1s"]);
    let mut clients: Vec<TcpStream> = (0..CONNECTIONS)
        .map(|_| {
            let c = TcpStream::connect(listen).unwrap();
            c.set_nodelay(true).unwrap();
            c
        })
        .collect();
    let mut buf = [0u8; 1024];

    // Warm up: every connection parks and wakes several times, so that the
    // worker's spare slots, buffers and expiry cancellers (one per 100 ms
    // tick, used again once their tick has come) reach their steady state;
    // first in bursts, so that more busy spells have run together than any
    // later round has.
    for _ in 0..3 {
        for group in clients.chunks_mut(BURST) {
            raw::exchange_all(group, &mut buf);
        }
        std::thread::sleep(PAUSE);
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1000) {
        round(&mut clients, &mut buf);
    }
    let before = counting::allocations();
    let rounds = 5;
    for _ in 0..rounds {
        round(&mut clients, &mut buf);
    }
    let allocations = counting::allocations() - before;
    let requests = rounds * CONNECTIONS;
    println!("{allocations} allocations over {requests} requests");
    assert!(
        allocations <= MOST_ALLOCATIONS,
        "{allocations} allocations over {requests} requests, each waking a parked connection"
    );
}
