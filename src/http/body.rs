//! Body framing: how a message's body is delimited, and a tracker that says
//! which of the bytes arriving after the head belong to the body.

use super::chunked::{ChunkedError, ChunkedScanner};

/// How a message body is delimited (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// Exactly this many bytes (never 0: that is `None`).
    Length(u64),
    /// Chunked transfer coding; forwarded with its framing.
    Chunked,
    /// Everything until the connection closes (responses only).
    UntilClose,
}

/// Progress through one body, fed the bytes as they arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyProgress {
    Length { left: u64 },
    Chunked(ChunkedScanner),
    UntilClose,
    Done,
}

impl BodyProgress {
    pub fn new(framing: Framing) -> BodyProgress {
        match framing {
            Framing::None => BodyProgress::Done,
            Framing::Length(n) => BodyProgress::Length { left: n },
            Framing::Chunked => BodyProgress::Chunked(ChunkedScanner::new()),
            Framing::UntilClose => BodyProgress::UntilClose,
        }
    }

    /// Whether the whole body has been seen. A body read until close is
    /// never done by its bytes: the caller ends it at end of stream.
    #[inline]
    pub fn is_done(&self) -> bool {
        match self {
            BodyProgress::Done => true,
            BodyProgress::Chunked(s) => s.is_done(),
            _ => false,
        }
    }

    /// Takes the body's bytes from the start of `buf`; returns how many
    /// belong to this body (fewer than `buf.len()` only when it ends there).
    #[inline]
    pub fn advance(&mut self, buf: &[u8]) -> Result<usize, ChunkedError> {
        match self {
            BodyProgress::Length { left } => {
                let take = (*left).min(buf.len() as u64);
                *left -= take;
                if *left == 0 {
                    *self = BodyProgress::Done;
                }
                Ok(take as usize)
            }
            BodyProgress::Chunked(scanner) => scanner.scan(buf),
            BodyProgress::UntilClose => Ok(buf.len()),
            BodyProgress::Done => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_takes_exactly_its_bytes() {
        let mut p = BodyProgress::new(Framing::Length(5));
        assert_eq!(p.advance(b"abc"), Ok(3));
        assert!(!p.is_done());
        assert_eq!(p.advance(b"deNEXT"), Ok(2));
        assert!(p.is_done());
        assert_eq!(p.advance(b"more"), Ok(0));
    }

    #[test]
    fn none_is_done_at_once() {
        let mut p = BodyProgress::new(Framing::None);
        assert!(p.is_done());
        assert_eq!(p.advance(b"GET"), Ok(0));
    }

    #[test]
    fn until_close_takes_everything() {
        let mut p = BodyProgress::new(Framing::UntilClose);
        assert_eq!(p.advance(b"abc"), Ok(3));
        assert!(!p.is_done());
    }

    #[test]
    fn chunked_stops_at_the_last_chunk() {
        let mut p = BodyProgress::new(Framing::Chunked);
        assert_eq!(p.advance(b"3\r\nabc\r\n0\r\n\r\nNEXT"), Ok(13));
        assert!(p.is_done());
    }
}
