//! One request's trip to the targets: pick a healthy target round robin, send
//! the request on a pooled or fresh connection, and retry on another target
//! after a 500 or when the target provably saw nothing; then relay the
//! response, or open a tunnel after a 101.

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::body::{ClientFail, RequestBody};
use super::head::{push_response_head, ClientHop};
use super::relay::{relay, Relayed};
use super::send::SendFail;
use super::{ClientConn, Next};
use crate::access_log::Entry;
use crate::http::{BodyProgress, Error, Framing, RequestHead, ResponseHead};
use crate::stream::{connect, IoFail};
use crate::upstream::Upstream;
use crate::worker::{Failure, Worker, RESPONSE_BUF};

/// How one attempt on one target ended.
enum Attempt {
    /// The response went to the client (or the client left): done.
    Finished(Next),
    /// The target failed in a way that allows another target to be tried;
    /// the error is the answer if none is left (or the budget says no).
    Retry(Error),
    /// As `Retry`, with the retry already taken from the budget (a 500,
    /// whose answer depends on whether it will be retried).
    RetryGranted(Error),
    /// Failed, and no other target may be tried: answer this error, and
    /// close the client connection when `close` is set.
    Fail(Error, bool),
}

/// The state of one request across its attempts.
pub(super) struct Exchange<'a> {
    pub(super) worker: &'a Worker,
    pub(super) req: RequestHead,
    pub(super) head: Bytes,
    pub(super) body: RequestBody,
    /// Part of a streamed body has gone to a target: it cannot be sent again.
    pub(super) pumped: bool,
    /// The client has had its `100 Continue`.
    pub(super) continued: bool,
    /// Response bytes from the target (taken from the worker's spares).
    pub(super) resp: BytesMut,
    /// A complete 500 answer kept while another target is tried, to be the
    /// answer if every other attempt fails too (and the target it came from).
    last_500: Option<(ResponseHead, BytesMut, usize)>,
    /// The status the client got, and from which target (for the log).
    status: u16,
    answered_by: Option<usize>,
}

/// Forwards one request and relays its answer.
pub async fn exchange(worker: &Worker, conn: &mut ClientConn<'_>, req: RequestHead) -> Next {
    let head = conn.buf.split_to(req.head_len).freeze();
    if let (true, Some(m)) = (req.underscored > 0, worker.metrics) {
        m.underscored_dropped.add(u64::from(req.underscored));
    }
    let body = match conn.take_body(&req, worker).await {
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
        continued: false,
        resp: worker.response_buffers.take(),
        last_500: None,
        status: 0,
        answered_by: None,
    };
    let started = worker.timing().then(Instant::now);
    conn.sent = 0;
    let next = ex.run(conn).await;
    worker
        .replay_memory
        .release(std::mem::take(&mut conn.replay_charge));
    worker.response_buffers.give(std::mem::take(&mut ex.resp));
    if let Some(started) = started {
        ex.account(conn, started.elapsed().as_micros() as u64);
    }
    next
}

impl Exchange<'_> {
    /// Counts the finished request in the metrics and the access log.
    fn account(&self, conn: &ClientConn<'_>, micros: u64) {
        if let Some(m) = self.worker.metrics {
            m.observe(micros);
        }
        if let Some(log) = &self.worker.access_log {
            let (a, b) = self.req.line;
            self.worker.with_target(self.answered_by, |target| {
                log.record(&Entry {
                    client: conn.peer,
                    request_line: Some(&self.head[a as usize..b as usize]),
                    status: self.status,
                    target: target.map(|t| t.name.as_str()),
                    attempts: conn.tried.len(),
                    micros,
                    bytes: conn.sent,
                })
            });
        }
    }

    /// Whether the request can still be sent (again) to a target: no byte
    /// of its body has been taken from the client beyond what is kept.
    pub(super) fn replayable(&self) -> bool {
        !self.pumped
    }

    async fn run(&mut self, conn: &mut ClientConn<'_>) -> Next {
        let worker = self.worker;
        worker.refresh_targets();
        worker.record_request();
        conn.tried.clear();
        let mut last_error = Error::NoHealthyTarget;
        loop {
            if conn.tried.len() >= 2 {
                let wait = worker.backoff(conn.tried.len());
                if !wait.is_zero() {
                    conn.timer.wait(Instant::now() + wait).await;
                }
            }
            let Some(target) = worker.pick(&mut conn.tried) else {
                break;
            };
            conn.tried.push(target as u32);
            let counters = worker.metrics.map(|m| &m.targets[target]);
            if let Some(c) = counters {
                c.requests.add(1);
                c.in_flight.add(1);
            }
            worker.attempt_started(target);
            let outcome = self.attempt(conn, target).await;
            worker.attempt_finished(target);
            if let Some(c) = counters {
                c.in_flight.sub(1);
            }
            let granted = match outcome {
                Attempt::Finished(next) => return next,
                Attempt::Fail(e, close) => return self.answer(conn, e, close).await,
                Attempt::RetryGranted(e) => {
                    last_error = e;
                    true
                }
                Attempt::Retry(e) => {
                    last_error = e;
                    self.may_retry(conn)
                }
            };
            if !granted {
                break;
            }
            if let Some(c) = counters {
                c.retries.add(1);
            }
        }
        if let Some((head, mut buf, target)) = self.last_500.take() {
            (self.status, self.answered_by) = (head.status, Some(target));
            let relayed = relay(conn, &self.req, head, &mut buf, None, false, self.worker).await;
            return relayed.next;
        }
        self.answer(conn, last_error, false).await
    }

    /// Whether the request may go to another target: attempts are left,
    /// there is a target to go to, and the retry budget allows it (which
    /// takes a retry from it).
    fn may_retry(&self, conn: &ClientConn<'_>) -> bool {
        conn.tried.len() < 1 + self.worker.config().retries
            && self.worker.has_candidate(&conn.tried)
            && self.worker.try_retry()
    }

    /// Answers an error the balancer makes itself. The connection closes
    /// when asked, when the error says so, or when part of the request body
    /// is still unread on the socket (it would be taken for the next request).
    async fn answer(&mut self, conn: &mut ClientConn<'_>, e: Error, close: bool) -> Next {
        (self.status, self.answered_by) = (e.status(), None);
        let keep_alive = self.req.keep_alive
            && !close
            && !self.body.unread()
            && !e.closes_connection()
            && !self.worker.draining();
        let until = self.worker.soon(self.worker.config().idle_timeout);
        match conn.send(e.response(keep_alive), until).await {
            Ok(()) if keep_alive => Next::KeepAlive,
            _ => Next::Close,
        }
    }

    /// Whether a request the target may have received, and not answered,
    /// may be sent again: when running it twice does no harm (an idempotent
    /// method, or an `Idempotency-Key`), or the operator said any may be.
    fn may_resend(&self) -> bool {
        self.req.idempotent || self.worker.config().retry_non_idempotent
    }

    async fn attempt(&mut self, conn: &mut ClientConn<'_>, target: usize) -> Attempt {
        let now = self.worker.coarse_now();
        // A request that cannot be sent twice (a streamed body, or a method
        // that is not idempotent) pays for a peek on a pooled connection, to
        // narrow the window in which a closed one looks open.
        let check = matches!(self.body, RequestBody::Streamed { .. }) || !self.may_resend();
        let gen = self.worker.slot_gen(target);
        let pooled = self.worker.pool.borrow_mut().take(target, gen, now, check);
        let mut reused = pooled.is_some();
        let mut upstream = match pooled {
            Some(upstream) => upstream,
            None => match self.connect(conn, target).await {
                Ok(upstream) => upstream,
                Err(e) => return e,
            },
        };
        let sent = self.worker.latency_start();
        let head = loop {
            let fail = match self.send_and_read_head(conn, upstream.stream()).await {
                Ok(head) => break head,
                Err(SendFail::Client(ClientFail::Answer(e))) => {
                    return Attempt::Finished(Next::Reject(e))
                }
                Err(SendFail::Client(ClientFail::Gone)) => return Attempt::Finished(Next::Close),
                Err(fail) => fail,
            };
            // Failed before any answer: the request may go again if the
            // target saw none of it, or if running it twice is harmless.
            let resend = self.replayable()
                && match fail {
                    SendFail::NotSent => true,
                    SendFail::NoResponse => self.may_resend(),
                    _ => false,
                };
            if resend && reused {
                // A kept-alive connection the target had closed: send again
                // on a fresh connection to the same target.
                reused = false;
                upstream = match self.connect(conn, target).await {
                    Ok(upstream) => upstream,
                    Err(e) => return e,
                };
                continue;
            }
            let (failure, outcome) = match fail {
                SendFail::NotSent | SendFail::NoResponse if resend => (
                    Failure::NoResponse,
                    Attempt::Retry(Error::TargetUnreachable),
                ),
                // The client connection closes only when part of a streamed
                // body went out (what is left of it is unknown); a request
                // read whole leaves it in a known state.
                SendFail::NotSent | SendFail::NoResponse => (
                    Failure::NoResponse,
                    Attempt::Fail(Error::TargetUnreachable, !self.replayable()),
                ),
                SendFail::TimedOut => {
                    if let Some(m) = self.worker.metrics {
                        m.targets[target].timeouts.add(1);
                    }
                    (
                        Failure::ResponseTimeout,
                        Attempt::Fail(Error::TargetTimeout, !self.replayable()),
                    )
                }
                SendFail::Invalid => (
                    Failure::InvalidResponse,
                    Attempt::Fail(Error::BadResponse, !self.replayable()),
                ),
                SendFail::Upstream | SendFail::Client(_) => {
                    (Failure::Broken, Attempt::Fail(Error::TargetFailed, true))
                }
            };
            self.worker.target_failed(target, failure);
            return outcome;
        };

        if let Some(m) = self.worker.metrics {
            m.targets[target].response(head.status);
        }
        if let Some(sent) = sent {
            self.worker.observe_latency(target, sent);
        }
        if head.status >= 500 {
            self.worker
                .target_failed(target, Failure::Status(head.status));
        } else {
            self.worker.target_succeeded(target);
        }
        if head.status == 500 {
            self.worker.degrade(target, "answered 500");
            if self.replayable() && self.may_retry(conn) {
                // Close this connection rather than drain it; keep the 500
                // if it is whole, in case it has to be the answer after all.
                if is_complete(&head, &self.resp) {
                    let kept = self.resp.split();
                    self.last_500 = Some((head, kept, target));
                    self.resp.reserve(RESPONSE_BUF);
                }
                return Attempt::RetryGranted(Error::AllTargetsFailed);
            }
        }
        self.last_500 = None;

        (self.status, self.answered_by) = (head.status, Some(target));
        if head.status == 101 {
            return Attempt::Finished(self.switch(conn, head, upstream).await);
        }
        let unread = self.body.unread();
        let relayed = relay(
            conn,
            &self.req,
            head,
            &mut self.resp,
            Some(upstream.stream()),
            unread,
            self.worker,
        )
        .await;
        if relayed.outcome == Relayed::Reusable {
            let now = self.worker.coarse_now();
            let gen = self.worker.slot_gen(target);
            self.worker
                .pool
                .borrow_mut()
                .put(target, gen, upstream, now);
        }
        Attempt::Finished(relayed.next)
    }

    /// Relays a `101 Switching Protocols` (with any bytes the target sent
    /// after it) and hands both connections over to a tunnel.
    async fn switch(
        &mut self,
        conn: &mut ClientConn<'_>,
        head: ResponseHead,
        upstream: Upstream,
    ) -> Next {
        let head_bytes = self.resp.split_to(head.head_len).freeze();
        push_response_head(&mut conn.out, &head_bytes, &head.drops, ClientHop::Switched);
        conn.out.push(self.resp.split().freeze());
        self.resp.reserve(RESPONSE_BUF);
        let until = self.worker.soon(self.worker.config().idle_timeout);
        match conn.send_out(until).await {
            Ok(()) => Next::Tunnel(upstream.into_stream()),
            Err(_) => Next::Close,
        }
    }

    /// A fresh connection to `target`; a refusal or timeout marks it degraded.
    async fn connect(&self, conn: &mut ClientConn<'_>, target: usize) -> Result<Upstream, Attempt> {
        let shared = self.worker.shared;
        let until = self.worker.soon(shared.config.connect_timeout);
        let Some(slot) = self.worker.target(target) else {
            return Err(Attempt::Retry(Error::TargetUnreachable));
        };
        let result = conn.timer.run(until, connect(slot.target.addr)).await;
        if let (Err(e), Some(m)) = (&result, self.worker.metrics) {
            m.targets[target].connect_failures.add(1);
            if *e == IoFail::TimedOut {
                m.targets[target].timeouts.add(1);
            }
        }
        match result {
            Ok(stream) => Ok(Upstream::new(stream)),
            Err(IoFail::Refused) => {
                self.worker.target_failed(target, Failure::Refused);
                self.worker.degrade(target, "connection refused");
                self.worker.pool.borrow_mut().clear(target);
                Err(Attempt::Retry(Error::TargetUnreachable))
            }
            Err(IoFail::TimedOut) => {
                self.worker.target_failed(target, Failure::ConnectTimeout);
                self.worker.degrade(target, "connect timed out");
                Err(Attempt::Retry(Error::TargetTimeout))
            }
            Err(_) => {
                self.worker.target_failed(target, Failure::ConnectFailed);
                Err(Attempt::Retry(Error::TargetUnreachable))
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
