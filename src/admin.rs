//! The admin endpoint (`--admin host:port`, off by default), served from
//! worker 0 like the prober: `GET /metrics` (Prometheus text format),
//! `GET /targets` (plain text, or JSON with `?format=json` or `Accept:
//! application/json`) and `POST /reload` (read `--targets-file` again, as
//! SIGHUP does). One request per connection; a cold path, kept simple.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use monoio::net::{TcpListener, TcpStream};

use crate::blocking::off_thread;
use crate::config::read_targets_file;
use crate::health::Standing;
use crate::shared::Shared;
use crate::signals::Notify;
use crate::stream::{deadline, read_more, write_all};
use crate::targets::{Change, Target};
use crate::upstream::prober;

/// How long a client of the admin endpoint may take to send its request.
const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

/// Largest admin request head.
const MAX_HEAD: usize = 8 * 1024;

/// Serves the admin endpoint until the process ends.
pub async fn serve(listener: TcpListener, shared: &'static Shared) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                monoio::spawn(handle(stream, shared));
            }
            Err(e) => {
                log!(warn, "admin: accept failed: {e}");
                monoio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reloads `--targets-file` each time a SIGHUP is raised.
pub async fn watch_reloads(shared: &'static Shared) {
    let mut seen = 0;
    loop {
        seen = shared.events.reload.after(seen).await;
        let _ = reload(shared).await;
    }
}

/// Keeps reloads in line: one at a time, in the order they were asked, so
/// that the file read last is the one applied last even when two reloads
/// (SIGHUP, `POST /reload`) come close together. Each waits for its turn,
/// reads the file on a thread of its own and applies what it read.
#[derive(Default)]
pub struct Reloads {
    /// Turns handed out so far.
    taken: AtomicU64,
    /// Raised as each turn ends.
    done: Notify,
}

impl Reloads {
    /// Waits until every reload asked before this one has ended. A reload
    /// is never dropped while it waits (its task is spawned, nothing times
    /// it out): its turn would never end and the reloads after it would
    /// wait for ever.
    async fn turn(&self) -> Turn<'_> {
        let mine = self.taken.fetch_add(1, Ordering::AcqRel);
        if mine > 0 {
            self.done.after(mine - 1).await;
        }
        Turn(self)
    }
}

/// A reload's turn, which ends when dropped.
struct Turn<'r>(&'r Reloads);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.done.raise();
    }
}

/// Reads the targets file again and applies it; a bad file is refused whole
/// and the running set stays. Targets that joined are checked at once.
///
/// The file is read, and its names resolved, on a thread of its own: both
/// can block for seconds (a slow mount, a slow DNS server), and this runs
/// on worker 0, which also serves clients. What the thread read is applied
/// back here, after the reloads asked before this one ([`Reloads`]).
pub async fn reload(shared: &'static Shared) -> Result<Change, String> {
    let result = {
        let _turn = shared.reloads.turn().await;
        let result = match read_off_thread(shared).await {
            Ok(wanted) => shared.targets.replace_file_targets(wanted),
            Err(e) => Err(e),
        };
        match &result {
            Ok(change) => log!(
                info,
                "reload: {} added [{}], {} removed [{}], {} kept",
                change.added.len(),
                change.added.join(", "),
                change.removed.len(),
                change.removed.join(", "),
                change.kept
            ),
            Err(e) => log!(warn, "reload refused, the running set stays: {e}"),
        }
        result
    };
    if let Ok(change) = &result {
        if !change.added.is_empty() {
            prober::check_slots(shared, &change.added_slots).await;
        }
    }
    result
}

/// Reads and resolves `--targets-file` on a thread of its own.
async fn read_off_thread(shared: &Shared) -> Result<Vec<Target>, String> {
    let Some(path) = shared.config.targets_file.clone() else {
        return Err("no --targets-file to reload".to_string());
    };
    off_thread("reload", move || read_targets_file(&path))
        .map_err(|e| format!("cannot start a thread to read the targets file: {e}"))?
        .await
}

/// What a request asked for.
struct Asked {
    method: String,
    path: String,
    query: String,
    wants_json: bool,
}

async fn handle(mut stream: TcpStream, shared: &'static Shared) {
    let Some(asked) = read_request(&mut stream).await else {
        let _ = write_all(&mut stream, answer(400, "text/plain", "bad request\n")).await;
        return;
    };
    let response = match (asked.method.as_str(), asked.path.as_str()) {
        ("GET" | "HEAD", "/metrics") => match &shared.metrics {
            Some(m) => answer(200, "text/plain; version=0.0.4", &m.render(&shared.targets)),
            None => answer(404, "text/plain", "no metrics\n"),
        },
        ("GET" | "HEAD", "/targets") => {
            if asked.wants_json || asked.query.split('&').any(|p| p == "format=json") {
                answer(200, "application/json", &targets_json(shared))
            } else {
                answer(200, "text/plain", &targets_text(shared))
            }
        }
        ("POST", "/reload") => match reload(shared).await {
            Ok(change) => answer(
                200,
                "text/plain",
                &format!(
                    "reloaded: {} added, {} removed, {} kept\n",
                    change.added.len(),
                    change.removed.len(),
                    change.kept
                ),
            ),
            Err(e) => answer(400, "text/plain", &format!("reload refused: {e}\n")),
        },
        (_, "/metrics" | "/targets" | "/reload") => {
            answer(405, "text/plain", "method not allowed\n")
        }
        _ => answer(
            404,
            "text/plain",
            "not found: try /metrics, /targets or POST /reload\n",
        ),
    };
    let response = if asked.method == "HEAD" {
        head_only(response)
    } else {
        response
    };
    let _ = deadline(REQUEST_DEADLINE, write_all(&mut stream, response)).await;
}

/// Reads one request head.
async fn read_request(stream: &mut TcpStream) -> Option<Asked> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        deadline(REQUEST_DEADLINE, read_more(stream, &mut buf, 1024))
            .await
            .ok()?;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let target = req.path?;
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                let wants_json = req.headers.iter().any(|h| {
                    h.name.eq_ignore_ascii_case("accept")
                        && String::from_utf8_lossy(h.value).contains("application/json")
                });
                return Some(Asked {
                    method: req.method?.to_string(),
                    path: path.to_string(),
                    query: query.to_string(),
                    wants_json,
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            _ => return None,
        }
    }
}

fn answer(status: u16, content_type: &str, body: &str) -> Bytes {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    };
    Bytes::from(format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ))
}

/// A response without its body (for HEAD).
fn head_only(response: Bytes) -> Bytes {
    match response.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(end) => response.slice(..end + 4),
        None => response,
    }
}

/// One row per target: address, health, requests in flight.
struct Row {
    name: String,
    addr: String,
    healthy: bool,
    standing: Standing,
    weight: u32,
    in_flight: u64,
}

fn rows(shared: &Shared) -> Vec<Row> {
    let (_, slots) = shared.targets.snapshot();
    slots
        .iter()
        .enumerate()
        .filter_map(|(i, slot)| {
            let slot = slot.as_ref()?;
            let in_flight = shared
                .metrics
                .as_ref()
                .map_or(0, |m| m.in_flight(i, slot.gen));
            Some(Row {
                name: slot.target.name.clone(),
                addr: slot.target.addr.to_string(),
                healthy: shared.targets.health.is_healthy(i),
                standing: shared.targets.standing(i),
                weight: slot.target.weight,
                in_flight,
            })
        })
        .collect()
}

fn targets_text(shared: &Shared) -> String {
    let mut out = String::from("target address health in_flight\n");
    for r in rows(shared) {
        let state = r.standing.as_str();
        let _ = writeln!(out, "{} {} {state} {}", r.name, r.addr, r.in_flight);
    }
    out
}

fn targets_json(shared: &Shared) -> String {
    let items: Vec<String> = rows(shared)
        .into_iter()
        .map(|r| {
            format!(
                "{{\"target\":\"{}\",\"address\":\"{}\",\"healthy\":{},\"state\":\"{}\",\"weight\":{},\"in_flight\":{}}}",
                json_escape(&r.name),
                json_escape(&r.addr),
                r.healthy,
                r.standing.as_str(),
                r.weight,
                r.in_flight
            )
        })
        .collect();
    format!("[{}]\n", items.join(","))
}

fn json_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '"' => "\\\"".chars().collect::<Vec<_>>(),
            '\\' => "\\\\".chars().collect(),
            c if (c as u32) < 0x20 => format!("\\u{:04x}", c as u32).chars().collect(),
            c => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_complete_and_close() {
        let a = answer(404, "text/plain", "nope\n");
        let text = std::str::from_utf8(&a).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.contains("Content-Length: 5\r\n"));
        assert!(text.ends_with("\r\n\r\nnope\n"));
        assert!(head_only(a).ends_with(b"\r\n\r\n"));
    }

    #[test]
    fn escapes_json_strings() {
        assert_eq!(json_escape("a\"b\\c\n"), "a\\\"b\\\\c\\u000a");
    }
}
