//! `-b host:port,proxy=v2`: every new connection to such a target starts
//! with a PROXY protocol v2 header naming the client (its address as the
//! balancer sees it, and the address it connected to), in clear before any
//! TLS; health checks send a `LOCAL` one. Such a connection belongs to its
//! client: no other client's request ever goes on it, and the client's next
//! request to the same target reuses it.
//!
//! The target here is raw: a std listener, a thread per connection, that
//! reads what the connection begins with (a v2 header, decoded here on its
//! own, or none), then answers HTTP/1.1 requests with keep-alive, each with
//! the connection's number as its body.

mod support;
use support::tls::{provider, Ca, Leaf};
use support::*;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// What a connection to the target began with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Began {
    /// No PROXY header: the request came first.
    Nothing,
    /// A v2 header with the `LOCAL` command, no addresses.
    Local,
    /// A v2 header with the `PROXY` command over TCP: source, destination,
    /// and whether it was TCP over IPv6.
    Proxy {
        source: SocketAddr,
        destination: SocketAddr,
        v6: bool,
    },
}

/// One connection the target accepted.
#[derive(Debug, Clone)]
struct Conn {
    /// `None` until its first bytes are read.
    began: Option<Began>,
    /// The paths of the requests it carried, in order.
    paths: Vec<String>,
    /// The balancer closed it.
    closed: bool,
}

impl Conn {
    fn is_health_check(&self) -> bool {
        !self.paths.is_empty() && self.paths.iter().all(|p| p == HEALTH_PATH)
    }
}

/// A target on 127.0.0.1 that records what each connection began with and
/// the requests it carried; plain HTTP, or HTTPS after the header.
struct Target {
    addr: SocketAddr,
    conns: Arc<Mutex<Vec<Conn>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Target {
    fn start() -> Target {
        Target::start_with(None)
    }

    /// HTTPS after the PROXY header (which is required then).
    fn start_tls(leaf: &Leaf) -> Target {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("default versions")
            .with_no_client_auth()
            .with_single_cert(leaf.chain(), leaf.key())
            .expect("a certificate and its key");
        Target::start_with(Some(Arc::new(config)))
    }

    fn start_with(tls: Option<Arc<ServerConfig>>) -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let conns = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&conns);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let n = {
                    let mut conns = lock(&shared);
                    conns.push(Conn {
                        began: None,
                        paths: Vec::new(),
                        closed: false,
                    });
                    conns.len() - 1
                };
                let (conns, tls) = (Arc::clone(&shared), tls.clone());
                thread::spawn(move || serve(stream, n, &conns, tls));
            }
        });
        Target { addr, conns }
    }

    fn spec(&self, options: &str) -> String {
        format!("{}{options}", self.addr)
    }

    fn conns(&self) -> Vec<Conn> {
        lock(&self.conns).clone()
    }

    fn conn(&self, n: usize) -> Conn {
        self.conns()[n].clone()
    }

    /// The connections that carried requests other than health checks.
    fn request_conns(&self) -> Vec<usize> {
        let conns = self.conns();
        (0..conns.len())
            .filter(|&i| !conns[i].paths.is_empty() && !conns[i].is_health_check())
            .collect()
    }
}

/// Reads what the connection begins with, then serves requests on it.
fn serve(mut tcp: TcpStream, n: usize, conns: &Mutex<Vec<Conn>>, tls: Option<Arc<ServerConfig>>) {
    let _ = tcp.set_read_timeout(Some(CLIENT_TIMEOUT));
    let Ok((began, early)) = read_header(&mut tcp) else {
        return;
    };
    lock(conns)[n].began = Some(began);
    let closer = tcp.try_clone().expect("clone the socket");
    match tls {
        None => http(&mut tcp, early, n, conns, &closer),
        Some(config) => {
            assert!(early.is_empty(), "a TLS target wants the header first");
            let session = ServerConnection::new(config).expect("a TLS session");
            let mut stream = StreamOwned::new(session, tcp);
            http(&mut stream, Vec::new(), n, conns, &closer);
        }
    }
}

/// The v2 header the connection starts with, if any, decoded by the book;
/// what was read past it (only without a header: a request's first bytes).
fn read_header(tcp: &mut TcpStream) -> std::io::Result<(Began, Vec<u8>)> {
    let mut fixed = [0u8; 16];
    tcp.read_exact(&mut fixed)?;
    if &fixed[..12] != V2_SIGNATURE {
        return Ok((Began::Nothing, fixed.to_vec()));
    }
    let mut block = vec![0u8; usize::from(u16::from_be_bytes([fixed[14], fixed[15]]))];
    tcp.read_exact(&mut block)?;
    let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
    let began = match (fixed[12], fixed[13], block.len()) {
        (0x20, 0x00, 0) => Began::Local,
        (0x21, 0x11, 12) => {
            let ip = |at: usize| {
                IpAddr::V4(Ipv4Addr::new(
                    block[at],
                    block[at + 1],
                    block[at + 2],
                    block[at + 3],
                ))
            };
            Began::Proxy {
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
                v6: false,
            }
        }
        (0x21, 0x21, 36) => {
            let ip = |at: usize| {
                let octets: [u8; 16] = block[at..at + 16].try_into().unwrap();
                IpAddr::V6(Ipv6Addr::from(octets))
            };
            Began::Proxy {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
                v6: true,
            }
        }
        other => panic!("not a header this balancer should send: {other:?} {block:?}"),
    };
    Ok((began, Vec::new()))
}

/// Answers bodiless requests with keep-alive, each with the connection's
/// number as body, until the peer closes or asks to. `/bye` is answered,
/// then the connection closed (as a target's keep-alive timeout would).
fn http<S: Read + Write>(
    s: &mut S,
    mut buf: Vec<u8>,
    n: usize,
    conns: &Mutex<Vec<Conn>>,
    tcp: &TcpStream,
) {
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => {
                    lock(conns)[n].closed = true;
                    return;
                }
                Ok(got) => buf.extend_from_slice(&chunk[..got]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        buf.drain(..end + 4);
        let path = head.split(' ').nth(1).unwrap_or_default().to_string();
        let close = head.contains("\r\nconnection: close");
        lock(conns)[n].paths.push(path.clone());
        let body = n.to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{}\r\n{body}",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        if s.write_all(response.as_bytes())
            .and_then(|_| s.flush())
            .is_err()
        {
            return;
        }
        if close || path == "/bye" {
            let _ = tcp.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// One worker, a health round at start only; `args` after.
fn start(args: &[&str]) -> Balancer {
    let mut all = vec!["--workers", "1", "--health-interval", "60s"];
    all.extend_from_slice(args);
    Balancer::start(&all)
}

/// `GET path` on `c`, asserted 200; the number of the target connection
/// that answered.
fn get_on(c: &mut Client, path: &str) -> usize {
    let r = c.request("GET", path, &[], b"");
    assert_eq!(r.status, 200, "{path}: {r:?}");
    r.body_str().parse().expect("a connection number")
}

/// The header a request connection should begin with for `client`.
fn names(client: &Client, lb: &Balancer) -> Began {
    Began::Proxy {
        source: client.stream().local_addr().unwrap(),
        destination: lb.addr(),
        v6: false,
    }
}

#[test]
fn a_new_connection_starts_with_a_header_naming_the_client_and_is_reused_by_it() {
    let target = Target::start();
    let lb = start(&["-b", &target.spec(",proxy=v2")]);
    let mut c = Client::connect(lb.addr());
    let first = get_on(&mut c, "/one");
    assert_eq!(target.conn(first).began, Some(names(&c, &lb)));
    // The client's next requests go on its own connection: no new one.
    assert_eq!(get_on(&mut c, "/two"), first);
    assert_eq!(get_on(&mut c, "/three"), first);
    assert_eq!(target.conn(first).paths, ["/one", "/two", "/three"]);
    assert_eq!(target.request_conns(), [first]);
}

#[test]
fn two_clients_never_share_a_connection_even_when_one_is_idle() {
    let target = Target::start();
    let lb = start(&["-b", &target.spec(",proxy=v2")]);
    let mut a = Client::connect(lb.addr());
    let mut b = Client::connect(lb.addr());
    let a_conn = get_on(&mut a, "/a1");
    // A's target connection is idle now; B must get one of its own.
    let b_conn = get_on(&mut b, "/b1");
    assert_ne!(a_conn, b_conn, "B's request went on A's connection");
    assert_eq!(get_on(&mut a, "/a2"), a_conn);
    assert_eq!(get_on(&mut b, "/b2"), b_conn);
    assert_eq!(target.conn(a_conn).began, Some(names(&a, &lb)));
    assert_eq!(target.conn(b_conn).began, Some(names(&b, &lb)));
    assert_eq!(target.conn(a_conn).paths, ["/a1", "/a2"]);
    assert_eq!(target.conn(b_conn).paths, ["/b1", "/b2"]);
    // A third client, after both are done, still gets a new one.
    let mut c = Client::connect(lb.addr());
    let c_conn = get_on(&mut c, "/c1");
    assert!(![a_conn, b_conn].contains(&c_conn));
    assert_eq!(target.conn(c_conn).began, Some(names(&c, &lb)));
}

#[test]
fn a_client_keeps_its_connection_through_a_parked_wait() {
    let target = Target::start();
    let lb = start(&["-b", &target.spec(",proxy=v2")]);
    let mut c = Client::connect(lb.addr());
    let first = get_on(&mut c, "/before");
    // Idle long enough to be parked (after 5 ms); whether it was or not,
    // the client's connection to the target must still be its own.
    thread::sleep(Duration::from_millis(200));
    assert_eq!(get_on(&mut c, "/after"), first);
    assert_eq!(target.request_conns(), [first]);
}

#[test]
fn a_connection_the_target_closed_is_replaced_by_a_new_one_with_a_header() {
    let target = Target::start();
    let lb = start(&["-b", &target.spec(",proxy=v2")]);
    let mut c = Client::connect(lb.addr());
    let first = get_on(&mut c, "/bye");
    let second = get_on(&mut c, "/next");
    assert_ne!(first, second);
    assert_eq!(target.conn(second).began, Some(names(&c, &lb)));
    assert_eq!(target.conn(second).paths, ["/next"]);
}

#[test]
fn a_request_to_another_target_closes_the_connection_kept() {
    let (t1, t2) = (Target::start(), Target::start());
    let lb = start(&["-b", &t1.spec(",proxy=v2"), "-b", &t2.spec(",proxy=v2")]);
    let mut c = Client::connect(lb.addr());
    // Round robin: the first and third requests go to one target, the
    // second to the other.
    let first = get_on(&mut c, "/1");
    let (x, y) = match t1.request_conns().is_empty() {
        true => (&t2, &t1),
        false => (&t1, &t2),
    };
    get_on(&mut c, "/2");
    assert_eq!(y.request_conns().len(), 1, "the second went elsewhere");
    assert!(
        wait_for(WAIT, || x.conn(first).closed),
        "the first target's connection stayed open beside the second's"
    );
    let third = get_on(&mut c, "/3");
    assert_ne!(third, first);
    assert_eq!(x.conn(third).began, Some(names(&c, &lb)));
}

#[test]
fn health_checks_send_a_local_header() {
    let target = Target::start();
    let _lb = start(&["-b", &target.spec(",proxy=v2")]);
    assert!(
        wait_for(WAIT, || target.conns().iter().any(Conn::is_health_check)),
        "no health check: {:?}",
        target.conns()
    );
    for conn in target.conns().iter().filter(|c| c.is_health_check()) {
        assert_eq!(conn.began, Some(Began::Local), "{conn:?}");
    }
}

#[test]
fn behind_an_l4_balancer_the_source_sent_on_is_the_one_its_header_named() {
    let target = Target::start();
    let lb = start(&["-b", &target.spec(",proxy=v2"), "--proxy-protocol"]);
    let mut c = Client::connect(lb.addr());
    c.send(b"PROXY TCP4 192.0.2.7 10.0.0.1 12345 80\r\n");
    let conn = get_on(&mut c, "/v1");
    let want = Began::Proxy {
        source: "192.0.2.7:12345".parse().unwrap(),
        destination: lb.addr(),
        v6: false,
    };
    assert_eq!(target.conn(conn).began, Some(want));

    // A v2 header naming an IPv6 client: the header sent on is TCP over
    // IPv6, the balancer's own (IPv4) address mapped.
    let mut c = Client::connect(lb.addr());
    let mut header = V2_SIGNATURE.to_vec();
    header.extend_from_slice(&[0x21, 0x21, 0, 36]);
    header.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
    header.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    header.extend_from_slice(&[0x0f, 0xa0, 0x01, 0xbb]);
    c.send(&header);
    let conn = get_on(&mut c, "/v2");
    let IpAddr::V4(lb_ip) = lb.addr().ip() else {
        panic!("the balancer listens on IPv4 here")
    };
    let want = Began::Proxy {
        source: "[2001:db8::7]:4000".parse().unwrap(),
        destination: SocketAddr::new(IpAddr::V6(lb_ip.to_ipv6_mapped()), lb.addr().port()),
        v6: true,
    };
    assert_eq!(target.conn(conn).began, Some(want));
}

#[test]
fn a_target_without_proxy_v2_gets_no_header() {
    let target = Target::start();
    let lb = start(&["-b", &target.spec("")]);
    let mut c = Client::connect(lb.addr());
    let conn = get_on(&mut c, "/plain");
    assert_eq!(get_on(&mut c, "/again"), conn);
    assert!(
        wait_for(WAIT, || target.conns().iter().any(Conn::is_health_check)),
        "no health check"
    );
    for conn in target.conns() {
        assert_eq!(conn.began, Some(Began::Nothing), "{conn:?}");
    }
}

#[test]
fn proxy_v2_goes_with_a_weight_in_any_order_on_b_and_in_a_targets_file() {
    let (t1, t2) = (Target::start(), Target::start());
    let file = TempFile::with("targets", &format!("{}\n", t2.spec(",proxy=v2,weight=2")));
    let lb = start(&[
        "-b",
        &t1.spec(",weight=3,proxy=v2"),
        "--targets-file",
        file.arg(),
        "--algorithm",
        "weighted",
    ]);
    // Five requests from one client: both targets get some (3 and 2).
    let mut c = Client::connect(lb.addr());
    for i in 0..5 {
        get_on(&mut c, &format!("/r{i}"));
    }
    for t in [&t1, &t2] {
        let conns = t.request_conns();
        assert!(!conns.is_empty(), "a target got no request");
        for n in conns {
            assert_eq!(t.conn(n).began, Some(names(&c, &lb)));
        }
    }
    let total: usize = [&t1, &t2]
        .iter()
        .flat_map(|t| t.request_conns().into_iter().map(|n| t.conn(n).paths.len()))
        .sum();
    assert_eq!(total, 5);
}

#[test]
fn a_bad_proxy_option_is_refused_at_start_up() {
    for spec in [
        "127.0.0.1:9,proxy=v3",
        "127.0.0.1:9,proxy=",
        "127.0.0.1:9,proxy",
    ] {
        assert_flag_error(&["-p", "0", "-b", spec], &[spec]);
    }
    let file = TempFile::with("targets", "127.0.0.1:9,weight=2,proxy=v1\n");
    assert_flag_error(
        &["-p", "0", "--targets-file", file.arg()],
        &["line 1", "proxy=v1"],
    );
}

#[test]
fn an_https_target_gets_the_header_in_clear_before_the_handshake() {
    let ca = Ca::new("targets-root");
    let target = Target::start_tls(&ca.leaf("t", &["127.0.0.1"]));
    let spec = format!("https://{},proxy=v2", target.addr);
    let lb = start(&["-b", &spec, "--backend-ca", ca.arg()]);
    let mut c = Client::connect(lb.addr());
    let first = get_on(&mut c, "/secure");
    assert_eq!(target.conn(first).began, Some(names(&c, &lb)));
    assert_eq!(get_on(&mut c, "/again"), first);
    // The health check's LOCAL header came before its handshake too, and
    // the check passed over TLS.
    assert!(
        wait_for(WAIT, || target.conns().iter().any(Conn::is_health_check)),
        "no health check: {:?}",
        target.conns()
    );
    for conn in target.conns().iter().filter(|c| c.is_health_check()) {
        assert_eq!(conn.began, Some(Began::Local), "{conn:?}");
    }
}
