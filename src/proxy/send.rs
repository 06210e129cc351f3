//! Sending a request on one upstream connection and reading the answer's
//! head: the head and the buffered body in one gathered write, a streamed
//! body after it, the `100 Continue` exchange for a client that waits for
//! one, and the response head within `--response-timeout`.

use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use monoio::net::TcpStream;

use super::body::{ClientFail, RequestBody};
use super::forward::Exchange;
use super::head::push_request_head;
use super::ClientConn;
use crate::http::{parse_response, ResponseHead};
use crate::stream::{read_more, write_gather, write_gather_counted, IoFail, WriteFail};
use crate::worker::RESPONSE_BUF;

/// Largest response head accepted from a target; 502 past it.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// How long a target may think before it answers an `Expect: 100-continue`
/// request; past it the balancer sends the `100 Continue` itself, as a client
/// would stop waiting (curl waits 1 s).
const CONTINUE_WAIT: Duration = Duration::from_secs(1);

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Why sending a request and reading the response head failed.
pub(super) enum SendFail {
    /// Not a byte of the request was written: the connection had been
    /// closed or reset. The target saw nothing of it.
    NotSent,
    /// The request went out, and the connection closed or reset before the
    /// first response byte: the target may have acted on it.
    NoResponse,
    /// No response head within `--response-timeout`.
    TimedOut,
    /// The response head is not valid HTTP/1.1 (or an unasked-for 101).
    Invalid,
    /// The client failed while its body was being streamed.
    Client(ClientFail),
    /// The target failed while a streamed body was being sent.
    Upstream,
}

impl Exchange<'_> {
    /// Sends the head and body, then reads up to the final response head,
    /// left at the start of `resp`. 1xx interim answers are dropped, but a
    /// `100 Continue` is relayed to a client that waits for one.
    pub(super) async fn send_and_read_head(
        &mut self,
        conn: &mut ClientConn<'_>,
        stream: &mut TcpStream,
    ) -> Result<ResponseHead, SendFail> {
        let config = &self.worker.shared.config;
        push_request_head(&mut conn.out, &self.head, &self.req, &conn.xff);
        conn.out.push(self.body.first());
        let write = async { Ok(write_gather_counted(stream, &mut conn.out).await) };
        match conn
            .timer
            .run(self.worker.soon(config.idle_timeout), write)
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(WriteFail { partial: false, .. })) => return Err(SendFail::NotSent),
            // Part of it, or all of it, may have reached the target.
            _ => return Err(SendFail::NoResponse),
        }
        let until = self.worker.soon(config.response_timeout);
        self.resp.clear();
        let mut got_any = false;

        if matches!(self.body, RequestBody::Streamed { .. }) {
            if self.req.expect_continue && !self.continued {
                if let Some(head) = self
                    .await_continue(conn, stream, until, &mut got_any)
                    .await?
                {
                    // A final answer before the body: it is not sent.
                    return Ok(head);
                }
            }
            self.pump(conn, stream).await?;
        }

        loop {
            let head = self.read_head(conn, stream, until, &mut got_any).await?;
            if !head.is_interim() {
                return Ok(head);
            }
            self.resp.advance(head.head_len);
        }
    }

    /// For a client waiting for `100 Continue`: waits for the target's
    /// answer to the head. A 100 is relayed; a final answer is returned (the
    /// body is never sent); silence past `CONTINUE_WAIT` gets the client a
    /// 100 from the balancer. Waiting uses a readiness poll, not a read, so
    /// that the deadline cannot lose bytes.
    async fn await_continue(
        &mut self,
        conn: &mut ClientConn<'_>,
        stream: &mut TcpStream,
        until: Instant,
        got_any: &mut bool,
    ) -> Result<Option<ResponseHead>, SendFail> {
        let wait = until.min(Instant::now() + CONTINUE_WAIT);
        let readable = async { stream.readable(true).await.map_err(IoFail::from) };
        match conn.timer.run(wait, readable).await {
            Err(IoFail::TimedOut) => {}
            Err(_) => return Err(SendFail::NoResponse),
            Ok(()) => loop {
                let head = self.read_head(conn, stream, until, got_any).await?;
                if !head.is_interim() {
                    return Ok(Some(head));
                }
                self.resp.advance(head.head_len);
                if head.status == 100 {
                    break;
                }
            },
        }
        let until = self.worker.soon(self.worker.config().idle_timeout);
        conn.send(Bytes::from_static(CONTINUE), until)
            .await
            .map_err(|_| SendFail::Client(ClientFail::Gone))?;
        self.continued = true;
        Ok(None)
    }

    /// Streams the rest of a body too large to buffer from the client to
    /// the target. From here on the request cannot be sent again.
    async fn pump(
        &mut self,
        conn: &mut ClientConn<'_>,
        stream: &mut TcpStream,
    ) -> Result<(), SendFail> {
        let config = &self.worker.shared.config;
        let RequestBody::Streamed { rest, .. } = &mut self.body else {
            return Ok(());
        };
        self.pumped = true;
        while let Some(piece) = conn
            .next_body_piece(rest, self.worker)
            .await
            .map_err(SendFail::Client)?
        {
            conn.out.push(piece);
            let write = write_gather(stream, &mut conn.out);
            conn.timer
                .run(self.worker.soon(config.idle_timeout), write)
                .await
                .map_err(|_| SendFail::Upstream)?;
        }
        Ok(())
    }

    /// Reads until `resp` starts with a whole response head (interim or
    /// final), by the response deadline. Every head the request can get
    /// comes through here, so this is where a `101` that the request did not
    /// ask for is refused: relaying it would open a tunnel past every check.
    async fn read_head(
        &mut self,
        conn: &mut ClientConn<'_>,
        stream: &mut TcpStream,
        until: Instant,
        got_any: &mut bool,
    ) -> Result<ResponseHead, SendFail> {
        loop {
            if !self.resp.is_empty() {
                match parse_response(&self.resp, self.req.is_head) {
                    Ok(Some(head)) if head.status == 101 && !self.req.upgrade => {
                        return Err(SendFail::Invalid)
                    }
                    Ok(Some(head)) => return Ok(head),
                    Ok(None) if self.resp.len() < MAX_RESPONSE_HEAD => {}
                    _ => return Err(SendFail::Invalid),
                }
            }
            let read = read_more(stream, &mut self.resp, RESPONSE_BUF / 4);
            match conn.timer.run(until, read).await {
                Ok(_) => *got_any = true,
                Err(IoFail::TimedOut) => return Err(SendFail::TimedOut),
                Err(_) if !*got_any => return Err(SendFail::NoResponse),
                Err(_) => return Err(SendFail::Invalid),
            }
        }
    }
}
