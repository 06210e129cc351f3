//! Response heads from targets, parsed in place: status, framing, whether the
//! upstream connection can carry another request, and the lines not forwarded.

use std::mem::MaybeUninit;

use super::{
    classify, has_bare_lf, line_range, value_end, Drops, Error, Framing, FramingFields, Known,
    TransferCoding, Version,
};

/// Most header fields accepted in one response head.
const MAX_RESPONSE_HEADERS: usize = 128;

/// A parsed response head: offsets into the buffer it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    /// Length of the head, final empty line included.
    pub head_len: usize,
    pub status: u16,
    pub version: Version,
    /// How the body is delimited, given the request method and the status.
    pub framing: Framing,
    /// The upstream connection may carry another request after this one.
    pub reusable: bool,
    /// Lines not forwarded.
    pub drops: Drops,
}

impl ResponseHead {
    /// A 1xx response other than 101: informational, followed by the real one.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

/// Parses a response head at the start of `buf`; `request_is_head` says the
/// request was HEAD, whose response has no body. `Ok(None)`: incomplete.
pub fn parse_response(buf: &[u8], request_is_head: bool) -> Result<Option<ResponseHead>, Error> {
    let mut headers =
        [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_RESPONSE_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let head_len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        buf,
        &mut headers,
    ) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Error::BadResponse),
    };
    let head = &buf[..head_len];
    let (Some(status), Some(minor)) = (resp.code, resp.version) else {
        return Err(Error::BadResponse);
    };
    // Forwarded as it came: a head a client could read otherwise is refused.
    if has_bare_lf(head) {
        return Err(Error::BadResponse);
    }
    let version = Version::from_minor(minor);

    let mut fields = FramingFields::default();
    for h in resp.headers.iter() {
        fields
            .add(head, classify(h.name.as_bytes()), h.value)
            .map_err(|_| Error::BadResponse)?;
    }

    let no_body = request_is_head || (100..200).contains(&status) || status == 204 || status == 304;
    let coding = fields.codings.result();
    let framing = if no_body {
        Framing::None
    } else {
        match coding {
            // Both Transfer-Encoding and Content-Length: ambiguous, refused.
            _ if coding != TransferCoding::Absent && fields.content_length.is_some() => {
                return Err(Error::BadResponse)
            }
            TransferCoding::ChunkedOnly | TransferCoding::Chunked => Framing::Chunked,
            TransferCoding::Invalid => return Err(Error::BadResponse),
            TransferCoding::NotChunked | TransferCoding::Unknown => Framing::UntilClose,
            TransferCoding::Absent => match fields.content_length {
                Some(0) => Framing::None,
                Some(n) => Framing::Length(n),
                None => Framing::UntilClose,
            },
        }
    };
    // A 101 keeps the lines that say what the connection switches to.
    let switching = status == 101;

    let mut drops = Drops::default();
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        let drop = match classify(name) {
            Known::Connection | Known::Upgrade => !switching,
            Known::KeepAlive | Known::ProxyConnection | Known::Trailer => true,
            _ => fields.conn.names_len > 0 && fields.conn.lists(head, name),
        };
        if drop {
            let (s, e) = line_range(head, name, value_end(head, h.value));
            if !drops.push(s, e) {
                return Err(Error::BadResponse);
            }
        }
    }

    // Transfer-Encoding in an HTTP/1.0 message is faulty framing: the
    // connection must close after it (RFC 9112 section 6.1).
    let persistent = fields.persistent(version)
        && !(version == Version::Http10 && coding != TransferCoding::Absent);
    Ok(Some(ResponseHead {
        head_len,
        status,
        version,
        framing,
        reusable: persistent && framing != Framing::UntilClose,
        drops,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str, is_head: bool) -> ResponseHead {
        parse_response(s.as_bytes(), is_head)
            .expect("valid")
            .expect("complete")
    }

    fn forwarded(s: &str) -> String {
        let h = head(s, false);
        h.drops.kept(h.head_len).map(|(a, b)| &s[a..b]).collect()
    }

    #[test]
    fn partial_heads_ask_for_more() {
        let full = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
        for at in 0..full.len() {
            assert_eq!(parse_response(&full.as_bytes()[..at], false), Ok(None));
        }
    }

    #[test]
    fn response_framing_table() {
        let cases: &[(&str, bool, Framing, bool)] = &[
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                false,
                Framing::Length(5),
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                false,
                Framing::None,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                Framing::Chunked,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                false,
                Framing::UntilClose,
                false,
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", false, Framing::UntilClose, false),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                true,
                Framing::None,
                true,
            ),
            (
                "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
                false,
                Framing::None,
                true,
            ),
            (
                "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                Framing::None,
                true,
            ),
            ("HTTP/1.1 100 Continue\r\n\r\n", false, Framing::None, true),
            (
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\n",
                false,
                Framing::Length(5),
                false,
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n",
                false,
                Framing::Length(5),
                false,
            ),
            (
                "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\n",
                false,
                Framing::Length(5),
                true,
            ),
            (
                "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\n\r\n",
                false,
                Framing::Length(3),
                true,
            ),
        ];
        for (input, is_head, framing, reusable) in cases {
            let h = head(input, *is_head);
            assert_eq!((h.framing, h.reusable), (*framing, *reusable), "{input:?}");
        }
    }

    #[test]
    fn rejects_invalid_responses() {
        for input in [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0\n\n",
            "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX : y\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "SSH-2.0-OpenSSH\r\n\r\n",
        ] {
            assert_eq!(
                parse_response(input.as_bytes(), false),
                Err(Error::BadResponse),
                "{input:?}"
            );
        }
    }

    #[test]
    fn drops_hop_by_hop_lines() {
        let s = "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\n\
                 X-Hop: 1\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(forwarded(s), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let s = "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(
            forwarded(s),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        let s =
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
        assert_eq!(forwarded(s), s);
    }

    #[test]
    fn interim_responses() {
        assert!(head("HTTP/1.1 100 Continue\r\n\r\n", false).is_interim());
        assert!(head("HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n", false).is_interim());
        assert!(!head("HTTP/1.1 101 Switching Protocols\r\n\r\n", false).is_interim());
        assert!(!head("HTTP/1.1 200 OK\r\n\r\n", false).is_interim());
    }
}
