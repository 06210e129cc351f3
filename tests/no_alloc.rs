//! In steady state (a keep-alive client, a pooled upstream connection, small
//! bodies) the balancer allocates nothing per request: the balancer runs in
//! this process under a counting global allocator, and the client and target
//! here allocate nothing while requests are counted.

use std::net::TcpStream;
use std::time::{Duration, Instant};

mod counting;

mod raw;

#[test]
fn steady_state_requests_allocate_nothing() {
    // Short idle and header timeouts: the worker's ring of expiries (one
    // canceller per 100 ms tick, as far ahead as the longer of the two)
    // is 1.3 s long, so that the warm-up below goes round it.
    let listen = raw::start_balancer_with(
        raw::start_target(),
        &["--idle-timeout", "1s", "--client-header-timeout", "1s"],
    );
    let mut client = TcpStream::connect(listen).unwrap();
    client.set_nodelay(true).unwrap();
    let mut buf = [0u8; 1024];

    // Warm up: connections, pools and buffers reach their steady state.
    // First with pauses past the parking delay (5 ms) for longer than the
    // ring of expiries, so that a request that comes late below (this
    // thread descheduled on a loaded machine) finds a parked connection's
    // spares and its tick's canceller already made.
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        raw::exchange(&mut client, &mut buf);
        std::thread::sleep(Duration::from_millis(10));
    }
    for _ in 0..2_000 {
        raw::exchange(&mut client, &mut buf);
    }
    let before = counting::allocations();
    let requests = 10_000;
    for _ in 0..requests {
        raw::exchange(&mut client, &mut buf);
    }
    let allocations = counting::allocations() - before;
    assert_eq!(
        allocations, 0,
        "{allocations} allocations over {requests} requests"
    );
}
