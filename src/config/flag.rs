//! What a command-line flag is: its names, what `--help` says of it, its
//! default as `--help` shows it, and what the parser does with it. The
//! flags themselves are the table in `flags.rs`.

use std::net::IpAddr;
use std::time::Duration;

use super::duration::show_duration;
use super::settings::Settings;
use super::value::FlagValue;
use super::ConfigError;

/// One flag.
pub struct Flag {
    /// `'p'` for `-p`; most flags have none.
    pub short: Option<char>,
    /// Its name after `--`.
    pub long: &'static str,
    /// What its value is (`<dur>`), or `None` for a switch.
    pub value: Option<&'static str>,
    /// What it does, in words (`--help` wraps them).
    pub help: Help,
    /// The default `--help` shows.
    pub default: Shown,
    /// What the parser does when it meets the flag.
    pub action: Action,
}

/// What `--help` says a flag does.
pub enum Help {
    Text(&'static str),
    /// Words made when printed, for help that names a constant (the
    /// algorithms, the longest ejection).
    Made(fn() -> String),
}

/// A flag's default as `--help` shows it. Values come from `defaults.rs`,
/// which the parser starts from.
pub enum Shown {
    /// None shown: the flag is required, or has no value to default to.
    Nothing,
    Number(u64),
    Duration(Duration),
    Percent(u32),
    Ip(IpAddr),
    /// A value the flag takes as it is written (a path, a name).
    Text(&'static str),
    /// A duration and a remark on it: `1s, at most the interval`.
    DurationThen(Duration, &'static str),
    /// Words for a default that no value of the flag gives (`off`).
    Words(&'static str),
}

/// Sets a flag's value (or, for a switch, its effect) in the settings.
pub type Set = fn(&mut Settings, &mut FlagValue<'_>) -> Result<(), ConfigError>;

/// What the parser does with a flag.
pub enum Action {
    Set(Set),
    /// Stop and print the help.
    Help,
    /// Stop and print the version.
    Version,
}

impl Help {
    pub fn text(&self) -> String {
        match self {
            Help::Text(text) => text.to_string(),
            Help::Made(make) => make(),
        }
    }
}

impl Shown {
    /// The words inside `[default: ...]`, if any.
    pub fn text(&self) -> Option<String> {
        Some(match *self {
            Shown::Nothing => return None,
            Shown::Number(n) => n.to_string(),
            Shown::Duration(d) => show_duration(d),
            Shown::Percent(p) => format!("{p}%"),
            Shown::Ip(ip) => ip.to_string(),
            Shown::Text(text) | Shown::Words(text) => text.to_string(),
            Shown::DurationThen(d, then) => format!("{}, {then}", show_duration(d)),
        })
    }
}
