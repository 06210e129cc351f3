//! Command-line flags (lexopt) to a validated [`Config`], with one-line errors.
//!
//! - `flags.rs`: the table of every flag (names, help, default shown, what
//!   the parser does), which both the parser and `--help` read; `flag.rs`
//!   says what a row is.
//! - `defaults.rs`: every default, once.
//! - `parse.rs`: the loop over the arguments; `value.rs`: each kind of
//!   value read and checked; `settings.rs`: the config being built, and the
//!   checks that need every flag; `backends.rs`: the targets of `-b` and
//!   `--targets-file` checked together; `tls.rs`: the certificate files
//!   read, and the flags that go with them checked together.
//! - `usage.rs`: the `--help` text, printed from the table.
//! - `duration.rs`: durations (`250ms`). Names are looked up, and the
//!   targets file read, by `targets::resolve`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::balance::Algorithm;
use crate::log::Level;
use crate::targets::resolve::Resolver;
use crate::targets::Target;
use crate::tls::{BackendTls, FrontTls};

mod backends;
pub mod defaults;
mod duration;
mod flag;
mod flags;
mod parse;
mod settings;
mod tls;
mod usage;
mod value;

pub use duration::parse_duration;
pub use parse::parse_args;
pub use usage::usage;

/// Everything the balancer needs to run, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the workers listen on (`--bind` and `--port`).
    pub listen: SocketAddr,
    /// The `-b` targets (a name's every address), as looked up at start-up.
    pub backends: Vec<Target>,
    /// `--targets-file`, and the targets it held at start-up.
    pub targets_file: Option<PathBuf>,
    pub file_targets: Vec<Target>,
    /// Most targets at once.
    pub max_targets: usize,
    /// Time between lookups of the targets' names (zero: only at start-up
    /// and on reloads).
    pub resolve_interval: Duration,
    /// Where names are looked up: the system's resolver, or `--resolver`.
    pub resolver: Resolver,
    /// Where the admin endpoint listens, if anywhere.
    pub admin: Option<SocketAddr>,
    /// `--upgrade-socket`: where the listeners are offered to a successor.
    pub upgrade_socket: Option<PathBuf>,
    /// `--upgrade-from`: where to take the running balancer's listeners.
    pub upgrade_from: Option<PathBuf>,
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
    /// Each connection starts with a PROXY protocol header.
    pub proxy_protocol: bool,
    /// Large response bodies are spliced (`--splice`).
    pub splice: bool,
    /// Where HTTPS is served (`--bind` and `--tls-port`), and with what.
    pub tls_listen: Option<SocketAddr>,
    pub tls: Option<Arc<FrontTls>>,
    /// `--backend-ca` and `--backend-insecure`, and the TLS for `https://`
    /// targets they make.
    pub backend_ca: Option<PathBuf>,
    pub backend_insecure: bool,
    pub backend_tls: Option<Arc<BackendTls>>,
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
