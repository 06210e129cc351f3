//! In steady state (a keep-alive client, a pooled upstream connection, small
//! bodies) the balancer allocates nothing per request: the balancer runs in
//! this process under a counting global allocator, and the client and target
//! here allocate nothing while requests are counted.

use std::net::TcpStream;

mod counting;

mod raw;

#[test]
fn steady_state_requests_allocate_nothing() {
    let listen = raw::start_balancer(raw::start_target());
    let mut client = TcpStream::connect(listen).unwrap();
    client.set_nodelay(true).unwrap();
    let mut buf = [0u8; 1024];

    // Warm up: connections, pools and buffers reach their steady state.
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
