//! Properties of the selection algorithms in `load_balancer::balance`,
//! checked with proptest through the public API: no pick returns a degraded
//! or tried slot, a pick finds a slot exactly when a candidate exists, smooth
//! weighted round robin gives each slot its weight over a cycle, least
//! connections picks a least-loaded slot, and power of two choices shuns a
//! slow target and favours a free one.
//!
//! Failures are not persisted to files: a failing case prints its minimal
//! input, which belongs in a unit test beside the algorithm.

use proptest::collection::vec;
use proptest::prelude::*;

use load_balancer::balance::{
    HealthBitmap, LeastConnections, P2c, PeakEwma, SmoothWeighted, DEFAULT_DECAY_NS,
};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One pool of targets as a worker sees it at one moment.
#[derive(Debug, Clone)]
struct Pool {
    healthy: Vec<bool>,
    tried: Vec<u32>,
    weights: Vec<u32>,
    in_flight: Vec<u32>,
    estimates_ns: Vec<u32>,
    start: usize,
}

impl Pool {
    fn len(&self) -> usize {
        self.healthy.len()
    }

    fn health(&self) -> HealthBitmap {
        let h = HealthBitmap::new(self.len());
        for (slot, _) in self.healthy.iter().enumerate().filter(|(_, &up)| up) {
            h.mark_healthy(slot);
        }
        h
    }

    fn is_candidate(&self, slot: usize) -> bool {
        self.healthy[slot] && !self.tried.contains(&(slot as u32))
    }

    fn has_candidate(&self) -> bool {
        (0..self.len()).any(|slot| self.is_candidate(slot))
    }

    fn ewma(&self) -> Vec<PeakEwma> {
        self.estimates_ns
            .iter()
            .map(|&e| PeakEwma::new(f64::from(e), 0))
            .collect()
    }
}

/// Pools of 0 to 200 slots (so up to four bitmap words), each slot healthy
/// with a probability that varies from pool to pool.
fn pools() -> impl Strategy<Value = Pool> {
    (0usize..200, 0u32..=4).prop_flat_map(|(len, density)| {
        let slot = 0..len.max(1) as u32;
        (
            vec((0u32..4).prop_map(move |r| r < density), len),
            vec(slot, 0..4),
            vec(0u32..8, len),
            vec(0u32..20, len),
            vec(0u32..1_000_000, len),
            0usize..400,
        )
            .prop_map(
                |(healthy, tried, weights, in_flight, estimates_ns, start)| Pool {
                    healthy,
                    tried,
                    weights,
                    in_flight,
                    estimates_ns,
                    start,
                },
            )
    })
}

/// Checks one pick: Some exactly when a candidate exists, and then a
/// candidate.
fn check_pick(pool: &Pool, picked: Option<usize>) -> Result<(), TestCaseError> {
    match picked {
        Some(slot) => {
            prop_assert!(slot < pool.len(), "slot {slot} out of range");
            prop_assert!(pool.healthy[slot], "picked degraded slot {slot}");
            prop_assert!(
                !pool.tried.contains(&(slot as u32)),
                "picked tried slot {slot}"
            );
        }
        None => prop_assert!(!pool.has_candidate(), "None with a candidate"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn weighted_picks_a_candidate_iff_one_exists(pool in pools()) {
        let h = pool.health();
        let mut sw = SmoothWeighted::new(pool.len());
        for _ in 0..4 {
            check_pick(&pool, sw.pick(&h, &pool.weights, &pool.tried))?;
        }
    }

    #[test]
    fn least_connections_picks_a_candidate_iff_one_exists(pool in pools()) {
        let h = pool.health();
        let mut lc = LeastConnections::new(pool.start);
        for _ in 0..4 {
            check_pick(&pool, lc.pick(&h, &pool.in_flight, &pool.weights, &pool.tried))?;
        }
    }

    #[test]
    fn p2c_picks_a_candidate_iff_one_exists(pool in pools(), seed: u64) {
        let h = pool.health();
        let ewma = pool.ewma();
        let mut p2c = P2c::new(seed);
        for now_ns in 0..4 {
            let picked = p2c.pick(&h, &ewma, &pool.in_flight, now_ns, DEFAULT_DECAY_NS, &pool.tried);
            check_pick(&pool, picked)?;
        }
    }

    #[test]
    fn least_connections_picks_a_least_loaded_candidate(pool in pools()) {
        let h = pool.health();
        let mut lc = LeastConnections::new(pool.start);
        if let Some(chosen) = lc.pick(&h, &pool.in_flight, &pool.weights, &pool.tried) {
            let load = |slot: usize| u64::from(pool.in_flight[slot]);
            let weight = |slot: usize| u64::from(pool.weights[slot].max(1));
            for other in (0..pool.len()).filter(|&s| pool.is_candidate(s)) {
                // in_flight[chosen] / weight[chosen] <= in_flight[other] / weight[other]
                prop_assert!(
                    load(chosen) * weight(other) <= load(other) * weight(chosen),
                    "slot {chosen} is busier than slot {other}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// From a fresh state, every run of `sum(weights)` picks over a fixed
    /// healthy set is a whole cycle: each healthy slot exactly its weight
    /// (0 counting as 1), each degraded slot never.
    #[test]
    fn weighted_gives_each_slot_its_weight_every_cycle(mut pool in pools()) {
        pool.tried.clear();
        let h = pool.health();
        let weight = |slot: usize| pool.weights[slot].max(1);
        let cycle: u32 = (0..pool.len()).filter(|&s| pool.healthy[s]).map(weight).sum();
        let mut sw = SmoothWeighted::new(pool.len());
        for _ in 0..3 {
            let mut counts = vec![0u32; pool.len()];
            for _ in 0..cycle {
                counts[sw.pick(&h, &pool.weights, &[]).unwrap()] += 1;
            }
            for (slot, &count) in counts.iter().enumerate() {
                let expected = if pool.healthy[slot] { weight(slot) } else { 0 };
                prop_assert_eq!(count, expected, "slot {}", slot);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(24))]

    /// One target ten times slower than the others, with as many requests
    /// in flight: it loses every draw, so gets far less than a fair share.
    #[test]
    fn p2c_shuns_a_slow_target(n in 2usize..64, slow in 0usize..64, seed: u64, in_flight in 0u32..10) {
        let slow = slow % n;
        let h = HealthBitmap::new(n);
        for slot in 0..n {
            h.mark_healthy(slot);
        }
        let mut ewma = vec![PeakEwma::new(1e6, 0); n];
        ewma[slow] = PeakEwma::new(1e7, 0);
        let in_flight = vec![in_flight; n];
        let mut p2c = P2c::new(seed);
        let picks = 10_000;
        let slow_picks = (0..picks)
            .filter(|_| p2c.pick(&h, &ewma, &in_flight, 1_000, DEFAULT_DECAY_NS, &[]) == Some(slow))
            .count();
        prop_assert!(slow_picks * 2 * n < picks, "{} of {} picks", slow_picks, picks);
    }

    /// A target that costs nothing wins every draw it is in: about 2/n of
    /// the picks, twice a fair share.
    #[test]
    fn p2c_prefers_a_free_target(n in 2usize..64, free in 0usize..64, seed: u64) {
        let free = free % n;
        let h = HealthBitmap::new(n);
        for slot in 0..n {
            h.mark_healthy(slot);
        }
        let mut ewma = vec![PeakEwma::new(1e6, 0); n];
        ewma[free] = PeakEwma::new(0.0, 0);
        let in_flight = vec![1; n];
        let mut p2c = P2c::new(seed);
        let picks = 10_000;
        let free_picks = (0..picks)
            .filter(|_| p2c.pick(&h, &ewma, &in_flight, 0, DEFAULT_DECAY_NS, &[]) == Some(free))
            .count();
        // Expected 2 * picks / n; ask for more than 1.5 fair shares.
        prop_assert!(2 * free_picks * n > 3 * picks, "{} of {} picks", free_picks, picks);
    }
}
