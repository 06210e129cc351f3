//! The command line and start-up: flag errors, refusing a taken port (the
//! listener's or the admin endpoint's), the start-up line, the epoll
//! fallback.

mod support;
use support::*;

use std::net::TcpListener;

#[test]
fn bad_flags_get_one_line_and_exit_status_2() {
    let b = "127.0.0.1:9";
    assert_flag_error(&["--frobnicate"], &["frobnicate"]);
    assert_flag_error(&["-p"], &["--port needs a value"]);
    assert_flag_error(&["-p", "80", "-b"], &["--backend needs a value"]);
    assert_flag_error(&["-p", "http", "-b", b], &["'http' is not a port"]);
    assert_flag_error(&["-p", "65536", "-b", b], &["'65536' is not a port"]);
    assert_flag_error(&["-b", b], &["missing --port"]);
    assert_flag_error(&["-p", "80"], &["no backend"]);
    assert_flag_error(
        &["-p", "80", "-b", "localhost"],
        &["'localhost' is not host:port"],
    );
    assert_flag_error(&["-p", "80", "-b", "10.0.0.1:http"], &["is not host:port"]);
    assert_flag_error(&["-p", "80", "-b", b, "--workers", "0"], &["at least 1"]);
    assert_flag_error(
        &["-p", "80", "-b", b, "--retries", "-1"],
        &["not a whole number"],
    );
    assert_flag_error(
        &["-p", "80", "-b", b, "--health-interval", "1"],
        &["not a duration"],
    );
    assert_flag_error(
        &["-p", "80", "-b", b, "--health-path", "nope"],
        &["must start with /"],
    );
    assert_flag_error(
        &["-p", "80", "-b", b, "--bind", "localhost"],
        &["not an IP address"],
    );
    assert_flag_error(
        &["-p", "80", "-b", b, "extra"],
        &["unexpected argument 'extra'"],
    );
}

#[test]
fn new_flags_refuse_bad_values_with_one_line_and_exit_status_2() {
    let b = "127.0.0.1:9";
    let bad_file = TempFile::with("bad-targets", "127.0.0.1:10\nnot a target\n");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--admin", "nothost"],
            "--admin: 'nothost' is not host:port",
        ),
        (&["--admin"], "--admin needs a value"),
        (&["--log-level", "loud"], "--log-level: 'loud'"),
        (&["--max-targets", "0"], "--max-targets must be at least 1"),
        (&["--max-targets", "many"], "not a whole number"),
        (
            &["--max-targets", "1", "-b", "127.0.0.1:10"],
            "--max-targets 1",
        ),
        (&["--targets-file", "/nonexistent"], "/nonexistent"),
        (&["--targets-file", bad_file.arg()], "line 2"),
        (&["--drain-timeout", "5"], "not a duration"),
        (&["--access-log", ""], "--access-log"),
    ];
    for &(extra, want) in cases {
        let mut args = vec!["-p", "0", "-b", b];
        args.extend_from_slice(extra);
        assert_flag_error(&args, &[want]);
    }
}

#[test]
fn help_prints_usage_and_exits_0() {
    let out = Balancer::run(&["--help"]);
    assert_eq!(out.code, Some(0));
    assert!(out
        .stdout
        .contains("Usage: load-balancer -p <port> -b <host:port>"));
    for flag in [
        "--workers",
        "--health-interval",
        "--health-path",
        "--retries",
    ] {
        assert!(out.stdout.contains(flag), "help lacks {flag}");
    }
    assert_eq!(Balancer::run(&["-h"]).code, Some(0));
}

#[test]
fn version_prints_the_version() {
    let out = Balancer::run(&["-V"]);
    assert_eq!(out.code, Some(0));
    assert_eq!(
        out.stdout.trim(),
        format!("load-balancer {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn refuses_a_port_another_program_listens_on() {
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = other.local_addr().unwrap().port().to_string();
    let out = Balancer::run(&["--bind", "127.0.0.1", "-p", &port, "-b", "127.0.0.1:9"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("cannot listen on"), "{}", out.stderr);
    assert!(out.stderr.contains("in use"), "{}", out.stderr);
}

#[test]
fn refuses_a_port_another_balancer_holds_with_so_reuseport() {
    let target = Backend::start("a");
    let first = start_balancer(&[&target], &[]);
    let port = first.addr().port().to_string();
    let out = Balancer::run(&[
        "--bind",
        "127.0.0.1",
        "-p",
        &port,
        "-b",
        &target.addr().to_string(),
    ]);
    assert_eq!(out.code, Some(1), "the second balancer started: {out:?}");
    assert!(out.stderr.contains("in use"), "{}", out.stderr);
    // The first one is unaffected.
    assert_eq!(get(first.addr(), "/").status, 200);
}

#[test]
fn an_admin_port_in_use_stops_start_up_with_exit_status_1() {
    let a = Backend::start("A");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let admin_at = taken.local_addr().unwrap().to_string();
    let target = target_name(&a);
    assert_exit_line(
        &[
            "-p",
            "0",
            "--bind",
            "127.0.0.1",
            "-b",
            &target,
            "--admin",
            &admin_at,
        ],
        1,
        &["(--admin)"],
    );
}

#[test]
fn start_up_line_names_driver_workers_and_targets() {
    let up = Backend::start("up");
    let down = Backend::start("down");
    down.set_healthy(false);
    let lb = Balancer::start(&[
        "-b",
        &up.addr().to_string(),
        "-b",
        &down.addr().to_string(),
        "--workers",
        "2",
    ]);
    let line = lb
        .log()
        .into_iter()
        .find(|l| l.contains(LISTENING))
        .unwrap();
    assert!(
        line.contains("with 2 workers (io_uring)") || line.contains("with 2 workers (epoll)"),
        "{line}"
    );
    assert!(line.contains("2 targets (1 healthy)"), "{line}");
    assert!(line.contains(&format!("{} healthy", up.addr())), "{line}");
    assert!(
        line.contains(&format!("{} degraded", down.addr())),
        "{line}"
    );
    assert!(lb.log_contains(&format!(
        "{} is degraded at start (health check answered 503)",
        down.addr()
    )));
}

#[test]
fn runs_on_epoll_when_io_uring_is_refused() {
    let target = Backend::start("a");
    let lb = Balancer::start_env(
        &[("MONOIO_FORCE_LEGACY_DRIVER", "1")],
        &["-b", &target.addr().to_string(), "--workers", "1"],
    );
    assert!(lb.log_contains("with 1 workers (epoll)"), "{:?}", lb.log());
    let mut client = Client::connect(lb.addr());
    for _ in 0..3 {
        let resp = client.request("GET", "/", &[], b"");
        assert_eq!((resp.status, resp.body_str().as_str()), (200, "a"));
    }
    target.set_mode(Mode::Status(500));
    assert_eq!(client.request("GET", "/", &[], b"").status, 500);
}

#[test]
fn resolves_host_names_at_start() {
    let target = Backend::start("named");
    let spec = format!("localhost:{}", target.addr().port());
    let lb = Balancer::start(&["-b", &spec, "--workers", "1"]);
    let resp = get(lb.addr(), "/");
    assert_eq!((resp.status, resp.body_str().as_str()), (200, "named"));
    assert!(lb.log_contains(&format!("{spec} healthy")));
}

#[test]
fn exits_with_a_message_when_no_worker_can_listen() {
    // An address this host does not have.
    let out = Balancer::run(&["--bind", "192.0.2.1", "-p", "0", "-b", "127.0.0.1:9"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("cannot listen on 192.0.2.1:0"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}
