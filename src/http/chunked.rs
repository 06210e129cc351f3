//! Finds where a chunked body ends without decoding it: the bytes are
//! forwarded as they arrived, chunk framing included, and this scanner only
//! follows the grammar (RFC 9112 section 7.1) to know when the message is over.

/// Longest chunk extension accepted on one chunk-size line.
const MAX_EXTENSION: u32 = 4096;

/// Most bytes of trailer fields accepted after the last chunk.
const MAX_TRAILERS: u32 = 16 * 1024;

/// Why a chunked body is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedError {
    /// A chunk size that is not hex, is empty, or overflows 64 bits.
    BadSize,
    /// A line that does not end in CRLF where the grammar needs one.
    BadLineEnding,
    /// A chunk extension or the trailer section is too long.
    TooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size; `digits` counts them.
    Size { size: u64, digits: u8 },
    /// Whitespace after the size: more of it, `;` or CR may follow.
    SizeWs { size: u64 },
    /// A `;name=value` extension, up to CR.
    Extension { size: u64, len: u32 },
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
    /// Inside a trailer field line.
    Trailer { used: u32 },
    /// Expecting the LF of a trailer line.
    TrailerLf { used: u32 },
    /// Expecting the LF of the final empty line.
    EndLf,
    /// The body is complete.
    Done,
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
                    if size > (u64::MAX >> 4) {
                        return Err(BadSize);
                    }
                    State::Size {
                        size: (size << 4) | u64::from(d),
                        digits: digits.saturating_add(1),
                    }
                }
                None if digits == 0 => return Err(BadSize),
                None => match b {
                    b'\r' => State::SizeLf { size },
                    b';' => State::Extension { size, len: 1 },
                    b' ' | b'\t' => State::SizeWs { size },
                    _ => return Err(BadSize),
                },
            },
            State::SizeWs { size } => match b {
                b' ' | b'\t' => State::SizeWs { size },
                b';' => State::Extension { size, len: 1 },
                b'\r' => State::SizeLf { size },
                _ => return Err(BadSize),
            },
            State::Extension { size, len } => match b {
                b'\r' => State::SizeLf { size },
                b'\n' => return Err(BadLineEnding),
                _ if len >= MAX_EXTENSION => return Err(TooLong),
                _ => State::Extension { size, len: len + 1 },
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
                _ => State::Trailer { used: used + 1 },
            },
            State::Trailer { used } => match b {
                _ if used >= MAX_TRAILERS => return Err(TooLong),
                b'\r' => State::TrailerLf { used: used + 1 },
                b'\n' => return Err(BadLineEnding),
                _ => State::Trailer { used: used + 1 },
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

#[cfg(test)]
mod tests {
    use super::*;

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
        ];
        for (input, want) in cases {
            assert_eq!(
                body_len_every_split(input),
                Ok(Some(*want)),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn incomplete_bodies_are_not_done() {
        for input in [
            &b"5\r\nhel"[..],
            b"5\r\nhello\r\n",
            b"0\r\n",
            b"0\r\nX: y\r\n",
        ] {
            assert_eq!(body_len_every_split(input), Ok(None));
        }
    }

    #[test]
    fn rejects_malformed_bodies() {
        let cases: &[(&[u8], ChunkedError)] = &[
            (b"\r\n", ChunkedError::BadSize),
            (b"x\r\n", ChunkedError::BadSize),
            (b"-1\r\n", ChunkedError::BadSize),
            (b"5\nhello", ChunkedError::BadSize),
            (b"5\r\nhelloXX", ChunkedError::BadLineEnding),
            (b"5\r\nhello\n0\r\n\r\n", ChunkedError::BadLineEnding),
            (b"0\r\n\n", ChunkedError::BadLineEnding),
            (b"0\r\nX: y\n\r\n", ChunkedError::BadLineEnding),
            (b"1;a\n", ChunkedError::BadLineEnding),
            (b"10000000000000000\r\n", ChunkedError::BadSize),
        ];
        for (input, want) in cases {
            assert_eq!(
                body_len_every_split(input),
                Err(*want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn largest_size_does_not_overflow() {
        let mut s = ChunkedScanner::new();
        assert_eq!(s.scan(b"ffffffffffffffff\r\n"), Ok(18));
        assert!(!s.is_done());
    }

    #[test]
    fn bounds_extensions_and_trailers() {
        let mut long_ext = b"1;".to_vec();
        long_ext.extend(std::iter::repeat_n(b'a', MAX_EXTENSION as usize));
        assert_eq!(
            ChunkedScanner::new().scan(&long_ext),
            Err(ChunkedError::TooLong)
        );

        let mut long_trailer = b"0\r\nX: ".to_vec();
        long_trailer.extend(std::iter::repeat_n(b'a', MAX_TRAILERS as usize));
        assert_eq!(
            ChunkedScanner::new().scan(&long_trailer),
            Err(ChunkedError::TooLong)
        );
    }
}
