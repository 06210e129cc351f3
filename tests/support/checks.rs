//! Assertions several test files make: about an answer the balancer wrote
//! itself, a request it must refuse, and a run that must fail.

use super::{start_balancer, Backend, Balancer, Client, Response, WAIT};

/// A body the balancer wrote itself: one short line of text.
#[track_caller]
pub fn assert_short_text_line(r: &Response) {
    let body = std::str::from_utf8(&r.body)
        .unwrap_or_else(|_| panic!("{} body is not UTF-8: {:?}", r.status, r.body));
    let line = body.strip_suffix('\n').unwrap_or(body);
    assert!(
        !line.trim().is_empty() && line.len() <= 200 && !line.chars().any(char::is_control),
        "{} body is not one short line of text: {body:?}",
        r.status
    );
}

/// Sends `raw` on a new connection to a balancer started with `flags`: the
/// answer must be `status` with `Connection: close` and a one-line body, the
/// connection must close, and the target must see nothing.
#[track_caller]
pub fn assert_rejected_with(flags: &[&str], raw: &[u8], status: u16) {
    let backend = Backend::start("a");
    let lb = start_balancer(&[&backend], flags);
    let mut c = Client::connect(lb.addr());
    c.send(raw);
    let shown = String::from_utf8_lossy(&raw[..raw.len().min(200)]).into_owned();
    let r = c.read_response();
    assert_eq!(r.status, status, "answer to {shown:?}: {}", r.body_str());
    assert_eq!(r.header("Connection"), Some("close"), "answer to {shown:?}");
    assert_short_text_line(&r);
    assert!(
        c.is_closed(WAIT),
        "connection left open after {status} to {shown:?}"
    );
    assert_eq!(backend.requests(), 0, "the target saw {shown:?}");
}

/// [`assert_rejected_with`] a balancer with the default flags.
#[track_caller]
pub fn assert_rejected(raw: &[u8], status: u16) {
    assert_rejected_with(&[], raw, status);
}

/// Asserts a run failed with exit status `code` and exactly one line on
/// stderr, which contains each of `want`; returns that line.
#[track_caller]
pub fn assert_exit_line(args: &[&str], code: i32, want: &[&str]) -> String {
    let out = Balancer::run(args);
    assert_eq!(out.code, Some(code), "{args:?}: {out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: not one line: {:?}", out.stderr);
    for w in want {
        assert!(lines[0].contains(w), "{args:?}: {:?} lacks {w:?}", lines[0]);
    }
    assert!(
        !out.stderr.contains("panicked"),
        "{args:?}: {:?}",
        out.stderr
    );
    lines[0].to_string()
}

/// Asserts a run failed with exit status 2 and exactly one line on stderr,
/// which contains each of `want` and points to --help.
#[track_caller]
pub fn assert_flag_error(args: &[&str], want: &[&str]) {
    let line = assert_exit_line(args, 2, want);
    assert!(line.contains("--help"), "{args:?}: no hint: {line:?}");
}
