//! End to end: a tunnel (after `101 Switching Protocols`) is full duplex.
//! Each direction moves on its own, so a client that does not read cannot
//! hold up what it sends; a direction that stalls ends the tunnel after the
//! idle timeout, while traffic one way keeps it open; a half-close (FIN)
//! is passed on and the other direction carries on.
//!
//! The target here is a raw one of our own ([`RawTarget`]): after its 101
//! it follows a [`Script`] on one thread while another records every byte
//! it reads and how its reading ended.

mod support;
use support::*;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A flood counts as stuck (every buffer between the target and a client
/// that does not read is full) once one write has waited this long.
const STUCK: Duration = Duration::from_millis(500);

/// How long the target's reads and writes may block before giving up, so
/// that a broken test ends instead of hanging.
const TARGET_IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The bytes the flood writes at a time.
const FLOOD_CHUNK: usize = 64 * 1024;

/// How many lines [`Script::Ticks`] sends, and how often.
const TICKS: usize = 15;
const TICK_EVERY: Duration = Duration::from_millis(200);

/// How often the client talks while it does not read.
const PING_EVERY: Duration = Duration::from_millis(200);

/// The target's answer to the upgrade request.
const SWITCHING: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";

/// What the target does once it has answered 101.
#[derive(Clone, Copy)]
enum Script {
    /// Writes [`FLOOD_CHUNK`]s until a write fails.
    Flood,
    /// Writes `tick N\n` ([`TICKS`] lines, one every [`TICK_EVERY`]), then
    /// holds the connection.
    Ticks,
    /// Sends these bytes once it has read the end of the stream (the
    /// client's half-close), then closes.
    ReplyAfterEof(&'static [u8]),
}

/// How the target's reading of the tunnel ended.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ended {
    /// A read returned 0.
    Eof,
    /// A read failed (a reset, say), with this error kind.
    Error(io::ErrorKind),
}

/// What the target saw of the tunnel.
#[derive(Default)]
struct Seen {
    /// Every byte read after the upgrade request's head.
    bytes: Vec<u8>,
    ended: Option<Ended>,
    /// When reading ended.
    ended_at: Option<Instant>,
    /// Bytes the flood has written so far.
    flooded: usize,
    /// When the flood started its latest write (`None`: not writing).
    write_started: Option<Instant>,
}

/// A target on `127.0.0.1` that answers `GET /_health` with 200 and a
/// close, and any other request with 101 and then its [`Script`]. One
/// tunnel per test: [`Seen`] is shared by every connection.
struct RawTarget {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    stopping: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<Conn>>>,
    accept: Option<JoinHandle<()>>,
}

impl RawTarget {
    fn start(script: Script) -> RawTarget {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stopping = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let (seen, stopping, conns) = (seen.clone(), stopping.clone(), conns.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let Ok(clone) = stream.try_clone() else {
                        continue;
                    };
                    let seen = seen.clone();
                    let thread = thread::spawn(move || serve(stream, script, seen));
                    lock(&conns).push(Conn {
                        stream: clone,
                        thread,
                    });
                }
            })
        };
        RawTarget {
            addr,
            seen,
            stopping,
            conns,
            accept: Some(accept),
        }
    }

    fn seen(&self) -> MutexGuard<'_, Seen> {
        lock(&self.seen)
    }

    fn received(&self) -> Vec<u8> {
        self.seen().bytes.clone()
    }

    fn ended(&self) -> Option<Ended> {
        self.seen().ended.clone()
    }

    /// Whether the flood's current write has waited at least [`STUCK`].
    fn flood_is_stuck(&self) -> bool {
        let seen = self.seen();
        seen.flooded > 0 && seen.write_started.is_some_and(|t| t.elapsed() >= STUCK)
    }

    /// A balancer with one worker in front of this target, with `flags`.
    fn balancer(&self, flags: &[&str]) -> Balancer {
        let addr = self.addr.to_string();
        let mut args = vec!["-b", &addr, "--workers", "1", "--health-interval", "60s"];
        args.extend_from_slice(flags);
        Balancer::start(&args)
    }
}

impl Drop for RawTarget {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let conns: Vec<_> = lock(&self.conns).drain(..).collect();
        for conn in &conns {
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
        for conn in conns {
            let _ = conn.thread.join();
        }
    }
}

/// An accepted connection: a clone of its socket, to shut it down on drop,
/// and the thread serving it.
struct Conn {
    stream: TcpStream,
    thread: JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in a target thread must not hide the test's own failure.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads a request head one byte at a time (so that nothing after it is
/// taken) and returns it; `None` if the stream ends first.
fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(head)
}

/// One connection: a health check, or the upgrade and then the script.
fn serve(mut stream: TcpStream, script: Script, seen: Arc<Mutex<Seen>>) {
    let _ = stream.set_read_timeout(Some(TARGET_IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(TARGET_IO_TIMEOUT));
    let Some(head) = read_head(&mut stream) else {
        return;
    };
    if head.starts_with(format!("GET {HEALTH_PATH} ").as_bytes()) {
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        // The drop closes a clone only: this closes the connection.
        let _ = stream.shutdown(Shutdown::Both);
        return;
    }
    if stream.write_all(SWITCHING).is_err() {
        return;
    }
    let writer = match script {
        Script::Flood | Script::Ticks => {
            let out = stream.try_clone().expect("try_clone");
            let seen = seen.clone();
            Some(thread::spawn(move || match script {
                Script::Flood => flood(out, &seen),
                _ => ticks(out),
            }))
        }
        Script::ReplyAfterEof(_) => None,
    };
    let ended = record(&mut stream, &seen);
    if let (Script::ReplyAfterEof(reply), Ended::Eof) = (script, ended) {
        let _ = stream.write_all(reply);
        let _ = stream.shutdown(Shutdown::Write);
    }
    if let Some(writer) = writer {
        let _ = writer.join();
    }
}

/// Records every byte read until the stream ends or fails, then how it
/// ended.
fn record(stream: &mut TcpStream, seen: &Mutex<Seen>) -> Ended {
    let mut buf = [0u8; 16 * 1024];
    let ended = loop {
        match stream.read(&mut buf) {
            Ok(0) => break Ended::Eof,
            Ok(n) => lock(seen).bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Ended::Error(e.kind()),
        }
    };
    let mut seen = lock(seen);
    seen.ended = Some(ended.clone());
    seen.ended_at = Some(Instant::now());
    ended
}

/// Writes [`FLOOD_CHUNK`]s until a write fails, noting each write's start.
fn flood(mut out: TcpStream, seen: &Mutex<Seen>) {
    let chunk = vec![b'x'; FLOOD_CHUNK];
    loop {
        lock(seen).write_started = Some(Instant::now());
        let done = out.write_all(&chunk);
        let mut seen = lock(seen);
        seen.write_started = None;
        if done.is_err() {
            return;
        }
        seen.flooded += chunk.len();
    }
}

/// Writes the tick lines at their pace.
fn ticks(mut out: TcpStream) {
    for i in 0..TICKS {
        if out.write_all(format!("tick {i}\n").as_bytes()).is_err() {
            return;
        }
        // The pace of the traffic, well inside the idle timeout under test.
        thread::sleep(TICK_EVERY);
    }
}

/// Connects through the balancer and sends the handshake; the answer must
/// be a 101.
fn open_tunnel(lb: &Balancer) -> Client {
    let mut c = Client::connect(lb.addr());
    c.send(&upgrade_request(b""));
    let r = c.read_response();
    assert_eq!(r.status, 101, "answer to the handshake: {r:?}");
    c
}

#[test]
fn tunnel_carries_client_bytes_while_the_client_is_not_reading() {
    let target = RawTarget::start(Script::Flood);
    // A long idle timeout: nothing here may wait for it.
    let lb = target.balancer(&["--idle-timeout", "60s"]);
    let mut c = open_tunnel(&lb);
    assert!(
        wait_for(WAIT, || target.flood_is_stuck()),
        "the flood towards a client that does not read never got stuck ({} bytes written)",
        target.seen().flooded
    );
    c.send(b"hello");
    assert!(
        wait_for(WAIT, || target.received().ends_with(b"hello")),
        "the target got {:?} while it flooded a client that does not read",
        String::from_utf8_lossy(&target.received())
    );
}

#[test]
fn a_stalled_direction_closes_the_tunnel_after_the_idle_timeout() {
    let target = RawTarget::start(Script::Flood);
    let lb = target.balancer(&["--idle-timeout", "1s"]);
    let asked = Instant::now();
    let mut c = open_tunnel(&lb);
    // The client never reads but keeps talking, so that the tunnel is never
    // quiet both ways: only the stall towards the client can end it.
    let pinger = {
        let mut out = c.stream().try_clone().expect("try_clone");
        thread::spawn(move || {
            let started = Instant::now();
            while started.elapsed() < WAIT && out.write_all(b"ping\n").is_ok() {
                // The pace of the traffic, well inside the idle timeout.
                thread::sleep(PING_EVERY);
            }
        })
    };
    assert!(
        wait_for(WAIT, || target.ended().is_some()),
        "the tunnel towards a client that does not read is still open ({} bytes flooded)",
        target.seen().flooded
    );
    let (ended, ended_at) = {
        let seen = target.seen();
        (seen.ended.clone(), seen.ended_at.expect("ended_at"))
    };
    assert!(
        !matches!(
            ended,
            Some(Ended::Error(
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ))
        ),
        "the target's own read timed out: {ended:?}"
    );
    // The stall began after the first bytes were written, so after the
    // tunnel opened, so after the handshake was sent.
    let took = ended_at.duration_since(asked);
    assert!(
        took >= Duration::from_millis(900),
        "closed after only {took:?} with --idle-timeout 1s"
    );
    let received = target.received();
    assert!(
        !received.is_empty() && received.chunks(5).all(|p| b"ping\n".starts_with(p)),
        "what the target read from the client: {:?}",
        String::from_utf8_lossy(&received)
    );
    assert!(c.is_closed(WAIT), "the client's side is still open");
    pinger.join().expect("pinger");
}

#[test]
fn one_way_traffic_keeps_the_tunnel_open() {
    let target = RawTarget::start(Script::Ticks);
    let lb = target.balancer(&["--idle-timeout", "1s"]);
    let mut c = open_tunnel(&lb);
    let last = format!("tick {}\n", TICKS - 1);
    let all = TICK_EVERY * TICKS as u32 + WAIT;
    assert!(
        c.wait_for_bytes(all, |got| got.ends_with(last.as_bytes())),
        "the client got {:?} of {TICKS} ticks, one every {TICK_EVERY:?}, with --idle-timeout 1s",
        String::from_utf8_lossy(c.buffered())
    );
    let expected: String = (0..TICKS).map(|i| format!("tick {i}\n")).collect();
    assert_eq!(String::from_utf8_lossy(c.buffered()), expected);
}

#[test]
fn half_close_is_passed_on() {
    const REPLY: &[u8] = b"the reply after your end of stream";
    let target = RawTarget::start(Script::ReplyAfterEof(REPLY));
    let lb = target.balancer(&[]);
    let mut c = open_tunnel(&lb);
    c.send(b"all I have to say");
    c.shutdown_write();
    assert!(
        wait_for(WAIT, || target.ended().is_some()),
        "the target did not see the client's end of stream; it got {:?}",
        String::from_utf8_lossy(&target.received())
    );
    assert_eq!(target.ended(), Some(Ended::Eof));
    assert_eq!(target.received(), b"all I have to say");
    assert!(c.is_closed(WAIT), "the client's side is still open");
    assert_eq!(
        String::from_utf8_lossy(c.buffered()),
        String::from_utf8_lossy(REPLY),
        "what the client read after its half-close"
    );
}
