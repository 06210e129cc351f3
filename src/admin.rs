//! The admin endpoint (`--admin host:port`, off by default), served from
//! worker 0 like the prober: `GET /metrics` (Prometheus text format),
//! `GET /targets` (plain text, or JSON with `?format=json` or `Accept:
//! application/json`; a target given by name says which) and `POST /reload` (read `--targets-file` again, as
//! SIGHUP does: see [`crate::targets::reload`]). One request per
//! connection; a cold path, kept simple.

use std::fmt::Write;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use monoio::net::{TcpListener, TcpStream};

use crate::health::Standing;
use crate::http::{self, reason_phrase};
use crate::shared::Shared;
use crate::stream::{deadline, read_more, write_all};
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
        ("POST", "/reload") => match prober::reload(shared).await {
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
        if let Some(asked) = parse(&buf).ok()? {
            return Some(asked);
        }
    }
}

/// Parses a request head with the proxy's own parser, so that the admin
/// endpoint refuses what the proxy would. `Ok(None)`: not complete yet;
/// `Err`: malformed (including over `MAX_HEAD` bytes), answered 400.
fn parse(buf: &[u8]) -> Result<Option<Asked>, http::Error> {
    let Some(head) = http::parse_request(buf, MAX_HEAD)? else {
        return Ok(None);
    };
    // Both are ASCII: the parser takes only tokens and visible characters.
    let (Ok(method), Ok(target)) = (
        std::str::from_utf8(head.method(buf)),
        std::str::from_utf8(head.target(buf)),
    ) else {
        return Err(http::Error::MalformedRequest);
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    const JSON: &[u8] = b"application/json";
    let wants_json = head.fields(buf).any(|(name, value)| {
        name.eq_ignore_ascii_case(b"accept") && value.windows(JSON.len()).any(|w| w == JSON)
    });
    Ok(Some(Asked {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        wants_json,
    }))
}

fn answer(status: u16, content_type: &str, body: &str) -> Bytes {
    let reason = reason_phrase(status);
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

/// One row per target: address, health, requests in flight, and the name
/// it is an address of (none for a target given by IP address).
struct Row {
    name: String,
    addr: String,
    healthy: bool,
    standing: Standing,
    weight: u32,
    in_flight: u64,
    source: Option<String>,
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
                source: slot.target.source.clone(),
            })
        })
        .collect()
}

/// One line per target, its fields apart by spaces. A `source` column ends
/// each line when some target was given by name (`-` for those given by
/// IP address); with none, there is no such column.
fn targets_text(shared: &Shared) -> String {
    let rows = rows(shared);
    let by_name = rows.iter().any(|r| r.source.is_some());
    let mut out = String::from("target address health in_flight");
    out.push_str(if by_name { " source\n" } else { "\n" });
    for r in rows {
        let state = r.standing.as_str();
        let _ = write!(out, "{} {} {state} {}", r.name, r.addr, r.in_flight);
        if by_name {
            let _ = write!(out, " {}", r.source.as_deref().unwrap_or("-"));
        }
        out.push('\n');
    }
    out
}

fn targets_json(shared: &Shared) -> String {
    let items: Vec<String> = rows(shared)
        .into_iter()
        .map(|r| {
            let source = match &r.source {
                Some(name) => format!(",\"source\":\"{}\"", json_escape(name)),
                None => String::new(),
            };
            format!(
                "{{\"target\":\"{}\",\"address\":\"{}\",\"healthy\":{},\"state\":\"{}\",\"weight\":{},\"in_flight\":{}{source}}}",
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

    fn asked(head: &str) -> Asked {
        parse(head.as_bytes()).expect("valid").expect("complete")
    }

    #[test]
    fn parses_method_path_query_and_accept() {
        let a = asked("GET /targets?x=1&format=json HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(
            (a.method.as_str(), a.path.as_str(), a.query.as_str()),
            ("GET", "/targets", "x=1&format=json")
        );
        assert!(!a.wants_json);
        let a = asked(
            "GET /targets HTTP/1.1\r\nHost: a\r\naccept: text/html, application/json\r\n\r\n",
        );
        assert!(a.wants_json);
        let a = asked("POST /reload HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}");
        assert_eq!((a.method.as_str(), a.path.as_str()), ("POST", "/reload"));
    }

    #[test]
    fn waits_for_the_whole_head() {
        let head = b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
        for end in 0..head.len() {
            assert!(matches!(parse(&head[..end]), Ok(None)), "at {end}");
        }
    }

    #[test]
    fn refuses_what_the_proxy_refuses() {
        for bad in [
            "GET /metrics HTTP/1.1\r\n\r\n",
            "GET /metrics HTTP/1.1\nHost: a\r\n\r\n",
            "GET /metrics HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n",
            "GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n",
            "CONNECT a:1 HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let long = format!("GET /{} HTTP/1.1\r\n", "x".repeat(MAX_HEAD));
        assert!(parse(long.as_bytes()).is_err());
    }

    #[test]
    fn escapes_json_strings() {
        assert_eq!(json_escape("a\"b\\c\n"), "a\\\"b\\\\c\\u000a");
    }
}
