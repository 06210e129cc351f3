//! Finds where a chunked body ends without decoding it: the bytes are
//! forwarded as they arrived, chunk framing included, and this scanner only
//! follows the grammar (RFC 9112 section 7.1) to know when the message is over.
//!
//! Whatever the scanner accepts reaches the next hop verbatim, so it accepts
//! the grammar and nothing more. A byte it lets through that the next hop
//! reads differently (whitespace where a size ends, a trailer line with no
//! colon, a line folded onto the one before) is a place where the two can
//! disagree on where the request ends: request smuggling. So extensions and
//! trailer fields are checked byte by byte though their content is never used:
//!
//! ```text
//! chunked-body    = *chunk last-chunk trailer-section CRLF
//! chunk           = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! last-chunk      = 1*("0") [ chunk-ext ] CRLF
//! chunk-ext       = *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )
//! trailer-section = *( field-name ":" OWS field-value OWS CRLF )
//! ```
//!
//! There is no obs-fold, no whitespace before a colon or at the end of a
//! chunk-size line, and no bare LF: each is refused with an error.

/// Longest chunk extension accepted on one chunk-size line: the bytes after
/// the size digits, whitespace before the first `;` included.
const MAX_EXTENSION: u32 = 4096;

/// Most hex digits in one chunk size, leading zeros included: a size line of
/// endless zeros is refused rather than read forever.
const MAX_SIZE_DIGITS: u8 = 32;

/// Most bytes of trailer fields accepted after the last chunk.
const MAX_TRAILERS: u32 = 16 * 1024;

/// Why a chunked body is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedError {
    /// A chunk size that is not hex, is empty, or overflows 64 bits; or
    /// whitespace after it that does not lead to an extension (`5 \r\n`).
    BadSize,
    /// A line that does not end in CRLF where the grammar needs one.
    BadLineEnding,
    /// A chunk extension that is not `;name`, `;name=token` or
    /// `;name="quoted"` (whitespace allowed only around `;` and `=`).
    BadExtension,
    /// A trailer line that is not `name:value` with a token for a name
    /// (no whitespace before the colon) and only visible bytes, obs-text,
    /// spaces and tabs in the value; or one that starts with whitespace
    /// (obs-fold).
    BadTrailer,
    /// A chunk extension or the trailer section is too long.
    TooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size; `digits` counts them.
    Size { size: u64, digits: u8 },
    /// The rest of a chunk-size line after its digits, up to CR: whitespace
    /// and extensions, `len` bytes of them so far.
    Extension { size: u64, len: u32, at: Ext },
    /// Expecting the LF that ends a chunk-size line.
    SizeLf { size: u64 },
    /// Inside chunk data, with this many bytes left.
    Data { left: u64 },
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart { used: u32 },
    /// Inside a trailer field's name, at least one byte of it seen.
    TrailerName { used: u32 },
    /// Inside a trailer field's value (the colon seen), up to CR.
    TrailerValue { used: u32 },
    /// Expecting the LF of a trailer line.
    TrailerLf { used: u32 },
    /// Expecting the LF of the final empty line.
    EndLf,
    /// The body is complete.
    Done,
}

/// Where in a chunk-size line's extensions the scanner is:
/// `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    /// Whitespace straight after the size: `;` must follow, not CR, since
    /// the grammar allows whitespace only before an extension.
    SizeWs,
    /// After a `;` (and any whitespace): a name must follow.
    BeforeName,
    /// Inside a name.
    Name,
    /// Whitespace after a name: `=` or the next `;` must follow.
    AfterName,
    /// After `=` (and any whitespace): a value must follow.
    BeforeValue,
    /// Inside a token value.
    Token,
    /// Inside a quoted-string value.
    Quoted,
    /// After a backslash in a quoted-string: the escaped byte.
    QuotedPair,
    /// Just after the closing quote of a value.
    AfterQuoted,
    /// Whitespace after a value: the next `;` must follow.
    AfterValue,
}

impl Ext {
    /// Whether a CR may end the line here: after a whole extension, never
    /// after whitespace.
    #[inline]
    fn may_end_line(self) -> bool {
        matches!(self, Ext::Name | Ext::Token | Ext::AfterQuoted)
    }

    /// The step after byte `b`, which is not LF, nor a CR that ends the line.
    fn next(self, b: u8) -> Result<Ext, ChunkedError> {
        use Ext::*;
        Ok(match (self, b) {
            (SizeWs, b' ' | b'\t') => SizeWs,
            (SizeWs, b';') => BeforeName,
            // `5 6`, `5 junk`, `5 \r`: not a chunk-size line, and another
            // parser may read a size from it all the same.
            (SizeWs, _) => return Err(ChunkedError::BadSize),
            (BeforeName, b' ' | b'\t') => BeforeName,
            (BeforeName | Name, _) if is_tchar(b) => Name,
            (Name | AfterName, b' ' | b'\t') => AfterName,
            (Name | AfterName, b'=') => BeforeValue,
            (BeforeValue, b' ' | b'\t') => BeforeValue,
            (BeforeValue, b'"') => Quoted,
            (BeforeValue | Token, _) if is_tchar(b) => Token,
            (Token | AfterQuoted | AfterValue, b' ' | b'\t') => AfterValue,
            (Name | AfterName | Token | AfterQuoted | AfterValue, b';') => BeforeName,
            (Quoted, b'"') => AfterQuoted,
            (Quoted, b'\\') => QuotedPair,
            // qdtext: anything visible but `"` and `\`, spaces, obs-text.
            (Quoted, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff) => Quoted,
            (QuotedPair, b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff) => Quoted,
            _ => return Err(ChunkedError::BadExtension),
        })
    }
}

/// Resumable scanner over a chunked body; feed it the bytes as they come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedScanner {
    state: State,
}

impl Default for ChunkedScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedScanner {
    pub fn new() -> Self {
        ChunkedScanner {
            state: State::Size { size: 0, digits: 0 },
        }
    }

    /// Whether the terminating chunk and trailers have been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Scans `buf`, which continues the body. Returns how many of its bytes
    /// belong to the body: all of them, unless the body ends inside `buf`.
    pub fn scan(&mut self, buf: &[u8]) -> Result<usize, ChunkedError> {
        let mut i = 0;
        while i < buf.len() {
            match self.state {
                State::Data { left } => {
                    // The bulk of the body: skip it without looking.
                    let take = left.min((buf.len() - i) as u64);
                    i += take as usize;
                    self.state = if take == left {
                        State::DataCr
                    } else {
                        State::Data { left: left - take }
                    };
                    continue;
                }
                State::Done => return Ok(i),
                _ => {}
            }
            self.state = self.step(buf[i])?;
            i += 1;
            if self.state == State::Done {
                return Ok(i);
            }
        }
        Ok(i)
    }

    fn step(&self, b: u8) -> Result<State, ChunkedError> {
        use ChunkedError::*;
        Ok(match self.state {
            State::Size { size, digits } => match hex_value(b) {
                Some(d) => {
                    if size > (u64::MAX >> 4) || digits >= MAX_SIZE_DIGITS {
                        return Err(BadSize);
                    }
                    State::Size {
                        size: (size << 4) | u64::from(d),
                        digits: digits + 1,
                    }
                }
                None if digits == 0 => return Err(BadSize),
                None => match b {
                    b'\r' => State::SizeLf { size },
                    b';' => State::Extension {
                        size,
                        len: 1,
                        at: Ext::BeforeName,
                    },
                    b' ' | b'\t' => State::Extension {
                        size,
                        len: 1,
                        at: Ext::SizeWs,
                    },
                    _ => return Err(BadSize),
                },
            },
            State::Extension { size, len, at } => match b {
                b'\r' if at.may_end_line() => State::SizeLf { size },
                b'\n' => return Err(BadLineEnding),
                _ if len >= MAX_EXTENSION => return Err(TooLong),
                _ => State::Extension {
                    size,
                    len: len + 1,
                    at: at.next(b)?,
                },
            },
            State::SizeLf { size } => match (b, size) {
                (b'\n', 0) => State::TrailerStart { used: 0 },
                (b'\n', left) => State::Data { left },
                _ => return Err(BadLineEnding),
            },
            State::DataCr => match b {
                b'\r' => State::DataLf,
                _ => return Err(BadLineEnding),
            },
            State::DataLf => match b {
                b'\n' => State::Size { size: 0, digits: 0 },
                _ => return Err(BadLineEnding),
            },
            State::TrailerStart { used } => match b {
                b'\r' => State::EndLf,
                b'\n' => return Err(BadLineEnding),
                _ if is_tchar(b) => State::TrailerName { used: used + 1 },
                // A space or tab here is obs-fold, which a lenient next hop
                // joins to the line before and a strict one reads as a new
                // line; a colon is a field with no name.
                _ => return Err(BadTrailer),
            },
            State::TrailerName { used } => match b {
                _ if used >= MAX_TRAILERS => return Err(TooLong),
                b':' => State::TrailerValue { used: used + 1 },
                b'\n' => return Err(BadLineEnding),
                _ if is_tchar(b) => State::TrailerName { used: used + 1 },
                // Whitespace before the colon, or a line with no colon at
                // all (`GET /next HTTP/1.1`).
                _ => return Err(BadTrailer),
            },
            State::TrailerValue { used } => match b {
                _ if used >= MAX_TRAILERS => return Err(TooLong),
                b'\r' => State::TrailerLf { used: used + 1 },
                b'\n' => return Err(BadLineEnding),
                // OWS and field-content: visible bytes, spaces, obs-text.
                b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => State::TrailerValue { used: used + 1 },
                _ => return Err(BadTrailer),
            },
            State::TrailerLf { used } => match b {
                b'\n' => State::TrailerStart { used: used + 1 },
                _ => return Err(BadLineEnding),
            },
            State::EndLf => match b {
                b'\n' => State::Done,
                _ => return Err(BadLineEnding),
            },
            State::Data { .. } | State::Done => unreachable!("handled by scan"),
        })
    }
}

#[inline]
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A byte of a token (RFC 9110 section 5.6.2): extension names and values,
/// trailer field names, `Upgrade` protocols.
#[inline]
pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChunkedError::*;

    /// Bytes that may follow a body on the connection: the next request.
    const NEXT: &[u8] = b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n";

    /// Scans `input` in two pieces split at `at`; returns the body length
    /// found, or None when the body did not end.
    fn scan_split(input: &[u8], at: usize) -> Result<Option<usize>, ChunkedError> {
        let mut s = ChunkedScanner::new();
        let n1 = s.scan(&input[..at])?;
        if s.is_done() {
            return Ok(Some(n1));
        }
        assert_eq!(n1, at);
        let n2 = s.scan(&input[at..])?;
        Ok(s.is_done().then_some(at + n2))
    }

    fn body_len_every_split(input: &[u8]) -> Result<Option<usize>, ChunkedError> {
        let whole = scan_split(input, input.len());
        for at in 0..=input.len() {
            assert_eq!(scan_split(input, at), whole, "split at {at}");
        }
        // One byte at a time, too.
        let mut s = ChunkedScanner::new();
        let mut total = 0;
        for &b in input {
            match s.scan(&[b]) {
                Ok(n) => total += n,
                Err(e) => {
                    assert_eq!(whole, Err(e));
                    return whole;
                }
            }
            if s.is_done() {
                break;
            }
        }
        assert_eq!(whole, Ok(s.is_done().then_some(total)));
        whole
    }

    /// Each of `bodies` is a whole chunked body: it ends at its last byte,
    /// alone and with the next request after it, however it is split.
    fn assert_complete(bodies: &[&[u8]]) {
        for body in bodies {
            let shown = body.escape_ascii();
            assert_eq!(body_len_every_split(body), Ok(Some(body.len())), "{shown}");
            let followed = [body, NEXT].concat();
            assert_eq!(
                body_len_every_split(&followed),
                Ok(Some(body.len())),
                "{shown} followed by the next request"
            );
        }
    }

    /// Each input is refused with its error, however it is split.
    fn assert_refused(cases: &[(&[u8], ChunkedError)]) {
        for (input, want) in cases {
            assert_eq!(
                body_len_every_split(input),
                Err(*want),
                "{}",
                input.escape_ascii()
            );
        }
    }

    #[test]
    fn finds_the_end_of_valid_bodies() {
        let cases: &[(&[u8], usize)] = &[
            (b"0\r\n\r\n", 5),
            (b"5\r\nhello\r\n0\r\n\r\n", 15),
            (b"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n", 15),
            (b"A\r\n0123456789\r\n0\r\n\r\n", 20),
            (b"a;name=value\r\n0123456789\r\n0\r\n\r\n", 31),
            (b"3 ; ext\r\nabc\r\n0\r\n\r\n", 19),
            (b"3\r\nabc\r\n0\r\nExpires: never\r\nX: y\r\n\r\n", 35),
            (b"000\r\n\r\n", 7),
            (b"5 ;a=b\r\nhello\r\n0\r\n\r\n", 20),
            (
                b"5;a = \"x\\\"y\"\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
                26,
            ),
            (b"5\t;\ta\t=\tb ; c\r\nhello\r\n0 ;d\r\n\r\n", 30),
        ];
        for (input, want) in cases {
            assert_eq!(
                body_len_every_split(input),
                Ok(Some(*want)),
                "{}",
                input.escape_ascii()
            );
        }
    }

    #[test]
    fn accepts_every_extension_the_grammar_allows() {
        assert_complete(&[
            // Whitespace (BWS) before `;`, around `=`, after `;`.
            b"5 ;a=b\r\nhello\r\n0\r\n\r\n",
            b"5\t \t;a\r\nhello\r\n0\r\n\r\n",
            b"5; a\r\nhello\r\n0\r\n\r\n",
            b"5;a =b\r\nhello\r\n0\r\n\r\n",
            b"5;a= b\r\nhello\r\n0\r\n\r\n",
            b"5;a = \"x\\\"y\"\r\nhello\r\n0\r\n\r\n",
            // Several, with whitespace between them.
            b"5;a;b=1;c=\"2\"\r\nhello\r\n0\r\n\r\n",
            b"5;a ;b=1 ;c=\"2\" ;d\r\nhello\r\n0\r\n\r\n",
            b"5\t;\ta\t=\tb\t;\tc\r\nhello\r\n0\r\n\r\n",
            // Every tchar, in a name and in a token value.
            b"5;!#$%&'*+-.^_`|~09AZaz=!#$%&'*+-.^_`|~09AZaz\r\nhello\r\n0\r\n\r\n",
            // Quoted strings: empty, every kind of qdtext, every kind of
            // quoted-pair, and what would be framing outside the quotes.
            b"5;a=\"\"\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"\t !#[]~\x80\xff\"\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"\\\"\\\\\\\t\\ \\a\\\x80\\\xff\"\r\nhello\r\n0\r\n\r\n",
            b"5;a=\";b=c, d=e\"\r\nhello\r\n0\r\n\r\n",
            // On the last chunk.
            b"0;last\r\n\r\n",
            b"00 ; last = \"yes\"\r\nX: y\r\n\r\n",
        ]);
    }

    #[test]
    fn refuses_extensions_the_grammar_does_not_allow() {
        assert_refused(&[
            // Whitespace after the size that leads to no extension.
            (b"5 \r\nhello\r\n0\r\n\r\n", BadSize),
            (b"5\t\r\nhello\r\n0\r\n\r\n", BadSize),
            (b"0 \r\n\r\n", BadSize),
            (b"5 6\r\nhello\r\n", BadSize),
            // Whitespace at the end of the line, after an extension.
            (b"5;a \r\nhello\r\n", BadExtension),
            (b"5;a=b \r\nhello\r\n", BadExtension),
            (b"5;a=\"b\"\t\r\nhello\r\n", BadExtension),
            (b"5 ; \r\nhello\r\n", BadExtension),
            // A name is required; a value too, after `=`.
            (b"5;\r\nhello\r\n", BadExtension),
            (b"5;;a\r\nhello\r\n", BadExtension),
            (b"5;a;\r\nhello\r\n", BadExtension),
            (b"5;=b\r\nhello\r\n", BadExtension),
            (b"5;a=\r\nhello\r\n", BadExtension),
            (b"5;a==b\r\nhello\r\n", BadExtension),
            (b"5;a b\r\nhello\r\n", BadExtension),
            (b"5;a=b c\r\nhello\r\n", BadExtension),
            (b"5;a=b,c\r\nhello\r\n", BadExtension),
            // Bytes that are not tchar in a name or token value.
            (b"5;a\0\r\nhello\r\n", BadExtension),
            (b"5;a=\0\r\nhello\r\n", BadExtension),
            (b"5;a=b\x7f\r\nhello\r\n", BadExtension),
            (b"5;a\x80\r\nhello\r\n", BadExtension),
            (b"5;a=\xff\r\nhello\r\n", BadExtension),
            (b"5;a=x\"y\"\r\nhello\r\n", BadExtension),
            (b"5;a\x0b=b\r\nhello\r\n", BadExtension),
            // Quoted strings: unterminated, control bytes, bad escapes,
            // bytes after the closing quote.
            (b"5;a=\"x\r\nhello\r\n0\r\n\r\n", BadExtension),
            (b"5;a=\"\r\nhello\r\n", BadExtension),
            (b"5;a=\"x\0\"\r\nhello\r\n", BadExtension),
            (b"5;a=\"x\x7f\"\r\nhello\r\n", BadExtension),
            (b"5;a=\"\\\0\"\r\nhello\r\n", BadExtension),
            (b"5;a=\"\\\r\nhello\r\n", BadExtension),
            (b"5;a=\"x\"y\r\nhello\r\n", BadExtension),
            (b"5;a=\"x\"\"y\"\r\nhello\r\n", BadExtension),
            // A bare LF, anywhere in the line.
            (b"5;a\nhello\r\n", BadLineEnding),
            (b"5; \nhello\r\n", BadLineEnding),
            (b"5;a=\"x\nhello\r\n", BadLineEnding),
            (b"5;a=\"\\\nhello\r\n", BadLineEnding),
            (b"5 \nhello\r\n", BadLineEnding),
        ]);
    }

    #[test]
    fn accepts_trailer_field_lines() {
        assert_complete(&[
            b"0\r\nX:y\r\n\r\n",
            b"0\r\nX:\r\n\r\n",
            b"0\r\nX: \t a  b \t\r\n\r\n",
            b"0\r\nX-Obs: \x80\xff\r\n\r\n",
            b"0\r\n!#$%&'*+-.^_`|~09AZaz:v\r\n\r\n",
            b"0\r\nX: a:b \"c\\\" ()<>@,;=?[]{}/\r\n\r\n",
            b"5\r\nhello\r\n0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
        ]);
    }

    #[test]
    fn refuses_trailers_that_are_not_field_lines() {
        assert_refused(&[
            // The smuggling of the security review: a request line and an
            // obs-folded field, which a lenient next hop may read as a
            // second request.
            (
                b"0\r\nGET /smuggled HTTP/1.1\r\n Host: x\r\n\r\n",
                BadTrailer,
            ),
            // No name, no colon, whitespace before the colon.
            (b"0\r\n:x\r\n\r\n", BadTrailer),
            (b"0\r\nX\r\n\r\n", BadTrailer),
            (b"0\r\nX :y\r\n\r\n", BadTrailer),
            (b"0\r\nX\t:y\r\n\r\n", BadTrailer),
            // A line starting with whitespace: obs-fold, or a field after it.
            (b"0\r\nX: y\r\n z\r\n\r\n", BadTrailer),
            (b"0\r\nX: y\r\n\tz\r\n\r\n", BadTrailer),
            (b"0\r\n X: y\r\n\r\n", BadTrailer),
            (b"0\r\n \r\n\r\n", BadTrailer),
            // Bytes that are not tchar in a name.
            (b"0\r\nX\0: y\r\n\r\n", BadTrailer),
            (b"0\r\nX(: y\r\n\r\n", BadTrailer),
            (b"0\r\n\x80: y\r\n\r\n", BadTrailer),
            // Control bytes in a value.
            (b"0\r\nX: a\0b\r\n\r\n", BadTrailer),
            (b"0\r\nX: \x7f\r\n\r\n", BadTrailer),
            (b"0\r\nX: \x0b\r\n\r\n", BadTrailer),
            (b"0\r\nX: a\x1bb\r\n\r\n", BadTrailer),
            // Bare LF and lone CR.
            (b"0\r\nX: y\nZ: w\r\n\r\n", BadLineEnding),
            (b"0\r\nX\nZ: w\r\n\r\n", BadLineEnding),
            (b"0\r\nX: y\rZ\r\n\r\n", BadLineEnding),
        ]);
    }

    #[test]
    fn incomplete_bodies_are_not_done() {
        for input in [
            &b"5\r\nhel"[..],
            b"5\r\nhello\r\n",
            b"0\r\n",
            b"0\r\nX: y\r\n",
            b"5 ",
            b"5;a=\"x\\",
            b"0\r\nX",
        ] {
            assert_eq!(body_len_every_split(input), Ok(None));
        }
    }

    #[test]
    fn rejects_malformed_bodies() {
        assert_refused(&[
            (b"\r\n", BadSize),
            (b"x\r\n", BadSize),
            (b"-1\r\n", BadSize),
            (b"5\nhello", BadSize),
            (b"5\r\nhelloXX", BadLineEnding),
            (b"5\r\nhello\n0\r\n\r\n", BadLineEnding),
            (b"0\r\n\n", BadLineEnding),
            (b"0\r\nX: y\n\r\n", BadLineEnding),
            (b"1;a\n", BadLineEnding),
            (b"10000000000000000\r\n", BadSize),
        ]);
    }

    #[test]
    fn largest_size_does_not_overflow() {
        let mut s = ChunkedScanner::new();
        assert_eq!(s.scan(b"ffffffffffffffff\r\n"), Ok(18));
        assert!(!s.is_done());
    }

    #[test]
    fn endless_leading_zeros_are_refused() {
        let mut ok = "0".repeat(MAX_SIZE_DIGITS as usize - 1);
        ok.push_str("5\r\nhello\r\n0\r\n\r\n");
        assert_eq!(body_len_every_split(ok.as_bytes()), Ok(Some(ok.len())));
        let zeros = "0".repeat(MAX_SIZE_DIGITS as usize + 1);
        assert_eq!(
            ChunkedScanner::new().scan(zeros.as_bytes()),
            Err(ChunkedError::BadSize)
        );
    }

    #[test]
    fn bounds_extensions_and_trailers() {
        let mut long_ext = b"1;".to_vec();
        long_ext.extend(std::iter::repeat_n(b'a', MAX_EXTENSION as usize));
        assert_eq!(ChunkedScanner::new().scan(&long_ext), Err(TooLong));

        // The bound counts the whole line after the size, `;` included...
        let mut longest_ext = b"1;".to_vec();
        longest_ext.extend(std::iter::repeat_n(b'a', MAX_EXTENSION as usize - 1));
        longest_ext.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        let len = longest_ext.len();
        assert_eq!(ChunkedScanner::new().scan(&longest_ext), Ok(len));

        // ...and whitespace before it, which alone could go on for ever.
        let mut long_ws = b"1".to_vec();
        long_ws.extend(std::iter::repeat_n(b' ', MAX_EXTENSION as usize + 1));
        assert_eq!(ChunkedScanner::new().scan(&long_ws), Err(TooLong));

        let mut long_trailer = b"0\r\nX: ".to_vec();
        long_trailer.extend(std::iter::repeat_n(b'a', MAX_TRAILERS as usize));
        assert_eq!(ChunkedScanner::new().scan(&long_trailer), Err(TooLong));

        let mut long_name = b"0\r\n".to_vec();
        long_name.extend(std::iter::repeat_n(b'X', MAX_TRAILERS as usize + 1));
        assert_eq!(ChunkedScanner::new().scan(&long_name), Err(TooLong));
    }
}
