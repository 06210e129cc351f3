//! Command-line flags (lexopt) to a validated [`Config`], with one-line errors.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::balance::Algorithm;
use crate::log::Level;
use crate::targets::{parse_target, parse_targets_file, Target};

/// Largest request body buffered whole so that it can be replayed on another
/// target after a 500 or a reset. A larger body is streamed and not replayed.
pub const DEFAULT_MAX_REPLAY_BODY: usize = 1024 * 1024;

/// Deadline of one health check unless `--health-timeout` says otherwise
/// (never longer than the interval).
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest request head unless `--max-header-bytes` says otherwise.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;

/// Open client connections, all workers together, unless `--max-connections`
/// says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;

/// Most targets at once unless `--max-targets` says otherwise.
pub const DEFAULT_MAX_TARGETS: usize = 1024;

/// Idle keep-alive connections kept per target on each worker.
pub const DEFAULT_POOL_SIZE: usize = 128;

/// How long an idle pooled connection is kept unless `--pool-idle-timeout`
/// says otherwise: below the 5 s keep-alive timeout of Node, uvicorn and
/// many other servers, so that the balancer closes first rather than race a
/// request onto a connection the target is closing.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Deadline for a whole request body unless `--client-body-timeout` says
/// otherwise.
pub const DEFAULT_CLIENT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// Memory each worker may hold in request bodies buffered for replay unless
/// `--max-replay-memory` says otherwise.
pub const DEFAULT_MAX_REPLAY_MEMORY: usize = 64 * 1024 * 1024;

/// The usage text printed by `--help`.
pub const USAGE: &str = "\
load-balancer: an HTTP/1.1 load balancer (thread-per-core, io_uring)

Usage: load-balancer -p <port> -b <host:port> [-b <host:port> ...] [options]

Options:
  -p, --port <port>              port to listen on (0 picks a free one)
  -b, --backend <host:port>      a target server; repeat for more (names resolved once);
                                 host:port,weight=N gives it N shares (1-1000) [default: 1]
      --algorithm <name>         round-robin, weighted, least-connections or p2c-ewma
                                 [default: round-robin]
      --bind <ip>                address to listen on [default: 0.0.0.0]
      --workers <n>              worker threads, one per core [default: every core]
      --health-interval <dur>    time between health checks [default: 1s]
      --health-path <path>       health check path [default: /_health]
      --health-timeout <dur>     deadline of one health check [default: 1s, at most the interval]
      --rise <n>                 passing checks in a row before a degraded target is healthy [default: 2]
      --fall <n>                 failing checks in a row before a healthy target is degraded [default: 3]
      --eject-after <n>          5xx answers or failed connects in a row (per worker) that eject a
                                 target between checks; 0 turns ejection off [default: 5]
      --eject-time <dur>         first ejection's length, doubled for each one in a row up to 300s
                                 [default: 10s]
      --slow-start <dur>         a returning target's share grows from 0 to full over this [default: off]
      --retries <n>              further attempts, each on another target [default: 2]
      --retry-non-idempotent     also send a POST, PATCH, ... again after a target took it and
                                 failed without answering [default: only idempotent methods
                                 and requests with an Idempotency-Key]
      --retry-budget <percent>   retries allowed per worker, as a share of its requests over the
                                 last 10s [default: 20%]
      --retry-floor <n>          retries a second each worker may make whatever the budget [default: 10]
      --retry-backoff <dur>      base of the jittered wait before the second and later retries of a
                                 request [default: 10ms]
      --max-header-bytes <bytes> longest request head; longer is 431 (414 for the line alone) [default: 16384]
      --client-header-timeout <dur>  deadline to receive a whole request head (the first one
                                 from the connection's accept): 408 [default: 10s]
      --client-body-timeout <dur>  deadline to receive a whole request body: 408 [default: 60s]
      --idle-timeout <dur>       idle keep-alive time of client connections (and at most that of
                                 target connections), and the longest stall of a transfer or a
                                 tunnel [default: 60s]
      --connect-timeout <dur>    deadline to connect to a target [default: 2s]
      --response-timeout <dur>   deadline for a target to start its response: 504 [default: 30s]
      --max-connections <n>      open client connections, all workers together [default: 100000]
      --pool-size <n>            idle connections kept per target per worker [default: 128]
      --pool-idle-timeout <dur>  how long an idle connection to a target is kept; keep it below
                                 the targets' own keep-alive timeout [default: 4s]
      --max-replay-body <bytes>  largest request body buffered for retries [default: 1048576]
      --max-replay-memory <bytes>  request bodies buffered for retries, per worker; past it a
                                 body is streamed and not replayed [default: 67108864]
      --targets-file <path>      more targets, one host:port per line (# comments); re-read on
                                 SIGHUP or POST /reload on the admin port
      --max-targets <n>          most targets at once, reloads included [default: 1024]
      --admin <host:port>        serve /metrics, /targets and POST /reload there [default: off]
      --drain-timeout <dur>      on SIGTERM or SIGINT, how long requests in flight may finish [default: 30s]
      --access-log <path|->      one line per request, to a file or stdout [default: off]
      --log-level <level>        error, warn, info or debug [default: info]
  -h, --help                     print this help
  -V, --version                  print the version

Durations take a unit: 250ms, 2s.
";

/// Everything the balancer needs to run, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the workers listen on (`--bind` and `--port`).
    pub listen: SocketAddr,
    /// The `-b` targets, resolved once at start-up.
    pub backends: Vec<Target>,
    /// `--targets-file`, and the targets it held at start-up.
    pub targets_file: Option<PathBuf>,
    pub file_targets: Vec<Target>,
    /// Most targets at once.
    pub max_targets: usize,
    /// Where the admin endpoint listens, if anywhere.
    pub admin: Option<SocketAddr>,
    /// How long requests in flight may finish after SIGTERM or SIGINT.
    pub drain_timeout: Duration,
    /// Where access log lines go, if anywhere.
    pub access_log: Option<LogDestination>,
    pub log_level: Level,
    /// Worker threads; `None` means one per available core.
    pub workers: Option<usize>,
    pub health_interval: Duration,
    pub health_path: String,
    pub health_timeout: Duration,
    pub retries: usize,
    /// Send again requests that are not idempotent after a target took them
    /// and failed without an answer.
    pub retry_non_idempotent: bool,
    /// How a target is picked.
    pub algorithm: Algorithm,
    /// Passing (`rise`) or failing (`fall`) checks in a row that change a
    /// target's state.
    pub rise: u32,
    pub fall: u32,
    /// Failures in a row on live traffic (per worker) that eject a target;
    /// 0 is off.
    pub eject_after: u32,
    /// Length of a first ejection.
    pub eject_time: Duration,
    pub slow_start: Option<Duration>,
    /// Retries a worker may make: `retry_budget`% of its requests over the
    /// last ten seconds, plus `retry_floor` a second.
    pub retry_budget: u32,
    pub retry_floor: u32,
    /// Base of the backoff before the second and later retries.
    pub retry_backoff: Duration,
    /// Longest request head (request line and fields).
    pub max_header_bytes: usize,
    /// Deadline to receive a whole request head: from its first byte, or
    /// for a connection's first request from its accept.
    pub client_header_timeout: Duration,
    /// Deadline to receive a whole request body, from the end of its head
    /// (or from the `100 Continue`).
    pub client_body_timeout: Duration,
    /// Idle keep-alive time of client and pooled target connections, and
    /// the longest a transfer (or tunnel) may go without progress.
    pub idle_timeout: Duration,
    pub connect_timeout: Duration,
    /// Deadline for a target to start its response once the request is sent.
    pub response_timeout: Duration,
    /// Open client connections, all workers together.
    pub max_connections: usize,
    pub pool_size: usize,
    /// How long an idle pooled target connection is kept.
    pub pool_idle_timeout: Duration,
    pub max_replay_body: usize,
    /// Bytes of request bodies a worker may hold buffered for replay.
    pub max_replay_memory: usize,
}

/// Where access log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogDestination {
    Stdout,
    File(PathBuf),
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Command {
    Run(Box<Config>),
    Help,
    Version,
}

/// A command-line mistake, printed as one line followed by a hint to `--help`.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (try --help)", self.0)
    }
}

impl std::error::Error for ConfigError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// Parses a duration such as `250ms` or `2s`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (num, scale_ms) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000)
    } else {
        return None;
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = num.parse().ok()?;
    Some(Duration::from_millis(n.checked_mul(scale_ms)?))
}

/// Splits `host:port` (or `[v6]:port`) and resolves it once.
pub fn resolve_backend(spec: &str) -> Result<SocketAddr, String> {
    resolve(spec, false).map_err(|e| format!("backend {e}"))
}

/// Reads and parses a targets file (see [`parse_targets_file`]).
pub fn read_targets_file(path: &Path) -> Result<Vec<Target>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read targets file {}: {e}", path.display()))?;
    parse_targets_file(&text, resolve_backend)
        .map_err(|e| format!("targets file {}: {e}", path.display()))
}

/// Resolves `host:port`; port 0 only when `any_port`.
fn resolve(spec: &str, any_port: bool) -> Result<SocketAddr, String> {
    let bad = || format!("'{spec}' is not host:port");
    let (host, port) = spec.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.is_empty() {
        return Err(bad());
    }
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 && !any_port {
        return Err(bad());
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    match (host, port).to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("'{spec}': no address for '{host}'")),
        Err(e) => Err(format!("'{spec}': cannot resolve '{host}': {e}")),
    }
}

fn value_str(parser: &mut lexopt::Parser, flag: &str) -> Result<String, ConfigError> {
    match parser.value() {
        Ok(v) => v
            .into_string()
            .map_err(|_| ConfigError(format!("{flag} needs valid UTF-8"))),
        Err(_) => err(format!("{flag} needs a value")),
    }
}

fn value_num(parser: &mut lexopt::Parser, flag: &str) -> Result<usize, ConfigError> {
    let v = value_str(parser, flag)?;
    v.parse()
        .map_err(|_| ConfigError(format!("{flag}: '{v}' is not a whole number")))
}

/// A whole number of at least `min` that fits in 32 bits.
fn value_count(parser: &mut lexopt::Parser, flag: &str, min: u32) -> Result<u32, ConfigError> {
    let n = value_num(parser, flag)?;
    match u32::try_from(n) {
        Ok(n) if n >= min => Ok(n),
        _ => err(format!("{flag} must be from {min} to {}", u32::MAX)),
    }
}

fn value_duration(parser: &mut lexopt::Parser, flag: &str) -> Result<Duration, ConfigError> {
    let v = value_str(parser, flag)?;
    match parse_duration(&v) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => err(format!(
            "{flag}: '{v}' is not a duration such as 250ms or 2s"
        )),
    }
}

/// Parses the arguments after the program name.
pub fn parse_args<I>(args: I) -> Result<Command, ConfigError>
where
    I: IntoIterator,
    I::Item: Into<std::ffi::OsString>,
{
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let mut port: Option<u16> = None;
    let mut bind = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let mut backend_names = Vec::new();
    let mut workers = None;
    let mut health_interval = Duration::from_secs(1);
    let mut health_path = "/_health".to_string();
    let mut health_timeout = None;
    let mut retries = 2;
    let mut retry_non_idempotent = false;
    let mut algorithm = Algorithm::RoundRobin;
    let mut rise = 2;
    let mut fall = 3;
    let mut eject_after = 5;
    let mut eject_time = Duration::from_secs(10);
    let mut slow_start = None;
    let mut retry_budget = 20;
    let mut retry_floor = 10;
    let mut retry_backoff = Duration::from_millis(10);
    let mut max_header_bytes = DEFAULT_MAX_HEADER_BYTES;
    let mut client_header_timeout = Duration::from_secs(10);
    let mut client_body_timeout = DEFAULT_CLIENT_BODY_TIMEOUT;
    let mut idle_timeout = Duration::from_secs(60);
    let mut connect_timeout = Duration::from_secs(2);
    let mut response_timeout = Duration::from_secs(30);
    let mut max_connections = DEFAULT_MAX_CONNECTIONS;
    let mut pool_size = DEFAULT_POOL_SIZE;
    let mut pool_idle_timeout = DEFAULT_POOL_IDLE_TIMEOUT;
    let mut max_replay_body = DEFAULT_MAX_REPLAY_BODY;
    let mut max_replay_memory = DEFAULT_MAX_REPLAY_MEMORY;
    let mut targets_file = None;
    let mut max_targets = DEFAULT_MAX_TARGETS;
    let mut admin = None;
    let mut drain_timeout = Duration::from_secs(30);
    let mut access_log = None;
    let mut log_level = Level::Info;

    loop {
        let arg = match parser.next() {
            Ok(Some(arg)) => arg,
            Ok(None) => break,
            Err(e) => return err(e.to_string()),
        };
        match arg {
            Short('p') | Long("port") => {
                let v = value_str(&mut parser, "--port")?;
                port = Some(
                    v.parse()
                        .map_err(|_| ConfigError(format!("--port: '{v}' is not a port")))?,
                );
            }
            Short('b') | Long("backend") => {
                backend_names.push(value_str(&mut parser, "--backend")?)
            }
            Long("bind") => {
                let v = value_str(&mut parser, "--bind")?;
                bind = v
                    .parse()
                    .map_err(|_| ConfigError(format!("--bind: '{v}' is not an IP address")))?;
            }
            Long("workers") => {
                let n = value_num(&mut parser, "--workers")?;
                if n == 0 {
                    return err("--workers must be at least 1");
                }
                workers = Some(n);
            }
            Long("health-interval") => {
                health_interval = value_duration(&mut parser, "--health-interval")?
            }
            Long("health-path") => {
                health_path = value_str(&mut parser, "--health-path")?;
                if !health_path.starts_with('/')
                    || health_path.bytes().any(|b| b <= b' ' || b == 0x7f)
                {
                    return err(format!(
                        "--health-path: '{health_path}' must start with / and have no spaces"
                    ));
                }
            }
            Long("health-timeout") => {
                health_timeout = Some(value_duration(&mut parser, "--health-timeout")?)
            }
            Long("retries") => retries = value_num(&mut parser, "--retries")?,
            Long("retry-non-idempotent") => retry_non_idempotent = true,
            Long("algorithm") => {
                let v = value_str(&mut parser, "--algorithm")?;
                algorithm = Algorithm::parse(&v).ok_or_else(|| {
                    ConfigError(format!("--algorithm: '{v}' is not {}", Algorithm::names()))
                })?;
            }
            Long("rise") => rise = value_count(&mut parser, "--rise", 1)?,
            Long("fall") => fall = value_count(&mut parser, "--fall", 1)?,
            Long("eject-after") => eject_after = value_count(&mut parser, "--eject-after", 0)?,
            Long("eject-time") => eject_time = value_duration(&mut parser, "--eject-time")?,
            Long("slow-start") => slow_start = Some(value_duration(&mut parser, "--slow-start")?),
            Long("retry-budget") => {
                let v = value_str(&mut parser, "--retry-budget")?;
                retry_budget = v
                    .strip_suffix('%')
                    .unwrap_or(&v)
                    .parse()
                    .ok()
                    .filter(|p| *p <= 100)
                    .ok_or_else(|| {
                        ConfigError(format!(
                            "--retry-budget: '{v}' is not a percentage from 0 to 100"
                        ))
                    })?;
            }
            Long("retry-floor") => retry_floor = value_count(&mut parser, "--retry-floor", 0)?,
            Long("retry-backoff") => {
                let v = value_str(&mut parser, "--retry-backoff")?;
                retry_backoff = parse_duration(&v).ok_or_else(|| {
                    ConfigError(format!(
                        "--retry-backoff: '{v}' is not a duration such as 10ms or 0ms"
                    ))
                })?;
            }
            Long("connect-timeout") => {
                connect_timeout = value_duration(&mut parser, "--connect-timeout")?
            }
            Long("response-timeout") => {
                response_timeout = value_duration(&mut parser, "--response-timeout")?
            }
            Long("client-header-timeout") => {
                client_header_timeout = value_duration(&mut parser, "--client-header-timeout")?
            }
            Long("client-body-timeout") => {
                client_body_timeout = value_duration(&mut parser, "--client-body-timeout")?
            }
            Long("idle-timeout") => idle_timeout = value_duration(&mut parser, "--idle-timeout")?,
            Long("pool-idle-timeout") => {
                pool_idle_timeout = value_duration(&mut parser, "--pool-idle-timeout")?
            }
            Long("max-header-bytes") => {
                max_header_bytes = value_num(&mut parser, "--max-header-bytes")?;
                if max_header_bytes < 64 {
                    return err("--max-header-bytes must be at least 64");
                }
            }
            Long("max-connections") => {
                max_connections = value_num(&mut parser, "--max-connections")?;
                if max_connections == 0 {
                    return err("--max-connections must be at least 1");
                }
            }
            Long("pool-size") => pool_size = value_num(&mut parser, "--pool-size")?,
            Long("max-replay-body") => {
                max_replay_body = value_num(&mut parser, "--max-replay-body")?
            }
            Long("max-replay-memory") => {
                max_replay_memory = value_num(&mut parser, "--max-replay-memory")?
            }
            Long("targets-file") => {
                targets_file = Some(PathBuf::from(value_str(&mut parser, "--targets-file")?))
            }
            Long("max-targets") => {
                max_targets = value_num(&mut parser, "--max-targets")?;
                if max_targets == 0 {
                    return err("--max-targets must be at least 1");
                }
            }
            Long("admin") => {
                let v = value_str(&mut parser, "--admin")?;
                admin = Some(resolve(&v, true).map_err(|e| ConfigError(format!("--admin: {e}")))?);
            }
            Long("drain-timeout") => {
                drain_timeout = value_duration(&mut parser, "--drain-timeout")?
            }
            Long("access-log") => {
                let v = value_str(&mut parser, "--access-log")?;
                access_log = Some(match v.as_str() {
                    "-" => LogDestination::Stdout,
                    "" => return err("--access-log needs a path or -"),
                    path => LogDestination::File(PathBuf::from(path)),
                });
            }
            Long("log-level") => {
                let v = value_str(&mut parser, "--log-level")?;
                log_level = Level::parse(&v).ok_or_else(|| {
                    ConfigError(format!(
                        "--log-level: '{v}' is not error, warn, info or debug"
                    ))
                })?;
            }
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Value(v) => return err(format!("unexpected argument '{}'", v.to_string_lossy())),
            other => return err(other.unexpected().to_string()),
        }
    }

    let Some(port) = port else {
        return err("missing --port");
    };
    let backends = backend_names
        .into_iter()
        .map(|spec| parse_target(&spec, resolve_backend).map_err(ConfigError))
        .collect::<Result<Vec<_>, ConfigError>>()?;
    if let Some(dup) = backends
        .iter()
        .enumerate()
        .find(|(i, b)| backends[..*i].iter().any(|o| o.same(b)))
    {
        return err(format!("backend '{}' is given twice", dup.1.name));
    }
    let file_targets = match &targets_file {
        Some(path) => read_targets_file(path).map_err(ConfigError)?,
        None => Vec::new(),
    };
    if let Some(dup) = file_targets
        .iter()
        .find(|t| backends.iter().any(|b| b.same(t)))
    {
        return err(format!(
            "'{}' is both a -b backend and in the targets file",
            dup.name
        ));
    }
    if backends.is_empty() && file_targets.is_empty() {
        return err("no backend: give at least one -b host:port (or a --targets-file)");
    }
    if backends.len() + file_targets.len() > max_targets {
        return err(format!(
            "{} targets are more than --max-targets {max_targets}",
            backends.len() + file_targets.len()
        ));
    }
    let health_timeout = health_timeout
        .unwrap_or(DEFAULT_HEALTH_TIMEOUT)
        .min(health_interval);
    Ok(Command::Run(Box::new(Config {
        listen: SocketAddr::new(bind, port),
        backends,
        targets_file,
        file_targets,
        max_targets,
        admin,
        drain_timeout,
        access_log,
        log_level,
        workers,
        health_interval,
        health_path,
        health_timeout,
        retries,
        retry_non_idempotent,
        algorithm,
        rise,
        fall,
        eject_after,
        eject_time,
        slow_start,
        retry_budget,
        retry_floor,
        retry_backoff,
        max_header_bytes,
        client_header_timeout,
        client_body_timeout,
        idle_timeout,
        connect_timeout,
        response_timeout,
        max_connections,
        pool_size,
        pool_idle_timeout,
        max_replay_body,
        max_replay_memory,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, ConfigError> {
        parse_args(args.iter().copied())
    }

    fn config(args: &[&str]) -> Config {
        match parse(args) {
            Ok(Command::Run(c)) => *c,
            other => panic!("expected a config, got {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        parse(args).expect_err("expected an error").0
    }

    #[test]
    fn parses_port_backends_and_defaults() {
        let c = config(&[
            "-p",
            "8080",
            "-b",
            "127.0.0.1:9000",
            "--backend",
            "127.0.0.1:9001",
        ]);
        assert_eq!(c.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(c.backends.len(), 2);
        assert_eq!(c.health_interval, Duration::from_secs(1));
        assert_eq!(c.health_path, "/_health");
        assert_eq!(c.retries, 2);
        assert_eq!(c.workers, None);
        assert_eq!(c.health_timeout, Duration::from_secs(1));
        let slow = config(&["-p", "1", "-b", "127.0.0.1:2", "--health-interval", "60s"]);
        assert_eq!(
            slow.health_timeout,
            Duration::from_secs(1),
            "not the interval"
        );
    }

    #[test]
    fn parses_every_option() {
        let c = config(&[
            "--port=8080",
            "-b",
            "localhost:9000",
            "--bind",
            "127.0.0.1",
            "--workers",
            "3",
            "--health-interval",
            "250ms",
            "--health-path",
            "/hc",
            "--retries",
            "0",
            "--connect-timeout",
            "1s",
            "--response-timeout",
            "5s",
            "--idle-timeout",
            "7s",
            "--client-header-timeout",
            "3s",
            "--pool-size",
            "4",
            "--max-replay-body",
            "10",
            "--max-header-bytes",
            "1000",
            "--max-connections",
            "9",
        ]);
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.backends[0].addr.port(), 9000);
        assert_eq!(c.workers, Some(3));
        assert_eq!(c.health_interval, Duration::from_millis(250));
        assert_eq!(c.health_timeout, Duration::from_millis(250));
        assert_eq!(c.health_path, "/hc");
        assert_eq!(c.retries, 0);
        assert_eq!(c.response_timeout, Duration::from_secs(5));
        assert_eq!(c.pool_size, 4);
        assert_eq!(c.max_replay_body, 10);
        assert_eq!(c.idle_timeout, Duration::from_secs(7));
        assert_eq!(c.client_header_timeout, Duration::from_secs(3));
        assert_eq!(c.max_header_bytes, 1000);
        assert_eq!(c.max_connections, 9);
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("2"), None);
        assert_eq!(parse_duration("ms"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("1.5s"), None);
    }

    #[test]
    fn rejects_bad_input_with_one_line() {
        let cases: &[(&[&str], &str)] = &[
            (&["-b", "127.0.0.1:1"], "missing --port"),
            (&["-p", "8080"], "no backend"),
            (&["-p", "http", "-b", "a:1"], "'http' is not a port"),
            (&["-p", "70000", "-b", "a:1"], "'70000' is not a port"),
            (&["-p", "80", "-b", "nocolon"], "'nocolon' is not host:port"),
            (
                &["-p", "80", "-b", "host:port"],
                "'host:port' is not host:port",
            ),
            (&["-p", "80", "-b", ":80"], "is not host:port"),
            (
                &["-p", "80", "-b", "127.0.0.1:1", "--frobnicate"],
                "frobnicate",
            ),
            (&["-p"], "--port needs a value"),
            (
                &["-p", "80", "-b", "127.0.0.1:1", "--workers", "0"],
                "at least 1",
            ),
            (
                &["-p", "80", "-b", "127.0.0.1:1", "--health-interval", "5"],
                "not a duration",
            ),
            (
                &["-p", "80", "-b", "127.0.0.1:1", "stray"],
                "unexpected argument 'stray'",
            ),
        ];
        for (args, want) in cases {
            let msg = error(args);
            assert!(msg.contains(want), "{args:?}: {msg:?} lacks {want:?}");
            assert!(!msg.contains('\n'), "{args:?}: not one line: {msg:?}");
        }
    }

    #[test]
    fn help_and_version() {
        assert!(matches!(parse(&["--help"]), Ok(Command::Help)));
        assert!(matches!(parse(&["-V"]), Ok(Command::Version)));
    }
}
