//! Durations on the command line: a whole number and its unit, `250ms` or
//! `2s`, read for the flags and written for `--help`.

use std::time::Duration;

/// Parses a duration such as `250ms` or `2s`; zero may go without its unit.
pub fn parse_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let (num, scale_ms) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000)
    } else {
        return None;
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = num.parse().ok()?;
    Some(Duration::from_millis(n.checked_mul(scale_ms)?))
}

/// Writes a duration as a flag would take it: whole seconds as `2s`, any
/// other as `250ms` (below a millisecond is dropped).
pub fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms != 0 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("2"), None);
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("00"), None);
        assert_eq!(parse_duration("ms"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("1.5s"), None);
    }

    #[test]
    fn shown_durations_parse_back() {
        for ms in [0, 1, 10, 999, 1000, 1500, 60_000, 300_000] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&show_duration(d)), Some(d), "{ms} ms");
        }
        assert_eq!(show_duration(Duration::from_secs(10)), "10s");
        assert_eq!(show_duration(Duration::from_millis(10)), "10ms");
    }
}
