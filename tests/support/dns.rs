//! [`DnsServer`]: a small DNS server on `127.0.0.1` (UDP), for the
//! balancer's `--resolver`. It answers A queries from a table the test
//! changes while it runs, AAAA queries with no record, names not in the
//! table with NXDOMAIN; it can be told to answer SERVFAIL or nothing at
//! all ([`DnsMode`]), and counts the queries it gets. Written from RFC 1035
//! alone (not with the balancer's own `dns` module), so that the two check
//! each other.
//!
//! Also here: [`backends_on_one_port`], targets on 127.0.0.2, 127.0.0.3, ...
//! that share a port, as the addresses of one name do.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::{wait_for, Backend};

/// How the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsMode {
    /// From its table.
    Answer,
    /// SERVFAIL to every query.
    ServFail,
    /// Nothing: every query is dropped.
    Silent,
}

/// A DNS server on `127.0.0.1:0`. Dropping it stops it.
pub struct DnsServer {
    inner: Arc<DnsInner>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

struct DnsInner {
    /// Lower-case names (without a final dot) and their A records.
    table: Mutex<HashMap<String, Vec<Ipv4Addr>>>,
    mode: Mutex<DnsMode>,
    /// Queries received, answered or not.
    queries: AtomicUsize,
    stopping: AtomicBool,
}

/// How often the server looks whether it is to stop.
const STOP_POLL: Duration = Duration::from_millis(20);

impl DnsServer {
    pub fn start() -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
        socket
            .set_read_timeout(Some(STOP_POLL))
            .expect("set_read_timeout");
        let addr = socket.local_addr().expect("local_addr");
        let inner = Arc::new(DnsInner {
            table: Mutex::new(HashMap::new()),
            mode: Mutex::new(DnsMode::Answer),
            queries: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
        });
        let thread = {
            let inner = Arc::clone(&inner);
            thread::Builder::new()
                .name("dns-server".into())
                .spawn(move || serve(&inner, &socket))
                .expect("spawn the DNS server")
        };
        DnsServer {
            inner,
            addr,
            thread: Some(thread),
        }
    }

    /// Where it listens, as `--resolver` takes it.
    pub fn arg(&self) -> String {
        self.addr.to_string()
    }

    /// Makes `name`'s A records `ips` (none: the name exists, with no
    /// address).
    pub fn set(&self, name: &str, ips: &[Ipv4Addr]) {
        lock(&self.inner.table).insert(name.to_ascii_lowercase(), ips.to_vec());
    }

    /// Takes `name` out of the table: NXDOMAIN.
    pub fn remove(&self, name: &str) {
        lock(&self.inner.table).remove(&name.to_ascii_lowercase());
    }

    /// Makes `name`'s A records the addresses of `backends`.
    pub fn set_backends(&self, name: &str, backends: &[&Backend]) {
        let ips: Vec<Ipv4Addr> = backends.iter().map(|b| ipv4(b.addr())).collect();
        self.set(name, &ips);
    }

    pub fn set_mode(&self, mode: DnsMode) {
        *lock(&self.inner.mode) = mode;
    }

    /// Queries received so far (A and AAAA each count).
    pub fn queries(&self) -> usize {
        self.inner.queries.load(Ordering::SeqCst)
    }

    /// Waits until `n` queries in all have been received.
    pub fn wait_for_queries(&self, n: usize, timeout: Duration) -> bool {
        wait_for(timeout, || self.queries() >= n)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn ipv4(addr: SocketAddr) -> Ipv4Addr {
    match addr {
        SocketAddr::V4(v4) => *v4.ip(),
        SocketAddr::V6(_) => panic!("{addr} is not IPv4"),
    }
}

fn serve(inner: &DnsInner, socket: &UdpSocket) {
    let mut buf = [0u8; 1500];
    while !inner.stopping.load(Ordering::SeqCst) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        inner.queries.fetch_add(1, Ordering::SeqCst);
        let mode = *lock(&inner.mode);
        if mode == DnsMode::Silent {
            continue;
        }
        if let Some(reply) = reply(inner, &buf[..n], mode) {
            let _ = socket.send_to(&reply, from);
        }
    }
}

const TYPE_A: u16 = 1;

/// The answer to `query`, or `None` when it is not a query this server
/// reads (no answer, as a real server might drop it).
fn reply(inner: &DnsInner, query: &[u8], mode: DnsMode) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return None;
    }
    // The question: labels (queries use no compression), type, class.
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        if len == 0 || len > 63 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at + 1..at + 1 + len)?).to_lowercase());
        at += 1 + len;
    }
    let question_end = at + 5;
    let question = query.get(12..question_end)?;
    let qtype = u16::from_be_bytes([query[at + 1], query[at + 2]]);
    let name = labels.join(".");
    let found = lock(&inner.table).get(&name).cloned();
    let (rcode, records): (u16, Vec<Ipv4Addr>) = match (mode, found) {
        (DnsMode::ServFail, _) => (2, vec![]),
        (_, None) => (3, vec![]),
        (_, Some(ips)) if qtype == TYPE_A => (0, ips),
        (_, Some(_)) => (0, vec![]),
    };
    let rd = u16::from(query[2] & 0x01) << 8;
    let mut r = Vec::new();
    r.extend_from_slice(&query[0..2]);
    r.extend_from_slice(&(0x8080 | rd | rcode).to_be_bytes());
    for count in [1, records.len() as u16, 0, 0] {
        r.extend_from_slice(&count.to_be_bytes());
    }
    r.extend_from_slice(question);
    for ip in records {
        // A pointer to the question's name, A, IN, TTL 0, 4 bytes.
        r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4]);
        r.extend_from_slice(&ip.octets());
    }
    Some(r)
}

/// Targets named `names` on 127.0.0.2, 127.0.0.3, ... all on one port (the
/// addresses of one name share its port); a port taken on one of them is
/// given up for another.
pub fn backends_on_one_port(names: &[&str]) -> Vec<Backend> {
    for _ in 0..50 {
        let first = Backend::start_on(names[0], "127.0.0.2:0".parse().unwrap())
            .expect("a target on 127.0.0.2");
        let port = first.addr().port();
        let mut all = vec![first];
        for (i, name) in names.iter().enumerate().skip(1) {
            let addr = SocketAddr::from(([127, 0, 0, 2 + i as u8], port));
            match Backend::start_on(name, addr) {
                Ok(b) => all.push(b),
                Err(_) => break,
            }
        }
        if all.len() == names.len() {
            return all;
        }
    }
    panic!("no port free on 127.0.0.2 to 127.0.0.{}", 1 + names.len());
}
