//! Response heads: no input panics the parser, and a parsed head (and every
//! byte range it keeps or drops) lies inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use load_balancer::http::parse_response;

fuzz_target!(|data: &[u8]| {
    for request_is_head in [false, true] {
        if let Ok(Some(h)) = parse_response(data, request_is_head) {
            assert!(h.head_len <= data.len());
            let mut end = 0;
            for (a, b) in h.drops.kept(h.head_len) {
                assert!(end <= a && a < b && b <= h.head_len, "kept {a}..{b}");
                end = b;
            }
            for &(a, b) in h.drops.as_slice() {
                assert!(a <= b && b as usize <= h.head_len, "dropped {a}..{b}");
            }
        }
    }
});
