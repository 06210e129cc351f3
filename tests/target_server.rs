//! The demo target server, and failover watched the way a user of
//! `make run-dev` watches it: switch a target's faults through its control
//! endpoint and see the balancer react.

mod support;
use support::*;

use std::path::Path;
use std::time::{Duration, Instant};

/// A running `target-server` (its start line says `listening on`, so the
/// balancer harness can run it too).
fn target_server(name: &str, extra: &[&str]) -> Balancer {
    let mut args = vec!["-p", "0", "--name", name];
    args.extend_from_slice(extra);
    Balancer::start_with(Path::new(env!("CARGO_BIN_EXE_target-server")), &args)
}

fn body(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let r = get(addr, path);
    (r.status, r.body_str())
}

#[test]
fn answers_hello_health_and_control() {
    let t = target_server("t1", &[]);
    assert_eq!(body(t.addr(), "/"), (200, "hello from t1\n".into()));
    assert_eq!(body(t.addr(), "/_health"), (200, "ok\n".into()));

    let (status, state) = body(t.addr(), "/_control/fail");
    assert_eq!(status, 200);
    assert!(state.contains("mode=fail"), "{state}");
    assert_eq!(body(t.addr(), "/").0, 500);
    assert_eq!(body(t.addr(), "/_health").0, 200, "health is not failed");

    body(t.addr(), "/_control/unhealthy");
    assert_eq!(body(t.addr(), "/_health"), (503, "unhealthy\n".into()));
    body(t.addr(), "/_control/healthy");
    body(t.addr(), "/_control/ok");
    assert_eq!(body(t.addr(), "/").0, 200);

    body(t.addr(), "/_control/delay/200ms");
    let start = Instant::now();
    assert_eq!(body(t.addr(), "/").0, 200);
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(body(t.addr(), "/_control/bogus").0, 404);
}

#[test]
fn keeps_connections_alive() {
    let t = target_server("t1", &[]);
    let mut client = Client::connect(t.addr());
    for _ in 0..3 {
        assert_eq!(client.request("GET", "/", &[], b"").status, 200);
    }
}

#[test]
fn bad_flag_is_one_line_and_exit_status_2() {
    let out = Balancer::run_with(
        Path::new(env!("CARGO_BIN_EXE_target-server")),
        &["-p", "0", "--delay", "5"],
    );
    assert_eq!(out.code, Some(2));
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn failover_can_be_watched_with_the_control_endpoint() {
    let a = target_server("a", &[]);
    let b = target_server("b", &[]);
    let lb = Balancer::start(&[
        "-b",
        &a.addr().to_string(),
        "-b",
        &b.addr().to_string(),
        "--workers",
        "1",
        "--health-interval",
        "50ms",
    ]);
    let mut client = Client::connect(lb.addr());
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(client.request("GET", "/", &[], b"").body_str());
    }
    assert_eq!(
        seen,
        [
            "hello from a\n",
            "hello from b\n",
            "hello from a\n",
            "hello from b\n"
        ]
    );

    // a answers 500: the balancer retries on b and marks a degraded.
    body(a.addr(), "/_control/fail");
    for _ in 0..4 {
        let r = client.request("GET", "/", &[], b"");
        assert_eq!((r.status, r.body_str().as_str()), (200, "hello from b\n"));
    }
    assert!(lb.wait_for_log(
        &format!("{} healthy -> degraded (answered 500)", a.addr()),
        Duration::from_secs(5)
    ));

    // Back to answering 200: its next health check brings it back.
    let back = format!(
        "{} degraded -> healthy (health check answered 200)",
        a.addr()
    );
    let times = |needle: &str| lb.log().iter().filter(|l| l.contains(needle)).count();
    body(a.addr(), "/_control/ok");
    assert!(wait_for(Duration::from_secs(5), || times(&back) == 1));

    // Unhealthy: its check fails and it is taken out.
    body(a.addr(), "/_control/unhealthy");
    assert!(lb.wait_for_log(
        &format!(
            "{} healthy -> degraded (health check answered 503)",
            a.addr()
        ),
        Duration::from_secs(5)
    ));
    for _ in 0..2 {
        assert_eq!(
            client.request("GET", "/", &[], b"").body_str(),
            "hello from b\n"
        );
    }

    // Healthy again: the prober brings it back and it gets traffic.
    body(a.addr(), "/_control/healthy");
    assert!(wait_for(Duration::from_secs(5), || times(&back) == 2));
    let mut from_a = 0;
    for _ in 0..4 {
        if client.request("GET", "/", &[], b"").body_str() == "hello from a\n" {
            from_a += 1;
        }
    }
    assert_eq!(from_a, 2);
}
