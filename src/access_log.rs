//! The access log (`--access-log path|-`, off by default): one line per
//! request, appended to a per-worker buffer and written out in bulk on each
//! housekeeping tick (or when the buffer fills), so that a request costs
//! neither a lock nor a syscall.
//!
//! A line: time (to a housekeeping tick), client address, request line,
//! status, target (`-` when the balancer answered itself), attempts,
//! duration in milliseconds, bytes sent to the client:
//!
//! ```text
//! 2026-11-27T05:28:41.600Z 127.0.0.1 "GET /index.html HTTP/1.1" 200 127.0.0.1:9000 1 0.412 1234
//! ```

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::LogDestination;
use crate::log::utc_timestamp;

/// Bytes buffered before a write is forced between ticks.
const FLUSH_AT: usize = 32 * 1024;

/// Where the lines go: opened once, shared by the workers. Each flush is
/// one `write` of whole lines, which `O_APPEND` keeps from interleaving.
#[derive(Clone)]
pub enum Sink {
    File(Arc<File>),
    Stdout,
}

impl Sink {
    pub fn open(dest: &LogDestination) -> io::Result<Sink> {
        match dest {
            LogDestination::Stdout => Ok(Sink::Stdout),
            LogDestination::File(path) => open_append(path).map(|f| Sink::File(Arc::new(f))),
        }
    }

    fn write(&self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::File(file) => (&**file).write_all(bytes),
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// What one request came to.
pub struct Entry<'a> {
    pub client: IpAddr,
    /// The request line as it arrived, or `None` when it could not be read.
    pub request_line: Option<&'a [u8]>,
    pub status: u16,
    pub target: Option<&'a str>,
    pub attempts: usize,
    pub micros: u64,
    pub bytes: u64,
}

/// A worker's access log buffer.
pub struct AccessLog {
    sink: Sink,
    buf: RefCell<Vec<u8>>,
    /// The time written on lines, set on each housekeeping tick.
    stamp: RefCell<String>,
}

impl AccessLog {
    pub fn new(sink: Sink) -> AccessLog {
        let log = AccessLog {
            sink,
            buf: RefCell::new(Vec::with_capacity(2 * FLUSH_AT)),
            stamp: RefCell::new(String::new()),
        };
        log.tick();
        log
    }

    /// Appends one line; writes the buffer out when it is full.
    pub fn record(&self, e: &Entry<'_>) {
        let full = {
            let mut buf = self.buf.borrow_mut();
            format_line(&mut buf, &self.stamp.borrow(), e);
            buf.len() >= FLUSH_AT
        };
        if full {
            self.flush();
        }
    }

    /// Moves the time stamp on and writes out what is buffered.
    pub fn tick(&self) {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        *self.stamp.borrow_mut() = utc_timestamp(ms);
        self.flush();
    }

    /// Writes out what is buffered.
    pub fn flush(&self) {
        let mut buf = self.buf.borrow_mut();
        if buf.is_empty() {
            return;
        }
        if let Err(e) = self.sink.write(&buf) {
            log!(error, "access log: cannot write: {e}");
        }
        buf.clear();
    }
}

/// Appends one access log line to `buf` (no allocation once `buf` has grown).
pub fn format_line(buf: &mut Vec<u8>, stamp: &str, e: &Entry<'_>) {
    let _ = write!(buf, "{stamp} {} \"", e.client);
    match e.request_line {
        // The client chose these bytes: escaped, so that no line can be
        // forged (httparse lets `"` through in a request target).
        Some(line) => push_escaped(buf, line),
        None => buf.push(b'-'),
    }
    let _ = writeln!(
        buf,
        "\" {} {} {} {}.{:03} {}",
        e.status,
        e.target.unwrap_or("-"),
        e.attempts,
        e.micros / 1000,
        e.micros % 1000,
        e.bytes
    );
}

/// Appends `bytes` with `"`, `\\` and every byte outside printable ASCII
/// written as `\\xHH`, as nginx escapes its log variables.
fn push_escaped(buf: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            buf.push(b);
        } else {
            buf.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_a_line() {
        let mut buf = Vec::new();
        let e = Entry {
            client: "10.0.0.1".parse().unwrap(),
            request_line: Some(b"GET /a?b=c HTTP/1.1"),
            status: 200,
            target: Some("127.0.0.1:9000"),
            attempts: 2,
            micros: 1_234_567,
            bytes: 99,
        };
        format_line(&mut buf, "2026-11-27T05:28:41.600Z", &e);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "2026-11-27T05:28:41.600Z 10.0.0.1 \"GET /a?b=c HTTP/1.1\" 200 127.0.0.1:9000 2 1234.567 99\n"
        );
    }

    #[test]
    fn escapes_what_could_forge_a_field() {
        let mut buf = Vec::new();
        let e = Entry {
            client: "10.0.0.1".parse().unwrap(),
            request_line: Some(b"GET /q\"_200_x\\\x01\xff HTTP/1.1"),
            status: 200,
            target: Some("t"),
            attempts: 1,
            micros: 0,
            bytes: 0,
        };
        format_line(&mut buf, "T", &e);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "T 10.0.0.1 \"GET /q\\x22_200_x\\x5C\\x01\\xFF HTTP/1.1\" 200 t 1 0.000 0\n"
        );
    }

    #[test]
    fn formats_an_answer_of_the_balancer() {
        let mut buf = Vec::new();
        let e = Entry {
            client: "::1".parse().unwrap(),
            request_line: None,
            status: 400,
            target: None,
            attempts: 0,
            micros: 5,
            bytes: 10,
        };
        format_line(&mut buf, "T", &e);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "T ::1 \"-\" 400 - 0 0.005 10\n"
        );
    }

    #[test]
    fn buffers_until_flushed() {
        let dir = std::env::temp_dir().join(format!("lb-access-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let log = AccessLog::new(Sink::open(&LogDestination::File(dir.clone())).unwrap());
        let e = Entry {
            client: "10.0.0.1".parse().unwrap(),
            request_line: Some(b"GET / HTTP/1.1"),
            status: 200,
            target: Some("t"),
            attempts: 1,
            micros: 1,
            bytes: 1,
        };
        log.record(&e);
        assert_eq!(
            std::fs::read_to_string(&dir).unwrap(),
            "",
            "not written per request"
        );
        log.flush();
        assert_eq!(std::fs::read_to_string(&dir).unwrap().lines().count(), 1);
        let _ = std::fs::remove_file(&dir);
    }
}
