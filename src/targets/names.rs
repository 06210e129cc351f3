//! Targets given by name: the names in the set, and a new answer for one
//! of them applied as a reload applies the targets file, to that name's
//! targets alone: addresses that stay keep their slot (health, pooled
//! connections), new ones take free slots, vanished ones leave. Names from
//! `-b` and from the file alike; a reload of the file may drop a name, and
//! an answer that comes back for it after that is not applied.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::spec::named_targets;
use super::{Change, Targets, HTTPS};

/// A name some targets come from, to look up again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// As written (`app.svc:8080`, `https://app.svc:8443`): the targets'
    /// `source`.
    pub source: String,
    /// The host to look up, and the port its addresses take.
    pub host: String,
    pub port: u16,
    /// How many targets it has now.
    pub targets: usize,
}

impl Targets {
    /// A number for a lookup about to begin, later than any taken before:
    /// an answer is applied to a name's targets only when no later lookup
    /// (a reload's, or another refresh's) already set them.
    pub fn lookup_ticket(&self) -> u64 {
        self.lookups.fetch_add(1, Ordering::Relaxed)
    }

    /// The names the set's targets come from, each once, in slot order.
    pub fn names(&self) -> Vec<Name> {
        let table = self.lock();
        let mut names: Vec<Name> = Vec::new();
        for slot in table.slots.iter().flatten() {
            let Some(source) = &slot.target.source else {
                continue;
            };
            if let Some(name) = names.iter_mut().find(|n| &n.source == source) {
                name.targets += 1;
                continue;
            }
            let authority = source.strip_prefix(HTTPS).unwrap_or(source);
            let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
            names.push(Name {
                source: source.clone(),
                host: host.to_string(),
                port: slot.target.addr.port(),
                targets: 1,
            });
        }
        names
    }

    /// Makes the targets of the name `source` its addresses `addrs` (not
    /// empty), as found by the lookup of `ticket`. `Ok(None)` when that
    /// name is no longer in the set, or a later lookup set its targets
    /// already; refused whole when the new ones would not fit. The table's
    /// generation moves only when something changed.
    pub fn replace_name(
        &self,
        source: &str,
        addrs: &[SocketAddr],
        ticket: u64,
    ) -> Result<Option<Change>, String> {
        debug_assert!(!addrs.is_empty(), "an empty answer keeps the last set");
        let mut table = self.lock();
        if table.answered.get(source).is_some_and(|&t| t > ticket) {
            return Ok(None);
        }
        let ours = |s: &&super::Slot| s.target.source.as_deref() == Some(source);
        let Some(template) = table.slots.iter().flatten().find(ours) else {
            return Ok(None);
        };
        let from_file = template.from_file;
        let t = &template.target;
        let wanted = named_targets(source, addrs, t.weight, &t.tls, t.proxy_v2);
        let leaving: Vec<usize> = (0..table.slots.len())
            .filter(|&i| {
                table.slots[i]
                    .as_ref()
                    .is_some_and(|s| ours(&s) && !wanted.iter().any(|t| t.same(&s.target)))
            })
            .collect();
        let new: Vec<_> = wanted
            .iter()
            .filter(|t| !table.slots.iter().flatten().any(|s| s.target.same(t)))
            .cloned()
            .collect();
        table
            .fits(&leaving, new.len())
            .map_err(|e| format!("{source}: {e}"))?;
        let mut renamed = false;
        for slot in table.slots.iter_mut().flatten() {
            if let Some(t) = wanted.iter().find(|t| t.same(&slot.target)) {
                if *t != *slot.target {
                    slot.target = Arc::new(t.clone());
                    renamed = true;
                }
            }
        }
        table.answered.insert(source.to_string(), ticket);
        let kept = wanted.len() - new.len();
        if leaving.is_empty() && new.is_empty() && !renamed {
            return Ok(Some(Change {
                kept,
                ..Change::default()
            }));
        }
        let mut change = self.swap(&mut table, leaving, new, from_file);
        change.kept = kept;
        self.generation.fetch_add(1, Ordering::Release);
        Ok(Some(change))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Target;
    use super::*;

    fn at(n: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n], 80))
    }

    fn of(source: &str, addrs: &[u8]) -> Vec<Target> {
        let addrs: Vec<_> = addrs.iter().map(|&n| at(n)).collect();
        named_targets(source, &addrs, 1, &None, false)
    }

    use crate::targets::tests::target as literal;

    fn names(t: &Targets) -> Vec<Option<String>> {
        let (_, slots) = t.snapshot();
        slots
            .into_iter()
            .map(|s| s.map(|s| s.target.name.clone()))
            .collect()
    }

    #[test]
    fn lists_each_name_once_with_its_host_and_port() {
        let mut fixed = of("app.svc:80", &[1, 2]);
        fixed.push(literal(9));
        let t = Targets::new(fixed, of("https://db.svc:80", &[3]), 4);
        assert_eq!(
            t.names(),
            [
                Name {
                    source: "app.svc:80".into(),
                    host: "app.svc".into(),
                    port: 80,
                    targets: 2
                },
                Name {
                    source: "https://db.svc:80".into(),
                    host: "db.svc".into(),
                    port: 80,
                    targets: 1
                }
            ]
        );
    }

    #[test]
    fn an_answer_adds_and_removes_addresses_and_keeps_the_others() {
        let t = Targets::new(of("app.svc:80", &[1, 2]), vec![literal(9)], 4);
        t.mark_healthy(1);
        let (gen0, before) = t.snapshot();
        let ticket = t.lookup_ticket();
        let change = t
            .replace_name("app.svc:80", &[at(2), at(3)], ticket)
            .unwrap()
            .unwrap();
        assert_eq!(change.added, ["app.svc:80(10.0.0.3)"]);
        assert_eq!(change.added_slots, [0]);
        assert_eq!(change.removed, ["app.svc:80(10.0.0.1)"]);
        assert_eq!(change.kept, 1);
        let (gen1, after) = t.snapshot();
        assert!(gen1 > gen0);
        let gen = |s: &[Option<super::super::Slot>], i: usize| s[i].as_ref().unwrap().gen;
        assert_eq!(gen(&after, 1), gen(&before, 1), "10.0.0.2 kept its slot");
        assert!(t.health.is_healthy(1), "and its health");
        assert_eq!(
            gen(&after, 2),
            gen(&before, 2),
            "the file's target untouched"
        );
        assert_ne!(gen(&after, 0), gen(&before, 0));
        assert!(!after[0].as_ref().unwrap().from_file, "still a -b target");
    }

    #[test]
    fn the_targets_are_renamed_in_place_as_the_count_of_addresses_changes() {
        let t = Targets::new(of("app.svc:80", &[1]), vec![], 4);
        assert_eq!(names(&t)[0].as_deref(), Some("app.svc:80"));
        let (_, before) = t.snapshot();
        let change = t
            .replace_name("app.svc:80", &[at(1), at(2)], t.lookup_ticket())
            .unwrap()
            .unwrap();
        assert_eq!((change.added.len(), change.kept), (1, 1));
        let (_, after) = t.snapshot();
        assert_eq!(
            names(&t),
            [
                Some("app.svc:80(10.0.0.1)".into()),
                Some("app.svc:80(10.0.0.2)".into()),
                None,
                None
            ]
        );
        assert_eq!(
            after[0].as_ref().unwrap().gen,
            before[0].as_ref().unwrap().gen
        );
        t.replace_name("app.svc:80", &[at(2)], t.lookup_ticket())
            .unwrap();
        assert_eq!(names(&t), [None, Some("app.svc:80".into()), None, None]);
    }

    #[test]
    fn the_same_answer_changes_nothing_not_even_the_generation() {
        let t = Targets::new(of("app.svc:80", &[1, 2]), vec![], 2);
        let gen = t.generation();
        let change = t
            .replace_name("app.svc:80", &[at(1), at(2)], t.lookup_ticket())
            .unwrap()
            .unwrap();
        assert_eq!(
            change,
            Change {
                kept: 2,
                ..Change::default()
            }
        );
        assert_eq!(t.generation(), gen);
    }

    #[test]
    fn an_answer_for_a_name_gone_or_older_than_the_last_is_not_applied() {
        let t = Targets::new(vec![], of("app.svc:80", &[1]), 4);
        let old = t.lookup_ticket();
        let newer = t.lookup_ticket();
        t.replace_file_targets_as_of(of("app.svc:80", &[2]), newer)
            .unwrap();
        assert_eq!(t.replace_name("app.svc:80", &[at(3)], old), Ok(None));
        assert_eq!(t.snapshot().1[0].as_ref().unwrap().target.addr, at(2));
        t.replace_file_targets(vec![]).unwrap();
        let ticket = t.lookup_ticket();
        assert_eq!(t.replace_name("app.svc:80", &[at(3)], ticket), Ok(None));
        assert_eq!(names(&t), [None, None, None, None]);
    }

    #[test]
    fn a_reload_that_read_before_the_last_answer_lets_no_older_answer_in() {
        let t = Targets::new(vec![], of("app.svc:80", &[1]), 4);
        let (reload, middle, last) = (t.lookup_ticket(), t.lookup_ticket(), t.lookup_ticket());
        t.replace_name("app.svc:80", &[at(2)], last).unwrap();
        t.replace_file_targets_as_of(of("app.svc:80", &[2]), reload)
            .unwrap();
        assert_eq!(t.replace_name("app.svc:80", &[at(3)], middle), Ok(None));
    }

    #[test]
    fn an_answer_that_does_not_fit_changes_nothing() {
        let t = Targets::new(of("app.svc:80", &[1]), vec![], 2);
        let gen = t.generation();
        let err = t
            .replace_name("app.svc:80", &[at(1), at(2), at(3)], t.lookup_ticket())
            .unwrap_err();
        assert_eq!(
            err,
            "app.svc:80: 3 targets would not fit in 2 slots (raise --max-targets)"
        );
        assert_eq!(t.generation(), gen);
        assert_eq!(names(&t), [Some("app.svc:80".into()), None]);
    }

    #[test]
    fn a_reload_keeps_the_slots_of_a_names_addresses_that_stay() {
        let t = Targets::new(vec![], of("app.svc:80", &[1, 2]), 4);
        t.mark_healthy(0);
        let (_, before) = t.snapshot();
        let change = t.replace_file_targets(of("app.svc:80", &[1])).unwrap();
        assert_eq!(change.removed, ["app.svc:80(10.0.0.2)"]);
        assert_eq!((change.added.len(), change.kept), (0, 1));
        let (_, after) = t.snapshot();
        let kept = after[0].as_ref().unwrap();
        assert_eq!(kept.gen, before[0].as_ref().unwrap().gen);
        assert_eq!(kept.target.name, "app.svc:80", "renamed: one address now");
        assert!(t.health.is_healthy(0));
    }

    #[test]
    fn a_file_name_also_given_with_b_is_refused() {
        let t = Targets::new(of("app.svc:80", &[1]), vec![], 4);
        let err = t.replace_file_targets(of("app.svc:80", &[2])).unwrap_err();
        assert_eq!(err, "'app.svc:80' is also given with -b");
    }
}
