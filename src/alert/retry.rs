//! When a delivery failed, whether to try again and when: the HTTP status rules of
//! docs/webhooks.md ("Your answer, and retries"), `Retry-After`, and exponential
//! backoff with jitter.
//!
//! Everything here is pure (no clock, no randomness of its own), so the outbox can
//! compute the next attempt from what it stored and the tests are exact.

use std::time::{Duration, SystemTime};

/// Why one delivery attempt failed, and whether another attempt can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The receiver is down, slow, overloaded or unreachable: try again later.
    #[error("{reason}{}", retry_note(.retry_after))]
    Retriable {
        reason: String,
        /// What the receiver asked for with `Retry-After` (on 429 and 503 only).
        retry_after: Option<Duration>,
    },
    /// The receiver rejected the alert itself (bad URL, auth, payload): retrying the
    /// same bytes would fail the same way.
    #[error("{reason} (not retried)")]
    Permanent { reason: String },
}

fn retry_note(retry_after: &Option<Duration>) -> String {
    retry_after.map_or_else(String::new, |d| {
        format!(", asked to retry after {}", humantime::format_duration(d))
    })
}

impl DeliveryError {
    /// True when retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, DeliveryError::Permanent { .. })
    }

    /// The reason, without the retry note.
    pub fn reason(&self) -> &str {
        match self {
            DeliveryError::Retriable { reason, .. } | DeliveryError::Permanent { reason } => reason,
        }
    }

    /// How long the receiver asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DeliveryError::Retriable { retry_after, .. } => *retry_after,
            DeliveryError::Permanent { .. } => None,
        }
    }
}

/// Sorts a receiver's HTTP status into delivered, retriable or permanent.
///
/// 2xx is delivered. 408 (the receiver timed out reading us) and 429 (rate limited)
/// are retriable, as is every 5xx and anything else unexpected (1xx, 3xx): those say
/// nothing about the alert itself. Any other 4xx means the receiver understood and
/// refused the request, so it is permanent. `retry_after` is kept only on 429 and 503,
/// the two statuses for which the contract honours it.
pub fn classify(status: u16, retry_after: Option<Duration>) -> Result<(), DeliveryError> {
    let reason = match http_reason(status) {
        Some(text) => format!("receiver answered HTTP {status} {text}"),
        None => format!("receiver answered HTTP {status}"),
    };
    match status {
        200..=299 => Ok(()),
        408 => Err(DeliveryError::Retriable {
            reason,
            retry_after: None,
        }),
        429 | 503 => Err(DeliveryError::Retriable {
            reason,
            retry_after,
        }),
        400..=499 => Err(DeliveryError::Permanent { reason }),
        _ => Err(DeliveryError::Retriable {
            reason,
            retry_after: None,
        }),
    }
}

/// The standard phrase for the statuses receivers commonly answer, for log lines.
fn http_reason(status: u16) -> Option<&'static str> {
    Some(match status {
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => return None,
    })
}

/// A `Retry-After` value: delay-seconds, or an HTTP date measured from `now`.
///
/// A date in the past means "now" (zero). Anything else (negative or fractional
/// seconds, garbage) is ignored, and the backoff alone decides.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is still "a very long time".
        return Some(Duration::from_secs(
            value.parse::<u64>().unwrap_or(u64::MAX),
        ));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Exponential backoff with jitter: attempt `n` (from 1) waits between half and all of
/// `base · 2^(n-1)`, capped at `cap`.
///
/// The jitter spreads the retries of many alerts that failed together (a receiver
/// outage) so they do not all come back at the same second; it is derived from a seed
/// (a stable hash of the alert id, say) rather than a random source so that a given
/// alert's schedule is reproducible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(60 * 60),
        }
    }
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff { base, cap }
    }

    /// The delay before retrying after failed attempt `attempt` (1 is the first
    /// attempt; 0 is treated as 1).
    pub fn delay(&self, attempt: u32, jitter_seed: u64) -> Duration {
        // In nanoseconds as u128: a Duration is below 2^94 ns, so the result times a
        // 32-bit fraction below cannot overflow.
        let exponent = attempt.saturating_sub(1).min(127);
        let (base, cap) = (self.base.as_nanos(), self.cap.as_nanos());
        // Compared before shifting, so large attempts cannot overflow.
        let nanos = if base > cap >> exponent {
            cap
        } else {
            base << exponent
        };
        let half = nanos / 2;
        // A fraction in [0, 1) in 32-bit fixed point, different for every attempt.
        let fraction = u128::from(mix(jitter_seed ^ u64::from(attempt)) >> 32);
        let jittered = (nanos - half) + ((half * fraction) >> 32);
        duration_from_nanos(jittered)
    }

    /// The delay before the next attempt after `err`: the backoff, or what the
    /// receiver asked for with `Retry-After` when that is longer.
    ///
    /// `Retry-After` is bounded by `cap`, so a receiver answering "come back next
    /// year" cannot park an alert beyond the longest backoff. Permanent errors are
    /// not retried by the outbox; for them this is just the backoff.
    pub fn next_delay(&self, attempt: u32, jitter_seed: u64, err: &DeliveryError) -> Duration {
        let backoff = self.delay(attempt, jitter_seed);
        match err.retry_after() {
            Some(asked) => asked.min(self.cap).max(backoff),
            None => backoff,
        }
    }
}

/// splitmix64's finaliser: neighbouring seeds and attempts give unrelated fractions.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn duration_from_nanos(nanos: u128) -> Duration {
    const PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(nanos / PER_SEC).unwrap_or(u64::MAX);
    // The remainder is below 10^9 and so always fits.
    let sub = u32::try_from(nanos % PER_SEC).unwrap_or(0);
    Duration::new(secs, sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[derive(Debug, Clone, Copy)]
    enum Want {
        Delivered,
        Retry(Option<Duration>),
        Permanent,
    }

    #[test]
    fn classify_table() {
        use Want::*;
        // (status, Retry-After sent, expected)
        let cases: &[(u16, Option<Duration>, Want)] = &[
            (200, None, Delivered),
            (201, None, Delivered),
            (204, Some(S(3)), Delivered),
            (299, None, Delivered),
            (400, None, Permanent),
            (401, None, Permanent),
            (403, None, Permanent),
            (404, None, Permanent),
            (410, None, Permanent),
            (413, Some(S(3)), Permanent),
            (499, None, Permanent),
            (408, None, Retry(None)),
            (408, Some(S(3)), Retry(None)),
            (429, None, Retry(None)),
            (429, Some(S(30)), Retry(Some(S(30)))),
            (500, Some(S(9)), Retry(None)),
            (502, None, Retry(None)),
            (503, None, Retry(None)),
            (503, Some(S(7)), Retry(Some(S(7)))),
            (504, None, Retry(None)),
            (599, None, Retry(None)),
            (100, None, Retry(None)),
            (301, None, Retry(None)),
            (307, None, Retry(None)),
            (600, None, Retry(None)),
        ];
        for &(status, retry_after, expected) in cases {
            let got = classify(status, retry_after);
            match (expected, got) {
                (Delivered, Ok(())) => {}
                (Permanent, Err(err)) if err.is_permanent() => {
                    assert!(err.to_string().contains(&status.to_string()), "{err}");
                }
                (Retry(kept), Err(err)) if !err.is_permanent() => {
                    assert_eq!(err.retry_after(), kept, "status {status}");
                    assert!(err.to_string().contains(&status.to_string()), "{err}");
                }
                (expected, got) => panic!("status {status}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn messages_name_status_and_wait() {
        let err = classify(503, Some(S(7))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "receiver answered HTTP 503 Service Unavailable, asked to retry after 7s"
        );
        let err = classify(400, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "receiver answered HTTP 400 Bad Request (not retried)"
        );
        assert_eq!(err.reason(), "receiver answered HTTP 400 Bad Request");
    }

    #[test]
    fn retry_after_table() {
        let now = httpdate::parse_http_date("Fri, 14 Mar 2025 10:00:00 GMT").unwrap();
        let cases: &[(&str, Option<Duration>)] = &[
            ("7", Some(S(7))),
            (" 120 ", Some(S(120))),
            ("0", Some(S(0))),
            ("99999999999999999999999", Some(S(u64::MAX))),
            ("Fri, 14 Mar 2025 10:01:30 GMT", Some(S(90))),
            // The two obsolete date formats HTTP still requires recipients to accept.
            ("Friday, 14-Mar-25 10:00:10 GMT", Some(S(10))),
            ("Fri Mar 14 10:00:05 2025", Some(S(5))),
            ("Fri, 14 Mar 2025 09:00:00 GMT", Some(S(0))),
            ("", None),
            ("-5", None),
            ("1.5", None),
            ("soon", None),
        ];
        for &(value, expected) in cases {
            assert_eq!(parse_retry_after(value, now), expected, "{value:?}");
        }
    }

    #[test]
    fn backoff_grows_within_jitter_band_and_caps() {
        let backoff = Backoff::default();
        // (attempt, the un-jittered delay)
        let cases: &[(u32, Duration)] = &[
            (0, S(5)),
            (1, S(5)),
            (2, S(10)),
            (3, S(20)),
            (4, S(40)),
            (8, S(640)),
            (10, S(2560)),
            (11, S(3600)),
            (12, S(3600)),
            (40, S(3600)),
            (u32::MAX, S(3600)),
        ];
        for &(attempt, full) in cases {
            for seed in [0, 1, 42, u64::MAX, 0x9e37_79b9_7f4a_7c15] {
                let d = backoff.delay(attempt, seed);
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempt} seed {seed}: {d:?} not within [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
    }

    #[test]
    fn backoff_is_deterministic_and_jittered() {
        let backoff = Backoff::new(Duration::from_millis(100), S(60));
        assert_eq!(backoff.delay(3, 7), backoff.delay(3, 7));
        // Different alerts spread out instead of coming back together.
        let delays: std::collections::HashSet<Duration> =
            (0..50).map(|seed| backoff.delay(5, seed)).collect();
        assert!(delays.len() > 40, "only {} distinct delays", delays.len());
        // A tiny base still reaches the cap after enough attempts.
        assert!(Backoff::new(Duration::from_nanos(1), S(3600)).delay(60, 5) >= S(1800));
        // Tiny and huge bases do not overflow.
        assert!(Backoff::new(Duration::from_nanos(1), S(1)).delay(1, 3) <= Duration::from_nanos(1));
        assert!(Backoff::new(Duration::MAX, Duration::MAX).delay(64, 0) >= Duration::MAX / 2);
    }

    #[test]
    fn next_delay_table() {
        let backoff = Backoff::default();
        let seed = 99;
        let retriable = |retry_after| DeliveryError::Retriable {
            reason: "x".into(),
            retry_after,
        };
        let plain = backoff.delay(1, seed);
        let cases: &[(u32, DeliveryError, Duration)] = &[
            (1, retriable(None), plain),
            // Asked for longer than the backoff: wait as asked.
            (1, retriable(Some(S(30))), S(30)),
            // Asked for less: the backoff still applies.
            (1, retriable(Some(S(1))), plain),
            // Asked for absurdly long: bounded by the cap.
            (1, retriable(Some(S(86_400 * 365))), S(3600)),
            (12, retriable(Some(S(10))), backoff.delay(12, seed)),
            (
                2,
                DeliveryError::Permanent { reason: "x".into() },
                backoff.delay(2, seed),
            ),
        ];
        for (attempt, err, expected) in cases {
            assert_eq!(
                backoff.next_delay(*attempt, seed, err),
                *expected,
                "{err:?}"
            );
        }
    }
}
