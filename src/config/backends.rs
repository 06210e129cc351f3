//! The targets of the command line, from `-b` and `--targets-file`,
//! checked together: each resolved, none given twice, at least one, at most
//! `--max-targets`.

use super::{Config, ConfigError};
use crate::targets::resolve::{read_targets_file, resolve_backend};
use crate::targets::{parse_target, Target};

fn err<T>(msg: String) -> Result<T, ConfigError> {
    Err(ConfigError(msg))
}

/// The `-b` targets, parsed and resolved in order; none twice.
pub fn parse_backends(specs: Vec<String>) -> Result<Vec<Target>, ConfigError> {
    let backends = specs
        .iter()
        .map(|spec| parse_target(spec, resolve_backend).map_err(ConfigError))
        .collect::<Result<Vec<_>, ConfigError>>()?;
    if let Some(dup) = backends
        .iter()
        .enumerate()
        .find(|(i, b)| backends[..*i].iter().any(|o| o.same(b)))
    {
        return err(format!("backend '{}' is given twice", dup.1.name));
    }
    Ok(backends)
}

/// The targets of `--targets-file`, if given; none of them also a `-b`.
pub fn file_targets(config: &Config) -> Result<Vec<Target>, ConfigError> {
    let file_targets = match &config.targets_file {
        Some(path) => read_targets_file(path).map_err(ConfigError)?,
        None => Vec::new(),
    };
    if let Some(dup) = file_targets
        .iter()
        .find(|t| config.backends.iter().any(|b| b.same(t)))
    {
        return err(format!(
            "'{}' is both a -b backend and in the targets file",
            dup.name
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
