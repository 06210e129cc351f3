//! Chunked bodies: no input panics the scanner, and feeding it in two pieces
//! (cut where the first input byte says) finds what feeding it whole finds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use load_balancer::http::{ChunkedError, ChunkedScanner};

/// Scans `body` in two pieces cut at `at`: where the body ends (`None`: not
/// yet), or the error.
fn scan_split(body: &[u8], at: usize) -> Result<Option<usize>, ChunkedError> {
    let mut scanner = ChunkedScanner::new();
    let n = scanner.scan(&body[..at])?;
    if scanner.is_done() {
        return Ok(Some(n));
    }
    assert_eq!(n, at, "bytes kept back from an unfinished body");
    let n = scanner.scan(&body[at..])?;
    if scanner.is_done() {
        return Ok(Some(at + n));
    }
    assert_eq!(
        n,
        body.len() - at,
        "bytes kept back from an unfinished body"
    );
    Ok(None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let at = usize::from(cut) % (body.len() + 1);
    let whole = scan_split(body, body.len());
    assert_eq!(scan_split(body, at), whole, "cut at {at}");
    if let Ok(Some(end)) = whole {
        assert!(end <= body.len());
    }
});
