//! Relays a target's response to the client: the head as it arrived (minus
//! hop-by-hop lines, plus this hop's `Connection`), then the body streamed
//! through as its raw bytes until its framing says it is over.

use std::pin::pin;

use bytes::BytesMut;

use super::head::{push_response_head, ClientHop};
use super::{ClientConn, Next};
use crate::http::{BodyProgress, Framing, RequestHead, ResponseHead};
use crate::splice::{splice_exact, SPLICE_MIN};
use crate::stream::{read_more, ClientStream, IoFail};
use crate::upstream::TargetStream;
use crate::worker::{Worker, RESPONSE_BUF};

/// What became of the upstream connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relayed {
    /// The response was complete and the connection can carry another request.
    Reusable,
    /// The upstream connection must be closed.
    Spent,
}

pub struct Outcome {
    pub outcome: Relayed,
    pub next: Next,
}

/// Relays a response whose head is at the start of `resp`. With no
/// `upstream`, the whole response must already be in `resp`. With
/// `body_unread`, the target answered before the request body was sent
/// (after `Expect: 100-continue`): neither connection can carry another
/// request, as what became of that body is unknown.
pub async fn relay<S: ClientStream>(
    conn: &mut ClientConn<'_, S>,
    req: &RequestHead,
    head: ResponseHead,
    resp: &mut BytesMut,
    mut upstream: Option<&mut TargetStream>,
    body_unread: bool,
    worker: &Worker,
) -> Outcome {
    let config = worker.config();
    let keep_alive =
        req.keep_alive && head.framing != Framing::UntilClose && !body_unread && !worker.draining();
    let reusable = head.reusable && !body_unread;
    let spent = |next| Outcome {
        outcome: Relayed::Spent,
        next,
    };

    let head_bytes = resp.split_to(head.head_len).freeze();
    let hop = if keep_alive {
        ClientHop::KeepAlive(req.version)
    } else {
        ClientHop::Close
    };
    push_response_head(&mut conn.out, &head_bytes, &head.drops, hop);
    drop(head_bytes);
    let mut progress = BodyProgress::new(head.framing);
    let Ok(n) = progress.advance(resp) else {
        // Nothing has gone to the client yet, but the target saw the request.
        conn.out.clear();
        let e = crate::exchange::Answer::BadResponse;
        let _ = conn
            .send(e.response(false), worker.soon(config.idle_timeout))
            .await;
        return spent(Next::Close);
    };
    conn.out.push(resp.split_to(n).freeze());
    let mut extra = !resp.is_empty();
    resp.clear();
    if conn
        .send_out(worker.soon(config.idle_timeout))
        .await
        .is_err()
    {
        return spent(Next::Close);
    }

    while !progress.is_done() {
        let Some(up) = upstream.as_deref_mut() else {
            return spent(Next::Close);
        };
        if let BodyProgress::Length { left } = progress {
            if config.splice && left >= SPLICE_MIN {
                match splice_rest(conn, up, left, worker).await {
                    Some(Ok(())) => break,
                    Some(Err(_)) => return spent(Next::Close),
                    // Not plain TCP on both sides, or no pipe: copy.
                    None => {}
                }
            }
        }
        let until = worker.soon(config.idle_timeout);
        let read = conn
            .timer
            .run(until, pin!(read_more(up, resp, RESPONSE_BUF / 2)))
            .await;
        match read {
            Ok(_) => {}
            Err(IoFail::Closed) if head.framing == Framing::UntilClose => break,
            // Cut off mid-body: the client sees the connection close
            // before the body is complete.
            Err(_) => return spent(Next::Close),
        }
        let Ok(n) = progress.advance(resp) else {
            return spent(Next::Close);
        };
        conn.out.push(resp.split_to(n).freeze());
        extra |= !resp.is_empty();
        resp.clear();
        if conn
            .send_out(worker.soon(config.idle_timeout))
            .await
            .is_err()
        {
            return spent(Next::Close);
        }
    }

    Outcome {
        outcome: if reusable && !extra && head.framing != Framing::UntilClose {
            Relayed::Reusable
        } else {
            Relayed::Spent
        },
        next: if keep_alive {
            Next::KeepAlive
        } else {
            Next::Close
        },
    }
}

/// Splices the last `left` bytes of a body from `up` to the client, when
/// both are plain TCP and a pipe is to be had (`None` otherwise: nothing
/// was moved).
async fn splice_rest<S: ClientStream>(
    conn: &mut ClientConn<'_, S>,
    up: &TargetStream,
    left: u64,
    worker: &Worker,
) -> Option<Result<(), IoFail>> {
    let (Some(to), TargetStream::Plain(from)) = (conn.stream.plain_tcp(), up) else {
        return None;
    };
    let pipe = worker.pipes.take().ok()?;
    let idle = worker.config().idle_timeout;
    let until = || worker.soon(idle);
    let before = conn.sent;
    let res = splice_exact(
        from,
        to,
        &pipe,
        left,
        &mut conn.timer,
        until,
        &mut conn.sent,
    )
    .await;
    worker.count_spliced(conn.sent - before);
    if res.is_ok() {
        worker.pipes.give(pipe);
    }
    Some(res)
}
