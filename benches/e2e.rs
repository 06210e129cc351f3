//! End-to-end over loopback: clients, the balancer (in this process, one
//! worker) and a target answering a fixed 20-byte body. `round_trip` is one
//! keep-alive client's request time; `throughput/16` spreads requests over
//! 16 keep-alive connections, each on its own thread, and reports requests
//! per second. Client, target and balancer share this machine's cores, so
//! compare runs on one machine only (`../shared/bench/compare.sh` pins them).

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[path = "../tests/raw/mod.rs"]
mod raw;

fn connect(addr: SocketAddr) -> TcpStream {
    let client = TcpStream::connect(addr).unwrap();
    client.set_nodelay(true).unwrap();
    client
}

fn end_to_end(c: &mut Criterion) {
    let listen = raw::start_balancer(raw::start_target());
    let mut g = c.benchmark_group("e2e");
    g.throughput(Throughput::Elements(1));

    let mut client = connect(listen);
    let mut buf = [0u8; 1024];
    g.bench_function("round_trip", |b| {
        b.iter(|| raw::exchange(&mut client, &mut buf))
    });

    let clients = 16;
    g.bench_function("throughput/16", |b| {
        b.iter_custom(|iters| {
            let per_client = iters.div_ceil(clients);
            let start = Instant::now();
            let threads: Vec<_> = (0..clients)
                .map(|_| {
                    std::thread::spawn(move || {
                        let mut client = connect(listen);
                        let mut buf = [0u8; 1024];
                        for _ in 0..per_client {
                            raw::exchange(&mut client, &mut buf);
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            // Time per request, as if `iters` had run one after another.
            start
                .elapsed()
                .mul_f64(iters as f64 / (per_client * clients) as f64)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = end_to_end
}
criterion_main!(benches);
