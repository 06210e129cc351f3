//! `/metrics` of a running balancer, read and parsed into series.

use std::collections::HashMap;

use super::{admin_get, target_name, Backend, Balancer};

/// `/metrics`, read and parsed.
pub struct Scrape {
    pub text: String,
    samples: HashMap<String, f64>,
}

impl Scrape {
    pub fn take(lb: &Balancer) -> Scrape {
        let text = admin_get(lb, "/metrics");
        let samples = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (series, value) = l
                    .rsplit_once(' ')
                    .unwrap_or_else(|| panic!("not a sample: {l:?}"));
                let value = value
                    .parse()
                    .unwrap_or_else(|e| panic!("bad value in {l:?}: {e}"));
                (series.to_string(), value)
            })
            .collect();
        Scrape { text, samples }
    }

    /// The value of one series, e.g. `lb_uptime_seconds` or
    /// `lb_worker_open_connections{worker="0"}`.
    pub fn get(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no series {series} in\n{}", self.text))
    }

    pub fn has(&self, series: &str) -> bool {
        self.samples.contains_key(series)
    }

    /// A per-target family's value for `b`.
    pub fn target(&self, family: &str, b: &Backend) -> f64 {
        self.get(&format!("{family}{{target=\"{}\"}}", target_name(b)))
    }

    /// `lb_target_responses_total` of `b` for a status class (`"2xx"`).
    pub fn responses(&self, b: &Backend, class: &str) -> f64 {
        self.get(&format!(
            "lb_target_responses_total{{target=\"{}\",class=\"{class}\"}}",
            target_name(b)
        ))
    }

    /// The sum of every series of a family (all labels).
    pub fn sum(&self, family: &str) -> f64 {
        let prefix = format!("{family}{{");
        self.samples
            .iter()
            .filter(|(s, _)| s.starts_with(&prefix))
            .map(|(_, v)| v)
            .sum()
    }

    pub fn duration_count(&self) -> f64 {
        self.get("lb_request_duration_seconds_count")
    }
}
