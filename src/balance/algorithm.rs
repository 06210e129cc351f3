//! The balancing algorithms (`--algorithm`): the one place that lists
//! them, by name and by the state each keeps. A new algorithm is a file
//! beside this one and its arms here: in `Algorithm` (its name in
//! `as_str`, its place in `ALL`) and in `Selector` (its state, made in
//! `Algorithm::selector`, and its pick).

use super::{
    HealthBitmap, LeastConnections, P2c, PeakEwma, RoundRobin, SmoothWeighted, DEFAULT_DECAY_NS,
};

/// How a target is picked for a request (`--algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    RoundRobin,
    Weighted,
    LeastConnections,
    P2cEwma,
}

impl Algorithm {
    /// Every algorithm, in the order `--help` and its errors list them.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::RoundRobin,
        Algorithm::Weighted,
        Algorithm::LeastConnections,
        Algorithm::P2cEwma,
    ];

    /// Its name on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::RoundRobin => "round-robin",
            Algorithm::Weighted => "weighted",
            Algorithm::LeastConnections => "least-connections",
            Algorithm::P2cEwma => "p2c-ewma",
        }
    }

    /// The algorithm named `s`, if any.
    pub fn parse(s: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Every name, for help and errors: `round-robin, weighted,
    /// least-connections or p2c-ewma`.
    pub fn names() -> String {
        let names = Algorithm::ALL.map(Algorithm::as_str);
        match names.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    /// Whether picks use requests in flight (least-connections, p2c-ewma).
    #[inline]
    pub fn counts_in_flight(self) -> bool {
        matches!(self, Algorithm::LeastConnections | Algorithm::P2cEwma)
    }

    /// Whether picks use response latencies (p2c-ewma): only then is the
    /// clock read per request.
    #[inline]
    pub fn times_latency(self) -> bool {
        self == Algorithm::P2cEwma
    }
}

/// One worker's state of the chosen algorithm.
pub(super) enum Selector {
    RoundRobin(RoundRobin),
    Weighted(SmoothWeighted),
    LeastConnections(LeastConnections),
    P2cEwma(P2c),
}

/// What the worker learnt per target that an algorithm may weigh.
pub(super) struct Learnt<'a> {
    pub weights: &'a [u32],
    /// Requests in flight per target, on this worker.
    pub in_flight: &'a [u32],
    /// Latency estimates (p2c-ewma), and the clock they are read with.
    pub ewma: &'a [PeakEwma],
    pub now_ns: u64,
}

impl Algorithm {
    /// This algorithm's state for a worker over `slots` targets; `start`
    /// spreads workers' first picks.
    pub(super) fn selector(self, slots: usize, start: usize) -> Selector {
        match self {
            Algorithm::RoundRobin => Selector::RoundRobin(RoundRobin::new(start)),
            Algorithm::Weighted => Selector::Weighted(SmoothWeighted::new(slots)),
            Algorithm::LeastConnections => Selector::LeastConnections(LeastConnections::new(start)),
            Algorithm::P2cEwma => Selector::P2cEwma(P2c::new(start as u64)),
        }
    }
}

impl Selector {
    /// A candidate of `set` not in `tried`, as the algorithm picks it.
    #[inline]
    pub(super) fn pick(
        &mut self,
        set: &HealthBitmap,
        learnt: &Learnt<'_>,
        tried: &[u32],
    ) -> Option<usize> {
        match self {
            Selector::RoundRobin(rr) => rr.pick(set, tried),
            Selector::Weighted(w) => w.pick(set, learnt.weights, tried),
            Selector::LeastConnections(least) => {
                least.pick(set, learnt.in_flight, learnt.weights, tried)
            }
            Selector::P2cEwma(p2c) => p2c.pick(
                set,
                learnt.ewma,
                learnt.in_flight,
                learnt.now_ns,
                DEFAULT_DECAY_NS,
                tried,
            ),
        }
    }

    /// Forgets what the algorithm kept about a slot (another target took it).
    pub(super) fn reset(&mut self, slot: usize) {
        if let Selector::Weighted(w) = self {
            w.reset(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_to_its_algorithm() {
        for algorithm in Algorithm::ALL {
            assert_eq!(Algorithm::parse(algorithm.as_str()), Some(algorithm));
        }
        assert_eq!(Algorithm::parse("random"), None);
        assert_eq!(Algorithm::parse("Round-Robin"), None);
    }

    #[test]
    fn names_lists_them_all_in_order() {
        assert_eq!(
            Algorithm::names(),
            "round-robin, weighted, least-connections or p2c-ewma"
        );
    }
}
