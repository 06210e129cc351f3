//! Heads as forwarded: the bytes that arrived, minus dropped lines, plus the
//! lines a proxy adds, gathered as slices of the one buffer (no copy).

use std::net::IpAddr;

use bytes::{Bytes, BytesMut};

use crate::http::{Drops, RequestHead, Version};
use crate::stream::Gather;

const FORWARDED_FOR: &[u8] = b"X-Forwarded-For: ";
const HOST: &[u8] = b"Host: ";
const CONNECTION_CLOSE: &[u8] = b"Connection: close\r\n";
const CONNECTION_KEEP_ALIVE: &[u8] = b"Connection: keep-alive\r\n";
const CONNECTION_UPGRADE: &[u8] = b"Connection: upgrade\r\n";

/// The lines a proxy adds to each request of one client connection:
/// `X-Forwarded-For` with the client's address, and `X-Forwarded-Proto`
/// (`https` when it came over TLS, else `http`). Both forms are slices of
/// one buffer, written when a busy spell starts into a buffer the worker
/// keeps (so that a parked connection holds none, and waking allocates
/// nothing).
pub struct ForwardedFor {
    /// `X-Forwarded-For: <ip>` and `X-Forwarded-Proto`, for a request
    /// without an `X-Forwarded-For` of its own; then `, <ip>` ending the
    /// request's own `X-Forwarded-For` value, and `X-Forwarded-Proto`.
    lines: Bytes,
    /// Where the second form begins.
    split: u16,
    /// The rest of the buffer `lines` was split from, given back with
    /// `into_buffer`: once `lines` is dropped, the next lines are written
    /// in place.
    room: BytesMut,
}

/// Room for both forms with the longest IPv6 address.
const FORWARDED_ROOM: usize = 192;

impl ForwardedFor {
    pub fn new(client: IpAddr, tls: bool) -> ForwardedFor {
        ForwardedFor::write(BytesMut::new(), client, tls)
    }

    /// The lines for `client`, written into `buf` (emptied first).
    pub fn write(mut buf: BytesMut, client: IpAddr, tls: bool) -> ForwardedFor {
        use std::fmt::Write;
        let client = match client {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let proto = if tls {
            "X-Forwarded-Proto: https\r\n"
        } else {
            "X-Forwarded-Proto: http\r\n"
        };
        buf.clear();
        buf.reserve(FORWARDED_ROOM);
        // Writing to a `BytesMut` cannot fail.
        let _ = write!(buf, "X-Forwarded-For: {client}\r\n{proto}");
        let split = buf.len() as u16;
        let _ = write!(buf, ", {client}\r\n{proto}");
        // Split off, not frozen whole: the lines share the buffer's one
        // allocation, and cloning them (for each request) allocates nothing.
        ForwardedFor {
            lines: buf.split().freeze(),
            split,
            room: buf,
        }
    }

    /// The buffer back, for the next lines: reused in place once no request
    /// still holds a part of these.
    pub fn into_buffer(self) -> BytesMut {
        self.room
    }

    fn line(&self) -> Bytes {
        self.lines.slice(..self.split as usize)
    }

    fn suffix(&self) -> Bytes {
        self.lines.slice(self.split as usize..)
    }
}

/// Where the final empty line of a head begins (heads with a bare LF are
/// refused when parsed: every line ends in CRLF).
fn body_start(head: &[u8]) -> usize {
    head.len() - 2
}

/// Pushes the kept parts of `head`, up to its final empty line; `slash_at`
/// puts a `/` before the part that starts there.
fn push_kept(out: &mut Gather, head: &Bytes, drops: &Drops, end: usize, slash_at: Option<usize>) {
    for (a, b) in drops.kept(end) {
        if slash_at == Some(a) {
            out.push(Bytes::from_static(b"/"));
        }
        out.push(head.slice(a..b.min(end)));
    }
}

/// Pushes a request head as forwarded: hop-by-hop lines dropped, the
/// client's address appended to `X-Forwarded-For`, `X-Forwarded-Proto` set,
/// and the `Connection` line the upstream hop needs: `upgrade` for a
/// protocol switch, `keep-alive` for an HTTP/1.0 request (so that the target
/// keeps the connection whatever the client asked). A request target in
/// absolute form goes in origin form, its authority as the `Host`.
pub fn push_request_head(out: &mut Gather, head: &Bytes, req: &RequestHead, xff: &ForwardedFor) {
    let end = body_start(head);
    let slash_at = req
        .authority
        .filter(|_| req.root_path)
        .map(|(_, e)| e as usize);
    push_kept(out, head, &req.drops, end, slash_at);
    if let Some((a, b)) = req.authority {
        out.push(Bytes::from_static(HOST));
        out.push(head.slice(a as usize..b as usize));
        out.push(Bytes::from_static(b"\r\n"));
    }
    match req.forwarded_for {
        None => out.push(xff.line()),
        Some((a, b)) => {
            out.push(Bytes::from_static(FORWARDED_FOR));
            out.push(head.slice(a as usize..b as usize));
            out.push(xff.suffix());
        }
    }
    if req.upgrade {
        out.push(Bytes::from_static(CONNECTION_UPGRADE));
    } else if req.version == Version::Http10 {
        out.push(Bytes::from_static(CONNECTION_KEEP_ALIVE));
    }
    out.push(head.slice(end..));
}

/// How the client connection goes on after a response, as its head says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientHop {
    /// Kept open: HTTP/1.1 needs no line; HTTP/1.0 needs `keep-alive`.
    KeepAlive(Version),
    /// Closed after this response: `Connection: close`.
    Close,
    /// Switched protocols (101): the target's own lines go through.
    Switched,
}

/// Pushes a response head as forwarded: hop-by-hop lines dropped, and the
/// `Connection` line the client hop needs.
pub fn push_response_head(out: &mut Gather, head: &Bytes, drops: &Drops, hop: ClientHop) {
    let connection = match hop {
        ClientHop::Close => CONNECTION_CLOSE,
        ClientHop::KeepAlive(Version::Http10) => CONNECTION_KEEP_ALIVE,
        ClientHop::KeepAlive(Version::Http11) | ClientHop::Switched => {
            if drops.is_empty() {
                out.push(head.clone());
                return;
            }
            b""
        }
    };
    let end = body_start(head);
    push_kept(out, head, drops, end, None);
    out.push(Bytes::from_static(connection));
    out.push(head.slice(end..));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_request, parse_response};

    fn gathered(out: &Gather) -> String {
        String::from_utf8(out.parts().iter().flat_map(|p| p.to_vec()).collect()).unwrap()
    }

    fn forward_request(raw: &str, ip: &str) -> String {
        let head = parse_request(raw.as_bytes(), 16 * 1024).unwrap().unwrap();
        let bytes = Bytes::copy_from_slice(&raw.as_bytes()[..head.head_len]);
        let mut out = Gather::default();
        push_request_head(
            &mut out,
            &bytes,
            &head,
            &ForwardedFor::new(ip.parse().unwrap(), false),
        );
        gathered(&out)
    }

    #[test]
    fn adds_forwarded_for() {
        assert_eq!(
            forward_request("GET / HTTP/1.1\r\nHost: a\r\n\r\n", "10.1.2.3"),
            "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.1.2.3\r\nX-Forwarded-Proto: http\r\n\r\n"
        );
    }

    #[test]
    fn asks_the_target_to_keep_http_1_0_connections_and_to_upgrade() {
        assert_eq!(
            forward_request("GET / HTTP/1.0\r\nConnection: close\r\n\r\n", "10.1.2.3"),
            "GET / HTTP/1.0\r\nX-Forwarded-For: 10.1.2.3\r\nX-Forwarded-Proto: http\r\n\
             Connection: keep-alive\r\n\r\n"
        );
        assert_eq!(
            forward_request(
                "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
                "10.1.2.3"
            ),
            "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nX-Forwarded-For: 10.1.2.3\r\n\
             X-Forwarded-Proto: http\r\nConnection: upgrade\r\n\r\n"
        );
    }

    #[test]
    fn appends_to_an_existing_forwarded_for() {
        assert_eq!(
            forward_request(
                "GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
                "10.1.2.3"
            ),
            "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1, 10.1.2.3\r\nX-Forwarded-Proto: http\r\n\r\n"
        );
    }

    #[test]
    fn ipv4_mapped_clients_are_written_as_ipv4() {
        assert_eq!(
            forward_request("GET / HTTP/1.1\r\nHost: a\r\n\r\n", "::ffff:10.0.0.1"),
            "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: http\r\n\r\n"
        );
    }

    #[test]
    fn an_absolute_form_target_goes_in_origin_form_with_its_authority_as_host() {
        assert_eq!(
            forward_request(
                "GET http://internal.example/x?y HTTP/1.1\r\nHost: public\r\n\r\n",
                "10.1.2.3"
            ),
            "GET /x?y HTTP/1.1\r\nHost: internal.example\r\nX-Forwarded-For: 10.1.2.3\r\n\
             X-Forwarded-Proto: http\r\n\r\n"
        );
        assert_eq!(
            forward_request(
                "GET HTTPS://a.example:8443?q HTTP/1.1\r\nHost: b\r\n\r\n",
                "10.1.2.3"
            ),
            "GET /?q HTTP/1.1\r\nHost: a.example:8443\r\nX-Forwarded-For: 10.1.2.3\r\n\
             X-Forwarded-Proto: http\r\n\r\n"
        );
        assert_eq!(
            forward_request("GET http://a HTTP/1.0\r\n\r\n", "10.1.2.3"),
            "GET / HTTP/1.0\r\nHost: a\r\nX-Forwarded-For: 10.1.2.3\r\n\
             X-Forwarded-Proto: http\r\nConnection: keep-alive\r\n\r\n"
        );
    }

    fn forward_response(raw: &str, keep_alive: bool, version: Version) -> String {
        let head = parse_response(raw.as_bytes(), false).unwrap().unwrap();
        let bytes = Bytes::copy_from_slice(raw.as_bytes());
        let mut out = Gather::default();
        let hop = if keep_alive {
            ClientHop::KeepAlive(version)
        } else {
            ClientHop::Close
        };
        push_response_head(&mut out, &bytes, &head.drops, hop);
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
