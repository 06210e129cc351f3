//! The driver of one request's exchange: it takes the body, then performs
//! what the exchange machine (`crate::exchange`) asks, step by step, and
//! tells it what happened. Every decision (retry, replay, what to record,
//! what to answer) is the machine's; here is only the IO.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::body::RequestBody;
use super::head::{push_response_head, ClientHop};
use super::relay::{relay, Relayed};
use super::send::{self, HeadReader};
use super::{ClientConn, Next};
use crate::access_log::Entry;
use crate::exchange::{self, Action, Answer, ConnectFail, Event, Exchange, Reuse};
use crate::http::{RequestHead, ResponseHead};
use crate::proxy_protocol;
use crate::stream::ClientStream;
use crate::upstream::Upstream;
use crate::worker::{Worker, RESPONSE_BUF};

/// Forwards one request and relays its answer.
pub async fn exchange<S: ClientStream>(
    worker: &Worker,
    conn: &mut ClientConn<'_, S>,
    req: RequestHead,
) -> Next {
    let head = conn.buf.split_to(req.head_len).freeze();
    worker.count_underscored(req.underscored);
    let body = match conn.take_body(&req, worker).await {
        Ok(body) => body,
        Err(exchange::ClientFail::Answer(e)) => return Next::Reject(e),
        Err(exchange::ClientFail::Gone) => return Next::Close,
    };
    let request = exchange::Request {
        idempotent: req.idempotent,
        body: match body {
            RequestBody::Streamed { .. } => exchange::Body::Streamed,
            _ => exchange::Body::Replayable,
        },
        expect_continue: req.expect_continue,
    };
    let mut machine = Exchange::new(worker.policy(), request, std::mem::take(&mut conn.tried));
    let mut driver = Driver {
        worker,
        req: &req,
        head,
        body,
        resp: worker.response_buffers.take(),
        upstream: None,
        response: None,
        kept: None,
        attempt: None,
        sent_at: None,
        until: worker.coarse_now(),
        got_any: false,
        status: 0,
        answered_by: None,
    };
    let started = worker.timing().then(Instant::now);
    conn.sent = 0;
    let next = driver.run(conn, &mut machine).await;
    driver.end_attempt();
    worker
        .replay_memory
        .release(std::mem::take(&mut conn.replay_charge));
    worker
        .response_buffers
        .give(std::mem::take(&mut driver.resp));
    if let Some(started) = started {
        driver.account(conn, machine.tried().len(), started.elapsed());
    }
    conn.tried = machine.into_tried();
    next
}

/// What the driver holds for one request across its attempts. The request
/// head is borrowed, not moved in: this state lives in the connection's
/// task, cold between requests at many connections, and every byte of it
/// written per request is a cache line to fetch.
struct Driver<'w> {
    worker: &'w Worker,
    req: &'w RequestHead,
    head: Bytes,
    body: RequestBody,
    /// Response bytes from the target (taken from the worker's spares).
    resp: BytesMut,
    /// The connection of the attempt in progress.
    upstream: Option<Upstream>,
    /// The final response head at the start of `resp`, once read.
    response: Option<ResponseHead>,
    /// A whole 500 kept while another target is tried (boxed: rare, and
    /// it would make every connection's task larger).
    kept: Option<Box<(ResponseHead, BytesMut)>>,
    /// The target of the attempt in progress (counted as in flight).
    attempt: Option<usize>,
    /// When the attempt's request was sent (for p2c-ewma's latency).
    sent_at: Option<Instant>,
    /// The attempt's response deadline.
    until: Instant,
    /// Some response byte came on the attempt's connection.
    got_any: bool,
    /// The status the client got, and from which target (for the log).
    status: u16,
    answered_by: Option<usize>,
}

impl Driver<'_> {
    async fn run<S: ClientStream>(
        &mut self,
        conn: &mut ClientConn<'_, S>,
        machine: &mut Exchange,
    ) -> Next {
        let worker = self.worker;
        worker.refresh_targets();
        worker.record_request();
        let mut event = Event::Start;
        loop {
            event = match machine.next(event) {
                Action::Backoff { retry } => {
                    self.end_attempt();
                    let wait = worker.backoff(retry);
                    if !wait.is_zero() {
                        conn.timer.wait(Instant::now() + wait).await;
                    }
                    Event::Done
                }
                Action::Pick => {
                    self.end_attempt();
                    let picked = worker.pick(machine.tried_mut());
                    if let Some(target) = picked {
                        worker.attempt_started(target);
                        self.attempt = Some(target);
                    }
                    Event::Picked(picked)
                }
                Action::Connect { target, reuse } => self.connect(conn, target, reuse).await,
                Action::Send => self.send(conn).await,
                Action::AwaitContinue => {
                    let (mut reader, up) = self.reader();
                    match reader.await_continue(conn, up, worker).await {
                        Ok(None) => Event::Continue,
                        Ok(Some(head)) => self.responded(head),
                        Err(event) => event,
                    }
                }
                Action::Pump => {
                    let RequestBody::Streamed { rest, .. } = &mut self.body else {
                        unreachable!("pump without a streamed body")
                    };
                    let up = self.upstream.as_mut().expect("pump without a connection");
                    send::pump(conn, up, rest, worker).await
                }
                Action::ReadHead => {
                    let (mut reader, up) = self.reader();
                    match reader.read_final(&mut conn.timer, up).await {
                        Ok(head) => self.responded(head),
                        Err(fail) => Event::SendFailed(fail),
                    }
                }
                Action::Record { target, outcome } => {
                    worker.record(target, outcome);
                    Event::Done
                }
                Action::AskRetry { from } => {
                    Event::Retry(worker.grant_retry(from, machine.tried()))
                }
                Action::KeepResponse => Event::Kept(self.keep_response()),
                Action::Relay { target } => return self.relay(conn, target).await,
                Action::Switch { target } => return self.switch(conn, target).await,
                Action::RelayKept { target } => return self.relay_kept(conn, target).await,
                Action::Answer { answer, close } => {
                    self.end_attempt();
                    return self.answer(conn, answer, close).await;
                }
                Action::Reject(answer) => return Next::Reject(answer),
                Action::Hangup => return Next::Close,
            };
        }
    }

    /// The attempt in progress is over: its connection is closed (unless it
    /// went back to the pool) and it no longer counts as in flight.
    fn end_attempt(&mut self) {
        self.upstream = None;
        self.sent_at = None;
        if let Some(target) = self.attempt.take() {
            self.worker.attempt_finished(target);
        }
    }

    /// A connection to `target`: a pooled one if allowed and there is one,
    /// else a new one. A `proxy=v2` target's connections belong to one
    /// client each: the one this client kept is what "pooled" means there,
    /// and a new one starts with a PROXY header naming this client.
    async fn connect<S: ClientStream>(
        &mut self,
        conn: &mut ClientConn<'_, S>,
        target: usize,
        reuse: Reuse,
    ) -> Event {
        self.upstream = None;
        // A connection this client keeps to another target closes first.
        conn.private.close_unless(target);
        let worker = self.worker;
        let proxy = worker.sends_proxy(target);
        if let Reuse::Pooled { checked } = reuse {
            let reused = match proxy {
                false => worker.take_pooled(target, checked),
                true => conn.private.take(worker, target, checked),
            };
            if let Some(up) = reused {
                self.upstream = Some(up);
                return Event::Connected { reused: true };
            }
        }
        let header = match proxy {
            false => None,
            true => match conn.stream.local_addr() {
                Ok(local) => {
                    let client = SocketAddr::new(conn.peer, conn.peer_port);
                    Some(proxy_protocol::encode_v2(Some((client, local))))
                }
                Err(_) => return Event::ConnectFailed(ConnectFail::Failed),
            },
        };
        match send::open(worker, &mut conn.timer, target, header).await {
            Ok(up) => {
                self.upstream = Some(up);
                Event::Connected { reused: false }
            }
            Err(why) => Event::ConnectFailed(why),
        }
    }

    /// Sends the head and the buffered body; the response deadline starts.
    async fn send<S: ClientStream>(&mut self, conn: &mut ClientConn<'_, S>) -> Event {
        let worker = self.worker;
        let up = self.upstream.as_mut().expect("send without a connection");
        if self.sent_at.is_none() {
            self.sent_at = worker.latency_start();
        }
        let request = (&self.head, self.req);
        if let Err(fail) = send::send_head(worker, conn, up, request, &self.body).await {
            return Event::SendFailed(fail);
        }
        self.until = worker.soon(worker.config().response_timeout);
        self.resp.clear();
        self.got_any = false;
        Event::Sent
    }

    /// A reader of the response head on the attempt's connection.
    fn reader(&mut self) -> (HeadReader<'_>, &mut Upstream) {
        let reader = HeadReader {
            resp: &mut self.resp,
            req: self.req,
            until: self.until,
            got_any: &mut self.got_any,
        };
        let up = self.upstream.as_mut().expect("no connection to read from");
        (reader, up)
    }

    /// A final response head arrived.
    fn responded(&mut self, head: ResponseHead) -> Event {
        if let (Some(sent), Some(target)) = (self.sent_at.take(), self.attempt) {
            self.worker.observe_latency(target, sent);
        }
        let status = head.status;
        self.response = Some(head);
        Event::Responded(status)
    }

    /// Keeps the 500 just read if it is whole (its connection is closed).
    fn keep_response(&mut self) -> bool {
        let head = self.response.take().expect("keep without a response");
        if !send::is_complete(&head, &self.resp) {
            return false;
        }
        let kept = self.resp.split();
        self.kept = Some(Box::new((head, kept)));
        self.resp.reserve(RESPONSE_BUF);
        true
    }

    /// Relays the response just read, then pools its connection if it can
    /// carry another request.
    async fn relay<S: ClientStream>(
        &mut self,
        conn: &mut ClientConn<'_, S>,
        target: usize,
    ) -> Next {
        let head = self.response.take().expect("relay without a response");
        (self.status, self.answered_by) = (head.status, Some(target));
        let unread = self.body.unread();
        // The connection is borrowed where it is, not moved out across the
        // await: a copy would make every connection's task larger.
        let up = self.upstream.as_mut().expect("relay without a connection");
        let relayed = relay(
            conn,
            self.req,
            head,
            &mut self.resp,
            Some(up.stream()),
            unread,
            self.worker,
        )
        .await;
        let up = self.upstream.take().expect("relayed on a connection");
        if relayed.outcome == Relayed::Reusable {
            match up.is_private() {
                false => self.worker.pool_upstream(target, up),
                true => conn.private.keep(self.worker, target, up),
            }
        }
        relayed.next
    }

    /// Relays the whole 500 kept from an earlier attempt.
    async fn relay_kept<S: ClientStream>(
        &mut self,
        conn: &mut ClientConn<'_, S>,
        target: usize,
    ) -> Next {
        let (head, mut buf) = *self.kept.take().expect("no response kept");
        (self.status, self.answered_by) = (head.status, Some(target));
        relay(conn, self.req, head, &mut buf, None, false, self.worker)
            .await
            .next
    }

    /// Relays a `101 Switching Protocols` (with any bytes the target sent
    /// after it) and hands both connections over to a tunnel.
    async fn switch<S: ClientStream>(
        &mut self,
        conn: &mut ClientConn<'_, S>,
        target: usize,
    ) -> Next {
        let head = self.response.take().expect("switch without a response");
        (self.status, self.answered_by) = (head.status, Some(target));
        let up = self.upstream.take().expect("switch without a connection");
        let head_bytes = self.resp.split_to(head.head_len).freeze();
        push_response_head(&mut conn.out, &head_bytes, &head.drops, ClientHop::Switched);
        conn.out.push(self.resp.split().freeze());
        self.resp.reserve(RESPONSE_BUF);
        let until = self.worker.soon(self.worker.config().idle_timeout);
        match conn.send_out(until).await {
            Ok(()) => Next::Tunnel(up.into_stream()),
            Err(_) => Next::Close,
        }
    }

    /// Answers for the balancer. The connection closes when asked, when the
    /// answer says so, or when part of the request body is still unread on
    /// the socket (it would be taken for the next request).
    async fn answer<S: ClientStream>(
        &mut self,
        conn: &mut ClientConn<'_, S>,
        answer: Answer,
        close: bool,
    ) -> Next {
        (self.status, self.answered_by) = (answer.status(), None);
        let keep_alive = self.req.keep_alive
            && !close
            && !self.body.unread()
            && !answer.closes_connection()
            && !self.worker.draining();
        let until = self.worker.soon(self.worker.config().idle_timeout);
        match conn.send(answer.response(keep_alive), until).await {
            Ok(()) if keep_alive => Next::KeepAlive,
            _ => Next::Close,
        }
    }

    /// Counts the finished request in the metrics and the access log.
    fn account<S: ClientStream>(
        &self,
        conn: &ClientConn<'_, S>,
        attempts: usize,
        took: std::time::Duration,
    ) {
        let micros = took.as_micros() as u64;
        self.worker.observe_request(micros);
        if let Some(log) = self.worker.access_log() {
            let (a, b) = self.req.line;
            self.worker.with_target(self.answered_by, |target| {
                log.record(&Entry {
                    client: conn.peer,
                    request_line: Some(&self.head[a as usize..b as usize]),
                    status: self.status,
                    target: target.map(|t| t.name.as_str()),
                    attempts,
                    micros,
                    bytes: conn.sent,
                })
            });
        }
    }
}
