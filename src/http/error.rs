//! Every answer the balancer makes itself, one status code per error, with a
//! short plain-text body saying why.

use bytes::Bytes;
use std::sync::OnceLock;

/// Why the balancer answers a request itself instead of forwarding a
/// target's response. Small and `Copy`: it travels on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The request head is not valid HTTP/1.1.
    MalformedRequest,
    /// Content-Length / Transfer-Encoding are missing, conflicting or invalid,
    /// or a chunked body is malformed.
    BadFraming,
    /// An HTTP/1.1 request without exactly one Host header.
    BadHost,
    /// The request line is longer than the limit.
    UriTooLong,
    /// The request head is longer than the limit, or has too many fields.
    HeadTooLarge,
    /// A Transfer-Encoding the balancer does not know.
    UnknownTransferCoding,
    /// A method a reverse proxy does not forward (CONNECT).
    MethodNotSupported,
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

impl Error {
    const ALL: [Error; 15] = [
        Error::TooManyConnections,
        Error::MalformedRequest,
        Error::BadFraming,
        Error::BadHost,
        Error::UriTooLong,
        Error::HeadTooLarge,
        Error::UnknownTransferCoding,
        Error::MethodNotSupported,
        Error::AllTargetsFailed,
        Error::RequestTimeout,
        Error::NoHealthyTarget,
        Error::TargetUnreachable,
        Error::BadResponse,
        Error::TargetFailed,
        Error::TargetTimeout,
    ];

    /// The status code this error is answered with.
    pub fn status(self) -> u16 {
        match self {
            Error::MalformedRequest | Error::BadFraming | Error::BadHost => 400,
            Error::RequestTimeout => 408,
            Error::UriTooLong => 414,
            Error::HeadTooLarge => 431,
            Error::UnknownTransferCoding | Error::MethodNotSupported => 501,
            Error::TargetUnreachable
            | Error::BadResponse
            | Error::TargetFailed
            | Error::AllTargetsFailed => 502,
            Error::NoHealthyTarget | Error::TooManyConnections => 503,
            Error::TargetTimeout => 504,
        }
    }

    fn reason_phrase(self) -> &'static str {
        match self.status() {
            400 => "Bad Request",
            408 => "Request Timeout",
            414 => "URI Too Long",
            431 => "Request Header Fields Too Large",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "Gateway Timeout",
        }
    }

    /// The one-line body saying why.
    pub fn message(self) -> &'static str {
        match self {
            Error::MalformedRequest => "malformed request",
            Error::BadFraming => "invalid or conflicting Content-Length / Transfer-Encoding",
            Error::BadHost => "an HTTP/1.1 request needs exactly one Host header",
            Error::UriTooLong => "request line too long",
            Error::HeadTooLarge => "request head too large",
            Error::UnknownTransferCoding => "unsupported Transfer-Encoding",
            Error::MethodNotSupported => "method not supported by this proxy",
            Error::RequestTimeout => "request not received in time",
            Error::NoHealthyTarget => "no healthy target",
            Error::TooManyConnections => "too many connections",
            Error::TargetUnreachable => "no target could be reached",
            Error::BadResponse => "invalid response from target",
            Error::TargetFailed => "target failed while receiving the request",
            Error::AllTargetsFailed => "every target tried failed",
            Error::TargetTimeout => "target did not answer in time",
        }
    }

    /// Whether the client connection must close after this answer whatever
    /// the request said: after a client-side error the stream is not in a
    /// known state.
    pub fn closes_connection(self) -> bool {
        self.status() < 500 || matches!(self, Error::TargetFailed | Error::TooManyConnections)
    }

    /// The whole response, ready to write. Built once per process and shared
    /// as static bytes, so answering an error allocates nothing.
    pub fn response(self, keep_alive: bool) -> Bytes {
        static TABLE: OnceLock<Vec<Bytes>> = OnceLock::new();
        let table = TABLE.get_or_init(|| {
            Error::ALL
                .iter()
                .flat_map(|e| [e.render(false), e.render(true)])
                .map(|v| Bytes::from_static(Box::leak(v.into_boxed_slice())))
                .collect()
        });
        let index = Error::ALL.iter().position(|e| *e == self).unwrap_or(0);
        let keep_alive = keep_alive && !self.closes_connection();
        table[index * 2 + usize::from(keep_alive)].clone()
    }

    fn render(self, keep_alive: bool) -> Vec<u8> {
        let body = format!("{}\n", self.message());
        format!(
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{}",
            self.status(),
            self.reason_phrase(),
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
        for e in Error::ALL {
            for keep_alive in [false, true] {
                let r = e.response(keep_alive);
                let mut headers = [httparse::EMPTY_HEADER; 8];
                let mut resp = httparse::Response::new(&mut headers);
                let n = match resp.parse(&r).unwrap() {
                    httparse::Status::Complete(n) => n,
                    httparse::Status::Partial => panic!("partial {e:?}"),
                };
                assert_eq!(resp.code, Some(e.status()));
                let len: usize = resp
                    .headers
                    .iter()
                    .find(|h| h.name == "Content-Length")
                    .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                    .unwrap();
                assert_eq!(r.len() - n, len);
                assert_eq!(&r[n..], format!("{}\n", e.message()).as_bytes());
            }
        }
    }

    #[test]
    fn client_errors_always_close() {
        let r = Error::MalformedRequest.response(true);
        assert!(std::str::from_utf8(&r)
            .unwrap()
            .contains("Connection: close"));
        let r = Error::NoHealthyTarget.response(true);
        assert!(std::str::from_utf8(&r)
            .unwrap()
            .contains("Connection: keep-alive"));
    }
}
