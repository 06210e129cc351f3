//! The targets' names looked up again (every `--resolve-interval`, on
//! worker 0: see `upstream::prober::refresh_names`), each lookup on a
//! thread of its own, and each answer applied to its name's targets
//! ([`Targets::replace_name`]: addresses that stay keep their slot, new ones
//! join, vanished ones leave).
//!
//! A lookup that fails, or finds no address, keeps the name's last good
//! set: a name never loses its last target to DNS. That is logged once, a
//! WARN when the name starts failing and an INFO when it answers again, not
//! once per interval (`Failing`).

use std::collections::HashSet;

use super::resolve::Resolver;
use super::{Change, Name, Targets};
use crate::blocking::off_thread;

/// What a round of lookups keeps for the next: which names are failing.
#[derive(Debug, Default)]
pub struct Refresh {
    failing: Failing,
}

impl Refresh {
    /// Looks every name of the set up again, all at once, and applies what
    /// each answers. Returns the slots of the targets that joined, for the
    /// caller to check at once.
    pub async fn round(&mut self, targets: &Targets, resolver: Resolver) -> Vec<usize> {
        let ticket = targets.lookup_ticket();
        let names = targets.names();
        self.failing.keep_only(&names);
        let lookups: Vec<_> = names
            .into_iter()
            .map(|name| {
                let (host, port) = (name.host.clone(), name.port);
                let lookup = off_thread("resolve", move || resolver.lookup(&host, port));
                (name, lookup)
            })
            .collect();
        let mut added = Vec::new();
        for (name, lookup) in lookups {
            let answer = match lookup {
                Ok(lookup) => lookup.await,
                Err(e) => Err(format!("cannot start a thread to look it up: {e}")),
            };
            let applied = match answer {
                Ok(addrs) if addrs.is_empty() => Err(format!("no address for '{}'", name.host)),
                Ok(addrs) => targets.replace_name(&name.source, &addrs, ticket),
                Err(e) => Err(e),
            };
            match applied {
                Ok(Some(change)) => {
                    self.answered(&name, &change);
                    added.extend(change.added_slots);
                }
                // The name left the set meanwhile, or a later lookup (a
                // reload's) set its targets already.
                Ok(None) => {}
                Err(e) => {
                    if self.failing.failed(&name.source) {
                        log!(
                            warn,
                            "dns: {}: {e}; its {} kept until it answers again",
                            name.source,
                            targets_word(name.targets)
                        );
                    }
                }
            }
        }
        added
    }

    /// Logs what an answer changed, and that a failing name answers again.
    fn answered(&mut self, name: &Name, change: &Change) {
        if self.failing.answered(&name.source) {
            log!(
                info,
                "dns: {} answers again: {}",
                name.source,
                addresses_word(change.added.len() + change.kept)
            );
        }
        if !change.added.is_empty() || !change.removed.is_empty() {
            log!(
                info,
                "dns: {}: {} added [{}], {} removed [{}], {} kept",
                name.source,
                change.added.len(),
                change.added.join(", "),
                change.removed.len(),
                change.removed.join(", "),
                change.kept
            );
        }
    }
}

fn targets_word(n: usize) -> String {
    match n {
        1 => "1 target is".to_string(),
        n => format!("{n} targets are"),
    }
}

fn addresses_word(n: usize) -> String {
    match n {
        1 => "1 address".to_string(),
        n => format!("{n} addresses"),
    }
}

/// The names whose last lookup failed: what makes a failure, and a
/// recovery, logged once.
#[derive(Debug, Default)]
struct Failing(HashSet<String>);

impl Failing {
    /// A lookup of `name` failed; true when the one before had not.
    fn failed(&mut self, name: &str) -> bool {
        self.0.insert(name.to_string())
    }

    /// A lookup of `name` answered; true when the one before had failed.
    fn answered(&mut self, name: &str) -> bool {
        self.0.remove(name)
    }

    /// Forgets the names no longer in the set.
    fn keep_only(&mut self, names: &[Name]) {
        self.0
            .retain(|n| names.iter().any(|name| &name.source == n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_and_a_recovery_are_told_once_each() {
        let mut f = Failing::default();
        assert!(!f.answered("a:1"));
        assert!(f.failed("a:1"), "starts failing");
        assert!(!f.failed("a:1"), "still failing: quiet");
        assert!(f.failed("b:1"), "each name on its own");
        assert!(f.answered("a:1"), "answers again");
        assert!(!f.answered("a:1"));
        assert!(f.failed("a:1"), "fails again: told again");
    }

    #[test]
    fn a_name_that_left_is_forgotten() {
        let mut f = Failing::default();
        f.failed("a:1");
        f.keep_only(&[]);
        assert!(f.failed("a:1"), "told again if it comes back failing");
    }
}
