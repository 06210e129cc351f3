//! What a health check's answer means: only a 2xx status passes.

use std::fmt;

/// What one health check got back (1xx interim answers already skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckAnswer {
    /// A response with this status.
    Status(u16),
    /// The connect was refused.
    Refused,
    /// No answer within `--health-timeout`.
    TimedOut,
    /// The connection closed before a response head.
    Closed,
    /// The response head was not HTTP, or too large.
    Invalid,
    /// The connection failed otherwise (a reset, say).
    Failed,
    /// The TLS handshake with an `https://` target failed, and why.
    TlsFailed(&'static str),
}

impl CheckAnswer {
    /// The verdict: a 2xx status passes; any other status, and every
    /// failure to get one (refused, reset, timed out, invalid), fails.
    pub fn passes(self) -> bool {
        matches!(self, CheckAnswer::Status(status) if (200..300).contains(&status))
    }
}

/// As the health log lines tell it.
impl fmt::Display for CheckAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckAnswer::Status(s) => write!(f, "health check answered {s}"),
            CheckAnswer::Refused => f.write_str("health check: connection refused"),
            CheckAnswer::TimedOut => f.write_str("health check timed out"),
            CheckAnswer::Closed => f.write_str("health check: connection closed without an answer"),
            CheckAnswer::Invalid => f.write_str("health check: invalid response"),
            CheckAnswer::Failed => f.write_str("health check: connection failed"),
            CheckAnswer::TlsFailed(why) => write!(f, "health check: TLS handshake failed: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_2xx_passes() {
        for status in [200, 204, 299] {
            assert!(CheckAnswer::Status(status).passes(), "{status}");
        }
        for status in [199, 300, 301, 404, 500, 503] {
            assert!(!CheckAnswer::Status(status).passes(), "{status}");
        }
    }

    #[test]
    fn no_answer_fails() {
        for answer in [
            CheckAnswer::Refused,
            CheckAnswer::TimedOut,
            CheckAnswer::Closed,
            CheckAnswer::Invalid,
            CheckAnswer::Failed,
        ] {
            assert!(!answer.passes(), "{answer}");
        }
    }

    #[test]
    fn reads_as_the_log_tells_it() {
        assert_eq!(
            CheckAnswer::Status(503).to_string(),
            "health check answered 503"
        );
        assert_eq!(
            CheckAnswer::Refused.to_string(),
            "health check: connection refused"
        );
    }
}
