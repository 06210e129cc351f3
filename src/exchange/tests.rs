//! The README's retry and failure rules, one test each, driven by events
//! alone: no socket, no clock.

use super::*;
use crate::http::Error;

const POLICY: Policy = Policy {
    retries: 2,
    retry_non_idempotent: false,
};

fn get() -> Request {
    Request {
        idempotent: true,
        body: Body::Replayable,
        expect_continue: false,
    }
}

fn post() -> Request {
    Request {
        idempotent: false,
        ..get()
    }
}

fn streamed_post() -> Request {
    Request {
        body: Body::Streamed,
        ..post()
    }
}

/// Starts `ex` and feeds it `events` in turn; returns every action, the
/// first (the answer to `Start`) included. The last must end the exchange.
fn drive(ex: &mut Exchange, events: &[Event]) -> Vec<Action> {
    let mut actions = vec![ex.next(Event::Start)];
    for &event in events {
        assert!(
            !is_final(*actions.last().unwrap()),
            "{event:?} after the end: {actions:?}"
        );
        actions.push(ex.next(event));
    }
    assert!(is_final(*actions.last().unwrap()), "not over: {actions:?}");
    actions
}

fn pooled(checked: bool) -> Reuse {
    Reuse::Pooled { checked }
}

/// The events of an attempt on `target` that gets a response with `status`
/// on a pooled connection, for a request with no body to stream.
fn answered(target: usize, status: u16) -> Vec<Event> {
    vec![
        Event::Picked(Some(target)),
        Event::Connected { reused: true },
        Event::Sent,
        Event::Responded(status),
        Event::Done,
    ]
}

fn record(target: usize, outcome: Outcome) -> Action {
    Action::Record { target, outcome }
}

fn answer(answer: Answer, close: bool) -> Action {
    Action::Answer { answer, close }
}

/// The events of an attempt on `target` up to the request written.
fn sent(target: usize, reused: bool) -> Vec<Event> {
    vec![
        Event::Picked(Some(target)),
        Event::Connected { reused },
        Event::Sent,
    ]
}

#[test]
fn a_200_is_relayed_and_recorded() {
    let mut ex = Exchange::new(POLICY, get(), Vec::new());
    let actions = drive(&mut ex, &answered(3, 200));
    assert_eq!(
        actions,
        [
            Action::Pick,
            Action::Connect {
                target: 3,
                reuse: pooled(false)
            },
            Action::Send,
            Action::ReadHead,
            record(3, Outcome::Answered(200)),
            Action::Relay { target: 3 },
        ]
    );
    assert_eq!(ex.tried(), [3]);
}

#[test]
fn no_target_to_pick_is_503_no_healthy_target() {
    let mut ex = Exchange::new(POLICY, get(), Vec::new());
    let actions = drive(&mut ex, &[Event::Picked(None)]);
    assert_eq!(
        actions.last(),
        Some(&answer(Answer::NoHealthyTarget, false))
    );
}

#[test]
fn a_500_degrades_its_target_and_the_request_goes_to_another_for_every_method() {
    for request in [get(), post()] {
        let mut ex = Exchange::new(POLICY, request, Vec::new());
        let mut events = answered(0, 500);
        events.extend([Event::Retry(true), Event::Kept(true)]);
        events.extend(answered(1, 200));
        let actions = drive(&mut ex, &events);
        assert!(actions.contains(&record(0, Outcome::Answered(500))));
        assert!(Outcome::Answered(500).degrades());
        assert!(actions.contains(&Action::AskRetry { from: 0 }));
        assert!(actions.contains(&Action::KeepResponse));
        assert_eq!(actions.last(), Some(&Action::Relay { target: 1 }));
        assert_eq!(ex.tried(), [0, 1]);
    }
}

#[test]
fn a_500_is_the_answer_when_the_budget_refuses_the_retry() {
    let mut ex = Exchange::new(POLICY, get(), Vec::new());
    let mut events = answered(0, 500);
    events.push(Event::Retry(false));
    let actions = drive(&mut ex, &events);
    assert_eq!(actions.last(), Some(&Action::Relay { target: 0 }));
}

#[test]
fn attempts_stop_at_one_plus_retries_and_the_last_500_is_the_answer() {
    let mut ex = Exchange::new(POLICY, get(), Vec::new());
    let mut events = Vec::new();
    for target in 0..2 {
        events.extend(answered(target, 500));
        events.extend([Event::Retry(true), Event::Kept(true)]);
        if target == 1 {
            // The second retry waits a backoff first.
            events.push(Event::Done);
        }
    }
    // The third attempt's 500 is relayed at once: no attempt is left, so
    // the budget is not even asked.
    events.extend(answered(2, 500));
    let actions = drive(&mut ex, &events);
    assert_eq!(actions.last(), Some(&Action::Relay { target: 2 }));
    let asked = actions
        .iter()
        .filter(|a| matches!(a, Action::AskRetry { .. }))
        .count();
    assert_eq!(asked, 2);
    assert!(actions.contains(&Action::Backoff { retry: 2 }));
    assert!(!actions.contains(&Action::Backoff { retry: 1 }));
}

#[test]
fn when_no_target_is_left_after_a_500_the_kept_500_is_the_answer() {
    let mut ex = Exchange::new(POLICY, get(), Vec::new());
    let mut events = answered(4, 500);
    events.extend([Event::Retry(true), Event::Kept(true), Event::Picked(None)]);
    let actions = drive(&mut ex, &events);
    assert_eq!(actions.last(), Some(&Action::RelayKept { target: 4 }));
}

#[test]
fn a_500_not_kept_whole_leaves_502_every_target_tried_failed() {
    let mut ex = Exchange::new(POLICY, get(), Vec::new());
    let mut events = answered(4, 500);
    events.extend([Event::Retry(true), Event::Kept(false), Event::Picked(None)]);
    let actions = drive(&mut ex, &events);
    assert_eq!(
        actions.last(),
        Some(&answer(Answer::AllTargetsFailed, false))
    );
}

#[test]
fn a_refused_connect_is_recorded_and_retried_whatever_the_method() {
    for request in [get(), post(), streamed_post()] {
        let mut ex = Exchange::new(POLICY, request, Vec::new());
        let events = [
            Event::Picked(Some(0)),
            Event::ConnectFailed(ConnectFail::Refused),
            Event::Done,
            Event::Retry(true),
            Event::Picked(None),
        ];
        let actions = drive(&mut ex, &events);
        assert!(actions.contains(&record(0, Outcome::Refused)));
        assert!(Outcome::Refused.degrades() && Outcome::Refused.ends_pooled());
        assert!(actions.contains(&Action::AskRetry { from: 0 }));
        assert_eq!(
            actions.last(),
            Some(&answer(Answer::TargetUnreachable, false))
        );
    }
}

#[test]
fn a_connect_timeout_is_retried_and_is_504_when_nothing_else_answers() {
    let mut ex = Exchange::new(POLICY, get(), Vec::new());
    let events = [
        Event::Picked(Some(0)),
        Event::ConnectFailed(ConnectFail::TimedOut),
        Event::Done,
        Event::Retry(false),
    ];
    let actions = drive(&mut ex, &events);
    assert!(actions.contains(&record(0, Outcome::ConnectTimeout)));
    assert_eq!(actions.last(), Some(&answer(Answer::TargetTimeout, false)));
}

#[test]
fn a_target_gone_by_a_reload_is_not_recorded_and_another_is_tried() {
    let mut ex = Exchange::new(POLICY, get(), Vec::new());
    let mut events = vec![
        Event::Picked(Some(0)),
        Event::ConnectFailed(ConnectFail::Gone),
        Event::Retry(true),
    ];
    events.extend(answered(1, 200));
    let actions = drive(&mut ex, &events);
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::Record { target: 0, .. })));
    assert_eq!(actions.last(), Some(&Action::Relay { target: 1 }));
}

#[test]
fn a_pooled_connection_found_closed_is_resent_on_a_fresh_one_to_the_same_target() {
    for request in [get(), post()] {
        let mut ex = Exchange::new(POLICY, request, Vec::new());
        let events = [
            Event::Picked(Some(0)),
            Event::Connected { reused: true },
            Event::SendFailed(SendFail::NotSent),
            Event::Connected { reused: false },
            Event::Sent,
            Event::Responded(200),
            Event::Done,
        ];
        let actions = drive(&mut ex, &events);
        assert_eq!(
            actions[3],
            Action::Connect {
                target: 0,
                reuse: Reuse::Fresh
            }
        );
        // Not a failure of the target: the only outcome is its answer.
        let records: Vec<_> = actions
            .iter()
            .filter(|a| matches!(a, Action::Record { .. }))
            .collect();
        assert_eq!(records, [&record(0, Outcome::Answered(200))]);
    }
}

#[test]
fn a_request_not_written_at_all_is_retried_whatever_the_method() {
    let mut ex = Exchange::new(POLICY, post(), Vec::new());
    let mut events = vec![
        Event::Picked(Some(0)),
        Event::Connected { reused: false },
        Event::SendFailed(SendFail::NotSent),
        Event::Done,
        Event::Retry(true),
    ];
    events.extend(answered(1, 201));
    let actions = drive(&mut ex, &events);
    assert!(actions.contains(&record(0, Outcome::NoResponse)));
    assert_eq!(actions.last(), Some(&Action::Relay { target: 1 }));
}

#[test]
fn no_answer_after_the_request_went_out_is_retried_only_when_idempotent() {
    // GET: retried.
    let mut ex = Exchange::new(POLICY, get(), Vec::new());
    let mut events = vec![
        Event::Picked(Some(0)),
        Event::Connected { reused: false },
        Event::Sent,
        Event::SendFailed(SendFail::NoResponse),
        Event::Done,
        Event::Retry(true),
    ];
    events.extend(answered(1, 200));
    assert_eq!(
        drive(&mut ex, &events).last(),
        Some(&Action::Relay { target: 1 })
    );

    // POST: 502, the connection stays (the request was read whole).
    let mut ex = Exchange::new(POLICY, post(), Vec::new());
    let events = [
        Event::Picked(Some(0)),
        Event::Connected { reused: false },
        Event::Sent,
        Event::SendFailed(SendFail::NoResponse),
        Event::Done,
    ];
    let actions = drive(&mut ex, &events);
    assert_eq!(
        actions.last(),
        Some(&answer(Answer::TargetUnreachable, false))
    );
    assert!(!actions.iter().any(|a| matches!(a, Action::AskRetry { .. })));
}

#[test]
fn retry_non_idempotent_resends_a_post_that_got_no_answer() {
    let policy = Policy {
        retry_non_idempotent: true,
        ..POLICY
    };
    let mut ex = Exchange::new(policy, post(), Vec::new());
    let mut events = vec![
        Event::Picked(Some(0)),
        Event::Connected { reused: false },
        Event::Sent,
        Event::SendFailed(SendFail::NoResponse),
        Event::Done,
        Event::Retry(true),
    ];
    events.extend(answered(1, 200));
    assert_eq!(
        drive(&mut ex, &events).last(),
        Some(&Action::Relay { target: 1 })
    );
}

#[test]
fn a_post_on_a_pooled_connection_is_peeked_at_and_a_get_is_not() {
    let first_connect = |request| {
        let mut ex = Exchange::new(POLICY, request, Vec::new());
        ex.next(Event::Start);
        ex.next(Event::Picked(Some(0)))
    };
    assert_eq!(
        first_connect(get()),
        Action::Connect {
            target: 0,
            reuse: pooled(false)
        }
    );
    assert_eq!(
        first_connect(post()),
        Action::Connect {
            target: 0,
            reuse: pooled(true)
        }
    );
    let streamed_get = Request {
        body: Body::Streamed,
        ..get()
    };
    assert_eq!(
        first_connect(streamed_get),
        Action::Connect {
            target: 0,
            reuse: pooled(true)
        }
    );
}

#[test]
fn a_response_timeout_is_504_and_an_invalid_response_502_neither_retried() {
    for (fail, outcome, expected) in [
        (
            SendFail::TimedOut,
            Outcome::ResponseTimeout,
            Answer::TargetTimeout,
        ),
        (
            SendFail::Invalid,
            Outcome::InvalidResponse,
            Answer::BadResponse,
        ),
    ] {
        let mut ex = Exchange::new(POLICY, get(), Vec::new());
        let mut events = sent(0, true);
        events.extend([Event::SendFailed(fail), Event::Done]);
        let actions = drive(&mut ex, &events);
        assert!(actions.contains(&record(0, outcome)));
        assert_eq!(actions.last(), Some(&answer(expected, false)));
    }
}

#[test]
fn a_streamed_body_is_sent_once_and_a_500_after_it_is_the_answer() {
    let mut ex = Exchange::new(POLICY, streamed_post(), Vec::new());
    let events = [
        Event::Picked(Some(0)),
        Event::Connected { reused: false },
        Event::Sent,
        Event::Pumped,
        Event::Responded(500),
        Event::Done,
    ];
    let actions = drive(&mut ex, &events);
    assert!(actions.contains(&Action::Pump));
    assert!(!ex.replayable());
    assert!(!actions.iter().any(|a| matches!(a, Action::AskRetry { .. })));
    assert_eq!(actions.last(), Some(&Action::Relay { target: 0 }));
}

#[test]
fn what_happens_when_a_target_answers_500_on_the_second_attempt_of_a_streamed_post() {
    // The first attempt's connect is refused (nothing was sent, so the
    // streamed body may still go elsewhere); the second target takes the
    // body and answers 500: no third attempt, its 500 is relayed.
    let mut ex = Exchange::new(POLICY, streamed_post(), Vec::new());
    let events = [
        Event::Picked(Some(0)),
        Event::ConnectFailed(ConnectFail::Refused),
        Event::Done,
        Event::Retry(true),
        Event::Picked(Some(1)),
        Event::Connected { reused: false },
        Event::Sent,
        Event::Pumped,
        Event::Responded(500),
        Event::Done,
    ];
    let actions = drive(&mut ex, &events);
    assert!(actions.contains(&record(1, Outcome::Answered(500))));
    assert_eq!(actions.last(), Some(&Action::Relay { target: 1 }));
}

#[test]
fn a_target_failing_while_a_body_streams_to_it_is_502_and_the_client_closes() {
    let mut ex = Exchange::new(POLICY, streamed_post(), Vec::new());
    let events = [
        Event::Picked(Some(0)),
        Event::Connected { reused: false },
        Event::Sent,
        Event::SendFailed(SendFail::Upstream),
        Event::Done,
    ];
    let actions = drive(&mut ex, &events);
    assert!(actions.contains(&record(0, Outcome::Broken)));
    assert_eq!(actions.last(), Some(&answer(Answer::TargetFailed, true)));
}

#[test]
fn no_answer_after_part_of_a_streamed_body_went_out_is_502_and_closes_even_for_a_put() {
    let put = Request {
        idempotent: true,
        ..streamed_post()
    };
    let mut ex = Exchange::new(POLICY, put, Vec::new());
    let events = [
        Event::Picked(Some(0)),
        Event::Connected { reused: true },
        Event::Sent,
        Event::Pumped,
        Event::SendFailed(SendFail::NoResponse),
        Event::Done,
    ];
    let actions = drive(&mut ex, &events);
    assert_eq!(
        actions.last(),
        Some(&answer(Answer::TargetUnreachable, true))
    );
}

#[test]
fn a_client_failing_mid_body_is_answered_or_dropped_and_the_target_is_not_blamed() {
    for (fail, end) in [
        (
            ClientFail::Answer(Answer::Refused(Error::BadFraming)),
            Action::Reject(Answer::Refused(Error::BadFraming)),
        ),
        (ClientFail::Gone, Action::Hangup),
    ] {
        let mut ex = Exchange::new(POLICY, streamed_post(), Vec::new());
        let events = [
            Event::Picked(Some(0)),
            Event::Connected { reused: false },
            Event::Sent,
            Event::ClientFailed(fail),
        ];
        let actions = drive(&mut ex, &events);
        assert_eq!(actions.last(), Some(&end));
        assert!(!actions.iter().any(|a| matches!(a, Action::Record { .. })));
    }
}

#[test]
fn expect_continue_waits_for_the_target_then_streams() {
    let request = Request {
        expect_continue: true,
        ..streamed_post()
    };
    let mut ex = Exchange::new(POLICY, request, Vec::new());
    let events = [
        Event::Picked(Some(0)),
        Event::Connected { reused: false },
        Event::Sent,
        Event::Continue,
        Event::Pumped,
        Event::Responded(201),
        Event::Done,
    ];
    let actions = drive(&mut ex, &events);
    assert_eq!(
        actions[3..6],
        [Action::AwaitContinue, Action::Pump, Action::ReadHead]
    );
    assert_eq!(actions.last(), Some(&Action::Relay { target: 0 }));
}

#[test]
fn a_final_answer_before_the_body_is_relayed_and_the_body_never_sent() {
    let request = Request {
        expect_continue: true,
        ..streamed_post()
    };
    let mut ex = Exchange::new(POLICY, request, Vec::new());
    let events = [
        Event::Picked(Some(0)),
        Event::Connected { reused: false },
        Event::Sent,
        Event::Responded(417),
        Event::Done,
    ];
    let actions = drive(&mut ex, &events);
    assert!(!actions.contains(&Action::Pump));
    assert!(ex.replayable());
    assert_eq!(actions.last(), Some(&Action::Relay { target: 0 }));
}

#[test]
fn a_500_before_the_body_was_asked_for_may_go_to_another_target() {
    let request = Request {
        expect_continue: true,
        ..streamed_post()
    };
    let mut ex = Exchange::new(POLICY, request, Vec::new());
    let events = [
        Event::Picked(Some(0)),
        Event::Connected { reused: false },
        Event::Sent,
        Event::Responded(500),
        Event::Done,
        Event::Retry(true),
        Event::Kept(true),
        Event::Picked(Some(1)),
        Event::Connected { reused: false },
        Event::Sent,
        Event::Continue,
        Event::Pumped,
        Event::Responded(200),
        Event::Done,
    ];
    let actions = drive(&mut ex, &events);
    assert_eq!(actions.last(), Some(&Action::Relay { target: 1 }));
}

#[test]
fn a_101_switches_protocols() {
    let mut ex = Exchange::new(POLICY, get(), Vec::new());
    let actions = drive(&mut ex, &answered(2, 101));
    assert_eq!(actions.last(), Some(&Action::Switch { target: 2 }));
}

#[test]
fn a_503_is_relayed_and_counts_towards_ejection() {
    let mut ex = Exchange::new(POLICY, get(), Vec::new());
    let actions = drive(&mut ex, &answered(0, 503));
    assert!(actions.contains(&record(0, Outcome::Answered(503))));
    assert!(Outcome::Answered(503).is_failure());
    assert!(!Outcome::Answered(503).degrades());
    assert_eq!(actions.last(), Some(&Action::Relay { target: 0 }));
}

#[test]
fn no_retries_means_one_attempt() {
    let policy = Policy {
        retries: 0,
        ..POLICY
    };
    let mut ex = Exchange::new(policy, get(), Vec::new());
    let events = [
        Event::Picked(Some(0)),
        Event::ConnectFailed(ConnectFail::Failed),
        Event::Done,
    ];
    let actions = drive(&mut ex, &events);
    assert!(actions.contains(&record(0, Outcome::ConnectFailed)));
    assert_eq!(
        actions.last(),
        Some(&answer(Answer::TargetUnreachable, false))
    );
}

#[test]
fn the_tried_list_is_reused_and_starts_empty() {
    let mut ex = Exchange::new(POLICY, get(), Vec::with_capacity(8));
    drive(&mut ex, &answered(5, 200));
    let tried = ex.into_tried();
    assert_eq!(tried, [5]);
    let ex = Exchange::new(POLICY, get(), tried);
    assert!(ex.tried().is_empty());
}

#[test]
#[should_panic(expected = "exchange: Sent in Picking")]
fn an_event_the_last_action_cannot_have_led_to_is_caught_in_tests() {
    let mut ex = Exchange::new(POLICY, get(), Vec::new());
    ex.next(Event::Start);
    ex.next(Event::Sent);
}
