//! Request bodies: buffered whole (up to `--max-replay-body`) so that they
//! can be sent again to another target, or else streamed through.

use std::pin::pin;

use bytes::Bytes;

use super::ClientConn;
use crate::exchange::{Answer, ClientFail};
use crate::http::{BodyProgress, Error, Framing, RequestHead};
use crate::stream::{read_more, ClientStream, IoFail};
use crate::worker::Worker;

/// Reads for a streamed body ask for at least this much room.
const STREAM_READ: usize = 16 * 1024;

/// A request body, raw (chunk framing included), as far as it was read.
pub enum RequestBody {
    /// No body.
    Empty,
    /// The whole body: it can be replayed.
    Whole(Bytes),
    /// The first part of a body too large to buffer (or none yet, when the
    /// client waits for `100 Continue`); the rest is still on the client
    /// socket and is streamed to one target only.
    Streamed { first: Bytes, rest: BodyProgress },
}

impl RequestBody {
    /// Whether part of the body is still on the client socket.
    pub fn unread(&self) -> bool {
        matches!(self, RequestBody::Streamed { rest, .. } if !rest.is_done())
    }

    /// The bytes to send right after the head.
    pub fn first(&self) -> Bytes {
        match self {
            RequestBody::Empty => Bytes::new(),
            RequestBody::Whole(b) | RequestBody::Streamed { first: b, .. } => b.clone(),
        }
    }
}

impl From<IoFail> for ClientFail {
    fn from(e: IoFail) -> ClientFail {
        match e {
            IoFail::TimedOut => ClientFail::Answer(Answer::RequestTimeout),
            _ => ClientFail::Gone,
        }
    }
}

impl<S: ClientStream> ClientConn<'_, S> {
    /// Takes the request's body from the buffer, reading more as needed:
    /// whole when it ends within `--max-replay-body` bytes and the worker's
    /// `--max-replay-memory` has room for it (held in `replay_charge` until
    /// the exchange ends), else its first part. The whole body is due within
    /// `--client-body-timeout`.
    pub(super) async fn take_body(
        &mut self,
        req: &RequestHead,
        worker: &Worker,
    ) -> Result<RequestBody, ClientFail> {
        self.body_by = None;
        if req.framing == Framing::None {
            return Ok(RequestBody::Empty);
        }
        let progress = BodyProgress::new(req.framing);
        if req.expect_continue {
            // The client waits for a `100 Continue`, which the target gives
            // (or the balancer, if the target says nothing): nothing to read
            // yet, and the body's deadline starts when it is asked for.
            return Ok(RequestBody::Streamed {
                first: Bytes::new(),
                rest: progress,
            });
        }
        let mut charged = 0;
        let body = self
            .buffer_body(req.framing, progress, &mut charged, worker)
            .await;
        match &body {
            Ok(RequestBody::Whole(_)) => self.replay_charge = charged,
            _ => worker.replay_memory.release(charged),
        }
        body
    }

    /// Reads a body until it is complete, over `--max-replay-body`, or over
    /// what the worker's replay memory can still hold. The bytes held are
    /// charged to that memory as they arrive (in `charged`), so that a
    /// client announcing a large body and sending nothing holds nothing.
    async fn buffer_body(
        &mut self,
        framing: Framing,
        mut progress: BodyProgress,
        charged: &mut usize,
        worker: &Worker,
    ) -> Result<RequestBody, ClientFail> {
        let max = worker.config().max_replay_body;
        let mut scanned = 0;
        let want = match framing {
            Framing::Length(n) if n as usize <= max => n as usize,
            _ => STREAM_READ,
        };
        loop {
            scanned += progress
                .advance(&self.buf[scanned..])
                .map_err(|_| ClientFail::Answer(Answer::Refused(Error::BadFraming)))?;
            let too_large = match framing {
                Framing::Length(n) => n as usize > max,
                _ => scanned > max,
            };
            if !too_large && scanned > *charged {
                *charged += worker.replay_memory.reserve(scanned - *charged);
            }
            let no_room = !too_large && *charged < scanned;
            if progress.is_done() && !too_large && !no_room {
                return Ok(RequestBody::Whole(self.buf.split_to(scanned).freeze()));
            }
            if too_large || no_room {
                if no_room {
                    worker.count_replay_refused();
                }
                let first = self.buf.split_to(scanned).freeze();
                return Ok(RequestBody::Streamed {
                    first,
                    rest: progress,
                });
            }
            let room = want.saturating_sub(self.buf.len()).max(STREAM_READ);
            self.read_body(room, worker).await?;
        }
    }

    /// Reads the next piece of a streamed body from the client: at most the
    /// bytes that belong to it. `None` when the body is complete.
    pub(super) async fn next_body_piece(
        &mut self,
        rest: &mut BodyProgress,
        worker: &Worker,
    ) -> Result<Option<Bytes>, ClientFail> {
        if rest.is_done() {
            return Ok(None);
        }
        if self.buf.is_empty() {
            self.read_body(STREAM_READ, worker).await?;
        }
        let n = rest
            .advance(&self.buf)
            .map_err(|_| ClientFail::Answer(Answer::Refused(Error::BadFraming)))?;
        Ok(Some(self.buf.split_to(n).freeze()))
    }

    /// Reads more of a body: within `--idle-timeout` of the last read, and
    /// by the body's deadline (set by the first read of it).
    async fn read_body(&mut self, room: usize, worker: &Worker) -> Result<(), ClientFail> {
        let config = worker.config();
        let body_by = *self
            .body_by
            .get_or_insert_with(|| worker.soon(config.client_body_timeout));
        let until = worker.soon(config.idle_timeout).min(body_by);
        let read = read_more(&mut self.stream, &mut self.buf, room);
        let read = self.timer.run(until, pin!(read)).await;
        match read {
            Ok(_) => Ok(()),
            Err(e) => {
                if e == IoFail::TimedOut && until == body_by {
                    worker.count_body_timeout();
                }
                Err(e.into())
            }
        }
    }
}
