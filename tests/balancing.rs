//! Balancing: round robin over the healthy targets, and the health checks
//! that decide which targets are healthy.

mod support;
use support::*;

use std::time::{Duration, Instant};

/// Requests (health checks aside) to `b` for `path`.
fn requests_for(b: &Backend, path: &str) -> usize {
    b.requests_log().iter().filter(|r| r.path == path).count()
}

#[test]
fn spreads_requests_round_robin_on_one_connection() {
    let targets: Vec<Backend> = ["A", "B", "C"].map(Backend::start).into();
    let refs: Vec<&Backend> = targets.iter().collect();
    let lb = start_balancer(&refs, &[]);

    let names = names_on_one_connection(&lb, 9);
    assert_eq!(names, ["A", "B", "C", "A", "B", "C", "A", "B", "C"]);
    assert!(targets.iter().all(|t| t.requests() == 3));
}

#[test]
fn spreads_requests_round_robin_across_new_connections() {
    let targets: Vec<Backend> = ["A", "B", "C"].map(Backend::start).into();
    let refs: Vec<&Backend> = targets.iter().collect();
    let lb = start_balancer(&refs, &[]);

    let names: Vec<String> = (0..9)
        .map(|_| {
            let r = get(lb.addr(), "/");
            assert_eq!(r.status, 200);
            answered_by(&r).to_string()
        })
        .collect();
    assert_eq!(names, ["A", "B", "C", "A", "B", "C", "A", "B", "C"]);
    assert!(targets.iter().all(|t| t.requests() == 3));
}

#[test]
fn answers_503_when_no_target_is_healthy() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_healthy(false);
    b.set_healthy(false);
    let lb = start_balancer(&[&a, &b], &[]);
    assert!(lb.startup_line().contains("2 targets (0 healthy)"));

    let r = Client::connect(lb.addr()).request("GET", "/", &[], b"");
    assert_eq!(r.status, 503);
    assert_eq!(r.body_str().trim_end(), "no healthy target");
    assert!(r.body.len() < 64, "a short body: {:?}", r.body_str());
    assert_eq!(a.requests() + b.requests(), 0);
}

#[test]
fn the_first_health_round_completes_before_the_balancer_accepts() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    b.set_healthy(false);
    let lb = start_balancer(&[&a, &b], &[]);

    let line = lb.startup_line();
    assert!(line.contains("2 targets (1 healthy)"), "{line}");
    assert!(
        line.contains(&format!("{} healthy", target_name(&a))),
        "{line}"
    );
    assert!(
        line.contains(&format!("{} degraded", target_name(&b))),
        "{line}"
    );
    let why = format!(
        "health: {} is degraded at start (health check answered 503)",
        target_name(&b)
    );
    assert!(lb.log_contains(&why), "no `{why}` in {:#?}", lb.log());

    assert_eq!(names_on_one_connection(&lb, 4), ["A", "A", "A", "A"]);
    assert_eq!(b.requests(), 0);
    assert_eq!(b.health_checks(), 1);
}

#[test]
fn round_robin_skips_degraded_targets() {
    let targets: Vec<Backend> = ["A", "B", "C"].map(Backend::start).into();
    targets[1].set_healthy(false);
    let refs: Vec<&Backend> = targets.iter().collect();
    let lb = start_balancer(&refs, &[]);

    assert_eq!(names_on_one_connection(&lb, 4), ["A", "C", "A", "C"]);
}

#[test]
fn takes_a_target_out_when_its_health_check_fails() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let lb = start_balancer(&[&a, &b], &["--health-interval", "50ms"]);

    b.set_healthy(false);
    let down = format!(
        "health: {} healthy -> degraded (health check answered 503)",
        target_name(&b)
    );
    lb.expect_log(&down, WAIT);
    assert_eq!(names_on_one_connection(&lb, 4), ["A", "A", "A", "A"]);
    assert_eq!(b.requests(), 0);
}

#[test]
fn brings_a_target_back_when_its_health_check_passes_again() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    b.set_healthy(false);
    let lb = start_balancer(&[&a, &b], &["--health-interval", "50ms"]);
    assert!(lb
        .startup_line()
        .contains(&format!("{} degraded", target_name(&b))));
    assert_eq!(names_on_one_connection(&lb, 2), ["A", "A"]);

    b.set_healthy(true);
    let up = format!(
        "health: {} degraded -> healthy (health check answered 200)",
        target_name(&b)
    );
    lb.expect_log(&up, WAIT);
    let mut names = names_on_one_connection(&lb, 2);
    names.sort();
    assert_eq!(names, ["A", "B"]);
}

#[test]
fn keeps_checking_the_other_targets_while_one_health_check_hangs() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let lb = start_balancer(
        &[&a, &b],
        &[
            "--health-path",
            "/slow",
            "--health-interval",
            "100ms",
            "--health-timeout",
            "50ms",
        ],
    );
    assert!(lb.startup_line().contains("2 targets (2 healthy)"));

    // The health path is not `/_health`, so the mode applies to it.
    a.set_mode(Mode::Hang);
    let down = format!(
        "health: {} healthy -> degraded (health check timed out)",
        target_name(&a)
    );
    lb.expect_log(&down, WAIT);

    // A round every interval plus at most one health timeout: B keeps being
    // checked (and stays healthy) while A's checks keep hanging.
    let (a_before, b_before) = (requests_for(&a, "/slow"), requests_for(&b, "/slow"));
    assert!(
        wait_for(WAIT, || requests_for(&b, "/slow") >= b_before + 4),
        "B was checked {} times after A degraded",
        requests_for(&b, "/slow") - b_before
    );
    assert!(requests_for(&a, "/slow") >= a_before + 3);
    assert!(
        !lb.log_contains(&format!("{} healthy -> degraded", target_name(&b))),
        "{:#?}",
        lb.log()
    );
    assert!(names_on_one_connection(&lb, 2).iter().all(|n| n == "B"));
}

#[test]
fn a_round_of_checks_takes_one_health_timeout_not_one_per_hanging_target() {
    // Four checks that hang until the 300 ms deadline, then one that
    // answers: run one after the other, the start-up round would take 1.2 s.
    let hanging: Vec<Backend> = ["H1", "H2", "H3", "H4"].map(Backend::start).into();
    for h in &hanging {
        h.set_mode(Mode::Hang);
    }
    let ok = Backend::start("OK");
    let mut refs: Vec<&Backend> = hanging.iter().collect();
    refs.push(&ok);
    let started = Instant::now();
    let lb = start_balancer(
        &refs,
        &["--health-path", "/slow", "--health-timeout", "300ms"],
    );
    let took = started.elapsed();

    assert!(lb.startup_line().contains("5 targets (1 healthy)"));
    assert!(
        took < Duration::from_millis(900),
        "the start-up round took {took:?}"
    );
    assert!(took >= Duration::from_millis(300), "started after {took:?}");
}

#[test]
fn a_hanging_health_check_gives_up_after_the_default_timeout_of_1s() {
    // `--help`: "--health-timeout <dur> deadline of one health check
    // [default: 1s, at most the interval]". The interval here is 60 s.
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Hang);
    let started = Instant::now();
    let lb = start_balancer(&[&a, &b], &["--health-path", "/slow"]);
    let took = started.elapsed();

    let why = format!(
        "health: {} is degraded at start (health check timed out)",
        target_name(&a)
    );
    assert!(lb.log_contains(&why), "no `{why}` in {:#?}", lb.log());
    assert!(took < Duration::from_secs(3), "started after {took:?}");
}

#[test]
fn checks_the_given_health_path() {
    let a = Backend::start("A");
    let lb = start_balancer(&[&a], &["--health-path", "/custom"]);
    assert!(lb.startup_line().contains("1 targets (1 healthy)"));

    let log = a.requests_log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str()),
        ("GET", "/custom")
    );
    assert_eq!(a.health_checks(), 0, "/_health was not asked for");
}

#[test]
fn a_target_whose_health_path_answers_503_is_degraded_at_start() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    a.set_mode(Mode::Status(503));
    let lb = start_balancer(&[&a, &b], &["--health-path", "/custom"]);

    let line = lb.startup_line();
    assert!(
        line.contains(&format!("{} degraded", target_name(&a))),
        "{line}"
    );
    assert!(
        line.contains(&format!("{} healthy", target_name(&b))),
        "{line}"
    );
    let why = format!(
        "health: {} is degraded at start (health check answered 503)",
        target_name(&a)
    );
    assert!(lb.log_contains(&why), "no `{why}` in {:#?}", lb.log());
    assert_eq!(names_on_one_connection(&lb, 3), ["B", "B", "B"]);
}

#[test]
fn balances_over_more_than_64_targets() {
    let targets: Vec<Backend> = (0..70).map(|i| Backend::start(&format!("t{i}"))).collect();
    let refs: Vec<&Backend> = targets.iter().collect();
    let lb = start_balancer(&refs, &[]);
    assert!(lb.startup_line().contains("70 targets (70 healthy)"));

    let names = names_on_one_connection(&lb, 140);
    let expected: Vec<String> = (0..140).map(|i| format!("t{}", i % 70)).collect();
    assert_eq!(names, expected);
    let counts: Vec<usize> = targets.iter().map(Backend::requests).collect();
    assert!(counts.iter().all(|&n| n == 2), "{counts:?}");
}

#[test]
fn many_concurrent_connections_on_two_workers_all_get_200() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let lb = start_balancer(&[&a, &b], &["--workers", "2"]);
    let addr = lb.addr();

    const CLIENTS: usize = 32;
    const EACH: usize = 5;
    requests_from_threads(addr, CLIENTS, EACH);
    assert_eq!(a.requests() + b.requests(), CLIENTS * EACH);
    assert!(a.requests() > 0 && b.requests() > 0);
}
