//! One flag's value, read and checked: each reader takes the value after
//! the flag (or after its `=`) and says in one line what is wrong with it.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::duration::parse_duration;
use super::{ConfigError, LogDestination};
use crate::balance::Algorithm;
use crate::log::Level;
use crate::targets::resolve::resolve;

/// The value of the flag just read, not yet taken from the command line.
pub struct FlagValue<'a> {
    parser: &'a mut lexopt::Parser,
    /// The flag's long name, without its dashes: errors name it `--long`.
    long: &'static str,
}

impl<'a> FlagValue<'a> {
    pub fn new(parser: &'a mut lexopt::Parser, long: &'static str) -> FlagValue<'a> {
        FlagValue { parser, long }
    }

    /// The error `--long <what>`, as one line.
    fn error<T>(&self, what: impl std::fmt::Display) -> Result<T, ConfigError> {
        Err(ConfigError(format!("--{}{what}", self.long)))
    }

    /// The value as it was written.
    pub fn string(&mut self) -> Result<String, ConfigError> {
        match self.parser.value() {
            Ok(v) => match v.into_string() {
                Ok(s) => Ok(s),
                Err(_) => self.error(" needs valid UTF-8"),
            },
            Err(_) => self.error(" needs a value"),
        }
    }

    /// A whole number.
    pub fn number(&mut self) -> Result<usize, ConfigError> {
        let v = self.string()?;
        match v.parse() {
            Ok(n) => Ok(n),
            Err(_) => self.error(format_args!(": '{v}' is not a whole number")),
        }
    }

    /// A whole number of at least `min`.
    pub fn number_at_least(&mut self, min: usize) -> Result<usize, ConfigError> {
        match self.number()? {
            n if n >= min => Ok(n),
            _ => self.error(format_args!(" must be at least {min}")),
        }
    }

    /// A whole number of at least `min` that fits in 32 bits.
    pub fn count(&mut self, min: u32) -> Result<u32, ConfigError> {
        let n = self.number()?;
        match u32::try_from(n) {
            Ok(n) if n >= min => Ok(n),
            _ => self.error(format_args!(" must be from {min} to {}", u32::MAX)),
        }
    }

    /// A duration with its unit, longer than zero.
    pub fn duration(&mut self) -> Result<Duration, ConfigError> {
        let v = self.string()?;
        match parse_duration(&v) {
            Some(d) if !d.is_zero() => Ok(d),
            _ => self.error(format_args!(
                ": '{v}' is not a duration such as 250ms or 2s"
            )),
        }
    }

    /// A duration with its unit, zero allowed.
    pub fn duration_or_zero(&mut self) -> Result<Duration, ConfigError> {
        let v = self.string()?;
        match parse_duration(&v) {
            Some(d) => Ok(d),
            None => self.error(format_args!(
                ": '{v}' is not a duration such as 10ms or 0ms"
            )),
        }
    }

    /// A percentage from 0 to 100, with or without its `%`.
    pub fn percent(&mut self) -> Result<u32, ConfigError> {
        let v = self.string()?;
        match v.strip_suffix('%').unwrap_or(&v).parse() {
            Ok(p) if p <= 100 => Ok(p),
            _ => self.error(format_args!(": '{v}' is not a percentage from 0 to 100")),
        }
    }

    /// A TCP port (0 included).
    pub fn port(&mut self) -> Result<u16, ConfigError> {
        let v = self.string()?;
        match v.parse() {
            Ok(port) => Ok(port),
            Err(_) => self.error(format_args!(": '{v}' is not a port")),
        }
    }

    /// An IP address, v4 or v6.
    pub fn ip(&mut self) -> Result<IpAddr, ConfigError> {
        let v = self.string()?;
        match v.parse() {
            Ok(ip) => Ok(ip),
            Err(_) => self.error(format_args!(": '{v}' is not an IP address")),
        }
    }

    /// `host:port` resolved once; port 0 picks a free one.
    pub fn address(&mut self) -> Result<SocketAddr, ConfigError> {
        let v = self.string()?;
        match resolve(&v, true) {
            Ok(addr) => Ok(addr),
            Err(e) => self.error(format_args!(": {e}")),
        }
    }

    /// An IP address and a port other than 0 (`10.0.0.2:53`, `[::1]:53`),
    /// never looked up.
    pub fn ip_port(&mut self) -> Result<SocketAddr, ConfigError> {
        let v = self.string()?;
        match v.parse::<SocketAddr>() {
            Ok(addr) if addr.port() != 0 => Ok(addr),
            _ => self.error(format_args!(": '{v}' is not ip:port")),
        }
    }

    /// A path for a request line: from `/`, without spaces or controls.
    pub fn request_path(&mut self) -> Result<String, ConfigError> {
        let v = self.string()?;
        if !v.starts_with('/') || v.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return self.error(format_args!(": '{v}' must start with / and have no spaces"));
        }
        Ok(v)
    }

    /// A file's path.
    pub fn file(&mut self) -> Result<PathBuf, ConfigError> {
        self.string().map(PathBuf::from)
    }

    /// A balancing algorithm's name.
    pub fn algorithm(&mut self) -> Result<Algorithm, ConfigError> {
        let v = self.string()?;
        match Algorithm::parse(&v) {
            Some(algorithm) => Ok(algorithm),
            None => self.error(format_args!(": '{v}' is not {}", Algorithm::names())),
        }
    }

    /// A log level's name.
    pub fn log_level(&mut self) -> Result<Level, ConfigError> {
        let v = self.string()?;
        match Level::parse(&v) {
            Some(level) => Ok(level),
            None => self.error(format_args!(": '{v}' is not error, warn, info or debug")),
        }
    }

    /// A file's path, or `-` for stdout.
    pub fn log_destination(&mut self) -> Result<LogDestination, ConfigError> {
        match self.string()?.as_str() {
            "-" => Ok(LogDestination::Stdout),
            "" => self.error(" needs a path or -"),
            path => Ok(LogDestination::File(PathBuf::from(path))),
        }
    }
}
