//! End to end: the chunked request bodies the scanner refuses (RFC 9112
//! section 7.1 to the letter: no whitespace that leads nowhere, extensions
//! that are tokens or quoted strings, trailers that are field lines) are
//! answered 400 and never reach the target, and a valid body using every
//! part of the grammar reaches it byte for byte.
//!
//! Each refused body is followed on the connection by `GET /smuggled`: a
//! proxy that accepted the body would forward that as a request of its own,
//! which is how a parser that reads the body differently gets smuggled to.

mod support;
use support::*;

/// The head every body here is sent with.
const HEAD: &[u8] = b"POST /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";

/// The request smuggled after (or inside) each refused body.
const SMUGGLED: &[u8] = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";

/// Sends `body` after a chunked head, then [`SMUGGLED`]: the client gets a
/// 400 and is closed, and the target never sees the smuggled request, on
/// its own or inside a body.
fn assert_refused(body: &[u8]) {
    let backend = Backend::start("a");
    backend.set_mode(Mode::Echo);
    let lb = start_balancer(&[&backend], &[]);
    let mut c = Client::connect(lb.addr());
    c.send(&[HEAD, body, SMUGGLED].concat());
    let r = c.read_response();
    assert_eq!(
        r.status,
        400,
        "{} to body {}",
        r.body_str(),
        body.escape_ascii()
    );
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(c.is_closed(WAIT), "connection left open after the 400");

    // Whatever was forwarded on that connection was forwarded before this.
    let after = Client::connect(lb.addr()).request("GET", "/after", &[], b"");
    assert_eq!(after.status, 200);
    for seen in backend.requests_log() {
        assert_ne!(seen.path, "/smuggled", "the smuggled request got through");
        let raw = String::from_utf8_lossy(&seen.raw_body);
        assert!(
            !raw.contains("/smuggled"),
            "{} carried the smuggled request in its body: {raw:?}",
            seen.path
        );
    }
}

#[test]
fn a_request_smuggled_in_the_trailers_is_400() {
    assert_refused(b"0\r\nGET /smuggled HTTP/1.1\r\n Host: x\r\n\r\n");
}

#[test]
fn whitespace_after_a_chunk_size_without_an_extension_is_400() {
    assert_refused(b"5 \r\nhello\r\n0\r\n\r\n");
}

#[test]
fn nul_in_a_chunk_extension_is_400() {
    assert_refused(b"5;a=\0\r\nhello\r\n0\r\n\r\n");
}

#[test]
fn an_unbalanced_quote_in_a_chunk_extension_is_400() {
    assert_refused(b"5;a=\"x\r\nhello\r\n0\r\n\r\n");
}

#[test]
fn an_obs_folded_trailer_is_400() {
    assert_refused(b"5\r\nhello\r\n0\r\nX-Sum: 1\r\n 2\r\n\r\n");
}

#[test]
fn whitespace_before_a_trailer_colon_is_400() {
    assert_refused(b"5\r\nhello\r\n0\r\nX-Sum :1\r\n\r\n");
}

#[test]
fn a_body_with_extensions_and_trailers_is_forwarded_byte_for_byte() {
    let backend = Backend::start("a");
    backend.set_mode(Mode::Echo);
    let lb = start_balancer(&[&backend], &[]);
    let chunks: &[u8] = b"5 ;a=b;c = \"x\\\"y;z\"\r\nhello\r\n\
        6\t; n\t=\tv ;flag\r\n world\r\n\
        0;last\r\nX-Sum: 42\r\nX-Empty:\r\nX-Text:\tmore \"text\" \x80\t\r\n\r\n";
    let mut c = Client::connect(lb.addr());
    let r = c.request("POST", "/body", &[("Transfer-Encoding", "chunked")], chunks);
    assert_eq!((r.status, r.body_str().as_str()), (200, "hello world"));
    let seen = backend.last_request().expect("forwarded");
    assert_eq!(seen.path, "/body");
    assert_eq!(
        seen.raw_body.escape_ascii().to_string(),
        chunks.escape_ascii().to_string(),
        "the chunked body changed on the way"
    );
    // The connection is still good for the next request.
    let next = c.request("GET", "/next", &[], b"");
    assert_eq!(next.status, 200);
}
