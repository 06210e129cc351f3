//! Request heads: no input panics the parser, and a parsed head (and every
//! byte range it keeps or drops) lies inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use load_balancer::http::parse_request;

fuzz_target!(|data: &[u8]| {
    // A small bound as well as a roomy one, so that 414 and 431 are reached.
    for max_head in [64, 64 * 1024] {
        if let Ok(Some(h)) = parse_request(data, max_head) {
            assert!(h.head_len <= data.len() && h.head_len <= max_head);
            let mut end = 0;
            for (a, b) in h.drops.kept(h.head_len) {
                assert!(end <= a && a < b && b <= h.head_len, "kept {a}..{b}");
                end = b;
            }
            for &(a, b) in h.drops.as_slice() {
                assert!(a <= b && b as usize <= h.head_len, "dropped {a}..{b}");
            }
            if let Some((a, b)) = h.forwarded_for {
                assert!(a <= b && b as usize <= h.head_len);
            }
        }
    }
});
