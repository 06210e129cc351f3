//! The targets of the command line, from `-b` and `--targets-file`,
//! checked together: each looked up, none given twice, at least one, at
//! most `--max-targets`.

use super::{Config, ConfigError};
use crate::targets::resolve::{read_targets_file, Resolver};
use crate::targets::{parse_targets, Target};

fn err<T>(msg: String) -> Result<T, ConfigError> {
    Err(ConfigError(msg))
}

/// The `-b` targets, parsed and looked up in order (a name's addresses
/// each a target); none twice.
pub fn parse_backends(specs: Vec<String>, resolver: Resolver) -> Result<Vec<Target>, ConfigError> {
    let lookup = |host: &str, port| resolver.lookup(host, port);
    let mut backends: Vec<Target> = Vec::new();
    for spec in &specs {
        let these = parse_targets(spec, &lookup).map_err(ConfigError)?;
        if let Some(dup) = these.iter().find(|t| backends.iter().any(|o| o.same(t))) {
            return err(format!("backend '{}' is given twice", dup.source_name()));
        }
        backends.extend(these);
    }
    Ok(backends)
}

/// The targets of `--targets-file`, if given; none of them also a `-b`.
pub fn file_targets(config: &Config) -> Result<Vec<Target>, ConfigError> {
    let file_targets = match &config.targets_file {
        Some(path) => read_targets_file(path, config.resolver).map_err(ConfigError)?,
        None => Vec::new(),
    };
    if let Some(dup) = file_targets.iter().find(|t| {
        config
            .backends
            .iter()
            .any(|b| b.same(t) || t.source.is_some() && b.source == t.source)
    }) {
        return err(format!(
            "'{}' is both a -b backend and in the targets file",
            dup.source_name()
        ));
    }
    Ok(file_targets)
}

/// At least one target, and no more than `--max-targets`.
pub fn check_count(config: &Config) -> Result<(), ConfigError> {
    let count = config.backends.len() + config.file_targets.len();
    if count == 0 {
        return err("no backend: give at least one -b host:port (or a --targets-file)".into());
    }
    if count > config.max_targets {
        return err(format!(
            "{count} targets are more than --max-targets {}",
            config.max_targets
        ));
    }
    Ok(())
}
