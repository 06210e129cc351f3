//! The balancing algorithms by name (`--algorithm`): the one place that
//! lists them. A new algorithm is a file beside this one, an arm here (its
//! name in `as_str`, its place in `ALL`) and an arm in the picker.

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
