//! Many keep-alive connections, each idle between its requests for longer
//! than the balancer waits before parking it (`PARK_AFTER`, 20 ms): every
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

/// The pause after each round: with the round itself, every connection
/// stays idle for longer than this, well past the parking delay (20 ms).
const PAUSE: Duration = Duration::from_millis(60);

fn round(clients: &mut [TcpStream], buf: &mut [u8]) {
    for client in clients.iter_mut() {
        raw::exchange(client, buf);
    }
    std::thread::sleep(PAUSE);
}

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
    // tick, used again once their tick has come) reach their steady state.
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
    assert_eq!(
        allocations, 0,
        "{allocations} allocations over {requests} requests, each waking a parked connection"
    );
}
