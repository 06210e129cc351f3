//! What the balancer writes about its work: the access log
//! (`--access-log`, one line per request, to a file or stdout) and its own
//! log lines, each with a UTC time and a level (`--log-level`).

mod support;
use support::*;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

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
    lb.expect_log(needle, WAIT);
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
        &["cannot open the access log"],
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
    lb.expect_log(&degraded, WAIT);

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
    lb.expect_log(&degraded, WAIT);

    let info: Vec<String> = lb
        .log()
        .into_iter()
        .filter(|l| log_level_of(l) == Some("INFO"))
        .collect();
    assert!(info.is_empty(), "INFO lines at --log-level warn: {info:#?}");
}
