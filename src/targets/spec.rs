//! What the operator wrote for a target, on the command line (`-b`) or a
//! line of the targets file: `[https://]host:port[,weight=N]`, parsed; and
//! the targets it stands for once its host is looked up: one for an IP
//! address, one for each address of a name.
//!
//! A name's targets are named as the name is written while it has one
//! address (`app.svc:8080`), and `name(ip)` each while it has several
//! (`app.svc:8080(10.0.0.5)`): without a space, so that `/targets` keeps
//! its columns; the name they came from is their `source`.

use rustls::pki_types::ServerName;
use std::net::{IpAddr, SocketAddr};

use super::resolve::split_host_port;
use super::{Target, DEFAULT_WEIGHT, HTTPS, MAX_WEIGHT};

/// A target as written, its host not looked up yet.
#[derive(Debug, Clone)]
pub struct Spec {
    /// `host:port`, or `https://host:port` for a TLS target (`http://` and
    /// a final `/` dropped): the name of its target, or the source of its
    /// targets.
    pub name: String,
    /// The host without its brackets, and the port.
    host: String,
    port: u16,
    pub weight: u32,
    /// The name a TLS target's certificate must be valid for (SNI).
    pub tls: Option<ServerName<'static>>,
    /// `,proxy=v2`: connections to it start with a PROXY protocol v2 header.
    pub proxy_v2: bool,
}

/// Looks a host name up: its addresses with the port, or why not. Blocks.
pub type Lookup<'a> = &'a dyn Fn(&str, u16) -> Result<Vec<SocketAddr>, String>;

/// Parses `[https://]host:port` with options after commas, in any order
/// (`weight=N`, `proxy=v2`). `http://` may be written and means plain HTTP.
pub fn parse_spec(spec: &str) -> Result<Spec, String> {
    let (name, options) = match spec.split_once(',') {
        Some((name, options)) => (name, Some(options)),
        None => (spec, None),
    };
    let mut weight = DEFAULT_WEIGHT;
    let mut proxy_v2 = false;
    for option in options.into_iter().flat_map(|o| o.split(',')) {
        if let Some(version) = option.strip_prefix("proxy=") {
            if version != "v2" {
                return Err(format!(
                    "'{spec}': '{option}' is not proxy=v2 (the one PROXY protocol version sent)"
                ));
            }
            proxy_v2 = true;
            continue;
        }
        let bad = || {
            format!(
                "'{spec}': '{option}' is not weight=N with N from 1 to {MAX_WEIGHT}, nor proxy=v2"
            )
        };
        let n = option.strip_prefix("weight=").ok_or_else(bad)?;
        weight = n.parse().map_err(|_| bad())?;
        if !(1..=MAX_WEIGHT).contains(&weight) {
            return Err(bad());
        }
    }
    let (name, tls) = match name.strip_prefix(HTTPS) {
        Some(authority) => (authority, true),
        None => (name.strip_prefix("http://").unwrap_or(name), false),
    };
    let name = name.strip_suffix('/').unwrap_or(name);
    let tls = match tls {
        true => Some(tls_name(spec, name)?),
        false => None,
    };
    let (host, port) = split_host_port(name, false).map_err(|e| format!("backend {e}"))?;
    Ok(Spec {
        name: match tls {
            Some(_) => format!("{HTTPS}{name}"),
            None => name.to_string(),
        },
        host: host.to_string(),
        port,
        weight,
        tls,
        proxy_v2,
    })
}

/// The name a TLS target's certificate is checked for: the host of
/// `host:port` (a DNS name or an IP address).
fn tls_name(spec: &str, authority: &str) -> Result<ServerName<'static>, String> {
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|_| format!("'{spec}': '{host}' is not a host name TLS can check"))
}

impl Spec {
    /// Its address, when its host is an IP address (never looked up).
    pub fn literal(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.host.parse().ok()?;
        Some(SocketAddr::new(ip, self.port))
    }

    /// The targets it stands for: itself at its IP address, or one for each
    /// address `lookup` finds for its name (at least one).
    pub fn targets(&self, lookup: Lookup<'_>) -> Result<Vec<Target>, String> {
        if let Some(addr) = self.literal() {
            return Ok(vec![Target {
                name: self.name.clone(),
                addr,
                weight: self.weight,
                tls: self.tls.clone(),
                proxy_v2: self.proxy_v2,
                source: None,
            }]);
        }
        let authority = self.name.strip_prefix(HTTPS).unwrap_or(&self.name);
        let addrs =
            lookup(&self.host, self.port).map_err(|e| format!("backend '{authority}': {e}"))?;
        if addrs.is_empty() {
            return Err(format!(
                "backend '{authority}': no address for '{}'",
                self.host
            ));
        }
        Ok(named_targets(
            &self.name,
            &addrs,
            self.weight,
            &self.tls,
            self.proxy_v2,
        ))
    }
}

/// The targets of a name (`source`, as written) at `addrs`: named as the
/// name when there is one, `name(ip)` each when there are several.
pub fn named_targets(
    source: &str,
    addrs: &[SocketAddr],
    weight: u32,
    tls: &Option<ServerName<'static>>,
    proxy_v2: bool,
) -> Vec<Target> {
    addrs
        .iter()
        .map(|&addr| Target {
            name: match addrs.len() {
                1 => source.to_string(),
                _ => format!("{source}({})", addr.ip()),
            },
            addr,
            weight,
            tls: tls.clone(),
            proxy_v2,
            source: Some(source.to_string()),
        })
        .collect()
}

/// Parses `[https://]host:port[,weight=N]` and looks its name up (see
/// `Spec::targets`).
pub fn parse_targets(spec: &str, lookup: Lookup<'_>) -> Result<Vec<Target>, String> {
    parse_spec(spec)?.targets(lookup)
}

/// Parses a targets file: one `host:port` per line; blank lines and `#`
/// comments (whole lines or after an entry) are ignored. Names are looked
/// up here. The first bad line refuses the whole file.
pub fn parse_targets_file(text: &str, lookup: Lookup<'_>) -> Result<Vec<Target>, String> {
    let mut targets = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        if entry.split_whitespace().count() > 1 {
            return Err(format!("line {}: '{entry}' is more than one target", n + 1));
        }
        let these = parse_targets(entry, lookup).map_err(|e| format!("line {}: {e}", n + 1))?;
        if let Some(t) = these
            .iter()
            .find(|t| targets.iter().any(|o: &Target| o.same(t)))
        {
            return Err(format!(
                "line {}: '{}' is listed twice",
                n + 1,
                t.source_name()
            ));
        }
        targets.extend(these);
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(last: &[u8]) -> Vec<SocketAddr> {
        last.iter()
            .map(|&n| SocketAddr::from(([10, 0, 0, n], 8080)))
            .collect()
    }

    #[test]
    fn an_ip_address_is_one_target_never_looked_up() {
        let lookup = |_: &str, _: u16| -> Result<Vec<SocketAddr>, String> { panic!("looked up") };
        let t = parse_targets("https://[::1]:8443,weight=3", &lookup).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].name, "https://[::1]:8443");
        assert_eq!(t[0].addr, "[::1]:8443".parse().unwrap());
        assert_eq!((t[0].weight, t[0].source.as_deref()), (3, None));
    }

    #[test]
    fn a_name_with_one_address_is_named_as_written() {
        let lookup = |host: &str, port: u16| {
            assert_eq!((host, port), ("app.svc", 8080));
            Ok(addrs(&[5]))
        };
        let t = parse_targets("http://app.svc:8080/", &lookup).unwrap();
        assert_eq!(t[0].name, "app.svc:8080");
        assert_eq!(t[0].source.as_deref(), Some("app.svc:8080"));
        assert_eq!(t[0].authority(), "app.svc:8080");
    }

    #[test]
    fn a_name_with_several_addresses_is_that_many_targets() {
        let lookup = |_: &str, _: u16| Ok(addrs(&[5, 6]));
        let t = parse_targets("https://app.svc:8080,weight=2", &lookup).unwrap();
        let names: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "https://app.svc:8080(10.0.0.5)",
                "https://app.svc:8080(10.0.0.6)"
            ]
        );
        for t in &t {
            assert_eq!(t.source.as_deref(), Some("https://app.svc:8080"));
            assert_eq!(t.authority(), "app.svc:8080", "the Host of its checks");
            assert_eq!(t.tls, Some(ServerName::try_from("app.svc").unwrap()));
            assert_eq!(t.weight, 2);
        }
    }

    #[test]
    fn a_name_without_addresses_or_a_failed_lookup_is_an_error() {
        let none = |_: &str, _: u16| Ok(vec![]);
        let err = parse_targets("app.svc:80", &none).unwrap_err();
        assert_eq!(err, "backend 'app.svc:80': no address for 'app.svc'");
        let failed = |_: &str, _: u16| Err("cannot resolve 'app.svc': SERVFAIL".to_string());
        let err = parse_targets("https://app.svc:80", &failed).unwrap_err();
        assert_eq!(
            err,
            "backend 'app.svc:80': cannot resolve 'app.svc': SERVFAIL"
        );
    }

    #[test]
    fn a_name_listed_twice_in_a_file_is_refused() {
        let lookup = |_: &str, _: u16| Ok(addrs(&[5, 6]));
        let err = parse_targets_file("app.svc:8080\napp.svc:8080,weight=2\n", &lookup).unwrap_err();
        assert_eq!(err, "line 2: 'app.svc:8080' is listed twice");
    }
}
