//! A deliberately strict reading of RFC 9112 for requests, written for the
//! tests: it parses one request message from the start of a byte slice and
//! says where its head ends, how its body is framed and where the body ends.
//! It shares no code with `src/` or httparse, so that it checks them rather
//! than repeats them: the forwarding properties hand it what the balancer
//! would send a target, and a target this strict must read the same message
//! boundaries as the balancer did.
//!
//! Strict means that whatever a careful implementation could read in two
//! ways is refused. It follows the ABNF of RFC 9112 (and of RFC 9110 and
//! RFC 3986 where those define a part), and on top of it refuses:
//!
//! - a request target that is not in origin form (or `*` for `OPTIONS`):
//!   the balancer rewrites the absolute form, and never forwards `CONNECT`;
//! - empty lines before the request line (§2.2 lets a server skip them);
//! - a header field name with `_` (the balancer drops those; CGI-style
//!   gateways read `_` as `-`); trailer fields may have one, since the
//!   balancer forwards a body as it came;
//! - more than one `Host`, or none in HTTP/1.1, or one that is not
//!   `host[:port]` with a reg-name or a bracketed IPv6 literal (no
//!   IPvFuture, no zone; as in RFC 3986 the reg-name and the port may be
//!   empty);
//! - `Transfer-Encoding` other than one line of exactly `chunked` (any
//!   case), with it any `Content-Length`, or in HTTP/1.0; a
//!   `Content-Length` that is not one line of `1*DIGIT` (no list) or does
//!   not fit in 64 bits;
//! - an `Upgrade` that is not a list of `name[/version]` tokens, or that
//!   offers HTTP/2 (`h2c`, `h2`, `HTTP/2`); any `HTTP2-Settings`; a
//!   `Connection` listing `Content-Length`, `Transfer-Encoding` or `Host`.
//!
//! There is no obs-fold, no whitespace before a colon, no bare CR and no
//! bare LF anywhere outside chunk data. No length limits: those are policy.
//!
//! Shared by path, so it depends on std alone: `tests/http_properties.rs`
//! and `tests/strict_reference.rs` (its own unit tests) do `mod strict;`,
//! `fuzz/fuzz_targets/forwarded_request.rs` includes it with `#[path]`.

// Each includer uses a different part of it.
#![allow(dead_code)]

use std::net::Ipv6Addr;

/// HTTP version of a request: `HTTP/1.0` or `HTTP/1.1`, nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// How a request's body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Neither `Content-Length` nor `Transfer-Encoding`: no body.
    None,
    /// `Content-Length: n`, `0` included (kept apart from `None` here).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// One field line: its name, and its value without the whitespace around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
}

/// A request head, read through its final empty line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head<'a> {
    pub method: &'a [u8],
    pub target: &'a [u8],
    pub version: Version,
    pub fields: Vec<Field<'a>>,
    /// Length of the head, its final CRLF included.
    pub head_len: usize,
    pub framing: Framing,
}

/// A whole request message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub head: Head<'a>,
    /// Where the body ends (offset from the start of the message): the
    /// first byte of whatever follows the message.
    pub body_end: usize,
    /// The trailer fields of a chunked body.
    pub trailers: Vec<Field<'a>>,
}

/// Why no message was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Every byte so far fits the grammar; the message goes on past them.
    Incomplete,
    /// The byte at `at` (or the field ending there) breaks the rule `why`.
    Invalid { at: usize, why: &'static str },
}

/// Parses one request message, head and body, from the start of `buf`.
/// Bytes after the message are not looked at.
pub fn parse_request(buf: &[u8]) -> Result<Request<'_>, Reject> {
    let head = parse_head(buf)?;
    let mut cur = Cursor {
        buf,
        pos: head.head_len,
    };
    let trailers = match head.framing {
        Framing::None => Vec::new(),
        Framing::Length(n) => {
            let left = (buf.len() - cur.pos) as u64;
            if left < n {
                return Err(Reject::Incomplete);
            }
            cur.pos += n as usize;
            Vec::new()
        }
        Framing::Chunked => chunked_body(&mut cur)?,
    };
    Ok(Request {
        head,
        body_end: cur.pos,
        trailers,
    })
}

/// Parses a request head from the start of `buf`: the request line, the
/// field lines and the empty line, then the rules between fields.
pub fn parse_head(buf: &[u8]) -> Result<Head<'_>, Reject> {
    let mut cur = Cursor { buf, pos: 0 };

    // request-line = method SP request-target SP HTTP-version CRLF
    let method = cur.token("method")?;
    cur.expect(b' ', "SP after the method")?;
    let target_at = cur.pos;
    let target = cur.take_while(|b| (0x21..=0x7e).contains(&b));
    if target.is_empty() {
        cur.peek()?;
        return cur.invalid("request-target");
    }
    cur.expect(b' ', "SP after the request-target")?;
    // No absolute form (the balancer rewrites it), no authority form (it
    // never forwards CONNECT, whose form that is).
    match target {
        [b'/', ..] if method != b"CONNECT" => {}
        b"*" if method == b"OPTIONS" => {}
        _ => {
            return Err(Reject::Invalid {
                at: target_at,
                why: "request-target not in origin form (or * for OPTIONS)",
            })
        }
    }
    let version = cur.version()?;
    cur.crlf("CRLF after the request line")?;

    // *( field-line CRLF ) CRLF
    let mut fields = Vec::new();
    let mut ends = Vec::new();
    while cur.peek()? != b'\r' {
        fields.push(cur.field_line(false)?);
        ends.push(cur.pos);
    }
    cur.crlf("CRLF ending the head")?;
    let head_len = cur.pos;

    let framing = check_fields(&fields, &ends, version)?;
    Ok(Head {
        method,
        target,
        version,
        fields,
        head_len,
        framing,
    })
}

/// The rules between a head's fields; `ends[i]` is where field `i` ends.
/// Returns the framing they give.
fn check_fields(fields: &[Field<'_>], ends: &[usize], version: Version) -> Result<Framing, Reject> {
    let mut hosts = 0;
    let mut content_length = None;
    let mut chunked = false;
    for (f, &at) in fields.iter().zip(ends) {
        let invalid = |why| Err(Reject::Invalid { at, why });
        let name = f.name;
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
            if hosts > 1 {
                return invalid("a second Host");
            }
            if !is_host_port(f.value) {
                return invalid("Host is not host[:port]");
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            if content_length.is_some() {
                return invalid("a second Content-Length");
            }
            if f.value.is_empty() || !f.value.iter().all(u8::is_ascii_digit) {
                return invalid("Content-Length is not 1*DIGIT");
            }
            let n = f.value.iter().try_fold(0u64, |n, &d| {
                n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            });
            match n {
                Some(n) => content_length = Some(n),
                None => return invalid("Content-Length over 64 bits"),
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if chunked {
                return invalid("a second Transfer-Encoding");
            }
            if !f.value.eq_ignore_ascii_case(b"chunked") {
                return invalid("Transfer-Encoding other than chunked");
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            if !list(f.value).all(is_protocol) {
                return invalid("Upgrade is not a list of protocols");
            }
            if list(f.value).any(offers_http2) {
                return invalid("Upgrade offers HTTP/2");
            }
        } else if name.eq_ignore_ascii_case(b"http2-settings") {
            return invalid("HTTP2-Settings");
        } else if name.eq_ignore_ascii_case(b"connection") {
            let framing = |t: &[u8]| {
                [b"content-length".as_slice(), b"transfer-encoding", b"host"]
                    .iter()
                    .any(|n| t.eq_ignore_ascii_case(n))
            };
            if list(f.value).any(framing) {
                return invalid("Connection lists a framing field");
            }
        }
    }
    let end = ends.last().copied().unwrap_or(0);
    let invalid = |why| Err(Reject::Invalid { at: end, why });
    if hosts == 0 && version == Version::Http11 {
        return invalid("no Host in HTTP/1.1");
    }
    match (chunked, content_length) {
        (true, Some(_)) => invalid("Transfer-Encoding with Content-Length"),
        (true, None) if version == Version::Http10 => invalid("Transfer-Encoding in HTTP/1.0"),
        (true, None) => Ok(Framing::Chunked),
        (false, Some(n)) => Ok(Framing::Length(n)),
        (false, None) => Ok(Framing::None),
    }
}

/// chunked-body = *chunk last-chunk trailer-section CRLF (RFC 9112 §7.1),
/// read from the cursor to just past its end. Returns the trailer fields.
fn chunked_body<'a>(cur: &mut Cursor<'a>) -> Result<Vec<Field<'a>>, Reject> {
    loop {
        // chunk-size [ chunk-ext ] CRLF; last-chunk = 1*("0") [ chunk-ext ] CRLF
        let digits = cur.take_while(|b| b.is_ascii_hexdigit());
        if digits.is_empty() {
            cur.peek()?;
            return cur.invalid("chunk-size");
        }
        let size = digits.iter().try_fold(0u64, |n, &d| {
            let d = (d as char).to_digit(16).expect("a hex digit");
            n.checked_mul(16)?.checked_add(u64::from(d))
        });
        let Some(size) = size else {
            return cur.invalid("chunk-size over 64 bits");
        };
        cur.chunk_ext()?;
        cur.crlf("CRLF after chunk-size and chunk-ext")?;
        if size == 0 {
            break;
        }
        // chunk-data CRLF
        if ((cur.buf.len() - cur.pos) as u64) < size {
            return Err(Reject::Incomplete);
        }
        cur.pos += size as usize;
        cur.crlf("CRLF after chunk-data")?;
    }
    // trailer-section = *( field-line CRLF ), then the final CRLF
    let mut trailers = Vec::new();
    while cur.peek()? != b'\r' {
        trailers.push(cur.field_line(true)?);
    }
    cur.crlf("CRLF ending the chunked body")?;
    Ok(trailers)
}

/// A position in the message. Running out of bytes where the grammar needs
/// one more is `Incomplete`; a byte the grammar has no place for, `Invalid`.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Result<u8, Reject> {
        self.buf.get(self.pos).copied().ok_or(Reject::Incomplete)
    }

    fn invalid<T>(&self, why: &'static str) -> Result<T, Reject> {
        Err(Reject::Invalid { at: self.pos, why })
    }

    fn expect(&mut self, want: u8, why: &'static str) -> Result<(), Reject> {
        if self.peek()? != want {
            return self.invalid(why);
        }
        self.pos += 1;
        Ok(())
    }

    /// CR LF, nothing else: a bare LF or a bare CR is invalid.
    fn crlf(&mut self, why: &'static str) -> Result<(), Reject> {
        self.expect(b'\r', why)?;
        self.expect(b'\n', why)
    }

    /// The longest run of bytes from here that `f` accepts (the caller
    /// looks at the byte after it, which may be missing: `Incomplete`).
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.buf.get(self.pos).is_some_and(|&b| f(b)) {
            self.pos += 1;
        }
        &self.buf[start..self.pos]
    }

    /// OWS = *( SP / HTAB ); also BWS.
    fn ows(&mut self) -> usize {
        self.take_while(|b| b == b' ' || b == b'\t').len()
    }

    /// token = 1*tchar
    fn token(&mut self, why: &'static str) -> Result<&'a [u8], Reject> {
        let t = self.take_while(is_tchar);
        if t.is_empty() {
            self.peek()?;
            return self.invalid(why);
        }
        Ok(t)
    }

    /// HTTP-version, of the two that exist: `HTTP/1.0` or `HTTP/1.1`.
    fn version(&mut self) -> Result<Version, Reject> {
        for &b in b"HTTP/1." {
            self.expect(b, "HTTP-version")?;
        }
        let v = match self.peek()? {
            b'0' => Version::Http10,
            b'1' => Version::Http11,
            _ => return self.invalid("HTTP-version"),
        };
        self.pos += 1;
        Ok(v)
    }

    /// field-line CRLF, where field-line = field-name ":" OWS field-value
    /// OWS. A field-value is field-vchars (VCHAR / obs-text) with SP and
    /// HTAB only between them; with the OWS around it, that is any run of
    /// those four kinds of byte. A name starts with a tchar, so a line
    /// starting with whitespace (obs-fold) is invalid.
    fn field_line(&mut self, underscore_ok: bool) -> Result<Field<'a>, Reject> {
        let name_at = self.pos;
        let name = self.token("field-name")?;
        if !underscore_ok && name.contains(&b'_') {
            return Err(Reject::Invalid {
                at: name_at,
                why: "field-name with _",
            });
        }
        self.expect(b':', "':' after the field-name")?;
        let value = self.take_while(|b| matches!(b, b' ' | b'\t' | 0x21..=0x7e | 0x80..=0xff));
        self.crlf("CRLF after the field-value")?;
        Ok(Field {
            name,
            value: trim_ows(value),
        })
    }

    /// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ),
    /// ext-val = token / quoted-string. Whitespace must lead to a `;` or a
    /// `=`: none may end the line.
    fn chunk_ext(&mut self) -> Result<(), Reject> {
        loop {
            let ws = self.ows();
            if self.peek()? != b';' {
                if ws > 0 {
                    return self.invalid("whitespace not before ';' in a chunk-size line");
                }
                return Ok(());
            }
            self.pos += 1;
            self.ows();
            self.token("chunk-ext-name")?;
            let before = self.pos;
            self.ows();
            if self.peek()? != b'=' {
                // Back to the whitespace: the next round judges it.
                self.pos = before;
                continue;
            }
            self.pos += 1;
            self.ows();
            if self.peek()? == b'"' {
                self.quoted_string()?;
            } else {
                self.token("chunk-ext-val")?;
            }
        }
    }

    /// quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
    fn quoted_string(&mut self) -> Result<(), Reject> {
        self.expect(b'"', "quoted-string")?;
        loop {
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                b'\\' => {
                    self.pos += 1;
                    match self.peek()? {
                        b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => self.pos += 1,
                        _ => return self.invalid("quoted-pair"),
                    }
                }
                b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => self.pos += 1,
                _ => return self.invalid("qdtext"),
            }
        }
    }
}

/// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
/// "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `value` without the SP and HTAB around it.
fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ws(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ws(b))
        .map_or(start, |e| e + 1);
    &value[start..end]
}

/// The elements of a comma-separated list value, without the whitespace
/// around them; empty elements are skipped (RFC 9110 §5.6.1.2).
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// protocol = protocol-name [ "/" protocol-version ], both tokens
/// (RFC 9110 §7.8): no whitespace, quotes or obs-text inside.
fn is_protocol(element: &[u8]) -> bool {
    let mut parts = element.splitn(2, |&b| b == b'/');
    let name = parts.next().unwrap_or_default();
    let version = parts.next();
    let token = |t: &[u8]| !t.is_empty() && t.iter().all(|&b| is_tchar(b));
    token(name) && version.is_none_or(token)
}

/// Whether an `Upgrade` protocol asks for HTTP/2: `h2c`, `h2`, or `HTTP`
/// at version 2.
fn offers_http2(protocol: &[u8]) -> bool {
    let mut parts = protocol.splitn(2, |&b| b == b'/');
    let name = parts.next().unwrap_or_default();
    let version = parts.next().unwrap_or_default();
    name.eq_ignore_ascii_case(b"h2c")
        || name.eq_ignore_ascii_case(b"h2")
        || (name.eq_ignore_ascii_case(b"http") && version.starts_with(b"2"))
}

/// Host = uri-host [ ":" port ] (RFC 9110 §7.2), where uri-host is an
/// IP-literal holding an IPv6 address (IPvFuture is refused) or a reg-name
/// (RFC 3986 §3.2.2; an IPv4 address is spelled as one), and port = *DIGIT.
/// There is no userinfo: `@` is in neither.
fn is_host_port(value: &[u8]) -> bool {
    let port = if let Some(rest) = value.strip_prefix(b"[") {
        let Some(close) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = std::str::from_utf8(&rest[..close]).ok();
        if literal.and_then(|l| l.parse::<Ipv6Addr>().ok()).is_none() {
            return false;
        }
        &rest[close + 1..]
    } else {
        let end = value.iter().position(|&b| b == b':').unwrap_or(value.len());
        if !is_reg_name(&value[..end]) {
            return false;
        }
        &value[end..]
    };
    match port {
        [] => true,
        [b':', digits @ ..] => digits.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// reg-name = *( unreserved / pct-encoded / sub-delims )
fn is_reg_name(name: &[u8]) -> bool {
    let mut i = 0;
    while i < name.len() {
        match name[i] {
            b'%' => {
                let hex = name.get(i + 1..i + 3);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b) => i += 1,
            _ => return false,
        }
    }
    true
}
