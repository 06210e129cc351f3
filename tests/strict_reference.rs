//! The strict RFC 9112 request parser the forwarding properties check the
//! balancer against (`tests/strict/mod.rs`), checked itself: a table of
//! messages it takes, with where their head and body end, and a table of
//! messages it refuses, one or more rows per rule. A reference that took
//! too much would let a smuggling bug through the properties unseen.

mod strict;

use strict::{parse_request, Framing, Reject, Version};

/// Messages the reference takes: the bytes (the message, then bytes after
/// it that are not its own), the framing, and where the head and the body
/// end.
const VALID: &[(&[u8], Framing, usize, usize)] = &[
    (
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET",
        Framing::None,
        27,
        27,
    ),
    (b"GET /x HTTP/1.0\r\n\r\n\r\n", Framing::None, 19, 19),
    (
        b"HEAD /h HTTP/1.0\r\nHost: a\r\n\r\n",
        Framing::None,
        29,
        29,
    ),
    (
        b"OPTIONS * HTTP/1.1\r\nHost: a.example:8080\r\n\r\n",
        Framing::None,
        44,
        44,
    ),
    (
        b"GET /a?b=c HTTP/1.1\r\nHost: [::1]:80\r\nX-A:\r\nX-B:  v \t w\x80\xff \t\r\n\r\n",
        Framing::None,
        62,
        62,
    ),
    (
        b"GET / HTTP/1.1\r\nHost: 10.0.0.1\r\nHost-Extra: x\r\n\r\n",
        Framing::None,
        49,
        49,
    ),
    (
        b"GET / HTTP/1.1\r\nHost: a%2Db.example\r\n\r\n",
        Framing::None,
        39,
        39,
    ),
    // RFC 3986 allows an empty reg-name and an empty port.
    (b"GET / HTTP/1.1\r\nHost:\r\n\r\n", Framing::None, 25, 25),
    (b"GET / HTTP/1.1\r\nHost: a:\r\n\r\n", Framing::None, 28, 28),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcdef",
        Framing::Length(3),
        47,
        50,
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\nabc",
        Framing::Length(0),
        47,
        47,
    ),
    (
        b"POST / HTTP/1.0\r\nContent-Length: 007\r\n\r\n1234567",
        Framing::Length(7),
        40,
        47,
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX",
        Framing::Chunked,
        56,
        61,
    ),
    (
        b"POST / HTTP/1.1\r\nTransfer-Encoding:  Chunked \r\nHost: a\r\n\r\n0\r\n\r\n",
        Framing::Chunked,
        58,
        63,
    ),
    // Extensions with whitespace around `;` and `=` (BWS), quoted values
    // with escapes, a last chunk of several zeros with an extension, and
    // trailers (one with `_`: a body goes on as it came).
    (
        b"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
          5 ; a = \"b\\\"c;\" ;d\r\nhello\r\nA;e=f\r\n0123456789\r\n\
          000;g\r\nX-T: 1 \r\nX_U:\r\n\r\nGET",
        Framing::Chunked,
        55,
        125,
    ),
    (
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket, ,x/1\r\nConnection: upgrade, x-hop\r\n\r\n",
        Framing::None,
        83,
        83,
    ),
];

/// Messages the reference refuses: what is wrong, the rule the reference
/// names for it, the bytes.
const INVALID: &[(&str, &str, &[u8])] = &[
    // The request line.
    ("empty line first", "method", b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("method not a token", "SP after the method", b"GE(T / HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("two spaces", "request-target", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("tab for space", "SP after the method", b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("space at the end", "CRLF after the request line", b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n"),
    ("HTTP/1.2", "HTTP-version", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n"),
    ("HTTP/2.0", "HTTP-version", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
    ("lower-case version", "HTTP-version", b"GET / http/1.1\r\nHost: a\r\n\r\n"),
    ("HTTP/0.9", "SP after the request-target", b"GET /\r\n\r\n"),
    ("absolute form", "request-target not in origin form (or * for OPTIONS)", b"GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("absolute form, no path", "request-target not in origin form (or * for OPTIONS)", b"GET http://a HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("authority form", "request-target not in origin form (or * for OPTIONS)", b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"),
    ("CONNECT", "request-target not in origin form (or * for OPTIONS)", b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("* but not OPTIONS", "request-target not in origin form (or * for OPTIONS)", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("relative target", "request-target not in origin form (or * for OPTIONS)", b"GET x HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("obs-text in target", "SP after the request-target", b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("DEL in target", "SP after the request-target", b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("bare LF after request line", "CRLF after the request line", b"GET / HTTP/1.1\nHost: a\r\n\r\n"),
    ("bare CR after request line", "CRLF after the request line", b"GET / HTTP/1.1\rHost: a\r\n\r\n"),
    // Field lines.
    ("_ in a name", "field-name with _", b"GET / HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 1\r\n\r\n"),
    ("_ in Transfer_Encoding", "field-name with _", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n\r\n"),
    ("space before colon", "':' after the field-name", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
    ("no colon", "':' after the field-name", b"GET / HTTP/1.1\r\nHost: a\r\nX-A\r\n\r\n"),
    ("empty name", "field-name", b"GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n"),
    ("obs-fold", "field-name", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n"),
    ("obs-fold by tab", "field-name", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\t2\r\n\r\n"),
    ("field line first starts with space", "field-name", b"GET / HTTP/1.1\r\n Host: a\r\n\r\n"),
    ("bare LF after a field", "CRLF after the field-value", b"GET / HTTP/1.1\r\nHost: a\nX-A: 1\r\n\r\n"),
    ("bare LF ending the head", "field-name", b"GET / HTTP/1.1\r\nHost: a\r\n\n"),
    ("LF LF ending the head", "CRLF after the request line", b"GET / HTTP/1.1\nHost: a\n\n"),
    ("bare CR in a value", "CRLF after the field-value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r2\r\n\r\n"),
    ("NUL in a value", "CRLF after the field-value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x002\r\n\r\n"),
    ("DEL in a value", "CRLF after the field-value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: \x7f\r\n\r\n"),
    ("control byte in a value", "CRLF after the field-value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: \x0b\r\n\r\n"),
    // Host.
    ("no Host in HTTP/1.1", "no Host in HTTP/1.1", b"GET / HTTP/1.1\r\n\r\n"),
    ("two Hosts", "a second Host", b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"),
    ("two Hosts in HTTP/1.0", "a second Host", b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"),
    ("userinfo in Host", "Host is not host[:port]", b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"),
    ("space in Host", "Host is not host[:port]", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
    ("two colons in Host", "Host is not host[:port]", b"GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n"),
    ("port not digits", "Host is not host[:port]", b"GET / HTTP/1.1\r\nHost: a:b\r\n\r\n"),
    ("bad percent-escape", "Host is not host[:port]", b"GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n"),
    ("short percent-escape", "Host is not host[:port]", b"GET / HTTP/1.1\r\nHost: a%2\r\n\r\n"),
    ("unclosed IPv6 literal", "Host is not host[:port]", b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"),
    ("bad IPv6 literal", "Host is not host[:port]", b"GET / HTTP/1.1\r\nHost: [a::z]\r\n\r\n"),
    ("bytes after IPv6 literal", "Host is not host[:port]", b"GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n"),
    ("IPvFuture", "Host is not host[:port]", b"GET / HTTP/1.1\r\nHost: [v1.a]\r\n\r\n"),
    ("zone id", "Host is not host[:port]", b"GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n"),
    ("slash in Host", "Host is not host[:port]", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"),
    // Content-Length.
    ("Content-Length list", "Content-Length is not 1*DIGIT", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello"),
    (
        "two Content-Lengths", "a second Content-Length",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    ),
    ("Content-Length sign", "Content-Length is not 1*DIGIT", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello"),
    ("Content-Length empty", "Content-Length is not 1*DIGIT", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n"),
    ("Content-Length hex", "Content-Length is not 1*DIGIT", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello"),
    (
        "Content-Length over 64 bits", "Content-Length over 64 bits",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n",
    ),
    // Transfer-Encoding.
    ("chunked,", "Transfer-Encoding other than chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n"),
    (", chunked", "Transfer-Encoding other than chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n0\r\n\r\n"),
    (
        "gzip, chunked", "Transfer-Encoding other than chunked",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "gzip then chunked", "Transfer-Encoding other than chunked",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "chunked twice", "a second Transfer-Encoding",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    ("gzip", "Transfer-Encoding other than chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"),
    (
        "chunked with a parameter", "Transfer-Encoding other than chunked",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n",
    ),
    (
        "Transfer-Encoding and Content-Length", "Transfer-Encoding with Content-Length",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "Transfer-Encoding in HTTP/1.0", "Transfer-Encoding in HTTP/1.0",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    // HTTP/2 upgrades and Connection.
    (
        "Upgrade: h2c", "Upgrade offers HTTP/2",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n",
    ),
    ("Upgrade: H2C among others", "Upgrade offers HTTP/2", b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket, H2C\r\n\r\n"),
    ("Upgrade: HTTP/2.0", "Upgrade offers HTTP/2", b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: HTTP/2.0\r\n\r\n"),
    ("Upgrade: h2", "Upgrade offers HTTP/2", b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2\r\n\r\n"),
    (
        "whitespace in an Upgrade protocol",
        "Upgrade is not a list of protocols",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: HTTP/ 2\r\n\r\n",
    ),
    (
        "quoted Upgrade protocol",
        "Upgrade is not a list of protocols",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: \"h2c\"\r\n\r\n",
    ),
    ("HTTP2-Settings", "HTTP2-Settings", b"GET / HTTP/1.1\r\nHost: a\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"),
    ("Connection: content-length", "Connection lists a framing field", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: content-length\r\n\r\n"),
    (
        "Connection: close, Transfer-Encoding", "Connection lists a framing field",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, Transfer-Encoding\r\n\r\n",
    ),
    ("Connection: host", "Connection lists a framing field", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Host\r\n\r\n"),
    // Chunked bodies.
    ("whitespace after size", "whitespace not before ';' in a chunk-size line", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n"),
    ("tab after size", "whitespace not before ';' in a chunk-size line", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\t\r\nhello\r\n0\r\n\r\n"),
    ("whitespace after extension", "whitespace not before ';' in a chunk-size line", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b \r\nhello\r\n0\r\n\r\n"),
    ("empty chunk size", "chunk-size", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n"),
    ("0x in chunk size", "CRLF after chunk-size and chunk-ext", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"),
    ("sign in chunk size", "chunk-size", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n"),
    ("chunk size over 64 bits", "chunk-size over 64 bits", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n"),
    ("NUL in extension", "chunk-ext-val", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\0\r\nhello\r\n0\r\n\r\n"),
    ("DEL in extension", "CRLF after chunk-size and chunk-ext", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x7f\r\nhello\r\n0\r\n\r\n"),
    ("unbalanced quote", "qdtext", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"b\r\nhello\r\n0\r\n\r\n"),
    ("escaped CR in quotes", "quoted-pair", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"\\\r\"\r\nhello\r\n0\r\n\r\n"),
    ("empty extension", "chunk-ext-name", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n"),
    ("extension without value", "chunk-ext-val", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\r\nhello\r\n0\r\n\r\n"),
    ("bare LF after size", "CRLF after chunk-size and chunk-ext", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"),
    ("data longer than size", "CRLF after chunk-data", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n"),
    ("bare LF after data", "CRLF after chunk-data", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n"),
    ("trailer without colon", "':' after the field-name", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T\r\n\r\n"),
    ("trailer space before colon", "':' after the field-name", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T : 1\r\n\r\n"),
    (
        "smuggled request in trailers", "':' after the field-name",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
          0\r\nGET /smuggled HTTP/1.1\r\n Host: x\r\n\r\n",
    ),
    ("trailer obs-fold", "field-name", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n 2\r\n\r\n"),
    ("bare CR in trailer", "CRLF after the field-value", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r2\r\n\r\n"),
    ("bare LF ending the body", "field-name", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n"),
];

#[test]
fn valid_messages_end_where_their_bytes_say() {
    for &(bytes, framing, head_len, body_end) in VALID {
        let show = bytes.escape_ascii();
        let r = parse_request(bytes).unwrap_or_else(|e| panic!("{e:?} for {show}"));
        assert_eq!(r.head.framing, framing, "{show}");
        assert_eq!(r.head.head_len, head_len, "{show}");
        assert_eq!(r.body_end, body_end, "{show}");
    }
}

#[test]
fn every_prefix_of_a_valid_message_is_incomplete() {
    for &(bytes, _, _, body_end) in VALID {
        for at in 0..body_end {
            assert_eq!(
                parse_request(&bytes[..at]),
                Err(Reject::Incomplete),
                "{} cut at {at}",
                bytes.escape_ascii()
            );
        }
    }
}

#[test]
fn invalid_messages_are_refused_whatever_follows() {
    for &(case, rule, bytes) in INVALID {
        for after in [
            &b""[..],
            b"\r\n\r\n",
            b"0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            let input = [bytes, after].concat();
            let r = parse_request(&input);
            assert!(
                matches!(r, Err(Reject::Invalid { why, .. }) if why == rule),
                "{case}: {r:?} for {}",
                input.escape_ascii()
            );
        }
    }
}

#[test]
fn fields_are_read_without_the_whitespace_around_their_values() {
    let r = parse_request(b"GET /p HTTP/1.0\r\nX-A: \t1 2\t \r\nX-B:\r\n\r\n").unwrap();
    let h = r.head;
    assert_eq!(
        (h.method, h.target, h.version),
        (&b"GET"[..], &b"/p"[..], Version::Http10)
    );
    let fields: Vec<_> = h.fields.iter().map(|f| (f.name, f.value)).collect();
    assert_eq!(fields, [(&b"X-A"[..], &b"1 2"[..]), (b"X-B", b"")]);
}

#[test]
fn trailers_are_read() {
    let r = parse_request(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Sum: 5\r\n\r\n",
    )
    .unwrap();
    let trailers: Vec<_> = r.trailers.iter().map(|f| (f.name, f.value)).collect();
    assert_eq!(trailers, [(&b"X-Sum"[..], &b"5"[..])]);
}
