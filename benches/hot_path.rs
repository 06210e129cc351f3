//! Micro-benchmarks of the per-request work that is not IO: parsing a
//! request and a response head, finding the end of a chunked body, and
//! picking a target. `cargo bench` (or `make benchmark`) runs them.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use load_balancer::balance::{
    HealthBitmap, LeastConnections, P2c, PeakEwma, RoundRobin, SmoothWeighted, DEFAULT_DECAY_NS,
};
use load_balancer::http::{parse_request, parse_response, ChunkedScanner};

/// What wrk sends.
const WRK_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

/// A browser-like request with hop-by-hop fields to drop.
const BROWSER_REQUEST: &[u8] = b"GET /static/app.js?v=42 HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Referer: https://www.example.com/\r\n\
Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n\
Connection: keep-alive\r\n\
Upgrade-Insecure-Requests: 1\r\n\
X-Forwarded-For: 203.0.113.7\r\n\
\r\n";

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.22.1\r\n\
Date: Fri, 27 Nov 2026 03:40:12 GMT\r\n\
Content-Type: text/plain\r\n\
Content-Length: 20\r\n\
Connection: keep-alive\r\n\
\r\nxxxxxxxxxxxxxxxxxxxx";

fn parsing(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (name, input) in [
        ("wrk_request", WRK_REQUEST),
        ("browser_request", BROWSER_REQUEST),
    ] {
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_with_input(BenchmarkId::new("request", name), input, |b, input| {
            b.iter(|| parse_request(black_box(input), 16 * 1024).unwrap().unwrap())
        });
    }
    g.throughput(Throughput::Bytes(RESPONSE.len() as u64));
    g.bench_function("response", |b| {
        b.iter(|| parse_response(black_box(RESPONSE), false).unwrap().unwrap())
    });
    g.finish();
}

fn chunked(c: &mut Criterion) {
    // 64 chunks of 1 KiB: the scanner skips data and reads only framing.
    let mut body = Vec::new();
    for _ in 0..64 {
        body.extend_from_slice(b"400\r\n");
        body.extend(std::iter::repeat_n(b'x', 1024));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let mut g = c.benchmark_group("chunked");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("scan_64k", |b| {
        b.iter(|| {
            let mut s = ChunkedScanner::new();
            let n = s.scan(black_box(&body)).unwrap();
            assert!(s.is_done());
            n
        })
    });
    g.finish();
}

fn picking(c: &mut Criterion) {
    let mut g = c.benchmark_group("pick");
    for targets in [4usize, 10, 1000] {
        let health = HealthBitmap::new(targets);
        // Every other target healthy: the pick has to skip.
        for i in (0..targets).step_by(2) {
            health.mark_healthy(i);
        }
        let rr = RoundRobin::new(0);
        g.bench_with_input(BenchmarkId::new("round_robin", targets), &health, |b, h| {
            b.iter(|| rr.pick(black_box(h), &[]).unwrap())
        });
    }
    for targets in [4usize, 1000] {
        // Every target healthy, with uneven weights, loads and latencies.
        let health = HealthBitmap::new(targets);
        for i in 0..targets {
            health.mark_healthy(i);
        }
        let weights: Vec<u32> = (0..targets).map(|i| 1 + i as u32 % 4).collect();
        let in_flight: Vec<u32> = (0..targets).map(|i| i as u32 * 7 % 5).collect();
        let ewma: Vec<PeakEwma> = (0..targets)
            .map(|i| PeakEwma::new(1e6 * (1 + i % 3) as f64, 0))
            .collect();

        let mut weighted = SmoothWeighted::new(targets);
        g.bench_with_input(BenchmarkId::new("weighted", targets), &health, |b, h| {
            b.iter(|| weighted.pick(black_box(h), &weights, &[]).unwrap())
        });
        let mut least = LeastConnections::new(0);
        g.bench_with_input(
            BenchmarkId::new("least_connections", targets),
            &health,
            |b, h| b.iter(|| least.pick(black_box(h), &in_flight, &weights, &[]).unwrap()),
        );
        let mut p2c = P2c::new(1);
        g.bench_with_input(BenchmarkId::new("p2c_ewma", targets), &health, |b, h| {
            b.iter(|| {
                p2c.pick(
                    black_box(h),
                    &ewma,
                    &in_flight,
                    1_000_000,
                    DEFAULT_DECAY_NS,
                    &[],
                )
                .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, parsing, chunked, picking);
criterion_main!(benches);
