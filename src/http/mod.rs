//! Sans-IO HTTP/1.1: request and response heads parsed in place, body framing,
//! and the errors a client can be answered with. Nothing here does IO, so all
//! of it is tested with byte slices.

#![forbid(unsafe_code)]

mod body;
mod chunked;
mod error;
mod request;
mod request_parts;
mod response;
mod status;

pub use body::{BodyProgress, Framing};
pub use chunked::{ChunkedError, ChunkedScanner};
pub use error::Error;
pub use request::{parse_request, RequestHead, MAX_HEADERS};
pub use response::{parse_response, ResponseHead};
pub use status::reason_phrase;

/// HTTP version of a message: only 1.0 and 1.1 exist on this wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    fn from_minor(minor: u8) -> Version {
        if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        }
    }
}

/// Most header lines one head may have dropped before it is forwarded.
const MAX_DROPS: usize = 16;

/// Byte ranges of a head (offsets from its first byte) that are not
/// forwarded: hop-by-hop header lines, and the lines a proxy rewrites.
/// A fixed-size array, so that parsing allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drops {
    ranges: [(u32, u32); MAX_DROPS],
    len: u8,
}

impl Default for Drops {
    fn default() -> Self {
        Drops {
            ranges: [(0, 0); MAX_DROPS],
            len: 0,
        }
    }
}

impl Drops {
    /// Records a range; false when there is no room left.
    fn push(&mut self, start: usize, end: usize) -> bool {
        if self.len as usize == MAX_DROPS {
            return false;
        }
        self.ranges[self.len as usize] = (start as u32, end as u32);
        self.len += 1;
        true
    }

    /// The ranges, in the order of the head (header lines are visited in order).
    pub fn as_slice(&self) -> &[(u32, u32)] {
        &self.ranges[..self.len as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The kept parts of `0..len`: the complement of the ranges.
    pub fn kept(&self, len: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        let mut pos = 0usize;
        let mut i = 0usize;
        std::iter::from_fn(move || loop {
            if pos >= len {
                return None;
            }
            match self.as_slice().get(i) {
                Some(&(s, e)) => {
                    i += 1;
                    let (s, e) = (s as usize, e as usize);
                    let part = (pos, s);
                    pos = e;
                    if part.0 < part.1 {
                        return Some(part);
                    }
                }
                None => {
                    let part = (pos, len);
                    pos = len;
                    return Some(part);
                }
            }
        })
    }
}

/// Offset of `inner` within `outer`; `inner` must be a sub-slice.
#[inline]
fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    let off = inner.as_ptr() as usize - outer.as_ptr() as usize;
    debug_assert!(off + inner.len() <= outer.len());
    off
}

/// The whole line of a header field: from its name to just past its line
/// ending. `value_end` is an offset just past the (trimmed) value.
fn line_range(head: &[u8], name: &[u8], value_end: usize) -> (usize, usize) {
    let start = offset_in(head, name);
    let end = match head[value_end..].iter().position(|&b| b == b'\n') {
        Some(p) => value_end + p + 1,
        None => head.len(),
    };
    (start, end)
}

/// The offset just past a header's value, tolerant of empty values (whose
/// slice httparse points at the line's whitespace).
fn value_end(head: &[u8], value: &[u8]) -> usize {
    offset_in(head, value) + value.len()
}

/// Iterates the comma-separated tokens of a header value, trimmed.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').filter_map(|t| {
        let t = t.trim_ascii();
        (!t.is_empty()).then_some(t)
    })
}

/// Parses a Content-Length value: `1*DIGIT`, nothing else. A list (`5, 5`)
/// is refused rather than folded: forwarded as it came, the next hop could
/// read it otherwise, and rewriting it is not worth the rare client.
fn parse_content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        value
            .iter()
            .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')),
    )
}

/// Names of hop-by-hop fields listed in a `Connection` header, kept as
/// offsets into the head so that no bytes are copied.
const MAX_CONNECTION_NAMES: usize = 16;

#[derive(Default)]
struct ConnectionOptions {
    close: bool,
    keep_alive: bool,
    upgrade: bool,
    names: [(u32, u32); MAX_CONNECTION_NAMES],
    names_len: usize,
}

impl ConnectionOptions {
    /// Takes in one `Connection` value. Refuses a list that names a field
    /// that frames or routes the message (dropping it would change what the
    /// next hop reads), and a list longer than can be kept.
    fn add(&mut self, head: &[u8], value: &[u8]) -> Result<(), FieldError> {
        for token in tokens(value) {
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if token.eq_ignore_ascii_case(b"upgrade") {
                self.upgrade = true;
            } else if matches!(
                classify(token),
                Known::ContentLength | Known::TransferEncoding | Known::Host
            ) {
                return Err(FieldError::Connection);
            } else if self.names_len < MAX_CONNECTION_NAMES {
                let off = offset_in(head, token);
                self.names[self.names_len] = (off as u32, (off + token.len()) as u32);
                self.names_len += 1;
            } else {
                return Err(FieldError::Connection);
            }
        }
        Ok(())
    }

    /// Whether a field name was listed in `Connection` (so is hop-by-hop).
    fn lists(&self, head: &[u8], name: &[u8]) -> bool {
        self.names[..self.names_len]
            .iter()
            .any(|&(s, e)| head[s as usize..e as usize].eq_ignore_ascii_case(name))
    }
}

/// The fields that decide a message's framing and persistence, gathered in
/// the first pass over its head.
#[derive(Default)]
struct FramingFields {
    conn: ConnectionOptions,
    codings: TransferCodings,
    content_length: Option<u64>,
}

/// A field that makes a head unacceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldError {
    /// A `Content-Length` that is invalid, or a second one.
    ContentLength,
    /// A `Connection` list naming a framing field, or too long to honour.
    Connection,
}

impl FramingFields {
    /// Takes in one field of the head.
    #[inline]
    fn add(&mut self, head: &[u8], known: Known, value: &[u8]) -> Result<(), FieldError> {
        match known {
            Known::ContentLength => {
                let n = parse_content_length(value).ok_or(FieldError::ContentLength)?;
                if self.content_length.is_some() {
                    return Err(FieldError::ContentLength);
                }
                self.content_length = Some(n);
            }
            Known::TransferEncoding => self.codings.add(value),
            Known::Connection => self.conn.add(head, value)?,
            _ => {}
        }
        Ok(())
    }

    /// Whether a message of this version stays open after it: HTTP/1.1
    /// unless `close`, HTTP/1.0 only with `keep-alive`.
    fn persistent(&self, version: Version) -> bool {
        match version {
            Version::Http11 => !self.conn.close,
            Version::Http10 => self.conn.keep_alive && !self.conn.close,
        }
    }
}

/// Header names a proxy looks at, matched case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    ContentLength,
    TransferEncoding,
    Connection,
    KeepAlive,
    ProxyConnection,
    Te,
    Upgrade,
    Trailer,
    Host,
    Expect,
    XForwardedFor,
    XForwardedProto,
    IdempotencyKey,
    Http2Settings,
    Other,
}

#[inline]
fn classify(name: &[u8]) -> Known {
    // Dispatch on length first: most names are rejected by one compare.
    let candidate = match name.len() {
        2 => (b"te".as_slice(), Known::Te),
        4 => (b"host".as_slice(), Known::Host),
        6 => (b"expect".as_slice(), Known::Expect),
        7 => {
            if name.eq_ignore_ascii_case(b"upgrade") {
                return Known::Upgrade;
            }
            (b"trailer".as_slice(), Known::Trailer)
        }
        10 => {
            if name.eq_ignore_ascii_case(b"connection") {
                return Known::Connection;
            }
            (b"keep-alive".as_slice(), Known::KeepAlive)
        }
        14 => {
            if name.eq_ignore_ascii_case(b"http2-settings") {
                return Known::Http2Settings;
            }
            (b"content-length".as_slice(), Known::ContentLength)
        }
        15 => {
            if name.eq_ignore_ascii_case(b"idempotency-key") {
                return Known::IdempotencyKey;
            }
            (b"x-forwarded-for".as_slice(), Known::XForwardedFor)
        }
        16 => (b"proxy-connection".as_slice(), Known::ProxyConnection),
        17 => {
            if name.eq_ignore_ascii_case(b"transfer-encoding") {
                return Known::TransferEncoding;
            }
            (b"x-forwarded-proto".as_slice(), Known::XForwardedProto)
        }
        _ => return Known::Other,
    };
    if name.eq_ignore_ascii_case(candidate.0) {
        candidate.1
    } else {
        Known::Other
    }
}

/// What a set of `Transfer-Encoding` fields says about framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TransferCoding {
    /// No Transfer-Encoding field.
    Absent,
    /// One field whose value is `chunked` and nothing else: the only form a
    /// request may have.
    ChunkedOnly,
    /// One field, the final coding `chunked`, every other coding known.
    Chunked,
    /// The final coding is not chunked (a request must be rejected; a
    /// response is read until close).
    NotChunked,
    /// A coding nobody registered (501 for a request).
    Unknown,
    /// `chunked` twice, or not last, an empty list element (`chunked,`),
    /// or more than one field: a next hop may read any of these otherwise.
    Invalid,
}

#[derive(Default)]
struct TransferCodings {
    lines: u8,
    chunked_last: bool,
    chunked_count: u8,
    codings: u8,
    unknown: bool,
    empty: bool,
}

impl TransferCodings {
    fn add(&mut self, value: &[u8]) {
        self.lines = self.lines.saturating_add(1);
        for coding in value.split(|&b| b == b',') {
            let coding = coding.trim_ascii();
            if coding.is_empty() {
                self.empty = true;
                continue;
            }
            self.codings = self.codings.saturating_add(1);
            // Parameters (`;q=...`) are not allowed on transfer codings we
            // know; treat anything with them as unknown.
            if coding.eq_ignore_ascii_case(b"chunked") {
                self.chunked_count = self.chunked_count.saturating_add(1);
                self.chunked_last = true;
                continue;
            }
            self.chunked_last = false;
            let known = [
                b"gzip".as_slice(),
                b"x-gzip",
                b"deflate",
                b"compress",
                b"x-compress",
            ]
            .iter()
            .any(|k| coding.eq_ignore_ascii_case(k));
            if !known {
                self.unknown = true;
            }
        }
    }

    fn result(&self) -> TransferCoding {
        if self.lines == 0 {
            TransferCoding::Absent
        } else if self.lines > 1
            || self.empty
            || self.codings == 0
            || self.chunked_count > 1
            || (self.chunked_count == 1 && !self.chunked_last)
        {
            TransferCoding::Invalid
        } else if self.unknown {
            TransferCoding::Unknown
        } else if self.chunked_last && self.codings == 1 {
            TransferCoding::ChunkedOnly
        } else if self.chunked_last {
            TransferCoding::Chunked
        } else {
            TransferCoding::NotChunked
        }
    }
}

/// Whether a head has a line that ends in a bare LF. httparse accepts them,
/// and a head is forwarded as it came: a next hop that reads lines
/// differently could see other fields, so such a head is refused.
#[inline]
fn has_bare_lf(head: &[u8]) -> bool {
    let mut prev = 0u8;
    head.iter().any(|&b| {
        let bare = b == b'\n' && prev != b'\r';
        prev = b;
        bare
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_is_the_complement_of_drops() {
        let mut d = Drops::default();
        assert_eq!(d.kept(10).collect::<Vec<_>>(), vec![(0, 10)]);
        d.push(0, 2);
        d.push(4, 6);
        d.push(6, 8);
        assert_eq!(d.kept(10).collect::<Vec<_>>(), vec![(2, 4), (8, 10)]);
        let mut d = Drops::default();
        d.push(3, 10);
        assert_eq!(d.kept(10).collect::<Vec<_>>(), vec![(0, 3)]);
    }

    #[test]
    fn content_length_values() {
        assert_eq!(parse_content_length(b"0"), Some(0));
        assert_eq!(parse_content_length(b"42"), Some(42));
        assert_eq!(parse_content_length(b"42, 42"), None);
        assert_eq!(parse_content_length(b"42, 43"), None);
        assert_eq!(parse_content_length(b"+42"), None);
        assert_eq!(parse_content_length(b"-1"), None);
        assert_eq!(parse_content_length(b"0x10"), None);
        assert_eq!(parse_content_length(b""), None);
        assert_eq!(parse_content_length(b"99999999999999999999"), None);
        assert_eq!(
            parse_content_length(b"9999999999999999999"),
            Some(9999999999999999999)
        );
    }

    #[test]
    fn classifies_names_case_insensitively() {
        assert_eq!(classify(b"Content-Length"), Known::ContentLength);
        assert_eq!(classify(b"CONNECTION"), Known::Connection);
        assert_eq!(classify(b"Keep-Alive"), Known::KeepAlive);
        assert_eq!(classify(b"te"), Known::Te);
        assert_eq!(classify(b"Content-Type"), Known::Other);
        assert_eq!(classify(b"X-Forwarded-For"), Known::XForwardedFor);
        assert_eq!(classify(b"x-forwarded-proto"), Known::XForwardedProto);
        assert_eq!(classify(b"Transfer-Encoding"), Known::TransferEncoding);
        assert_eq!(classify(b"Trailer"), Known::Trailer);
        assert_eq!(classify(b"Upgrade"), Known::Upgrade);
    }

    #[test]
    fn transfer_codings() {
        let of = |values: &[&[u8]]| {
            let mut t = TransferCodings::default();
            for v in values {
                t.add(v);
            }
            t.result()
        };
        assert_eq!(of(&[]), TransferCoding::Absent);
        assert_eq!(of(&[b"chunked"]), TransferCoding::ChunkedOnly);
        assert_eq!(of(&[b"Chunked"]), TransferCoding::ChunkedOnly);
        assert_eq!(of(&[b"gzip, chunked"]), TransferCoding::Chunked);
        assert_eq!(of(&[b"gzip", b"Chunked"]), TransferCoding::Invalid);
        assert_eq!(of(&[b"gzip"]), TransferCoding::NotChunked);
        assert_eq!(of(&[b"chunked, gzip"]), TransferCoding::Invalid);
        assert_eq!(of(&[b"chunked", b"chunked"]), TransferCoding::Invalid);
        assert_eq!(of(&[b"chunked,"]), TransferCoding::Invalid);
        assert_eq!(of(&[b", chunked"]), TransferCoding::Invalid);
        assert_eq!(of(&[b"gzip,,chunked"]), TransferCoding::Invalid);
        assert_eq!(of(&[b"foo, chunked"]), TransferCoding::Unknown);
        assert_eq!(of(&[b""]), TransferCoding::Invalid);
    }

    #[test]
    fn finds_bare_line_feeds() {
        assert!(!has_bare_lf(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(has_bare_lf(b"GET / HTTP/1.1\nHost: a\r\n\r\n"));
        assert!(has_bare_lf(b"GET / HTTP/1.1\r\nHost: a\n\r\n"));
        assert!(has_bare_lf(b"GET / HTTP/1.1\r\nHost: a\r\n\n"));
        assert!(has_bare_lf(b"\nGET / HTTP/1.1\r\n\r\n"));
    }
}
