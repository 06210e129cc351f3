//! Names to addresses: `host:port` split and resolved (once, for now), and
//! the targets file read and parsed. The command line uses it for `-b`,
//! `--targets-file` and its listen addresses; reloads for the file.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;

use super::{parse_targets_file, Target};

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
pub fn resolve(spec: &str, any_port: bool) -> Result<SocketAddr, String> {
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
