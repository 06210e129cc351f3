//! Every flag, in the order `--help` lists them: the one table the parser
//! reads flags by and `--help` is printed from. A new flag is a row here
//! (and its default in `defaults.rs`, its field in `Config`).

use super::defaults;
use super::duration::show_duration;
use super::flag::{Action, Flag, Help, Shown};
use crate::balance::Algorithm;
use crate::targets::resolve::Resolver;

/// The flags.
pub static FLAGS: &[Flag] = &[
    Flag {
        short: Some('p'),
        long: "port",
        value: Some("<port>"),
        help: Help::Text("port to listen on (0 picks a free one)"),
        default: Shown::Nothing,
        action: Action::Set(|s, v| v.port().map(|port| s.port = Some(port))),
    },
    Flag {
        short: Some('b'),
        long: "backend",
        value: Some("<host:port>"),
        help: Help::Text(
            "a target server; repeat for more; a name stands for each of its addresses, \
            looked up again every --resolve-interval; host:port,weight=N gives it N shares \
            (1-1000); https://host:port speaks TLS to it; ,proxy=v2 starts each connection \
            to it with a PROXY protocol v2 header naming the client",
        ),
        default: Shown::Number(defaults::WEIGHT as u64),
        action: Action::Set(|s, v| v.string().map(|spec| s.backends.push(spec))),
    },
    Flag {
        short: None,
        long: "algorithm",
        value: Some("<name>"),
        help: Help::Made(Algorithm::names),
        default: Shown::Text(defaults::ALGORITHM.as_str()),
        action: Action::Set(|s, v| v.algorithm().map(|a| s.config.algorithm = a)),
    },
    Flag {
        short: None,
        long: "bind",
        value: Some("<ip>"),
        help: Help::Text("address to listen on"),
        default: Shown::Ip(defaults::BIND),
        action: Action::Set(|s, v| v.ip().map(|ip| s.config.listen.set_ip(ip))),
    },
    Flag {
        short: None,
        long: "tls-port",
        value: Some("<port>"),
        help: Help::Text("also serve HTTPS on this port (0 picks a free one); needs --tls-cert"),
        default: Shown::Words("off"),
        action: Action::Set(|s, v| v.port().map(|port| s.tls_port = Some(port))),
    },
    Flag {
        short: None,
        long: "tls-cert",
        value: Some("<pem>"),
        help: Help::Text(
            "certificate chain for --tls-port, with its --tls-key; repeat both for more \
            certificates, picked by SNI (the first is the default); re-read on SIGHUP or \
            POST /reload",
        ),
        default: Shown::Nothing,
        action: Action::Set(|s, v| v.file().map(|path| s.tls_certs.push(path))),
    },
    Flag {
        short: None,
        long: "tls-key",
        value: Some("<pem>"),
        help: Help::Text("private key of the --tls-cert given in the same place"),
        default: Shown::Nothing,
        action: Action::Set(|s, v| v.file().map(|path| s.tls_keys.push(path))),
    },
    Flag {
        short: None,
        long: "backend-ca",
        value: Some("<pem>"),
        help: Help::Text("roots that https:// targets' certificates are checked against"),
        default: Shown::Words("the system's roots"),
        action: Action::Set(|s, v| v.file().map(|path| s.config.backend_ca = Some(path))),
    },
    Flag {
        short: None,
        long: "backend-insecure",
        value: None,
        help: Help::Text("do not check https:// targets' certificates (INSECURE: for tests)"),
        default: Shown::Words("off"),
        action: Action::Set(|s, _| {
            s.config.backend_insecure = true;
            Ok(())
        }),
    },
    Flag {
        short: None,
        long: "proxy-protocol",
        value: None,
        help: Help::Text(
            "each connection starts with a PROXY protocol header (v1 or v2, from an L4 \
            balancer in front), whose client address the balancer uses; a connection \
            without a valid one is closed",
        ),
        default: Shown::Words("off"),
        action: Action::Set(|s, _| {
            s.config.proxy_protocol = true;
            Ok(())
        }),
    },
    Flag {
        short: None,
        long: "splice",
        value: None,
        help: Help::Text(
            "move the rest of a large response body (of known length, over plain TCP on \
            both sides) from target to client with splice(2), never through user space: \
            less CPU for the balancer per byte",
        ),
        default: Shown::Words("off"),
        action: Action::Set(|s, _| {
            s.config.splice = true;
            Ok(())
        }),
    },
    Flag {
        short: None,
        long: "workers",
        value: Some("<n>"),
        help: Help::Text("worker threads, one per core"),
        default: Shown::Words("every core"),
        action: Action::Set(|s, v| v.number_at_least(1).map(|n| s.config.workers = Some(n))),
    },
    Flag {
        short: None,
        long: "health-interval",
        value: Some("<dur>"),
        help: Help::Text("time between health checks"),
        default: Shown::Duration(defaults::HEALTH_INTERVAL),
        action: Action::Set(|s, v| v.duration().map(|d| s.config.health_interval = d)),
    },
    Flag {
        short: None,
        long: "health-path",
        value: Some("<path>"),
        help: Help::Text("health check path"),
        default: Shown::Text(defaults::HEALTH_PATH),
        action: Action::Set(|s, v| v.request_path().map(|path| s.config.health_path = path)),
    },
    Flag {
        short: None,
        long: "health-timeout",
        value: Some("<dur>"),
        help: Help::Text("deadline of one health check"),
        default: Shown::DurationThen(defaults::HEALTH_TIMEOUT, "at most the interval"),
        action: Action::Set(|s, v| v.duration().map(|d| s.config.health_timeout = d)),
    },
    Flag {
        short: None,
        long: "rise",
        value: Some("<n>"),
        help: Help::Text("passing checks in a row before a degraded target is healthy"),
        default: Shown::Number(defaults::RISE as u64),
        action: Action::Set(|s, v| v.count(1).map(|n| s.config.rise = n)),
    },
    Flag {
        short: None,
        long: "fall",
        value: Some("<n>"),
        help: Help::Text("failing checks in a row before a healthy target is degraded"),
        default: Shown::Number(defaults::FALL as u64),
        action: Action::Set(|s, v| v.count(1).map(|n| s.config.fall = n)),
    },
    Flag {
        short: None,
        long: "eject-after",
        value: Some("<n>"),
        help: Help::Text(
            "5xx answers or failed connects in a row (per worker) that eject a \
            target between checks; 0 turns ejection off",
        ),
        default: Shown::Number(defaults::EJECT_AFTER as u64),
        action: Action::Set(|s, v| v.count(0).map(|n| s.config.eject_after = n)),
    },
    Flag {
        short: None,
        long: "eject-time",
        value: Some("<dur>"),
        help: Help::Made(eject_time_help),
        default: Shown::Duration(defaults::EJECT_TIME),
        action: Action::Set(|s, v| v.duration().map(|d| s.config.eject_time = d)),
    },
    Flag {
        short: None,
        long: "slow-start",
        value: Some("<dur>"),
        help: Help::Text("a returning target's share grows from 0 to full over this"),
        default: Shown::Words("off"),
        action: Action::Set(|s, v| v.duration().map(|d| s.config.slow_start = Some(d))),
    },
    Flag {
        short: None,
        long: "retries",
        value: Some("<n>"),
        help: Help::Text("further attempts, each on another target"),
        default: Shown::Number(defaults::RETRIES as u64),
        action: Action::Set(|s, v| v.number().map(|n| s.config.retries = n)),
    },
    Flag {
        short: None,
        long: "retry-non-idempotent",
        value: None,
        help: Help::Text(
            "also send a POST, PATCH, ... again after a target took it and failed \
            without answering",
        ),
        default: Shown::Words("only idempotent methods and requests with an Idempotency-Key"),
        action: Action::Set(|s, _| {
            s.config.retry_non_idempotent = true;
            Ok(())
        }),
    },
    Flag {
        short: None,
        long: "retry-budget",
        value: Some("<percent>"),
        help: Help::Text(
            "retries allowed per worker, as a share of its requests over the last \
            10s",
        ),
        default: Shown::Percent(defaults::RETRY_BUDGET),
        action: Action::Set(|s, v| v.percent().map(|p| s.config.retry_budget = p)),
    },
    Flag {
        short: None,
        long: "retry-floor",
        value: Some("<n>"),
        help: Help::Text("retries a second each worker may make whatever the budget"),
        default: Shown::Number(defaults::RETRY_FLOOR as u64),
        action: Action::Set(|s, v| v.count(0).map(|n| s.config.retry_floor = n)),
    },
    Flag {
        short: None,
        long: "retry-backoff",
        value: Some("<dur>"),
        help: Help::Text(
            "base of the jittered wait before the second and later retries of a \
            request",
        ),
        default: Shown::Duration(defaults::RETRY_BACKOFF),
        action: Action::Set(|s, v| v.duration_or_zero().map(|d| s.config.retry_backoff = d)),
    },
    Flag {
        short: None,
        long: "max-header-bytes",
        value: Some("<bytes>"),
        help: Help::Text("longest request head; longer is 431 (414 for the line alone)"),
        default: Shown::Number(defaults::MAX_HEADER_BYTES as u64),
        action: Action::Set(|s, v| v.number_at_least(64).map(|n| s.config.max_header_bytes = n)),
    },
    Flag {
        short: None,
        long: "client-header-timeout",
        value: Some("<dur>"),
        help: Help::Text(
            "deadline to receive a whole request head (the first one from the \
            connection's accept): 408",
        ),
        default: Shown::Duration(defaults::CLIENT_HEADER_TIMEOUT),
        action: Action::Set(|s, v| v.duration().map(|d| s.config.client_header_timeout = d)),
    },
    Flag {
        short: None,
        long: "client-body-timeout",
        value: Some("<dur>"),
        help: Help::Text("deadline to receive a whole request body: 408"),
        default: Shown::Duration(defaults::CLIENT_BODY_TIMEOUT),
        action: Action::Set(|s, v| v.duration().map(|d| s.config.client_body_timeout = d)),
    },
    Flag {
        short: None,
        long: "idle-timeout",
        value: Some("<dur>"),
        help: Help::Text(
            "idle keep-alive time of client connections (and at most that of target \
            connections), and the longest stall of a transfer or a tunnel",
        ),
        default: Shown::Duration(defaults::IDLE_TIMEOUT),
        action: Action::Set(|s, v| v.duration().map(|d| s.config.idle_timeout = d)),
    },
    Flag {
        short: None,
        long: "connect-timeout",
        value: Some("<dur>"),
        help: Help::Text("deadline to connect to a target"),
        default: Shown::Duration(defaults::CONNECT_TIMEOUT),
        action: Action::Set(|s, v| v.duration().map(|d| s.config.connect_timeout = d)),
    },
    Flag {
        short: None,
        long: "response-timeout",
        value: Some("<dur>"),
        help: Help::Text("deadline for a target to start its response: 504"),
        default: Shown::Duration(defaults::RESPONSE_TIMEOUT),
        action: Action::Set(|s, v| v.duration().map(|d| s.config.response_timeout = d)),
    },
    Flag {
        short: None,
        long: "max-connections",
        value: Some("<n>"),
        help: Help::Text("open client connections, all workers together"),
        default: Shown::Number(defaults::MAX_CONNECTIONS as u64),
        action: Action::Set(|s, v| v.number_at_least(1).map(|n| s.config.max_connections = n)),
    },
    Flag {
        short: None,
        long: "pool-size",
        value: Some("<n>"),
        help: Help::Text("idle connections kept per target per worker"),
        default: Shown::Number(defaults::POOL_SIZE as u64),
        action: Action::Set(|s, v| v.number().map(|n| s.config.pool_size = n)),
    },
    Flag {
        short: None,
        long: "pool-idle-timeout",
        value: Some("<dur>"),
        help: Help::Text(
            "how long an idle connection to a target is kept; keep it below the \
            targets' own keep-alive timeout",
        ),
        default: Shown::Duration(defaults::POOL_IDLE_TIMEOUT),
        action: Action::Set(|s, v| v.duration().map(|d| s.config.pool_idle_timeout = d)),
    },
    Flag {
        short: None,
        long: "max-replay-body",
        value: Some("<bytes>"),
        help: Help::Text("largest request body buffered for retries"),
        default: Shown::Number(defaults::MAX_REPLAY_BODY as u64),
        action: Action::Set(|s, v| v.number().map(|n| s.config.max_replay_body = n)),
    },
    Flag {
        short: None,
        long: "max-replay-memory",
        value: Some("<bytes>"),
        help: Help::Text(
            "request bodies buffered for retries, per worker; past it a body is \
            streamed and not replayed",
        ),
        default: Shown::Number(defaults::MAX_REPLAY_MEMORY as u64),
        action: Action::Set(|s, v| v.number().map(|n| s.config.max_replay_memory = n)),
    },
    Flag {
        short: None,
        long: "targets-file",
        value: Some("<path>"),
        help: Help::Text(
            "more targets, one host:port per line (# comments); re-read on SIGHUP or \
            POST /reload on the admin port",
        ),
        default: Shown::Nothing,
        action: Action::Set(|s, v| v.file().map(|path| s.config.targets_file = Some(path))),
    },
    Flag {
        short: None,
        long: "resolve-interval",
        value: Some("<dur>"),
        help: Help::Text(
            "time between lookups of the targets' names, each name's addresses its \
            targets; 0 looks them up only at start and on reloads",
        ),
        default: Shown::Duration(defaults::RESOLVE_INTERVAL),
        action: Action::Set(|s, v| v.duration_or_zero().map(|d| s.config.resolve_interval = d)),
    },
    Flag {
        short: None,
        long: "resolver",
        value: Some("<ip:port>"),
        help: Help::Text("the DNS server names are looked up with, over UDP"),
        default: Shown::Words("the system's"),
        action: Action::Set(|s, v| {
            v.ip_port()
                .map(|addr| s.config.resolver = Resolver::Server(addr))
        }),
    },
    Flag {
        short: None,
        long: "max-targets",
        value: Some("<n>"),
        help: Help::Text("most targets at once, reloads included"),
        default: Shown::Number(defaults::MAX_TARGETS as u64),
        action: Action::Set(|s, v| v.number_at_least(1).map(|n| s.config.max_targets = n)),
    },
    Flag {
        short: None,
        long: "admin",
        value: Some("<host:port>"),
        help: Help::Text("serve /metrics, /targets and POST /reload there"),
        default: Shown::Words("off"),
        action: Action::Set(|s, v| v.address().map(|addr| s.config.admin = Some(addr))),
    },
    Flag {
        short: None,
        long: "upgrade-socket",
        value: Some("<path>"),
        help: Help::Text(
            "offer the listening sockets on this Unix socket to a successor started with \
            --upgrade-from (an upgrade without a dropped connection)",
        ),
        default: Shown::Words("off"),
        action: Action::Set(|s, v| v.file().map(|path| s.config.upgrade_socket = Some(path))),
    },
    Flag {
        short: None,
        long: "upgrade-from",
        value: Some("<path>"),
        help: Help::Text(
            "take the listening sockets of the balancer offering them there, serve, then \
            tell it to drain and exit",
        ),
        default: Shown::Nothing,
        action: Action::Set(|s, v| v.file().map(|path| s.config.upgrade_from = Some(path))),
    },
    Flag {
        short: None,
        long: "drain-timeout",
        value: Some("<dur>"),
        help: Help::Text("on SIGTERM or SIGINT, how long requests in flight may finish"),
        default: Shown::Duration(defaults::DRAIN_TIMEOUT),
        action: Action::Set(|s, v| v.duration().map(|d| s.config.drain_timeout = d)),
    },
    Flag {
        short: None,
        long: "access-log",
        value: Some("<path|->"),
        help: Help::Text("one line per request, to a file or stdout"),
        default: Shown::Words("off"),
        action: Action::Set(|s, v| v.log_destination().map(|to| s.config.access_log = Some(to))),
    },
    Flag {
        short: None,
        long: "log-level",
        value: Some("<level>"),
        help: Help::Text("error, warn, info or debug"),
        default: Shown::Text(defaults::LOG_LEVEL.as_str()),
        action: Action::Set(|s, v| v.log_level().map(|level| s.config.log_level = level)),
    },
    Flag {
        short: Some('h'),
        long: "help",
        value: None,
        help: Help::Text("print this help"),
        default: Shown::Nothing,
        action: Action::Help,
    },
    Flag {
        short: Some('V'),
        long: "version",
        value: None,
        help: Help::Text("print the version"),
        default: Shown::Nothing,
        action: Action::Version,
    },
];

/// `--eject-time`'s help, which names the longest ejection.
fn eject_time_help() -> String {
    format!(
        "first ejection's length, doubled for each one in a row up to {}",
        show_duration(defaults::MAX_EJECTION)
    )
}

/// The flag that `arg` names, if any.
pub fn find(arg: &lexopt::Arg<'_>) -> Option<&'static Flag> {
    match *arg {
        lexopt::Arg::Short(c) => FLAGS.iter().find(|f| f.short == Some(c)),
        lexopt::Arg::Long(name) => FLAGS.iter().find(|f| f.long == name),
        lexopt::Arg::Value(_) => None,
    }
}
