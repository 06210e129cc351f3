//! The set of targets, which a reload can change while the workers run.
//!
//! Targets live in numbered slots; a slot's number is its bit in the health
//! bitmap and its index in every per-worker table (pools, counters). A slot
//! keeps its target, health and pooled connections for as long as the
//! target stays in the set; a removed target's slot is emptied (its requests
//! in flight finish on their own) and may later be given to a new target,
//! under a new slot generation so that nothing of the old one is mistaken
//! for the new one. Workers keep a copy of the table and refresh it when the
//! set's generation changes: one atomic load per request.
//!
//! A target given by name is one address of it (its `source`): a name
//! stands for as many targets as it has addresses (`spec.rs`), and each new
//! answer for it, from a refresh every `--resolve-interval` (`refresh.rs`)
//! or a reload, is applied to that name's targets alone (`names.rs`).

use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::balance::HealthBitmap;
use crate::health::{HealthRecord, Rules};

mod names;
mod nameserver;
pub mod refresh;
pub mod reload;
pub mod resolve;
mod spec;
mod standing;

pub use names::Name;
pub use spec::{parse_targets, parse_targets_file, Lookup};
pub use standing::Ejection;

/// A target server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// As the operator wrote it (`host:port`), for logs and metrics.
    pub name: String,
    /// Resolved when it joined the set.
    pub addr: SocketAddr,
    /// Its share of traffic relative to the others (`,weight=N`; 1 unless
    /// given), for the weighted and least-connections algorithms.
    pub weight: u32,
    /// Spoken to over TLS (`https://host:port`): the name its certificate
    /// must be valid for, which is also sent as SNI.
    pub tls: Option<ServerName<'static>>,
    /// `,proxy=v2`: every connection to it starts with a PROXY protocol v2
    /// header (before any TLS) naming the client it carries (`LOCAL` for a
    /// health check), as HAProxy's `send-proxy-v2`. Such a connection
    /// belongs to one client and is never pooled.
    pub proxy_v2: bool,
    /// The name it is one address of, as written (`app.svc:8080`,
    /// `https://app.svc:8443`), which is looked up again every
    /// `--resolve-interval`; `None` for a target given by IP address.
    pub source: Option<String>,
}

/// Largest `weight=` a target may have.
pub const MAX_WEIGHT: u32 = 1000;

/// A target's weight when it has no `,weight=N` (listed with every other
/// default in `config::defaults`).
pub const DEFAULT_WEIGHT: u32 = 1;

impl Target {
    /// Whether `other` is the same server (weights aside): the same address
    /// of the same name, or the same IP address written the same way. A
    /// name's target is the same whatever it is named as (that changes
    /// with the name's count of addresses).
    pub fn same(&self, other: &Target) -> bool {
        self.addr == other.addr
            && match (&self.source, &other.source) {
                (Some(a), Some(b)) => a == b,
                (None, None) => self.name == other.name,
                _ => false,
            }
    }

    /// What the operator wrote for it (weight aside): the name it came
    /// from, or its own name.
    pub fn source_name(&self) -> &str {
        self.source.as_deref().unwrap_or(&self.name)
    }

    /// `host:port` as written, without the `https://` of a TLS target (its
    /// `Host`).
    pub fn authority(&self) -> &str {
        let written = self.source_name();
        written.strip_prefix(HTTPS).unwrap_or(written)
    }
}

const HTTPS: &str = "https://";

/// A target in its slot.
#[derive(Debug, Clone)]
pub struct Slot {
    pub target: Arc<Target>,
    /// Changes whenever the slot is given to another target.
    pub gen: u64,
    /// Came from `--targets-file` (a reload may remove it), not from `-b`.
    pub from_file: bool,
}

/// What a reload, or a new answer for a name, changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub added: Vec<String>,
    /// The slots the added targets took.
    pub added_slots: Vec<usize>,
    pub removed: Vec<String>,
    pub kept: usize,
}

/// The shared set of targets and their health.
pub struct Targets {
    table: Mutex<Table>,
    /// Bumped after every change of the table.
    generation: AtomicU64,
    /// One bit per slot: set when the slot's target is healthy.
    pub health: HealthBitmap,
    /// Health changes per slot, for the metrics.
    transitions: Box<[AtomicU64]>,
    /// One bit per slot: its last health check passed. Picks fall back to
    /// these when no target is healthy.
    pub passed: HealthBitmap,
    /// One bit per slot: rejoined less than `--slow-start` ago.
    pub slow_start: HealthBitmap,
    /// When each slot rejoined, in milliseconds since `epoch`.
    rejoined_ms: Box<[AtomicU64]>,
    epoch: Instant,
    /// Health records (checks, ejections): for the prober, ejecting workers
    /// and worker 0's housekeeping, never for a pick.
    records: Mutex<Vec<HealthRecord>>,
    /// Ejections per slot, for the metrics.
    ejections: Box<[AtomicU64]>,
    /// Targets ejected now (so that housekeeping skips the lock when none).
    ejected: AtomicUsize,
    rules: Rules,
    /// Lookups begun so far: each takes the next number, so that an answer
    /// older than the one a name's targets were last set from is not
    /// applied after it (see [`Targets::lookup_ticket`]).
    lookups: AtomicU64,
}

struct Table {
    slots: Vec<Option<Slot>>,
    next_gen: u64,
    /// For each name in the set, the ticket of the lookup its targets were
    /// last set from.
    answered: HashMap<String, u64>,
}

impl Targets {
    /// A set of `capacity` slots holding the `-b` targets and then the
    /// file's, all degraded until checked, with the default health rules
    /// (for tests).
    #[cfg(test)]
    pub fn new(fixed: Vec<Target>, from_file: Vec<Target>, capacity: usize) -> Targets {
        Targets::with_rules(fixed, from_file, capacity, crate::config::defaults::rules())
    }

    /// A set of `capacity` slots holding the `-b` targets and then the
    /// file's, all degraded until checked, under these health rules.
    pub fn with_rules(
        fixed: Vec<Target>,
        from_file: Vec<Target>,
        capacity: usize,
        rules: Rules,
    ) -> Targets {
        let capacity = capacity.max(fixed.len() + from_file.len());
        let mut table = Table {
            slots: vec![None; capacity],
            next_gen: 1,
            answered: HashMap::new(),
        };
        let all = fixed
            .into_iter()
            .map(|t| (t, false))
            .chain(from_file.into_iter().map(|t| (t, true)));
        for (i, (target, from_file)) in all.enumerate() {
            table.slots[i] = Some(table.slot(target, from_file));
        }
        Targets {
            table: Mutex::new(table),
            generation: AtomicU64::new(1),
            health: HealthBitmap::new(capacity),
            transitions: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            passed: HealthBitmap::new(capacity),
            slow_start: HealthBitmap::new(capacity),
            rejoined_ms: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            epoch: Instant::now(),
            records: Mutex::new(vec![HealthRecord::default(); capacity]),
            ejections: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            ejected: AtomicUsize::new(0),
            rules,
            lookups: AtomicU64::new(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.health.len()
    }

    /// The set's generation: it changes with every change of the table.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A copy of the table and the generation it is at.
    pub fn snapshot(&self) -> (u64, Vec<Option<Slot>>) {
        let table = self.lock();
        (self.generation(), table.slots.clone())
    }

    /// Whether `slot` still holds the target of generation `gen`.
    pub fn holds(&self, slot: usize, gen: u64) -> bool {
        matches!(&self.lock().slots[slot], Some(s) if s.gen == gen)
    }

    /// Marks a slot healthy; true when that is a change.
    pub fn mark_healthy(&self, slot: usize) -> bool {
        let changed = self.health.mark_healthy(slot);
        if changed {
            self.transitions[slot].fetch_add(1, Ordering::Relaxed);
        }
        changed
    }

    /// Marks a slot degraded; true when that is a change.
    pub fn mark_degraded(&self, slot: usize) -> bool {
        let changed = self.health.mark_degraded(slot);
        if changed {
            self.transitions[slot].fetch_add(1, Ordering::Relaxed);
        }
        changed
    }

    /// Health changes of a slot's target so far.
    pub fn transitions(&self, slot: usize) -> u64 {
        self.transitions[slot].load(Ordering::Relaxed)
    }

    /// Makes the file's targets `wanted`: targets already there keep their
    /// slot (and so their health and pooled connections), the others leave,
    /// new ones take free slots, degraded until their first health check.
    /// `-b` targets are never touched. Refused whole when there are not
    /// enough free slots.
    pub fn replace_file_targets(&self, wanted: Vec<Target>) -> Result<Change, String> {
        self.replace_file_targets_as_of(wanted, self.lookup_ticket())
    }

    /// [`Targets::replace_file_targets`] with the names in `wanted` looked
    /// up under `ticket` (taken before the file was read).
    pub fn replace_file_targets_as_of(
        &self,
        wanted: Vec<Target>,
        ticket: u64,
    ) -> Result<Change, String> {
        let mut table = self.lock();
        let fixed = |t: &Target| {
            table.slots.iter().flatten().any(|s| {
                !s.from_file
                    && (s.target.same(t) || t.source.is_some() && s.target.source == t.source)
            })
        };
        if let Some(dup) = wanted.iter().find(|t| fixed(t)) {
            return Err(format!("'{}' is also given with -b", dup.source_name()));
        }
        let keep = |slot: &Slot| !slot.from_file || wanted.iter().any(|t| t.same(&slot.target));
        let leaving: Vec<usize> = (0..table.slots.len())
            .filter(|&i| matches!(&table.slots[i], Some(s) if !keep(s)))
            .collect();
        let new: Vec<Target> = wanted
            .iter()
            .filter(|t| {
                !table
                    .slots
                    .iter()
                    .flatten()
                    .any(|s| s.from_file && s.target.same(t))
            })
            .cloned()
            .collect();
        table.fits(&leaving, new.len())?;
        for slot in table.slots.iter_mut().flatten().filter(|s| s.from_file) {
            if let Some(t) = wanted.iter().find(|t| t.same(&slot.target)) {
                if *t != *slot.target {
                    // A new weight, `proxy=v2` on or off, or a name's target
                    // renamed as its count of addresses changed: same slot,
                    // same generation. Connections already open keep what
                    // they were opened with (a header or none).
                    slot.target = Arc::new(t.clone());
                }
            }
        }
        let mut change = self.swap(&mut table, leaving, new, true);
        for source in wanted.iter().filter_map(|t| t.source.as_ref()) {
            // Never back: a refresh begun after this reload may have set
            // the name's targets already.
            let last = table.answered.entry(source.clone()).or_insert(ticket);
            *last = (*last).max(ticket);
        }
        table.forget_gone_names();
        change.kept = table.slots.iter().flatten().count() - change.added.len();
        self.generation.fetch_add(1, Ordering::Release);
        Ok(change)
    }

    /// Takes the targets in `leaving` out of their slots and puts `new` in
    /// free ones (the caller made sure they fit: [`Table::fits`]).
    fn swap(
        &self,
        table: &mut Table,
        leaving: Vec<usize>,
        new: Vec<Target>,
        from_file: bool,
    ) -> Change {
        let mut change = Change::default();
        for i in leaving {
            if let Some(slot) = table.slots[i].take() {
                change.removed.push(slot.target.name.clone());
            }
            self.health.mark_degraded(i);
            self.forget(i, false);
        }
        for target in new {
            let i = table
                .slots
                .iter()
                .position(Option::is_none)
                .expect("counted before");
            change.added.push(target.name.clone());
            change.added_slots.push(i);
            // A new target's health history starts afresh.
            self.transitions[i].store(0, Ordering::Relaxed);
            self.forget(i, true);
            table.slots[i] = Some(table.slot(target, from_file));
        }
        change
    }
}

impl Table {
    /// Whether `new` targets fit once those in `leaving` are gone.
    fn fits(&self, leaving: &[usize], new: usize) -> Result<(), String> {
        let free = self.slots.iter().filter(|s| s.is_none()).count() + leaving.len();
        if new <= free {
            return Ok(());
        }
        Err(format!(
            "{} targets would not fit in {} slots (raise --max-targets)",
            self.slots.iter().flatten().count() - leaving.len() + new,
            self.slots.len()
        ))
    }

    /// Drops the tickets of names no target comes from any more.
    fn forget_gone_names(&mut self) {
        let slots = &self.slots;
        self.answered.retain(|name, _| {
            slots
                .iter()
                .flatten()
                .any(|s| s.target.source.as_deref() == Some(name))
        });
    }

    fn slot(&mut self, target: Target, from_file: bool) -> Slot {
        let gen = self.next_gen;
        self.next_gen += 1;
        Slot {
            target: Arc::new(target),
            gen,
            from_file,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A plain target on 127.0.0.1, named by its address.
    pub(crate) fn target(port: u16) -> Target {
        Target {
            name: format!("127.0.0.1:{port}"),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            weight: 1,
            tls: None,
            proxy_v2: false,
            source: None,
        }
    }

    /// The tests' files hold IP addresses only, which are never looked up.
    fn resolve(host: &str, _: u16) -> Result<Vec<SocketAddr>, String> {
        Err(format!("'{host}' looked up"))
    }

    fn names(targets: &Targets) -> Vec<Option<String>> {
        targets
            .snapshot()
            .1
            .into_iter()
            .map(|s| s.map(|s| s.target.name.clone()))
            .collect()
    }

    #[test]
    fn parses_lines_and_comments() {
        let text = "# targets\n127.0.0.1:1\n\n  127.0.0.1:2   # the second\n";
        assert_eq!(
            parse_targets_file(text, &resolve).unwrap(),
            vec![target(1), target(2)]
        );
        assert_eq!(parse_targets_file("", &resolve).unwrap(), vec![]);
    }

    #[test]
    fn refuses_a_file_with_one_bad_line() {
        let err = parse_targets_file("127.0.0.1:1\nnope\n", &resolve).unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        let err = parse_targets_file("127.0.0.1:1 127.0.0.1:2\n", &resolve).unwrap_err();
        assert!(err.contains("more than one"), "{err}");
        let err = parse_targets_file("127.0.0.1:1\n127.0.0.1:1\n", &resolve).unwrap_err();
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn a_reload_changes_a_weight_in_place() {
        let t = Targets::new(vec![], vec![target(1)], 2);
        t.mark_healthy(0);
        let (_, before) = t.snapshot();
        let heavier = Target {
            weight: 5,
            ..target(1)
        };
        let change = t.replace_file_targets(vec![heavier]).unwrap();
        assert_eq!(
            (change.added.len(), change.removed.len(), change.kept),
            (0, 0, 1)
        );
        let (_, after) = t.snapshot();
        let (old, new) = (before[0].as_ref().unwrap(), after[0].as_ref().unwrap());
        assert_eq!((new.gen, new.target.weight), (old.gen, 5));
        assert!(t.health.is_healthy(0), "it keeps its health");
    }

    #[test]
    fn parses_weights() {
        let text = "127.0.0.1:1,weight=3\n127.0.0.1:2\n";
        let targets = parse_targets_file(text, &resolve).unwrap();
        assert_eq!(targets.iter().map(|t| t.weight).collect::<Vec<_>>(), [3, 1]);
        for bad in [
            "127.0.0.1:1,weight=0",
            "127.0.0.1:1,weight=1001",
            "127.0.0.1:1,wieght=2",
        ] {
            let err = parse_targets_file(bad, &resolve).unwrap_err();
            assert!(err.contains("weight=N"), "{err}");
        }
    }

    #[test]
    fn parses_proxy_v2_with_a_weight_in_any_order() {
        let text = "127.0.0.1:1,proxy=v2,weight=3\n127.0.0.1:2,weight=2,proxy=v2\n127.0.0.1:3\n";
        let targets = parse_targets_file(text, &resolve).unwrap();
        let got: Vec<_> = targets.iter().map(|t| (t.weight, t.proxy_v2)).collect();
        assert_eq!(got, [(3, true), (2, true), (1, false)]);
        let one = |spec: &str| parse_targets(spec, &resolve).map(|mut t| t.remove(0));
        let t = one("https://127.0.0.1:4,proxy=v2").unwrap();
        assert!(t.proxy_v2 && t.tls.is_some());
        assert_eq!(t.name, "https://127.0.0.1:4");
        for bad in [
            "127.0.0.1:1,proxy=v3",
            "127.0.0.1:1,proxy=",
            "127.0.0.1:1,proxy=V2",
        ] {
            let err = one(bad).unwrap_err();
            assert!(err.contains("proxy=v2"), "{err}");
        }
        let err = one("127.0.0.1:1,proxy").unwrap_err();
        assert!(err.contains("nor proxy=v2"), "{err}");
    }

    #[test]
    fn a_reload_turns_proxy_v2_on_in_place() {
        let t = Targets::new(vec![], vec![target(1)], 1);
        let (_, before) = t.snapshot();
        let proxied = Target {
            proxy_v2: true,
            ..target(1)
        };
        let change = t.replace_file_targets(vec![proxied]).unwrap();
        assert_eq!(change.kept, 1);
        let (_, after) = t.snapshot();
        let (old, new) = (before[0].as_ref().unwrap(), after[0].as_ref().unwrap());
        assert_eq!((new.gen, new.target.proxy_v2), (old.gen, true));
    }

    #[test]
    fn a_reload_keeps_unchanged_targets_in_their_slots() {
        let t = Targets::new(vec![target(1)], vec![target(2), target(3)], 4);
        t.mark_healthy(1);
        let (gen0, before) = t.snapshot();
        let change = t.replace_file_targets(vec![target(2), target(4)]).unwrap();
        assert_eq!(change.added, vec!["127.0.0.1:4"]);
        assert_eq!(change.removed, vec!["127.0.0.1:3"]);
        assert_eq!(change.kept, 2);
        let (gen1, after) = t.snapshot();
        assert!(gen1 > gen0);
        // The -b target and the kept one stay, with their generation and health.
        assert_eq!(
            after[0].as_ref().unwrap().gen,
            before[0].as_ref().unwrap().gen
        );
        assert_eq!(
            after[1].as_ref().unwrap().gen,
            before[1].as_ref().unwrap().gen
        );
        assert!(t.health.is_healthy(1));
        // The new one takes the freed slot, under a new generation, degraded.
        assert_eq!(
            names(&t),
            vec![
                Some("127.0.0.1:1".into()),
                Some("127.0.0.1:2".into()),
                Some("127.0.0.1:4".into()),
                None
            ]
        );
        assert_ne!(
            after[2].as_ref().unwrap().gen,
            before[2].as_ref().unwrap().gen
        );
        assert!(!t.health.is_healthy(2));
        assert!(t.holds(2, after[2].as_ref().unwrap().gen));
        assert!(!t.holds(2, before[2].as_ref().unwrap().gen));
    }

    #[test]
    fn a_reload_never_touches_command_line_targets() {
        let t = Targets::new(vec![target(1)], vec![], 2);
        let change = t.replace_file_targets(vec![]).unwrap();
        assert_eq!(
            change,
            Change {
                kept: 1,
                ..Change::default()
            }
        );
        assert_eq!(names(&t)[0], Some("127.0.0.1:1".into()));
    }

    #[test]
    fn a_reload_that_does_not_fit_changes_nothing() {
        let t = Targets::new(vec![target(1)], vec![target(2)], 2);
        let gen = t.generation();
        let err = t
            .replace_file_targets(vec![target(2), target(3)])
            .unwrap_err();
        assert!(err.contains("--max-targets"), "{err}");
        assert_eq!(t.generation(), gen);
        assert_eq!(
            names(&t),
            vec![Some("127.0.0.1:1".into()), Some("127.0.0.1:2".into())]
        );
    }

    #[test]
    fn a_file_target_given_with_b_too_is_refused() {
        let t = Targets::new(vec![target(1)], vec![], 4);
        let err = t.replace_file_targets(vec![target(1)]).unwrap_err();
        assert!(err.contains("also given with -b"), "{err}");
    }

    #[test]
    fn a_target_taking_a_freed_slot_starts_with_no_health_history() {
        let t = Targets::new(vec![], vec![target(1)], 1);
        t.mark_healthy(0);
        let change = t.replace_file_targets(vec![target(2)]).unwrap();
        assert_eq!(change.added_slots, vec![0]);
        assert_eq!(t.transitions(0), 0);
    }

    #[test]
    fn counts_health_transitions() {
        let t = Targets::new(vec![target(1)], vec![], 1);
        assert!(t.mark_healthy(0));
        assert!(!t.mark_healthy(0));
        assert!(t.mark_degraded(0));
        assert_eq!(t.transitions(0), 2);
    }
}
