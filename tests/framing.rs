//! A request reaches a target in one unambiguous form or not at all, as an
//! attacker would probe it: framing a next hop could read otherwise is
//! refused, fields a gateway could take for others are dropped, and what
//! RFC 9112 lets a proxy rewrite is rewritten. Responses get the same
//! treatment on their way to the client.

mod support;

use support::*;

/// Sends `raw` on a new connection; returns the answer's status.
fn status_of(lb: &Balancer, raw: &[u8]) -> u16 {
    let mut c = Client::connect(lb.addr());
    c.send(raw);
    c.read_response().status
}

/// Each request is answered `want` and nothing reaches the target.
fn refused(rows: &[(&str, &[u8], u16)]) {
    let target = Backend::start("t");
    let lb = start_balancer(&[&target], &[]);
    for (name, raw, want) in rows {
        assert_eq!(status_of(&lb, raw), *want, "{name}");
    }
    assert_eq!(target.requests(), 0, "{:?}", target.requests_log());
}

#[test]
fn a_content_length_list_or_a_second_content_length_is_400() {
    refused(&[
        (
            "a list of equal values",
            b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
            400,
        ),
        (
            "two equal lines",
            b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
            400,
        ),
    ]);
}

#[test]
fn a_transfer_encoding_other_than_one_chunked_line_is_refused() {
    let chunked = b"5\r\nhello\r\n0\r\n\r\n";
    let with = |te: &str| {
        let mut raw = format!("POST /x HTTP/1.1\r\nHost: a\r\n{te}\r\n").into_bytes();
        raw.extend_from_slice(chunked);
        raw
    };
    let trailing = with("Transfer-Encoding: chunked,\r\n");
    let leading = with("Transfer-Encoding: , chunked\r\n");
    let two_lines = with("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n");
    let gzip = with("Transfer-Encoding: gzip, chunked\r\n");
    refused(&[
        ("chunked with an empty element after it", &trailing, 400),
        ("chunked with an empty element before it", &leading, 400),
        ("gzip and chunked on two lines", &two_lines, 400),
        ("gzip, chunked (not forwarded as it is)", &gzip, 501),
    ]);
}

#[test]
fn a_head_with_a_bare_lf_is_400() {
    refused(&[
        ("the request line", b"GET /x HTTP/1.1\nHost: a\r\n\r\n", 400),
        (
            "a field line among CRLF ones",
            b"GET /x HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n",
            400,
        ),
        (
            "every line",
            b"GET /x HTTP/1.1\nHost: a\nContent-Length: 5\n\nhello",
            400,
        ),
    ]);
}

#[test]
fn fields_with_an_underscore_in_their_name_are_dropped_and_counted() {
    let target = Backend::start("t");
    let lb = start_balancer(&[&target], &["--admin", "127.0.0.1:0"]);
    let status = status_of(
        &lb,
        b"GET /x HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 6.6.6.6\r\nX-Real_IP: 6.6.6.6\r\n\r\n",
    );
    assert_eq!(status, 200);
    let got = target.last_request().expect("forwarded");
    assert!(
        got.headers.iter().all(|(name, _)| !name.contains('_')),
        "{:?}",
        got.headers
    );
    assert_eq!(got.header_all("X-Forwarded-For"), vec!["127.0.0.1"]);
    assert_eq!(
        Scrape::take(&lb).get("lb_dropped_underscore_fields_total"),
        2.0
    );
}

#[test]
fn an_h2c_upgrade_is_not_offered_to_the_target() {
    let target = Backend::start("t");
    target.set_mode(Mode::Upgrade);
    let lb = start_balancer(&[&target], &[]);
    let mut c = Client::connect(lb.addr());
    c.send(
        b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
          HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    );
    let r = c.read_response();
    assert_eq!(r.status, 200, "{r:?}");
    let got = target.last_request().expect("forwarded");
    assert_eq!(got.header("Upgrade"), None, "{:?}", got.headers);
    assert_eq!(got.header("HTTP2-Settings"), None, "{:?}", got.headers);
    // The connection stays HTTP/1.1.
    assert_eq!(c.request("GET", "/next", &[], b"").status, 200);
}

#[test]
fn an_absolute_form_request_goes_on_in_origin_form_with_its_authority_as_host() {
    let target = Backend::start("t");
    let lb = start_balancer(&[&target], &[]);
    let status = status_of(
        &lb,
        b"GET http://internal.example/x?y=1 HTTP/1.1\r\nHost: public\r\n\r\n",
    );
    assert_eq!(status, 200);
    let got = target.last_request().expect("forwarded");
    assert_eq!(got.path, "/x?y=1");
    assert_eq!(got.header_all("Host"), vec!["internal.example"]);

    let status = status_of(
        &lb,
        b"GET http://internal.example HTTP/1.1\r\nHost: public\r\n\r\n",
    );
    assert_eq!(status, 200);
    let got = target.last_request().expect("forwarded");
    assert_eq!(got.path, "/");
    assert_eq!(got.header_all("Host"), vec!["internal.example"]);
}

#[test]
fn absolute_form_with_userinfo_or_another_scheme_is_400() {
    refused(&[
        (
            "userinfo",
            b"GET http://user:pw@internal.example/x HTTP/1.1\r\nHost: a\r\n\r\n",
            400,
        ),
        (
            "an ftp URI",
            b"GET ftp://internal.example/x HTTP/1.1\r\nHost: a\r\n\r\n",
            400,
        ),
        (
            "a target in no form at all",
            b"GET x HTTP/1.1\r\nHost: a\r\n\r\n",
            400,
        ),
        (
            "a Host with a path",
            b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
            400,
        ),
    ]);
}

#[test]
fn responses_a_client_could_frame_otherwise_are_502() {
    let target = Backend::start("t");
    let lb = start_balancer(&[&target], &[]);
    for (name, raw) in [
        (
            "a Content-Length list",
            &b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok"[..],
        ),
        (
            "two Content-Length lines",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
        ),
        (
            "Transfer-Encoding on two lines",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "a bare LF",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\n\r\nok",
        ),
    ] {
        target.set_mode(Mode::Raw(raw.to_vec()));
        let r = get(lb.addr(), "/x");
        assert_eq!(r.status, 502, "{name}: {r:?}");
    }
}
