//! Every default of the command line, once: the parser starts from these,
//! `--help` shows them (through the table in `flags.rs`), and the code that
//! runs without a `Config` (the targets' [`rules`], the ejection cap)
//! reads them from here too.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::LogDestination;
use crate::balance::Algorithm;
use crate::log::Level;
use crate::targets::resolve::Resolver;

/// `--bind`: every address.
pub const BIND: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// A target's `,weight=N` when it has none.
pub const WEIGHT: u32 = crate::targets::DEFAULT_WEIGHT;

/// `--algorithm`.
pub const ALGORITHM: Algorithm = Algorithm::RoundRobin;

/// `--workers`: `None` is one per core.
pub const WORKERS: Option<usize> = None;

/// `--resolve-interval`: how often each target's name is looked up again.
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(5);

/// `--resolver`: the system's resolver.
pub const RESOLVER: Resolver = Resolver::System;

/// `--health-interval`.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(1);

/// `--health-path`.
pub const HEALTH_PATH: &str = "/_health";

/// Deadline of one health check unless `--health-timeout` says otherwise
/// (never longer than the interval).
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

/// `--rise`: passing checks in a row before a degraded target is healthy.
pub const RISE: u32 = 2;

/// `--fall`: failing checks in a row before a healthy target is degraded.
pub const FALL: u32 = 3;

/// `--eject-after`: failures in a row (per worker) that eject a target.
pub const EJECT_AFTER: u32 = 5;

/// `--eject-time`: length of a first ejection.
pub const EJECT_TIME: Duration = Duration::from_secs(10);

/// The longest an ejection lasts (unless `--eject-time` is longer). Not a
/// flag, but `--help` names it.
pub const MAX_EJECTION: Duration = Duration::from_secs(300);

/// `--slow-start`: off.
pub const SLOW_START: Option<Duration> = None;

/// `--proxy-protocol`: off, connections start with HTTP.
pub const PROXY_PROTOCOL: bool = false;

/// `--splice`: off, bodies are copied through the read buffer.
pub const SPLICE: bool = false;

/// `--retries`: further attempts, each on another target.
pub const RETRIES: usize = 2;

/// Without `--retry-non-idempotent`, only idempotent requests (and those
/// with an `Idempotency-Key`) are sent again after a target took them.
pub const RETRY_NON_IDEMPOTENT: bool = false;

/// `--retry-budget`, in percent of a worker's requests.
pub const RETRY_BUDGET: u32 = 20;

/// `--retry-floor`: retries a second whatever the budget.
pub const RETRY_FLOOR: u32 = 10;

/// `--retry-backoff`: base of the wait before the second and later retries.
pub const RETRY_BACKOFF: Duration = Duration::from_millis(10);

/// Longest request head unless `--max-header-bytes` says otherwise.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// `--client-header-timeout`.
pub const CLIENT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Deadline for a whole request body unless `--client-body-timeout` says
/// otherwise.
pub const CLIENT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// `--idle-timeout`.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// `--connect-timeout`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// `--response-timeout`.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Open client connections, all workers together, unless `--max-connections`
/// says otherwise.
pub const MAX_CONNECTIONS: usize = 100_000;

/// Idle keep-alive connections kept per target on each worker.
pub const POOL_SIZE: usize = 128;

/// How long an idle pooled connection is kept unless `--pool-idle-timeout`
/// says otherwise: below the 5 s keep-alive timeout of Node, uvicorn and
/// many other servers, so that the balancer closes first rather than race a
/// request onto a connection the target is closing.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Largest request body buffered whole so that it can be replayed on another
/// target after a 500 or a reset. A larger body is streamed and not replayed.
pub const MAX_REPLAY_BODY: usize = 1024 * 1024;

/// Memory each worker may hold in request bodies buffered for replay unless
/// `--max-replay-memory` says otherwise.
pub const MAX_REPLAY_MEMORY: usize = 64 * 1024 * 1024;

/// Most targets at once unless `--max-targets` says otherwise.
pub const MAX_TARGETS: usize = 1024;

/// `--admin`: off.
pub const ADMIN: Option<SocketAddr> = None;

/// `--drain-timeout`.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// `--access-log`: off.
pub const ACCESS_LOG: Option<LogDestination> = None;

/// `--log-level`.
pub const LOG_LEVEL: Level = Level::Info;

/// The health rules with every default (what `Shared::new` builds from the
/// flags when none is given).
pub fn rules() -> crate::health::Rules {
    crate::health::Rules {
        rise: RISE,
        fall: FALL,
        eject_base: EJECT_TIME,
        eject_max: MAX_EJECTION,
        slow_start: SLOW_START,
    }
}
