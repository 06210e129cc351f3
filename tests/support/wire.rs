//! Buffered reading of HTTP/1.1 messages off a blocking socket, shared by the
//! target server ([`super::Backend`]) and the test client ([`super::Client`]).
//!
//! Bytes read past the end of one message stay in [`Wire::buf`] for the next
//! one, so pipelined requests and responses come out in order.

use std::io::{self, Read};
use std::net::TcpStream;

/// Largest head (start line plus header fields) either side will buffer.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in one head.
const MAX_HEADERS: usize = 128;
/// Longest chunk-size or trailer line accepted in a chunked body.
const MAX_LINE: usize = 8 * 1024;

/// A socket plus the bytes read from it but not consumed yet.
pub(crate) struct Wire {
    pub(crate) stream: TcpStream,
    pub(crate) buf: Vec<u8>,
}

/// An owned request head.
pub(crate) struct RequestHead {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) version: u8,
    pub(crate) headers: Vec<(String, String)>,
}

/// An owned response head.
pub(crate) struct ResponseHead {
    pub(crate) status: u16,
    pub(crate) reason: String,
    pub(crate) version: u8,
    pub(crate) headers: Vec<(String, String)>,
}

/// How the body of a message is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

/// A body as far as it could be read.
#[derive(Default)]
pub(crate) struct Body {
    /// The payload, chunked framing removed.
    pub(crate) decoded: Vec<u8>,
    /// The bytes exactly as they came off the socket.
    pub(crate) raw: Vec<u8>,
    /// `None` when the body was read whole; otherwise why it stopped.
    pub(crate) error: Option<io::Error>,
}

impl Wire {
    pub(crate) fn new(stream: TcpStream) -> Wire {
        Wire {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads once from the socket, appending to `buf`; `Ok(0)` is end of stream.
    pub(crate) fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads one request head. `Ok(None)`: the peer closed before sending a byte.
    pub(crate) fn read_request_head(&mut self) -> io::Result<Option<RequestHead>> {
        loop {
            if !self.buf.is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut req = httparse::Request::new(&mut headers);
                let parsed = match req.parse(&self.buf) {
                    Ok(httparse::Status::Complete(len)) => Some((
                        RequestHead {
                            method: req.method.unwrap_or_default().to_string(),
                            path: req.path.unwrap_or_default().to_string(),
                            version: req.version.unwrap_or(1),
                            headers: owned_headers(req.headers),
                        },
                        len,
                    )),
                    Ok(httparse::Status::Partial) => None,
                    Err(e) => return Err(invalid(format!("malformed request head: {e}"))),
                };
                if let Some((head, len)) = parsed {
                    self.buf.drain(..len);
                    return Ok(Some(head));
                }
                if self.buf.len() > MAX_HEAD {
                    return Err(invalid("request head too large".to_string()));
                }
            }
            if self.fill()? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(eof("connection closed inside a request head"))
                };
            }
        }
    }

    /// Reads one response head.
    pub(crate) fn read_response_head(&mut self) -> io::Result<ResponseHead> {
        loop {
            if !self.buf.is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut res = httparse::Response::new(&mut headers);
                let parsed = match res.parse(&self.buf) {
                    Ok(httparse::Status::Complete(len)) => Some((
                        ResponseHead {
                            status: res.code.unwrap_or_default(),
                            reason: res.reason.unwrap_or_default().to_string(),
                            version: res.version.unwrap_or(1),
                            headers: owned_headers(res.headers),
                        },
                        len,
                    )),
                    Ok(httparse::Status::Partial) => None,
                    Err(e) => {
                        return Err(invalid(format!(
                            "malformed response head ({e}): {:?}",
                            String::from_utf8_lossy(&self.buf)
                        )))
                    }
                };
                if let Some((head, len)) = parsed {
                    self.buf.drain(..len);
                    return Ok(head);
                }
                if self.buf.len() > MAX_HEAD {
                    return Err(invalid("response head too large".to_string()));
                }
            }
            if self.fill()? == 0 {
                return Err(eof(if self.buf.is_empty() {
                    "connection closed before a response"
                } else {
                    "connection closed inside a response head"
                }));
            }
        }
    }

    /// Reads a body delimited by `framing`, keeping whatever arrived if it stops early.
    pub(crate) fn read_body(&mut self, framing: Framing) -> Body {
        let mut body = Body::default();
        let result = match framing {
            Framing::Length(n) => self.body_length(n, &mut body),
            Framing::Chunked => self.body_chunked(&mut body),
            Framing::UntilClose => self.body_until_close(&mut body),
        };
        body.error = result.err();
        body
    }

    fn body_length(&mut self, n: u64, body: &mut Body) -> io::Result<()> {
        let mut left = n;
        while left > 0 {
            if self.buf.is_empty() && self.fill()? == 0 {
                return Err(eof("connection closed inside a body"));
            }
            let take = self
                .buf
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            body.decoded.extend_from_slice(&self.buf[..take]);
            body.raw.extend_from_slice(&self.buf[..take]);
            self.buf.drain(..take);
            left -= take as u64;
        }
        Ok(())
    }

    fn body_chunked(&mut self, body: &mut Body) -> io::Result<()> {
        loop {
            let line = self.read_line(&mut body.raw)?;
            let size = line.split(|&b| b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size)
                .ok()
                .map(str::trim)
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "bad chunk size line {:?}",
                        String::from_utf8_lossy(&line)
                    ))
                })?;
            if size == 0 {
                // Trailer fields, up to the empty line.
                while !self.read_line(&mut body.raw)?.is_empty() {}
                return Ok(());
            }
            let before = body.decoded.len();
            self.body_length(size, body)?;
            debug_assert_eq!(body.decoded.len() - before, size as usize);
            if !self.read_line(&mut body.raw)?.is_empty() {
                return Err(invalid("chunk data not followed by CRLF".to_string()));
            }
        }
    }

    fn body_until_close(&mut self, body: &mut Body) -> io::Result<()> {
        loop {
            body.decoded.extend_from_slice(&self.buf);
            body.raw.extend_from_slice(&self.buf);
            self.buf.clear();
            if self.fill()? == 0 {
                return Ok(());
            }
        }
    }

    /// Reads one line, appending it with its terminator to `raw`; returns it without.
    fn read_line(&mut self, raw: &mut Vec<u8>) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                raw.extend_from_slice(&line);
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buf.len() > MAX_LINE {
                return Err(invalid("line too long in a chunked body".to_string()));
            }
            if self.fill()? == 0 {
                raw.append(&mut self.buf);
                return Err(eof("connection closed inside a chunked body"));
            }
        }
    }
}

fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

/// First value of header `name` (case-insensitive).
pub(crate) fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Every value of header `name` (case-insensitive), in order.
pub(crate) fn find_headers<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Whether the comma-separated list in header `name` holds `token` (case-insensitive).
pub(crate) fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    find_headers(headers, name)
        .iter()
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Whether the final transfer coding is `chunked`; `None` without Transfer-Encoding.
fn chunked_last(headers: &[(String, String)]) -> Option<bool> {
    let values = find_headers(headers, "transfer-encoding");
    let last = values.iter().flat_map(|v| v.split(',')).last()?;
    Some(last.trim().eq_ignore_ascii_case("chunked"))
}

fn content_length(headers: &[(String, String)]) -> io::Result<Option<u64>> {
    let mut found: Option<u64> = None;
    for value in find_headers(headers, "content-length") {
        for part in value.split(',') {
            let part = part.trim();
            let n = if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
                part.parse::<u64>().ok()
            } else {
                None
            }
            .ok_or_else(|| invalid(format!("bad Content-Length {value:?}")))?;
            if found.is_some_and(|f| f != n) {
                return Err(invalid("conflicting Content-Length values".to_string()));
            }
            found = Some(n);
        }
    }
    Ok(found)
}

/// Body framing of a request (RFC 9112 section 6.3).
pub(crate) fn request_framing(headers: &[(String, String)]) -> io::Result<Framing> {
    match chunked_last(headers) {
        Some(true) => Ok(Framing::Chunked),
        Some(false) => Err(invalid(
            "request Transfer-Encoding does not end in chunked".to_string(),
        )),
        None => Ok(Framing::Length(content_length(headers)?.unwrap_or(0))),
    }
}

/// Body framing of a response to a request with method `method`.
pub(crate) fn response_framing(
    method: &str,
    status: u16,
    headers: &[(String, String)],
) -> io::Result<Framing> {
    if method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&status)
        || status == 204
        || status == 304
    {
        return Ok(Framing::Length(0));
    }
    match chunked_last(headers) {
        Some(true) => Ok(Framing::Chunked),
        Some(false) => Ok(Framing::UntilClose),
        None => Ok(content_length(headers)?.map_or(Framing::UntilClose, Framing::Length)),
    }
}

pub(crate) fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

pub(crate) fn eof(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, msg.to_string())
}

/// Whether `e` means the peer went away (closed or reset), as opposed to a timeout.
pub(crate) fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Whether `e` is a read timeout (`SO_RCVTIMEO` shows up as `WouldBlock` on Unix).
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
