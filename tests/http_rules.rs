//! The HTTP/1.1 rules of `notes/http.md`, one table per area, run against
//! the sans-IO parser in `load_balancer::http`.
//!
//! Every row is checked whole and split at every byte: a head parser is
//! handed each strict prefix of its input (it must answer "incomplete", or
//! the same error as the whole input once that error is visible) and the
//! input with other bytes after it (the head must end at the same byte); the
//! chunked scanner is fed every two-piece split and one byte at a time, and
//! must find the same end as when it is fed the whole input.
//!
//! A table reports every failing row at once, not just the first.

use std::fmt::Debug;

use load_balancer::http::{
    parse_request, parse_response, ChunkedError, ChunkedScanner, Error, Framing, RequestHead,
    ResponseHead,
};

/// The head bound every request row is parsed under.
const MAX_HEAD: usize = 4096;

/// Bytes appended after a complete head: another request, and bytes no head
/// may contain. The head must end where it ended without them.
const AFTER_HEAD: &[u8] = b"GET /next HTTP/1.1\r\nHost: b\r\n\r\n\0\r\x7f\xff";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The failed rows of one table, reported together.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn add(&mut self, name: &str, input: &[u8], what: String) {
        self.0
            .push(format!("- {name}: {what}\n    input: {}", show(input)));
    }

    fn assert_none(self, table: &str) {
        assert!(
            self.0.is_empty(),
            "{} row(s) of the {table} table failed:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

/// Input bytes, escaped, cut short when long.
fn show(input: &[u8]) -> String {
    let s = input.escape_ascii().to_string();
    if s.len() > 160 {
        format!("{}... ({} bytes)", &s[..160], input.len())
    } else {
        s
    }
}

/// Checks every strict prefix of `input`: each must be incomplete
/// (`Ok(None)`) or fail with `err`, the error of the whole input; once one
/// fails, every longer one must fail the same way (more bytes never repair a
/// broken head). A valid head passes `err = None`: every prefix is incomplete.
fn check_prefixes<T: Debug>(
    name: &str,
    input: &[u8],
    err: Option<Error>,
    parse: impl Fn(&[u8]) -> Result<Option<T>, Error>,
    failures: &mut Failures,
) {
    let mut failed_from = None;
    for at in 0..input.len() {
        let got = parse(&input[..at]);
        let fine = match &got {
            Ok(None) => failed_from.is_none(),
            Err(e) if Some(*e) == err => {
                failed_from.get_or_insert(at);
                true
            }
            _ => false,
        };
        if !fine {
            let want = match (err, failed_from) {
                (Some(e), Some(_)) => format!("Err({e:?}) as the shorter prefixes"),
                (Some(e), None) => format!("Ok(None) or Err({e:?})"),
                (None, _) => "Ok(None)".to_string(),
            };
            failures.add(
                name,
                input,
                format!("prefix of {at} bytes gave {got:?}, want {want}"),
            );
            return;
        }
    }
}

/// A parsed head, request or response, as the tables state it: where it
/// ends, its framing, and whether its connection stays open.
trait Head: Debug + PartialEq {
    /// What the flag of a row means: `keep_alive` (the client connection
    /// stays open) or `reusable` (the upstream connection can carry another
    /// request).
    const FLAG: &'static str;

    fn head_len(&self) -> usize;

    /// The framing and the flag, as a row states them.
    fn stated(&self) -> (Framing, bool);

    /// The parts of the head the tables state.
    fn summary(&self) -> String;
}

impl Head for RequestHead {
    const FLAG: &'static str = "keep_alive";

    fn head_len(&self) -> usize {
        self.head_len
    }

    fn stated(&self) -> (Framing, bool) {
        (self.framing, self.keep_alive)
    }

    fn summary(&self) -> String {
        format!(
            "Ok(head_len {}, {:?}, keep_alive {})",
            self.head_len, self.framing, self.keep_alive
        )
    }
}

impl Head for ResponseHead {
    const FLAG: &'static str = "reusable";

    fn head_len(&self) -> usize {
        self.head_len
    }

    fn stated(&self) -> (Framing, bool) {
        (self.framing, self.reusable)
    }

    fn summary(&self) -> String {
        format!(
            "Ok(head_len {}, status {}, {:?}, reusable {})",
            self.head_len, self.status, self.framing, self.reusable
        )
    }
}

/// The parts of a parse result the tables state.
fn summary<H: Head>(r: &Result<Option<H>, Error>) -> String {
    match r {
        Ok(Some(h)) => h.summary(),
        other => format!("{other:?}"),
    }
}

/// The head as the balancer forwards it: its kept byte ranges, in order.
fn kept_bytes(input: &[u8], kept: impl Iterator<Item = (usize, usize)>) -> Vec<u8> {
    kept.flat_map(|(a, b)| input[a..b].iter().copied())
        .collect()
}

/// What a request row parses to: its framing and whether the client
/// connection stays open, or the error the client is answered with.
type RequestWant = Result<(Framing, bool), Error>;

/// What a response row parses to: its framing and whether the upstream
/// connection can carry another request, or the error.
type ResponseWant = Result<(Framing, bool), Error>;

/// A request parsed as every request row is: under [`MAX_HEAD`].
fn parse_request_row(input: &[u8]) -> Result<Option<RequestHead>, Error> {
    parse_request(input, MAX_HEAD)
}

/// Checks one request or response row ([`RequestWant`], [`ResponseWant`]):
/// the whole input is exactly one head that `parse`s as wanted; every
/// prefix is incomplete or the same error; bytes after the head change
/// nothing.
fn check_head<H: Head>(
    name: &str,
    input: &[u8],
    want: Result<(Framing, bool), Error>,
    parse: impl Fn(&[u8]) -> Result<Option<H>, Error>,
    failures: &mut Failures,
) {
    let whole = parse(input);
    let matches = match (&want, &whole) {
        (Ok(w), Ok(Some(h))) => h.stated() == *w && h.head_len() == input.len(),
        (Err(w), Err(e)) => w == e,
        _ => false,
    };
    if !matches {
        let want = match want {
            Ok((f, flag)) => format!("Ok(head_len {}, {f:?}, {} {flag})", input.len(), H::FLAG),
            Err(e) => format!("Err({e:?})"),
        };
        failures.add(
            name,
            input,
            format!("whole input gave {}, want {want}", summary(&whole)),
        );
        return;
    }
    check_prefixes(name, input, want.err(), &parse, failures);
    if want.is_ok() {
        let more = [input, AFTER_HEAD].concat();
        let again = parse(&more);
        if again != whole {
            failures.add(
                name,
                input,
                format!(
                    "with bytes after the head gave {}, alone {}",
                    summary(&again),
                    summary(&whole)
                ),
            );
        }
    }
}

fn check_request_table(table: &str, rows: &[(&str, &[u8], RequestWant)]) {
    let mut failures = Failures::default();
    for &(name, input, want) in rows {
        check_head(name, input, want, parse_request_row, &mut failures);
    }
    failures.assert_none(table);
}

/// What a chunked row scans to: where the body ends (`None`: not yet), or
/// why it is malformed.
type ChunkedWant = Result<Option<usize>, ChunkedError>;

/// Feeds `input` to a new scanner in the pieces that `cuts` (ascending
/// offsets) make, stopping at the end of the body; returns that end as an
/// offset into `input`.
fn scan_pieces(input: &[u8], cuts: &[usize]) -> ChunkedWant {
    let mut scanner = ChunkedScanner::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([input.len()]) {
        let piece = &input[start..end];
        let n = scanner.scan(piece)?;
        if scanner.is_done() {
            return Ok(Some(start + n));
        }
        assert_eq!(
            n,
            piece.len(),
            "the scanner kept back bytes of an unfinished body: {}",
            show(input)
        );
        start = end;
    }
    Ok(None)
}

/// The two-piece splits checked for an input: every position, except for
/// long inputs (the bounds rows), where every position near either end and
/// every 61st in between are enough and keep the test fast.
fn split_points(len: usize) -> Vec<usize> {
    if len <= 2048 {
        (0..=len).collect()
    } else {
        (0..=len)
            .filter(|&at| at < 64 || at + 64 > len || at % 61 == 0)
            .collect()
    }
}

/// Checks one chunked row: fed whole, split in two at every position, and
/// one byte at a time, the scanner gives `want`.
fn check_chunked(name: &str, input: &[u8], want: ChunkedWant, failures: &mut Failures) {
    let whole = scan_pieces(input, &[]);
    if whole != want {
        failures.add(
            name,
            input,
            format!("fed whole gave {whole:?}, want {want:?}"),
        );
        return;
    }
    for at in split_points(input.len()) {
        let got = scan_pieces(input, &[at]);
        if got != want {
            failures.add(
                name,
                input,
                format!("split at {at} gave {got:?}, want {want:?}"),
            );
            return;
        }
    }
    if input.len() <= 2048 {
        let every: Vec<usize> = (1..input.len()).collect();
        let got = scan_pieces(input, &every);
        if got != want {
            failures.add(
                name,
                input,
                format!("fed one byte at a time gave {got:?}, want {want:?}"),
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Requests: framing
// ---------------------------------------------------------------------------

#[test]
fn content_length_must_be_one_unambiguous_decimal_number() {
    use Error::BadFraming;
    use Framing::{Length, None};
    #[rustfmt::skip]
    let rows: &[(&str, &[u8], RequestWant)] = &[
        ("one Content-Length frames the body",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", Ok((Length(5), true))),
        ("Content-Length 0 means no body",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", Ok((None, true))),
        ("identical repeated Content-Length fields are rejected (forwarded, the next hop may read them otherwise)",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n", Err(BadFraming)),
        ("a list of identical values is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", Err(BadFraming)),
        ("nineteen digits still fit",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999999999999999\r\n\r\n", Ok((Length(9999999999999999999), true))),
        ("two different Content-Length fields are rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", Err(BadFraming)),
        ("different values far apart in the head are rejected",
         b"POST / HTTP/1.1\r\nContent-Length: 6\r\nHost: a\r\nX: y\r\nContent-Length: 5\r\n\r\n", Err(BadFraming)),
        ("a list of different values is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", Err(BadFraming)),
        ("a plus sign is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", Err(BadFraming)),
        ("a negative value is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", Err(BadFraming)),
        ("a hexadecimal value is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", Err(BadFraming)),
        ("a decimal point is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5.0\r\n\r\n", Err(BadFraming)),
        ("an empty value is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", Err(BadFraming)),
        ("a value of only spaces is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:   \r\n\r\n", Err(BadFraming)),
        ("a space inside the digits is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", Err(BadFraming)),
        ("a tab inside the digits is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\t2\r\n\r\n", Err(BadFraming)),
        ("letters are rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: five\r\n\r\n", Err(BadFraming)),
        ("twenty digits overflow and are rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", Err(BadFraming)),
        ("thirty digits overflow and are rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999999999999999\r\n\r\n", Err(BadFraming)),
        ("Content-Length with chunked is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", Err(BadFraming)),
        ("chunked with Content-Length after it is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", Err(BadFraming)),
        ("Content-Length 0 with chunked is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n", Err(BadFraming)),
        ("Content-Length with a non-chunked coding is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n", Err(BadFraming)),
    ];
    check_request_table("Content-Length", rows);
}

#[test]
fn transfer_encoding_must_end_in_exactly_one_chunked_on_http11() {
    use Error::{BadFraming, UnknownTransferCoding};
    use Framing::Chunked;
    #[rustfmt::skip]
    let rows: &[(&str, &[u8], RequestWant)] = &[
        ("chunked frames the body",
         b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", Ok((Chunked, true))),
        ("coding names are case-insensitive",
         b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n", Ok((Chunked, true))),
        ("a known coding before chunked is not forwarded: 501",
         b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Err(UnknownTransferCoding)),
        ("codings spread over several fields are rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", Err(BadFraming)),
        ("an empty list element after chunked is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", Err(BadFraming)),
        ("an empty list element before chunked is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n", Err(BadFraming)),
        ("a final coding that is not chunked is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", Err(BadFraming)),
        ("chunked before another coding is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", Err(BadFraming)),
        ("chunked in a field before a non-chunked one is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", Err(BadFraming)),
        ("chunked twice in one list is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", Err(BadFraming)),
        ("chunked in two fields is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", Err(BadFraming)),
        ("an empty Transfer-Encoding is rejected",
         b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", Err(BadFraming)),
        ("an unknown coding is not implemented",
         b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: bogus, chunked\r\n\r\n", Err(UnknownTransferCoding)),
        ("a coding with parameters is unknown",
         b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip;q=1, chunked\r\n\r\n", Err(UnknownTransferCoding)),
        ("Transfer-Encoding on HTTP/1.0 is rejected",
         b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", Err(BadFraming)),
        ("Transfer-Encoding on HTTP/1.0 with Host is rejected",
         b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", Err(BadFraming)),
        ("a non-chunked coding on HTTP/1.0 is rejected",
         b"POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n", Err(BadFraming)),
    ];
    check_request_table("Transfer-Encoding", rows);
}

#[test]
fn keep_alive_follows_the_version_and_connection() {
    use Framing::None;
    #[rustfmt::skip]
    let rows: &[(&str, &[u8], RequestWant)] = &[
        ("HTTP/1.1 stays open by default",
         b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Ok((None, true))),
        ("HTTP/1.1 with Connection: close closes",
         b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", Ok((None, false))),
        ("close wins over keep-alive",
         b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n", Ok((None, false))),
        ("HTTP/1.0 closes by default",
         b"GET / HTTP/1.0\r\n\r\n", Ok((None, false))),
        ("HTTP/1.0 with keep-alive stays open",
         b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", Ok((None, true))),
    ];
    check_request_table("keep-alive", rows);
}

// ---------------------------------------------------------------------------
// Requests: field syntax, Host, request line, limits
// ---------------------------------------------------------------------------

#[test]
fn field_lines_with_bad_whitespace_folds_or_control_characters_are_malformed() {
    use Error::MalformedRequest;
    use Framing::None;
    #[rustfmt::skip]
    let rows: &[(&str, &[u8], RequestWant)] = &[
        ("a tab, obs-text and an empty value are fine",
         b"GET / HTTP/1.1\r\nHost: a\r\nX-Tab: a\tb\r\nX-Obs: \x80\xff\r\nX-Empty:\r\n\r\n", Ok((None, true))),
        ("a space before the colon is rejected",
         b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", Err(MalformedRequest)),
        ("a tab before the colon is rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\nX-A\t: b\r\n\r\n", Err(MalformedRequest)),
        ("a space inside a name is rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\nX A: b\r\n\r\n", Err(MalformedRequest)),
        ("an empty name is rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", Err(MalformedRequest)),
        ("a separator in a name is rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", Err(MalformedRequest)),
        ("a line without a colon is rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\nX-A b\r\n\r\n", Err(MalformedRequest)),
        ("a bare LF ending the request line is rejected",
         b"GET / HTTP/1.1\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("a bare LF ending a field line is rejected",
         b"GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n", Err(MalformedRequest)),
        ("bare LFs throughout are rejected",
         b"GET / HTTP/1.1\nHost: a\nConnection: close\nAccept: */*\n\n", Err(MalformedRequest)),
        ("obs-fold with a space is rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", Err(MalformedRequest)),
        ("obs-fold with a tab is rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", Err(MalformedRequest)),
        ("a first field line starting with a space is rejected",
         b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", Err(MalformedRequest)),
        ("NUL in a value is rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n", Err(MalformedRequest)),
        ("NUL in a name is rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\nX-\0A: b\r\n\r\n", Err(MalformedRequest)),
        ("a bare CR inside a value is rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", Err(MalformedRequest)),
        ("a bare CR ending a value is rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\r\n\r\n", Err(MalformedRequest)),
        ("a bare CR inside a name is rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\nX\rA: b\r\n\r\n", Err(MalformedRequest)),
        ("a bare CR as a value is rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\nX-A: \r\r\n\r\n", Err(MalformedRequest)),
        ("a bare CR where the head should end is rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\n\rX\r\n\r\n", Err(MalformedRequest)),
        ("a bare CR ending the request line is rejected",
         b"GET / HTTP/1.1\rHost: a\r\n\r\n", Err(MalformedRequest)),
        ("SOH in a value is rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n", Err(MalformedRequest)),
        ("ESC in a value is rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x1bc\r\n\r\n", Err(MalformedRequest)),
        ("a vertical tab in a value is rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x0bc\r\n\r\n", Err(MalformedRequest)),
        ("a form feed in a value is rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x0cc\r\n\r\n", Err(MalformedRequest)),
        ("DEL in a value is rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7fc\r\n\r\n", Err(MalformedRequest)),
        ("a control character in a name is rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\nX-\x01A: b\r\n\r\n", Err(MalformedRequest)),
    ];
    check_request_table("field syntax", rows);
}

#[test]
fn http11_requests_need_exactly_one_host() {
    use Error::BadHost;
    use Framing::None;
    #[rustfmt::skip]
    let rows: &[(&str, &[u8], RequestWant)] = &[
        ("one Host is fine",
         b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Ok((None, true))),
        ("the Host name is case-insensitive",
         b"GET / HTTP/1.1\r\nhOST: a\r\n\r\n", Ok((None, true))),
        ("HTTP/1.0 without Host is accepted",
         b"GET / HTTP/1.0\r\n\r\n", Ok((None, false))),
        ("HTTP/1.0 with one Host is accepted",
         b"GET / HTTP/1.0\r\nHost: a\r\n\r\n", Ok((None, false))),
        ("HTTP/1.1 without Host is rejected",
         b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", Err(BadHost)),
        ("HTTP/1.1 without any field is rejected",
         b"GET / HTTP/1.1\r\n\r\n", Err(BadHost)),
        ("two Host fields are rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Err(BadHost)),
        ("two identical Host fields are rejected",
         b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", Err(BadHost)),
        ("two Host fields on HTTP/1.0 are rejected",
         b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", Err(BadHost)),
    ];
    check_request_table("Host", rows);
}

#[test]
fn malformed_request_lines_are_rejected_and_connect_is_not_supported() {
    use Error::{MalformedRequest, MethodNotSupported};
    use Framing::None;
    #[rustfmt::skip]
    let rows: &[(&str, &[u8], RequestWant)] = &[
        ("an extension method is forwarded",
         b"PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n", Ok((None, true))),
        ("the asterisk form is fine",
         b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", Ok((None, true))),
        ("the absolute form is fine",
         b"GET http://a/x?y=1 HTTP/1.1\r\nHost: a\r\n\r\n", Ok((None, true))),
        ("leading empty lines are skipped",
         b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", Ok((None, true))),
        ("a line without a target is rejected",
         b"GET HTTP/1.1\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("a line without a version is rejected",
         b"GET /\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("a line with only a method is rejected",
         b"GET\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("a line without a method is rejected",
         b"/ HTTP/1.1\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("two spaces after the method are rejected",
         b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("two spaces after the target are rejected",
         b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("a space after the version is rejected",
         b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("a space before the method is rejected",
         b" GET / HTTP/1.1\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("a tab as separator is rejected",
         b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("a lowercase version is rejected",
         b"GET / http/1.1\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("HTTP/2.0 is rejected",
         b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("HTTP/1.2 is rejected",
         b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("HTTP/1.10 is rejected",
         b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("HTTP/0.9 is rejected",
         b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("a separator in the method is rejected",
         b"GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("NUL in the method is rejected",
         b"G\0T / HTTP/1.1\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("NUL in the target is rejected",
         b"GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("a control character in the target is rejected",
         b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("DEL in the target is rejected",
         b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("a tab in the target is rejected",
         b"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("a bare CR in the target is rejected",
         b"GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("a space in the target is rejected",
         b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", Err(MalformedRequest)),
        ("a TLS client hello is rejected",
         b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", Err(MalformedRequest)),
        ("CONNECT is not supported",
         b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", Err(MethodNotSupported)),
    ];
    check_request_table("request line", rows);
}

/// A request head of exactly `len` bytes, padded with one field's value.
fn head_of_len(len: usize) -> Vec<u8> {
    let base = b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: \r\n\r\n".len();
    format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(len - base)
    )
    .into_bytes()
}

/// A request head with `n` fields: Host and `n - 1` others.
fn head_with_fields(n: usize) -> Vec<u8> {
    let mut s = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    for i in 1..n {
        s.push_str(&format!("X-{i}: v\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

#[test]
fn heads_over_the_bound_are_431_and_request_lines_over_it_414() {
    use Error::{HeadTooLarge, UriTooLong};
    use Framing::None;
    let long_target = "a".repeat(MAX_HEAD);
    let long_value = "b".repeat(MAX_HEAD);
    let rows: Vec<(&str, Vec<u8>, RequestWant)> = vec![
        (
            "a head exactly at the bound is accepted",
            head_of_len(MAX_HEAD),
            Ok((None, true)),
        ),
        (
            "a head one byte over the bound is 431",
            head_of_len(MAX_HEAD + 1),
            Err(HeadTooLarge),
        ),
        (
            "an unfinished head over the bound is 431",
            format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {long_value}").into_bytes(),
            Err(HeadTooLarge),
        ),
        (
            "a request line over the bound is 414",
            format!("GET /{long_target} HTTP/1.1\r\nHost: a\r\n\r\n").into_bytes(),
            Err(UriTooLong),
        ),
        (
            "an unfinished request line over the bound is 414",
            format!("GET /{long_target}").into_bytes(),
            Err(UriTooLong),
        ),
        (
            "100 fields are accepted",
            head_with_fields(100),
            Ok((None, true)),
        ),
        (
            "101 fields are 431",
            head_with_fields(101),
            Err(HeadTooLarge),
        ),
        (
            "1000 fields are 431",
            head_with_fields(1000),
            Err(HeadTooLarge),
        ),
    ];
    let mut failures = Failures::default();
    for (name, input, want) in &rows {
        check_head(name, input, *want, parse_request_row, &mut failures);
    }
    failures.assert_none("limits");
}

// ---------------------------------------------------------------------------
// Requests: the bytes forwarded
// ---------------------------------------------------------------------------

/// Checks that `input` is one valid head (every prefix incomplete) and that
/// its kept ranges are exactly `want`. Returns the head for further checks.
fn check_forwarded(
    name: &str,
    input: &[u8],
    want: &[u8],
    failures: &mut Failures,
) -> Option<RequestHead> {
    let h = match parse_request_row(input) {
        Ok(Some(h)) if h.head_len == input.len() => h,
        other => {
            failures.add(
                name,
                input,
                format!("gave {}, want the whole input as a head", summary(&other)),
            );
            return None;
        }
    };
    check_prefixes(name, input, None, parse_request_row, failures);
    let got = kept_bytes(input, h.drops.kept(h.head_len));
    if got != want {
        failures.add(
            name,
            input,
            format!("forwarded {}\n    want      {}", show(&got), show(want)),
        );
    }
    Some(h)
}

#[test]
fn hop_by_hop_lines_are_dropped_and_everything_else_kept_byte_for_byte() {
    #[rustfmt::skip]
    let rows: &[(&str, &[u8], &[u8])] = &[
        ("a head without hop-by-hop fields is forwarded whole",
         b"POST /p?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nAccept: */*\r\n\r\n",
         b"POST /p?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nAccept: */*\r\n\r\n"),
        ("odd spacing, case, tabs and obs-text are kept as they came",
         b"GET / HTTP/1.1\r\nhOsT:a\r\nx-ODD:   two  spaces \t\r\nX-Obs:\t\x80\xfe\r\nX-Empty:\r\n\r\n",
         b"GET / HTTP/1.1\r\nhOsT:a\r\nx-ODD:   two  spaces \t\r\nX-Obs:\t\x80\xfe\r\nX-Empty:\r\n\r\n"),
        ("Connection is dropped",
         b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n",
         b"GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n"),
        ("fields named by Connection are dropped, whatever their case",
         b"GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Hop, x-other\r\nx-hop: 1\r\nX-OTHER: 2\r\nX-Kept: 3\r\n\r\n",
         b"GET / HTTP/1.1\r\nHost: a\r\nX-Kept: 3\r\n\r\n"),
        ("fields named by Connection before it are dropped too",
         b"GET / HTTP/1.1\r\nX-Hop: 1\r\nHost: a\r\nConnection: X-Hop\r\n\r\n",
         b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("Keep-Alive is dropped",
         b"GET / HTTP/1.1\r\nHost: a\r\nKeep-Alive: timeout=5\r\n\r\n",
         b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("Proxy-Connection is dropped",
         b"GET / HTTP/1.1\r\nHost: a\r\nProxy-Connection: keep-alive\r\n\r\n",
         b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("TE is dropped",
         b"GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n",
         b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("Trailer is dropped",
         b"POST / HTTP/1.1\r\nHost: a\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n",
         b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("Upgrade without Connection: upgrade is dropped",
         b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
         b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("Upgrade with Connection: upgrade is kept",
         b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
         b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"),
        ("the client's X-Forwarded-Proto is dropped",
         b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\n\r\n",
         b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("a lone X-Forwarded-For line is taken out to be appended to",
         b"GET / HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1\r\nHost: a\r\n\r\n",
         b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("every hop-by-hop line at once, with the rest in order",
         b"GET / HTTP/1.1\r\nConnection: close, X-A\r\nHost: a\r\nKeep-Alive: 1\r\nX-A: 1\r\nProxy-Connection: x\r\nTE: t\r\nAccept: */*\r\nTrailer: y\r\nUpgrade: h2c\r\nX-Forwarded-Proto: http\r\nX-Last: z\r\n\r\n",
         b"GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\nX-Last: z\r\n\r\n"),
        ("an empty hop-by-hop value drops the whole line",
         b"GET / HTTP/1.1\r\nHost: a\r\nKeep-Alive:\r\nTE: \r\nAccept: */*\r\n\r\n",
         b"GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n"),
        ("leading empty lines are not forwarded",
         b"\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
         b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("fields with an underscore in their name are dropped (as nginx does)",
         b"GET / HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 6.6.6.6\r\nTransfer_Encoding: chunked\r\nX-Ok: 1\r\n\r\n",
         b"GET / HTTP/1.1\r\nHost: a\r\nX-Ok: 1\r\n\r\n"),
        ("an h2c upgrade is not offered",
         b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
         b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("an absolute-form target loses its scheme and authority, and the client's Host",
         b"GET http://internal.example/x HTTP/1.1\r\nHost: public\r\nA: b\r\n\r\n",
         b"GET /x HTTP/1.1\r\nA: b\r\n\r\n"),
    ];
    let mut failures = Failures::default();
    for &(name, input, want) in rows {
        check_forwarded(name, input, want, &mut failures);
    }
    failures.assert_none("forwarded bytes");
}

#[test]
fn a_lone_x_forwarded_for_value_is_located_for_appending() {
    let input = b"GET / HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2 \r\nHost: a\r\n\r\n";
    let h = parse_request_row(input).unwrap().unwrap();
    let (a, b) = h.forwarded_for.expect("the value is located");
    assert_eq!(&input[a as usize..b as usize], b"10.0.0.1, 10.0.0.2");
}

/// Whether `head` has `line` as one of its lines (at a line start).
fn has_line(head: &[u8], line: &[u8]) -> bool {
    head.windows(line.len() + 1)
        .any(|w| w[0] == b'\n' && &w[1..] == line)
}

#[test]
fn fields_that_frame_a_request_are_forwarded_even_when_connection_names_them() {
    // Connection may not make the framing hop-by-hop: the balancer reads the
    // body by these fields, so the target must see them too, or a body
    // becomes the next request there. Refusing the request is also safe.
    #[rustfmt::skip]
    let rows: &[(&str, &[u8], &[u8])] = &[
        ("Connection naming Content-Length",
         b"POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\n",
         b"Content-Length: 5\r\n"),
        ("Connection naming Transfer-Encoding",
         b"POST / HTTP/1.1\r\nHost: a\r\nConnection: close, transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n",
         b"Transfer-Encoding: chunked\r\n"),
        ("Connection naming Host",
         b"GET / HTTP/1.1\r\nHost: a\r\nConnection: host\r\n\r\n",
         b"Host: a\r\n"),
    ];
    let mut failures = Failures::default();
    for &(name, input, line) in rows {
        match parse_request_row(input) {
            Err(_) => {}
            Ok(Some(h)) => {
                let forwarded = kept_bytes(input, h.drops.kept(h.head_len));
                if !has_line(&forwarded, line) {
                    failures.add(
                        name,
                        input,
                        format!(
                            "accepted, and the forwarded head lost {}: {}",
                            show(line),
                            show(&forwarded)
                        ),
                    );
                }
            }
            Ok(None) => failures.add(name, input, "incomplete".to_string()),
        }
    }
    failures.assert_none("framing named by Connection");
}

#[test]
fn every_field_named_by_a_long_connection_list_is_dropped() {
    // Nine names: more than the parser may keep room for. Every one of them
    // must still be dropped (or the request refused), never forwarded.
    let input = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: h1, h2, h3, h4, h5, h6, h7, h8, h9\r\n\
                  H1: x\r\nH5: x\r\nH9: secret\r\nAccept: */*\r\n\r\n";
    let mut failures = Failures::default();
    if let Ok(Some(h)) = parse_request_row(input) {
        let forwarded = kept_bytes(input, h.drops.kept(h.head_len));
        let want: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";
        if forwarded != want {
            failures.add(
                "nine names in Connection",
                input,
                format!(
                    "forwarded {}\n    want      {}",
                    show(&forwarded),
                    show(want)
                ),
            );
        }
    }
    failures.assert_none("long Connection list");
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

#[test]
fn response_framing_and_reuse_follow_status_method_and_fields() {
    use Framing::{Chunked, Length, None, UntilClose};
    #[rustfmt::skip]
    let rows: &[(&str, bool, &[u8], ResponseWant)] = &[
        ("Content-Length frames the body",
         false, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Ok((Length(5), true))),
        ("Content-Length 0 means no body",
         false, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", Ok((None, true))),
        ("chunked frames the body",
         false, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Ok((Chunked, true))),
        ("no length at all reads until close and is not reused",
         false, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", Ok((UntilClose, false))),
        ("a final coding that is not chunked reads until close",
         false, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", Ok((UntilClose, false))),
        ("an unknown coding reads until close",
         false, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: bogus\r\n\r\n", Ok((UntilClose, false))),
        ("the response to HEAD has no body whatever its Content-Length",
         true, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Ok((None, true))),
        ("the response to HEAD has no body even if chunked",
         true, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", Ok((None, true))),
        ("the response to HEAD without a length is still reusable",
         true, b"HTTP/1.1 200 OK\r\n\r\n", Ok((None, true))),
        ("100 Continue has no body",
         false, b"HTTP/1.1 100 Continue\r\n\r\n", Ok((None, true))),
        ("103 Early Hints has no body whatever its fields",
         false, b"HTTP/1.1 103 Early Hints\r\nContent-Length: 5\r\n\r\n", Ok((None, true))),
        ("204 has no body whatever its Content-Length",
         false, b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", Ok((None, true))),
        ("204 without a length is still reusable",
         false, b"HTTP/1.1 204 No Content\r\n\r\n", Ok((None, true))),
        ("304 has no body even if chunked",
         false, b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", Ok((None, true))),
        ("Connection: close is not reused",
         false, b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\n", Ok((Length(5), false))),
        ("close among other options is not reused",
         false, b"HTTP/1.1 200 OK\r\nConnection: X-A, CLOSE\r\nContent-Length: 5\r\n\r\n", Ok((Length(5), false))),
        ("HTTP/1.0 without keep-alive is not reused",
         false, b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", Ok((Length(5), false))),
        ("HTTP/1.0 with keep-alive is reused",
         false, b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\n", Ok((Length(5), true))),
        ("HTTP/1.0 with keep-alive but no length is not reused",
         false, b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", Ok((UntilClose, false))),
        ("an empty reason phrase is fine",
         false, b"HTTP/1.1 500 \r\nContent-Length: 1\r\n\r\n", Ok((Length(1), true))),
    ];
    let mut failures = Failures::default();
    for &(name, is_head, input, want) in rows {
        let parse = |b: &[u8]| parse_response(b, is_head);
        check_head(name, input, want, parse, &mut failures);
    }
    failures.assert_none("response framing");
}

#[test]
fn responses_with_conflicting_framing_or_malformed_heads_are_502() {
    #[rustfmt::skip]
    let rows: &[(&str, &[u8])] = &[
        ("two different Content-Length fields",
         b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
        ("a list of different Content-Length values",
         b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n"),
        ("a Content-Length with a plus sign",
         b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n"),
        ("a negative Content-Length",
         b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
        ("a hexadecimal Content-Length",
         b"HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\n"),
        ("a Content-Length with a decimal point",
         b"HTTP/1.1 200 OK\r\nContent-Length: 5.0\r\n\r\n"),
        ("an empty Content-Length",
         b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n"),
        ("a Content-Length with a space inside",
         b"HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n"),
        ("a Content-Length that overflows",
         b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n"),
        ("Content-Length with chunked",
         b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("chunked with Content-Length",
         b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
        ("Content-Length with another coding",
         b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n"),
        ("chunked twice",
         b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("chunked before another coding",
         b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
        ("an empty Transfer-Encoding",
         b"HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n"),
        ("a space before the colon",
         b"HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n"),
        ("obs-fold",
         b"HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 0\r\n\r\n"),
        ("NUL in a value",
         b"HTTP/1.1 200 OK\r\nX-A: b\0c\r\n\r\n"),
        ("a bare CR in a value",
         b"HTTP/1.1 200 OK\r\nX-A: b\rc\r\n\r\n"),
        ("a bare CR in a name",
         b"HTTP/1.1 200 OK\r\nX\rA: b\r\n\r\n"),
        ("a control character in a value",
         b"HTTP/1.1 200 OK\r\nX-A: b\x01c\r\n\r\n"),
        ("a four-digit status",
         b"HTTP/1.1 2000 OK\r\n\r\n"),
        ("a two-digit status",
         b"HTTP/1.1 20 OK\r\n\r\n"),
        ("a status that is not a number",
         b"HTTP/1.1 abc OK\r\n\r\n"),
        ("a missing status",
         b"HTTP/1.1\r\n\r\n"),
        ("a lowercase version",
         b"http/1.1 200 OK\r\n\r\n"),
        ("HTTP/2.0",
         b"HTTP/2.0 200 OK\r\n\r\n"),
        ("HTTP/1.2",
         b"HTTP/1.2 200 OK\r\n\r\n"),
        ("not HTTP at all",
         b"SSH-2.0-OpenSSH_9.6\r\n\r\n"),
        ("identical repeated Content-Length fields",
         b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n"),
        ("a list of identical Content-Length values",
         b"HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n"),
        ("Transfer-Encoding over two fields",
         b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("an empty Transfer-Encoding list element",
         b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n"),
        ("a bare LF ending the status line",
         b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"),
        ("a bare LF ending a field line",
         b"HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n"),
    ];
    let mut failures = Failures::default();
    for &(name, input) in rows {
        let parse = |b: &[u8]| parse_response(b, false);
        check_head(name, input, Err(Error::BadResponse), parse, &mut failures);
    }
    failures.assert_none("bad responses");
}

#[test]
fn fields_that_frame_a_response_are_forwarded_even_when_connection_names_them() {
    // The balancer reads the body by these fields and keeps the client
    // connection: the client must see them too. Refusing (502) is also safe.
    #[rustfmt::skip]
    let rows: &[(&str, &[u8], &[u8])] = &[
        ("Connection naming Content-Length",
         b"HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\n",
         b"Content-Length: 5\r\n"),
        ("Connection naming Transfer-Encoding",
         b"HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n",
         b"Transfer-Encoding: chunked\r\n"),
    ];
    let mut failures = Failures::default();
    for &(name, input, line) in rows {
        match parse_response(input, false) {
            Err(_) => {}
            Ok(Some(h)) => {
                let forwarded = kept_bytes(input, h.drops.kept(h.head_len));
                if !has_line(&forwarded, line) {
                    failures.add(
                        name,
                        input,
                        format!(
                            "accepted, and the forwarded head lost {}: {}",
                            show(line),
                            show(&forwarded)
                        ),
                    );
                }
            }
            Ok(None) => failures.add(name, input, "incomplete".to_string()),
        }
    }
    failures.assert_none("response framing named by Connection");
}

#[test]
fn http10_response_with_transfer_encoding_does_not_reuse_the_connection() {
    // RFC 9112 section 6.1: an HTTP/1.0 message with Transfer-Encoding has
    // faulty framing; the recipient must close the connection after it.
    let input = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n";
    match parse_response(input, false) {
        Err(e) => assert_eq!(e, Error::BadResponse),
        Ok(h) => {
            let h = h.expect("complete");
            assert!(
                !h.reusable,
                "an HTTP/1.0 chunked response was marked reusable ({:?})",
                h.framing
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Chunked bodies
// ---------------------------------------------------------------------------

#[test]
fn valid_chunked_bodies_end_at_their_last_byte_however_they_are_split() {
    #[rustfmt::skip]
    let bodies: &[(&str, &[u8])] = &[
        ("only the last chunk", b"0\r\n\r\n"),
        ("one chunk", b"5\r\nhello\r\n0\r\n\r\n"),
        ("several chunks", b"1\r\na\r\n2\r\nbc\r\n3\r\ndef\r\n0\r\n\r\n"),
        ("uppercase hex", b"A\r\n0123456789\r\n0\r\n\r\n"),
        ("mixed-case hex", b"1f\r\n0123456789012345678901234567890\r\n1F\r\n0123456789012345678901234567890\r\n0\r\n\r\n"),
        ("leading zeros", b"0005\r\nhello\r\n000\r\n\r\n"),
        ("leading zeros do not count towards overflow", b"00000000000000000000001\r\nx\r\n0\r\n\r\n"),
        ("a bare extension name", b"5;done\r\nhello\r\n0\r\n\r\n"),
        ("an extension with a value", b"5;name=value\r\nhello\r\n0\r\n\r\n"),
        ("an extension with a quoted value", b"5;n=\"a;b=c \\\" d\"\r\nhello\r\n0\r\n\r\n"),
        ("several extensions", b"5;a;b=1;c=\"2\"\r\nhello\r\n0\r\n\r\n"),
        ("whitespace before an extension", b"5 ;a\r\nhello\r\n0\t;b=1\r\n\r\n"),
        ("an extension on the last chunk", b"5\r\nhello\r\n0;last=yes\r\n\r\n"),
        ("a long but bounded extension", b"1;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=b\r\nx\r\n0\r\n\r\n"),
        ("one trailer", b"5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n"),
        ("several trailers", b"5\r\nhello\r\n0\r\nX-Sum: 1\r\nExpires: never\r\nY:\r\n\r\n"),
        ("data that looks like framing", b"5\r\n0\r\n\r\n\r\n7\r\n\r\n0\r\n\r\n\r\n0\r\n\r\n"),
        ("binary data", b"4\r\n\0\xff\r\n\r\n0\r\n\r\n"),
    ];
    let mut failures = Failures::default();
    for &(name, body) in bodies {
        check_chunked(name, body, Ok(Some(body.len())), &mut failures);
        // The next message on the connection is not part of the body.
        let followed = [body, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".as_slice()].concat();
        check_chunked(name, &followed, Ok(Some(body.len())), &mut failures);
        let garbage = [body, b"\r\n\n\0zz".as_slice()].concat();
        check_chunked(name, &garbage, Ok(Some(body.len())), &mut failures);
    }
    failures.assert_none("valid chunked bodies");
}

#[test]
fn unfinished_chunked_bodies_are_not_done() {
    #[rustfmt::skip]
    let rows: &[(&str, &[u8])] = &[
        ("nothing yet", b""),
        ("a size without its line end", b"5"),
        ("a size and a CR", b"5\r"),
        ("part of the data", b"5\r\nhel"),
        ("the data without its CRLF", b"5\r\nhello"),
        ("a whole chunk", b"5\r\nhello\r\n"),
        ("an extension without its line end", b"5;a=b"),
        ("the last chunk's line", b"0\r\n"),
        ("the last chunk and a CR", b"0\r\n\r"),
        ("a trailer without the final line", b"0\r\nX: y\r\n"),
        ("the largest size, with no data yet", b"ffffffffffffffff\r\n"),
    ];
    let mut failures = Failures::default();
    for &(name, input) in rows {
        check_chunked(name, input, Ok(None), &mut failures);
    }
    failures.assert_none("unfinished chunked bodies");
}

#[test]
fn malformed_chunked_bodies_give_the_specific_error_however_they_are_split() {
    use ChunkedError::{BadLineEnding, BadSize, TooLong};
    let long_extension = [b"1;".as_slice(), &[b'a'; 5000], b"\r\nx\r\n0\r\n\r\n"].concat();
    let long_trailer = [b"0\r\nX: ".as_slice(), &[b'a'; 17 * 1024], b"\r\n\r\n"].concat();
    let many_trailers = [
        b"0\r\n".as_slice(),
        &b"X-Trailer: 12345\r\n".repeat(1000),
        b"\r\n",
    ]
    .concat();
    #[rustfmt::skip]
    let rows: Vec<(&str, &[u8], ChunkedError)> = vec![
        ("an empty size", b"\r\n", BadSize),
        ("a size that is not hex", b"g\r\n", BadSize),
        ("a 0x prefix", b"0x5\r\nhello\r\n", BadSize),
        ("a negative size", b"-1\r\n", BadSize),
        ("a plus sign", b"+5\r\nhello\r\n", BadSize),
        ("a space before the size", b" 5\r\nhello\r\n", BadSize),
        ("an extension without a size", b";a\r\n", BadSize),
        ("seventeen hex digits overflow", b"10000000000000000\r\n", BadSize),
        ("seventeen f digits overflow", b"fffffffffffffffff\r\n", BadSize),
        ("a bad size after a good chunk", b"1\r\na\r\nz\r\n", BadSize),
        ("a bare LF after the size", b"5\nhello\r\n0\r\n\r\n", BadSize),
        ("a bare LF after an extension", b"5;a=b\nhello\r\n", BadLineEnding),
        ("a CR without LF after the size", b"5\rhello\r\n", BadLineEnding),
        ("data longer than its size", b"5\r\nhello!\r\n0\r\n\r\n", BadLineEnding),
        ("no CRLF after the data", b"5\r\nhello0\r\n\r\n", BadLineEnding),
        ("a bare LF after the data", b"5\r\nhello\n0\r\n\r\n", BadLineEnding),
        ("a CR and junk after the data", b"5\r\nhello\rX\n0\r\n\r\n", BadLineEnding),
        ("a bare LF ending the body", b"0\r\n\n", BadLineEnding),
        ("a CR and junk ending the body", b"0\r\n\rX", BadLineEnding),
        ("a bare LF ending a trailer", b"0\r\nX: y\n\r\n", BadLineEnding),
        ("a bare LF inside a trailer", b"0\r\nX: y\nZ: w\r\n\r\n", BadLineEnding),
        ("a CR and junk in a trailer", b"0\r\nX: y\rZ\r\n\r\n", BadLineEnding),
        ("an over-long extension", &long_extension, TooLong),
        ("an over-long trailer line", &long_trailer, TooLong),
        ("too many trailer bytes in short lines", &many_trailers, TooLong),
    ];
    let mut failures = Failures::default();
    for &(name, input, want) in &rows {
        check_chunked(name, input, Err(want), &mut failures);
    }
    failures.assert_none("malformed chunked bodies");
}

#[test]
fn a_chunk_size_followed_by_anything_but_an_extension_is_bad_size() {
    // chunk = chunk-size [ chunk-ext ] CRLF, and chunk-ext starts (after
    // optional whitespace) with ';'. Anything else after the digits is not a
    // chunk-size line, and another parser may read a different size from it.
    #[rustfmt::skip]
    let rows: &[(&str, &[u8])] = &[
        ("a second number after a space", b"5 6\r\nhello\r\n0\r\n\r\n"),
        ("a word after a space", b"5 junk\r\nhello\r\n0\r\n\r\n"),
        ("a word after a tab", b"5\tjunk\r\nhello\r\n0\r\n\r\n"),
    ];
    let mut failures = Failures::default();
    for &(name, input) in rows {
        check_chunked(name, input, Err(ChunkedError::BadSize), &mut failures);
    }
    failures.assert_none("chunk-size line junk");
}
