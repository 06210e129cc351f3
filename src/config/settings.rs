//! The settings the flags are read into: the defaults first, each flag's
//! value over its default, and at the end the checks that need them all.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::backends::{check_count, file_targets, parse_backends};
use super::tls::{backend_tls, front_tls};
use super::{defaults, Config, ConfigError};

/// What the flags said so far.
pub struct Settings {
    /// Each default, or its flag's value. The port of `listen` and the
    /// targets are filled in by [`Settings::finish`].
    pub config: Config,
    /// `--port`, which is required.
    pub port: Option<u16>,
    /// The `-b` targets as written.
    pub backends: Vec<String>,
    /// `--tls-port`, and the `--tls-cert` and `--tls-key` files in order.
    pub tls_port: Option<u16>,
    pub tls_certs: Vec<PathBuf>,
    pub tls_keys: Vec<PathBuf>,
}

impl Settings {
    /// Settings with every default (`defaults.rs`).
    pub fn new() -> Settings {
        Settings {
            config: default_config(),
            port: None,
            backends: Vec::new(),
            tls_port: None,
            tls_certs: Vec::new(),
            tls_keys: Vec::new(),
        }
    }

    /// The config, once every flag is read: the required flags are there,
    /// the targets resolved and checked, the health timeout capped.
    pub fn finish(self) -> Result<Config, ConfigError> {
        let Settings {
            mut config,
            port,
            backends,
            tls_port,
            tls_certs,
            tls_keys,
        } = self;
        let Some(port) = port else {
            return Err(ConfigError("missing --port".into()));
        };
        config.listen.set_port(port);
        if let Some((tls_port, tls)) = front_tls(port, tls_port, tls_certs, tls_keys)? {
            config.tls_listen = Some(SocketAddr::new(config.listen.ip(), tls_port));
            config.tls = Some(tls);
        }
        config.backends = parse_backends(backends, config.resolver)?;
        config.file_targets = file_targets(&config)?;
        check_count(&config)?;
        config.backend_tls = Some(backend_tls(&config)?);
        config.health_timeout = config.health_timeout.min(config.health_interval);
        Ok(config)
    }
}

/// The config when no flag is given (no port, no target yet).
fn default_config() -> Config {
    Config {
        listen: SocketAddr::new(defaults::BIND, 0),
        backends: Vec::new(),
        targets_file: None,
        file_targets: Vec::new(),
        max_targets: defaults::MAX_TARGETS,
        resolve_interval: defaults::RESOLVE_INTERVAL,
        resolver: defaults::RESOLVER,
        admin: defaults::ADMIN,
        drain_timeout: defaults::DRAIN_TIMEOUT,
        access_log: defaults::ACCESS_LOG,
        log_level: defaults::LOG_LEVEL,
        workers: defaults::WORKERS,
        health_interval: defaults::HEALTH_INTERVAL,
        health_path: defaults::HEALTH_PATH.to_string(),
        health_timeout: defaults::HEALTH_TIMEOUT,
        retries: defaults::RETRIES,
        retry_non_idempotent: defaults::RETRY_NON_IDEMPOTENT,
        proxy_protocol: defaults::PROXY_PROTOCOL,
        splice: defaults::SPLICE,
        tls_listen: None,
        tls: None,
        backend_ca: None,
        backend_insecure: false,
        backend_tls: None,
        upgrade_socket: None,
        upgrade_from: None,
        algorithm: defaults::ALGORITHM,
        rise: defaults::RISE,
        fall: defaults::FALL,
        eject_after: defaults::EJECT_AFTER,
        eject_time: defaults::EJECT_TIME,
        slow_start: defaults::SLOW_START,
        retry_budget: defaults::RETRY_BUDGET,
        retry_floor: defaults::RETRY_FLOOR,
        retry_backoff: defaults::RETRY_BACKOFF,
        max_header_bytes: defaults::MAX_HEADER_BYTES,
        client_header_timeout: defaults::CLIENT_HEADER_TIMEOUT,
        client_body_timeout: defaults::CLIENT_BODY_TIMEOUT,
        idle_timeout: defaults::IDLE_TIMEOUT,
        connect_timeout: defaults::CONNECT_TIMEOUT,
        response_timeout: defaults::RESPONSE_TIMEOUT,
        max_connections: defaults::MAX_CONNECTIONS,
        pool_size: defaults::POOL_SIZE,
        pool_idle_timeout: defaults::POOL_IDLE_TIMEOUT,
        max_replay_body: defaults::MAX_REPLAY_BODY,
        max_replay_memory: defaults::MAX_REPLAY_MEMORY,
    }
}
