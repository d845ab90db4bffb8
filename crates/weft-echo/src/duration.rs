//! Parsing the `?delay=` query parameter: the part of Go's
//! `time.ParseDuration` that tests use (`100ms`, `1.5s`, `1m30s`, `250us`).

use std::time::Duration;

/// Why a `delay` value was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("time: invalid duration {value:?}: {reason}")]
pub(crate) struct DurationError {
    value: String,
    reason: &'static str,
}

/// Parses a Go duration string. Units: `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`;
/// components may repeat (`1m30s`) and carry a fraction (`1.5s`); a leading
/// `-` gives a zero duration (Go sleeps for no time on negative values).
pub(crate) fn parse(value: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        value: value.to_owned(),
        reason,
    };
    let (negative, mut rest) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(err("empty"));
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(err("expected a number"));
        }
        let num: f64 = num.parse().map_err(|_| err("expected a number"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(err("missing unit")),
            _ => return Err(err("unknown unit")),
        };
        total += num * scale;
        rest = tail;
    }
    if negative {
        return Ok(Duration::ZERO);
    }
    Duration::try_from_secs_f64(total).map_err(|_| err("out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_go_forms() {
        assert_eq!(parse("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("-1s"), Ok(Duration::ZERO));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "", "abc", "10", "1x", "s", "1..2s", ".s", "-", "1e9s", "1sms",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse("99999999999999999999999h").is_err());
    }
}
