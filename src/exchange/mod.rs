//! One request's life across its attempts, as a plain state machine: every
//! retry, replay, ejection and answer rule, in one place, without IO.
//!
//! The driver (`proxy/`) feeds [`Event`]s (a target was picked, the connect
//! failed, the head is sent, a response head arrived with status 500, the
//! retry budget said no, ...) to [`Exchange::next`], and performs the
//! [`Action`] it returns (connect to target T, send, relay, wait a backoff
//! and pick another target, record outcome O for T, answer the client with
//! A). Each action is answered by exactly one event. The machine decides;
//! the driver only does. So the rules below are tested by driving the
//! machine with events alone (`tests.rs`).
//!
//! The rules, as this file applies them:
//!
//! - **Attempts.** A request goes to at most `1 + --retries` targets, never
//!   twice to the same one (the picker skips the tried ones). The first retry
//!   goes at once; the second and later wait a backoff.
//! - **Retry.** Another target is tried after a 500, or after a failure in
//!   which the target provably saw nothing (the connect failed, or not a byte
//!   of the request was written), or after a connection closed or reset
//!   before any response byte when running the request twice does no harm
//!   (an idempotent method or an `Idempotency-Key`, or
//!   `--retry-non-idempotent`). Every retry needs a target left to try and
//!   the worker's retry budget (asked last, as asking takes a retry from it).
//! - **Replay.** A request can be sent again only while no byte of a
//!   streamed body has gone to a target (`Pump` is the point of no return).
//!   A kept-alive connection that turns out closed, before anything was
//!   answered, gets the request again on a fresh connection to the same
//!   target, without counting as a failure of it.
//! - **Outcome.** Every attempt that reached a target records one outcome
//!   for it (`Record`): its status, or how it failed. What an outcome does to
//!   the target's health (degrade, count towards ejection) is
//!   `health::Outcome`'s to say.
//! - **Answer.** When no retry is possible: a 500 kept whole from an earlier
//!   attempt is relayed; otherwise the last failure's answer (`502 no target
//!   could be reached`, `502 every target tried failed`, `503 no healthy
//!   target` when none was picked). A response timeout is a 504, an invalid
//!   response a 502, and neither is retried; a target failing while a
//!   streamed body went to it is a 502 and the client connection closes (what
//!   is left of that body is unknown), as it does after any failure once part
//!   of a streamed body went out.

#![forbid(unsafe_code)]

mod answer;
#[cfg(test)]
mod tests;

pub use answer::Answer;

use crate::health::Outcome;

/// The operator's retry settings that the machine applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// `--retries`: attempts after the first.
    pub retries: usize,
    /// `--retry-non-idempotent`: resend any request the target may have
    /// received without answering, not only idempotent ones.
    pub retry_non_idempotent: bool,
}

/// How the request's body was taken from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body, or one read whole (up to `--max-replay-body`): it can be
    /// sent any number of times.
    Replayable,
    /// Too large to buffer (or awaited after `100 Continue`): the rest of it
    /// is streamed from the client to one target.
    Streamed,
}

/// What the machine needs to know of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Running it twice does no harm (method, or `Idempotency-Key`).
    pub idempotent: bool,
    pub body: Body,
    /// The client waits for `100 Continue` before sending its body.
    pub expect_continue: bool,
}

/// Which connection a `Connect` may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// A pooled idle connection if there is one; `checked` asks for a peek
    /// as well (for a request that cannot be sent twice).
    Pooled { checked: bool },
    /// A new connection.
    Fresh,
}

/// Why a connect failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFail {
    /// The target's slot is empty now (a reload took it out).
    Gone,
    Refused,
    TimedOut,
    /// Any other error.
    Failed,
}

/// Why sending the request or reading the answer's head failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFail {
    /// Not a byte of the request was written: the connection had been
    /// closed or reset. The target saw nothing of it.
    NotSent,
    /// The request (or part of it) went out, and the connection closed or
    /// reset before the first response byte: the target may have acted on it.
    NoResponse,
    /// No response head within `--response-timeout`.
    TimedOut,
    /// The response head is not valid HTTP/1.1 (or an unasked-for 101).
    Invalid,
    /// The target failed while a streamed body was being sent.
    Upstream,
}

/// Why the client could not give its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFail {
    /// Answer this and close (a malformed body, or too slow a client).
    Answer(Answer),
    /// The client went away: close without an answer.
    Gone,
}

/// What happened, reported by the driver after each action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The request head (and its body, as far as it is buffered) is in.
    Start,
    /// A `Backoff` or `Record` is done.
    Done,
    /// The answer to `KeepResponse`: the response was whole, and is kept.
    Kept(bool),
    /// The picker's choice (`None`: no target left to try).
    Picked(Option<usize>),
    /// A connection is ready: taken from the pool (`reused`) or new.
    Connected {
        reused: bool,
    },
    ConnectFailed(ConnectFail),
    /// The head and the buffered body are written.
    Sent,
    /// The client may send its body now: the target's `100 Continue` was
    /// relayed, or it said nothing for a while and the balancer sent one.
    Continue,
    /// The streamed body went to the target, all of it.
    Pumped,
    /// A final response head arrived, with this status.
    Responded(u16),
    SendFailed(SendFail),
    ClientFailed(ClientFail),
    /// The answer to `AskRetry`: a target is left and the budget allows it.
    Retry(bool),
}

/// What the driver does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Wait the backoff before retry number `retry`, then say `Done`.
    Backoff { retry: usize },
    /// Pick a target not in [`Exchange::tried`]; say `Picked`.
    Pick,
    /// Get a connection to `target`; say `Connected` or `ConnectFailed`.
    Connect { target: usize, reuse: Reuse },
    /// Write the head and the buffered body; say `Sent` or `SendFailed`.
    Send,
    /// Wait for the target's `100 Continue` (or a final answer, or a while);
    /// say `Continue`, `Responded`, `SendFailed` or `ClientFailed`.
    AwaitContinue,
    /// Stream the rest of the body from the client to the target; say
    /// `Pumped`, `SendFailed` or `ClientFailed`. No replay after this.
    Pump,
    /// Read the response head; say `Responded` or `SendFailed`.
    ReadHead,
    /// Report what the attempt on `target` came to; say `Done`.
    Record { target: usize, outcome: Outcome },
    /// Ask whether another target may be tried after `from` failed (one is
    /// left, and the retry budget gives a retry); say `Retry`.
    AskRetry { from: usize },
    /// Keep the 500 just read aside if it is whole, in case it is the
    /// answer after all; say `Kept`.
    KeepResponse,
    /// Relay the response just read from `target` (and its body). The end.
    Relay { target: usize },
    /// Relay the `101` from `target` and tunnel the two connections. The end.
    Switch { target: usize },
    /// Relay the 500 kept from `target`. The end.
    RelayKept { target: usize },
    /// Answer the client; close its connection when `close`. The end.
    Answer { answer: Answer, close: bool },
    /// The client sent something wrong mid-body: answer and close. The end.
    Reject(Answer),
    /// The client went away: close. The end.
    Hangup,
}

/// Where the machine is: what it waits to hear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    BackingOff,
    Picking,
    Connecting {
        target: usize,
    },
    /// Waiting for the result of `step` on a connection to `target`.
    Sending {
        target: usize,
        reused: bool,
        step: Step,
    },
    /// A `Record` is out; `then` is what follows.
    Recording {
        target: usize,
        then: Then,
    },
    AskingRetry {
        from: usize,
        after: Failed,
    },
    Keeping {
        from: usize,
    },
    Finished,
}

/// The send step in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Send,
    AwaitContinue,
    Pump,
    ReadHead,
}

/// How the attempt that asks for a retry failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failed {
    /// It answered 500.
    Answered500,
    /// It failed without an answer.
    Otherwise,
}

/// What follows a recorded outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// Relay the response (or switch, for a 101), unless it is a 500 that
    /// may be retried.
    Respond(u16),
    /// Try another target if the rules allow; else answer `Answer`.
    Retry(Answer),
    /// Answer and stop.
    Fail(Answer, bool),
}

/// One request's state across its attempts.
pub struct Exchange {
    policy: Policy,
    request: Request,
    state: State,
    /// Targets already tried, in order.
    tried: Vec<u32>,
    /// Part of a streamed body has gone to a target: it cannot be sent again.
    pumped: bool,
    /// The client has had its `100 Continue`.
    continued: bool,
    /// The target whose complete 500 is kept, to answer with if every other
    /// attempt fails too.
    kept: Option<usize>,
    /// The answer if no attempt succeeds.
    last: Answer,
}

impl Exchange {
    /// A new exchange; `tried` is a list to reuse (cleared), given back by
    /// [`Exchange::into_tried`], so that a connection's requests allocate
    /// nothing.
    pub fn new(policy: Policy, request: Request, mut tried: Vec<u32>) -> Exchange {
        tried.clear();
        Exchange {
            policy,
            request,
            state: State::Idle,
            tried,
            pumped: false,
            continued: false,
            kept: None,
            last: Answer::NoHealthyTarget,
        }
    }

    /// The targets tried so far (the attempts made, for the log), for the
    /// picker to skip.
    pub fn tried(&self) -> &[u32] {
        &self.tried
    }

    /// The tried list, as the picker takes it.
    pub fn tried_mut(&mut self) -> &mut Vec<u32> {
        &mut self.tried
    }

    /// Gives back the tried list for the next request.
    pub fn into_tried(self) -> Vec<u32> {
        self.tried
    }

    /// Whether the request can still be sent (again): no byte of a streamed
    /// body has gone to a target.
    pub fn replayable(&self) -> bool {
        !self.pumped
    }

    /// Whether a request the target may have received, and not answered,
    /// may be sent again: when running it twice does no harm, or the
    /// operator said any may be.
    fn may_resend(&self) -> bool {
        self.request.idempotent || self.policy.retry_non_idempotent
    }

    /// The next action, after `event`.
    pub fn next(&mut self, event: Event) -> Action {
        let action = self.step(event);
        if is_final(action) {
            self.state = State::Finished;
        }
        action
    }

    fn step(&mut self, event: Event) -> Action {
        match (self.state, event) {
            (State::Idle, Event::Start) => self.next_attempt(),
            (State::BackingOff, Event::Done) => {
                self.state = State::Picking;
                Action::Pick
            }
            (State::Picking, Event::Picked(Some(target))) => {
                self.tried.push(target as u32);
                self.connect(target, self.reuse())
            }
            (State::Picking, Event::Picked(None)) => self.give_up(),
            (State::Connecting { target, .. }, Event::Connected { reused }) => {
                self.state = State::Sending {
                    target,
                    reused,
                    step: Step::Send,
                };
                Action::Send
            }
            (State::Connecting { target, .. }, Event::ConnectFailed(why)) => {
                self.connect_failed(target, why)
            }
            (
                State::Sending {
                    target,
                    reused,
                    step,
                },
                event,
            ) => self.sending(target, reused, step, event),
            (State::Recording { target, then }, Event::Done) => self.after_record(target, then),
            (State::AskingRetry { from, after }, Event::Retry(granted)) => {
                self.retry_answered(from, after, granted)
            }
            (State::Keeping { from }, Event::Kept(kept)) => {
                if kept {
                    self.kept = Some(from);
                }
                self.next_attempt()
            }
            (state, event) => out_of_order(event, state),
        }
    }

    /// Starts the next attempt: a backoff first from the second retry on.
    fn next_attempt(&mut self) -> Action {
        if self.tried.len() >= 2 {
            self.state = State::BackingOff;
            return Action::Backoff {
                retry: self.tried.len(),
            };
        }
        self.state = State::Picking;
        Action::Pick
    }

    /// Which connection an attempt may use: a pooled one, peeked at when
    /// the request could not be sent again if it turned out dead (a streamed
    /// body, or a request not safe to resend).
    fn reuse(&self) -> Reuse {
        Reuse::Pooled {
            checked: self.request.body == Body::Streamed || !self.may_resend(),
        }
    }

    fn connect(&mut self, target: usize, reuse: Reuse) -> Action {
        self.state = State::Connecting { target };
        Action::Connect { target, reuse }
    }

    fn connect_failed(&mut self, target: usize, why: ConnectFail) -> Action {
        let (outcome, answer) = match why {
            // Nothing reached it: nothing to record.
            ConnectFail::Gone => return self.retry_or_answer(target, Answer::TargetUnreachable),
            ConnectFail::Refused => (Outcome::Refused, Answer::TargetUnreachable),
            ConnectFail::TimedOut => (Outcome::ConnectTimeout, Answer::TargetTimeout),
            ConnectFail::Failed => (Outcome::ConnectFailed, Answer::TargetUnreachable),
        };
        self.record(target, outcome, Then::Retry(answer))
    }

    fn sending(&mut self, target: usize, reused: bool, step: Step, event: Event) -> Action {
        let next = |ex: &mut Exchange, step, action| {
            ex.state = State::Sending {
                target,
                reused,
                step,
            };
            action
        };
        match (step, event) {
            (Step::Send, Event::Sent) => {
                if self.request.body == Body::Streamed {
                    if self.request.expect_continue && !self.continued {
                        return next(self, Step::AwaitContinue, Action::AwaitContinue);
                    }
                    self.pumped = true;
                    return next(self, Step::Pump, Action::Pump);
                }
                next(self, Step::ReadHead, Action::ReadHead)
            }
            (Step::AwaitContinue, Event::Continue) => {
                self.continued = true;
                self.pumped = true;
                next(self, Step::Pump, Action::Pump)
            }
            (Step::Pump, Event::Pumped) => next(self, Step::ReadHead, Action::ReadHead),
            // A final answer (before the body, after `Expect`, or after it).
            (Step::AwaitContinue | Step::ReadHead, Event::Responded(status)) => {
                self.record(target, Outcome::Answered(status), Then::Respond(status))
            }
            (_, Event::ClientFailed(ClientFail::Answer(answer))) => Action::Reject(answer),
            (_, Event::ClientFailed(ClientFail::Gone)) => Action::Hangup,
            (_, Event::SendFailed(fail)) => self.send_failed(target, reused, fail),
            (step, event) => out_of_order(event, step),
        }
    }

    /// The request failed before any answer: it may go again if the target
    /// saw none of it, or if running it twice is harmless.
    fn send_failed(&mut self, target: usize, reused: bool, fail: SendFail) -> Action {
        let resend = self.replayable()
            && match fail {
                SendFail::NotSent => true,
                SendFail::NoResponse => self.may_resend(),
                _ => false,
            };
        if resend && reused {
            // A kept-alive connection the target had closed: send again on
            // a fresh connection to the same target.
            return self.connect(target, Reuse::Fresh);
        }
        // The client connection closes only when part of a streamed body
        // went out (what is left of it is unknown); a request read whole
        // leaves it in a known state.
        let close = !self.replayable();
        let (outcome, then) = match fail {
            SendFail::NotSent | SendFail::NoResponse if resend => {
                (Outcome::NoResponse, Then::Retry(Answer::TargetUnreachable))
            }
            SendFail::NotSent | SendFail::NoResponse => (
                Outcome::NoResponse,
                Then::Fail(Answer::TargetUnreachable, close),
            ),
            SendFail::TimedOut => (
                Outcome::ResponseTimeout,
                Then::Fail(Answer::TargetTimeout, close),
            ),
            SendFail::Invalid => (
                Outcome::InvalidResponse,
                Then::Fail(Answer::BadResponse, close),
            ),
            SendFail::Upstream => (Outcome::Broken, Then::Fail(Answer::TargetFailed, true)),
        };
        self.record(target, outcome, then)
    }

    fn record(&mut self, target: usize, outcome: Outcome, then: Then) -> Action {
        self.state = State::Recording { target, then };
        Action::Record { target, outcome }
    }

    fn after_record(&mut self, target: usize, then: Then) -> Action {
        match then {
            Then::Respond(500) if self.may_retry() => {
                self.last = Answer::AllTargetsFailed;
                self.state = State::AskingRetry {
                    from: target,
                    after: Failed::Answered500,
                };
                Action::AskRetry { from: target }
            }
            Then::Respond(101) => Action::Switch { target },
            Then::Respond(_) => Action::Relay { target },
            Then::Retry(answer) => self.retry_or_answer(target, answer),
            Then::Fail(answer, close) => Action::Answer { answer, close },
        }
    }

    /// Whether the rules let another attempt be asked for: the request can
    /// be sent again and attempts are left (the budget is asked next).
    fn may_retry(&self) -> bool {
        self.replayable() && self.tried.len() < 1 + self.policy.retries
    }

    fn retry_or_answer(&mut self, from: usize, answer: Answer) -> Action {
        self.last = answer;
        if !self.may_retry() {
            return self.give_up();
        }
        self.state = State::AskingRetry {
            from,
            after: Failed::Otherwise,
        };
        Action::AskRetry { from }
    }

    fn retry_answered(&mut self, from: usize, after: Failed, granted: bool) -> Action {
        match (granted, after) {
            // A 500 that may not be retried is the answer.
            (false, Failed::Answered500) => Action::Relay { target: from },
            (false, Failed::Otherwise) => self.give_up(),
            (true, Failed::Answered500) => {
                // Close the connection rather than drain it; keep the 500
                // if it is whole, in case it has to be the answer after all.
                self.state = State::Keeping { from };
                Action::KeepResponse
            }
            (true, Failed::Otherwise) => self.next_attempt(),
        }
    }

    /// No other attempt: the kept 500, or the last failure's answer.
    fn give_up(&mut self) -> Action {
        match self.kept {
            Some(target) => Action::RelayKept { target },
            None => Action::Answer {
                answer: self.last,
                close: false,
            },
        }
    }
}

/// An event the last action cannot have led to: a bug in the driver. Tests
/// stop on it; a release build closes the client connection with a 502
/// rather than take the worker down.
#[cold]
fn out_of_order(event: Event, at: impl std::fmt::Debug) -> Action {
    debug_assert!(false, "exchange: {event:?} in {at:?}");
    Action::Answer {
        answer: Answer::TargetFailed,
        close: true,
    }
}

/// Whether `action` ends the exchange.
fn is_final(action: Action) -> bool {
    matches!(
        action,
        Action::Relay { .. }
            | Action::Switch { .. }
            | Action::RelayKept { .. }
            | Action::Answer { .. }
            | Action::Reject(_)
            | Action::Hangup
    )
}
