//! The command line read flag by flag: each flag looked up in the table
//! (`flags.rs`) and its value set, then the settings finished into a
//! [`Config`](super::Config).

use std::ffi::OsString;

use super::flag::{Action, Flag};
use super::flags::find;
use super::settings::Settings;
use super::value::FlagValue;
use super::{Command, ConfigError};

/// Parses the arguments after the program name.
pub fn parse_args<I>(args: I) -> Result<Command, ConfigError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut parser = lexopt::Parser::from_args(args);
    let mut settings = Settings::new();
    while let Some(flag) = next_flag(&mut parser)? {
        match flag.action {
            Action::Set(set) => set(&mut settings, &mut FlagValue::new(&mut parser, flag.long))?,
            Action::Help => return Ok(Command::Help),
            Action::Version => return Ok(Command::Version),
        }
    }
    let config = settings.finish()?;
    Ok(Command::Run(Box::new(config)))
}

/// The next flag, `None` at the end; an error for anything else.
fn next_flag(parser: &mut lexopt::Parser) -> Result<Option<&'static Flag>, ConfigError> {
    let arg = match parser.next() {
        Ok(Some(arg)) => arg,
        Ok(None) => return Ok(None),
        Err(e) => return Err(ConfigError(e.to_string())),
    };
    if let lexopt::Arg::Value(v) = &arg {
        let v = v.to_string_lossy();
        return Err(ConfigError(format!("unexpected argument '{v}'")));
    }
    match find(&arg) {
        Some(flag) => Ok(Some(flag)),
        None => Err(ConfigError(arg.unexpected().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Config;

    fn parse(args: &[&str]) -> Result<Command, ConfigError> {
        parse_args(args.iter().copied())
    }

    fn config(args: &[&str]) -> Config {
        match parse(args) {
            Ok(Command::Run(c)) => *c,
            other => panic!("expected a config, got {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        parse(args).expect_err("expected an error").0
    }

    #[test]
    fn parses_port_backends_and_defaults() {
        let c = config(&[
            "-p",
            "8080",
            "-b",
            "127.0.0.1:9000",
            "--backend",
            "127.0.0.1:9001",
        ]);
        assert_eq!(c.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(c.backends.len(), 2);
        assert_eq!(c.health_interval, Duration::from_secs(1));
        assert_eq!(c.health_path, "/_health");
        assert_eq!(c.retries, 2);
        assert_eq!(c.workers, None);
        assert_eq!(c.health_timeout, Duration::from_secs(1));
        let slow = config(&["-p", "1", "-b", "127.0.0.1:2", "--health-interval", "60s"]);
        assert_eq!(
            slow.health_timeout,
            Duration::from_secs(1),
            "not the interval"
        );
    }

    #[test]
    fn parses_every_option() {
        let c = config(&[
            "--port=8080",
            "-b",
            "localhost:9000",
            "--bind",
            "127.0.0.1",
            "--workers",
            "3",
            "--health-interval",
            "250ms",
            "--health-path",
            "/hc",
            "--retries",
            "0",
            "--connect-timeout",
            "1s",
            "--response-timeout",
            "5s",
            "--idle-timeout",
            "7s",
            "--client-header-timeout",
            "3s",
            "--pool-size",
            "4",
            "--max-replay-body",
            "10",
            "--max-header-bytes",
            "1000",
            "--max-connections",
            "9",
        ]);
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.backends[0].addr.port(), 9000);
        assert_eq!(c.workers, Some(3));
        assert_eq!(c.health_interval, Duration::from_millis(250));
        assert_eq!(c.health_timeout, Duration::from_millis(250));
        assert_eq!(c.health_path, "/hc");
        assert_eq!(c.retries, 0);
        assert_eq!(c.response_timeout, Duration::from_secs(5));
        assert_eq!(c.pool_size, 4);
        assert_eq!(c.max_replay_body, 10);
        assert_eq!(c.idle_timeout, Duration::from_secs(7));
        assert_eq!(c.client_header_timeout, Duration::from_secs(3));
        assert_eq!(c.max_header_bytes, 1000);
        assert_eq!(c.max_connections, 9);
    }

    #[test]
    fn rejects_bad_input_with_one_line() {
        let cases: &[(&[&str], &str)] = &[
            (&["-b", "127.0.0.1:1"], "missing --port"),
            (&["-p", "8080"], "no backend"),
            (&["-p", "http", "-b", "a:1"], "'http' is not a port"),
            (&["-p", "70000", "-b", "a:1"], "'70000' is not a port"),
            (&["-p", "80", "-b", "nocolon"], "'nocolon' is not host:port"),
            (
                &["-p", "80", "-b", "host:port"],
                "'host:port' is not host:port",
            ),
            (&["-p", "80", "-b", ":80"], "is not host:port"),
            (
                &["-p", "80", "-b", "127.0.0.1:1", "--frobnicate"],
                "frobnicate",
            ),
            (&["-p"], "--port needs a value"),
            (
                &["-p", "80", "-b", "127.0.0.1:1", "--workers", "0"],
                "at least 1",
            ),
            (
                &["-p", "80", "-b", "127.0.0.1:1", "--health-interval", "5"],
                "not a duration",
            ),
            (
                &["-p", "80", "-b", "127.0.0.1:1", "stray"],
                "unexpected argument 'stray'",
            ),
        ];
        for (args, want) in cases {
            let msg = error(args);
            assert!(msg.contains(want), "{args:?}: {msg:?} lacks {want:?}");
            assert!(!msg.contains('\n'), "{args:?}: not one line: {msg:?}");
        }
    }

    #[test]
    fn help_and_version() {
        assert!(matches!(parse(&["--help"]), Ok(Command::Help)));
        assert!(matches!(parse(&["-V"]), Ok(Command::Version)));
    }

    #[test]
    fn errors_say_which_flag_and_value_word_for_word() {
        let b = "127.0.0.1:1";
        let cases: &[(&[&str], &str)] = &[
            (
                &["-p", "80", "-b", b, "--retries", "x"],
                "--retries: 'x' is not a whole number",
            ),
            (
                &["-p", "80", "-b", b, "--workers", "0"],
                "--workers must be at least 1",
            ),
            (
                &["-p", "80", "-b", b, "--rise", "0"],
                "--rise must be from 1 to 4294967295",
            ),
            (
                &["-p", "80", "-b", b, "--eject-time", "0s"],
                "--eject-time: '0s' is not a duration such as 250ms or 2s",
            ),
            (
                &["-p", "80", "-b", b, "--retry-backoff", "1"],
                "--retry-backoff: '1' is not a duration such as 10ms or 0ms",
            ),
            (
                &["-p", "80", "-b", b, "--retry-budget", "101%"],
                "--retry-budget: '101%' is not a percentage from 0 to 100",
            ),
            (
                &["-p", "80", "-b", b, "--health-path", "/a b"],
                "--health-path: '/a b' must start with / and have no spaces",
            ),
            (
                &["-p", "80", "-b", b, "--algorithm", "random"],
                "--algorithm: 'random' is not round-robin, weighted, least-connections or p2c-ewma",
            ),
            (
                &["-p", "80", "-b", b, "--log-level", "loud"],
                "--log-level: 'loud' is not error, warn, info or debug",
            ),
            (
                &["-p", "80", "-b", b, "--access-log="],
                "--access-log needs a path or -",
            ),
            (
                &["-p", "80", "-b", b, "--admin", "x"],
                "--admin: 'x' is not host:port",
            ),
            (
                &["-p", "80", "-b", b, "--max-header-bytes", "63"],
                "--max-header-bytes must be at least 64",
            ),
            (
                &["-p", "80", "-b", b, "-b", b],
                "backend '127.0.0.1:1' is given twice",
            ),
            (
                &["-p", "80", "-b", b, "--max-targets", "0"],
                "--max-targets must be at least 1",
            ),
            (&["-p", "80", "-b", b, "--frob"], "invalid option '--frob'"),
            (
                &["-p", "80", "-b", b, "--resolver", "dns.local:53"],
                "--resolver: 'dns.local:53' is not ip:port",
            ),
            (
                &["-p", "80", "-b", b, "--resolver", "127.0.0.1:0"],
                "--resolver: '127.0.0.1:0' is not ip:port",
            ),
            (
                &["-p", "80", "-b", b, "--resolve-interval", "5"],
                "--resolve-interval: '5' is not a duration such as 10ms or 0ms",
            ),
            (
                &["-p", "80", "-b", b, "--retry-non-idempotent=yes"],
                "unexpected argument for option '--retry-non-idempotent': \"yes\"",
            ),
            (
                &["-p", "80"],
                "no backend: give at least one -b host:port (or a --targets-file)",
            ),
        ];
        for (args, want) in cases {
            assert_eq!(error(args), *want, "{args:?}");
        }
    }

    #[test]
    fn parses_the_resolver_and_the_resolve_interval() {
        use crate::targets::resolve::Resolver;
        let c = config(&["-p", "1", "-b", "127.0.0.1:2"]);
        assert_eq!(
            (c.resolver, c.resolve_interval),
            (Resolver::System, Duration::from_secs(5))
        );
        let c = config(&[
            "-p",
            "1",
            "-b",
            "127.0.0.1:2",
            "--resolver",
            "[::1]:5353",
            "--resolve-interval",
            "0",
        ]);
        let server = "[::1]:5353".parse().unwrap();
        assert_eq!(
            (c.resolver, c.resolve_interval),
            (Resolver::Server(server), Duration::ZERO)
        );
    }

    #[test]
    fn health_timeout_is_at_most_the_interval() {
        let c = config(&[
            "-p",
            "1",
            "-b",
            "127.0.0.1:2",
            "--health-timeout",
            "5s",
            "--health-interval",
            "2s",
        ]);
        assert_eq!(c.health_timeout, Duration::from_secs(2));
    }
}
