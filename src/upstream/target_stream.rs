//! A connection to a target: plain TCP, or TLS for an `https://` target.
//! One type for both, so that a pool holds either; the request path calls
//! the same [`Io`] operations on it as on a client's stream.

use bytes::{Bytes, BytesMut};
use monoio::net::TcpStream;

use crate::stream::{Gather, Io, IoFail, WriteFail};
use crate::tls::TlsStream;

pub enum TargetStream {
    Plain(TcpStream),
    /// Boxed: a TLS session is large, and most targets are plain.
    Tls(Box<TlsStream>),
}

impl TargetStream {
    /// The TCP stream (under the TLS layer, if any).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            TargetStream::Plain(s) => s,
            TargetStream::Tls(s) => s.tcp(),
        }
    }

    /// Whether bytes wait above the socket that no read has taken (TLS
    /// records received, or plaintext decrypted): such a connection has
    /// said more than its response and is not pooled.
    pub fn has_buffered(&mut self) -> bool {
        match self {
            TargetStream::Plain(_) => false,
            TargetStream::Tls(s) => s.has_buffered(),
        }
    }
}

/// The TLS arms' futures are boxed (an allocation per operation, on TLS
/// targets only): inline, they would double the future of every plain
/// exchange, and with it the memory of every busy connection.
impl Io for TargetStream {
    #[inline]
    async fn read_more(&mut self, buf: &mut BytesMut, min_spare: usize) -> Result<usize, IoFail> {
        match self {
            TargetStream::Plain(s) => s.read_more(buf, min_spare).await,
            TargetStream::Tls(s) => Box::pin(s.read_more(buf, min_spare)).await,
        }
    }

    #[inline]
    async fn write_gather_counted(&mut self, gather: &mut Gather) -> Result<(), WriteFail> {
        match self {
            TargetStream::Plain(s) => s.write_gather_counted(gather).await,
            TargetStream::Tls(s) => Box::pin(s.write_gather_counted(gather)).await,
        }
    }

    async fn write_all(&mut self, bytes: Bytes) -> Result<(), IoFail> {
        match self {
            TargetStream::Plain(s) => Io::write_all(s, bytes).await,
            TargetStream::Tls(s) => Box::pin(Io::write_all(&mut **s, bytes)).await,
        }
    }

    async fn readable(&mut self) -> Result<(), IoFail> {
        match self {
            TargetStream::Plain(s) => Io::readable(s).await,
            TargetStream::Tls(s) => Box::pin(Io::readable(&mut **s)).await,
        }
    }

    async fn shutdown(&mut self) {
        match self {
            TargetStream::Plain(s) => Io::shutdown(s).await,
            TargetStream::Tls(s) => Box::pin(Io::shutdown(&mut **s)).await,
        }
    }
}
