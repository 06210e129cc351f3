//! Names to addresses: `host:port` split, names looked up (by the system's
//! resolver, or by the DNS server of `--resolver`), and the targets file
//! read and parsed. The command line uses it for `-b`, `--targets-file` and
//! its listen addresses; reloads for the file; the refresh of names for
//! each name. Every lookup here blocks: at start-up, or on a thread of its
//! own.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;

use super::nameserver;
use super::spec::parse_targets_file;
use super::Target;

/// Where names are looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolver {
    /// The system's resolver (`getaddrinfo`: `/etc/hosts`, `resolv.conf`).
    System,
    /// This DNS server, asked over UDP (`--resolver`).
    Server(SocketAddr),
}

impl Resolver {
    /// The addresses of the name `host`, each with `port`, sorted, none
    /// twice; an empty list when it has none. Blocks.
    pub fn lookup(self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let mut addrs = match self {
            Resolver::System => (host, port)
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve '{host}': {e}"))?
                .collect(),
            Resolver::Server(server) => nameserver::ask(server, host)
                .map_err(|e| format!("cannot resolve '{host}' with {server}: {e}"))?
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect::<Vec<_>>(),
        };
        addrs.sort();
        addrs.dedup();
        Ok(addrs)
    }
}

/// Reads and parses a targets file (see [`parse_targets_file`]), its names
/// looked up by `resolver`.
pub fn read_targets_file(path: &Path, resolver: Resolver) -> Result<Vec<Target>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read targets file {}: {e}", path.display()))?;
    parse_targets_file(&text, &|host, port| resolver.lookup(host, port))
        .map_err(|e| format!("targets file {}: {e}", path.display()))
}

/// Splits `host:port` (or `[v6]:port`) into the host, without brackets,
/// and the port; port 0 only when `any_port`.
pub fn split_host_port(spec: &str, any_port: bool) -> Result<(&str, u16), String> {
    let bad = || format!("'{spec}' is not host:port");
    let (host, port) = spec.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.is_empty() {
        return Err(bad());
    }
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 && !any_port {
        return Err(bad());
    }
    Ok((host.trim_start_matches('[').trim_end_matches(']'), port))
}

/// Resolves `host:port` to its first address (the system's resolver);
/// port 0 only when `any_port`.
pub fn resolve(spec: &str, any_port: bool) -> Result<SocketAddr, String> {
    let (host, port) = split_host_port(spec, any_port)?;
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
