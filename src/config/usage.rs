//! The `--help` text, printed from the flag table: each flag's names, then
//! its help and default wrapped in a column.

use super::flag::Flag;
use super::flags::FLAGS;

const ABOUT: &str = "load-balancer: an HTTP/1.1 load balancer (thread-per-core, io_uring)";

const SYNOPSIS: &str =
    "Usage: load-balancer -p <port> -b <host:port> [-b <host:port> ...] [options]";

const FOOTER: &str = "Durations take a unit: 250ms, 2s (0 needs none).";

/// Where the help of each flag starts; names longer than this push its
/// first line along.
const HELP_COLUMN: usize = 33;

/// The longest line, unless a flag's names or one word are longer.
const WIDTH: usize = 100;

/// The text `--help` prints.
pub fn usage() -> String {
    let mut out = format!("{ABOUT}\n\n{SYNOPSIS}\n\nOptions:\n");
    for flag in FLAGS {
        out.push_str(&describe(flag));
    }
    out.push_str(&format!("\n{FOOTER}\n"));
    out
}

/// A flag's lines: `  -p, --port <port>`, then its help and default
/// filled into lines from the help column.
fn describe(flag: &Flag) -> String {
    let names = names(flag);
    let gap = if names.len() < HELP_COLUMN {
        HELP_COLUMN - names.len()
    } else {
        2
    };
    let mut done = String::new();
    let mut line = format!("{names}{:gap$}", "");
    let mut line_is_empty = true;
    for piece in pieces(flag) {
        if !line_is_empty && line.len() + 1 + piece.len() > WIDTH {
            done.push_str(&line);
            done.push('\n');
            line = " ".repeat(HELP_COLUMN);
            line_is_empty = true;
        }
        if !line_is_empty {
            line.push(' ');
        }
        line.push_str(&piece);
        line_is_empty = false;
    }
    done.push_str(&line);
    done.push('\n');
    done
}

/// `  -p, --port <port>` or `      --workers <n>`.
fn names(flag: &Flag) -> String {
    let short = match flag.short {
        Some(c) => format!("-{c}, "),
        None => "    ".to_string(),
    };
    match flag.value {
        Some(value) => format!("  {short}--{} {value}", flag.long),
        None => format!("  {short}--{}", flag.long),
    }
}

/// What wrapping may not break: each word of the help, then the default
/// whole if it fits on a line (else word by word).
fn pieces(flag: &Flag) -> Vec<String> {
    let mut pieces: Vec<String> = flag
        .help
        .text()
        .split_whitespace()
        .map(String::from)
        .collect();
    if let Some(default) = flag.default.text() {
        let default = format!("[default: {default}]");
        if default.len() <= WIDTH - HELP_COLUMN {
            pieces.push(default);
        } else {
            pieces.extend(default.split_whitespace().map(String::from));
        }
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_args, Command, Config, ConfigError};
    use crate::targets::resolve::Resolver;

    const BASE: [&str; 4] = ["-p", "1", "-b", "127.0.0.1:2"];

    fn parse(extra: &[&str]) -> Result<Command, ConfigError> {
        parse_args(BASE.iter().chain(extra))
    }

    fn config(args: &[&str]) -> Config {
        match parse_args(args) {
            Ok(Command::Run(c)) => *c,
            other => panic!("{args:?}: expected a config, got {other:?}"),
        }
    }

    /// Each flag's entry in the help as one line: `--rise <n> passing
    /// checks ... [default: 2]`, keyed by its long name.
    fn entries(help: &str) -> Vec<(String, String)> {
        let options = help.split("Options:\n").nth(1).unwrap();
        let options = options.split("\n\n").next().unwrap();
        let mut entries: Vec<(String, String)> = Vec::new();
        for line in options.lines() {
            let words = line.split_whitespace().collect::<Vec<_>>().join(" ");
            if line.starts_with(&" ".repeat(HELP_COLUMN)) {
                let entry = &mut entries.last_mut().expect("a flag first").1;
                *entry = format!("{entry} {words}");
            } else {
                let long = words.split(' ').find(|w| w.starts_with("--")).unwrap();
                entries.push((long.trim_start_matches("--").to_string(), words));
            }
        }
        entries
    }

    /// What `[default: ...]` says in an entry, if anything.
    fn shown_default(entry: &str) -> Option<&str> {
        let (_, default) = entry.split_once("[default: ")?;
        Some(
            default
                .strip_suffix(']')
                .expect("the default ends the entry"),
        )
    }

    #[test]
    fn every_flag_the_parser_accepts_is_in_the_help() {
        let help = usage();
        let entries = entries(&help);
        let listed: Vec<&str> = entries.iter().map(|(long, _)| long.as_str()).collect();
        let table: Vec<&str> = FLAGS.iter().map(|f| f.long).collect();
        assert_eq!(listed, table, "the help lists the table, in its order");
        for flag in FLAGS {
            let long = format!("--{}", flag.long);
            let invalid = format!("invalid option '{long}'");
            assert!(
                !matches!(parse(&[&long]), Err(ConfigError(e)) if e == invalid),
                "the parser refuses {long}"
            );
            if let Some(c) = flag.short {
                assert!(help.contains(&format!("  -{c}, {long}")), "help lacks -{c}");
            }
        }
        let unknown = parse(&["--frobnicate"]).unwrap_err().0;
        assert_eq!(unknown, "invalid option '--frobnicate'");
    }

    /// Whether a config has a default that help gives in words.
    type Means = fn(&Config) -> bool;

    /// Defaults that are words, not values the flag takes, and what they
    /// mean in the config.
    const WORDS: &[(&str, &str, Means)] = &[
        ("workers", "every core", |c| c.workers.is_none()),
        ("proxy-protocol", "off", |c| !c.proxy_protocol),
        ("splice", "off", |c| !c.splice),
        ("tls-port", "off", |c| {
            c.tls_listen.is_none() && c.tls.is_none()
        }),
        ("backend-ca", "the system's roots", |c| {
            c.backend_ca.is_none()
        }),
        ("backend-insecure", "off", |c| !c.backend_insecure),
        ("upgrade-socket", "off", |c| c.upgrade_socket.is_none()),
        ("slow-start", "off", |c| c.slow_start.is_none()),
        (
            "retry-non-idempotent",
            "only idempotent methods and requests with an Idempotency-Key",
            |c| !c.retry_non_idempotent,
        ),
        ("resolver", "the system's", |c| {
            c.resolver == Resolver::System
        }),
        ("admin", "off", |c| c.admin.is_none()),
        ("access-log", "off", |c| c.access_log.is_none()),
    ];

    #[test]
    fn each_default_in_the_help_is_what_the_parser_uses_without_the_flag() {
        let without = format!("{:?}", config(&BASE));
        let mut checked = 0;
        for (long, entry) in entries(&usage()) {
            let Some(shown) = shown_default(&entry) else {
                continue;
            };
            checked += 1;
            if let Some((_, words, holds)) = WORDS.iter().find(|(l, ..)| *l == long) {
                assert_eq!(shown, *words, "--{long}");
                assert!(holds(&config(&BASE)), "--{long}: not {words}");
                continue;
            }
            // The value before any remark: `1s` of `1s, at most the interval`.
            let value = shown.split(", ").next().unwrap();
            let given = if long == "backend" {
                config(&["-p", "1", "-b", &format!("127.0.0.1:2,weight={value}")])
            } else {
                config(&[&BASE[..], &[&format!("--{long}"), value]].concat())
            };
            assert_eq!(format!("{given:?}"), without, "--{long} {value}");
        }
        assert_eq!(
            checked,
            FLAGS.len() - 7,
            "all but -p, --targets-file, --tls-cert, --tls-key, --upgrade-from, -h, -V"
        );
    }

    #[test]
    fn help_lines_end_before_the_width() {
        for line in usage().lines() {
            assert!(line.len() <= WIDTH, "{line:?}");
        }
    }
}
