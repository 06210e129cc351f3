//! A TLS connection over a TCP stream: rustls's sans-IO `Connection` fed
//! through the same owned-buffer reads and writes as a plain stream, so that
//! the proxy's driver runs over either (see [`crate::stream::Io`]).
//!
//! Why not monoio-rustls: it writes one iovec per call (a record and a
//! syscall for each part of a gathered write), it has no cancelable read
//! (parking an idle connection could lose bytes), and a read cut by a
//! deadline loses its ciphertext buffer without saying so. Here a gathered
//! write is one `write_vectored` into rustls (records span the parts) and
//! one socket write; a cancelable read keeps what arrived; and ciphertext
//! that has been read but not yet decrypted stays in `cin` across calls.

use std::io::{self, BufRead, IoSlice, Write};
use std::mem;

use bytes::{Buf, Bytes, BytesMut};
use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, CancelHandle, CancelableAsyncReadRent};
use monoio::net::TcpStream;
use rustls::Connection;

use super::halves::{TlsReadHalf, TlsWriteHalf};
use crate::stream::{ClientStream, Gather, Halves, Io, IoFail, WriteFail};

/// Room kept for one read of ciphertext: a whole record with its framing.
pub(super) const CIPHER_READ: usize = 16 * 1024 + 512;

/// Most parts given to rustls in one `write_vectored`.
const MAX_PARTS: usize = 16;

/// What stopped a TLS step.
#[derive(Debug)]
pub enum Fault {
    /// The socket failed, closed or timed out.
    Io(IoFail),
    /// The peer broke the protocol, or rustls refused it.
    Tls(rustls::Error),
}

impl From<IoFail> for Fault {
    fn from(e: IoFail) -> Fault {
        Fault::Io(e)
    }
}

impl From<Fault> for IoFail {
    fn from(f: Fault) -> IoFail {
        match f {
            Fault::Io(e) => e,
            Fault::Tls(_) => IoFail::Error,
        }
    }
}

/// One TLS connection (either side) over its TCP stream.
pub struct TlsStream {
    tcp: TcpStream,
    tls: Connection,
    /// Ciphertext received and not yet handed to rustls.
    cin: BytesMut,
    /// Ciphertext on its way out; empty between writes, kept for its room.
    cout: Vec<u8>,
    /// A write failed after part of it went out: the stream is done.
    broken: bool,
}

impl TlsStream {
    /// Wraps a connection whose handshake has not started yet.
    pub fn new(tcp: TcpStream, tls: Connection) -> TlsStream {
        TlsStream::with_received(tcp, tls, BytesMut::new())
    }

    /// [`TlsStream::new`] with the first bytes the peer sent already read
    /// (behind a PROXY protocol header, say).
    pub fn with_received(tcp: TcpStream, mut tls: Connection, received: BytesMut) -> TlsStream {
        // Plaintext written is encrypted at once, never refused for room.
        tls.set_buffer_limit(None);
        TlsStream {
            tcp,
            tls,
            cin: received,
            cout: Vec::new(),
            broken: false,
        }
    }

    /// The TCP stream under the TLS layer (for readiness and peeks).
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// The rustls connection (negotiated protocol, resumption, ...).
    pub fn session(&self) -> &Connection {
        &self.tls
    }

    /// Runs the handshake to its end, sending what rustls has to say and
    /// reading what it needs. Bytes the peer sent after its part (a request
    /// right behind a client's `Finished`) stay for the first read.
    ///
    /// A TLS 1.3 server's session tickets, all it has left to send once the
    /// client's `Finished` is in, wait for the first response and go out
    /// in the same write: a write and a segment fewer per connection.
    pub async fn handshake(&mut self) -> Result<(), Fault> {
        loop {
            if !self.tls.is_handshaking() && self.tickets_can_wait() {
                return Ok(());
            }
            if self.tls.wants_write() {
                self.flush().await.map_err(|e| Fault::Io(e.fail))?;
            }
            if !self.tls.is_handshaking() {
                return Ok(());
            }
            if self.cin.is_empty() {
                self.read_cipher(None)
                    .await
                    .map_err(|e| Fault::Io(fail_of(&e)))?;
            }
            if let Err(e) = self.feed() {
                // rustls queued an alert saying why: send it, best effort.
                if let Fault::Tls(_) = e {
                    let _ = self.flush().await;
                }
                return Err(e);
            }
        }
    }

    /// Whether what is left to send after the handshake (TLS 1.3 session
    /// tickets, on the server's side) may wait for the next write.
    fn tickets_can_wait(&self) -> bool {
        matches!(self.tls, Connection::Server(_))
            && self.tls.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3)
    }

    /// Waits for the peer's first bytes and returns the first (a client
    /// that speaks plain HTTP to a TLS port starts with a method's letter;
    /// TLS starts with a handshake record, 22).
    pub async fn first_byte(&mut self) -> Result<u8, IoFail> {
        if self.cin.is_empty() {
            self.read_cipher(None).await.map_err(|e| fail_of(&e))?;
        }
        Ok(self.cin[0])
    }

    /// The TCP stream, the TLS layer given up (to answer in plain text).
    pub fn into_tcp(self) -> TcpStream {
        self.tcp
    }

    /// Whether bytes wait that no read has taken: plaintext decrypted, or
    /// ciphertext received. A pooled connection must hold neither.
    pub fn has_buffered(&mut self) -> bool {
        if !self.cin.is_empty() {
            return true;
        }
        !matches!(self.tls.reader().fill_buf(), Err(ref e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Moves up to `max` decrypted bytes to the end of `buf`. `None` when
    /// rustls holds none; `Some(Ok(0))` when the peer closed the session.
    fn take_plain(&mut self, buf: &mut BytesMut, max: usize) -> Option<Result<usize, IoFail>> {
        let mut reader = self.tls.reader();
        match reader.fill_buf() {
            Ok(plain) => {
                let n = plain.len().min(max);
                buf.extend_from_slice(&plain[..n]);
                reader.consume(n);
                Some(Ok(n))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            // Closed without close_notify, or the session failed before.
            Err(_) => Some(Err(IoFail::Closed)),
        }
    }

    /// Reads ciphertext from the socket into `cin`, cancelable with
    /// `cancel` (the read is still awaited, so nothing is lost). A closed
    /// socket is `UnexpectedEof`; a cancelled read keeps its `ECANCELED`.
    async fn read_cipher(&mut self, cancel: Option<CancelHandle>) -> io::Result<()> {
        if self.broken {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if self.cin.capacity() - self.cin.len() < 1024 {
            self.cin.reserve(CIPHER_READ);
        }
        let owned = mem::take(&mut self.cin);
        let len = owned.len();
        let (res, slice) = match cancel {
            None => self.tcp.read(owned.slice_mut(len..)).await,
            Some(handle) => {
                self.tcp
                    .cancelable_read(owned.slice_mut(len..), handle)
                    .await
            }
        };
        self.cin = slice.into_inner();
        match res {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Hands the ciphertext in `cin` (some of it, as much as rustls takes)
    /// to rustls and processes the records that are complete.
    fn feed(&mut self) -> Result<(), Fault> {
        let mut rd: &[u8] = &self.cin;
        let n = self
            .tls
            .read_tls(&mut rd)
            .map_err(|_| Fault::Io(IoFail::Error))?;
        self.cin.advance(n);
        self.tls.process_new_packets().map_err(Fault::Tls)?;
        Ok(())
    }

    /// Reads ciphertext if none waits and feeds it to rustls. What rustls
    /// has to say back (a key update, tickets) goes out with the next
    /// write; an alert that ends the session, at once.
    async fn fill(&mut self, cancel: Option<CancelHandle>) -> io::Result<()> {
        if self.cin.is_empty() {
            self.read_cipher(cancel).await?;
        }
        if self.feed().is_err() {
            let _ = self.flush().await;
            return Err(io::ErrorKind::InvalidData.into());
        }
        Ok(())
    }

    /// Writes out every byte of ciphertext rustls holds. On failure, says
    /// whether some went out.
    async fn flush(&mut self) -> Result<(), WriteFail> {
        let mut partial = false;
        let fail = |fail, partial| WriteFail { fail, partial };
        if self.broken {
            return Err(fail(IoFail::Error, false));
        }
        while self.tls.wants_write() {
            self.cout.clear();
            if self.tls.write_tls(&mut self.cout).is_err() {
                self.broken = true;
                return Err(fail(IoFail::Error, partial));
            }
            let mut done = 0;
            while done < self.cout.len() {
                let owned = mem::take(&mut self.cout);
                let (res, back) = self.tcp.write(owned.slice(done..)).await;
                self.cout = back.into_inner();
                match res {
                    Ok(0) => {
                        self.broken = true;
                        return Err(fail(IoFail::Closed, partial));
                    }
                    Ok(n) => {
                        done += n;
                        partial = true;
                    }
                    Err(e) => {
                        self.broken = true;
                        return Err(fail(e.into(), partial));
                    }
                }
            }
        }
        self.cout.clear();
        Ok(())
    }

    /// Encrypts `parts` (records span them) and writes them out.
    async fn write_parts(&mut self, parts: &[Bytes]) -> Result<(), WriteFail> {
        for group in parts.chunks(MAX_PARTS) {
            let mut slices = [IoSlice::new(&[]); MAX_PARTS];
            for (slot, part) in slices.iter_mut().zip(group) {
                *slot = IoSlice::new(part);
            }
            let slices = &slices[..group.len()];
            let total: usize = group.iter().map(Bytes::len).sum();
            let mut writer = self.tls.writer();
            let n = writer.write_vectored(slices).unwrap_or(0);
            // With no buffer limit rustls takes all; anything else is a
            // session that failed before.
            if n != total {
                self.broken = true;
                return Err(WriteFail {
                    fail: IoFail::Error,
                    partial: false,
                });
            }
        }
        self.flush().await
    }

    /// Appends decrypted bytes to `buf` (room for `min_spare` made first).
    pub async fn read_more(
        &mut self,
        buf: &mut BytesMut,
        min_spare: usize,
    ) -> Result<usize, IoFail> {
        if buf.capacity() - buf.len() < min_spare {
            buf.reserve(min_spare);
        }
        let room = (buf.capacity() - buf.len()).max(1);
        loop {
            if let Some(got) = self.take_plain(buf, room) {
                return match got {
                    Ok(0) => Err(IoFail::Closed),
                    other => other,
                };
            }
            self.fill(None).await.map_err(|e| fail_of(&e))?;
        }
    }

    /// [`Self::read_more`] into `buf` from its start, cancelable: the
    /// socket read is cancelled, not dropped, so nothing that arrived is
    /// lost (a record cut in two waits in `cin`). Cancelled reads end with
    /// `ECANCELED`.
    pub async fn read_cancelable(
        &mut self,
        mut buf: BytesMut,
        cancel: CancelHandle,
    ) -> (io::Result<usize>, BytesMut) {
        let room = buf.capacity().max(1);
        loop {
            if let Some(got) = self.take_plain(&mut buf, room) {
                return match got {
                    Ok(n) => (Ok(n), buf),
                    Err(_) => (Ok(0), buf),
                };
            }
            if let Err(e) = self.fill(Some(cancel.clone())).await {
                return (Err(e), buf);
            }
        }
    }

    /// Waits until a read would find something: decrypted bytes already
    /// here, or bytes on the socket.
    pub async fn readable(&mut self) -> Result<(), IoFail> {
        if self.has_buffered() {
            return Ok(());
        }
        self.tcp.readable(true).await.map_err(IoFail::from)
    }

    /// Writes every part of `gather` and leaves it empty.
    pub async fn write_gather_counted(&mut self, gather: &mut Gather) -> Result<(), WriteFail> {
        let res = self.write_parts(gather.parts()).await;
        gather.clear();
        res
    }

    /// Writes all of `bytes`.
    pub async fn write_all(&mut self, bytes: Bytes) -> Result<(), IoFail> {
        self.write_parts(&[bytes]).await.map_err(|e| e.fail)
    }

    /// Sends `close_notify` and shuts the socket down for writing.
    pub async fn shutdown(&mut self) {
        self.tls.send_close_notify();
        if self.flush().await.is_ok() {
            let _ = AsyncWriteRent::shutdown(&mut self.tcp).await;
        }
    }
}

impl Io for TlsStream {
    async fn read_more(&mut self, buf: &mut BytesMut, min_spare: usize) -> Result<usize, IoFail> {
        TlsStream::read_more(self, buf, min_spare).await
    }

    async fn write_gather_counted(&mut self, gather: &mut Gather) -> Result<(), WriteFail> {
        TlsStream::write_gather_counted(self, gather).await
    }

    async fn write_all(&mut self, bytes: Bytes) -> Result<(), IoFail> {
        TlsStream::write_all(self, bytes).await
    }

    async fn readable(&mut self) -> Result<(), IoFail> {
        TlsStream::readable(self).await
    }

    async fn shutdown(&mut self) {
        TlsStream::shutdown(self).await
    }
}

impl ClientStream for TlsStream {
    const TLS: bool = true;

    async fn goodbye(&mut self) {
        self.tls.send_close_notify();
        let _ = self.flush().await;
    }

    async fn read_cancelable(
        &mut self,
        buf: BytesMut,
        cancel: CancelHandle,
    ) -> (io::Result<usize>, BytesMut) {
        TlsStream::read_cancelable(self, buf, cancel).await
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.tcp().local_addr()
    }

    fn socket(&self) -> &TcpStream {
        self.tcp()
    }
}

/// Split for a tunnel that moves bytes both ways at once.
impl Halves for TlsStream {
    type Read = TlsReadHalf;
    type Write = TlsWriteHalf;
    fn into_halves(self) -> (TlsReadHalf, TlsWriteHalf) {
        super::halves::split(self.tcp, self.tls, self.cin)
    }
}

/// What a failed read of the socket means to the proxy.
fn fail_of(e: &io::Error) -> IoFail {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => IoFail::Closed,
        io::ErrorKind::ConnectionRefused => IoFail::Refused,
        io::ErrorKind::TimedOut => IoFail::TimedOut,
        _ => IoFail::Error,
    }
}
