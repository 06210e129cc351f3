//! In steady state (a keep-alive client, a pooled upstream connection, small
//! bodies) the balancer allocates nothing per request: the balancer runs in
//! this process under a counting global allocator, and the client and target
//! here allocate nothing while requests are counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};

use load_balancer::config::{parse_args, Command};

/// The system allocator, counting every allocation.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on unchanged to the system allocator, which
// upholds the GlobalAlloc contract; the counter is only an atomic add.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nxxxxxxxxxxxxxxxxxxxx";
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";

/// A target that answers every request head on a connection with
/// `RESPONSE`, into and out of fixed buffers (it allocates nothing once a
/// connection is up). Health checks get the same answer.
fn start_target() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let mut have = 0;
                loop {
                    match conn.read(&mut buf[have..]) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => have += n,
                    }
                    // Answer every complete head in the buffer.
                    while let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                        if conn.write_all(RESPONSE).is_err() {
                            return;
                        }
                        buf.copy_within(end + 4..have, 0);
                        have -= end + 4;
                    }
                }
            });
        }
    });
    addr
}

/// Sends one request and reads its whole response into `buf`.
fn exchange(client: &mut TcpStream, buf: &mut [u8]) {
    client.write_all(REQUEST).unwrap();
    let mut got = 0;
    while got < RESPONSE.len() {
        let n = client.read(&mut buf[got..]).unwrap();
        assert!(n > 0, "the balancer closed the connection");
        got += n;
    }
    assert_eq!(&buf[..got], RESPONSE);
}

#[test]
fn steady_state_requests_allocate_nothing() {
    let target = start_target().to_string();
    let args = [
        "-p",
        "0",
        "--bind",
        "127.0.0.1",
        "-b",
        &target,
        "--workers",
        "1",
        "--health-interval",
        "60s",
    ];
    let Ok(Command::Run(config)) = parse_args(args) else {
        panic!("bad arguments");
    };
    let running = load_balancer::runtime::start(*config).unwrap();
    let mut client = TcpStream::connect(running.listen).unwrap();
    client.set_nodelay(true).unwrap();
    let mut buf = [0u8; 1024];

    // Warm up: connections, pools and buffers reach their steady state.
    for _ in 0..2_000 {
        exchange(&mut client, &mut buf);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let requests = 10_000;
    for _ in 0..requests {
        exchange(&mut client, &mut buf);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(
        allocations, 0,
        "{allocations} allocations over {requests} requests"
    );
}
