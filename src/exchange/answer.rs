//! Every answer the balancer makes itself, one status code each, with a
//! short plain-text body saying why: a request refused by the parser
//! (`http::Error`), or the balancer's own reasons (no target, a timeout, a
//! target that failed).

use std::sync::OnceLock;

use bytes::Bytes;

use crate::http::{reason_phrase, Error};

/// What the client is told when the balancer answers for itself. Small and
/// `Copy`: it travels on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The request is refused: it does not parse, or is ambiguous.
    Refused(Error),
    /// The client took too long to send its request.
    RequestTimeout,
    /// No target is healthy.
    NoHealthyTarget,
    /// The balancer holds `--max-connections` client connections already.
    TooManyConnections,
    /// No target could be reached (refused, reset, or closed without answering).
    TargetUnreachable,
    /// The target's response was not valid HTTP/1.1.
    BadResponse,
    /// The target failed after part of the request body had been sent.
    TargetFailed,
    /// Every target tried failed (answered 500, or closed without answering).
    AllTargetsFailed,
    /// The target did not answer in time (connect or response deadline).
    TargetTimeout,
}

impl From<Error> for Answer {
    fn from(e: Error) -> Answer {
        match e {
            Error::BadResponse => Answer::BadResponse,
            e => Answer::Refused(e),
        }
    }
}

impl Answer {
    const ALL: [Answer; 16] = [
        Answer::TooManyConnections,
        Answer::Refused(Error::MalformedRequest),
        Answer::Refused(Error::BadFraming),
        Answer::Refused(Error::BadHost),
        Answer::Refused(Error::UriTooLong),
        Answer::Refused(Error::HeadTooLarge),
        Answer::Refused(Error::UnknownTransferCoding),
        Answer::Refused(Error::MethodNotSupported),
        Answer::Refused(Error::BadResponse),
        Answer::AllTargetsFailed,
        Answer::RequestTimeout,
        Answer::NoHealthyTarget,
        Answer::TargetUnreachable,
        Answer::BadResponse,
        Answer::TargetFailed,
        Answer::TargetTimeout,
    ];

    /// The status code of this answer.
    pub fn status(self) -> u16 {
        match self {
            Answer::Refused(e) => e.status(),
            Answer::RequestTimeout => 408,
            Answer::TargetUnreachable
            | Answer::BadResponse
            | Answer::TargetFailed
            | Answer::AllTargetsFailed => 502,
            Answer::NoHealthyTarget | Answer::TooManyConnections => 503,
            Answer::TargetTimeout => 504,
        }
    }

    /// The one-line body saying why.
    pub fn message(self) -> &'static str {
        match self {
            Answer::Refused(e) => e.message(),
            Answer::RequestTimeout => "request not received in time",
            Answer::NoHealthyTarget => "no healthy target",
            Answer::TooManyConnections => "too many connections",
            Answer::TargetUnreachable => "no target could be reached",
            Answer::BadResponse => "invalid response from target",
            Answer::TargetFailed => "target failed while receiving the request",
            Answer::AllTargetsFailed => "every target tried failed",
            Answer::TargetTimeout => "target did not answer in time",
        }
    }

    /// Whether the client connection must close after this answer whatever
    /// the request said: after a client-side error the stream is not in a
    /// known state.
    pub fn closes_connection(self) -> bool {
        self.status() < 500 || matches!(self, Answer::TargetFailed | Answer::TooManyConnections)
    }

    /// The whole response, ready to write. Built once per process and shared
    /// as static bytes, so answering allocates nothing.
    pub fn response(self, keep_alive: bool) -> Bytes {
        static TABLE: OnceLock<Vec<Bytes>> = OnceLock::new();
        let table = TABLE.get_or_init(|| {
            Answer::ALL
                .iter()
                .flat_map(|a| [a.render(false), a.render(true)])
                .map(|v| Bytes::from_static(Box::leak(v.into_boxed_slice())))
                .collect()
        });
        let index = Answer::ALL.iter().position(|a| *a == self).unwrap_or(0);
        let keep_alive = keep_alive && !self.closes_connection();
        table[index * 2 + usize::from(keep_alive)].clone()
    }

    fn render(self, keep_alive: bool) -> Vec<u8> {
        let body = format!("{}\n", self.message());
        format!(
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{}",
            self.status(),
            reason_phrase(self.status()),
            body.len(),
            if keep_alive { "keep-alive" } else { "close" },
            body
        )
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_complete_http_messages() {
        for a in Answer::ALL {
            for keep_alive in [false, true] {
                let r = a.response(keep_alive);
                let mut headers = [httparse::EMPTY_HEADER; 8];
                let mut resp = httparse::Response::new(&mut headers);
                let n = match resp.parse(&r).unwrap() {
                    httparse::Status::Complete(n) => n,
                    httparse::Status::Partial => panic!("partial {a:?}"),
                };
                assert_eq!(resp.code, Some(a.status()));
                let len: usize = resp
                    .headers
                    .iter()
                    .find(|h| h.name == "Content-Length")
                    .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                    .unwrap();
                assert_eq!(r.len() - n, len);
                assert_eq!(&r[n..], format!("{}\n", a.message()).as_bytes());
            }
        }
    }

    #[test]
    fn status_lines_carry_the_one_reason_phrase_table() {
        for a in Answer::ALL {
            let status = a.status();
            let line = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
            assert!(a.response(false).starts_with(line.as_bytes()), "{a:?}");
        }
    }

    #[test]
    fn client_errors_always_close() {
        let r = Answer::Refused(Error::MalformedRequest).response(true);
        assert!(std::str::from_utf8(&r)
            .unwrap()
            .contains("Connection: close"));
        let r = Answer::NoHealthyTarget.response(true);
        assert!(std::str::from_utf8(&r)
            .unwrap()
            .contains("Connection: keep-alive"));
    }
}
