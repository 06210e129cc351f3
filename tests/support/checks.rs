//! Assertions several test files make: about a run that must fail.

use super::Balancer;

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
