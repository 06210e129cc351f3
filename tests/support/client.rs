//! [`Client`]: a raw HTTP/1.1 client over one blocking connection, to send
//! exactly the bytes a test wants and read responses one at a time.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::wire::{self, find_header, find_headers, Wire};

/// Read timeout of a new [`Client`]: long enough for any correct answer, short
/// enough that a hang fails the test instead of stalling the run.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One response as the client read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// Minor HTTP version: 1 for HTTP/1.1.
    pub version: u8,
    /// Header fields in order, names as received.
    pub headers: Vec<(String, String)>,
    /// The body, chunked framing removed.
    pub body: Vec<u8>,
    /// The body bytes exactly as received (with chunk sizes and trailers).
    pub raw_body: Vec<u8>,
    /// True when the connection closed or reset before the body was complete
    /// (`body` then holds what arrived).
    pub truncated: bool,
}

impl Response {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        find_headers(&self.headers, name)
    }

    /// The body as text (lossy).
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether this is an interim (1xx other than 101) response.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

/// One client connection. Bytes read past a response stay buffered for the next.
pub struct Client {
    wire: Wire,
    addr: SocketAddr,
}

impl Client {
    /// Connects, panicking on failure; read timeout [`CLIENT_TIMEOUT`].
    pub fn connect(addr: SocketAddr) -> Client {
        Client::try_connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
    }

    pub fn try_connect(addr: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
        stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            wire: Wire::new(stream),
            addr,
        })
    }

    /// The address this client connected to.
    pub fn peer(&self) -> SocketAddr {
        self.addr
    }

    /// The socket, e.g. for its local address.
    pub fn stream(&self) -> &TcpStream {
        &self.wire.stream
    }

    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.wire
            .stream
            .set_read_timeout(Some(timeout))
            .expect("set_read_timeout");
    }

    /// Writes these bytes, panicking on failure.
    pub fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes)
            .unwrap_or_else(|e| panic!("send to {}: {e}", self.addr));
    }

    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.wire.stream.write_all(bytes)?;
        self.wire.stream.flush()
    }

    /// Closes the write side (FIN), leaving the read side open.
    pub fn shutdown_write(&mut self) {
        let _ = self.wire.stream.shutdown(Shutdown::Write);
    }

    /// Sends a request built by [`request_bytes`] without reading the answer.
    pub fn send_request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) {
        self.send(&request_bytes(method, path, headers, body));
    }

    /// Sends a request built by [`request_bytes`] and reads its final response,
    /// skipping interim 1xx responses (use [`Client::send_request`] and
    /// [`Client::read_response`] to see those).
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.send_request(method, path, headers, body);
        loop {
            let response = self.read_response_to(method);
            if !response.is_interim() {
                return response;
            }
        }
    }

    /// Reads one response (1xx included) to a request that was not HEAD.
    pub fn read_response(&mut self) -> Response {
        self.read_response_to("GET")
    }

    /// Reads one response (1xx included) to a request with this method,
    /// panicking if no complete head arrives or the read times out.
    pub fn read_response_to(&mut self, method: &str) -> Response {
        self.try_read_response_to(method)
            .unwrap_or_else(|e| panic!("reading a response from {}: {e}", self.addr))
    }

    /// Reads one response. Errors: closed, reset or timed out before a
    /// complete head; malformed head; timed out inside the body. A body cut
    /// short by close or reset is not an error: see [`Response::truncated`].
    pub fn try_read_response_to(&mut self, method: &str) -> io::Result<Response> {
        let head = self.wire.read_response_head()?;
        let framing = wire::response_framing(method, head.status, &head.headers)?;
        let body = self.wire.read_body(framing);
        let truncated = match body.error {
            None => false,
            Some(e) if wire::is_disconnect(&e) => true,
            Some(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "{e} after {} body bytes of a {} response",
                        body.raw.len(),
                        head.status
                    ),
                ))
            }
        };
        Ok(Response {
            status: head.status,
            reason: head.reason,
            version: head.version,
            headers: head.headers,
            body: body.decoded,
            raw_body: body.raw,
            truncated,
        })
    }

    /// Whether the peer closes the connection (end of stream or reset) within
    /// `timeout`. Bytes that arrive meanwhile are kept for the next read.
    pub fn is_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let closed = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            self.set_read_timeout(left);
            match self.wire.fill() {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) if wire::is_disconnect(&e) => break true,
                Err(_) => break false,
            }
        };
        self.set_read_timeout(CLIENT_TIMEOUT);
        closed
    }

    /// Everything that arrives (after what is buffered) until the peer closes
    /// or `timeout` passes.
    pub fn read_until_close(&mut self, timeout: Duration) -> Vec<u8> {
        self.is_closed(timeout);
        std::mem::take(&mut self.wire.buf)
    }

    /// Reads raw bytes until `pred` holds for everything received so far (kept
    /// buffered), the peer closes, or `timeout` passes; returns whether it held.
    pub fn wait_for_bytes(&mut self, timeout: Duration, pred: impl Fn(&[u8]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let held = loop {
            if pred(&self.wire.buf) {
                break true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            self.set_read_timeout(left);
            match self.wire.fill() {
                Ok(0) | Err(_) => break pred(&self.wire.buf),
                Ok(_) => continue,
            }
        };
        self.set_read_timeout(CLIENT_TIMEOUT);
        held
    }

    /// The bytes received but not consumed by a read yet.
    pub fn buffered(&self) -> &[u8] {
        &self.wire.buf
    }
}

impl Read for Client {
    /// Raw reads, buffered bytes first.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.wire.buf.is_empty() {
            return self.wire.stream.read(out);
        }
        let n = out.len().min(self.wire.buf.len());
        out[..n].copy_from_slice(&self.wire.buf[..n]);
        self.wire.buf.drain(..n);
        Ok(n)
    }
}

/// An HTTP/1.1 request: `Host: test` unless a Host header is given, and
/// `Content-Length` when `body` is non-empty unless a Content-Length or
/// Transfer-Encoding header is given (then `body` goes out as it is).
pub fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let given = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !given("host") {
        head.push_str("Host: test\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() && !given("content-length") && !given("transfer-encoding") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// `GET path` with `Connection: close` on a new connection.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    Client::connect(addr).request("GET", path, &[("Connection", "close")], b"")
}
