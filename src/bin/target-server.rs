//! Demo target (backend) server for the load balancer, with faults you can switch at run time.
//!
//! It answers every path with `hello from NAME`, and `/_health` with `ok` (or 503 `unhealthy`),
//! so the balancer has something to spread load over, probe and fail over from. `make run-dev`
//! starts ten of them on ports 9000-9009; a user then breaks one with curl and watches the
//! balancer react. Any method on these paths works:
//!
//! | path                                    | effect                                          |
//! |-----------------------------------------|-------------------------------------------------|
//! | `/_control/unhealthy`, `/_control/healthy` | `/_health` answers 503 / 200                 |
//! | `/_control/fail`, `/_control/ok`        | other paths answer 500 / 200                    |
//! | `/_control/delay/250ms` (`2s`, `0`)     | other paths wait that long before answering     |
//! | `/_control`                             | show the state, change nothing                  |
//!
//! Each control call answers 200 with one line such as
//! `target-9003: health=healthy mode=fail delay=0ms` and prints the same line to stderr.
//! Health and control paths are never delayed nor failed, and nothing is logged per ordinary
//! request: the server is load-tested at tens of thousands of requests per second.
//!
//! One single-threaded monoio runtime (io_uring, epoll fallback) with the monoio-http h1 codec;
//! state lives in `Cell`s behind an `Rc`. Connections are kept alive unless the client asks for
//! `Connection: close` (or speaks HTTP/1.0 without keep-alive): the codec does not do that itself.

use std::{
    cell::Cell,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    process::ExitCode,
    rc::Rc,
    time::Duration,
};

use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode, Version};
use monoio::{
    io::{
        sink::{Sink, SinkExt},
        stream::Stream,
    },
    net::{ListenerOpts, TcpListener, TcpStream},
    FusionDriver, RuntimeBuilder,
};
use monoio_http::{
    common::{error::HttpError, request::Request, response::Response},
    h1::{
        codec::{
            decoder::{DecodeError, FillPayload},
            ServerCodec,
        },
        payload::{FixedPayload, Payload},
    },
};

const USAGE: &str = "\
target-server: demo backend for the load balancer, with switchable faults

Usage: target-server -p PORT [--name NAME] [--host IP] [--unhealthy] [--fail] [--delay DURATION]

Options:
  -p, --port PORT      port to listen on (required; 0 picks a free one)
      --host IP        address to listen on [default: 127.0.0.1]
      --name NAME      name used in answers [default: target-PORT]
      --unhealthy      start with /_health answering 503
      --fail           start with ordinary paths answering 500
      --delay DURATION wait this long before answering ordinary paths, e.g. 250ms, 2s, 0
  -h, --help           print this help

Control (any method): /_control/{healthy,unhealthy,fail,ok}, /_control/delay/250ms, /_control
";

/// The path the balancer's prober asks.
const HEALTH_PATH: &str = "/_health";

/// Prefix of the paths that switch faults on and off.
const CONTROL_PATH: &str = "/_control";

/// Pause after a failed accept (EMFILE, ENFILE, ...): the error repeats until a connection
/// closes, so retrying at once would spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Longest delay the flag or the control endpoint accepts: well past any balancer timeout
/// worth testing, and a bound that keeps the millisecond arithmetic from overflowing.
const MAX_DELAY: Duration = Duration::from_secs(3600);

/// What the command line asks for.
struct Config {
    host: IpAddr,
    port: u16,
    name: Option<String>,
    unhealthy: bool,
    fail: bool,
    delay: Duration,
}

/// The switchable state of this target, shared by every connection of the one thread.
struct State {
    name: String,
    healthy: Cell<bool>,
    failing: Cell<bool>,
    delay: Cell<Duration>,
    /// Answers built once so an ordinary request costs a reference-count bump, not a format.
    hello: Bytes,
    failing_body: Bytes,
}

/// Where a request goes, decided from its path before the body is read.
enum Route {
    Health,
    Control(Result<Command, Rejection>),
    Normal,
}

/// A well-formed control call.
#[derive(Debug, PartialEq)]
enum Command {
    Show,
    SetHealthy(bool),
    SetFailing(bool),
    SetDelay(Duration),
}

/// A control call that changes nothing: an unknown path (404) or a bad delay (400).
#[derive(Debug, PartialEq)]
struct Rejection {
    status: StatusCode,
    body: String,
}

fn main() -> ExitCode {
    let config = match parse_args(lexopt::Parser::from_env()) {
        Ok(Some(config)) => config,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("target-server: {msg} (try --help)");
            return ExitCode::from(2);
        }
    };
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("target-server: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the flags; `Ok(None)` means `--help` was asked for.
fn parse_args(mut parser: lexopt::Parser) -> Result<Option<Config>, String> {
    use lexopt::prelude::*;

    let mut port = None;
    let mut config = Config {
        host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 0,
        name: None,
        unhealthy: false,
        fail: false,
        delay: Duration::ZERO,
    };
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Short('p') | Long("port") => port = Some(flag_value(&mut parser, "--port", parse_str)?),
            Long("host") => config.host = flag_value(&mut parser, "--host", parse_str)?,
            Long("name") => config.name = Some(flag_value(&mut parser, "--name", parse_name)?),
            Long("unhealthy") => config.unhealthy = true,
            Long("fail") => config.fail = true,
            Long("delay") => config.delay = flag_value(&mut parser, "--delay", parse_delay)?,
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    config.port = port.ok_or("missing required option --port")?;
    Ok(Some(config))
}

/// Takes the value of `flag` and parses it, naming the flag and the value in any error.
fn flag_value<T>(
    parser: &mut lexopt::Parser,
    flag: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, String> {
    let raw = parser.value().map_err(|e| e.to_string())?;
    let text = raw
        .to_str()
        .ok_or_else(|| format!("value for {flag} is not valid UTF-8"))?;
    parse(text).map_err(|e| format!("bad value '{text}' for {flag}: {e}"))
}

fn parse_str<T>(text: &str) -> Result<T, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e: T::Err| e.to_string())
}

fn parse_name(text: &str) -> Result<String, String> {
    match text.trim() {
        "" => Err("the name must not be empty".into()),
        name => Ok(name.to_owned()),
    }
}

/// Parses `250ms`, `2s` or `0` (no other unit-less number: `250` would be ambiguous).
fn parse_delay(text: &str) -> Result<Duration, String> {
    let (digits, ms_per_unit) = if let Some(digits) = text.strip_suffix("ms") {
        (digits, 1)
    } else if let Some(digits) = text.strip_suffix('s') {
        (digits, 1000)
    } else if text == "0" {
        (text, 1)
    } else {
        return Err("expected a duration such as 250ms, 2s or 0".into());
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a duration such as 250ms, 2s or 0".into());
    }
    let too_long = || format!("longer than the {}s maximum", MAX_DELAY.as_secs());
    let ms = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(ms_per_unit))
        .filter(|&ms| u128::from(ms) <= MAX_DELAY.as_millis())
        .ok_or_else(too_long)?;
    Ok(Duration::from_millis(ms))
}

/// Starts the runtime, binds, and serves until the process is killed.
fn run(config: Config) -> Result<(), String> {
    let mut runtime = RuntimeBuilder::<FusionDriver>::new()
        .enable_timer()
        .build()
        .map_err(|e| format!("cannot start the monoio runtime: {e}"))?;
    runtime.block_on(async move {
        let addr = SocketAddr::new(config.host, config.port);
        let listener = bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let state = Rc::new(State::new(&config, local.port()));
        eprintln!("target-server {} listening on {local}", state.name);
        accept_loop(listener, state).await;
        Ok(())
    })
}

/// Binds without SO_REUSEPORT (monoio's default turns it on): with it, a second target started
/// on the same port would bind silently and steal part of the connections instead of failing.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind_with_config(addr, &ListenerOpts::new().reuse_port(false))
}

/// Accepts forever, one task per connection. Not under a timeout: a timed-out accept on
/// io_uring can leak the socket it accepted (see shared/notes/monoio.md).
async fn accept_loop(listener: TcpListener, state: Rc<State>) {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                // Best effort: without it the answer still goes out, only later.
                let _ = stream.set_nodelay(true);
                monoio::spawn(serve(stream, state.clone()));
            }
            Err(e) => {
                eprintln!("target-server: accept failed: {e}; retrying in {ACCEPT_BACKOFF:?}");
                monoio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Serves the requests of one connection, one after another, until the client closes,
/// asks to close, or sends something the codec cannot decode.
async fn serve(stream: TcpStream, state: Rc<State>) {
    let mut codec = ServerCodec::new(stream);
    while let Some(next) = codec.next().await {
        let request = match next {
            Ok(request) => request,
            Err(e) => {
                if is_malformed(&e) {
                    let _ = codec.send_and_flush(bad_request()).await;
                }
                break;
            }
        };
        let keep_alive = wants_keep_alive(&request);
        let head_only = request.method() == Method::HEAD;
        let version = request.version();
        let route = route(request.uri().path());
        // The codec feeds the body through weak references: with the request dropped,
        // `fill_payload` reads the body off the socket and throws it away.
        drop(request);
        if codec.fill_payload().await.is_err() {
            break;
        }
        let (status, body) = answer(route, &state).await;
        let response = response(status, body, head_only, keep_alive, version);
        if codec.send_and_flush(response).await.is_err() || !keep_alive {
            break;
        }
    }
    // Flushes and shuts the write side down so a `Connection: close` answer is not cut off.
    let _ = Sink::<Response>::close(&mut codec).await;
}

/// True when the client sent bytes that are not HTTP/1.1 (rather than closing or failing IO).
#[cold]
fn is_malformed(e: &HttpError) -> bool {
    matches!(
        e,
        HttpError::H1DecodeError(d)
            if !matches!(d, DecodeError::Io(_) | DecodeError::UnexpectedEof | DecodeError::TimedOut)
    )
}

/// HTTP/1.1 keeps the connection unless told `close`; HTTP/1.0 closes unless told `keep-alive`.
fn wants_keep_alive(request: &Request) -> bool {
    let said = |token: &str| {
        request
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    match request.version() {
        Version::HTTP_10 => said("keep-alive"),
        _ => !said("close"),
    }
}

fn route(path: &str) -> Route {
    if path == HEALTH_PATH {
        return Route::Health;
    }
    match path.strip_prefix(CONTROL_PATH) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            Route::Control(parse_command(rest.trim_matches('/')))
        }
        _ => Route::Normal,
    }
}

/// Parses what follows `/_control/`, e.g. `fail` or `delay/250ms`.
fn parse_command(command: &str) -> Result<Command, Rejection> {
    match command {
        "" => Ok(Command::Show),
        "healthy" => Ok(Command::SetHealthy(true)),
        "unhealthy" => Ok(Command::SetHealthy(false)),
        "fail" => Ok(Command::SetFailing(true)),
        "ok" => Ok(Command::SetFailing(false)),
        _ => match command.strip_prefix("delay/") {
            Some(value) => parse_delay(value)
                .map(Command::SetDelay)
                .map_err(|e| Rejection {
                    status: StatusCode::BAD_REQUEST,
                    body: format!("bad delay '{value}': {e}\n"),
                }),
            None => Err(Rejection {
                status: StatusCode::NOT_FOUND,
                body: "unknown control path; try /_control/{healthy,unhealthy,fail,ok}, \
                       /_control/delay/250ms or /_control\n"
                    .into(),
            }),
        },
    }
}

async fn answer(route: Route, state: &State) -> (StatusCode, Bytes) {
    match route {
        Route::Health => state.health(),
        Route::Control(command) => control(command, state),
        Route::Normal => state.normal().await,
    }
}

fn control(command: Result<Command, Rejection>, state: &State) -> (StatusCode, Bytes) {
    match command {
        Ok(command) => {
            state.apply(command);
            let line = state.describe();
            eprint!("{line}");
            (StatusCode::OK, Bytes::from(line))
        }
        Err(rejection) => (rejection.status, Bytes::from(rejection.body)),
    }
}

/// A `text/plain` answer; the codec writes Content-Length from the body.
fn response(
    status: StatusCode,
    body: Bytes,
    head_only: bool,
    keep_alive: bool,
    version: Version,
) -> Response {
    // monoio-http would write the body after a HEAD answer too, and drops any Content-Length we
    // set, so a HEAD answer says `content-length: 0` rather than the length a GET would have.
    let payload = if head_only {
        Payload::None
    } else {
        Payload::Fixed(FixedPayload::new(body))
    };
    let mut response = Response::new(payload);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    if !keep_alive {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    } else if version == Version::HTTP_10 {
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    }
    response
}

#[cold]
fn bad_request() -> Response {
    let body = Bytes::from_static(b"bad request\n");
    response(
        StatusCode::BAD_REQUEST,
        body,
        false,
        false,
        Version::HTTP_11,
    )
}

impl State {
    fn new(config: &Config, port: u16) -> Self {
        let name = config
            .name
            .clone()
            .unwrap_or_else(|| format!("target-{port}"));
        Self {
            hello: Bytes::from(format!("hello from {name}\n")),
            failing_body: Bytes::from(format!("{name} is failing\n")),
            healthy: Cell::new(!config.unhealthy),
            failing: Cell::new(config.fail),
            delay: Cell::new(config.delay),
            name,
        }
    }

    /// Never delayed nor failed: it reports only the switch.
    fn health(&self) -> (StatusCode, Bytes) {
        if self.healthy.get() {
            (StatusCode::OK, Bytes::from_static(b"ok\n"))
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Bytes::from_static(b"unhealthy\n"),
            )
        }
    }

    /// Waits the configured delay, then answers hello, or 500 when failing.
    async fn normal(&self) -> (StatusCode, Bytes) {
        let delay = self.delay.get();
        if !delay.is_zero() {
            monoio::time::sleep(delay).await;
        }
        if self.failing.get() {
            (StatusCode::INTERNAL_SERVER_ERROR, self.failing_body.clone())
        } else {
            (StatusCode::OK, self.hello.clone())
        }
    }

    fn apply(&self, command: Command) {
        match command {
            Command::Show => {}
            Command::SetHealthy(healthy) => self.healthy.set(healthy),
            Command::SetFailing(failing) => self.failing.set(failing),
            Command::SetDelay(delay) => self.delay.set(delay),
        }
    }

    /// One line, e.g. `target-9003: health=healthy mode=fail delay=0ms`.
    fn describe(&self) -> String {
        let health = if self.healthy.get() {
            "healthy"
        } else {
            "unhealthy"
        };
        let mode = if self.failing.get() { "fail" } else { "ok" };
        let delay = self.delay.get().as_millis();
        format!(
            "{}: health={health} mode={mode} delay={delay}ms\n",
            self.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_delays_with_a_unit_or_zero() {
        let cases = [
            ("0", Ok(0)),
            ("0ms", Ok(0)),
            ("250ms", Ok(250)),
            ("2s", Ok(2000)),
            ("3600s", Ok(3_600_000)),
        ];
        for (text, want) in cases {
            let got = parse_delay(text).map(|d| d.as_millis() as u64);
            assert_eq!(got.map_err(|_| ()), want.map_err(|_: ()| ()), "{text}");
        }
    }

    #[test]
    fn rejects_bad_delays() {
        let bad = [
            "",
            "250",
            "ms",
            "s",
            "-1s",
            "1.5s",
            "2 s",
            "1h",
            "3601s",
            "99999999999999999999ms",
        ];
        for text in bad {
            assert!(parse_delay(text).is_err(), "{text}");
        }
    }

    #[test]
    fn routes_control_paths_only_under_the_prefix() {
        assert!(matches!(route("/_health"), Route::Health));
        assert!(matches!(route("/"), Route::Normal));
        assert!(matches!(route("/_controlx"), Route::Normal));
        assert!(matches!(route("/_health/x"), Route::Normal));
        assert!(matches!(
            route("/_control"),
            Route::Control(Ok(Command::Show))
        ));
        assert!(matches!(
            route("/_control/fail/"),
            Route::Control(Ok(Command::SetFailing(true)))
        ));
    }

    #[test]
    fn parses_control_commands() {
        assert_eq!(parse_command("unhealthy"), Ok(Command::SetHealthy(false)));
        assert_eq!(parse_command("healthy"), Ok(Command::SetHealthy(true)));
        assert_eq!(parse_command("ok"), Ok(Command::SetFailing(false)));
        assert_eq!(
            parse_command("delay/250ms"),
            Ok(Command::SetDelay(Duration::from_millis(250)))
        );
        assert_eq!(
            parse_command("delay/abc").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            parse_command("reboot").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
    }
}
