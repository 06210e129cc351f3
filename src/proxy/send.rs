//! The IO of one attempt, step by step, each step reporting what happened
//! as an `exchange::Event`: connecting, writing the head and the buffered
//! body in one gathered write, the `100 Continue` exchange for a client
//! that waits for one, streaming the rest of a body, and reading the
//! response head within `--response-timeout`. What to do about it is the
//! exchange machine's business.

use std::pin::pin;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use super::body::RequestBody;
use super::head::push_request_head;
use super::ClientConn;
use crate::exchange::{ClientFail, ConnectFail, Event, SendFail};
use crate::http::{parse_response, BodyProgress, RequestHead, ResponseHead};
use crate::stream::{
    connect, read_more, write_all, write_gather, write_gather_counted, ClientStream, Io, IoFail,
    Timer, WriteFail,
};
use crate::upstream::{TargetStream, Upstream};
use crate::worker::{Worker, RESPONSE_BUF};

/// Largest response head accepted from a target; 502 past it.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// How long a target may think before it answers an `Expect: 100-continue`
/// request; past it the balancer sends the `100 Continue` itself, as a client
/// would stop waiting (curl waits 1 s).
const CONTINUE_WAIT: Duration = Duration::from_secs(1);

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A new connection to `target`, within `--connect-timeout`. With a PROXY
/// `header` (a `proxy=v2` target), that goes first, in clear, before any
/// TLS handshake, and the connection is private to the client it names.
pub(super) async fn open(
    worker: &Worker,
    timer: &mut Timer<'_>,
    target: usize,
    header: Option<Bytes>,
) -> Result<Upstream, ConnectFail> {
    let Some((addr, tls)) = worker.target_dial(target) else {
        return Err(ConnectFail::Gone);
    };
    let until = worker.soon(worker.config().connect_timeout);
    let connected = timer.run(until, pin!(connect(addr))).await;
    let mut stream = match connected {
        Ok(stream) => stream,
        Err(IoFail::Refused) => return Err(ConnectFail::Refused),
        Err(IoFail::TimedOut) => return Err(ConnectFail::TimedOut),
        Err(_) => return Err(ConnectFail::Failed),
    };
    let private = header.is_some();
    if let Some(header) = header {
        // A few dozen bytes into an empty socket buffer: they go at once.
        let written = timer.run(until, pin!(write_all(&mut stream, header))).await;
        match written {
            Ok(()) => {}
            Err(IoFail::TimedOut) => return Err(ConnectFail::TimedOut),
            Err(_) => return Err(ConnectFail::Failed),
        }
    }
    let upstream = match private {
        true => Upstream::private,
        false => Upstream::new,
    };
    let Some(name) = tls else {
        return Ok(upstream(TargetStream::Plain(stream)));
    };
    // The handshake, within the same deadline: the target has seen no
    // request yet, whatever happens.
    let Some(backend) = worker.config().backend_tls.as_deref() else {
        return Err(ConnectFail::Failed);
    };
    // Boxed: inline, the handshake's future would make every exchange's
    // future (plain ones too) four times as large.
    let handshake = async { Ok(Box::pin(backend.connect(stream, name)).await) };
    let handshake = timer.run(until, pin!(handshake)).await;
    match handshake {
        Ok(Ok(tls)) => Ok(upstream(TargetStream::Tls(Box::new(tls)))),
        Ok(Err(fault)) => {
            log!(debug, "TLS handshake with target {addr} failed: {fault:?}");
            Err(ConnectFail::Failed)
        }
        Err(_) => Err(ConnectFail::TimedOut),
    }
}

/// Writes the request head and the buffered body (or the first part of a
/// streamed one). `NotSent` when not a byte went out.
pub(super) async fn send_head<S: ClientStream>(
    worker: &Worker,
    conn: &mut ClientConn<'_, S>,
    up: &mut Upstream,
    (head, req): (&Bytes, &RequestHead),
    body: &RequestBody,
) -> Result<(), SendFail> {
    let out = &mut conn.out;
    push_request_head(out, head, req, &conn.xff);
    out.push(body.first());
    let write = pin!(async { Ok(write_gather_counted(up.stream(), out).await) });
    let until = worker.soon(worker.config().idle_timeout);
    match conn.timer.run(until, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(WriteFail { partial: false, .. })) => Err(SendFail::NotSent),
        // Part of it, or all of it, may have reached the target.
        _ => Err(SendFail::NoResponse),
    }
}

/// Reading a response head on one connection: where it goes, by when, and
/// whether any byte came yet (a failure after one is an invalid response,
/// not a silent target).
pub(super) struct HeadReader<'a> {
    pub resp: &'a mut BytesMut,
    pub req: &'a RequestHead,
    pub until: Instant,
    pub got_any: &'a mut bool,
}

impl HeadReader<'_> {
    /// Reads until `resp` holds a final response head, dropping interim 1xx
    /// answers.
    pub(super) async fn read_final(
        &mut self,
        timer: &mut Timer<'_>,
        up: &mut Upstream,
    ) -> Result<ResponseHead, SendFail> {
        loop {
            let head = self.read(timer, up).await?;
            if !head.is_interim() {
                return Ok(head);
            }
            self.resp.advance(head.head_len);
        }
    }

    /// Reads until `resp` starts with a whole response head (interim or
    /// final), by the response deadline. Every head the request can get
    /// comes through here, so this is where a `101` that the request did not
    /// ask for is refused: relaying it would open a tunnel past every check.
    async fn read(
        &mut self,
        timer: &mut Timer<'_>,
        up: &mut Upstream,
    ) -> Result<ResponseHead, SendFail> {
        loop {
            if !self.resp.is_empty() {
                match parse_response(self.resp, self.req.is_head) {
                    Ok(Some(head)) if head.status == 101 && !self.req.upgrade => {
                        return Err(SendFail::Invalid)
                    }
                    Ok(Some(head)) => return Ok(head),
                    Ok(None) if self.resp.len() < MAX_RESPONSE_HEAD => {}
                    _ => return Err(SendFail::Invalid),
                }
            }
            let read = read_more(up.stream(), self.resp, RESPONSE_BUF / 4);
            let read = timer.run(self.until, pin!(read)).await;
            match read {
                Ok(_) => *self.got_any = true,
                Err(IoFail::TimedOut) => return Err(SendFail::TimedOut),
                Err(_) if !*self.got_any => return Err(SendFail::NoResponse),
                Err(_) => return Err(SendFail::Invalid),
            }
        }
    }

    /// For a client waiting for `100 Continue`: waits for the target's
    /// answer to the head. A 100 is relayed (`Ok(None)`); a final answer is
    /// returned (the body is never sent); silence past `CONTINUE_WAIT` gets
    /// the client a 100 from the balancer. Waiting uses a readiness poll,
    /// not a read, so that the deadline cannot lose bytes. `Err` is the
    /// event of a failure.
    pub(super) async fn await_continue<S: ClientStream>(
        &mut self,
        conn: &mut ClientConn<'_, S>,
        up: &mut Upstream,
        worker: &Worker,
    ) -> Result<Option<ResponseHead>, Event> {
        let wait = self.until.min(Instant::now() + CONTINUE_WAIT);
        let stream = up.stream();
        let readable = conn.timer.run(wait, pin!(stream.readable())).await;
        match readable {
            Err(IoFail::TimedOut) => {}
            Err(_) => return Err(Event::SendFailed(SendFail::NoResponse)),
            Ok(()) => loop {
                let head = self
                    .read(&mut conn.timer, up)
                    .await
                    .map_err(Event::SendFailed)?;
                if !head.is_interim() {
                    return Ok(Some(head));
                }
                self.resp.advance(head.head_len);
                if head.status == 100 {
                    break;
                }
            },
        }
        let until = worker.soon(worker.config().idle_timeout);
        match conn.send(Bytes::from_static(CONTINUE), until).await {
            Ok(()) => Ok(None),
            Err(_) => Err(Event::ClientFailed(ClientFail::Gone)),
        }
    }
}

/// Streams the rest of a body too large to buffer from the client to the
/// target.
pub(super) async fn pump<S: ClientStream>(
    conn: &mut ClientConn<'_, S>,
    up: &mut Upstream,
    rest: &mut BodyProgress,
    worker: &Worker,
) -> Event {
    let idle = worker.config().idle_timeout;
    loop {
        let piece = match conn.next_body_piece(rest, worker).await {
            Ok(Some(piece)) => piece,
            Ok(None) => return Event::Pumped,
            Err(fail) => return Event::ClientFailed(fail),
        };
        conn.out.push(piece);
        let write = write_gather(up.stream(), &mut conn.out);
        if conn
            .timer
            .run(worker.soon(idle), pin!(write))
            .await
            .is_err()
        {
            return Event::SendFailed(SendFail::Upstream);
        }
    }
}

/// Whether the whole response (head and body) is in `buf`.
pub(super) fn is_complete(head: &ResponseHead, buf: &[u8]) -> bool {
    if head.framing == crate::http::Framing::UntilClose {
        return false;
    }
    let mut progress = BodyProgress::new(head.framing);
    progress.advance(&buf[head.head_len..]).is_ok() && progress.is_done()
}
