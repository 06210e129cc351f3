//! Properties of the sans-IO HTTP/1.1 parser in `load_balancer::http`,
//! checked with proptest: no input makes it panic or point outside the
//! buffer, a valid head ends at the same byte whatever follows it, and the
//! chunked scanner finds the same end however its input is cut into pieces.
//! And whatever request the balancer takes, hostile ones included, reaches
//! the target as a message a strict RFC 9112 parser (`tests/strict/mod.rs`,
//! independent of `src/`) reads with the same boundaries.
//!
//! Failures are not persisted to files: a failing case prints its minimal
//! input, which belongs in a row of `tests/http_rules.rs`.

mod strict;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::string::string_regex;
use proptest::test_runner::{TestCaseError, TestRunner};

use load_balancer::http::{
    parse_request, parse_response, BodyProgress, ChunkedError, ChunkedScanner, Framing,
    RequestHead, Version,
};
use load_balancer::proxy::{push_request_head, ForwardedFor};
use load_balancer::stream::Gather;

/// The head bound for generated valid requests: far above their size.
const MAX_HEAD: usize = 64 * 1024;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

/// Pieces of HTTP heads, valid and not, that random concatenations of reach
/// deeper into the parser than uniformly random bytes do.
const HEAD_PIECES: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\n",
    b"POST /x HTTP/1.0\r\n",
    b"HEAD * HTTP/1.1\r\n",
    b"CONNECT a:1 HTTP/1.1\r\n",
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.0 101 Switching\r\n",
    b"HTTP/1.1 204 \r\n",
    b"HTTP/1.1 304 x\r\n",
    b"Host: a\r\n",
    b"Content-Length: ",
    b"Transfer-Encoding: ",
    b"Connection: ",
    b"Upgrade: websocket\r\n",
    b"Keep-Alive: 5\r\n",
    b"Proxy-Connection: x\r\n",
    b"TE: trailers\r\n",
    b"Trailer: X\r\n",
    b"X-Forwarded-For: 1.2.3.4\r\n",
    b"X-Forwarded-Proto: https\r\n",
    b"Expect: 100-continue\r\n",
    b"X-A: ",
    b"x-a",
    b"chunked",
    b"gzip",
    b"close",
    b"keep-alive",
    b"upgrade",
    b"content-length",
    b"host",
    b"5",
    b"0",
    b"18446744073709551616",
    b",",
    b":",
    b";",
    b" ",
    b"\t",
    b"\r\n",
    b"\r\n\r\n",
    b"\r",
    b"\n",
    b"\0",
    b"\x7f",
    b"\xff",
];

/// Field lines a proxy treats specially: framing, hop-by-hop, Host and the
/// lines it rewrites. Mixed into heads so that the drop logic runs.
const SPECIAL_LINES: &[&[u8]] = &[
    b"Host: a\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 5, 5\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip\r\n",
    b"Connection: close, X-Hop\r\n",
    b"Connection: keep-alive\r\n",
    b"Connection: Upgrade\r\n",
    b"Connection: content-length, host\r\n",
    b"Keep-Alive: timeout=5\r\n",
    b"Proxy-Connection: keep-alive\r\n",
    b"TE: trailers\r\n",
    b"Trailer: X-Sum\r\n",
    b"Upgrade: websocket\r\n",
    b"X-Hop: 1\r\n",
    b"X-Forwarded-For: 10.0.0.1\r\n",
    b"X-Forwarded-Proto: https\r\n",
    b"Expect: 100-continue\r\n",
    b"Empty:\r\n",
    b"Keep-Alive:\n",
];

/// Request lines, most with the one Host an HTTP/1.1 request needs.
const REQUEST_LINES: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: a\r\n",
    b"POST /x?y=1 HTTP/1.0\r\n",
    b"HEAD /h HTTP/1.1\r\nHost: a\r\n",
    b"\r\n\nOPTIONS * HTTP/1.1\r\nHost: a\r\n",
    b"GET / HTTP/1.1\nHost: a\n",
    b"GET / HTTP/1.1\r\n",
];

const STATUS_LINES: &[&[u8]] = &[
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.0 200 OK\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\n",
    b"HTTP/1.1 100 Continue\r\n",
    b"HTTP/1.1 204 No Content\r\n",
    b"HTTP/1.1 304 Not Modified\r\n",
    b"HTTP/1.1 500 \r\n",
];

/// A head from one of `start_lines`, with random plain and special field
/// lines in random order, then random bytes after it.
fn head_with_special_lines(
    start_lines: &'static [&'static [u8]],
) -> impl Strategy<Value = Vec<u8>> {
    let lines = (
        vec(plain_field_line(), 0..=12),
        vec(prop::sample::select(SPECIAL_LINES), 0..10),
    )
        .prop_flat_map(|(plain, special)| {
            let mut all = plain;
            all.extend(special.iter().map(|l| l.to_vec()));
            Just(all).prop_shuffle()
        });
    (
        prop::sample::select(start_lines),
        lines,
        vec(any::<u8>(), 0..32),
    )
        .prop_map(|(start, lines, after)| [start, &lines.concat(), b"\r\n", &after].concat())
}

/// Bytes an edit inserts or writes: mostly the ones that matter to the
/// grammar.
fn edit_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => prop::sample::select(b"\r\n \t:;,0aF\0\x7f\xff\"=".to_vec()),
        1 => any::<u8>(),
    ]
}

/// `base` with a few random edits: a byte replaced, inserted or removed, or
/// the input cut short.
fn mutated(base: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let edit = (any::<prop::sample::Index>(), 0u8..4, edit_byte());
    (base, vec(edit, 0..4)).prop_map(|(mut bytes, edits)| {
        for (at, op, byte) in edits {
            let at = at.index(bytes.len() + 1);
            match op {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                2 if at < bytes.len() => {
                    bytes.remove(at);
                }
                3 => bytes.truncate(at),
                _ => {}
            }
        }
        bytes
    })
}

/// Random bytes, a random concatenation of head pieces, or an edited head
/// that starts with one of `start_lines`.
fn head_soup(start_lines: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => vec(any::<u8>(), 0..4096),
        1 => vec(prop::sample::select(HEAD_PIECES), 0..64).prop_map(|p| p.concat()),
        4 => mutated(head_with_special_lines(start_lines)),
    ]
}

/// Pieces of chunked bodies, valid and not.
const CHUNK_PIECES: &[&[u8]] = &[
    b"0",
    b"1",
    b"5",
    b"a",
    b"F",
    b"ffffffffffffffff",
    b"10000000000000000",
    b"\r\n",
    b"\r",
    b"\n",
    b";",
    b";a=b",
    b" ",
    b"\t",
    b"hello",
    b"X: y",
    b"\0",
    b"\xff",
    b"g",
    b"=",
    b"\"",
    b"\\",
    b":",
    b" ;a = \"b\\\"c\"",
    b"X :y",
    b" X: y",
];

/// Random bytes, a random concatenation of chunked-body pieces, or an
/// edited valid body with random bytes after it.
fn chunked_soup() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => vec(any::<u8>(), 0..2048),
        1 => vec(prop::sample::select(CHUNK_PIECES), 0..64).prop_map(|p| p.concat()),
        4 => mutated(
            (valid_chunked_body(), vec(any::<u8>(), 0..32)).prop_map(|(b, a)| [b, a].concat())
        ),
    ]
}

/// Ascending cut positions into a buffer of `len` bytes (any may repeat).
fn cuts_into(len: usize, max_cuts: usize) -> impl Strategy<Value = Vec<usize>> {
    vec(0..=len, 0..=max_cuts).prop_map(|mut c| {
        c.sort_unstable();
        c
    })
}

/// tchar: the characters of a method or a field name.
const TCHARS: &str = "[A-Za-z0-9!#$%&'*+.^_`|~-]";

/// A field value: visible ASCII, spaces, tabs and obs-text, without leading
/// or trailing whitespace (which the parser would trim).
fn field_value() -> impl Strategy<Value = Vec<u8>> {
    let inner = prop_oneof![
        8 => 0x21u8..=0x7e,
        2 => Just(b' '),
        1 => Just(b'\t'),
        1 => 0x80u8..=0xff,
    ];
    let visible = prop_oneof![0x21u8..=0x7e, 0x80u8..=0xff];
    prop_oneof![
        1 => Just(Vec::new()),
        8 => (visible.clone(), vec(inner, 0..30), visible).prop_map(|(a, mid, z)| {
            let mut v = vec![a];
            v.extend(mid);
            v.push(z);
            v
        }),
    ]
}

/// tchar without `_`: a field name with an `_` is dropped, not forwarded.
const NAME_CHARS: &str = "[A-Za-z0-9!#$%&'*+.^`|~-]";

/// A field line the proxy forwards as it is: an `X-` name, a colon with or
/// without whitespace, a value.
fn plain_field_line() -> impl Strategy<Value = Vec<u8>> {
    let name = string_regex(&format!("X-{NAME_CHARS}{{1,16}}")).expect("regex");
    let separator = prop::sample::select(vec![":", ": ", ":\t", ":  "]);
    (name, separator, field_value())
        .prop_map(|(name, sep, value)| [name.as_bytes(), sep.as_bytes(), &value, b"\r\n"].concat())
}

#[derive(Debug, Clone)]
enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

/// A valid request head, with what parsing it must find.
#[derive(Debug, Clone)]
struct ValidRequest {
    bytes: Vec<u8>,
    version: Version,
    framing: Framing,
}

fn valid_request() -> impl Strategy<Value = ValidRequest> {
    let method = string_regex(&format!("{TCHARS}{{1,12}}"))
        .expect("regex")
        .prop_filter("CONNECT is refused", |m| m != "CONNECT");
    // Visible ASCII but `#`: a fragment has no place in a request target.
    let path = "/[!-\"$-~]{0,40}";
    let fields = vec(plain_field_line(), 0..=20);
    let framing = prop_oneof![
        Just(BodyFraming::None),
        prop_oneof![0u64..1000, 0u64..10_000_000_000_000_000_000].prop_map(BodyFraming::Length),
        Just(BodyFraming::Chunked),
    ];
    (
        method,
        path,
        any::<bool>(),
        fields,
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        framing,
    )
        .prop_map(
            |(method, path, http10, mut lines, host_at, framing_at, body)| {
                // HTTP/1.0 may not use chunked: it gets a length instead.
                let body = match body {
                    BodyFraming::Chunked if http10 => BodyFraming::Length(7),
                    other => other,
                };
                let (framing_line, framing) = match body {
                    BodyFraming::None => (None, Framing::None),
                    BodyFraming::Length(0) => {
                        (Some("Content-Length: 0\r\n".to_string()), Framing::None)
                    }
                    BodyFraming::Length(n) => {
                        (Some(format!("Content-Length: {n}\r\n")), Framing::Length(n))
                    }
                    BodyFraming::Chunked => (
                        Some("Transfer-Encoding: chunked\r\n".to_string()),
                        Framing::Chunked,
                    ),
                };
                if let Some(line) = framing_line {
                    let at = framing_at.index(lines.len() + 1);
                    lines.insert(at, line.into_bytes());
                }
                // HTTP/1.1 needs its one Host; HTTP/1.0 has one half the time.
                if !http10 || host_at.index(2) == 0 {
                    let at = host_at.index(lines.len() + 1);
                    lines.insert(at, b"Host: example.test\r\n".to_vec());
                }
                let version = if http10 {
                    Version::Http10
                } else {
                    Version::Http11
                };
                let request_line =
                    format!("{method} {path} HTTP/1.{}\r\n", if http10 { 0 } else { 1 });
                let bytes = [request_line.as_bytes(), &lines.concat(), b"\r\n"].concat();
                ValidRequest {
                    bytes,
                    version,
                    framing,
                }
            },
        )
}

/// A valid chunked body: zero to five data chunks (sizes in either case of
/// hex, some with leading zeros, some with extensions, whitespace around
/// their `;` and `=`), the last chunk, and zero to three trailer fields
/// (values with whitespace around them, some empty, some with obs-text).
fn valid_chunked_body() -> impl Strategy<Value = Vec<u8>> {
    let hex_size = |n: usize| {
        (0usize..3, any::<bool>()).prop_map(move |(zeros, upper)| {
            let digits = if upper {
                format!("{n:X}")
            } else {
                format!("{n:x}")
            };
            format!("{}{digits}", "0".repeat(zeros))
        })
    };
    // TCHARS, written out: a `&str` strategy can be cloned, a compiled one not.
    let token = "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,8}";
    let quoted = "\"([ !#-\\[\\]-~\t]|\\\\[ -~])*\"";
    // BWS: whitespace may go around `;` and `=`, never before CRLF.
    let whitespace = prop::sample::select(vec!["", "", " ", "\t", " \t"]);
    let ext_value = prop_oneof![
        Just(String::new()),
        (whitespace.clone(), whitespace.clone(), token)
            .prop_map(|(before, after, t)| format!("{before}={after}{t}")),
        (whitespace.clone(), whitespace.clone(), quoted)
            .prop_map(|(before, after, q)| format!("{before}={after}{q}")),
    ];
    let extension = (whitespace.clone(), whitespace.clone(), token, ext_value)
        .prop_map(|(before, after, name, value)| format!("{before};{after}{name}{value}"));
    let extensions = vec(extension, 0..3).prop_map(|e| e.concat());
    let chunk = vec(any::<u8>(), 1..300).prop_flat_map(move |data| {
        (hex_size(data.len()), extensions.clone()).prop_map(move |(size, ext)| {
            [size.as_bytes(), ext.as_bytes(), b"\r\n", &data, b"\r\n"].concat()
        })
    });
    let last_ext =
        vec(("[A-Za-z0-9-]{1,8}").prop_map(|n| format!(";{n}")), 0..2).prop_map(|e| e.concat());
    // A value starts and ends with a visible byte (or obs-text, here as
    // the UTF-8 of U+0080..U+00FF); OWS goes around it.
    let value = "([!-~\u{80}-\u{ff}]([ \t!-~\u{80}-\u{ff}]{0,20}[!-~\u{80}-\u{ff}])?)?";
    let trailer = (token, whitespace.clone(), value, whitespace)
        .prop_map(|(n, before, v, after)| format!("{n}:{before}{v}{after}\r\n"));
    (vec(chunk, 0..6), hex_size(0), last_ext, vec(trailer, 0..4)).prop_map(
        |(chunks, zero, ext, trailers)| {
            [
                chunks.concat(),
                format!("{zero}{ext}\r\n{}\r\n", trailers.concat()).into_bytes(),
            ]
            .concat()
        },
    )
}

/// Request targets in every form: origin, absolute (which the balancer
/// rewrites to origin form), asterisk, authority, and broken ones.
const TARGETS: &[&[u8]] = &[
    b"/",
    b"/x?y=1",
    b"/a/b;c?d=e",
    b"/a#f",
    b"*",
    b"http://host/x",
    b"HTTPS://host:81?q",
    b"http://host",
    b"http://host#f",
    b"http://[::1]:8080/p",
    b"http://user@host/",
    b"http://host:b:c/",
    b"http://ho%2/",
    b"http:/host/",
    b"ftp://host/",
    b"host:80",
    b"//host/x",
    b"/caf\xc3\xa9",
    b"x",
];

/// Field lines a proxy must get right, as the security review named them
/// (framing lists and repeats, `_` in names, h2c upgrades, `Host` variants,
/// `Connection` listing fields), with lines it rewrites and broken lines;
/// an upgrade comes whole as well, its lines together. Each entry gets its
/// line ending when a request is made.
const REQUEST_FIELD_LINES: &[&[u8]] = &[
    b"Content-Length: 5, 5",
    b"Content-Length: 5",
    b"Content-Length: 0",
    b"Content-Length: +5",
    b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: chunked,",
    b"Transfer-Encoding: , chunked",
    b"Transfer-Encoding: gzip",
    b"Transfer-Encoding: gzip, chunked",
    b"Transfer-Encoding: CHUNKED ",
    b"X_Forwarded_For: 6.6.6.6",
    b"Transfer_Encoding: chunked",
    b"Content_Length: 5",
    b"Upgrade: h2c",
    b"Connection: Upgrade, HTTP2-Settings",
    b"HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA",
    b"Upgrade: websocket",
    b"Upgrade: websocket, HTTP/2.0",
    b"Connection: Upgrade",
    b"Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA",
    b"Connection: upgrade\r\nUpgrade: websocket",
    b"Connection: upgrade\r\nUpgrade: HTTP/ 2",
    b"Host: example.test",
    b"Host: example.test:8080",
    b"Host: [::1]:80",
    b"Host: 10.0.0.1",
    b"Host:",
    b"Host: a:b",
    b"Host: a:1:2",
    b"Host: u@a",
    b"Host: a b",
    b"Host: a%zz",
    b"Host: [::1",
    b"Connection: close, X-Hop",
    b"X-Hop: 1",
    b"Connection: keep-alive",
    b"Connection: content-length",
    b"Connection: Transfer-Encoding",
    b"Connection: host",
    b"Keep-Alive: timeout=5",
    b"Proxy-Connection: keep-alive",
    b"TE: trailers",
    b"Trailer: X-Sum",
    b"X-Forwarded-For: 10.0.0.1",
    b"X-Forwarded-Proto: https",
    b"Expect: 100-continue",
    b" folded",
    b"X-Ws : 1",
    b"X-Del: a\x7fb",
    b"X-No-Colon",
];

/// Chunked bodies a strict reader refuses: whitespace after a size, NUL,
/// DEL or an unbalanced quote in an extension, trailer lines without a
/// colon or starting with whitespace (a request smuggled in the trailers),
/// bare line feeds, sizes that are not hex or overflow.
const HOSTILE_CHUNKED: &[&[u8]] = &[
    b"5 \r\nhello\r\n0\r\n\r\n",
    b"5\t\r\nhello\r\n0\r\n\r\n",
    b"5;a=\0\r\nhello\r\n0\r\n\r\n",
    b"5;a\x7f\r\nhello\r\n0\r\n\r\n",
    b"5;a=\"b\r\nhello\r\n0\r\n\r\n",
    b"5;a=\"b\\\"\r\nhello\r\n0\r\n\r\n",
    b"5;\r\nhello\r\n0\r\n\r\n",
    b"5;a=\r\nhello\r\n0\r\n\r\n",
    b"5;a=b \r\nhello\r\n0\r\n\r\n",
    b"0\r\nX-No-Colon\r\n\r\n",
    b"0\r\n X: y\r\n\r\n",
    b"0\r\nGET /smuggled HTTP/1.1\r\n Host: x\r\n\r\n",
    b"0\r\nX : y\r\n\r\n",
    b"0\r\nX: a\rb\r\n\r\n",
    b"0\r\nX: 1\r\n 2\r\n\r\n",
    b"5\nhello\n0\n\n",
    b"5\r\nhello\n0\r\n\r\n",
    b"5\r\nhelloXX\r\n0\r\n\r\n",
    b"0x5\r\nhello\r\n0\r\n\r\n",
    b"-5\r\nhello\r\n0\r\n\r\n",
    b"10000000000000000\r\nhello\r\n0\r\n\r\n",
    b"0\r\n\n",
    b"0\r\n\r\r\n",
];

/// A request body and the framing line that announces it.
#[derive(Debug, Clone)]
enum Body {
    None,
    Length(Vec<u8>),
    Chunked(Vec<u8>),
}

fn body() -> impl Strategy<Value = Body> {
    let chunked = prop_oneof![
        3 => valid_chunked_body(),
        2 => prop::sample::select(HOSTILE_CHUNKED).prop_map(<[u8]>::to_vec),
        1 => mutated(valid_chunked_body()),
    ];
    prop_oneof![
        1 => Just(Body::None),
        2 => vec(any::<u8>(), 0..64).prop_map(Body::Length),
        3 => chunked.prop_map(Body::Chunked),
    ]
}

/// A line ending: mostly CRLF, now and then a bare LF.
fn line_end() -> impl Strategy<Value = &'static [u8]> {
    prop_oneof![40 => Just(&b"\r\n"[..]), 1 => Just(&b"\n"[..])]
}

/// A request valid or hostile in any of its parts: a request line in
/// origin, absolute or asterisk form (or broken), `Host` most of the time,
/// the framing line of its body, lines from `REQUEST_FIELD_LINES` and
/// plain ones in random order, the body (length-delimited, chunked valid or
/// hostile), then random bytes.
fn hostile_request() -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![
        6 => prop::sample::select(vec![
            "GET", "GET", "POST", "POST", "PUT", "HEAD", "OPTIONS", "DELETE", "PATCH", "CONNECT",
        ])
        .prop_map(String::from),
        1 => string_regex(&format!("{TCHARS}{{1,8}}")).expect("regex"),
    ];
    let target = prop_oneof![
        3 => prop::sample::select(TARGETS).prop_map(<[u8]>::to_vec),
        1 => "/[!-~]{0,20}".prop_map(String::into_bytes),
    ];
    let version = prop::sample::select(vec!["HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]);
    let request_line = (
        prop_oneof![12 => Just(&b""[..]), 1 => Just(&b"\r\n"[..])],
        method,
        target,
        version,
        line_end(),
    )
        .prop_map(|(empty, method, target, version, end)| {
            [
                empty,
                method.as_bytes(),
                b" ",
                &target,
                b" ",
                version.as_bytes(),
                end,
            ]
            .concat()
        });
    let special = (prop::sample::select(REQUEST_FIELD_LINES), line_end())
        .prop_map(|(line, end)| [line, end].concat());
    let host = prop_oneof![6 => Just(true), 1 => Just(false)];
    let lines = (
        vec(special, 0..4),
        vec(plain_field_line(), 0..4),
        host,
        body(),
    )
        .prop_flat_map(|(mut lines, plain, host, body)| {
            let has_host = lines.iter().any(|l| l.starts_with(b"Host:"));
            lines.extend(plain);
            if host && !has_host {
                lines.push(b"Host: example.test\r\n".to_vec());
            }
            let (framing, bytes) = match body {
                Body::None => (None, Vec::new()),
                Body::Length(b) => (Some(format!("Content-Length: {}\r\n", b.len())), b),
                Body::Chunked(b) => (Some("Transfer-Encoding: chunked\r\n".to_string()), b),
            };
            lines.extend(framing.map(String::into_bytes));
            (Just(lines).prop_shuffle(), Just(bytes))
        });
    (request_line, lines, vec(any::<u8>(), 0..32)).prop_map(
        |(request_line, (lines, body), after)| {
            [request_line, lines.concat(), b"\r\n".to_vec(), body, after].concat()
        },
    )
}

/// The client address the balancer writes into `X-Forwarded-For`.
fn client_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        any::<[u16; 8]>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ]
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/// A head's drop ranges and kept ranges lie inside it, in order, without
/// overlap.
fn check_ranges(
    head_len: usize,
    buf_len: usize,
    drops: &[(u32, u32)],
    kept: impl Iterator<Item = (usize, usize)>,
) -> Result<(), TestCaseError> {
    prop_assert!(
        head_len <= buf_len,
        "head_len {head_len} > buffer {buf_len}"
    );
    let mut end = 0;
    for &(a, b) in drops {
        let (a, b) = (a as usize, b as usize);
        prop_assert!(
            end <= a && a <= b && b <= head_len,
            "drop {a}..{b} in a {head_len}-byte head"
        );
        end = b;
    }
    let mut end = 0;
    for (a, b) in kept {
        prop_assert!(
            end <= a && a < b && b <= head_len,
            "kept {a}..{b} in a {head_len}-byte head"
        );
        end = b;
    }
    Ok(())
}

/// Feeds `input` to a new scanner in the pieces that `cuts` (ascending)
/// make; returns where the body ends, `None` if it did not.
fn scan_pieces(input: &[u8], cuts: &[usize]) -> Result<Option<usize>, ChunkedError> {
    let mut scanner = ChunkedScanner::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([input.len()]) {
        let piece = &input[start..end];
        let n = scanner.scan(piece)?;
        if scanner.is_done() {
            return Ok(Some(start + n));
        }
        assert_eq!(n, piece.len(), "bytes kept back from an unfinished body");
        start = end;
    }
    Ok(None)
}

/// What the balancer sends a target for a request it takes whole.
struct Forwarded {
    req: RequestHead,
    /// The forwarded head, the body and the bytes after it.
    bytes: Vec<u8>,
    /// Where the forwarded head ends in `bytes`.
    head_end: usize,
    /// Where the body ends in `bytes`, as the balancer reckons it.
    body_end: usize,
}

/// What the balancer sends a target for `input` (a request from `client`):
/// the head as `push_request_head` gathers it, then the body's bytes as
/// they came, then the bytes after it. `None` when it refuses the head, the
/// body is malformed, or the body is not all there.
fn forward(input: &[u8], client: IpAddr) -> Option<Forwarded> {
    let req = parse_request(input, MAX_HEAD).ok()??;
    let rest = &input[req.head_len..];
    let mut body = BodyProgress::new(req.framing);
    let body_len = body.advance(rest).ok()?;
    if !body.is_done() {
        return None;
    }
    let head = Bytes::copy_from_slice(&input[..req.head_len]);
    let mut out = Gather::default();
    push_request_head(&mut out, &head, &req, &ForwardedFor::new(client, false));
    let head_end = out.len();
    let bytes = [out.parts().concat(), rest.to_vec()].concat();
    Some(Forwarded {
        req,
        bytes,
        head_end,
        body_end: head_end + body_len,
    })
}

/// Whether the balancer took `input` as a whole request; if it did, what
/// it forwards parses under the strict reference with the boundaries and
/// the framing the balancer decided, and its head has no field name with
/// `_`, no h2c upgrade, a target in origin form or `*`, and one `Host` in
/// HTTP/1.1.
fn same_boundaries(input: &[u8], client: IpAddr) -> Result<bool, TestCaseError> {
    let Some(f) = forward(input, client) else {
        return Ok(false);
    };
    let show = || {
        format!(
            "\n  sent by the client: {}\n  forwarded: {}",
            input.escape_ascii(),
            f.bytes.escape_ascii()
        )
    };
    let strict = strict::parse_request(&f.bytes).map_err(|e| {
        TestCaseError::fail(format!(
            "the strict reference refuses what the balancer forwards: {e:?}{}",
            show()
        ))
    })?;
    prop_assert_eq!(strict.head.head_len, f.head_end, "head end{}", show());
    prop_assert_eq!(strict.body_end, f.body_end, "body end{}", show());
    let framing = match strict.head.framing {
        strict::Framing::None | strict::Framing::Length(0) => Framing::None,
        strict::Framing::Length(n) => Framing::Length(n),
        strict::Framing::Chunked => Framing::Chunked,
    };
    prop_assert_eq!(framing, f.req.framing, "framing{}", show());

    // The same rules, read off the forwarded bytes without the reference.
    let head = &f.bytes[..f.head_end];
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.trim_ascii_end());
    let request_line = lines.next().unwrap_or_default();
    let target = request_line
        .split(|&b| b == b' ')
        .nth(1)
        .unwrap_or_default();
    prop_assert!(
        target.starts_with(b"/") || target == b"*",
        "target not in origin form{}",
        show()
    );
    let mut hosts = 0;
    for line in lines.filter(|l| !l.is_empty()) {
        let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
        let (name, value) = (&line[..colon], line.get(colon + 1..).unwrap_or_default());
        prop_assert!(!name.contains(&b'_'), "_ in a field name{}", show());
        if name.eq_ignore_ascii_case(b"upgrade") {
            prop_assert!(!offers_h2c(value), "h2c upgrade{}", show());
        }
        hosts += usize::from(name.eq_ignore_ascii_case(b"host"));
    }
    if f.req.version == Version::Http11 {
        prop_assert_eq!(hosts, 1, "Host lines{}", show());
    }
    Ok(true)
}

/// Whether an `Upgrade` value lists `h2c` (a protocol name, any version).
fn offers_h2c(value: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|p| {
        let name = p.split(|&b| b == b'/').next().unwrap_or_default();
        name.trim_ascii().eq_ignore_ascii_case(b"h2c")
    })
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn parse_request_never_panics_and_its_ranges_stay_in_the_buffer(
        buf in head_soup(REQUEST_LINES),
        max_head in prop_oneof![1 => 0usize..1024, 3 => Just(MAX_HEAD)],
    ) {
        if let Ok(Some(h)) = parse_request(&buf, max_head) {
            prop_assert!(h.head_len <= max_head);
            check_ranges(h.head_len, buf.len(), h.drops.as_slice(), h.drops.kept(h.head_len))?;
            if let Some((a, b)) = h.forwarded_for {
                prop_assert!(a <= b && b as usize <= h.head_len);
            }
        }
    }

    #[test]
    fn parse_response_never_panics_and_its_ranges_stay_in_the_buffer(
        buf in head_soup(STATUS_LINES),
        request_is_head in any::<bool>(),
    ) {
        if let Ok(Some(h)) = parse_response(&buf, request_is_head) {
            check_ranges(h.head_len, buf.len(), h.drops.as_slice(), h.drops.kept(h.head_len))?;
        }
    }

    #[test]
    fn chunked_scanner_never_panics_and_agrees_with_itself_however_fed(
        (input, cuts) in chunked_soup().prop_flat_map(|b| {
            let len = b.len();
            (Just(b), cuts_into(len, 8))
        }),
    ) {
        let whole = scan_pieces(&input, &[]);
        prop_assert_eq!(scan_pieces(&input, &cuts), whole);
        if let Ok(Some(end)) = whole {
            prop_assert!(end <= input.len());
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn a_valid_request_head_ends_at_the_same_byte_whatever_follows_it(
        req in valid_request(),
        after in vec(any::<u8>(), 1..256),
    ) {
        let bytes = &req.bytes;
        let h = parse_request(bytes, MAX_HEAD)
            .map_err(|e| TestCaseError::fail(format!("{e:?} for {}", bytes.escape_ascii())))?
            .ok_or_else(|| TestCaseError::fail("incomplete"))?;
        prop_assert_eq!(h.head_len, bytes.len());
        prop_assert_eq!(h.version, req.version);
        prop_assert_eq!(h.framing, req.framing);
        // Only fields the proxy keeps were generated: all of it is forwarded.
        prop_assert!(h.drops.is_empty(), "dropped {:?}", h.drops.as_slice());

        let followed = [bytes.as_slice(), &after].concat();
        prop_assert_eq!(parse_request(&followed, MAX_HEAD), Ok(Some(h)));

        for at in 0..bytes.len() {
            prop_assert_eq!(parse_request(&bytes[..at], MAX_HEAD), Ok(None), "prefix of {} bytes", at);
        }
    }

    #[test]
    fn a_valid_chunked_body_ends_at_its_last_byte_however_it_is_cut(
        (input, body_len, cuts) in (valid_chunked_body(), vec(any::<u8>(), 0..64))
            .prop_flat_map(|(body, after)| {
                let body_len = body.len();
                let input = [body, after].concat();
                let len = input.len();
                (Just(input), Just(body_len), cuts_into(len, 12))
            }),
    ) {
        prop_assert_eq!(scan_pieces(&input, &[]), Ok(Some(body_len)));
        prop_assert_eq!(scan_pieces(&input, &cuts), Ok(Some(body_len)), "cut at {:?}", cuts);
    }
}

proptest! {
    // Cheap cases, of which about one in four is taken whole and compared.
    #![proptest_config(config(4096))]

    #[test]
    fn every_accepted_request_reaches_the_target_with_the_same_boundaries(
        input in hostile_request(),
        client in client_ip(),
    ) {
        same_boundaries(&input, client)?;
    }
}

/// Requests of each form the balancer takes (absolute form, HTTP/1.0,
/// upgrades, framing, `_` names, Connection-listed fields) go through the
/// same check: the property has something to compare.
#[test]
fn requests_of_each_form_reach_the_target_with_the_same_boundaries() {
    let client = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
    let inputs: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET",
        b"GET http://host/x HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET HTTPS://host:81?q HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET http://host HTTP/1.0\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        b"\r\nPOST /x HTTP/1.0\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabcdef",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX_Forwarded_For: 6\r\n\r\n\
          5;a=\"b\"\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
          HTTP2-Settings: AAMA\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade, X-Hop\r\nX-Hop: 1\r\n\
          Upgrade: websocket\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n",
    ];
    for input in inputs {
        let took = same_boundaries(input, client).unwrap_or_else(|e| panic!("{e}"));
        assert!(took, "refused: {}", input.escape_ascii());
    }
}

/// The hostile generator is not all noise: a good share of what it makes
/// is taken whole by the balancer and so compared with the reference.
#[test]
fn most_hostile_requests_are_compared() {
    let mut runner = TestRunner::deterministic();
    let (strategy, clients) = (hostile_request(), client_ip());
    let cases = 1000;
    let mut taken = 0;
    for _ in 0..cases {
        let input = strategy.new_tree(&mut runner).expect("a value").current();
        let client = clients.new_tree(&mut runner).expect("a value").current();
        taken += usize::from(forward(&input, client).is_some());
    }
    // About one in six here (the rest is refused, as it should be).
    assert!(taken * 10 >= cases, "only {taken} of {cases} taken whole");
}
