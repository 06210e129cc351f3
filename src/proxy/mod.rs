//! One client connection: read a request head, take its body, forward it
//! (with retries) and relay the answer; repeat while the connection is kept
//! alive. Pipelined requests wait in the buffer and are answered in order.

mod body;
mod forward;
mod head;
mod relay;
mod send;
mod tunnel;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use monoio::io::AsyncWriteRent;
use monoio::net::TcpStream;

use crate::http::{parse_request, Error, RequestHead};
use crate::stream::{deadline, read_more, write_all, Gather, IoFail};
use crate::worker::{Admitted, Worker};

pub use head::ForwardedFor;

/// Initial size of a client connection's read buffer. Small, because a
/// pending read pins it for as long as the connection is idle; it grows
/// only for a large head or a buffered body.
const CLIENT_BUF: usize = 4 * 1024;

/// A buffer grown past this (for a body) is replaced by a small one once
/// the connection is idle again.
const LARGE_BUF: usize = 256 * 1024;

/// Most bytes read and thrown away while closing after an error, so that
/// the client reads the answer rather than a reset.
const LINGER_BYTES: usize = 256 * 1024;

/// Longest time spent answering an error and draining before closing.
const LINGER: Duration = Duration::from_secs(2);

/// Whether the client connection carries on after an exchange.
pub enum Next {
    KeepAlive,
    Close,
    /// The client sent something wrong: answer this, then close.
    Reject(Error),
    /// The target switched protocols: tunnel bytes to this connection.
    Tunnel(TcpStream),
}

/// The client side of a connection and the buffers it reuses.
pub struct ClientConn {
    stream: TcpStream,
    /// Bytes received and not yet forwarded: a head, body bytes, or the next
    /// pipelined requests.
    buf: BytesMut,
    /// Parts of the next gathered write (heads as slices of their buffers).
    out: Gather,
    xff: ForwardedFor,
    /// Targets the current request already went to.
    tried: Vec<u32>,
}

/// Answers a connection over `--max-connections` with a 503 and closes it.
pub async fn refuse(mut stream: TcpStream) {
    let answer = Error::TooManyConnections.response(false);
    let _ = deadline(LINGER, write_all(&mut stream, answer)).await;
}

/// Serves one client connection until it closes.
pub async fn serve(admitted: Admitted, stream: TcpStream, peer: SocketAddr) {
    let worker = admitted.worker();
    let mut conn = ClientConn {
        stream,
        buf: BytesMut::with_capacity(CLIENT_BUF),
        out: Gather::default(),
        xff: ForwardedFor::new(peer.ip()),
        tried: Vec::new(),
    };
    loop {
        let req = match conn.read_head(worker).await {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(e) => return conn.fail(e).await,
        };
        match forward::exchange(worker, &mut conn, req).await {
            Next::KeepAlive => conn.shrink_buffer(),
            Next::Close => return,
            Next::Reject(e) => return conn.fail(e).await,
            Next::Tunnel(target) => {
                // Boxed: a rare state that would otherwise make every
                // connection's task larger.
                let idle = worker.config().idle_timeout;
                return Box::pin(tunnel::run(conn.stream, conn.buf, target, idle)).await;
            }
        }
    }
}

impl ClientConn {
    /// Reads until a whole request head is in the buffer. `Ok(None)`: the
    /// client closed, or stayed idle past the keep-alive timeout.
    async fn read_head(&mut self, worker: &Worker) -> Result<Option<RequestHead>, Error> {
        let config = worker.config();
        let mut started: Option<Instant> = None;
        loop {
            if !self.buf.is_empty() {
                if let Some(req) = parse_request(&self.buf, config.max_header_bytes)? {
                    return Ok(Some(req));
                }
            }
            // Idle between requests, the keep-alive timeout applies; once a
            // head has begun, it must be complete within the header timeout.
            let limit = if self.buf.is_empty() && started.is_none() {
                config.idle_timeout
            } else {
                let t0 = *started.get_or_insert_with(Instant::now);
                match config.client_header_timeout.checked_sub(t0.elapsed()) {
                    Some(left) => left,
                    None => return Err(Error::RequestTimeout),
                }
            };
            match deadline(limit, read_more(&mut self.stream, &mut self.buf, 1024)).await {
                Ok(_) => {}
                // A timed-out read takes the buffer with it: whether a head
                // had begun is known from `started`, not from the buffer.
                Err(IoFail::TimedOut) if started.is_some() => return Err(Error::RequestTimeout),
                Err(_) => return Ok(None),
            }
        }
    }

    /// Writes `bytes` to the client within the client timeout.
    async fn send(&mut self, bytes: Bytes, limit: Duration) -> Result<(), IoFail> {
        deadline(limit, write_all(&mut self.stream, bytes)).await
    }

    /// Answers an error and closes the connection, reading and discarding
    /// for a while what the client still sends so that it sees the answer
    /// rather than a reset (a lingering close, as nginx does).
    #[cold]
    async fn fail(mut self, e: Error) {
        if self.send(e.response(false), LINGER).await.is_err() {
            return;
        }
        let _ = self.stream.shutdown().await;
        let until = Instant::now() + LINGER;
        let mut drained = 0;
        while drained < LINGER_BYTES {
            let Some(left) = until.checked_duration_since(Instant::now()) else {
                break;
            };
            self.buf.clear();
            match deadline(left, read_more(&mut self.stream, &mut self.buf, CLIENT_BUF)).await {
                Ok(n) => drained += n,
                Err(_) => break,
            }
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
