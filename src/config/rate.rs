//! A sink's rate limit as the config writes it (`rate_limit = "30/min"`): a config
//! value type, here so that the config does not depend on the alert stage that
//! enforces it (`alert::Pacer`).

use std::fmt;
use std::time::Duration;

/// The closest spacing a rate limit may ask for: beyond 1,000 messages a second a limit
/// means nothing, and `rate_limit` should be left out instead.
const MIN_SPACING: Duration = Duration::from_millis(1);

/// A sink's rate limit, `rate_limit = "30/min"`: at most `count` messages per `per`.
///
/// It is enforced as a minimum spacing of `per / count` between the starts of two
/// messages (see [`crate::alert::Pacer`]), not as a bucket that allows bursts: so no window of length
/// `per`, wherever it starts, holds more than `count` messages, which is what a
/// receiver counting in a sliding or a fixed window accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub per: Duration,
}

impl RateLimit {
    /// Parses `COUNT/PERIOD`: a whole number of at least 1, a slash, and a unit (`s`,
    /// `sec`, `m`, `min`, `h`, `hour`, `d`, `day`, plurals too) or a duration
    /// (`"10/5m"`, `"1/90s"`). Spaces around the parts are allowed.
    pub fn parse(text: &str) -> Result<RateLimit, String> {
        let shape = || format!("{text:?} is not a rate like \"30/min\", \"2/s\" or \"100/1h\"");
        let (count, per) = text.split_once('/').ok_or_else(shape)?;
        let count: u32 = count.trim().parse().map_err(|_| shape())?;
        if count == 0 {
            return Err(format!(
                "{text:?}: the count must be at least 1 (leave rate_limit out for no limit)"
            ));
        }
        let per = per.trim();
        let per = if per.starts_with(|c: char| c.is_ascii_digit()) {
            humantime::parse_duration(per)
        } else {
            // "min" alone is a unit, not a duration: read it as one of it.
            humantime::parse_duration(&format!("1{per}"))
        }
        .map_err(|_| shape())?;
        if per.is_zero() {
            return Err(format!("{text:?}: the period must be longer than zero"));
        }
        let limit = RateLimit { count, per };
        if limit.spacing() < MIN_SPACING {
            return Err(format!(
                "{text:?} allows more than 1000 messages a second; leave rate_limit out for no limit"
            ));
        }
        Ok(limit)
    }

    /// The least time between the starts of two messages, rounded up to the
    /// nanosecond: rounded down, `count + 1` messages could fit in one period.
    pub fn spacing(&self) -> Duration {
        let nanos = self.per.as_nanos().div_ceil(u128::from(self.count));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, humantime::format_duration(self.per))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn rate_limit_parse_table() {
        let ok: &[(&str, u32, Duration, Duration)] = &[
            ("30/min", 30, S(60), S(2)),
            ("30/m", 30, S(60), S(2)),
            ("30 / minute", 30, S(60), S(2)),
            ("2/s", 2, S(1), Duration::from_millis(500)),
            ("3/s", 3, S(1), Duration::from_nanos(333_333_334)),
            ("1/sec", 1, S(1), S(1)),
            ("100/h", 100, S(3600), S(36)),
            ("100/1h", 100, S(3600), S(36)),
            ("10/5m", 10, S(300), S(30)),
            ("1/90s", 1, S(90), S(90)),
            ("5/hours", 5, S(3600), S(720)),
            ("1000/s", 1000, S(1), Duration::from_millis(1)),
            ("24/day", 24, S(86_400), S(3600)),
        ];
        for &(text, count, per, spacing) in ok {
            let limit = RateLimit::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(limit, RateLimit { count, per }, "{text:?}");
            assert_eq!(limit.spacing(), spacing, "{text:?}");
        }
        let bad: &[(&str, &str)] = &[
            ("", "is not a rate"),
            ("30", "is not a rate"),
            ("30/", "is not a rate"),
            ("/min", "is not a rate"),
            ("x/min", "is not a rate"),
            ("-1/min", "is not a rate"),
            ("1.5/min", "is not a rate"),
            ("30/fortnightly", "is not a rate"),
            ("0/min", "at least 1"),
            ("1/0s", "longer than zero"),
            ("2000/s", "more than 1000"),
        ];
        for &(text, why) in bad {
            let err = RateLimit::parse(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
            assert!(err.contains(&format!("{text:?}")), "{text:?}: {err}");
        }
        assert_eq!(RateLimit::parse("30/min").unwrap().to_string(), "30/1m");
    }
}
