//! [`Backend`]: a real HTTP/1.1 target server on loopback with switchable,
//! deterministic faults ([`Mode`]), counters and a log of what it received.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::wire::{self, find_header, find_headers, has_token, Framing, RequestHead, Wire};

/// The path answered by the health endpoint, whatever the [`Mode`].
pub const HEALTH_PATH: &str = "/_health";

/// Length a [`Mode::DieMidBody`] response announces.
pub const DIE_MID_BODY_LENGTH: usize = 1000;
/// Body bytes a [`Mode::DieMidBody`] response sends before the reset.
pub const DIE_MID_BODY_SENT: usize = 100;

/// How long a connection that was closed with FIN keeps draining what the peer
/// still sends, so that unread bytes do not turn the FIN into a reset.
const DRAIN_AFTER_FIN: Duration = Duration::from_secs(1);

/// What the target does with every request except `GET /_health`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 200, body `NAME`, `X-Backend: NAME`, Content-Length; keep-alive.
    Ok,
    /// This status, body `NAME status CODE`, Content-Length; keep-alive.
    /// (1xx, 204 and 304 get neither body nor Content-Length.)
    Status(u16),
    /// Reads the request, never answers; holds the connection until the peer
    /// closes it or the backend stops.
    Hang,
    /// Reads the request head, then resets the connection (RST) without a byte.
    ResetBeforeResponse,
    /// Reads the request, then closes cleanly (FIN) without a byte.
    CloseBeforeResponse,
    /// Sends a head announcing `Content-Length: 1000` and 100 bytes of body
    /// ([`DIE_MID_BODY_LENGTH`], [`DIE_MID_BODY_SENT`]), then resets.
    DieMidBody,
    /// 200 with `Transfer-Encoding: chunked`, body `NAME` in a few chunks.
    Chunked,
    /// 200 with neither Content-Length nor Transfer-Encoding, body `NAME`,
    /// then closes (FIN).
    UntilClose,
    /// 200 with `Connection: close`, body `NAME`, then closes (FIN).
    CloseAfterResponse,
    /// Writes exactly these bytes as the response (one write); keep-alive.
    Raw(Vec<u8>),
    /// 200 with the request body (chunked framing removed) as its body,
    /// `X-Backend: NAME`; keep-alive.
    Echo,
    /// Like `Ok`, after waiting this long (to hold requests in flight).
    Delay(std::time::Duration),
    /// To a request asking to switch protocols (an `Upgrade` field and
    /// `Connection: upgrade`): `101 Switching Protocols` with `Connection:
    /// Upgrade`, `Upgrade: websocket` and `Sec-WebSocket-Accept:`
    /// [`WEBSOCKET_ACCEPT`], then every byte that arrives (those read with
    /// the head first) is echoed back until the peer closes; then it closes.
    /// Other requests: like `Ok`.
    Upgrade,
    /// Like `Echo`, but never sends `100 Continue`, even when asked: a
    /// target that waits for the body in silence.
    NoContinue,
    /// To a request with `Expect: 100-continue` and a body: this status at
    /// once (body `NAME status CODE`, no `Connection: close`), without
    /// reading the body; then every byte that still arrives on the
    /// connection is recorded as that request's body (`body` and
    /// `raw_body`) until the peer closes; then it closes.
    /// Other requests: like `Status`.
    RejectExpect(u16),
    /// Answers as the inner mode does, then, [`LATE_DELAY`] later, writes
    /// these bytes on the same connection, unasked (a late body after a
    /// bodiless answer, a second response nobody asked for), counted by
    /// [`Backend::late_writes`]; the connection stays open.
    Then(Box<Mode>, Vec<u8>),
}

/// How long a [`Mode::Then`] target waits after its answer before it
/// writes the unasked-for bytes: long enough for the balancer to have taken
/// the answer and pooled the connection.
pub const LATE_DELAY: Duration = Duration::from_millis(50);

/// The `Sec-WebSocket-Key` of the sample handshake in RFC 6455 (section 1.3).
pub const WEBSOCKET_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// The `Sec-WebSocket-Accept` a [`Mode::Upgrade`] target answers with: the
/// one RFC 6455 derives from [`WEBSOCKET_KEY`] (whatever key was sent).
pub const WEBSOCKET_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A WebSocket opening handshake (with [`WEBSOCKET_KEY`]), followed by
/// `extra` in the same write.
pub fn upgrade_request(extra: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "GET /chat HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: {WEBSOCKET_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes();
    bytes.extend_from_slice(extra);
    bytes
}

/// Raw response bytes for [`Mode::Raw`]: `head` (without the final empty
/// line) and `body`.
pub fn raw_response(head: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("{head}\r\n\r\n").into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// One request as the target received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    /// The request target as sent (`/a?b=c`).
    pub path: String,
    /// Minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, chunked framing removed. Filled in once it has been read
    /// whole; a target answers only after that.
    pub body: Vec<u8>,
    /// The body bytes exactly as they arrived (chunk sizes, extensions and
    /// trailers included).
    pub raw_body: Vec<u8>,
    /// Which connection it came on: 1 for the first one this target accepted.
    pub conn: usize,
}

impl Recorded {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        find_headers(&self.headers, name)
    }

    /// The body as text (lossy).
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A fault-injecting HTTP/1.1 target on `127.0.0.1`, one thread per connection.
/// Dropping it stops it.
pub struct Backend {
    inner: Arc<Inner>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

struct Inner {
    name: String,
    addr: SocketAddr,
    mode: Mutex<Mode>,
    health: Mutex<HealthScript>,
    close_idle: AtomicBool,
    /// Keep-alive timeout in milliseconds (0: none).
    keep_alive_ms: AtomicUsize,
    late_writes: AtomicUsize,
    fins: AtomicUsize,
    after_fin: AtomicUsize,
    stopping: AtomicBool,
    connections: AtomicUsize,
    log: Mutex<Vec<Recorded>>,
    /// Open connections: a clone of each socket (to shut it down on stop) and
    /// its thread. A connection thread removes its own entry before it closes,
    /// so the clone never keeps a socket alive past its close.
    conns: Mutex<HashMap<usize, OpenConn>>,
}

/// An open connection, as [`Backend::stop`] needs it.
struct OpenConn {
    /// A clone of the socket, to shut it down.
    stream: TcpStream,
    /// The thread serving it, to wait for.
    thread: Option<JoinHandle<()>>,
}

/// How the health endpoint answers: a pattern it cycles through, one entry
/// per check, and every answer it gave.
struct HealthScript {
    /// Pass (200) or fail (503), in turn; never empty.
    pattern: Vec<bool>,
    /// Index in `pattern` of the next check's answer.
    next: usize,
    /// Every check answered so far, in order: whether it passed.
    answers: Vec<bool>,
}

impl HealthScript {
    fn new(pattern: &[bool]) -> HealthScript {
        HealthScript {
            pattern: pattern.to_vec(),
            next: 0,
            answers: Vec::new(),
        }
    }

    /// Starts `pattern` from the next check, keeping the answers given.
    fn set(&mut self, pattern: &[bool]) {
        assert!(!pattern.is_empty(), "a health pattern needs an entry");
        self.pattern = pattern.to_vec();
        self.next = 0;
    }

    /// The answer of the next check, without taking it.
    fn peek(&self) -> bool {
        self.pattern[self.next]
    }

    /// Takes the next check's answer and records it.
    fn take(&mut self) -> bool {
        let pass = self.peek();
        self.next = (self.next + 1) % self.pattern.len();
        self.answers.push(pass);
        pass
    }
}

/// How a connection ends.
enum End {
    /// Shut down the write side (FIN), drain briefly, close.
    Fin,
    /// Close with `SO_LINGER` 0, which sends RST.
    Reset,
    /// Wait for the peer to close (or the backend to stop), then close.
    Hold,
    /// The socket already failed; just close it.
    Drop,
}

/// What to do after one exchange.
enum Next {
    KeepAlive,
    Close(End),
}

impl Backend {
    /// Starts a target named `name` on `127.0.0.1:0`.
    pub fn start(name: &str) -> Backend {
        Backend::start_on(name, "127.0.0.1:0".parse().unwrap())
            .unwrap_or_else(|e| panic!("backend {name}: cannot bind 127.0.0.1:0: {e}"))
    }

    /// Starts a target on a given address, e.g. the one of a stopped target,
    /// to bring it back. (std sets `SO_REUSEADDR` on listeners.)
    pub fn start_on(name: &str, addr: SocketAddr) -> io::Result<Backend> {
        let listener = TcpListener::bind(addr)?;
        let inner = Arc::new(Inner {
            name: name.to_string(),
            addr: listener.local_addr()?,
            mode: Mutex::new(Mode::Ok),
            health: Mutex::new(HealthScript::new(&[true])),
            close_idle: AtomicBool::new(false),
            keep_alive_ms: AtomicUsize::new(0),
            late_writes: AtomicUsize::new(0),
            fins: AtomicUsize::new(0),
            after_fin: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            conns: Mutex::new(HashMap::new()),
        });
        let accept = {
            let inner = Arc::clone(&inner);
            thread::Builder::new()
                .name(format!("backend-{name}-accept"))
                .spawn(move || accept_loop(&inner, listener))?
        };
        Ok(Backend {
            inner,
            accept: Mutex::new(Some(accept)),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Sets what the target does with every request but the health check.
    /// Takes effect for requests whose head is read from now on.
    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.inner.mode) = mode;
    }

    pub fn mode(&self) -> Mode {
        lock(&self.inner.mode).clone()
    }

    /// Whether `GET /_health` answers 200 `ok` (true, the default) or 503,
    /// from the next check on: `set_health_pattern(&[healthy])`.
    pub fn set_healthy(&self, healthy: bool) {
        self.set_health_pattern(&[healthy]);
    }

    /// Scripts the health endpoint: the next check answers as `pattern[0]`
    /// says (true: 200 `ok`, false: 503), the one after as `pattern[1]`, and
    /// so on, starting over at the end: `&[true, false]` flaps on every
    /// check. Panics on an empty pattern.
    pub fn set_health_pattern(&self, pattern: &[bool]) {
        lock(&self.inner.health).set(pattern);
    }

    /// Whether the next health check will pass.
    pub fn is_healthy(&self) -> bool {
        lock(&self.inner.health).peek()
    }

    /// Every health check answered so far, in order: whether it passed.
    pub fn health_answers(&self) -> Vec<bool> {
        lock(&self.inner.health).answers.clone()
    }

    /// When on, the target closes the connection (FIN) after each response
    /// other than a health check, without announcing it (no `Connection:
    /// close`), like a server whose keep-alive timeout just expired.
    pub fn close_idle_after_response(&self, on: bool) {
        self.inner.close_idle.store(on, Ordering::SeqCst);
    }

    /// A keep-alive timeout, as servers have: a connection idle for this
    /// long between requests is closed (FIN), without a word. `None`: kept
    /// until the peer closes it (the default).
    pub fn set_keep_alive_timeout(&self, timeout: Option<Duration>) {
        let ms = timeout.map_or(0, |t| t.as_millis().max(1) as usize);
        self.inner.keep_alive_ms.store(ms, Ordering::SeqCst);
    }

    /// Stops accepting (the listener is closed, so later connects are
    /// refused) and closes every open connection. Idempotent.
    pub fn stop(&self) {
        let accept = lock(&self.accept).take();
        let Some(accept) = accept else { return };
        self.inner.stopping.store(true, Ordering::SeqCst);
        // Wake the accept thread; it sees the flag and drops the listener.
        // Any error means the listener is gone already.
        let _ = TcpStream::connect_timeout(&self.inner.addr, Duration::from_secs(1));
        let _ = accept.join();
        let conns: Vec<_> = lock(&self.inner.conns).drain().collect();
        for (_, conn) in &conns {
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
        for (_, conn) in conns {
            if let Some(thread) = conn.thread {
                let _ = thread.join();
            }
        }
    }

    /// Unasked-for writes a [`Mode::Then`] target made so far.
    pub fn late_writes(&self) -> usize {
        self.inner.late_writes.load(Ordering::SeqCst)
    }

    /// Connections this target has ended with a FIN so far (its FIN is on
    /// its way when this counts it), health checks' included.
    pub fn fins_sent(&self) -> usize {
        self.inner.fins.load(Ordering::SeqCst)
    }

    /// Bytes that reached this target on connections it had already ended
    /// with a FIN (read and thrown away while it waited for the peer's).
    pub fn bytes_after_fin(&self) -> usize {
        self.inner.after_fin.load(Ordering::SeqCst)
    }

    /// Requests other than health checks whose head was read in full.
    pub fn requests(&self) -> usize {
        lock(&self.inner.log).len()
    }

    /// Requests to [`HEALTH_PATH`].
    pub fn health_checks(&self) -> usize {
        lock(&self.inner.health).answers.len()
    }

    /// Connections accepted so far, of any kind.
    pub fn connections(&self) -> usize {
        self.inner.connections.load(Ordering::SeqCst)
    }

    /// Connections open right now.
    pub fn open_connections(&self) -> usize {
        lock(&self.inner.conns).len()
    }

    /// The latest request other than a health check.
    pub fn last_request(&self) -> Option<Recorded> {
        lock(&self.inner.log).last().cloned()
    }

    /// Every request other than health checks, in the order their heads were read.
    pub fn requests_log(&self) -> Vec<Recorded> {
        lock(&self.inner.log).clone()
    }

    /// Waits until at least `n` requests (health checks aside) have arrived.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        super::wait_for(timeout, || self.requests() >= n)
    }

    /// Waits until at least `n` health checks have arrived.
    pub fn wait_for_health_checks(&self, n: usize, timeout: Duration) -> bool {
        super::wait_for(timeout, || self.health_checks() >= n)
    }

    /// Waits until at least `n` connections have been accepted.
    pub fn wait_for_connections(&self, n: usize, timeout: Duration) -> bool {
        super::wait_for(timeout, || self.connections() >= n)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in a connection thread must not hide the test's own failure.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn accept_loop(inner: &Arc<Inner>, listener: TcpListener) {
    for stream in listener.incoming() {
        if inner.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let Ok(clone) = stream.try_clone() else {
            continue;
        };
        let id = inner.connections.fetch_add(1, Ordering::SeqCst) + 1;
        // Hold the lock across the spawn so the entry exists before the
        // thread can try to remove it.
        let mut conns = lock(&inner.conns);
        let thread_inner = Arc::clone(inner);
        let thread = thread::Builder::new()
            .name(format!("backend-{}-conn{id}", inner.name))
            .spawn(move || serve(&thread_inner, stream, id))
            .ok();
        conns.insert(
            id,
            OpenConn {
                stream: clone,
                thread,
            },
        );
    }
    // `listener` drops here: later connects are refused.
}

fn serve(inner: &Inner, stream: TcpStream, conn: usize) {
    let mut wire = Wire::new(stream);
    let end = loop {
        match exchange(inner, &mut wire, conn) {
            Next::KeepAlive => continue,
            Next::Close(end) => break end,
        }
    };
    let mut stream = wire.stream;
    // While this waits, the entry in `conns` lets `stop()` cut the wait short.
    match end {
        End::Fin => {
            let _ = stream.shutdown(Shutdown::Write);
            inner.fins.fetch_add(1, Ordering::SeqCst);
            let _ = stream.set_read_timeout(Some(DRAIN_AFTER_FIN));
            let drained = drain(&mut stream);
            inner.after_fin.fetch_add(drained, Ordering::SeqCst);
        }
        End::Reset => set_linger_zero(&stream),
        End::Hold => {
            drain(&mut stream);
        }
        End::Drop => {}
    }
    // Drop the cloned descriptor too, so that closing `stream` really closes
    // the socket (and, after `SO_LINGER` 0, sends the RST).
    let entry = lock(&inner.conns).remove(&conn);
    drop(entry);
    drop(stream);
}

/// Reads and discards until end of stream, an error, or the read timeout.
/// Returns how many bytes it threw away.
fn drain(stream: &mut TcpStream) -> usize {
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while let Ok(n) = stream.read(&mut sink) {
        if n == 0 {
            break;
        }
        drained += n;
    }
    drained
}

/// SO_LINGER 0 on `stream`: its close sends RST.
pub fn set_linger_zero(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the descriptor belongs to `stream`, which is alive for the whole
    // call; the pointer and length describe a live, correctly sized `linger`
    // that the kernel only reads.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast::<libc::c_void>(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "setsockopt(SO_LINGER): {}",
        io::Error::last_os_error()
    );
}

/// Reads one request and answers it as the mode says.
fn exchange(inner: &Inner, wire: &mut Wire, conn: usize) -> Next {
    let keep_alive = match inner.keep_alive_ms.load(Ordering::SeqCst) {
        0 => None,
        ms => Some(Duration::from_millis(ms as u64)),
    };
    if keep_alive.is_some() && wire.buf.is_empty() {
        let _ = wire.stream.set_read_timeout(keep_alive);
    }
    let head = wire.read_request_head();
    if keep_alive.is_some() {
        let _ = wire.stream.set_read_timeout(None);
    }
    let head = match head {
        Ok(Some(head)) => head,
        Ok(None) => return Next::Close(End::Fin),
        // Idle past the keep-alive timeout: close, as a server does.
        Err(e) if wire::is_timeout(&e) && wire.buf.is_empty() => return Next::Close(End::Fin),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            return bad_request(wire, &e.to_string());
        }
        Err(_) => return Next::Close(End::Drop),
    };
    // A head with bad framing still counts (as a request or a health check):
    // a test can then see that it got through. It is answered 400.
    let framing = wire::request_framing(&head.headers);
    let close_requested = !keep_alive_requested(&head);
    let head_only = head.method.eq_ignore_ascii_case("HEAD");

    if head.path == HEALTH_PATH {
        // Counted, and its answer decided, as soon as its head is read.
        let pass = lock(&inner.health).take();
        let framing = match framing {
            Ok(framing) => framing,
            Err(e) => return bad_request(wire, &e.to_string()),
        };
        if wire.read_body(framing).error.is_some() {
            return Next::Close(End::Drop);
        }
        let (status, body): (u16, &[u8]) = if pass {
            (200, b"ok")
        } else {
            (503, b"unhealthy")
        };
        let response = response(status, &[], body, head_only, close_requested);
        return respond(wire, &response, close_requested, End::Fin);
    }

    let (mode, late) = match lock(&inner.mode).clone() {
        Mode::Then(mode, late) => (*mode, Some(late)),
        mode => (mode, None),
    };
    let index = {
        let mut log = lock(&inner.log);
        log.push(Recorded {
            method: head.method.clone(),
            path: head.path.clone(),
            version: head.version,
            headers: head.headers.clone(),
            body: Vec::new(),
            raw_body: Vec::new(),
            conn,
        });
        log.len() - 1
    };
    let framing = match framing {
        Ok(framing) => framing,
        Err(e) => return bad_request(wire, &e.to_string()),
    };
    let has_body = framing != Framing::Length(0);
    let expects_continue = has_body && has_token(&head.headers, "expect", "100-continue");

    // Modes that never send a byte: they do not send 100 Continue either, so
    // they do not wait for a body the client is holding back.
    match mode {
        Mode::ResetBeforeResponse => return Next::Close(End::Reset),
        Mode::Hang | Mode::CloseBeforeResponse => {
            if !expects_continue && !read_recorded_body(inner, wire, framing, index) {
                return Next::Close(End::Drop);
            }
            return Next::Close(if mode == Mode::Hang {
                End::Hold
            } else {
                End::Fin
            });
        }
        _ => {}
    }

    if let Mode::RejectExpect(code) = mode {
        if expects_continue {
            let name = inner.name.as_str();
            let tag = [("X-Backend", name.to_string())];
            let body = format!("{name} status {code}");
            let bytes = response(code, &tag, body.as_bytes(), head_only, false);
            if wire.stream.write_all(&bytes).is_err() {
                return Next::Close(End::Drop);
            }
            record_until_close(inner, wire, index);
            return Next::Close(End::Fin);
        }
    }

    if expects_continue
        && mode != Mode::NoContinue
        && wire
            .stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .is_err()
    {
        return Next::Close(End::Drop);
    }
    if !read_recorded_body(inner, wire, framing, index) {
        return Next::Close(End::Drop);
    }

    let name = inner.name.as_str();
    let tag = [("X-Backend", name.to_string())];
    let close_idle = inner.close_idle.load(Ordering::SeqCst);
    // How the connection ends when the mode does not force it.
    let idle_end = if close_requested || close_idle {
        Some(End::Fin)
    } else {
        None
    };
    if let Mode::Delay(pause) = mode {
        std::thread::sleep(pause);
    }
    let (bytes, end) = match &mode {
        Mode::Ok | Mode::Delay(_) => (
            response(200, &tag, name.as_bytes(), head_only, close_requested),
            idle_end,
        ),
        Mode::Status(code) | Mode::RejectExpect(code) => (
            response(
                *code,
                &tag,
                format!("{name} status {code}").as_bytes(),
                head_only,
                close_requested,
            ),
            idle_end,
        ),
        Mode::Echo | Mode::NoContinue => {
            let body = lock(&inner.log)[index].body.clone();
            (
                response(200, &tag, &body, head_only, close_requested),
                idle_end,
            )
        }
        Mode::Chunked => (chunked_response(name, head_only, close_requested), idle_end),
        Mode::UntilClose => {
            let mut bytes = format!("HTTP/1.1 200 OK\r\nX-Backend: {name}\r\n\r\n").into_bytes();
            if !head_only {
                bytes.extend_from_slice(name.as_bytes());
            }
            (bytes, Some(End::Fin))
        }
        Mode::CloseAfterResponse => (
            response(200, &tag, name.as_bytes(), head_only, true),
            Some(End::Fin),
        ),
        Mode::DieMidBody => {
            let mut bytes = format!(
                "HTTP/1.1 200 OK\r\nX-Backend: {name}\r\nContent-Length: {DIE_MID_BODY_LENGTH}\r\n\r\n"
            )
            .into_bytes();
            bytes.resize(bytes.len() + DIE_MID_BODY_SENT, b'x');
            (bytes, Some(End::Reset))
        }
        Mode::Raw(bytes) => (bytes.clone(), idle_end),
        Mode::Upgrade if upgrade_requested(&head) => {
            let switch = format!(
                "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\
                 Upgrade: websocket\r\nSec-WebSocket-Accept: {WEBSOCKET_ACCEPT}\r\n\r\n"
            );
            if wire.stream.write_all(switch.as_bytes()).is_err() {
                return Next::Close(End::Drop);
            }
            return echo_until_close(wire);
        }
        Mode::Upgrade => (
            response(200, &tag, name.as_bytes(), head_only, close_requested),
            idle_end,
        ),
        Mode::Hang | Mode::ResetBeforeResponse | Mode::CloseBeforeResponse | Mode::Then(..) => {
            unreachable!("handled above")
        }
    };
    let next = match end {
        Some(end) => respond(wire, &bytes, true, end),
        None => respond(wire, &bytes, false, End::Fin),
    };
    if let (Next::KeepAlive, Some(late)) = (&next, late) {
        std::thread::sleep(LATE_DELAY);
        if wire.stream.write_all(&late).is_err() {
            return Next::Close(End::Drop);
        }
        inner.late_writes.fetch_add(1, Ordering::SeqCst);
    }
    next
}

/// Reads the body into the log entry at `index`; false if the connection failed.
fn read_recorded_body(inner: &Inner, wire: &mut Wire, framing: Framing, index: usize) -> bool {
    let body = wire.read_body(framing);
    let mut log = lock(&inner.log);
    log[index].body = body.decoded;
    log[index].raw_body = body.raw;
    body.error.is_none()
}

/// Appends everything that arrives (what is buffered first) to the body of
/// the log entry at `index`, until the peer closes or the socket fails.
fn record_until_close(inner: &Inner, wire: &mut Wire, index: usize) {
    loop {
        if !wire.buf.is_empty() {
            let mut log = lock(&inner.log);
            log[index].body.extend_from_slice(&wire.buf);
            log[index].raw_body.extend_from_slice(&wire.buf);
            wire.buf.clear();
        }
        match wire.fill() {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Writes back every byte that arrives (what is buffered first) until the
/// peer closes or the socket fails.
fn echo_until_close(wire: &mut Wire) -> Next {
    loop {
        if !wire.buf.is_empty() {
            if wire.stream.write_all(&wire.buf).is_err() {
                return Next::Close(End::Drop);
            }
            wire.buf.clear();
        }
        match wire.fill() {
            Ok(0) => return Next::Close(End::Fin),
            Ok(_) => {}
            Err(_) => return Next::Close(End::Drop),
        }
    }
}

/// Whether the request asks to switch protocols: an `Upgrade` field and
/// `Connection: upgrade`.
fn upgrade_requested(head: &RequestHead) -> bool {
    find_header(&head.headers, "upgrade").is_some()
        && has_token(&head.headers, "connection", "upgrade")
}

fn respond(wire: &mut Wire, bytes: &[u8], close: bool, end: End) -> Next {
    if wire.stream.write_all(bytes).is_err() {
        return Next::Close(End::Drop);
    }
    if close {
        Next::Close(end)
    } else {
        Next::KeepAlive
    }
}

fn bad_request(wire: &mut Wire, why: &str) -> Next {
    let response = response(400, &[], why.as_bytes(), false, true);
    respond(wire, &response, true, End::Fin)
}

/// Whether the connection may stay open after this request.
fn keep_alive_requested(head: &RequestHead) -> bool {
    if has_token(&head.headers, "connection", "close") {
        false
    } else if head.version == 0 {
        has_token(&head.headers, "connection", "keep-alive")
    } else {
        true
    }
}

/// A complete response with Content-Length (none for 1xx, 204 and 304).
fn response(
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
    head_only: bool,
    close: bool,
) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    let bodiless = (100..200).contains(&status) || status == 204 || status == 304;
    if !bodiless {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    if !bodiless && !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// 200 with body `name` in up to three chunks.
fn chunked_response(name: &str, head_only: bool, close: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 200 OK\r\nX-Backend: {name}\r\nTransfer-Encoding: chunked\r\n")
        .into_bytes();
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if head_only {
        return out;
    }
    let piece = name.len().div_ceil(3).max(1);
    for chunk in name.as_bytes().chunks(piece) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
