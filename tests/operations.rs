//! Operating the balancer: the admin endpoint (`--admin`: `/metrics`,
//! `/targets`, `POST /reload`), reloading `--targets-file` (on SIGHUP or
//! `POST /reload`), the access log (`--access-log`), log levels
//! (`--log-level`) and the command-line errors of those flags.

mod support;
use support::*;

use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Deadline of every wait for a condition that should hold almost at once.
const WAIT: Duration = Duration::from_secs(5);

/// How long a plain request may take to be answered while a reload waits
/// for its file.
const ANSWER_DEADLINE: Duration = Duration::from_secs(2);

/// The start of the log line of a refused reload.
const REFUSED: &str = "reload refused, the running set stays: ";

/// Every metric family `/metrics` exposes, with its type.
const FAMILIES: [(&str, &str); 18] = [
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
    ("lb_request_duration_seconds", "histogram"),
    ("lb_uptime_seconds", "gauge"),
    ("lb_start_time_seconds", "gauge"),
    ("lb_build_info", "gauge"),
];

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// [`start_balancer`] (one worker, no health rounds after the first) with
/// the admin endpoint on a free port.
fn start_admin(backends: &[&Backend], extra: &[&str]) -> Balancer {
    let mut args = vec!["--admin", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    start_balancer(backends, &args)
}

/// One request to the admin endpoint, on its own connection.
fn admin(lb: &Balancer, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut all = vec![("Connection", "close")];
    all.extend_from_slice(headers);
    Client::connect(lb.admin_addr()).request(method, path, &all, b"")
}

/// `POST /reload`.
fn post_reload(lb: &Balancer) -> Response {
    admin(lb, "POST", "/reload", &[])
}

/// `GET /targets` as text, asserting a 200.
fn targets_text(lb: &Balancer) -> String {
    let r = admin(lb, "GET", "/targets", &[]);
    assert_eq!(r.status, 200, "GET /targets: {}", r.body_str());
    r.body_str()
}

/// The `/targets` text row of a target: `name address health in_flight`.
fn target_row(b: &Backend, health: &str, in_flight: u64) -> String {
    format!("{} {} {health} {in_flight}", target_name(b), b.addr())
}

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

/// A file in the temporary directory, removed when dropped.
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    fn new(tag: &str) -> TempFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("lb-operations-{}-{n}-{tag}", std::process::id()));
        let _ = fs::remove_file(&path);
        TempFile { path }
    }

    fn arg(&self) -> &str {
        self.path.to_str().expect("UTF-8 temp path")
    }

    /// Replaces the content in one step (write aside, then rename), so that
    /// a reader never sees half of it.
    fn write(&self, text: &str) {
        let aside = self.path.with_extension("new");
        fs::write(&aside, text).expect("write temp file");
        fs::rename(&aside, &self.path).expect("rename temp file");
    }

    /// The content, or nothing if the file does not exist yet.
    fn read(&self) -> String {
        fs::read_to_string(&self.path).unwrap_or_default()
    }

    /// Replaces the file by a FIFO at the same path: whoever reads it then
    /// waits for a writer (see [`TempFile::fifo_writer`]) and for its end.
    fn make_fifo(&self) {
        fs::remove_file(&self.path).expect("remove the file the FIFO replaces");
        let path = CString::new(self.arg()).expect("no NUL in the temp path");
        // SAFETY: `path` is a NUL-terminated string that outlives the call.
        let rc = unsafe { libc::mkfifo(path.as_ptr(), 0o600) };
        assert_eq!(
            rc,
            0,
            "mkfifo {}: {}",
            self.arg(),
            std::io::Error::last_os_error()
        );
    }

    /// Waits until something has the FIFO open for reading (a reload,
    /// blocked on it) and opens it for writing. The reader then waits for
    /// what is written, until the writer is dropped.
    fn fifo_writer(&self) -> fs::File {
        let mut writer = None;
        wait_for(WAIT, || {
            // With no reader, a non-blocking open for writing fails (ENXIO)
            // instead of waiting for one.
            writer = fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&self.path)
                .ok();
            writer.is_some()
        });
        writer.unwrap_or_else(|| panic!("nothing opened the FIFO {} to read it", self.arg()))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// A targets file listing `targets`, with comments and a blank line.
fn targets_file(targets: &[&Backend]) -> TempFile {
    let file = TempFile::new("targets");
    set_targets(&file, targets);
    file
}

/// The text of a targets file listing `targets`.
fn targets_list(targets: &[&Backend]) -> String {
    let mut text = String::from("# targets for the operations tests\n\n");
    for t in targets {
        text.push_str(&format!("{}  # {}\n", target_name(t), t.name()));
    }
    text
}

/// Rewrites a targets file to list `targets`.
fn set_targets(file: &TempFile, targets: &[&Backend]) {
    file.write(&targets_list(targets));
}

/// Sends SIGHUP to the balancer.
fn sighup(lb: &Balancer) {
    let pid = libc::pid_t::try_from(lb.pid()).expect("pid fits pid_t");
    // SAFETY: kill(2) takes two integers and touches no memory of ours; the
    // child is alive (owned by `lb`, not reaped), so the pid names it.
    let rc = unsafe { libc::kill(pid, libc::SIGHUP) };
    assert_eq!(rc, 0, "kill(SIGHUP): {}", std::io::Error::last_os_error());
}

/// Whether a log line reports the outcome of a reload (done or refused).
fn is_reload_outcome(line: &str) -> bool {
    line.contains("load-balancer: reload: ") && line.contains(" added [") || line.contains(REFUSED)
}

/// Sends SIGHUP and waits for the log line saying how the reload went;
/// returns that line.
fn sighup_reload(lb: &Balancer) -> String {
    let before = lb.log().iter().filter(|l| is_reload_outcome(l)).count();
    sighup(lb);
    let mut found = None;
    wait_for(WAIT, || {
        found = lb
            .log()
            .into_iter()
            .filter(|l| is_reload_outcome(l))
            .nth(before);
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no reload outcome after SIGHUP in {:#?}", lb.log()))
}

/// The log line of a successful reload.
fn reload_line(added: &[&Backend], removed: &[&Backend], kept: usize) -> String {
    let names = |v: &[&Backend]| {
        v.iter()
            .map(|b| target_name(b))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "reload: {} added [{}], {} removed [{}], {kept} kept",
        added.len(),
        names(added),
        removed.len(),
        names(removed)
    )
}

/// Waits until the log says `b` came back healthy after a check.
fn wait_healthy_log(lb: &Balancer, b: &Backend) {
    let line = format!("health: {} degraded -> healthy", target_name(b));
    assert!(
        lb.wait_for_log(&line, WAIT),
        "no `{line}` in {:#?}",
        lb.log()
    );
}

/// `n` GETs on one keep-alive connection, each asserted 200; the bodies
/// (which target answered).
fn get_n(lb: &Balancer, n: usize) -> Vec<String> {
    let mut c = Client::connect(lb.addr());
    (0..n)
        .map(|i| {
            let r = c.request("GET", &format!("/req{i}"), &[], b"");
            assert_eq!(r.status, 200, "request {i}: {}", r.body_str());
            r.body_str()
        })
        .collect()
}

/// Whether `stamp` looks like `2026-11-27T05:30:15.453Z`.
fn is_utc_stamp(stamp: &str) -> bool {
    const FORM: &[u8] = b"0000-00-00T00:00:00.000Z";
    stamp.len() == FORM.len()
        && stamp.bytes().zip(FORM).all(|(b, &f)| {
            if f == b'0' {
                b.is_ascii_digit()
            } else {
                b == f
            }
        })
}

/// One access log line, split into its fields.
#[derive(Debug, Clone, PartialEq)]
struct AccessLine {
    time: String,
    client: String,
    request: String,
    status: u16,
    target: String,
    attempts: usize,
    millis: f64,
    bytes: u64,
}

impl AccessLine {
    /// Parses `TIME CLIENT "REQUEST LINE" STATUS TARGET ATTEMPTS MS BYTES`.
    fn parse(line: &str) -> AccessLine {
        let open = line.find('"').unwrap_or_else(|| bad(line));
        let close = line.rfind('"').unwrap_or_else(|| bad(line));
        if close <= open {
            bad::<()>(line);
        }
        let head: Vec<&str> = line[..open].split_whitespace().collect();
        let tail: Vec<&str> = line[close + 1..].split_whitespace().collect();
        if head.len() != 2 || tail.len() != 5 {
            bad::<()>(line);
        }
        AccessLine {
            time: head[0].to_string(),
            client: head[1].to_string(),
            request: line[open + 1..close].to_string(),
            status: tail[0].parse().unwrap_or_else(|_| bad(line)),
            target: tail[1].to_string(),
            attempts: tail[2].parse().unwrap_or_else(|_| bad(line)),
            millis: tail[3].parse().unwrap_or_else(|_| bad(line)),
            bytes: tail[4].parse().unwrap_or_else(|_| bad(line)),
        }
    }
}

/// Fails the test on a line that is not an access log line.
fn bad<T>(line: &str) -> T {
    panic!("not an access log line: {line:?}")
}

/// Waits until the access log file has `n` lines; returns them parsed.
fn wait_for_access_lines(file: &TempFile, n: usize) -> Vec<AccessLine> {
    let complete = wait_for(WAIT, || file.read().lines().count() >= n);
    let text = file.read();
    assert!(
        complete,
        "expected {n} access log lines, the file has:\n{text}"
    );
    text.lines().map(AccessLine::parse).collect()
}

/// The one access log line of `request` (its request line).
fn line_of<'a>(lines: &'a [AccessLine], request: &str) -> &'a AccessLine {
    let found: Vec<&AccessLine> = lines.iter().filter(|l| l.request == request).collect();
    assert_eq!(found.len(), 1, "lines of {request:?} in {lines:#?}");
    found[0]
}

/// Asserts a run failed with exit status `code` and exactly one line on
/// stderr that contains `want`.
fn assert_exit_line(args: &[&str], code: i32, want: &str) -> String {
    let out = Balancer::run(args);
    assert_eq!(out.code, Some(code), "{args:?}: {out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: not one line: {:?}", out.stderr);
    assert!(
        lines[0].contains(want),
        "{args:?}: {:?} lacks {want:?}",
        lines[0]
    );
    assert!(
        !out.stderr.contains("panicked"),
        "{args:?}: {:?}",
        out.stderr
    );
    lines[0].to_string()
}

// ---------------------------------------------------------------------------
// The admin endpoint
// ---------------------------------------------------------------------------

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
    // Idle (and, after 20 ms, parked), but open.
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

// ---------------------------------------------------------------------------
// Reloading the targets file
// ---------------------------------------------------------------------------

#[test]
fn post_reload_adds_a_target_that_gets_requests_once_healthy() {
    let a = Backend::start("A");
    let c = Backend::start("C");
    let file = targets_file(&[]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg()]);

    set_targets(&file, &[&c]);
    let r = post_reload(&lb);
    assert_eq!(
        (r.status, r.body_str().as_str()),
        (200, "reloaded: 1 added, 0 removed, 1 kept\n")
    );
    let line = reload_line(&[&c], &[], 1);
    assert!(
        lb.wait_for_log(&line, WAIT),
        "no `{line}` in {:#?}",
        lb.log()
    );
    // Checked before the answer: in the rotation at once.
    assert_eq!(get_n(&lb, 4), ["A", "C", "A", "C"]);
    assert_eq!(c.requests(), 2);
}

#[test]
fn post_reload_removes_a_target_that_then_gets_no_requests() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let file = targets_file(&[&b]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg()]);
    assert_eq!(get_n(&lb, 2), ["A", "B"]);

    set_targets(&file, &[]);
    let r = post_reload(&lb);
    assert_eq!(
        (r.status, r.body_str().as_str()),
        (200, "reloaded: 0 added, 1 removed, 1 kept\n")
    );
    assert_eq!(get_n(&lb, 4), ["A", "A", "A", "A"]);
    assert_eq!(b.requests(), 1);
    assert_eq!(
        targets_text(&lb).lines().collect::<Vec<_>>(),
        [
            "target address health in_flight".to_string(),
            target_row(&a, "healthy", 0)
        ]
    );
}

#[test]
fn sighup_reload_adds_and_removes_targets() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let c = Backend::start("C");
    let file = targets_file(&[&b]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg()]);
    assert_eq!(get_n(&lb, 2), ["A", "B"]);

    set_targets(&file, &[&c]);
    let outcome = sighup_reload(&lb);
    assert!(outcome.contains(&reload_line(&[&c], &[&b], 1)), "{outcome}");
    assert!(lb.log_contains("reload: SIGHUP received"));
    wait_healthy_log(&lb, &c);
    assert_eq!(get_n(&lb, 4), ["A", "C", "A", "C"]);
    assert_eq!(b.requests(), 1, "a removed target got a request");
}

#[test]
fn an_added_target_that_fails_its_check_gets_no_requests() {
    let a = Backend::start("A");
    let c = Backend::start("C");
    c.set_healthy(false);
    let file = targets_file(&[]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg()]);

    set_targets(&file, &[&c]);
    assert_eq!(post_reload(&lb).status, 200);
    assert!(c.wait_for_health_checks(1, WAIT), "C was not checked");
    assert_eq!(get_n(&lb, 4), ["A", "A", "A", "A"]);
    assert_eq!(c.requests(), 0);
    assert!(
        targets_text(&lb).contains(&target_row(&c, "degraded", 0)),
        "{}",
        targets_text(&lb)
    );
}

#[test]
fn a_removed_target_finishes_its_request_in_flight() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let file = targets_file(&[&b]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg()]);
    let mut c = Client::connect(lb.addr());
    assert_eq!(c.request("GET", "/first", &[], b"").body_str(), "A");

    // The next request goes to B, which holds it while B leaves the set.
    b.set_mode(Mode::Delay(Duration::from_millis(1500)));
    c.send_request("GET", "/held", &[], b"");
    assert!(b.wait_for_requests(1, WAIT), "B got nothing");
    set_targets(&file, &[]);
    let r = post_reload(&lb);
    assert_eq!(r.body_str(), "reloaded: 0 added, 1 removed, 1 kept\n");
    assert!(
        !targets_text(&lb).contains(&target_name(&b)),
        "{}",
        targets_text(&lb)
    );

    let r = c.read_response();
    assert_eq!((r.status, r.body_str().as_str()), (200, "B"));
    assert_eq!(c.request("GET", "/after", &[], b"").body_str(), "A");
}

/// How a reload is asked for.
#[derive(Clone, Copy, Debug)]
enum Trigger {
    Post,
    Sighup,
}

/// Reloads and asserts it went through with this change.
fn reload_ok(lb: &Balancer, how: Trigger, added: &[&Backend], removed: &[&Backend], kept: usize) {
    let line = reload_line(added, removed, kept);
    match how {
        Trigger::Post => {
            let r = post_reload(lb);
            assert_eq!(
                (r.status, r.body_str()),
                (
                    200,
                    format!(
                        "reloaded: {} added, {} removed, {kept} kept\n",
                        added.len(),
                        removed.len()
                    )
                )
            );
            assert!(
                lb.wait_for_log(&line, WAIT),
                "no `{line}` in {:#?}",
                lb.log()
            );
        }
        Trigger::Sighup => {
            let outcome = sighup_reload(lb);
            assert!(outcome.contains(&line), "{outcome} is not {line}");
            for b in added {
                wait_healthy_log(lb, b);
            }
        }
    }
}

/// A `-b` target and a file target that a reload keeps go on answering on
/// the same upstream connections.
fn unchanged_targets_keep_their_pooled_connections(how: Trigger) {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let c = Backend::start("C");
    let file = targets_file(&[&b]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg()]);
    let mut client = Client::connect(lb.addr());
    for want in ["A", "B"] {
        assert_eq!(client.request("GET", "/before", &[], b"").body_str(), want);
    }
    let a_conn = a.last_request().unwrap().conn;
    let b_conn = b.last_request().unwrap().conn;

    set_targets(&file, &[&b, &c]);
    reload_ok(&lb, how, &[&c], &[], 2);

    // The cursor is past B: C (the new slot), then A, then B.
    for want in ["C", "A", "B"] {
        assert_eq!(client.request("GET", "/after", &[], b"").body_str(), want);
    }
    assert_eq!(a.requests(), 2);
    assert_eq!(b.requests(), 2);
    assert_eq!(
        a.last_request().unwrap().conn,
        a_conn,
        "the -b target was reached on a new connection"
    );
    assert_eq!(
        b.last_request().unwrap().conn,
        b_conn,
        "the kept file target was reached on a new connection"
    );
}

#[test]
fn post_reload_keeps_the_pooled_connections_of_unchanged_targets() {
    unchanged_targets_keep_their_pooled_connections(Trigger::Post);
}

#[test]
fn sighup_reload_keeps_the_pooled_connections_of_unchanged_targets() {
    unchanged_targets_keep_their_pooled_connections(Trigger::Sighup);
}

#[test]
fn post_reload_refuses_a_file_with_an_unparseable_line_and_keeps_the_set() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let c = Backend::start("C");
    let file = targets_file(&[&b]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg()]);

    file.write(&format!(
        "{}\n{}\nthis is not a target\n",
        target_name(&b),
        target_name(&c)
    ));
    let r = post_reload(&lb);
    assert_eq!(r.status, 400, "{}", r.body_str());
    let body = r.body_str();
    assert!(
        body.starts_with("reload refused: ") && body.contains("line 3"),
        "{body}"
    );
    assert!(lb.wait_for_log(REFUSED, WAIT), "{:#?}", lb.log());
    assert!(!lb.log_contains("reload: 1 added"), "{:#?}", lb.log());

    assert_eq!(get_n(&lb, 4), ["A", "B", "A", "B"]);
    assert_eq!(c.requests(), 0);
    assert!(!targets_text(&lb).contains(&target_name(&c)));
}

#[test]
fn sighup_reload_refuses_an_address_that_is_not_host_port_and_keeps_the_set() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let c = Backend::start("C");
    let file = targets_file(&[&b]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg()]);

    // C is fine, but the second line has no port: nothing of the file is
    // taken, B stays.
    file.write(&format!("{}\n127.0.0.1\n", target_name(&c)));
    let outcome = sighup_reload(&lb);
    assert!(
        outcome.contains(REFUSED) && outcome.contains("'127.0.0.1' is not host:port"),
        "{outcome}"
    );
    assert!(outcome.contains(" WARN "), "{outcome}");

    assert_eq!(get_n(&lb, 4), ["A", "B", "A", "B"]);
    assert_eq!(c.requests(), 0);
    assert_eq!(c.health_checks(), 0, "a refused target was checked");
}

#[test]
fn post_reload_refuses_more_targets_than_max_targets() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let c = Backend::start("C");
    let file = targets_file(&[&b]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg(), "--max-targets", "2"]);
    set_targets(&file, &[&b, &c]);
    let r = post_reload(&lb);
    assert_eq!(r.status, 400, "{}", r.body_str());
    assert!(r.body_str().contains("--max-targets"), "{}", r.body_str());
    assert_eq!(get_n(&lb, 4), ["A", "B", "A", "B"]);
    assert_eq!(c.requests(), 0);
}

#[test]
fn post_reload_without_a_targets_file_is_refused() {
    let a = Backend::start("A");
    let lb = start_admin(&[&a], &[]);
    let r = post_reload(&lb);
    assert_eq!(r.status, 400, "{}", r.body_str());
    assert!(r.body_str().contains("--targets-file"), "{}", r.body_str());
    assert_eq!(get_n(&lb, 1), ["A"]);
}

/// A balancer with `-b A` and a file holding B, after one request to each;
/// then the file is changed to hold C instead, which takes B's freed slot.
/// Returns the scrape taken right after the reload.
fn replace_b_by_c(a: &Backend, b: &Backend, c: &Backend) -> (Balancer, Scrape) {
    let file = targets_file(&[b]);
    let lb = start_admin(&[a], &["--targets-file", file.arg()]);
    assert_eq!(get_n(&lb, 2), ["A", "B"]);
    let before = Scrape::take(&lb);
    assert_eq!(before.target("lb_target_requests_total", b), 1.0);
    assert_eq!(before.target("lb_target_health_transitions_total", b), 1.0);

    set_targets(&file, &[c]);
    assert_eq!(post_reload(&lb).status, 200);
    let s = Scrape::take(&lb);
    assert!(
        !s.has(&format!(
            "lb_target_requests_total{{target=\"{}\"}}",
            target_name(b)
        )),
        "a removed target still has series:\n{}",
        s.text
    );
    (lb, s)
}

#[test]
fn a_target_that_takes_a_freed_slot_starts_with_no_requests_counted() {
    let (a, b, c) = (
        Backend::start("A"),
        Backend::start("B"),
        Backend::start("C"),
    );
    let (_lb, s) = replace_b_by_c(&a, &b, &c);
    assert_eq!(c.requests(), 0);
    assert_eq!(
        (
            s.target("lb_target_requests_total", &c),
            s.responses(&c, "2xx")
        ),
        (0.0, 0.0),
        "C, which has had no request, shows B's counts:\n{}",
        s.text
    );
}

#[test]
fn a_target_that_takes_a_freed_slot_counts_only_its_own_health_transitions() {
    let (a, b, c) = (
        Backend::start("A"),
        Backend::start("B"),
        Backend::start("C"),
    );
    let (_lb, s) = replace_b_by_c(&a, &b, &c);
    assert_eq!(
        s.target("lb_target_health_transitions_total", &c),
        1.0,
        "C has changed once (degraded -> healthy):\n{}",
        s.text
    );
}

#[test]
fn reloads_under_traffic_lose_no_request() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let c = Backend::start("C");
    let file = targets_file(&[&b]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg(), "--workers", "2"]);

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let addr = lb.addr();
    let clients: Vec<_> = [false, true]
        .into_iter()
        .map(|fresh_each_time| {
            let (stop, done, failures) = (stop.clone(), done.clone(), failures.clone());
            thread::spawn(move || {
                let headers: &[(&str, &str)] = if fresh_each_time {
                    &[("Connection", "close")]
                } else {
                    &[]
                };
                let mut conn: Option<Client> = None;
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let c = conn.get_or_insert_with(|| Client::connect(addr));
                    let path = format!("/t{}/{i}", u8::from(fresh_each_time));
                    let result = c
                        .try_send(&request_bytes("GET", &path, headers, b""))
                        .and_then(|()| c.try_read_response_to("GET"));
                    match result {
                        Ok(r) if r.status == 200 && !r.truncated => {}
                        Ok(r) => failures.lock().unwrap().push(format!(
                            "{path}: {} {}",
                            r.status,
                            r.body_str()
                        )),
                        Err(e) => {
                            failures.lock().unwrap().push(format!("{path}: {e}"));
                            conn = None;
                        }
                    }
                    if fresh_each_time {
                        conn = None;
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();

    // Each reload waits for some traffic to have gone through since the last.
    let progress = |n: usize| {
        let since = done.load(Ordering::SeqCst);
        let moved = wait_for(Duration::from_secs(10), || {
            done.load(Ordering::SeqCst) >= since + n
        });
        assert!(moved, "traffic stalled at {since} requests");
    };
    let sets: [&[&Backend]; 6] = [&[&b, &c], &[&c], &[&b], &[], &[&b, &c], &[&c]];
    for set in sets {
        progress(30);
        set_targets(&file, set);
        let r = post_reload(&lb);
        assert_eq!(r.status, 200, "{}", r.body_str());
    }
    progress(30);
    stop.store(true, Ordering::SeqCst);
    for t in clients {
        t.join().expect("client thread");
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:#?}",
        failures.len(),
        done.load(Ordering::SeqCst),
        &failures[..failures.len().min(20)]
    );
    assert!(b.requests() > 0 && c.requests() > 0);
}

/// Sends plain GETs through the balancer and asserts each is answered 200
/// within [`ANSWER_DEADLINE`]; `while_` says what is going on, for the
/// failure message.
fn assert_answered_promptly(lb: &Balancer, while_: &str) {
    let mut c = Client::connect(lb.addr());
    c.set_read_timeout(ANSWER_DEADLINE);
    for i in 0..3 {
        let started = Instant::now();
        c.send_request("GET", &format!("/meanwhile/{i}"), &[], b"");
        let r = c.try_read_response_to("GET").unwrap_or_else(|e| {
            panic!("GET {i} while {while_}: no answer within {ANSWER_DEADLINE:?} ({e})")
        });
        assert_eq!(r.status, 200, "GET {i} while {while_}: {}", r.body_str());
        assert!(
            started.elapsed() < ANSWER_DEADLINE,
            "GET {i} while {while_} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn requests_are_answered_while_reloads_wait_for_the_targets_file() {
    let a = Backend::start("A");
    let c = Backend::start("C");
    let d = Backend::start("D");
    let file = targets_file(&[]);
    // One worker, the one that also serves the admin endpoint and reloads.
    let lb = start_admin(&[&a], &["--workers", "1", "--targets-file", file.arg()]);
    assert_eq!(get_n(&lb, 1), ["A"]);
    // Reading the file now blocks until the test writes into it: a name
    // that takes long to resolve, or a slow mount, made deterministic.
    file.make_fifo();

    sighup(&lb);
    let mut writer = file.fifo_writer();
    assert_answered_promptly(&lb, "a SIGHUP reload waits for its file");
    assert!(
        targets_text(&lb).contains(&target_name(&a)),
        "{}",
        targets_text(&lb)
    );

    // A second reload, asked while the first waits: it comes after it, and
    // its answer only once it is done.
    let admin_at = lb.admin_addr();
    let (answered, answer) = mpsc::channel();
    thread::spawn(move || {
        let r =
            Client::connect(admin_at).request("POST", "/reload", &[("Connection", "close")], b"");
        let _ = answered.send((r.status, r.body_str()));
    });

    writer
        .write_all(targets_list(&[&c]).as_bytes())
        .expect("write the FIFO");
    drop(writer);
    let line = reload_line(&[&c], &[], 1);
    assert!(
        lb.wait_for_log(&line, WAIT),
        "no `{line}` in {:#?}",
        lb.log()
    );

    // The second reload now reads the FIFO in its turn.
    let mut writer = file.fifo_writer();
    assert_answered_promptly(&lb, "a POST /reload waits for its file");
    assert!(
        answer.try_recv().is_err(),
        "POST /reload answered before its reload read the file"
    );
    writer
        .write_all(targets_list(&[&c, &d]).as_bytes())
        .expect("write the FIFO");
    drop(writer);
    let (status, body) = answer
        .recv_timeout(WAIT)
        .expect("no answer to POST /reload after its file was written");
    assert_eq!(
        (status, body.as_str()),
        (200, "reloaded: 1 added, 0 removed, 2 kept\n")
    );
    let line = reload_line(&[&d], &[], 2);
    assert!(lb.log_contains(&line), "no `{line}` in {:#?}", lb.log());
    let listed = targets_text(&lb);
    for b in [&a, &c, &d] {
        assert!(listed.contains(&target_name(b)), "{listed}");
    }
    assert_answered_promptly(&lb, "no reload runs");
}

// ---------------------------------------------------------------------------
// The access log
// ---------------------------------------------------------------------------

#[test]
fn access_log_has_one_line_per_forwarded_request() {
    let a = Backend::start("A");
    let log = TempFile::new("access.log");
    let lb = start_balancer(&[&a], &["--access-log", log.arg()]);
    let mut c = Client::connect(lb.addr());
    let r = c.request("GET", "/get?x=1", &[], b"");
    assert_eq!(r.status, 200);
    let r = c.request("POST", "/post", &[], b"hello body");
    assert_eq!(r.status, 200);
    a.set_mode(Mode::Status(404));
    let r = c.request("GET", "/missing", &[], b"");
    assert_eq!(r.status, 404);

    let lines = wait_for_access_lines(&log, 3);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    for (request, status) in [
        ("GET /get?x=1 HTTP/1.1", 200),
        ("POST /post HTTP/1.1", 200),
        ("GET /missing HTTP/1.1", 404),
    ] {
        let l = line_of(&lines, request);
        assert!(is_utc_stamp(&l.time), "{l:?}");
        assert_eq!(l.client, "127.0.0.1", "{l:?}");
        assert_eq!(l.status, status, "{l:?}");
        assert_eq!(l.target, target_name(&a), "{l:?}");
        assert_eq!(l.attempts, 1, "{l:?}");
        assert!(l.millis >= 0.0, "{l:?}");
        assert!(l.bytes > 0, "{l:?}");
    }
    assert_eq!(a.last_request().unwrap().path, "/missing");
}

/// Sends `bytes` on a new connection and reads until the balancer closes.
fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream.write_all(bytes).expect("send");
    let mut got = Vec::new();
    stream.read_to_end(&mut got).expect("read until close");
    got
}

#[test]
fn access_log_counts_the_bytes_sent_to_the_client() {
    let a = Backend::start("A");
    let log = TempFile::new("access.log");
    let lb = start_balancer(&[&a], &["--access-log", log.arg()]);
    let got = raw_exchange(
        lb.addr(),
        b"GET /counted HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    );
    assert!(got.starts_with(b"HTTP/1.1 200 "), "{got:?}");
    let refused = raw_exchange(
        lb.addr(),
        b"GET / HTTP/1.1\r\nHost: test\r\nBad Header: x\r\n\r\n",
    );
    assert!(refused.starts_with(b"HTTP/1.1 400 "), "{refused:?}");

    let lines = wait_for_access_lines(&log, 2);
    let l = line_of(&lines, "GET /counted HTTP/1.1");
    assert_eq!(l.bytes, got.len() as u64, "{l:?}");
    let l = line_of(&lines, "-");
    assert_eq!(l.bytes, refused.len() as u64, "{l:?}");
}

#[test]
fn access_log_duration_covers_a_slow_target() {
    let a = Backend::start("A");
    let log = TempFile::new("access.log");
    let lb = start_balancer(&[&a], &["--access-log", log.arg()]);
    a.set_mode(Mode::Delay(Duration::from_millis(200)));
    assert_eq!(get(lb.addr(), "/slow").status, 200);
    let lines = wait_for_access_lines(&log, 1);
    let l = line_of(&lines, "GET /slow HTTP/1.1");
    assert!(
        (200.0..10_000.0).contains(&l.millis),
        "a 200 ms answer logged as {} ms: {l:?}",
        l.millis
    );
}

#[test]
fn access_log_counts_two_attempts_when_the_first_target_answered_500() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let log = TempFile::new("access.log");
    let lb = start_balancer(&[&a, &b], &["--access-log", log.arg()]);
    a.set_mode(Mode::Status(500));
    assert_eq!(get(lb.addr(), "/retried").body_str(), "B");

    let lines = wait_for_access_lines(&log, 1);
    let l = line_of(&lines, "GET /retried HTTP/1.1");
    assert_eq!(
        (l.status, l.target.as_str(), l.attempts),
        (200, target_name(&b).as_str(), 2),
        "{l:?}"
    );
    assert!(l.bytes > 0, "{l:?}");
}

#[test]
fn access_log_fields_cannot_be_forged_by_a_request_target() {
    let a = Backend::start("A");
    let log = TempFile::new("access.log");
    let lb = start_balancer(&[&a], &["--access-log", log.arg()]);
    let mut c = Client::connect(lb.addr());
    c.send(b"GET /q\"_200_x HTTP/1.1\r\nHost: test\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200);

    let lines = wait_for_access_lines(&log, 1);
    let text = log.read();
    assert!(
        text.contains(r#""GET /q\x22_200_x HTTP/1.1" 200 "#),
        "not escaped: {text}"
    );
    let l = &lines[0];
    assert_eq!((l.status, l.attempts), (200, 1), "{l:?}");
}

#[test]
fn access_log_logs_a_malformed_request_with_dashes() {
    let a = Backend::start("A");
    let log = TempFile::new("access.log");
    let lb = start_balancer(&[&a], &["--access-log", log.arg()]);
    let mut c = Client::connect(lb.addr());
    c.send(b"GET / HTTP/1.1\r\nHost: test\r\nBad Header: x\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 400);

    let lines = wait_for_access_lines(&log, 1);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let l = &lines[0];
    assert_eq!(
        (l.request.as_str(), l.status, l.target.as_str(), l.attempts),
        ("-", 400, "-", 0),
        "{l:?}"
    );
    assert!(l.bytes > 0, "{l:?}");
    assert_eq!(a.requests(), 0);
}

#[test]
fn access_log_dash_writes_to_stdout() {
    let a = Backend::start("A");
    let lb = start_balancer(&[&a], &["--access-log", "-"]);
    assert_eq!(get(lb.addr(), "/to-stdout").status, 200);
    let needle = "\"GET /to-stdout HTTP/1.1\" 200 ";
    assert!(lb.wait_for_log(needle, WAIT), "{:#?}", lb.log());
    let line = lb
        .log()
        .into_iter()
        .find(|l| l.contains(needle))
        .expect("found above");
    let l = AccessLine::parse(&line);
    assert_eq!((l.target, l.attempts), (target_name(&a), 1), "{line}");
    assert!(l.bytes > 0, "{line}");
}

#[test]
fn access_log_that_cannot_be_opened_stops_start_up_with_exit_status_1() {
    let a = Backend::start("A");
    let addr = target_name(&a);
    assert_exit_line(
        &[
            "-p",
            "0",
            "--bind",
            "127.0.0.1",
            "-b",
            &addr,
            "--access-log",
            "/nonexistent-dir/access.log",
        ],
        1,
        "cannot open the access log",
    );
}

// ---------------------------------------------------------------------------
// Log levels
// ---------------------------------------------------------------------------

/// Whether a line is a log line: `TIME LEVEL load-balancer: ...`.
fn log_level_of(line: &str) -> Option<&str> {
    let (stamp, rest) = line.split_once(' ')?;
    let (level, rest) = rest.split_once(' ')?;
    (is_utc_stamp(stamp) && rest.starts_with("load-balancer: ")).then_some(level)
}

#[test]
fn log_lines_carry_a_utc_time_and_a_level() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let c = Backend::start("C");
    let file = targets_file(&[]);
    let lb = start_admin(&[&a, &b], &["--targets-file", file.arg()]);
    set_targets(&file, &[&c]);
    assert!(sighup_reload(&lb).contains(" INFO load-balancer: reload: 1 added"));
    a.set_mode(Mode::Status(500));
    get_n(&lb, 2);
    let degraded = format!(
        "WARN load-balancer: health: {} healthy -> degraded",
        target_name(&a)
    );
    assert!(lb.wait_for_log(&degraded, WAIT), "{:#?}", lb.log());

    for line in lb.log() {
        let level = log_level_of(&line).unwrap_or_else(|| panic!("not a log line: {line:?}"));
        assert!(
            ["NOTICE", "ERROR", "WARN", "INFO", "DEBUG"].contains(&level),
            "{line}"
        );
    }
    assert_eq!(log_level_of(&lb.startup_line()), Some("NOTICE"));
}

#[test]
fn log_level_warn_writes_degraded_changes_but_no_info_line() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let c = Backend::start("C");
    let file = targets_file(&[]);
    let lb = start_admin(
        &[&a, &b],
        &["--targets-file", file.arg(), "--log-level", "warn"],
    );

    // A reload and a recovery, each an INFO line at the default level.
    set_targets(&file, &[&c]);
    sighup(&lb);
    let joined = target_row(&c, "healthy", 0);
    assert!(
        wait_for(WAIT, || targets_text(&lb).lines().any(|l| l == joined)),
        "C did not join: {}",
        targets_text(&lb)
    );
    // Then a WARN, written after them on the same worker thread.
    a.set_mode(Mode::Status(500));
    get_n(&lb, 3);
    let degraded = format!(
        "WARN load-balancer: health: {} healthy -> degraded",
        target_name(&a)
    );
    assert!(lb.wait_for_log(&degraded, WAIT), "{:#?}", lb.log());

    let info: Vec<String> = lb
        .log()
        .into_iter()
        .filter(|l| log_level_of(l) == Some("INFO"))
        .collect();
    assert!(info.is_empty(), "INFO lines at --log-level warn: {info:#?}");
}

// ---------------------------------------------------------------------------
// Command-line errors
// ---------------------------------------------------------------------------

#[test]
fn new_flags_refuse_bad_values_with_one_line_and_exit_status_2() {
    let b = "127.0.0.1:9";
    let bad_file = TempFile::new("bad-targets");
    bad_file.write("127.0.0.1:10\nnot a target\n");
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
    for (extra, want) in cases {
        let mut args = vec!["-p", "0", "-b", b];
        args.extend_from_slice(extra);
        let line = assert_exit_line(&args, 2, want);
        assert!(line.contains("--help"), "{args:?}: no hint: {line:?}");
    }
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
        "(--admin)",
    );
}
