//! Slow start: a target that comes back gets a share of its traffic that
//! grows linearly from 0 to full.

use std::time::Duration;

/// The share (0 to 1) of its traffic a target gets `since_rejoin` after it
/// came back, when slow start lasts `length`.
pub fn share(since_rejoin: Duration, length: Duration) -> f64 {
    (since_rejoin.as_secs_f64() / length.as_secs_f64()).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LENGTH: Duration = Duration::from_secs(30);

    #[test]
    fn grows_linearly_from_nothing_to_full() {
        assert_eq!(share(Duration::ZERO, LENGTH), 0.0);
        assert_eq!(share(Duration::from_secs(15), LENGTH), 0.5);
        assert_eq!(share(LENGTH, LENGTH), 1.0);
    }

    #[test]
    fn never_exceeds_full() {
        assert_eq!(share(Duration::from_secs(3600), LENGTH), 1.0);
    }
}
