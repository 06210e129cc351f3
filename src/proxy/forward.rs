//! One request's trip to the targets: pick a healthy target round robin, send
//! the request on a pooled or fresh connection, read the response head, and
//! retry on another target after a 500 or when the target provably saw
//! nothing; then relay the response.

use bytes::{Buf, Bytes, BytesMut};
use monoio::net::TcpStream;

use super::body::{ClientFail, RequestBody};
use super::head::push_request_head;
use super::relay::{relay, Relayed};
use super::{ClientConn, Next};
use crate::http::{parse_response, BodyProgress, Error, Framing, RequestHead, ResponseHead};
use crate::stream::{connect, deadline, read_more, write_gather, IoFail};
use crate::worker::{Worker, RESPONSE_BUF};

/// Largest response head accepted from a target; 502 past it.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// How one attempt on one target ended.
enum Attempt {
    /// The response went to the client (or the client left): done.
    Finished(Next),
    /// The target failed in a way that allows another target to be tried;
    /// the error is the answer if none is left.
    Retry(Error),
    /// Failed, and no other target may be tried: answer this error, and
    /// close the client connection when `close` is set.
    Fail(Error, bool),
}

/// Why sending a request and reading the response head failed.
enum SendFail {
    /// Nothing came back: the write failed, or the connection closed or
    /// reset before the first response byte.
    NothingBack,
    TimedOut,
    Invalid,
    /// The client failed while its body was being streamed.
    Client(ClientFail),
    /// The target failed while a streamed body was being sent.
    Upstream,
}

/// The state of one request across its attempts.
struct Exchange<'a> {
    worker: &'a Worker,
    req: RequestHead,
    head: Bytes,
    body: RequestBody,
    /// Part of a streamed body has gone to a target: it cannot be sent again.
    pumped: bool,
    /// Response bytes from the target (taken from the worker's spares).
    resp: BytesMut,
    /// A complete 500 answer kept while another target is tried, to be the
    /// answer if every other attempt fails too.
    last_500: Option<(ResponseHead, BytesMut)>,
}

/// Forwards one request and relays its answer.
pub async fn exchange(worker: &Worker, conn: &mut ClientConn, req: RequestHead) -> Next {
    let config = worker.config();
    let head = conn.buf.split_to(req.head_len).freeze();
    let body = match conn.take_body(&req, config).await {
        Ok(body) => body,
        Err(ClientFail::Answer(e)) => return Next::Reject(e),
        Err(ClientFail::Gone) => return Next::Close,
    };
    let mut ex = Exchange {
        worker,
        req,
        head,
        body,
        pumped: false,
        resp: worker.take_buffer(),
        last_500: None,
    };
    let next = ex.run(conn).await;
    worker.give_buffer(std::mem::take(&mut ex.resp));
    next
}

impl Exchange<'_> {
    fn replayable(&self) -> bool {
        !self.pumped
    }

    async fn run(&mut self, conn: &mut ClientConn) -> Next {
        let shared = self.worker.shared;
        let attempts = 1 + shared.config.retries;
        conn.tried.clear();
        let mut last_error = Error::NoHealthyTarget;
        while conn.tried.len() < attempts {
            let Some(target) = self.worker.rr.pick(&shared.health, &conn.tried) else {
                break;
            };
            conn.tried.push(target as u32);
            match self.attempt(conn, target).await {
                Attempt::Finished(next) => return next,
                Attempt::Retry(e) => last_error = e,
                Attempt::Fail(e, close) => return self.answer(conn, e, close).await,
            }
        }
        if let Some((head, mut buf)) = self.last_500.take() {
            let relayed = relay(conn, &self.req, head, &mut buf, None, self.worker).await;
            return relayed.next;
        }
        self.answer(conn, last_error, false).await
    }

    /// Answers an error the balancer makes itself. The connection closes
    /// when asked, when the error says so, or when part of the request body
    /// is still unread on the socket (it would be taken for the next request).
    async fn answer(&self, conn: &mut ClientConn, e: Error, close: bool) -> Next {
        let unread_body = match &self.body {
            RequestBody::Streamed { rest, .. } => !rest.is_done(),
            _ => false,
        };
        let keep_alive = self.req.keep_alive && !close && !unread_body && !e.closes_connection();
        let limit = self.worker.config().client_timeout;
        match conn.send(e.response(keep_alive), limit).await {
            Ok(()) if keep_alive => Next::KeepAlive,
            _ => Next::Close,
        }
    }

    async fn attempt(&mut self, conn: &mut ClientConn, target: usize) -> Attempt {
        let shared = self.worker.shared;
        let config = &shared.config;
        let pooled = self.worker.pool.borrow_mut().take(target);
        let mut reused = pooled.is_some();
        let mut stream = match pooled {
            Some(stream) => stream,
            None => match self.connect(target).await {
                Ok(stream) => stream,
                Err(e) => return e,
            },
        };
        let head = loop {
            match self.send_and_read_head(conn, &mut stream).await {
                Ok(head) => break head,
                // A kept-alive connection the target had closed: it saw
                // nothing, so send again on a fresh connection.
                Err(SendFail::NothingBack) if reused && self.replayable() => {
                    reused = false;
                    stream = match self.connect(target).await {
                        Ok(stream) => stream,
                        Err(e) => return e,
                    };
                }
                Err(SendFail::NothingBack) if self.replayable() => {
                    return Attempt::Retry(Error::TargetUnreachable)
                }
                Err(SendFail::NothingBack) => return Attempt::Fail(Error::TargetUnreachable, true),
                Err(SendFail::TimedOut) => {
                    return Attempt::Fail(Error::TargetTimeout, !self.replayable())
                }
                Err(SendFail::Invalid) => {
                    return Attempt::Fail(Error::BadResponse, !self.replayable())
                }
                Err(SendFail::Upstream) => return Attempt::Fail(Error::TargetFailed, true),
                Err(SendFail::Client(ClientFail::Answer(e))) => {
                    return Attempt::Finished(Next::Reject(e))
                }
                Err(SendFail::Client(ClientFail::Gone)) => return Attempt::Finished(Next::Close),
            }
        };

        if head.status == 500 {
            shared.degrade(target, "answered 500");
            let more = conn.tried.len() < 1 + config.retries
                && self.worker.rr.has_candidate(&shared.health, &conn.tried);
            if more && self.replayable() {
                // Close this connection rather than drain it; keep the 500
                // if it is whole, in case it has to be the answer after all.
                if is_complete(&head, &self.resp) {
                    let kept = self.resp.split();
                    self.last_500 = Some((head, kept));
                    self.resp.reserve(RESPONSE_BUF);
                }
                return Attempt::Retry(Error::AllTargetsFailed);
            }
        }
        self.last_500 = None;

        let relayed = relay(
            conn,
            &self.req,
            head,
            &mut self.resp,
            Some(&mut stream),
            self.worker,
        )
        .await;
        if relayed.outcome == Relayed::Reusable {
            self.worker.pool.borrow_mut().put(target, stream);
        }
        Attempt::Finished(relayed.next)
    }

    /// A fresh connection to `target`; a refusal or timeout marks it degraded.
    async fn connect(&self, target: usize) -> Result<TcpStream, Attempt> {
        let shared = self.worker.shared;
        let addr = shared.config.backends[target];
        match connect(addr, shared.config.connect_timeout).await {
            Ok(stream) => Ok(stream),
            Err(IoFail::Refused) => {
                shared.degrade(target, "connection refused");
                self.worker.pool.borrow_mut().clear(target);
                Err(Attempt::Retry(Error::TargetUnreachable))
            }
            Err(IoFail::TimedOut) => {
                shared.degrade(target, "connect timed out");
                Err(Attempt::Retry(Error::TargetTimeout))
            }
            Err(_) => Err(Attempt::Retry(Error::TargetUnreachable)),
        }
    }

    /// Sends the head and body, then reads up to a complete final response
    /// head (1xx interim responses are dropped), left at the start of `resp`.
    async fn send_and_read_head(
        &mut self,
        conn: &mut ClientConn,
        stream: &mut TcpStream,
    ) -> Result<ResponseHead, SendFail> {
        let config = &self.worker.shared.config;
        push_request_head(&mut conn.out, &self.head, &self.req, &conn.xff);
        conn.out.push(self.body.first());
        deadline(config.response_timeout, write_gather(stream, &mut conn.out))
            .await
            .map_err(|_| SendFail::NothingBack)?;

        if let RequestBody::Streamed { rest, .. } = &mut self.body {
            self.pumped = true;
            loop {
                let piece = match conn.next_body_piece(rest, config).await {
                    Ok(Some(piece)) => piece,
                    Ok(None) => break,
                    Err(e) => return Err(SendFail::Client(e)),
                };
                conn.out.push(piece);
                deadline(config.response_timeout, write_gather(stream, &mut conn.out))
                    .await
                    .map_err(|_| SendFail::Upstream)?;
            }
        }

        self.resp.clear();
        let mut got_any = false;
        loop {
            match deadline(
                config.response_timeout,
                read_more(stream, &mut self.resp, RESPONSE_BUF / 4),
            )
            .await
            {
                Ok(_) => got_any = true,
                Err(IoFail::TimedOut) => return Err(SendFail::TimedOut),
                Err(_) if !got_any => return Err(SendFail::NothingBack),
                Err(_) => return Err(SendFail::Invalid),
            }
            loop {
                match parse_response(&self.resp, self.req.is_head) {
                    Ok(Some(head)) if head.is_interim() => self.resp.advance(head.head_len),
                    Ok(Some(head)) if head.status == 101 => return Err(SendFail::Invalid),
                    Ok(Some(head)) => return Ok(head),
                    Ok(None) if self.resp.len() < MAX_RESPONSE_HEAD => break,
                    _ => return Err(SendFail::Invalid),
                }
            }
        }
    }
}

/// Whether the whole response (head and body) is in `buf`.
fn is_complete(head: &ResponseHead, buf: &[u8]) -> bool {
    if head.framing == Framing::UntilClose {
        return false;
    }
    let mut progress = BodyProgress::new(head.framing);
    progress.advance(&buf[head.head_len..]).is_ok() && progress.is_done()
}
