//! Balancing policies: the algorithms (`--algorithm`, weights), health-check
//! hysteresis (`--rise`, `--fall`), passive ejection (`--eject-after`,
//! `--eject-time`), never ejecting everything, slow start (`--slow-start`),
//! the retry budget (`--retry-budget`, `--retry-floor`), what `/targets`
//! says about them, and their command-line errors.

mod support;
use support::*;

use std::time::Duration;

/// Deadline of a wait for a number of health-check rounds.
const ROUNDS_WAIT: Duration = Duration::from_secs(20);

/// Health interval of the tests that watch the prober. A check's deadline is
/// the interval too, and a check that times out counts as a failure: 100 ms
/// rather than 50 ms keeps a stall of the machine from adding failures the
/// test did not script.
const CHECK_EVERY: &str = "100ms";

/// Every `--algorithm`.
const ALGORITHMS: [&str; 4] = ["round-robin", "weighted", "least-connections", "p2c-ewma"];

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `-b` for a target with a weight.
fn weighted(b: &Backend, weight: u32) -> String {
    format!("{},weight={weight}", b.addr())
}

/// Like [`start_balancer`], with the targets given as `-b` specs (weights
/// and all): one worker, a health interval of 60 s, then `extra`.
fn start_specs(specs: &[String], extra: &[&str]) -> Balancer {
    let mut args: Vec<&str> = Vec::new();
    for spec in specs {
        args.extend(["-b", spec.as_str()]);
    }
    args.extend(["--workers", "1", "--health-interval", "60s"]);
    args.extend_from_slice(extra);
    Balancer::start(&args)
}

/// How many lines of the log contain `needle`.
fn count_log(lb: &Balancer, needle: &str) -> usize {
    lb.log().iter().filter(|l| l.contains(needle)).count()
}

/// Waits until more than `before` lines contain `needle`.
fn expect_another_log(lb: &Balancer, needle: &str, before: usize, timeout: Duration) {
    assert!(
        wait_for(timeout, || count_log(lb, needle) > before),
        "no new `{needle}` in {:#?}",
        lb.log()
    );
}

/// The log line of a state change of `b` (the start of it: the reason
/// follows in parentheses).
fn transition(b: &Backend, from: &str, to: &str) -> String {
    format!("health: {} {from} -> {to}", target_name(b))
}

/// The log line of an ejection of `b` after `n` failures, the last `last`.
fn ejection(b: &Backend, time: &str, n: usize, last: &str) -> String {
    format!(
        "health: {} healthy -> ejected for {time} ({n} failures in a row, last: {last})",
        target_name(b)
    )
}

/// The log line of the end of an ejection of `b`.
fn ejection_over(b: &Backend) -> String {
    format!(
        "health: {} ejected -> healthy (ejection over)",
        target_name(b)
    )
}

/// How many of the latest answers in a row equal `pass`.
fn trailing(answers: &[bool], pass: bool) -> usize {
    answers.iter().rev().take_while(|&&a| a == pass).count()
}

/// Waits until `b` has answered `n` more health checks than now.
fn wait_for_more_checks(b: &Backend, n: usize) {
    let want = b.health_checks() + n;
    assert!(
        b.wait_for_health_checks(want, ROUNDS_WAIT),
        "{} answered {} health checks, not {want}",
        b.name(),
        b.health_checks()
    );
}

/// How many of `names` are `who`.
fn count(names: &[String], who: &str) -> usize {
    names.iter().filter(|n| *n == who).count()
}

/// Sends requests on `c` until `until` holds (checked after each answer),
/// at most `most` of them; the answers.
fn send_until(c: &mut Client, most: usize, until: impl Fn() -> bool) -> Vec<Response> {
    let mut answers = Vec::new();
    while !until() {
        assert!(
            answers.len() < most,
            "still not there after {most} requests"
        );
        answers.push(c.request("GET", "/", &[], b""));
    }
    answers
}

/// Asserts `names` is a smooth 3:1 rotation of A and B: every four in a row
/// are A, A, B, A in some rotation.
fn assert_smooth_3_to_1(names: &[String]) {
    assert_eq!(
        (count(names, "A"), count(names, "B")),
        (30, 10),
        "{names:?}"
    );
    assert_eq!(count(&names[..4], "B"), 1, "{names:?}");
    for i in 0..names.len() - 4 {
        assert_eq!(names[i], names[i + 4], "not periodic at {i}: {names:?}");
    }
}

/// The value of `field` in a compact JSON object (`{"a":1,"b":"x"}`), as
/// written: strings keep their quotes.
fn json_field<'a>(object: &'a str, field: &str) -> Option<&'a str> {
    let key = format!("\"{field}\":");
    let start = object.find(&key)? + key.len();
    let rest = &object[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The object for `b` in `/targets?format=json`, whitespace removed.
fn target_json(lb: &Balancer, b: &Backend) -> String {
    let body = admin_get(lb, "/targets?format=json");
    let compact: String = body.split_whitespace().collect();
    let want = format!("\"target\":\"{}\"", target_name(b));
    compact
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split("},{")
        .find(|o| o.contains(&want))
        .map(|o| format!("{{{}}}", o.trim_matches(['{', '}'])))
        .unwrap_or_else(|| panic!("no {want} in {body}"))
}

// ---------------------------------------------------------------------------
// Health-check hysteresis: --rise, --fall
// ---------------------------------------------------------------------------

#[test]
fn a_flapping_target_never_changes_state_with_the_default_rise_and_fall() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    // Pass, fail, pass, fail ...: never two passes or three failures in a row.
    b.set_health_pattern(&[true, false]);
    let lb = start_balancer(&[&a, &b], &["--health-interval", CHECK_EVERY]);
    let line = lb.startup_line();
    assert!(
        line.contains(&format!("{} healthy", target_name(&b))),
        "{line}"
    );

    assert!(
        b.wait_for_health_checks(12, ROUNDS_WAIT),
        "B answered only {} health checks",
        b.health_checks()
    );
    let about_b = format!("health: {} ", target_name(&b));
    assert_eq!(count_log(&lb, &about_b), 0, "{:#?}", lb.log());
    let names = names_on_one_connection(&lb, 4);
    assert_eq!(count(&names, "B"), 2, "{names:?}");
}

#[test]
fn three_failing_checks_in_a_row_degrade_and_two_passing_bring_back() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let lb = start_balancer(
        &[&a, &b],
        &[
            "--health-interval",
            CHECK_EVERY,
            "--fall",
            "3",
            "--rise",
            "2",
        ],
    );
    let down = transition(&b, "healthy", "degraded");
    let up = transition(&b, "degraded", "healthy");

    // Two failures in a row, never three: B stays healthy.
    b.set_health_pattern(&[false, false, true]);
    wait_for_more_checks(&b, 9);
    assert!(!lb.log_contains(&down), "{:#?}", lb.log());

    // Failing from now on: the third failure in a row degrades it.
    b.set_healthy(false);
    lb.expect_log(&down, ROUNDS_WAIT);
    let answers = b.health_answers();
    assert!(trailing(&answers, false) >= 3, "{answers:?}");
    assert_eq!(names_on_one_connection(&lb, 2), ["A", "A"]);

    // One pass at a time, never two in a row: B stays degraded.
    b.set_health_pattern(&[true, false]);
    wait_for_more_checks(&b, 8);
    assert!(!lb.log_contains(&up), "{:#?}", lb.log());

    // Passing from now on: the second pass in a row brings it back.
    b.set_healthy(true);
    lb.expect_log(&up, ROUNDS_WAIT);
    let answers = b.health_answers();
    assert!(trailing(&answers, true) >= 2, "{answers:?}");
    let names = names_on_one_connection(&lb, 2);
    assert_eq!(count(&names, "B"), 1, "{names:?}");
}

// ---------------------------------------------------------------------------
// Passive ejection: --eject-after, --eject-time
// ---------------------------------------------------------------------------

#[test]
fn ejects_a_target_after_three_503s_in_a_row_without_waiting_for_a_health_check() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(503));
    // The default --eject-time (10s) outlasts the rest of the test.
    let lb = start_balancer(&[&a, &b], &["--eject-after", "3"]);

    let mut c = Client::connect(lb.addr());
    send_until(&mut c, 10, || a.requests() >= 2);
    assert!(!lb.log_contains("-> ejected"), "{:#?}", lb.log());
    send_until(&mut c, 10, || a.requests() >= 3);
    lb.expect_log(&ejection(&a, "10s", 3, "answered 503"), WAIT);
    assert_eq!(a.health_checks(), 1, "only the start-up check");

    for i in 0..20 {
        let r = c.request("GET", "/", &[], b"");
        assert_eq!((r.status, answered_by(&r)), (200, "B"), "request {i}");
    }
    assert_eq!(a.requests(), 3);
}

#[test]
fn an_ejection_ends_after_its_time_and_the_next_one_in_a_row_lasts_twice_as_long() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(503));
    let lb = start_balancer(
        &[&a, &b],
        &[
            "--eject-after",
            "3",
            "--eject-time",
            "300ms",
            "--admin",
            "127.0.0.1:0",
        ],
    );

    let mut c = Client::connect(lb.addr());
    send_until(&mut c, 10, || a.requests() >= 3);
    lb.expect_log(&ejection(&a, "300ms", 3, "answered 503"), WAIT);
    lb.expect_log(&ejection_over(&a), WAIT);

    // Back in rotation, still answering 503: ejected again, for twice as long.
    send_until(&mut c, 20, || a.requests() >= 6);
    lb.expect_log(&ejection(&a, "600ms", 3, "answered 503"), WAIT);
    let family = "lb_target_ejections_total";
    assert!(
        wait_for(WAIT, || Scrape::take(&lb).target(family, &a) == 2.0),
        "{family} of A is {}",
        Scrape::take(&lb).target(family, &a)
    );
    assert_eq!(a.health_checks(), 1, "only the start-up check");
}

#[test]
fn a_response_below_500_resets_the_count_of_failures_in_a_row() {
    let a = Backend::start("A");
    let lb = start_balancer(&[&a], &["--eject-after", "2"]);
    let mut c = Client::connect(lb.addr());
    for (i, status) in [503, 200, 503, 404, 503].into_iter().enumerate() {
        a.set_mode(Mode::Status(status));
        assert_eq!(
            c.request("GET", "/", &[], b"").status,
            status,
            "request {i}"
        );
        assert!(
            !lb.log_contains("-> ejected"),
            "request {i}: {:#?}",
            lb.log()
        );
    }
    // The second 503 in a row.
    a.set_mode(Mode::Status(503));
    assert_eq!(c.request("GET", "/", &[], b"").status, 503);
    lb.expect_log(&ejection(&a, "10s", 2, "answered 503"), WAIT);
    assert_eq!(count_log(&lb, "-> ejected"), 1, "{:#?}", lb.log());
}

#[test]
fn connections_reset_without_an_answer_count_towards_ejection() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::ResetBeforeResponse);
    let lb = start_balancer(&[&a, &b], &["--eject-after", "2"]);
    let ejected = format!(
        "health: {} healthy -> ejected for 10s (2 failures in a row, last: ",
        target_name(&a)
    );

    // Each reset is retried on B, so the client sees only 200s.
    let mut c = Client::connect(lb.addr());
    let answers = send_until(&mut c, 10, || lb.log_contains(&ejected));
    assert!(answers.iter().all(|r| r.status == 200), "{answers:?}");
    assert_eq!(a.requests(), 2);
    for i in 0..10 {
        let r = c.request("GET", "/", &[], b"");
        assert_eq!((r.status, answered_by(&r)), (200, "B"), "request {i}");
    }
    assert_eq!(a.requests(), 2);
}

#[test]
fn an_ejected_target_whose_health_checks_fail_stays_out_when_the_ejection_ends() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(503));
    let lb = start_balancer(
        &[&a, &b],
        &[
            "--eject-after",
            "1",
            "--eject-time",
            "2s",
            "--health-interval",
            CHECK_EVERY,
            "--fall",
            "1",
        ],
    );
    let mut c = Client::connect(lb.addr());
    send_until(&mut c, 10, || a.requests() >= 1);
    lb.expect_log(&ejection(&a, "2s", 1, "answered 503"), WAIT);

    // Checks go in rounds: once A answered its second failing check, the
    // balancer has taken in the first.
    a.set_healthy(false);
    assert!(
        wait_for(ROUNDS_WAIT, || trailing(&a.health_answers(), false) >= 2),
        "{:?}",
        a.health_answers()
    );
    let end = format!("health: {} ejected -> ", target_name(&a));
    assert!(
        !lb.log_contains(&end),
        "the ejection ended before A's checks failed: {:#?}",
        lb.log()
    );
    lb.expect_log(&end, WAIT);
    assert!(!lb.log_contains(&ejection_over(&a)), "{:#?}", lb.log());

    let before = a.requests();
    let names = names_on_one_connection(&lb, 10);
    assert_eq!(count(&names, "B"), 10, "{names:?}");
    assert_eq!(a.requests(), before);
}

#[test]
fn a_target_degraded_by_a_500_needs_rise_passing_checks_to_come_back() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(500));
    let lb = start_balancer(
        &[&a, &b],
        &["--health-interval", CHECK_EVERY, "--rise", "3"],
    );
    let mut c = Client::connect(lb.addr());
    send_until(&mut c, 10, || a.requests() >= 1);
    // A was degraded before the balancer answered; at most one check it
    // answered before now can still be on its way to the balancer.
    let checks_then = a.health_checks();
    lb.expect_log(
        &format!(
            "health: {} healthy -> degraded (answered 500)",
            target_name(&a)
        ),
        WAIT,
    );
    a.set_mode(Mode::Ok);

    let up = transition(&a, "degraded", "healthy");
    lb.expect_log(&up, ROUNDS_WAIT);
    let checks = a.health_checks();
    assert!(
        checks >= checks_then + 2,
        "back after {} checks: {:#?}",
        checks - checks_then,
        lb.log()
    );
    let names = names_on_one_connection(&lb, 2);
    assert_eq!(count(&names, "A"), 1, "{names:?}");
}

// ---------------------------------------------------------------------------
// Never eject everything
// ---------------------------------------------------------------------------

#[test]
fn targets_degraded_by_500s_whose_checks_pass_still_get_requests() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(500));
    b.set_mode(Mode::Status(500));
    let lb = start_balancer(&[&a, &b], &[]);

    let mut c = Client::connect(lb.addr());
    assert_eq!(c.request("GET", "/", &[], b"").status, 500);
    for t in [&a, &b] {
        lb.expect_log(&transition(t, "healthy", "degraded"), WAIT);
    }

    let before = a.requests() + b.requests();
    for i in 0..6 {
        let r = c.request("GET", "/", &[], b"");
        assert_eq!(r.status, 500, "request {i}: {}", r.body_str());
        assert!(r.body_str().ends_with(" status 500"), "request {i}: {r:?}");
    }
    assert!(a.requests() + b.requests() >= before + 6);
}

#[test]
fn answers_503_when_every_target_failed_its_last_health_check() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(500));
    b.set_mode(Mode::Status(500));
    let lb = start_balancer(
        &[&a, &b],
        &["--health-interval", CHECK_EVERY, "--fall", "1"],
    );
    let mut c = Client::connect(lb.addr());
    assert_eq!(c.request("GET", "/", &[], b"").status, 500);

    a.set_healthy(false);
    b.set_healthy(false);
    // Checks go in rounds: once a target answered its second failing check,
    // the balancer has taken in the first.
    for t in [&a, &b] {
        assert!(
            wait_for(ROUNDS_WAIT, || trailing(&t.health_answers(), false) >= 2),
            "{}: {:?}",
            t.name(),
            t.health_answers()
        );
    }
    let before = a.requests() + b.requests();
    let r = c.request("GET", "/", &[], b"");
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.body_str().trim_end(), "no healthy target");
    assert_eq!(a.requests() + b.requests(), before);
}

// ---------------------------------------------------------------------------
// Retry budget: --retry-budget, --retry-floor
// ---------------------------------------------------------------------------

/// Two targets answering 500, `--retries 1 --retry-floor 0` and this
/// budget, 100 sequential requests: the attempts the targets saw, and the
/// balancer.
fn attempts_of_100_requests(budget: &str) -> (usize, Balancer) {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(500));
    b.set_mode(Mode::Status(500));
    let lb = start_balancer(
        &[&a, &b],
        &[
            "--retries",
            "1",
            "--retry-floor",
            "0",
            "--retry-budget",
            budget,
            "--admin",
            "127.0.0.1:0",
        ],
    );
    let mut c = Client::connect(lb.addr());
    for i in 0..100 {
        let r = c.request("GET", "/", &[], b"");
        assert_eq!(r.status, 500, "request {i}: {}", r.body_str());
        assert!(r.body_str().ends_with(" status 500"), "request {i}: {r:?}");
    }
    (a.requests() + b.requests(), lb)
}

#[test]
fn the_retry_budget_caps_retries_at_its_share_of_requests() {
    let (attempts, lb) = attempts_of_100_requests("20");
    assert!(attempts >= 100, "{attempts} attempts");
    assert!(attempts <= 100 + 20 + 2, "{attempts} attempts");
    let refused = Scrape::take(&lb).get("lb_retry_budget_refused_total");
    assert!(refused > 0.0, "lb_retry_budget_refused_total {refused}");
}

#[test]
fn a_retry_budget_of_100_percent_retries_every_request() {
    let (attempts, _lb) = attempts_of_100_requests("100");
    assert!(attempts >= 190, "{attempts} attempts");
}

/// Three targets answering 500 and these flags: how long one request took
/// (it went to all three and got the last 500).
fn time_three_500s(extra: &[&str]) -> Duration {
    let backends: Vec<Backend> = ["A", "B", "C"].iter().map(|n| Backend::start(n)).collect();
    for b in &backends {
        b.set_mode(Mode::Status(500));
    }
    let refs: Vec<&Backend> = backends.iter().collect();
    let lb = start_balancer(&refs, extra);
    let mut c = Client::connect(lb.addr());
    let started = std::time::Instant::now();
    let r = c.request("GET", "/", &[], b"");
    let took = started.elapsed();
    assert_eq!(r.status, 500, "{r:?}");
    let attempts: usize = backends.iter().map(Backend::requests).sum();
    assert_eq!(attempts, 1 + extra_retries(extra), "{attempts} attempts");
    took
}

fn extra_retries(extra: &[&str]) -> usize {
    extra
        .windows(2)
        .find(|w| w[0] == "--retries")
        .map_or(2, |w| w[1].parse().unwrap())
}

#[test]
fn the_second_retry_waits_a_backoff_of_at_least_half_the_base() {
    // The third attempt waits between 200 and 400 ms.
    let took = time_three_500s(&["--retries", "2", "--retry-backoff", "400ms"]);
    assert!(took >= Duration::from_millis(200), "took {took:?}");
}

#[test]
fn the_first_retry_goes_at_once() {
    // A 20 s backoff would show; only the first retry is made.
    let took = time_three_500s(&["--retries", "1", "--retry-backoff", "20s"]);
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

// ---------------------------------------------------------------------------
// Algorithms: --algorithm, weights
// ---------------------------------------------------------------------------

/// The share of 150 requests (6 clients, 25 each, at once) that goes to the
/// slow one of three targets (30 ms per answer) under `algorithm`.
fn slow_share(algorithm: &str) -> f64 {
    const CLIENTS: usize = 6;
    const EACH: usize = 25;
    let fast1 = Backend::start("F1");
    let slow = Backend::start("S");
    let fast2 = Backend::start("F2");
    slow.set_mode(Mode::Delay(Duration::from_millis(30)));
    let lb = start_balancer(&[&fast1, &slow, &fast2], &["--algorithm", algorithm]);
    requests_from_threads(lb.addr(), CLIENTS, EACH);
    let total = fast1.requests() + slow.requests() + fast2.requests();
    assert_eq!(total, CLIENTS * EACH, "{algorithm}");
    slow.requests() as f64 / total as f64
}

#[test]
fn round_robin_gives_a_slow_target_its_full_share() {
    let share = slow_share("round-robin");
    assert!(share >= 0.25, "the slow target got {share:.3}");
}

#[test]
fn least_connections_and_p2c_ewma_steer_away_from_a_slow_target() {
    let round_robin = slow_share("round-robin");
    for algorithm in ["least-connections", "p2c-ewma"] {
        let share = slow_share(algorithm);
        assert!(
            share < round_robin / 2.0,
            "{algorithm}: the slow target got {share:.3}, round robin gave it {round_robin:.3}"
        );
    }
}

#[test]
fn weighted_splits_3_to_1_in_a_smooth_rotation() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let lb = start_specs(
        &[weighted(&a, 3), b.addr().to_string()],
        &["--algorithm", "weighted"],
    );
    assert_smooth_3_to_1(&names_on_one_connection(&lb, 40));
}

#[test]
fn weighted_takes_weights_from_a_targets_file() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let file = TempFile::with(
        "weights",
        &format!(
            "# weights\n{}  # A\n\n{}\n",
            weighted(&a, 3),
            weighted(&b, 1)
        ),
    );
    let lb = Balancer::start(&[
        "--targets-file",
        file.arg(),
        "--workers",
        "1",
        "--health-interval",
        "60s",
        "--algorithm",
        "weighted",
    ]);
    assert_smooth_3_to_1(&names_on_one_connection(&lb, 40));
}

/// Three targets, the middle one failing its health checks from the start:
/// it gets none of 30 requests under `algorithm`.
fn never_picks_a_degraded_target(algorithm: &str) {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let c = Backend::start("C");
    b.set_healthy(false);
    let lb = start_balancer(&[&a, &b, &c], &["--algorithm", algorithm]);
    let names = names_on_one_connection(&lb, 30);
    assert_eq!(b.requests(), 0, "{algorithm}: {names:?}");
    assert_eq!(count(&names, "A") + count(&names, "C"), 30, "{algorithm}");
}

#[test]
fn round_robin_never_picks_a_degraded_target() {
    never_picks_a_degraded_target(ALGORITHMS[0]);
}

#[test]
fn weighted_never_picks_a_degraded_target() {
    never_picks_a_degraded_target(ALGORITHMS[1]);
}

#[test]
fn least_connections_never_picks_a_degraded_target() {
    never_picks_a_degraded_target(ALGORITHMS[2]);
}

#[test]
fn p2c_ewma_never_picks_a_degraded_target() {
    never_picks_a_degraded_target(ALGORITHMS[3]);
}

// ---------------------------------------------------------------------------
// Slow start: --slow-start
// ---------------------------------------------------------------------------

#[test]
fn a_target_that_comes_back_gets_a_small_share_during_slow_start() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let lb = start_balancer(
        &[&a, &b],
        &[
            "--slow-start",
            "60s",
            "--rise",
            "1",
            "--fall",
            "1",
            "--health-interval",
            CHECK_EVERY,
        ],
    );
    // Targets there at start-up get their full share at once.
    let names = names_on_one_connection(&lb, 4);
    assert_eq!(count(&names, "B"), 2, "{names:?}");

    let down = transition(&b, "healthy", "degraded");
    let up = transition(&b, "degraded", "healthy");
    let (downs, ups) = (count_log(&lb, &down), count_log(&lb, &up));
    b.set_healthy(false);
    expect_another_log(&lb, &down, downs, ROUNDS_WAIT);
    b.set_healthy(true);
    expect_another_log(&lb, &up, ups, ROUNDS_WAIT);

    // Without slow start, round robin would give B 20 of these.
    let names = names_on_one_connection(&lb, 40);
    assert!(count(&names, "B") < 10, "{names:?}");
}

/// A balancer with `a` on the command line, an empty `--targets-file`, the
/// admin endpoint and `extra`; then `b` is added to the file and a reload
/// asked for, and its first check seen passing.
fn add_by_reload(a: &Backend, b: &Backend, extra: &[&str]) -> (Balancer, TempFile) {
    let file = TempFile::with("reload", "# nothing yet\n");
    let mut args = vec!["--targets-file", file.arg(), "--admin", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let lb = start_balancer(&[a], &args);
    file.write(&format!("{}\n", target_name(b)));
    let r = post_reload(&lb);
    assert_eq!(r.status, 200, "POST /reload: {}", r.body_str());
    lb.expect_log(&transition(b, "degraded", "healthy"), WAIT);
    (lb, file)
}

#[test]
fn a_target_added_by_a_reload_is_decided_by_its_first_check() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    // Five passing checks a minute apart would keep B out for minutes.
    let (lb, _file) = add_by_reload(&a, &b, &["--rise", "5"]);
    assert_eq!(b.health_checks(), 1);
    let names = names_on_one_connection(&lb, 4);
    assert_eq!(count(&names, "B"), 2, "{names:?}");
}

#[test]
fn a_target_added_by_a_reload_gets_a_small_share_during_slow_start() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let (lb, _file) = add_by_reload(&a, &b, &["--slow-start", "60s"]);
    // Without slow start, round robin would give B 20 of these.
    let names = names_on_one_connection(&lb, 40);
    assert!(count(&names, "B") < 10, "{names:?}");
}

// ---------------------------------------------------------------------------
// /targets
// ---------------------------------------------------------------------------

#[test]
fn targets_json_shows_each_state_and_weight() {
    let up = Backend::start("up");
    let down = Backend::start("down");
    let out = Backend::start("out");
    down.set_healthy(false);
    out.set_mode(Mode::Status(503));
    let lb = start_specs(
        &[weighted(&up, 3), target_name(&down), target_name(&out)],
        &[
            "--admin",
            "127.0.0.1:0",
            "--eject-after",
            "1",
            "--eject-time",
            "60s",
        ],
    );
    let mut c = Client::connect(lb.addr());
    send_until(&mut c, 10, || out.requests() >= 1);
    lb.expect_log(
        &format!("health: {} healthy -> ejected", target_name(&out)),
        WAIT,
    );

    for (b, state, weight) in [
        (&up, "healthy", "3"),
        (&down, "degraded", "1"),
        (&out, "ejected", "1"),
    ] {
        let object = target_json(&lb, b);
        let want_state = format!("\"{state}\"");
        assert_eq!(
            json_field(&object, "state"),
            Some(want_state.as_str()),
            "{object}"
        );
        assert_eq!(json_field(&object, "weight"), Some(weight), "{object}");
    }
}

// ---------------------------------------------------------------------------
// Command-line errors
// ---------------------------------------------------------------------------

#[test]
fn bad_policy_flags_get_one_line_and_exit_status_2() {
    let b = "127.0.0.1:1";
    let run = |more: &[&str], want: &[&str]| {
        let mut args = vec!["-p", "0", "-b", b];
        args.extend_from_slice(more);
        assert_flag_error(&args, want);
    };
    run(&["--algorithm", "fastest"], &["--algorithm", "fastest"]);
    run(&["--rise", "0"], &["--rise"]);
    run(&["--fall", "0"], &["--fall"]);
    run(&["--retry-budget", "150"], &["--retry-budget", "150"]);
    run(&["--slow-start", "soon"], &["--slow-start", "soon"]);
    assert_flag_error(&["-p", "0", "-b", "127.0.0.1:1,weight=0"], &["weight"]);
    assert_flag_error(&["-p", "0", "-b", "127.0.0.1:1,wieght=2"], &["wieght"]);
}

#[test]
fn good_policy_flags_are_taken() {
    let a = Backend::start("A");
    let lb = start_specs(
        &[weighted(&a, 1000)],
        &[
            "--algorithm",
            "p2c-ewma",
            "--rise",
            "1",
            "--fall",
            "5",
            "--eject-after",
            "0",
            "--eject-time",
            "1s",
            "--retry-budget",
            "20%",
            "--retry-floor",
            "0",
            "--retry-backoff",
            "5ms",
            "--slow-start",
            "2s",
        ],
    );
    assert_eq!(names_on_one_connection(&lb, 2), ["A", "A"]);
    for more in [
        ["--algorithm", "least-connections"],
        ["--retry-budget", "0"],
        ["--retry-budget", "100"],
    ] {
        let lb = start_specs(&[target_name(&a)], &more);
        assert_eq!(names_on_one_connection(&lb, 1), ["A"], "{more:?}");
    }
}
