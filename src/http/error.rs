//! Why a message could not be parsed: each parse error of a request with
//! the status code and one-line reason it is refused with, and the one of a
//! response (a 502 to the client). What the balancer answers for its own
//! reasons (no target, a timeout, ...) is `exchange::Answer`.

/// Why a request or response head or body is refused. Small and `Copy`: it
/// travels on the hot path.
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
    /// The target's response is not valid HTTP/1.1.
    BadResponse,
}

impl Error {
    /// The status code this error is answered with.
    pub fn status(self) -> u16 {
        match self {
            Error::MalformedRequest | Error::BadFraming | Error::BadHost => 400,
            Error::UriTooLong => 414,
            Error::HeadTooLarge => 431,
            Error::UnknownTransferCoding | Error::MethodNotSupported => 501,
            Error::BadResponse => 502,
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
            Error::BadResponse => "invalid response from target",
        }
    }
}
