//! The PROXY protocol header (HAProxy's, versions 1 and 2) that an L4
//! balancer in front sends first on each connection, saying which client
//! the connection is for. Sans-IO: bytes in, the client's address (or none,
//! for a health check of the L4 balancer itself) and the header's length
//! out. Anything else than one whole, valid header is refused.
//!
//! The sending side too ([`encode_v2`]): the v2 header the balancer writes
//! first on each new connection to a `proxy=v2` target, and the `LOCAL` one
//! ([`V2_LOCAL`]) its health checks send.

#![forbid(unsafe_code)]

use bytes::{BufMut, Bytes, BytesMut};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The 12 bytes a version 2 header starts with.
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// Longest version 1 header, CRLF included (the specification's 107).
const V1_MAX: usize = 107;

/// Longest version 2 address block (addresses and TLVs) taken: the
/// specification allows 65535, nothing real sends more than a few hundred.
pub const V2_MAX_BLOCK: usize = 2048;

/// A whole header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The client's address; `None` for a connection the sender made for
    /// itself (v2 `LOCAL`, v1 `UNKNOWN`): the connection's own peer stands.
    pub source: Option<SocketAddr>,
    /// Bytes the header took: what follows is the client's own.
    pub len: usize,
}

/// Why a header is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Neither signature.
    Signature,
    /// A v1 line that is malformed or longer than 107 bytes.
    V1,
    /// A v2 header with a bad version, command, family or length.
    V2,
    /// A v2 address block over `V2_MAX_BLOCK`.
    Oversized,
    /// A v2 TLV that runs past the address block.
    Tlv,
}

/// A v2 header with the `LOCAL` command and no addresses: a connection the
/// sender made for itself (a health check), whose own peer stands.
pub const V2_LOCAL: [u8; 16] = *b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00";

/// Longest v2 header [`encode_v2`] writes: TCP over IPv6, no TLVs.
pub const V2_MAX_SENT: usize = 16 + 36;

/// The v2 header for a connection made on behalf of a client: the `PROXY`
/// command, TCP, `source` (the client) and `destination` (the address it
/// connected to), no TLVs; `None` gives [`V2_LOCAL`]. IPv4-mapped IPv6
/// addresses go as IPv4; when one side is IPv4 and the other IPv6, both go
/// as IPv6 (the IPv4 one mapped), as HAProxy does.
pub fn encode_v2(addresses: Option<(SocketAddr, SocketAddr)>) -> Bytes {
    let Some((source, destination)) = addresses else {
        return Bytes::from_static(&V2_LOCAL);
    };
    let (src, dst) = (source.ip().to_canonical(), destination.ip().to_canonical());
    let mut h = BytesMut::with_capacity(V2_MAX_SENT);
    h.put_slice(V2_SIGNATURE);
    // Version 2, PROXY.
    h.put_u8(0x21);
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            // TCP over IPv4: 4 + 4 + 2 + 2 bytes.
            h.put_slice(&[0x11, 0, 12]);
            h.put_slice(&src.octets());
            h.put_slice(&dst.octets());
        }
        _ => {
            // TCP over IPv6: 16 + 16 + 2 + 2 bytes.
            h.put_slice(&[0x21, 0, 36]);
            h.put_slice(&v6(src).octets());
            h.put_slice(&v6(dst).octets());
        }
    }
    h.put_u16(source.port());
    h.put_u16(destination.port());
    h.freeze()
}

/// An address as IPv6 (IPv4 mapped).
fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(ip) => ip.to_ipv6_mapped(),
        IpAddr::V6(ip) => ip,
    }
}

/// Parses the header at the start of `buf`: `Ok(None)` while more bytes are
/// needed.
pub fn parse(buf: &[u8]) -> Result<Option<Header>, Invalid> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] == V2_SIGNATURE[..n] {
        return if n < V2_SIGNATURE.len() {
            Ok(None)
        } else {
            parse_v2(buf)
        };
    }
    let n = buf.len().min(6);
    if buf[..n] == b"PROXY "[..n] {
        return if n < 6 { Ok(None) } else { parse_v1(buf) };
    }
    Err(Invalid::Signature)
}

/// `PROXY TCP4|TCP6|UNKNOWN src dst sport dport\r\n`.
fn parse_v1(buf: &[u8]) -> Result<Option<Header>, Invalid> {
    let scan = &buf[..buf.len().min(V1_MAX)];
    let Some(end) = scan.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Err(Invalid::V1)
        } else {
            Ok(None)
        };
    };
    let line = std::str::from_utf8(&buf[6..end]).map_err(|_| Invalid::V1)?;
    let len = end + 2;
    let fields: Vec<&str> = line.split(' ').collect();
    let source = match fields.as_slice() {
        ["UNKNOWN", ..] => None,
        [family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let v4 = *family == "TCP4";
            let src = address(src, v4)?;
            address(dst, v4)?;
            port(dport)?;
            Some(SocketAddr::new(src, port(sport)?))
        }
        _ => return Err(Invalid::V1),
    };
    Ok(Some(Header { source, len }))
}

/// A v1 address of the family the line names.
fn address(s: &str, v4: bool) -> Result<IpAddr, Invalid> {
    let ip = if v4 {
        s.parse::<Ipv4Addr>().map(IpAddr::V4)
    } else {
        s.parse::<Ipv6Addr>().map(IpAddr::V6)
    };
    ip.map_err(|_| Invalid::V1)
}

/// A v1 port: 1 to 5 digits, no sign, no leading zero, at most 65535.
fn port(s: &str) -> Result<u16, Invalid> {
    let ok = !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    if !ok {
        return Err(Invalid::V1);
    }
    s.parse().map_err(|_| Invalid::V1)
}

/// The binary header: signature, version and command, family, length, then
/// the address block (addresses, then TLVs).
fn parse_v2(buf: &[u8]) -> Result<Option<Header>, Invalid> {
    if buf.len() < 16 {
        return Ok(None);
    }
    let (version, command) = (buf[12] >> 4, buf[12] & 0x0f);
    if version != 2 || command > 1 {
        return Err(Invalid::V2);
    }
    let family = buf[13];
    let block = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if block > V2_MAX_BLOCK {
        return Err(Invalid::Oversized);
    }
    if buf.len() < 16 + block {
        return Ok(None);
    }
    let block_bytes = &buf[16..16 + block];
    let len = 16 + block;
    // The addresses a family carries (TCP or UDP over IPv4 or IPv6; UNIX
    // sockets and UNSPEC carry nothing used here).
    let addresses = match family {
        0x11 | 0x12 => 12,
        0x21 | 0x22 => 36,
        0x31 | 0x32 => 216,
        0x00 => 0,
        _ => return Err(Invalid::V2),
    };
    if block < addresses {
        return Err(Invalid::V2);
    }
    check_tlvs(&block_bytes[addresses..])?;
    if command == 0 {
        // LOCAL: the sender's own connection (a health check).
        return Ok(Some(Header { source: None, len }));
    }
    let a = block_bytes;
    let source = match family {
        0x11 | 0x12 => {
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Some(SocketAddr::new(
                IpAddr::V4(ip),
                u16::from_be_bytes([a[8], a[9]]),
            ))
        }
        0x21 | 0x22 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&a[..16]);
            Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(octets)),
                u16::from_be_bytes([a[32], a[33]]),
            ))
        }
        _ => None,
    };
    Ok(Some(Header { source, len }))
}

/// TLVs (type, 2-byte length, value) must tile what follows the addresses
/// exactly.
fn check_tlvs(mut rest: &[u8]) -> Result<(), Invalid> {
    while !rest.is_empty() {
        if rest.len() < 3 {
            return Err(Invalid::Tlv);
        }
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        if rest.len() < 3 + len {
            return Err(Invalid::Tlv);
        }
        rest = &rest[3 + len..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, block: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&(block.len() as u16).to_be_bytes());
        h.extend_from_slice(block);
        h
    }

    fn v4_block() -> Vec<u8> {
        vec![192, 0, 2, 7, 10, 0, 0, 1, 0x30, 0x39, 0, 80]
    }

    #[test]
    fn v1_tcp4_and_tcp6_give_the_source() {
        let h = b"PROXY TCP4 192.0.2.7 10.0.0.1 12345 80\r\nGET /";
        let parsed = parse(h).unwrap().unwrap();
        assert_eq!(parsed.source, Some("192.0.2.7:12345".parse().unwrap()));
        assert_eq!(&h[parsed.len..], b"GET /");
        let h = b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 443\r\n";
        let parsed = parse(h).unwrap().unwrap();
        assert_eq!(parsed.source, Some("[2001:db8::7]:4000".parse().unwrap()));
        let h = b"PROXY UNKNOWN\r\n";
        assert_eq!(parse(h).unwrap().unwrap().source, None);
    }

    #[test]
    fn v1_waits_for_its_crlf_and_refuses_a_line_too_long() {
        assert_eq!(parse(b"PROX"), Ok(None));
        assert_eq!(parse(b"PROXY TCP4 192.0.2.7"), Ok(None));
        let long = format!("PROXY TCP4 {}", "1".repeat(120));
        assert_eq!(parse(long.as_bytes()), Err(Invalid::V1));
    }

    #[test]
    fn v1_refuses_what_is_not_the_grammar() {
        for bad in [
            &b"PROXY TCP4 192.0.2.7 10.0.0.1 12345\r\n"[..],
            b"PROXY TCP4 192.0.2.700 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 012 2\r\n",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 65536 2\r\n",
            b"PROXY TCP4  192.0.2.7 10.0.0.1 1 2\r\n",
            b"PROXY UDP4 192.0.2.7 10.0.0.1 1 2\r\n",
        ] {
            assert_eq!(
                parse(bad),
                Err(Invalid::V1),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn v2_proxy_and_local() {
        let mut h = v2(1, 0x11, &v4_block());
        h.extend_from_slice(b"GET /");
        let parsed = parse(&h).unwrap().unwrap();
        assert_eq!(parsed.source, Some("192.0.2.7:12345".parse().unwrap()));
        assert_eq!(&h[parsed.len..], b"GET /");
        let local = v2(0, 0x00, &[]);
        assert_eq!(
            parse(&local),
            Ok(Some(Header {
                source: None,
                len: 16
            }))
        );
    }

    #[test]
    fn v2_truncated_waits_and_tlvs_must_fit() {
        let h = v2(1, 0x11, &v4_block());
        for cut in 0..h.len() {
            assert_eq!(parse(&h[..cut]), Ok(None), "cut at {cut}");
        }
        let mut block = v4_block();
        block.extend_from_slice(&[0x04, 0x00, 0x02, b'a', b'b']);
        assert!(parse(&v2(1, 0x11, &block)).unwrap().is_some());
        let mut block = v4_block();
        block.extend_from_slice(&[0x04, 0x00, 0x09, b'a']);
        assert_eq!(parse(&v2(1, 0x11, &block)), Err(Invalid::Tlv));
        let mut block = v4_block();
        block.extend_from_slice(&[0x04, 0x00]);
        assert_eq!(parse(&v2(1, 0x11, &block)), Err(Invalid::Tlv));
    }

    #[test]
    fn v2_refuses_a_bad_version_command_family_length_or_size() {
        let mut h = v2(1, 0x11, &v4_block());
        h[12] = 0x11;
        assert_eq!(parse(&h), Err(Invalid::V2));
        assert_eq!(parse(&v2(2, 0x11, &v4_block())), Err(Invalid::V2));
        assert_eq!(parse(&v2(1, 0x41, &v4_block())), Err(Invalid::V2));
        assert_eq!(parse(&v2(1, 0x21, &v4_block())), Err(Invalid::V2));
        let mut h = v2(1, 0x11, &v4_block());
        h[14..16].copy_from_slice(&((V2_MAX_BLOCK + 1) as u16).to_be_bytes());
        assert_eq!(parse(&h), Err(Invalid::Oversized));
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn encodes_tcp4_byte_for_byte() {
        let h = encode_v2(Some((addr("192.0.2.7:12345"), addr("10.0.0.1:80"))));
        assert_eq!(&h[..], &v2(1, 0x11, &v4_block())[..]);
    }

    #[test]
    fn encodes_tcp6_byte_for_byte() {
        let h = encode_v2(Some((
            addr("[2001:db8::7]:4000"),
            addr("[2001:db8::1]:443"),
        )));
        let mut block = Vec::new();
        block.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
        block.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        block.extend_from_slice(&[0x0f, 0xa0, 0x01, 0xbb]);
        assert_eq!(&h[..], &v2(1, 0x21, &block)[..]);
        assert_eq!(h.len(), V2_MAX_SENT);
    }

    #[test]
    fn encodes_local_without_addresses() {
        assert_eq!(&encode_v2(None)[..], &v2(0, 0x00, &[])[..]);
        assert_eq!(
            parse(&V2_LOCAL),
            Ok(Some(Header {
                source: None,
                len: 16
            }))
        );
    }

    #[test]
    fn sends_ipv4_mapped_addresses_as_ipv4() {
        let h = encode_v2(Some((
            addr("[::ffff:192.0.2.7]:12345"),
            addr("[::ffff:10.0.0.1]:80"),
        )));
        assert_eq!(&h[..], &v2(1, 0x11, &v4_block())[..]);
    }

    #[test]
    fn maps_ipv4_into_ipv6_when_the_families_differ() {
        let h = encode_v2(Some((addr("192.0.2.7:12345"), addr("[2001:db8::1]:80"))));
        assert_eq!(h[13], 0x21);
        let parsed = parse(&h).unwrap().unwrap();
        assert_eq!(parsed.source, Some(addr("[::ffff:192.0.2.7]:12345")));
        let h = encode_v2(Some((addr("[2001:db8::7]:1"), addr("10.0.0.1:80"))));
        assert_eq!(
            &h[32..48],
            &Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped().octets()
        );
    }

    #[test]
    fn what_is_encoded_parses_back() {
        let pairs = [
            ("127.0.0.1:1", "127.0.0.1:8080"),
            ("192.0.2.7:65535", "10.0.0.1:0"),
            ("[::1]:40000", "[::1]:80"),
            ("[2001:db8::7]:4000", "[2001:db8::1]:443"),
            ("[::ffff:127.0.0.1]:5", "127.0.0.1:6"),
        ];
        for (source, destination) in pairs {
            let mut h = encode_v2(Some((addr(source), addr(destination)))).to_vec();
            let len = h.len();
            h.extend_from_slice(b"GET /");
            let parsed = parse(&h).unwrap().unwrap();
            let canonical = addr(source);
            let canonical = SocketAddr::new(canonical.ip().to_canonical(), canonical.port());
            assert_eq!(
                parsed,
                Header {
                    source: Some(canonical),
                    len
                },
                "{source}"
            );
            for cut in 0..len {
                assert_eq!(parse(&h[..cut]), Ok(None), "{source} cut at {cut}");
            }
        }
    }

    #[test]
    fn anything_else_is_refused_at_once() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(Invalid::Signature));
        assert_eq!(parse(b"\r\n\r\n\0\r\nQUIX\n"), Err(Invalid::Signature));
    }
}
