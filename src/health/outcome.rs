//! What one attempt on a target came to, and what that means for the
//! target's health: which outcomes count towards passive ejection, and
//! which take the target out of rotation at once.

use std::fmt;

/// How one attempt on a target ended, as far as its health is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It answered with this status.
    Answered(u16),
    /// The connect was refused.
    Refused,
    /// The connect failed otherwise.
    ConnectFailed,
    /// The connect did not finish within `--connect-timeout`.
    ConnectTimeout,
    /// The connection closed or reset before any answer.
    NoResponse,
    /// No response head within `--response-timeout`.
    ResponseTimeout,
    /// The response was not valid HTTP/1.1.
    InvalidResponse,
    /// The connection failed while a streamed body was sent.
    Broken,
}

impl Outcome {
    /// Whether it counts as a failure in a row towards `--eject-after`: a
    /// 5xx answer, and every way of not answering. Anything else (an answer
    /// below 500) starts the count again.
    pub fn is_failure(self) -> bool {
        match self {
            Outcome::Answered(status) => status >= 500,
            _ => true,
        }
    }

    /// Whether it takes the target out of rotation at once, until it passes
    /// `--rise` health checks: a 500, or a connect refused or timed out.
    pub fn degrades(self) -> bool {
        matches!(
            self,
            Outcome::Answered(500) | Outcome::Refused | Outcome::ConnectTimeout
        )
    }

    /// Whether the target's idle pooled connections are closed too: a
    /// refused connect says the target restarted, so they are dead.
    pub fn ends_pooled(self) -> bool {
        self == Outcome::Refused
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Answered(s) => write!(f, "answered {s}"),
            Outcome::Refused => f.write_str("connection refused"),
            Outcome::ConnectFailed => f.write_str("connect failed"),
            Outcome::ConnectTimeout => f.write_str("connect timed out"),
            Outcome::NoResponse => f.write_str("closed without an answer"),
            Outcome::ResponseTimeout => f.write_str("response timed out"),
            Outcome::InvalidResponse => f.write_str("invalid response"),
            Outcome::Broken => f.write_str("connection failed mid-response"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_below_500_are_not_failures() {
        assert!(!Outcome::Answered(200).is_failure());
        assert!(!Outcome::Answered(499).is_failure());
        assert!(Outcome::Answered(503).is_failure());
        assert!(Outcome::NoResponse.is_failure());
    }

    #[test]
    fn a_500_and_a_refused_or_timed_out_connect_degrade_at_once() {
        assert!(Outcome::Answered(500).degrades());
        assert!(!Outcome::Answered(503).degrades());
        assert!(Outcome::Refused.degrades());
        assert!(Outcome::ConnectTimeout.degrades());
        assert!(!Outcome::ConnectFailed.degrades());
        assert!(!Outcome::ResponseTimeout.degrades());
    }
}
