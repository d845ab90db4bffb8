//! Small time helpers: UNIX seconds to `SystemTime` and RFC 3339 for error messages.
//!
//! Certificate times are whole seconds since the UNIX epoch. Errors that mention them must be
//! readable by an operator at 3 a.m., so they are printed as RFC 3339 UTC rather than as raw
//! counters; this avoids pulling a date crate into the public API for one formatter.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time printed as `YYYY-MM-DDTHH:MM:SSZ` (UTC). Times before 1970 print as such
/// with a leading `-` offset in seconds, which certificates minted here never carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rfc3339(pub i64);

impl Rfc3339 {
    pub fn from_system(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Self(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            Err(e) => Self(-i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX)),
        }
    }
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0;
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        )
    }
}

/// Seconds since the epoch as a `SystemTime`; `None` for times before 1970, which no
/// certificate that matters here carries.
pub fn system_time_from_unix(secs: i64) -> Option<SystemTime> {
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Drops sub-second precision, because certificates cannot carry it and callers compare
/// the times they asked for with the times they got.
pub fn truncate_to_secs(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(_) => t,
    }
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_dates() {
        assert_eq!(Rfc3339(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(Rfc3339(951_782_400).to_string(), "2000-02-29T00:00:00Z");
        assert_eq!(Rfc3339(1_700_000_000).to_string(), "2023-11-14T22:13:20Z");
        assert_eq!(Rfc3339(4_102_444_799).to_string(), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn converts_system_times() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        assert_eq!(Rfc3339::from_system(t), Rfc3339(1_700_000_000));
        assert_eq!(
            truncate_to_secs(t),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
        assert_eq!(system_time_from_unix(-1), None);
        assert_eq!(
            system_time_from_unix(5),
            Some(UNIX_EPOCH + Duration::from_secs(5))
        );
    }
}
