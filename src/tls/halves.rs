//! A TLS connection split in two for a tunnel (an upgraded connection
//! that moves bytes both ways at once): each half owns its side of the
//! socket and its buffer, and they share the rustls session, borrowed only
//! between awaits.

use std::cell::RefCell;
use std::io::{self, BufRead, Write};
use std::mem;
use std::rc::Rc;

use bytes::{Buf, BytesMut};
use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Splitable};
use monoio::net::tcp::{TcpOwnedReadHalf, TcpOwnedWriteHalf};
use monoio::net::TcpStream;
use rustls::Connection;

use super::stream::CIPHER_READ;
use crate::stream::{IoFail, ReadHalf, WriteHalf};

/// The reading half: ciphertext in, plaintext out.
pub struct TlsReadHalf {
    tcp: TcpOwnedReadHalf,
    tls: Rc<RefCell<Connection>>,
    cin: BytesMut,
}

/// The writing half: plaintext in, ciphertext out.
pub struct TlsWriteHalf {
    tcp: TcpOwnedWriteHalf,
    tls: Rc<RefCell<Connection>>,
    cout: Vec<u8>,
}

/// Splits a connection (with the ciphertext it has read but not yet fed).
pub fn split(tcp: TcpStream, tls: Connection, cin: BytesMut) -> (TlsReadHalf, TlsWriteHalf) {
    let (read, write) = tcp.into_split();
    let tls = Rc::new(RefCell::new(tls));
    (
        TlsReadHalf {
            tcp: read,
            tls: tls.clone(),
            cin,
        },
        TlsWriteHalf {
            tcp: write,
            tls,
            cout: Vec::new(),
        },
    )
}

impl ReadHalf for TlsReadHalf {
    async fn read_some(&mut self, mut buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        let room = (buf.capacity() - buf.len()).max(1);
        loop {
            {
                let mut tls = self.tls.borrow_mut();
                let mut reader = tls.reader();
                match reader.fill_buf() {
                    Ok(plain) => {
                        let n = plain.len().min(room);
                        buf.extend_from_slice(&plain[..n]);
                        reader.consume(n);
                        return (Ok(n), buf);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return (Err(e), buf),
                }
            }
            if self.cin.is_empty() {
                if self.cin.capacity() < 1024 {
                    self.cin.reserve(CIPHER_READ);
                }
                let owned = mem::take(&mut self.cin);
                let (res, back) = self.tcp.read(owned).await;
                self.cin = back;
                match res {
                    Ok(0) => return (Ok(0), buf),
                    Ok(_) => {}
                    Err(e) => return (Err(e), buf),
                }
            }
            let mut tls = self.tls.borrow_mut();
            let mut rd: &[u8] = &self.cin;
            match tls.read_tls(&mut rd) {
                Ok(n) => self.cin.advance(n),
                Err(e) => return (Err(e), buf),
            }
            if let Err(e) = tls.process_new_packets() {
                return (Err(io::Error::new(io::ErrorKind::InvalidData, e)), buf);
            }
        }
    }
}

impl WriteHalf for TlsWriteHalf {
    async fn write_all(&mut self, buf: BytesMut) -> (Result<(), IoFail>, BytesMut) {
        if self.tls.borrow_mut().writer().write_all(&buf).is_err() {
            return (Err(IoFail::Error), buf);
        }
        (self.flush().await, buf)
    }

    async fn shutdown(&mut self) {
        self.tls.borrow_mut().send_close_notify();
        if self.flush().await.is_ok() {
            let _ = AsyncWriteRent::shutdown(&mut self.tcp).await;
        }
    }
}

impl TlsWriteHalf {
    /// Writes out the ciphertext the session holds.
    async fn flush(&mut self) -> Result<(), IoFail> {
        loop {
            self.cout.clear();
            {
                let mut tls = self.tls.borrow_mut();
                if !tls.wants_write() {
                    return Ok(());
                }
                if tls.write_tls(&mut self.cout).is_err() {
                    return Err(IoFail::Error);
                }
            }
            let owned = mem::take(&mut self.cout);
            let (res, back) = AsyncWriteRentExt::write_all(&mut self.tcp, owned).await;
            self.cout = back;
            res.map_err(IoFail::from)?;
        }
    }
}

/// Plain TCP halves, as monoio splits them.
impl ReadHalf for TcpOwnedReadHalf {
    async fn read_some(&mut self, buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        let len = buf.len();
        let (res, slice) = self.read(buf.slice_mut(len..)).await;
        (res, slice.into_inner())
    }
}

impl WriteHalf for TcpOwnedWriteHalf {
    async fn write_all(&mut self, buf: BytesMut) -> (Result<(), IoFail>, BytesMut) {
        let mut done = 0;
        let mut buf = buf;
        while done < buf.len() {
            let (res, back) = self.write(buf.slice(done..)).await;
            buf = back.into_inner();
            match res {
                Ok(0) => return (Err(IoFail::Closed), buf),
                Ok(n) => done += n,
                Err(e) => return (Err(e.into()), buf),
            }
        }
        (Ok(()), buf)
    }

    async fn shutdown(&mut self) {
        let _ = AsyncWriteRent::shutdown(self).await;
    }
}
