//! In steady state (a keep-alive client, a pooled upstream connection, small
//! bodies) the balancer allocates nothing per request: the balancer runs in
//! this process under a counting global allocator, and the client and target
//! here allocate nothing while requests are counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};

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
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let requests = 10_000;
    for _ in 0..requests {
        raw::exchange(&mut client, &mut buf);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(
        allocations, 0,
        "{allocations} allocations over {requests} requests"
    );
}
