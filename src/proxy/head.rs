//! Heads as forwarded: the bytes that arrived, minus dropped lines, plus the
//! lines a proxy adds, gathered as slices of the one buffer (no copy).

use std::net::IpAddr;

use bytes::Bytes;

use crate::http::{Drops, RequestHead, Version};
use crate::stream::Gather;

const FORWARDED_FOR: &[u8] = b"X-Forwarded-For: ";
const CONNECTION_CLOSE: &[u8] = b"Connection: close\r\n";
const CONNECTION_KEEP_ALIVE: &[u8] = b"Connection: keep-alive\r\n";

/// The `X-Forwarded-For` material for one client connection, made once
/// when it is accepted.
pub struct ForwardedFor {
    /// `X-Forwarded-For: <ip>\r\n`, for a request that has none.
    line: Bytes,
    /// `, <ip>\r\n`, appended to the value of a request's own line.
    suffix: Bytes,
}

impl ForwardedFor {
    pub fn new(client: IpAddr) -> ForwardedFor {
        let client = match client {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        ForwardedFor {
            line: Bytes::from(format!("X-Forwarded-For: {client}\r\n")),
            suffix: Bytes::from(format!(", {client}\r\n")),
        }
    }
}

/// Length of the line ending that closes a head: CRLF, or a bare LF.
fn final_eol(head: &[u8]) -> usize {
    if head.ends_with(b"\r\n") {
        2
    } else {
        1
    }
}

/// Pushes the kept parts of `head` (up to its final empty line), then
/// `inserts` produced by the caller, then the final empty line.
fn push_edited<const N: usize>(out: &mut Gather, head: &Bytes, drops: &Drops, inserts: [Bytes; N]) {
    let body_start = head.len() - final_eol(head);
    if drops.is_empty() && N == 0 {
        out.push(head.clone());
        return;
    }
    for (a, b) in drops.kept(body_start) {
        out.push(head.slice(a..b.min(body_start)));
    }
    for part in inserts {
        out.push(part);
    }
    out.push(head.slice(body_start..));
}

/// Pushes a request head as forwarded: hop-by-hop lines dropped and the
/// client's address appended to `X-Forwarded-For`.
pub fn push_request_head(out: &mut Gather, head: &Bytes, req: &RequestHead, xff: &ForwardedFor) {
    match req.forwarded_for {
        None => push_edited(out, head, &req.drops, [xff.line.clone()]),
        Some((a, b)) => push_edited(
            out,
            head,
            &req.drops,
            [
                Bytes::from_static(FORWARDED_FOR),
                head.slice(a as usize..b as usize),
                xff.suffix.clone(),
            ],
        ),
    }
}

/// Pushes a response head as forwarded: hop-by-hop lines dropped, and the
/// `Connection` line this hop needs: `close` when the client connection
/// ends after this response, `keep-alive` for an HTTP/1.0 client that keeps it.
pub fn push_response_head(
    out: &mut Gather,
    head: &Bytes,
    drops: &Drops,
    keep_alive: bool,
    client_version: Version,
) {
    if !keep_alive {
        push_edited(out, head, drops, [Bytes::from_static(CONNECTION_CLOSE)]);
    } else if client_version == Version::Http10 {
        push_edited(
            out,
            head,
            drops,
            [Bytes::from_static(CONNECTION_KEEP_ALIVE)],
        );
    } else {
        push_edited(out, head, drops, []);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_request, parse_response};

    fn gathered(out: &Gather) -> String {
        String::from_utf8(out.parts().iter().flat_map(|p| p.to_vec()).collect()).unwrap()
    }

    fn forward_request(raw: &str, ip: &str) -> String {
        let head = parse_request(raw.as_bytes()).unwrap().unwrap();
        let bytes = Bytes::copy_from_slice(&raw.as_bytes()[..head.head_len]);
        let mut out = Gather::default();
        push_request_head(
            &mut out,
            &bytes,
            &head,
            &ForwardedFor::new(ip.parse().unwrap()),
        );
        gathered(&out)
    }

    #[test]
    fn adds_forwarded_for() {
        assert_eq!(
            forward_request("GET / HTTP/1.1\r\nHost: a\r\n\r\n", "10.1.2.3"),
            "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n"
        );
    }

    #[test]
    fn appends_to_an_existing_forwarded_for() {
        assert_eq!(
            forward_request(
                "GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
                "10.1.2.3"
            ),
            "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1, 10.1.2.3\r\n\r\n"
        );
    }

    #[test]
    fn ipv4_mapped_clients_are_written_as_ipv4() {
        assert_eq!(
            forward_request("GET / HTTP/1.1\r\nHost: a\r\n\r\n", "::ffff:10.0.0.1"),
            "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"
        );
    }

    #[test]
    fn bare_lf_heads_keep_their_ending() {
        assert_eq!(
            forward_request("GET / HTTP/1.1\nHost: a\nTE: x\n\n", "10.1.2.3"),
            "GET / HTTP/1.1\nHost: a\nX-Forwarded-For: 10.1.2.3\r\n\n"
        );
    }

    fn forward_response(raw: &str, keep_alive: bool, version: Version) -> String {
        let head = parse_response(raw.as_bytes(), false).unwrap().unwrap();
        let bytes = Bytes::copy_from_slice(raw.as_bytes());
        let mut out = Gather::default();
        push_response_head(&mut out, &bytes, &head.drops, keep_alive, version);
        gathered(&out)
    }

    #[test]
    fn response_heads_say_how_the_client_connection_goes_on() {
        let raw = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            forward_response(raw, true, Version::Http11),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(
            forward_response(raw, false, Version::Http11),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(
            forward_response(raw, true, Version::Http10),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
        );
        let plain = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(forward_response(plain, true, Version::Http11), plain);
    }
}
