//! When to poll a feed next: a pure function of the outcome, the feed's state and
//! what the server asked for. No clock is read here (`now` is a parameter) and the
//! jitter is a hash, not a random number, so every case is a plain unit test.
//!
//! The rules, in order:
//! - a feed that is gone (410) is asked again after [`Bounds::max`] (a day), so one
//!   that comes back recovers without anyone touching it;
//! - a server that said `Retry-After` on a 429/503 is left alone that long;
//! - a failure backs off exponentially, `interval * 2^failures`, capped at
//!   [`Bounds::max_backoff`] (or the interval itself, if longer);
//! - a success waits the interval, but never less than the feed asked for (RSS
//!   `<ttl>`, `Cache-Control: max-age`, `Expires`);
//! - intervals get ±10% jitter, so feeds configured together do not stay in
//!   lockstep, and every delay is clamped to [`Bounds::min`, `Bounds::max`].

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::PollOutcome;
use crate::store::FeedState;

/// Jitter either way, in thousandths of the delay.
const JITTER_PER_MILLE: u64 = 100;

/// The limits every computed delay stays within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// No feed is polled more often than this, whatever its interval.
    pub min: Duration,
    /// Every feed is polled at least this often, whatever it asks.
    pub max: Duration,
    /// The longest backoff after failures (unless the interval is longer).
    pub max_backoff: Duration,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            min: crate::config::MIN_INTERVAL,
            max: Duration::from_secs(24 * 3600),
            max_backoff: Duration::from_secs(6 * 3600),
        }
    }
}

/// What the server or the feed asked for, beside the outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hints {
    /// Do not poll sooner than this after a success (the longest of RSS `<ttl>`,
    /// `max-age` and `Expires`).
    pub not_before: Option<Duration>,
    /// `Retry-After` of a failed response.
    pub retry_after: Option<Duration>,
}

/// When to poll the feed `key` next.
/// `state` is the feed's new state: its `failures` already counts this outcome.
pub fn next_poll(
    now: DateTime<Utc>,
    key: &str,
    interval: Duration,
    outcome: &PollOutcome,
    hints: &Hints,
    state: &FeedState,
    bounds: &Bounds,
) -> Option<DateTime<Utc>> {
    let seed = (key, now.timestamp(), state.failures);
    let delay = match outcome {
        PollOutcome::Gone => bounds.max,
        PollOutcome::Fetched { .. } | PollOutcome::NotModified => {
            let base = jitter(interval, seed);
            base.max(hints.not_before.unwrap_or(Duration::ZERO))
        }
        PollOutcome::Failed { .. } => match hints.retry_after {
            Some(wait) => wait,
            None => jitter(backoff(interval, state.failures, bounds), seed),
        },
    };
    let delay = delay.clamp(bounds.min, bounds.max.max(bounds.min));
    Some(now + TimeDelta::from_std(delay).unwrap_or(TimeDelta::days(1)))
}

/// `interval * 2^failures`, capped.
fn backoff(interval: Duration, failures: u32, bounds: &Bounds) -> Duration {
    let cap = bounds.max_backoff.max(interval);
    // 2^20 times any interval is past any cap; stopping there avoids overflow.
    let factor = 1u32 << failures.min(20);
    interval.saturating_mul(factor).min(cap)
}

/// `delay` moved by up to ±10%, the amount fixed by a hash of the feed and attempt.
fn jitter(delay: Duration, (key, at, failures): (&str, i64, u32)) -> Duration {
    let mut input = Vec::with_capacity(key.len() + 12);
    input.extend_from_slice(key.as_bytes());
    input.extend_from_slice(&at.to_le_bytes());
    input.extend_from_slice(&failures.to_le_bytes());
    let hash = xxhash_rust::xxh3::xxh3_64(&input);
    // 0..=200 thousandths, centred on 100: -10% ..= +10%.
    let per_mille = hash % (2 * JITTER_PER_MILLE + 1);
    let millis = delay.as_millis().min(u64::MAX as u128) as u64;
    let scaled = millis / 1000 * (1000 - JITTER_PER_MILLE + per_mille)
        + millis % 1000 * (1000 - JITTER_PER_MILLE + per_mille) / 1000;
    Duration::from_millis(scaled)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "https://example.org/rss.xml";
    const MIN: Duration = Duration::from_secs(60);

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-03-14T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn fetched() -> PollOutcome {
        PollOutcome::Fetched {
            items: 3,
            repairs: 0,
        }
    }

    fn failed() -> PollOutcome {
        PollOutcome::Failed {
            error: "server answered HTTP 500 Internal Server Error".into(),
            transient: true,
        }
    }

    fn with_failures(failures: u32) -> FeedState {
        FeedState {
            failures,
            ..FeedState::default()
        }
    }

    fn delay(next: Option<DateTime<Utc>>) -> Duration {
        (next.expect("a next poll") - now()).to_std().unwrap()
    }

    fn within(d: Duration, base: Duration) -> bool {
        d >= base.mul_f64(0.9) && d <= base.mul_f64(1.1)
    }

    #[test]
    fn success_waits_the_interval_with_jitter() {
        let interval = Duration::from_secs(300);
        let state = FeedState::default();
        let d = delay(next_poll(
            now(),
            KEY,
            interval,
            &fetched(),
            &Hints::default(),
            &state,
            &Bounds::default(),
        ));
        assert!(within(d, interval), "{d:?}");
        let again = delay(next_poll(
            now(),
            KEY,
            interval,
            &fetched(),
            &Hints::default(),
            &state,
            &Bounds::default(),
        ));
        assert_eq!(d, again, "jitter is deterministic");
        // Across feeds and attempts the jitter differs, so feeds drift apart.
        let spread: std::collections::HashSet<Duration> = (0..50)
            .map(|i| {
                delay(next_poll(
                    now(),
                    &format!("https://example.org/{i}.xml"),
                    interval,
                    &PollOutcome::NotModified,
                    &Hints::default(),
                    &state,
                    &Bounds::default(),
                ))
            })
            .collect();
        assert!(spread.len() > 10, "{spread:?}");
        assert!(spread.iter().all(|d| within(*d, interval)));
    }

    #[test]
    fn success_never_polls_sooner_than_the_feed_asks() {
        let hints = Hints {
            not_before: Some(Duration::from_secs(3600)),
            retry_after: None,
        };
        let d = delay(next_poll(
            now(),
            KEY,
            Duration::from_secs(300),
            &fetched(),
            &hints,
            &FeedState::default(),
            &Bounds::default(),
        ));
        assert_eq!(d, Duration::from_secs(3600));
        // But a week-long ttl is still checked daily.
        let hints = Hints {
            not_before: Some(Duration::from_secs(7 * 24 * 3600)),
            retry_after: None,
        };
        let d = delay(next_poll(
            now(),
            KEY,
            Duration::from_secs(300),
            &fetched(),
            &hints,
            &FeedState::default(),
            &Bounds::default(),
        ));
        assert_eq!(d, Duration::from_secs(24 * 3600));
    }

    #[test]
    fn intervals_are_clamped() {
        let d = delay(next_poll(
            now(),
            KEY,
            Duration::from_secs(5),
            &fetched(),
            &Hints::default(),
            &FeedState::default(),
            &Bounds::default(),
        ));
        assert_eq!(d, MIN);
        let d = delay(next_poll(
            now(),
            KEY,
            Duration::from_secs(7 * 24 * 3600),
            &fetched(),
            &Hints::default(),
            &FeedState::default(),
            &Bounds::default(),
        ));
        assert_eq!(d, Duration::from_secs(24 * 3600));
    }

    #[test]
    fn failures_back_off_exponentially_up_to_six_hours() {
        let interval = Duration::from_secs(300);
        let mut last = Duration::ZERO;
        for failures in 1..=4 {
            let d = delay(next_poll(
                now(),
                KEY,
                interval,
                &failed(),
                &Hints::default(),
                &with_failures(failures),
                &Bounds::default(),
            ));
            let base = interval * 2u32.pow(failures);
            assert!(within(d, base), "{failures}: {d:?} vs {base:?}");
            assert!(d > last);
            last = d;
        }
        for failures in [7, 12, 40, u32::MAX] {
            let d = delay(next_poll(
                now(),
                KEY,
                interval,
                &failed(),
                &Hints::default(),
                &with_failures(failures),
                &Bounds::default(),
            ));
            assert!(
                within(d, Duration::from_secs(6 * 3600)),
                "{failures}: {d:?}"
            );
        }
        // A feed polled twice a day is not polled more often because it fails.
        let d = delay(next_poll(
            now(),
            KEY,
            Duration::from_secs(12 * 3600),
            &failed(),
            &Hints::default(),
            &with_failures(3),
            &Bounds::default(),
        ));
        assert!(within(d, Duration::from_secs(12 * 3600)), "{d:?}");
    }

    #[test]
    fn permanent_failures_back_off_too() {
        let outcome = PollOutcome::Failed {
            error: "server answered HTTP 404 Not Found".into(),
            transient: false,
        };
        let d = delay(next_poll(
            now(),
            KEY,
            Duration::from_secs(300),
            &outcome,
            &Hints::default(),
            &with_failures(2),
            &Bounds::default(),
        ));
        assert!(within(d, Duration::from_secs(1200)), "{d:?}");
    }

    #[test]
    fn retry_after_is_honoured_up_to_a_day() {
        let hints = |secs| Hints {
            not_before: None,
            retry_after: Some(Duration::from_secs(secs)),
        };
        let state = with_failures(1);
        let d = delay(next_poll(
            now(),
            KEY,
            Duration::from_secs(300),
            &failed(),
            &hints(7200),
            &state,
            &Bounds::default(),
        ));
        assert_eq!(d, Duration::from_secs(7200));
        let d = delay(next_poll(
            now(),
            KEY,
            Duration::from_secs(300),
            &failed(),
            &hints(30 * 24 * 3600),
            &state,
            &Bounds::default(),
        ));
        assert_eq!(d, Duration::from_secs(24 * 3600));
        let d = delay(next_poll(
            now(),
            KEY,
            Duration::from_secs(300),
            &failed(),
            &hints(1),
            &state,
            &Bounds::default(),
        ));
        assert_eq!(d, MIN);
    }

    #[test]
    fn a_gone_feed_is_asked_again_after_a_day() {
        assert_eq!(
            next_poll(
                now(),
                KEY,
                Duration::from_secs(300),
                &PollOutcome::Gone,
                &Hints::default(),
                &with_failures(1),
                &Bounds::default()
            ),
            Some(now() + TimeDelta::days(1))
        );
    }
}
