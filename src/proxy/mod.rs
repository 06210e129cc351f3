//! One client connection: read a request head, take its body, forward it
//! (with retries) and relay the answer; repeat while the connection is kept
//! alive. Pipelined requests wait in the buffer and are answered in order.

mod body;
mod forward;
mod head;
mod park;
mod private;
mod relay;
mod send;
mod tunnel;

use std::cell::RefCell;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use monoio::io::Canceller;
use monoio::net::TcpStream;

use crate::access_log::Entry;
use crate::exchange::Answer;
use crate::http::{parse_request, RequestHead};
use crate::proxy_protocol;
use crate::stream::{
    deadline, read_more, write_all, write_gather, ClientStream, Gather, IoFail, Timer,
};
use crate::tls::{FrontTls, TlsStream};
use crate::upstream::TargetStream;
use crate::worker::{Admitted, Scratch, Worker, CLIENT_BUF};

pub use head::{push_request_head, ForwardedFor};
pub use park::Connection;
use private::Private;

/// A buffer grown past this (for a body) is replaced by a small one once
/// the connection is idle again.
const LARGE_BUF: usize = 256 * 1024;

/// Most bytes read and thrown away while closing after an error, so that
/// the client reads the answer rather than a reset.
const LINGER_BYTES: usize = 256 * 1024;

/// How long a kept-alive client connection waits for its next request in
/// its busy spell, with its read buffer; after that it is parked: the spell's
/// slot, buffer and scratch go back to the worker and the connection's
/// small task waits for its socket to be readable, so that idle connections
/// cost hundreds of bytes, not kilobytes. Busy connections never park.
/// Short, because parking costs no CPU that the referee can see (5, 20 and
/// 200 ms measured the same) while every connection inside the delay holds
/// a slot and a buffer, which a burst of new connections leaves spare.
pub const PARK_AFTER: Duration = Duration::from_millis(5);

/// Longest time spent answering an error and draining before closing.
const LINGER: Duration = Duration::from_secs(2);

/// Whether the client connection carries on after an exchange.
pub enum Next {
    KeepAlive,
    Close,
    /// The client sent something wrong: answer this, then close.
    Reject(Answer),
    /// The target switched protocols: tunnel bytes to this connection.
    Tunnel(TargetStream),
}

/// The client side of a connection (plain TCP or TLS: `S`) and the buffers
/// it reuses.
pub struct ClientConn<'t, S> {
    stream: S,
    /// Bytes received and not yet forwarded: a head, body bytes, or the next
    /// pipelined requests.
    buf: BytesMut,
    /// Parts of the task's next gathered write, to whichever side it
    /// writes next (a request head and body to the target, a response head
    /// and body to the client), as slices of the buffers they were read
    /// into. Taken from the worker's `Scratch` for a busy spell and given
    /// back when it parks, so that its vectors are allocated once; `timer`
    /// is one per spell.
    out: Gather,
    xff: ForwardedFor,
    /// The list of tried targets that each request's exchange borrows, so
    /// that it is allocated once per connection.
    tried: Vec<u32>,
    /// Cancels the read that waits for the next request, to park the
    /// connection without losing what that read may have received (from
    /// the worker's `Scratch`, like `out`).
    canceller: Canceller,
    /// The deadline of the task's operation in progress, on either side
    /// (one pinned timer per task: a timer per operation would allocate).
    timer: Timer<'t>,
    /// The client's address (the TCP peer, or the one its PROXY header
    /// named), for the access log and the PROXY header sent on; its port
    /// apart (a `SocketAddr` would take 16 bytes more in every task).
    peer: IpAddr,
    peer_port: u16,
    /// Its idle connection to a `proxy=v2` target, kept for its next
    /// request there.
    private: Private,
    /// Bytes written to the client for the current request.
    sent: u64,
    /// When the current request's body is due (`--client-body-timeout`
    /// from its first read).
    body_by: Option<Instant>,
    /// Bytes of `--max-replay-memory` the current request's buffered body
    /// holds, given back when the exchange ends.
    replay_charge: usize,
    /// Until the connection's first request head is in: its deadline,
    /// `--client-header-timeout` from the accept (a connection that never
    /// sends a byte is not kept for the idle timeout).
    first_head_by: Option<Instant>,
}

/// What came of waiting for a request head.
enum Head {
    Request(RequestHead),
    /// Idle for `PARK_AFTER`: end the busy spell and wait parked
    /// (`park::Connection`), at most this much longer.
    Park(Duration),
    /// The client closed, or stayed idle past `--idle-timeout`.
    Closed,
}

/// What a client connection keeps for its whole life, busy or parked.
pub struct Session<S> {
    admitted: Admitted,
    stream: S,
    peer: SocketAddr,
    /// The deadline of its first request head, until that has come.
    first_head_by: Option<Instant>,
    private: Private,
}

impl<S: ClientStream> Session<S> {
    fn new(admitted: Admitted, stream: S, peer: SocketAddr, first_head_by: Instant) -> Session<S> {
        Session {
            admitted,
            stream,
            peer,
            first_head_by: Some(first_head_by),
            private: Private::default(),
        }
    }
}

/// The future of a connection's busy spell ([`serve_from`]): it ends when
/// the connection closes (`None`) or goes idle long enough to park.
pub trait Busy<S>: Future<Output = Option<(Session<S>, Duration)>> {}
impl<S, F: Future<Output = Option<(Session<S>, Duration)>>> Busy<S> for F {}

/// Most busy-spell slots a pool keeps spare (each as large as the busiest
/// state of a connection: a few kilobytes).
const SPARE_SLOTS: usize = 1024;

/// Memory for connections' busy spells, reused: a connection runs in one
/// task for its whole life, and that task is small, because its busy spell
/// (the large future that reads requests and forwards them) runs in a slot
/// taken from here, which goes back when it parks. So parking and waking
/// neither spawns a task nor allocates. One pool per stream type and
/// accept loop; `F` is the future of [`serve_from`] for `S`.
pub struct Slots<S, F> {
    free: RefCell<Vec<Pin<Box<Option<F>>>>>,
    busy: fn(Session<S>, BytesMut) -> F,
}

impl<S, F> Slots<S, F> {
    /// A slot running a busy spell of `session`, with `buf`.
    fn start(&self, session: Session<S>, buf: BytesMut) -> Pin<Box<Option<F>>> {
        let mut slot = self
            .free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Box::pin(None));
        slot.set(Some((self.busy)(session, buf)));
        slot
    }

    /// Gives back an empty slot.
    fn give(&self, slot: Pin<Box<Option<F>>>) {
        let mut free = self.free.borrow_mut();
        if free.len() < SPARE_SLOTS {
            free.push(slot);
        }
    }
}

/// The slots for plain connections.
pub fn plain_slots() -> Rc<Slots<TcpStream, impl Busy<TcpStream>>> {
    Rc::new(Slots {
        free: RefCell::new(Vec::new()),
        busy: serve_from::<TcpStream>,
    })
}

/// The slots for TLS connections.
pub fn tls_slots() -> Rc<Slots<TlsStream, impl Busy<TlsStream>>> {
    Rc::new(Slots {
        free: RefCell::new(Vec::new()),
        busy: serve_from::<TlsStream>,
    })
}

/// Answers a connection over `--max-connections` with a 503 and closes it.
pub async fn refuse(mut stream: TcpStream) {
    let answer = Answer::TooManyConnections.response(false);
    let _ = deadline(LINGER, write_all(&mut stream, answer)).await;
}

/// The task of a client connection just accepted, until it closes. With
/// `--proxy-protocol`, its PROXY header comes first (by the header
/// deadline), and the client it names is the connection's peer.
pub fn serve<F: Busy<TcpStream>>(
    slots: Rc<Slots<TcpStream, F>>,
    admitted: Admitted,
    mut stream: TcpStream,
    peer: SocketAddr,
) -> Connection<TcpStream, F> {
    let worker = admitted.worker().clone();
    let first_head_by = worker.soon(worker.config().client_header_timeout);
    let mut buf = worker.client_buffers.take();
    if !worker.config().proxy_protocol {
        let session = Session::new(admitted, stream, peer, first_head_by);
        return Connection::busy(slots, session, buf);
    }
    Connection::opening(
        slots,
        Box::pin(async move {
            let Some(peer) =
                proxy_header(&worker, &mut stream, &mut buf, peer, first_head_by).await
            else {
                worker.client_buffers.give(buf);
                return None;
            };
            Some((Session::new(admitted, stream, peer, first_head_by), buf))
        }),
    )
}

/// The task of a client connection just accepted on the TLS port: its
/// PROXY header if `--proxy-protocol`, then the handshake, both by the
/// header deadline; then HTTP as on the plain port.
pub fn serve_tls<F: Busy<TlsStream>>(
    slots: Rc<Slots<TlsStream, F>>,
    admitted: Admitted,
    stream: TcpStream,
    peer: SocketAddr,
) -> Connection<TlsStream, F> {
    Connection::opening(slots, Box::pin(open_tls(admitted, stream, peer)))
}

async fn open_tls(
    admitted: Admitted,
    mut stream: TcpStream,
    peer: SocketAddr,
) -> Option<(Session<TlsStream>, BytesMut)> {
    let worker = admitted.worker().clone();
    let front = worker.config().tls.as_deref()?;
    let first_head_by = worker.soon(worker.config().client_header_timeout);
    let mut early = BytesMut::new();
    let peer = proxy_header(&worker, &mut stream, &mut early, peer, first_head_by).await?;
    let tls = match handshake(front, stream, early, first_head_by).await {
        Ok(tls) => tls,
        Err(reason) => {
            log!(
                debug,
                "TLS handshake with {peer} failed: {}",
                reason.as_str()
            );
            worker.count_tls_failure(reason);
            return None;
        }
    };
    worker.count_tls_handshake(tls.session().handshake_kind());
    let buf = worker.client_buffers.take();
    Some((Session::new(admitted, tls, peer, first_head_by), buf))
}

/// The handshake by `until`.
async fn handshake(
    front: &FrontTls,
    stream: TcpStream,
    early: BytesMut,
    until: Instant,
) -> Result<crate::tls::TlsStream, crate::tls::HandshakeFailure> {
    let left = until.saturating_duration_since(Instant::now());
    match monoio::time::timeout(left, front.accept(stream, early)).await {
        Ok(done) => done,
        Err(_) => Err(crate::tls::HandshakeFailure::Timeout),
    }
}

/// With `--proxy-protocol`, reads the connection's PROXY header into `buf`
/// (what follows it stays there) and returns the client it names;
/// `None` when the connection must close.
async fn proxy_header(
    worker: &Worker,
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    peer: SocketAddr,
    until: Instant,
) -> Option<SocketAddr> {
    if !worker.config().proxy_protocol {
        return Some(peer);
    }
    match read_proxy_header(stream, buf, until).await {
        Some(header) => {
            buf.advance(header.len);
            Some(header.source.unwrap_or(peer))
        }
        None => {
            worker.count_proxy_header_refused();
            None
        }
    }
}

/// Reads the PROXY protocol header into `buf` by `until`; `None` (close the
/// connection, without an answer: the sender is not a client) when it is
/// invalid, late or cut short.
async fn read_proxy_header(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    until: Instant,
) -> Option<proxy_protocol::Header> {
    loop {
        match proxy_protocol::parse(buf) {
            Ok(Some(header)) => return Some(header),
            Ok(None) => {}
            Err(_) => return None,
        }
        let left = until.saturating_duration_since(Instant::now());
        deadline(left, read_more(stream, buf, 256)).await.ok()?;
    }
}

/// Serves a connection whose first bytes (after a PROXY header or a
/// handshake) are in `buf`, if any, until it closes
/// (`None`) or has been idle for `PARK_AFTER`: then its session is given
/// back, with how much longer it may stay idle, to wait parked.
async fn serve_from<S: ClientStream>(
    session: Session<S>,
    buf: BytesMut,
) -> Option<(Session<S>, Duration)> {
    let Session {
        admitted,
        stream,
        peer,
        first_head_by,
        private,
    } = session;
    let worker = admitted.worker().clone();
    let scratch = worker.scratch.take();
    let mut timer = std::pin::pin!(Timer::unset());
    let mut conn = ClientConn {
        stream,
        buf,
        out: scratch.out,
        xff: ForwardedFor::write(scratch.forwarded, peer.ip(), S::TLS),
        tried: scratch.tried,
        canceller: scratch.canceller,
        timer: Timer::new(timer.as_mut()),
        peer: peer.ip(),
        peer_port: peer.port(),
        private,
        sent: 0,
        body_by: None,
        replay_charge: 0,
        first_head_by,
    };
    loop {
        let req = match conn.read_head(&worker).await {
            Ok(Head::Request(req)) => req,
            Ok(Head::Closed) => return None,
            // A draining worker closes idle connections instead.
            Ok(Head::Park(_)) if worker.draining() => return None,
            Ok(Head::Park(wait)) => {
                worker.client_buffers.give(conn.buf);
                let (mut out, mut tried) = (conn.out, conn.tried);
                out.clear();
                tried.clear();
                worker.scratch.give(Scratch {
                    out,
                    tried,
                    canceller: conn.canceller,
                    forwarded: conn.xff.into_buffer(),
                });
                let session = Session {
                    admitted,
                    stream: conn.stream,
                    peer,
                    first_head_by: conn.first_head_by,
                    private: conn.private,
                };
                return Some((session, wait));
            }
            Err(e) => {
                conn.fail(e, &worker).await;
                return None;
            }
        };
        match forward::exchange(&worker, &mut conn, req).await {
            Next::KeepAlive => conn.shrink_buffer(),
            // Requests pipelined behind this one were read and will not be
            // answered: close gently, or the reset that unread data causes
            // could destroy the answer before the client reads it.
            Next::Close if !conn.buf.is_empty() => {
                conn.linger().await;
                return None;
            }
            Next::Close => {
                conn.goodbye().await;
                return None;
            }
            Next::Reject(e) => {
                conn.fail(e, &worker).await;
                return None;
            }
            Next::Tunnel(target) => {
                // Boxed: a rare state that would otherwise make every
                // connection's task larger.
                let idle = worker.config().idle_timeout;
                match target {
                    TargetStream::Plain(target) => {
                        Box::pin(tunnel::run(conn.stream, conn.buf, target, idle)).await
                    }
                    TargetStream::Tls(target) => {
                        Box::pin(tunnel::run(conn.stream, conn.buf, *target, idle)).await
                    }
                };
                return None;
            }
        }
    }
}

impl<S: ClientStream> ClientConn<'_, S> {
    /// Reads until a whole request head is in the buffer.
    async fn read_head(&mut self, worker: &Worker) -> Result<Head, Answer> {
        let config = worker.config();
        let mut started: Option<Instant> = None;
        loop {
            if !self.buf.is_empty() {
                if let Some(req) = parse_request(&self.buf, config.max_header_bytes)? {
                    self.first_head_by = None;
                    return Ok(Head::Request(req));
                }
            } else if started.is_none() {
                // Between requests: wait for the next one; for the first,
                // only until its head is due.
                let limit = match self.first_head_by {
                    Some(by) => by.saturating_duration_since(Instant::now()),
                    None => config.idle_timeout,
                };
                match self.wait_for_request(limit).await {
                    Some(Head::Request(_)) | None => continue,
                    Some(waited) => return Ok(waited),
                }
            }
            // Once a head has begun, it must be complete within the header
            // timeout (the first one, within it from the accept).
            let t0 = *started.get_or_insert_with(Instant::now);
            let until = self
                .first_head_by
                .unwrap_or(t0 + config.client_header_timeout);
            let read = read_more(&mut self.stream, &mut self.buf, 1024);
            if let Err(e) = self.timer.run(until, pin!(read)).await {
                // A timed-out read takes the buffer with it; whether a head
                // had begun is known from `started`, not from the buffer.
                return match e {
                    IoFail::TimedOut => Err(Answer::RequestTimeout),
                    _ => Ok(Head::Closed),
                };
            }
        }
    }

    /// Waits for the first bytes of the next request with a read into the
    /// buffer, for at most `PARK_AFTER` (or `limit`, if shorter). `None`
    /// when bytes arrived; otherwise `Park` (with what is left of `limit`)
    /// or `Closed`. The read is cancelled, not dropped, when time is up:
    /// bytes that arrived at that moment are kept.
    async fn wait_for_request(&mut self, limit: Duration) -> Option<Head> {
        if self.buf.capacity() < 1024 {
            self.buf.reserve(CLIENT_BUF);
        }
        let owned = std::mem::take(&mut self.buf);
        let read = self.stream.read_cancelable(owned, self.canceller.handle());
        let mut read = pin!(read);
        let until = Instant::now() + PARK_AFTER.min(limit);
        let waited = self
            .timer
            .run(until, pin!(async { Ok((&mut read).await) }))
            .await;
        let (res, buf) = match waited {
            Ok(done) => done,
            Err(_) => {
                self.canceller.cancel_ops();
                let done = (&mut read).await;
                // The read has ended: the canceller is reset in place.
                self.canceller.renew();
                done
            }
        };
        self.buf = buf;
        match res {
            Ok(0) => Some(Head::Closed),
            Ok(_) => None,
            Err(e) if e.raw_os_error() == Some(libc::ECANCELED) && limit > PARK_AFTER => {
                Some(Head::Park(limit - PARK_AFTER))
            }
            Err(_) => Some(Head::Closed),
        }
    }

    /// Writes what is gathered in `out` to the client by `until`, counting
    /// it as sent.
    async fn send_out(&mut self, until: Instant) -> Result<(), IoFail> {
        self.sent += self.out.len() as u64;
        let write = write_gather(&mut self.stream, &mut self.out);
        self.timer.run(until, pin!(write)).await
    }

    /// Writes `bytes` to the client by `until`.
    async fn send(&mut self, bytes: Bytes, until: Instant) -> Result<(), IoFail> {
        self.sent += bytes.len() as u64;
        let write = write_all(&mut self.stream, bytes);
        self.timer.run(until, pin!(write)).await
    }

    /// Answers an error and closes the connection, reading and discarding
    /// for a while what the client still sends so that it sees the answer
    /// rather than a reset (a lingering close, as nginx does).
    #[cold]
    async fn fail(mut self, e: Answer, worker: &Worker) {
        let until = Instant::now() + LINGER;
        let answer = e.response(false);
        if let Some(log) = worker.access_log() {
            log.record(&Entry {
                client: self.peer,
                request_line: None,
                status: e.status(),
                target: None,
                attempts: 0,
                micros: 0,
                bytes: answer.len() as u64,
            });
        }
        if self.send(answer, until).await.is_err() {
            return;
        }
        self.linger().await;
    }

    /// Closes the connection gently: shuts down writing, then reads and
    /// throws away what the client still sends, for a while, so that it
    /// reads what it was sent rather than a reset (as nginx does).
    async fn linger(mut self) {
        let until = Instant::now() + LINGER;
        self.stream.shutdown().await;
        let mut drained = 0;
        while drained < LINGER_BYTES {
            self.buf.clear();
            let read = read_more(&mut self.stream, &mut self.buf, CLIENT_BUF);
            let read = self.timer.run(until, pin!(read)).await;
            match read {
                Ok(n) => drained += n,
                Err(_) => break,
            }
        }
    }

    /// Closes after a response: TLS says `close_notify` first (within
    /// `LINGER`).
    async fn goodbye(mut self) {
        if S::TLS {
            let until = Instant::now() + LINGER;
            let bye = async {
                self.stream.goodbye().await;
                Ok(())
            };
            let _ = self.timer.run(until, pin!(bye)).await;
        }
    }

    /// After a large body, gives back the grown buffer: idle connections
    /// keep only a small one.
    fn shrink_buffer(&mut self) {
        if self.buf.capacity() > LARGE_BUF && self.buf.len() <= CLIENT_BUF {
            let mut small = BytesMut::with_capacity(CLIENT_BUF);
            small.extend_from_slice(&self.buf);
            self.buf = small;
        }
    }
}
