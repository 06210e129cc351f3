//! Forwarded requests: whatever the balancer takes whole (a head it
//! accepts, then a body it finds complete and well-formed), it sends on as
//! a message that a strict RFC 9112 parser, independent of `src/`, reads
//! with the same head end, body end and framing, and whose head has no `_`
//! in a field name, no h2c upgrade, an origin-form (or `*`) target and one
//! `Host` in HTTP/1.1. The same check as the proptest property
//! `every_accepted_request_reaches_the_target_with_the_same_boundaries`.
#![no_main]

#[path = "../../tests/strict/mod.rs"]
mod strict;

use std::net::{IpAddr, Ipv4Addr};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use load_balancer::http::{parse_request, BodyProgress, Framing, Version};
use load_balancer::proxy::{push_request_head, ForwardedFor};
use load_balancer::stream::Gather;

fuzz_target!(|data: &[u8]| {
    // The parser splits the input: its head, then the body and what follows.
    let Ok(Some(req)) = parse_request(data, 64 * 1024) else {
        return;
    };
    let rest = &data[req.head_len..];
    let mut body = BodyProgress::new(req.framing);
    let Ok(body_len) = body.advance(rest) else {
        return;
    };
    if !body.is_done() {
        return;
    }
    let head = Bytes::copy_from_slice(&data[..req.head_len]);
    let mut out = Gather::default();
    let client = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
    push_request_head(&mut out, &head, &req, &ForwardedFor::new(client));
    let head_end = out.len();
    let sent = [out.parts().concat(), rest.to_vec()].concat();

    let show = format!(
        "sent by the client: {}\nforwarded: {}",
        data.escape_ascii(),
        sent.escape_ascii()
    );
    let strict = match strict::parse_request(&sent) {
        Ok(r) => r,
        Err(e) => panic!("the strict reference refuses it: {e:?}\n{show}"),
    };
    assert_eq!(strict.head.head_len, head_end, "head end\n{show}");
    assert_eq!(strict.body_end, head_end + body_len, "body end\n{show}");
    let framing = match strict.head.framing {
        strict::Framing::None | strict::Framing::Length(0) => Framing::None,
        strict::Framing::Length(n) => Framing::Length(n),
        strict::Framing::Chunked => Framing::Chunked,
    };
    assert_eq!(framing, req.framing, "framing\n{show}");

    let target = strict.head.target;
    assert!(target.starts_with(b"/") || target == b"*", "{show}");
    let mut hosts = 0;
    for f in &strict.head.fields {
        assert!(!f.name.contains(&b'_'), "_ in a name\n{show}");
        if f.name.eq_ignore_ascii_case(b"upgrade") {
            assert!(!offers_h2c(f.value), "h2c upgrade\n{show}");
        }
        hosts += usize::from(f.name.eq_ignore_ascii_case(b"host"));
    }
    if req.version == Version::Http11 {
        assert_eq!(hosts, 1, "Host lines\n{show}");
    }
});

/// Whether an `Upgrade` value lists `h2c` (a protocol name, any version).
fn offers_h2c(value: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|p| {
        let name = p.split(|&b| b == b'/').next().unwrap_or_default();
        name.trim_ascii().eq_ignore_ascii_case(b"h2c")
    })
}
