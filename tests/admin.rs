//! The admin endpoint (`--admin`): the start-up line that names it,
//! `/metrics` (checked with promtool: every family, the counters and gauges
//! as traffic and faults move them), `/targets` as text and JSON, and its
//! answers to unknown paths, wrong methods and HEAD.

mod support;
use support::*;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// Every metric family `/metrics` exposes, with its type.
const FAMILIES: [(&str, &str); 19] = [
    ("lb_target_requests_total", "counter"),
    ("lb_target_responses_total", "counter"),
    ("lb_target_retries_total", "counter"),
    ("lb_target_connect_failures_total", "counter"),
    ("lb_target_timeouts_total", "counter"),
    ("lb_target_in_flight", "gauge"),
    ("lb_target_healthy", "gauge"),
    ("lb_target_health_transitions_total", "counter"),
    ("lb_worker_open_connections", "gauge"),
    ("lb_worker_pooled_connections", "gauge"),
    ("lb_worker_replay_bytes", "gauge"),
    ("lb_replay_budget_refused_total", "counter"),
    ("lb_client_body_timeouts_total", "counter"),
    ("lb_dropped_underscore_fields_total", "counter"),
    ("lb_proxy_header_refused_total", "counter"),
    ("lb_request_duration_seconds", "histogram"),
    ("lb_uptime_seconds", "gauge"),
    ("lb_start_time_seconds", "gauge"),
    ("lb_build_info", "gauge"),
];

/// Waits until a scrape satisfies `cond`; the last scrape either way.
fn wait_for_scrape(lb: &Balancer, cond: impl Fn(&Scrape) -> bool) -> Scrape {
    let mut last = Scrape::take(lb);
    wait_for(WAIT, || {
        last = Scrape::take(lb);
        cond(&last)
    });
    last
}

/// Pipes `text` to `promtool check metrics` and asserts it passes (format
/// and lint).
fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run promtool (apt-get install -y prometheus)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}\nstdout: {}\nstderr: {}\n--- metrics ---\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn start_up_line_ends_with_the_admin_address() {
    let a = Backend::start("A");
    let lb = start_admin(&[&a], &[]);
    let addr = lb.admin_addr();
    assert_ne!(addr.port(), 0, "port 0 must be replaced by the real port");
    assert!(
        lb.startup_line().ends_with(&format!("{ADMIN_ON}{addr}")),
        "{}",
        lb.startup_line()
    );
    assert_eq!(admin(&lb, "GET", "/metrics", &[]).status, 200);
}

#[test]
fn metrics_pass_promtool_before_any_traffic() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let lb = start_admin(&[&a, &b], &[]);
    let r = admin(&lb, "GET", "/metrics", &[]);
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        r.headers
    );
    promtool_check(&r.body_str());
}

#[test]
fn metrics_pass_promtool_after_traffic_and_faults() {
    let ok = Backend::start("ok");
    let failing = Backend::start("failing");
    let stopped = Backend::start("stopped");
    let hanging = Backend::start("hanging");
    let lb = start_admin(
        &[&ok, &failing, &stopped, &hanging],
        &["--response-timeout", "300ms"],
    );
    failing.set_mode(Mode::Status(500));
    stopped.stop();
    hanging.set_mode(Mode::Hang);

    // Every request ends somehow (200, retried, 502, 504); which one does
    // not matter here, only that every kind of counter moved.
    for i in 0..6 {
        let mut c = Client::connect(lb.addr());
        let r = c.request("GET", &format!("/mix{i}"), &[("Connection", "close")], b"");
        assert!(r.status >= 200, "request {i}: {}", r.status);
    }
    let mut bad = Client::connect(lb.addr());
    bad.send(b"GET / HTTP/1.1\r\nHost: test\r\nBad Header: x\r\n\r\n");
    assert_eq!(bad.read_response().status, 400);
    let idle = Client::connect(lb.addr());
    assert_eq!(admin(&lb, "GET", "/nope", &[]).status, 404);

    let s = wait_for_scrape(&lb, |s| s.duration_count() >= 6.0);
    assert!(s.target("lb_target_connect_failures_total", &stopped) >= 1.0);
    assert!(s.target("lb_target_timeouts_total", &hanging) >= 1.0);
    assert!(s.responses(&failing, "5xx") >= 1.0);
    promtool_check(&s.text);
    drop(idle);
}

#[test]
fn metrics_expose_every_family_with_its_type() {
    let a = Backend::start("A");
    let lb = start_admin(&[&a], &[]);
    let s = Scrape::take(&lb);
    for (family, kind) in FAMILIES {
        assert!(
            s.text.contains(&format!("# TYPE {family} {kind}\n")),
            "no `# TYPE {family} {kind}` in\n{}",
            s.text
        );
        assert!(
            s.text.contains(&format!("# HELP {family} ")),
            "no help for {family} in\n{}",
            s.text
        );
    }
    for class in ["1xx", "2xx", "3xx", "4xx", "5xx"] {
        assert_eq!(s.responses(&a, class), 0.0);
    }
    assert_eq!(s.target("lb_target_healthy", &a), 1.0);
    assert_eq!(
        s.get(&format!(
            "lb_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = s.get("lb_start_time_seconds");
    assert!(
        started <= now + 1.0 && started > now - 60.0,
        "start {started}, now {now}"
    );
    let uptime = s.get("lb_uptime_seconds");
    assert!((0.0..60.0).contains(&uptime), "uptime {uptime}");
}

#[test]
fn request_and_2xx_counters_sum_to_the_requests_sent() {
    const N: usize = 10;
    let a = Backend::start("A");
    let b = Backend::start("B");
    let lb = start_admin(&[&a, &b], &[]);
    get_n(&lb, N);

    // The duration is recorded once the answer has gone out: wait for it.
    let s = wait_for_scrape(&lb, |s| s.duration_count() >= N as f64);
    let n = N as f64;
    assert_eq!(s.duration_count(), n, "{}", s.text);
    assert_eq!(s.get("lb_request_duration_seconds_bucket{le=\"+Inf\"}"), n);
    assert!(s.get("lb_request_duration_seconds_sum") > 0.0);
    assert_eq!(s.sum("lb_target_requests_total"), n, "{}", s.text);
    assert_eq!(s.target("lb_target_requests_total", &a), n / 2.0);
    assert_eq!(s.target("lb_target_requests_total", &b), n / 2.0);
    assert_eq!(s.responses(&a, "2xx") + s.responses(&b, "2xx"), n);
    assert_eq!(s.sum("lb_target_responses_total"), n, "{}", s.text);
    assert_eq!(s.sum("lb_target_retries_total"), 0.0);
    assert_eq!(s.sum("lb_target_in_flight"), 0.0);
    assert_eq!(a.requests() + b.requests(), N);
}

#[test]
fn a_target_answering_500_counts_a_5xx_a_retry_and_a_health_transition() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let lb = start_admin(&[&a, &b], &[]);
    let before = Scrape::take(&lb);
    assert_eq!(before.target("lb_target_healthy", &a), 1.0);
    a.set_mode(Mode::Status(500));

    // Worker 0's cursor starts at the first target: A answers 500, B 200.
    assert_eq!(get_n(&lb, 1), ["B"]);
    let s = Scrape::take(&lb);
    assert_eq!(s.target("lb_target_requests_total", &a), 1.0);
    assert_eq!(s.responses(&a, "5xx"), 1.0);
    assert_eq!(s.target("lb_target_retries_total", &a), 1.0);
    assert_eq!(s.responses(&b, "2xx"), 1.0);
    assert_eq!(s.target("lb_target_retries_total", &b), 0.0);
    assert_eq!(s.target("lb_target_healthy", &a), 0.0);
    assert_eq!(s.target("lb_target_healthy", &b), 1.0);
    assert_eq!(
        s.target("lb_target_health_transitions_total", &a),
        before.target("lb_target_health_transitions_total", &a) + 1.0
    );
    assert_eq!(
        s.target("lb_target_health_transitions_total", &b),
        before.target("lb_target_health_transitions_total", &b)
    );
}

#[test]
fn a_stopped_target_counts_a_connect_failure() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let lb = start_admin(&[&a, &b], &[]);
    assert_eq!(
        Scrape::take(&lb).target("lb_target_connect_failures_total", &a),
        0.0
    );
    a.stop();

    // A (first in turn) refuses the connection; B answers.
    assert_eq!(get_n(&lb, 1), ["B"]);
    let s = Scrape::take(&lb);
    assert_eq!(s.target("lb_target_connect_failures_total", &a), 1.0);
    assert_eq!(s.target("lb_target_connect_failures_total", &b), 0.0);
    assert_eq!(s.target("lb_target_retries_total", &a), 1.0);
    assert_eq!(s.target("lb_target_healthy", &a), 0.0);
}

#[test]
fn a_failure_with_nowhere_else_to_go_is_not_counted_as_a_retry() {
    let a = Backend::start("A");
    let lb = start_admin(&[&a], &[]);
    a.stop();

    // A refuses; there is no other target, so nothing is retried.
    let r = Client::connect(lb.addr()).request("GET", "/", &[], b"");
    assert_eq!(r.status, 502);
    let s = Scrape::take(&lb);
    assert_eq!(s.target("lb_target_connect_failures_total", &a), 1.0);
    assert_eq!(s.target("lb_target_retries_total", &a), 0.0);
}

#[test]
fn a_hanging_target_counts_a_timeout() {
    let a = Backend::start("A");
    let lb = start_admin(&[&a], &["--response-timeout", "300ms"]);
    a.set_mode(Mode::Hang);
    let r = Client::connect(lb.addr()).request("GET", "/", &[], b"");
    assert_eq!(r.status, 504);
    let s = Scrape::take(&lb);
    assert_eq!(s.target("lb_target_timeouts_total", &a), 1.0);
    assert_eq!(s.target("lb_target_requests_total", &a), 1.0);
    assert_eq!(s.target("lb_target_connect_failures_total", &a), 0.0);
    assert_eq!(s.target("lb_target_in_flight", &a), 0.0);
}

#[test]
fn open_connections_gauge_counts_an_idle_client_until_it_closes() {
    let a = Backend::start("A");
    let lb = start_admin(&[&a], &[]);
    let open = "lb_worker_open_connections{worker=\"0\"}";
    assert_eq!(Scrape::take(&lb).get(open), 0.0);

    let mut c = Client::connect(lb.addr());
    assert_eq!(c.request("GET", "/", &[], b"").status, 200);
    // Idle (and, after 5 ms, parked), but open.
    let s = wait_for_scrape(&lb, |s| s.get(open) >= 1.0);
    assert!(s.get(open) >= 1.0, "{}", s.text);

    drop(c);
    let s = wait_for_scrape(&lb, |s| s.get(open) == 0.0);
    assert_eq!(s.get(open), 0.0, "{}", s.text);
}

#[test]
fn pooled_connections_gauge_counts_a_kept_alive_target_connection() {
    let a = Backend::start("A");
    let lb = start_admin(&[&a], &[]);
    let pooled = "lb_worker_pooled_connections{worker=\"0\"}";
    assert_eq!(Scrape::take(&lb).get(pooled), 0.0);
    get_n(&lb, 1);
    let s = wait_for_scrape(&lb, |s| s.get(pooled) >= 1.0);
    assert!(s.get(pooled) >= 1.0, "{}", s.text);
}

#[test]
fn targets_lists_every_target_with_health_and_in_flight_as_text() {
    let up = Backend::start("up");
    let down = Backend::start("down");
    down.set_healthy(false);
    let lb = start_admin(&[&up, &down], &[]);
    let r = admin(&lb, "GET", "/targets", &[]);
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        r.headers
    );
    let body = r.body_str();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(
        lines,
        [
            "target address health in_flight".to_string(),
            target_row(&up, "healthy", 0),
            target_row(&down, "degraded", 0),
        ],
        "{body}"
    );
}

/// The `/targets` JSON of `(target, healthy, in_flight)`, without spaces.
fn targets_json(rows: &[(&Backend, bool, u64)]) -> String {
    let items: Vec<String> = rows
        .iter()
        .map(|(b, healthy, in_flight)| {
            format!(
                "{{\"target\":\"{}\",\"address\":\"{}\",\"healthy\":{healthy},\"state\":\"{}\",\"weight\":1,\"in_flight\":{in_flight}}}",
                target_name(b),
                b.addr(),
                if *healthy { "healthy" } else { "degraded" }
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// Asserts an answer is `/targets` as JSON for these rows (whitespace aside).
fn assert_targets_json(r: &Response, rows: &[(&Backend, bool, u64)]) {
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        r.headers
    );
    let compact: String = r.body_str().split_whitespace().collect();
    assert_eq!(compact, targets_json(rows));
}

#[test]
fn targets_lists_every_target_as_json_with_format_json() {
    let up = Backend::start("up");
    let down = Backend::start("down");
    down.set_healthy(false);
    let lb = start_admin(&[&up, &down], &[]);
    let r = admin(&lb, "GET", "/targets?format=json", &[]);
    assert_targets_json(&r, &[(&up, true, 0), (&down, false, 0)]);
}

#[test]
fn targets_lists_every_target_as_json_with_accept_application_json() {
    let up = Backend::start("up");
    let down = Backend::start("down");
    down.set_healthy(false);
    let lb = start_admin(&[&up, &down], &[]);
    let r = admin(&lb, "GET", "/targets", &[("Accept", "application/json")]);
    assert_targets_json(&r, &[(&up, true, 0), (&down, false, 0)]);
}

#[test]
fn targets_shows_a_request_in_flight_until_it_ends() {
    let slow = Backend::start("slow");
    let lb = start_admin(&[&slow], &["--response-timeout", "1s"]);
    slow.set_mode(Mode::Hang);
    let mut c = Client::connect(lb.addr());
    c.send_request("GET", "/held", &[], b"");

    let busy = target_row(&slow, "healthy", 1);
    let seen = wait_for(WAIT, || targets_text(&lb).lines().any(|l| l == busy));
    assert!(seen, "no `{busy}` in {}", targets_text(&lb));
    assert_eq!(Scrape::take(&lb).target("lb_target_in_flight", &slow), 1.0);
    assert_targets_json(
        &admin(&lb, "GET", "/targets?format=json", &[]),
        &[(&slow, true, 1)],
    );

    // The response timeout ends it.
    assert_eq!(c.read_response().status, 504);
    let idle = target_row(&slow, "healthy", 0);
    let seen = wait_for(WAIT, || targets_text(&lb).lines().any(|l| l == idle));
    assert!(seen, "no `{idle}` in {}", targets_text(&lb));
}

#[test]
fn admin_answers_404_to_an_unknown_path() {
    let a = Backend::start("A");
    let lb = start_admin(&[&a], &[]);
    for path in ["/", "/nope", "/metrics/x", "/targetsx", "/reload/now"] {
        let r = admin(&lb, "GET", path, &[]);
        assert_eq!(r.status, 404, "GET {path}: {}", r.body_str());
    }
    assert_eq!(admin(&lb, "POST", "/nope", &[]).status, 404);
    assert_eq!(a.requests(), 0, "the admin port forwards nothing");
}

#[test]
fn admin_answers_405_to_a_method_the_path_does_not_take() {
    let a = Backend::start("A");
    let file = targets_file(&[]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg()]);
    for (method, path) in [
        ("POST", "/metrics"),
        ("DELETE", "/metrics"),
        ("PUT", "/targets"),
        ("POST", "/targets"),
        ("GET", "/reload"),
        ("PUT", "/reload"),
    ] {
        let r = admin(&lb, method, path, &[]);
        assert_eq!(r.status, 405, "{method} {path}: {}", r.body_str());
    }
    assert!(
        !lb.log().iter().any(|l| l.contains("reload")),
        "a refused method reloaded: {:#?}",
        lb.log()
    );
}

#[test]
fn admin_answers_head_with_the_headers_only() {
    let a = Backend::start("A");
    let lb = start_admin(&[&a], &[]);
    for path in ["/metrics", "/targets"] {
        let r = admin(&lb, "HEAD", path, &[]);
        assert_eq!(r.status, 200, "HEAD {path}");
        assert!(r.body.is_empty(), "HEAD {path}: {}", r.body_str());
    }
}
