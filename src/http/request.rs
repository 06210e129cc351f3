//! Request heads, parsed in place with httparse into offsets: what the proxy
//! needs to forward the head as it arrived, minus its hop-by-hop lines.

use std::mem::MaybeUninit;

use super::chunked::is_tchar;
use super::{
    classify, has_bare_lf, line_range, offset_in, value_end, Drops, Error, FieldError, Framing,
    FramingFields, Known, TransferCoding, Version,
};

/// Most header fields in one request head (HAProxy's default is 101).
pub const MAX_HEADERS: usize = 100;

/// A parsed request head: offsets into the buffer it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead {
    /// Length of the head, final empty line included.
    pub head_len: usize,
    /// Where the request line is (without its line ending), for logs.
    pub line: (u32, u32),
    /// The method is HEAD (its response has no body).
    pub is_head: bool,
    /// Running the request twice does no more than running it once: its
    /// method is idempotent (RFC 9110 §9.2.2: GET, HEAD, OPTIONS, TRACE, PUT,
    /// DELETE) or it carries an `Idempotency-Key`. Only such a request is
    /// sent again after a target took it and failed without an answer.
    pub idempotent: bool,
    pub version: Version,
    /// How the body is delimited: `None`, `Length` or `Chunked`.
    pub framing: Framing,
    /// The client wants the connection kept open after the response.
    pub keep_alive: bool,
    /// The client waits for `100 Continue` before sending its body (it
    /// asked, and no body byte came with the head).
    pub expect_continue: bool,
    /// The client asks to switch protocols (`Upgrade` with `Connection:
    /// upgrade`): the `Upgrade` line is forwarded, and a 101 opens a tunnel.
    pub upgrade: bool,
    /// Lines not forwarded.
    pub drops: Drops,
    /// The value of the request's one `X-Forwarded-For` line (dropped, and
    /// forwarded again with the client's address appended).
    pub forwarded_for: Option<(u32, u32)>,
    /// For a request target in absolute form (`GET http://host/x`): its
    /// authority, sent as the `Host` (the client's `Host` lines are
    /// dropped), while the scheme and authority are dropped from the request
    /// line so that it goes on in origin form (RFC 9112 §3.2.2).
    pub authority: Option<(u32, u32)>,
    /// The absolute form had an empty path (`http://host?q`): a `/` goes
    /// where the authority was.
    pub root_path: bool,
    /// Header fields dropped because their name holds an `_` (CGI and WSGI
    /// gateways map it to `-`, which would let a client pass for a proxy's
    /// `X-Forwarded-For`), as nginx does by default.
    pub underscored: u8,
}

/// A request target in absolute form, as offsets into the head.
struct Absolute {
    /// Where the scheme begins and the authority ends: dropped.
    dropped: (usize, usize),
    authority: (usize, usize),
    root_path: bool,
}

/// Parses a request head at the start of `buf`. `Ok(None)` means the head is
/// not complete yet. A head longer than `max_head` bytes is refused: 414
/// when its request line alone is over the bound, else 431, whether the head
/// is complete or not.
pub fn parse_request(buf: &[u8], max_head: usize) -> Result<Option<RequestHead>, Error> {
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(n)) if n > max_head => return Err(too_long(buf, max_head)),
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > max_head => {
            return Err(too_long(buf, max_head))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Error::HeadTooLarge),
        Err(_) if buf.len() > max_head => return Err(too_long(buf, max_head)),
        Err(_) => return Err(Error::MalformedRequest),
    };
    let head = &buf[..head_len];
    let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(Error::MalformedRequest);
    };
    // `METHOD SP target SP HTTP/1.x`: the version is 8 bytes after one space.
    let line = (
        offset_in(head, method.as_bytes()) as u32,
        (offset_in(head, path.as_bytes()) + path.len() + 9) as u32,
    );
    if method == "CONNECT" {
        return Err(Error::MethodNotSupported);
    }
    // Leading empty lines are dropped, not forwarded: only what follows
    // must end its lines in CRLF.
    let line_start = offset_in(head, method.as_bytes());
    if has_bare_lf(&head[line_start..]) {
        return Err(Error::MalformedRequest);
    }
    // httparse lets bytes above 0x7E (and `#`) into a request target; a
    // target reads them as it likes, so such a request goes no further.
    if path.bytes().any(|b| b > 0x7e || b == b'#') {
        return Err(Error::MalformedRequest);
    }
    let version = Version::from_minor(minor);
    let absolute = match path.as_bytes() {
        [b'/', ..] => None,
        b"*" if method == "OPTIONS" => None,
        target => Some(absolute_form(head, target)?),
    };

    // First pass: what the fields say.
    let mut fields = FramingFields::default();
    let mut hosts = 0u32;
    let mut forwarded_for_lines = 0u32;
    let mut expect_continue = false;
    let mut upgrade_lines = 0u32;
    let mut idempotency_key = false;
    let mut offerable = true;
    for h in req.headers.iter() {
        let known = classify(h.name.as_bytes());
        fields.add(head, known, h.value).map_err(|e| match e {
            FieldError::ContentLength => Error::BadFraming,
            FieldError::Connection => Error::MalformedRequest,
        })?;
        match known {
            Known::Host if !is_authority(h.value, true) => return Err(Error::BadHost),
            Known::Host => hosts += 1,
            Known::Expect => expect_continue = h.value.eq_ignore_ascii_case(b"100-continue"),
            Known::XForwardedFor => forwarded_for_lines += 1,
            Known::Upgrade => {
                upgrade_lines += 1;
                offerable &= is_offerable_upgrade(h.value);
            }
            Known::IdempotencyKey => idempotency_key = true,
            _ => {}
        }
    }

    if hosts > 1 || (hosts == 0 && version == Version::Http11) {
        return Err(Error::BadHost);
    }

    let framing = match fields.codings.result() {
        TransferCoding::Absent => match fields.content_length {
            None | Some(0) => Framing::None,
            Some(n) => Framing::Length(n),
        },
        _ if fields.content_length.is_some() || version == Version::Http10 => {
            return Err(Error::BadFraming)
        }
        // A request is forwarded with its own `Transfer-Encoding` line, so
        // only the one form every next hop reads alike is taken.
        TransferCoding::ChunkedOnly => Framing::Chunked,
        TransferCoding::Chunked | TransferCoding::Unknown => {
            return Err(Error::UnknownTransferCoding)
        }
        TransferCoding::NotChunked | TransferCoding::Invalid => return Err(Error::BadFraming),
    };
    let expect_continue = expect_continue
        && version == Version::Http11
        && framing != Framing::None
        && buf.len() == head_len;
    // An `h2c` upgrade is never offered to a target: it would hand the
    // client an HTTP/2 connection past every check here; nor is an
    // `Upgrade` a target could read otherwise.
    let upgrade =
        upgrade_lines == 1 && fields.conn.upgrade && version == Version::Http11 && offerable;

    // Second pass, in head order: the lines not forwarded.
    let mut drops = Drops::default();
    if line_start > 0 && !drops.push(0, line_start) {
        return Err(Error::HeadTooLarge);
    }
    if let Some(a) = &absolute {
        if !drops.push(a.dropped.0, a.dropped.1) {
            return Err(Error::HeadTooLarge);
        }
    }
    let mut forwarded_for = None;
    let mut underscored = 0u8;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let end = value_end(head, h.value);
        let drop = match classify(name) {
            _ if name.contains(&b'_') => {
                underscored = underscored.saturating_add(1);
                true
            }
            Known::Connection
            | Known::KeepAlive
            | Known::ProxyConnection
            | Known::Te
            | Known::Trailer
            | Known::XForwardedProto
            | Known::Http2Settings => true,
            Known::Host => absolute.is_some(),
            Known::Upgrade => !upgrade,
            Known::XForwardedFor if forwarded_for_lines == 1 => {
                let start = offset_in(head, h.value);
                forwarded_for = Some((start as u32, end as u32));
                true
            }
            _ => fields.conn.names_len > 0 && fields.conn.lists(head, name),
        };
        if drop {
            let (s, e) = line_range(head, name, end);
            if !drops.push(s, e) {
                return Err(Error::HeadTooLarge);
            }
        }
    }

    let keep_alive = fields.persistent(version);
    Ok(Some(RequestHead {
        head_len,
        line,
        is_head: method == "HEAD",
        idempotent: idempotency_key
            || matches!(
                method,
                "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
            ),
        version,
        framing,
        keep_alive,
        expect_continue,
        upgrade,
        drops,
        forwarded_for,
        authority: absolute
            .as_ref()
            .map(|a| (a.authority.0 as u32, a.authority.1 as u32)),
        root_path: absolute.is_some_and(|a| a.root_path),
        underscored,
    }))
}

/// Reads a request target that is not in origin form: only the absolute
/// form of an `http` or `https` URI is taken, with an authority and no
/// userinfo (RFC 9110 §4.2).
fn absolute_form(head: &[u8], target: &[u8]) -> Result<Absolute, Error> {
    let scheme = target
        .iter()
        .position(|&b| b == b':')
        .map(|colon| &target[..colon])
        .filter(|s| s.eq_ignore_ascii_case(b"http") || s.eq_ignore_ascii_case(b"https"))
        .ok_or(Error::MalformedRequest)?;
    let rest = target[scheme.len()..]
        .strip_prefix(b"://")
        .ok_or(Error::MalformedRequest)?;
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    if !is_authority(authority, false) {
        return Err(Error::BadHost);
    }
    let start = offset_in(head, target);
    let authority_start = offset_in(head, authority);
    let authority_end = authority_start + authority.len();
    Ok(Absolute {
        dropped: (start, authority_end),
        authority: (authority_start, authority_end),
        root_path: rest.get(end) != Some(&b'/'),
    })
}

/// Whether `value` is `uri-host [ ":" port ]` (RFC 9110 §7.2), what a
/// `Host` holds: a bracketed IPv6 address or a reg-name (RFC 3986 §3.2.2,
/// an IPv4 address being one), then digits; no userinfo. An empty one only
/// when `empty_ok` (a `Host` may be empty).
fn is_authority(value: &[u8], empty_ok: bool) -> bool {
    if value.is_empty() {
        return empty_ok;
    }
    let port = match value.strip_prefix(b"[") {
        Some(rest) => {
            let Some(close) = rest.iter().position(|&b| b == b']') else {
                return false;
            };
            let is_v6 = std::str::from_utf8(&rest[..close])
                .is_ok_and(|a| a.parse::<core::net::Ipv6Addr>().is_ok());
            if !is_v6 {
                return false;
            }
            &rest[close + 1..]
        }
        None => {
            let end = value.iter().position(|&b| b == b':').unwrap_or(value.len());
            if !is_reg_name(&value[..end]) {
                return false;
            }
            &value[end..]
        }
    };
    match port {
        [] => true,
        [b':', digits @ ..] => digits.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// `reg-name = *( unreserved / pct-encoded / sub-delims )`.
fn is_reg_name(name: &[u8]) -> bool {
    let mut i = 0;
    while i < name.len() {
        let b = name[i];
        if b == b'%' {
            match name.get(i + 1..i + 3) {
                Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => i += 3,
                _ => return false,
            }
            continue;
        }
        let allowed = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        if !allowed {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether an `Upgrade` value can be offered to a target: a list of
/// `protocol-name ["/" protocol-version]` tokens (RFC 9110 §7.8), none of
/// them HTTP/2 (`h2c`, `h2`, `HTTP/2...`). Anything else is not passed on.
fn is_offerable_upgrade(value: &[u8]) -> bool {
    let token = |t: &[u8]| !t.is_empty() && t.iter().all(|&b| is_tchar(b));
    let mut any = false;
    for element in value.split(|&b| b == b',') {
        let element = element.trim_ascii();
        if element.is_empty() {
            continue;
        }
        any = true;
        let mut parts = element.splitn(2, |&b| b == b'/');
        let name = parts.next().unwrap_or_default();
        let version = parts.next();
        if !token(name) || !version.is_none_or(token) {
            return false;
        }
        let http2 = name.eq_ignore_ascii_case(b"h2c")
            || name.eq_ignore_ascii_case(b"h2")
            || (name.eq_ignore_ascii_case(b"http") && version.is_some_and(|v| v.starts_with(b"2")));
        if http2 {
            return false;
        }
    }
    any
}

/// Which limit a head over `max_head` bytes broke: 414 when the request
/// line alone (after any leading empty lines) is over it, else 431.
#[cold]
fn too_long(buf: &[u8], max_head: usize) -> Error {
    let line = buf.trim_ascii_start();
    match line.iter().take(max_head + 1).position(|&b| b == b'\n') {
        Some(end) if end <= max_head => Error::HeadTooLarge,
        _ => Error::UriTooLong,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The limit the tests parse under.
    const MAX: usize = 16 * 1024;

    fn parse(s: &str) -> Result<Option<RequestHead>, Error> {
        parse_request(s.as_bytes(), MAX)
    }

    fn head(s: &str) -> RequestHead {
        parse(s).expect("valid").expect("complete")
    }

    /// The head as it would be forwarded: without its dropped lines.
    fn forwarded(s: &str) -> String {
        let h = head(s);
        h.drops.kept(h.head_len).map(|(a, b)| &s[a..b]).collect()
    }

    #[test]
    fn simple_get() {
        let h = head("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(h.head_len, 27);
        assert!(!h.is_head);
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.framing, Framing::None);
        assert!(h.keep_alive);
        assert!(h.drops.is_empty());
    }

    #[test]
    fn partial_heads_ask_for_more() {
        let full = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n";
        for at in 0..full.len() {
            assert_eq!(parse(&full[..at]), Ok(None), "cut at {at}");
        }
        assert_eq!(head(full).framing, Framing::Length(3));
    }

    #[test]
    fn request_table() {
        use Error::*;
        type Case = (&'static str, Result<(Framing, bool), Error>);
        let cases: &[Case] = &[
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", Ok((Framing::None, true))),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", Err(BadFraming)),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", Err(BadFraming)),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", Ok((Framing::Chunked, true))),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED \r\n\r\n", Ok((Framing::Chunked, true))),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Err(UnknownTransferCoding)),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", Err(BadFraming)),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n", Err(BadFraming)),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", Err(BadFraming)),
            ("GET / HTTP/1.1\nHost: a\r\n\r\n", Err(MalformedRequest)),
            ("GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", Err(MalformedRequest)),
            ("GET / HTTP/1.1\nHost: a\n\n", Err(MalformedRequest)),
            ("GET http://a.example/x HTTP/1.1\r\nHost: b\r\n\r\n", Ok((Framing::None, true))),
            ("GET http://user@a.example/x HTTP/1.1\r\nHost: b\r\n\r\n", Err(BadHost)),
            ("GET http:///x HTTP/1.1\r\nHost: b\r\n\r\n", Err(BadHost)),
            ("GET ftp://a/x HTTP/1.1\r\nHost: b\r\n\r\n", Err(MalformedRequest)),
            ("GET x HTTP/1.1\r\nHost: b\r\n\r\n", Err(MalformedRequest)),
            ("GET * HTTP/1.1\r\nHost: b\r\n\r\n", Err(MalformedRequest)),
            ("OPTIONS * HTTP/1.1\r\nHost: b\r\n\r\n", Ok((Framing::None, true))),
            ("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", Err(BadHost)),
            ("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", Err(BadHost)),
            ("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", Ok((Framing::None, true))),
            ("GET / HTTP/1.1\r\nHost: a:\r\n\r\n", Ok((Framing::None, true))),
            ("GET / HTTP/1.1\r\nHost: a%2Fb\r\n\r\n", Ok((Framing::None, true))),
            ("GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", Err(BadHost)),
            ("GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", Err(BadHost)),
            ("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", Err(BadHost)),
            ("GET / HTTP/1.1\r\nHost: [a]\r\n\r\n", Err(BadHost)),
            ("GET / HTTP/1.1\r\nHost: [::1]-:80\r\n\r\n", Err(BadHost)),
            ("GET / HTTP/1.1\r\nHost: a]\r\n\r\n", Err(BadHost)),
            ("GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", Err(BadHost)),
            ("GET http://a:b/ HTTP/1.1\r\nHost: x\r\n\r\n", Err(BadHost)),
            ("GET /\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
            ("GET /a#f HTTP/1.1\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
            ("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", Ok((Framing::None, false))),
            ("GET / HTTP/1.0\r\n\r\n", Ok((Framing::None, false))),
            ("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", Ok((Framing::None, true))),
            ("GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n", Ok((Framing::None, false))),
            ("GET / HTTP/1.1\r\n\r\n", Err(BadHost)),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Err(BadHost)),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", Err(BadFraming)),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", Err(BadFraming)),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", Err(BadFraming)),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", Err(BadFraming)),
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", Err(BadFraming)),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", Err(BadFraming)),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", Err(BadFraming)),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", Err(BadFraming)),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", Err(BadFraming)),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", Err(BadFraming)),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: bogus, chunked\r\n\r\n", Err(UnknownTransferCoding)),
            ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", Err(BadFraming)),
            ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", Err(MalformedRequest)),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n z\r\n\r\n", Err(MalformedRequest)),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: y\0z\r\n\r\n", Err(MalformedRequest)),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: y\rz\r\n\r\n", Err(MalformedRequest)),
            ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
            ("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
            ("\x16\x03\x01\x02\x00\x01\x00\x01", Err(MalformedRequest)),
            ("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n", Err(MethodNotSupported)),
        ];
        for (input, want) in cases {
            let got = parse(input).map(|h| {
                let h = h.expect("complete");
                (h.framing, h.keep_alive)
            });
            assert_eq!(&got, want, "{input:?}");
        }
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut s = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 0..MAX_HEADERS {
            s.push_str(&format!("X-{i}: v\r\n"));
        }
        s.push_str("\r\n");
        assert_eq!(parse(&s), Err(Error::HeadTooLarge));
    }

    #[test]
    fn long_request_line_is_414() {
        let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(MAX));
        assert_eq!(parse(&long), Err(Error::UriTooLong));
        // Also before the line has ended.
        let partial = format!("GET /{}", "a".repeat(MAX + 10));
        assert_eq!(parse(&partial), Err(Error::UriTooLong));
    }

    #[test]
    fn long_head_is_431_complete_or_not() {
        let fields = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n",
            "b".repeat(MAX)
        );
        assert_eq!(parse(&fields), Err(Error::HeadTooLarge));
        assert_eq!(parse(&format!("{fields}\r\n")), Err(Error::HeadTooLarge));
        // Exactly at the bound is fine.
        let base = "GET / HTTP/1.1\r\nHost: a\r\nX: \r\n\r\n".len();
        let exact = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "c".repeat(MAX - base)
        );
        assert_eq!(exact.len(), MAX);
        assert!(parse(&exact).unwrap().is_some());
    }

    #[test]
    fn drops_hop_by_hop_lines_and_fields_named_by_connection() {
        let s = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: 5\r\n\
                 X-Secret: 1\r\nTE: trailers\r\nProxy-Connection: x\r\nUpgrade: h2c\r\nAccept: */*\r\n\r\n";
        assert_eq!(
            forwarded(s),
            "GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n"
        );
    }

    #[test]
    fn drops_fields_with_an_underscore_in_their_name_and_counts_them() {
        let s = "GET / HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 6.6.6.6\r\n\
                 Transfer_Encoding: chunked\r\nX-Ok: 1\r\n\r\n";
        assert_eq!(forwarded(s), "GET / HTTP/1.1\r\nHost: a\r\nX-Ok: 1\r\n\r\n");
        let h = head(s);
        assert_eq!((h.underscored, h.framing), (2, Framing::None));
    }

    #[test]
    fn an_h2c_upgrade_is_not_offered() {
        for upgrade in [
            "h2c",
            "websocket, h2c",
            "H2C",
            "HTTP/2.0",
            "HTTP/ 2",
            "\"h2c\"",
            "a/b/c",
        ] {
            let s = format!(
                "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                 Upgrade: {upgrade}\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"
            );
            let h = head(&s);
            assert!(!h.upgrade, "{upgrade}");
            assert_eq!(
                forwarded(&s),
                "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                "{upgrade}"
            );
        }
        // Unlisted in Connection, HTTP2-Settings is still dropped.
        let s = "GET / HTTP/1.1\r\nHost: a\r\nHTTP2-Settings: AAMA\r\n\r\n";
        assert_eq!(forwarded(s), "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    }

    #[test]
    fn an_absolute_form_target_loses_its_scheme_and_authority_and_the_host_lines() {
        let s = "GET http://internal.example:81/x HTTP/1.1\r\nHost: public\r\nA: b\r\n\r\n";
        let h = head(s);
        let (a, b) = h.authority.unwrap();
        assert_eq!(&s[a as usize..b as usize], "internal.example:81");
        assert!(!h.root_path);
        assert_eq!(forwarded(s), "GET /x HTTP/1.1\r\nA: b\r\n\r\n");
        let h = head("GET http://a?q=1 HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(h.root_path);
    }

    #[test]
    fn idempotent_methods_and_the_idempotency_key() {
        for m in ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"] {
            assert!(
                head(&format!("{m} / HTTP/1.1\r\nHost: a\r\n\r\n")).idempotent,
                "{m}"
            );
        }
        for m in ["POST", "PATCH", "LOCK", "FOO"] {
            assert!(
                !head(&format!("{m} / HTTP/1.1\r\nHost: a\r\n\r\n")).idempotent,
                "{m}"
            );
        }
        assert!(head("POST / HTTP/1.1\r\nHost: a\r\nIdempotency-Key: k\r\n\r\n").idempotent);
    }

    #[test]
    fn drops_leading_empty_lines() {
        let s = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(forwarded(s), "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    }

    #[test]
    fn one_forwarded_for_line_is_taken_out_with_its_value() {
        let s = "GET / HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2 \r\nHost: a\r\n\r\n";
        let h = head(s);
        let (a, b) = h.forwarded_for.unwrap();
        assert_eq!(&s[a as usize..b as usize], "10.0.0.1, 10.0.0.2");
        assert_eq!(forwarded(s), "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        // Several lines are kept as they are: a new line appends to the list.
        let s = "GET / HTTP/1.1\r\nX-Forwarded-For: 1\r\nX-Forwarded-For: 2\r\nHost: a\r\n\r\n";
        assert_eq!(head(s).forwarded_for, None);
        assert_eq!(forwarded(s), s);
    }

    #[test]
    fn expect_continue_is_forwarded_and_noted_when_the_client_waits() {
        let s = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        let h = head(s);
        assert!(h.expect_continue);
        assert_eq!(forwarded(s), s);
        let no_body = "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n";
        assert!(!head(no_body).expect_continue);
        // The body came along anyway: nobody waits.
        let eager = format!("{s}abc");
        assert!(!parse(&eager).unwrap().unwrap().expect_continue);
    }

    #[test]
    fn upgrade_is_kept_only_with_connection_upgrade() {
        let s = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
        let h = head(s);
        assert!(h.upgrade);
        assert_eq!(
            forwarded(s),
            "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"
        );
        let stray = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";
        assert!(!head(stray).upgrade);
        assert_eq!(forwarded(stray), "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    }

    #[test]
    fn drops_trailer_and_the_clients_forwarded_proto() {
        let s = "GET / HTTP/1.1\r\nHost: a\r\nTrailer: X-Sum\r\nX-Forwarded-Proto: https\r\n\r\n";
        assert_eq!(forwarded(s), "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    }

    #[test]
    fn notes_where_the_request_line_is() {
        let s = "\r\nGET /a?b HTTP/1.1\r\nHost: a\r\n\r\n";
        let (a, b) = head(s).line;
        assert_eq!(&s[a as usize..b as usize], "GET /a?b HTTP/1.1");
    }

    #[test]
    fn head_method_is_noted() {
        assert!(head("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").is_head);
    }
}
