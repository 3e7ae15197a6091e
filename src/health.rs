//! Feed health: pure functions from a feed's stored state to its health (`ok`,
//! `stale`, `failing`, `gone`, `moved`), the bookkeeping of new items and their usual
//! gap, and the transitions the poller reports when a feed enters or leaves a bad
//! state. No I/O and no clock: `now` is a parameter.
//!
//! The rules (docs/cli.md, "feeds"; thresholds under `[health]` in docs/config.md),
//! the first that holds wins:
//! - `gone`: the last answer was 410 Gone, or 404 Not Found for `gone_after` or
//!   longer (counted from the first failure of the current run);
//! - `failing`: `failing_after` or more consecutive failed polls;
//! - `moved`: a 301/308 said the feed lives elsewhere (the new address is suggested);
//! - `stale`: no new item for `stale_after_gaps` times the feed's usual gap, and for
//!   at least `stale_at_least` (a feed with no known gap is never stale);
//! - else `ok`.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::config::{Feed, Health as Rules};
use crate::store::{FeedHealth, FeedState};

/// A feed's health now, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub state: FeedHealth,
    /// What made the state, in words (`None` for `ok`).
    pub reason: Option<String>,
    /// For `moved`: the address to put in the config.
    pub moved_to: Option<String>,
}

/// The health of a feed whose stored state is `state`, at `now`.
pub fn assess(state: &FeedState, rules: &Rules, now: DateTime<Utc>) -> Assessment {
    let failing_for = state
        .failing_since
        .map(|since| (now - since).to_std().unwrap_or(Duration::ZERO));
    let last_error = state.last_error.as_deref().unwrap_or("unknown error");
    let bad = |state, reason: String| Assessment {
        state,
        reason: Some(reason),
        moved_to: None,
    };
    if state.failures > 0 {
        match state.last_status {
            Some(410) => return bad(FeedHealth::Gone, "answered HTTP 410 Gone".to_string()),
            Some(404) if failing_for.is_some_and(|d| d >= rules.gone_after) => {
                return bad(
                    FeedHealth::Gone,
                    format!(
                        "answered HTTP 404 Not Found for {} (gone after {})",
                        human(failing_for.unwrap_or_default()),
                        human(rules.gone_after)
                    ),
                )
            }
            _ => {}
        }
    }
    if state.failures >= rules.failing_after {
        return bad(
            FeedHealth::Failing,
            format!(
                "{} consecutive failed polls; the last: {last_error}",
                state.failures
            ),
        );
    }
    if let Some(to) = &state.permanent_url {
        return Assessment {
            state: FeedHealth::Moved,
            reason: Some(format!("moved permanently to {to}")),
            moved_to: Some(to.clone()),
        };
    }
    if let (Some(last), Some(gap)) = (state.last_new_item, state.usual_gap_secs) {
        let quiet = (now - last).to_std().unwrap_or(Duration::ZERO);
        let gap = Duration::from_secs(gap);
        let limit = gap
            .saturating_mul(rules.stale_after_gaps)
            .max(rules.stale_at_least);
        if quiet > limit {
            return bad(
                FeedHealth::Stale,
                format!(
                    "no new item for {} (usually one every {})",
                    human(quiet),
                    human(gap)
                ),
            );
        }
    }
    Assessment {
        state: FeedHealth::Ok,
        reason: None,
        moved_to: None,
    }
}

/// Each configured feed with its stored state (a default one for a feed never
/// polled) and its health at `now`, in config order; states of feeds no longer
/// configured are left out.
pub fn assess_feeds<'a>(
    feeds: &'a [Feed],
    states: Vec<(String, FeedState)>,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Vec<(&'a Feed, FeedState, Assessment)> {
    let mut states: HashMap<String, FeedState> = states.into_iter().collect();
    feeds
        .iter()
        .map(|feed| {
            let state = states.remove(&feed.url.to_string()).unwrap_or_default();
            let assessment = assess(&state, rules, now);
            (feed, state, assessment)
        })
        .collect()
}

/// How many of `assessed` are in each state, every state named (zeros included).
pub fn count_states(assessed: &[(&Feed, FeedState, Assessment)]) -> Vec<(FeedHealth, usize)> {
    FeedHealth::ALL
        .iter()
        .map(|&state| {
            let n = assessed.iter().filter(|(_, _, a)| a.state == state).count();
            (state, n)
        })
        .collect()
}

/// A feed entering or leaving a bad state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The feed entered bad state `to` (from `ok`, or from another bad state).
    Unhealthy {
        from: FeedHealth,
        to: FeedHealth,
        reason: String,
        moved_to: Option<String>,
    },
    /// The feed is `ok` again after bad state `from`.
    Recovered { from: FeedHealth },
}

/// Records the feed's health in `state` after a poll, returning the transition when
/// it changed: once per change, never per poll, and across restarts, since the state
/// it compares with is the one stored with the feed (`FeedState::health`).
pub fn record(state: &mut FeedState, rules: &Rules, now: DateTime<Utc>) -> Option<Transition> {
    let now_health = assess(state, rules, now);
    let before = std::mem::replace(&mut state.health, now_health.state);
    if before == now_health.state {
        return None;
    }
    Some(match now_health.state {
        FeedHealth::Ok => Transition::Recovered { from: before },
        to => Transition::Unhealthy {
            from: before,
            to,
            reason: now_health.reason.unwrap_or_default(),
            moved_to: now_health.moved_to,
        },
    })
}

/// Notes what a successful read of the feed says about new items: `published` are
/// its items' dates, `digest` a hash of its item ids (for feeds that date no item).
///
/// With dates, the newest (never later than `now`) is the last new item when it is
/// newer than the one known, and the usual gap is the median gap between the
/// feed's distinct dates. Without, a changed digest is a new item at `now`, and the
/// usual gap follows the time between such changes (a moving average, 3:1).
pub fn note_items(
    state: &mut FeedState,
    published: &[DateTime<Utc>],
    digest: Option<u64>,
    now: DateTime<Utc>,
) {
    if let Some(newest) = published.iter().max().map(|&d| d.min(now)) {
        if let Some(gap) = median_gap(published) {
            state.usual_gap_secs = Some(gap);
        } else if let Some(last) = state.last_new_item.filter(|&last| newest > last) {
            state.usual_gap_secs = Some(blend(state.usual_gap_secs, newest - last));
        }
        if state.last_new_item.is_none_or(|last| newest > last) {
            state.last_new_item = Some(newest);
        }
        return;
    }
    let Some(digest) = digest else { return };
    if state.items_digest == Some(digest) {
        return;
    }
    if let Some(last) = state.last_new_item.filter(|&last| now > last) {
        state.usual_gap_secs = Some(blend(state.usual_gap_secs, now - last));
    }
    state.last_new_item = Some(now);
    state.items_digest = Some(digest);
}

/// The median gap, in seconds, between the distinct dates in `dates`.
fn median_gap(dates: &[DateTime<Utc>]) -> Option<u64> {
    let mut sorted: Vec<DateTime<Utc>> = dates.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut gaps: Vec<u64> = sorted
        .windows(2)
        .map(|w| (w[1] - w[0]).num_seconds().max(0) as u64)
        .collect();
    if gaps.is_empty() {
        return None;
    }
    gaps.sort_unstable();
    Some(gaps[gaps.len() / 2])
}

/// A moving average of gaps, three parts the old and one the new.
fn blend(old: Option<u64>, gap: TimeDelta) -> u64 {
    let gap = gap.num_seconds().max(0) as u64;
    match old {
        Some(old) => (old.saturating_mul(3) / 4).saturating_add(gap / 4),
        None => gap,
    }
}

/// A duration in its two largest units, rounded down: "612d 20h", "2d 15h", "1h",
/// "40m 5s" (a health reason is read by people; the seconds of a year are noise).
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let parts = [
        (secs / 86_400, "d"),
        (secs % 86_400 / 3600, "h"),
        (secs % 3600 / 60, "m"),
        (secs % 60, "s"),
    ];
    let Some(first) = parts.iter().position(|(n, _)| *n > 0) else {
        return "0s".to_string();
    };
    parts[first..]
        .iter()
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(day: u32, hour: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2025-03-{day:02}T{hour:02}:00:00Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn rules() -> Rules {
        Rules::default()
    }

    fn failing(failures: u32, status: Option<u16>, since: DateTime<Utc>) -> FeedState {
        FeedState {
            failures,
            last_status: status,
            failing_since: Some(since),
            last_error: Some(format!("server answered HTTP {}", status.unwrap_or(0))),
            ..FeedState::default()
        }
    }

    #[test]
    fn a_feed_without_history_is_ok() {
        let a = assess(&FeedState::default(), &rules(), t(10, 0));
        assert_eq!(a.state, FeedHealth::Ok);
        assert_eq!(a.reason, None);
    }

    #[test]
    fn failures_count_as_failing_from_the_threshold_and_say_the_error() {
        let now = t(10, 12);
        let two = failing(2, Some(500), t(10, 10));
        assert_eq!(assess(&two, &rules(), now).state, FeedHealth::Ok);
        let three = failing(3, Some(500), t(10, 10));
        let a = assess(&three, &rules(), now);
        assert_eq!(a.state, FeedHealth::Failing);
        let reason = a.reason.unwrap();
        assert!(reason.contains("3 consecutive"), "{reason}");
        assert!(reason.contains("HTTP 500"), "{reason}");
        let strict = Rules {
            failing_after: 1,
            ..rules()
        };
        assert_eq!(
            assess(&failing(1, None, now), &strict, now).state,
            FeedHealth::Failing
        );
    }

    #[test]
    fn a_410_is_gone_at_once_and_a_404_only_after_gone_after() {
        let now = t(10, 12);
        assert_eq!(
            assess(&failing(1, Some(410), now), &rules(), now).state,
            FeedHealth::Gone
        );
        // A day of 404s: failing (3 polls), not yet gone.
        let day = failing(5, Some(404), t(9, 12));
        assert_eq!(assess(&day, &rules(), now).state, FeedHealth::Failing);
        // A week of them: gone, and the reason says how long.
        let week = failing(30, Some(404), t(3, 12));
        let a = assess(&week, &rules(), now);
        assert_eq!(a.state, FeedHealth::Gone);
        assert!(a
            .reason
            .unwrap()
            .contains("404 Not Found for 7d (gone after 7d)"));
        // A 404 once the feed answers again is history.
        let back = FeedState {
            failures: 0,
            failing_since: None,
            ..week
        };
        assert_eq!(assess(&back, &rules(), now).state, FeedHealth::Ok);
    }

    #[test]
    fn a_permanent_redirect_is_moved_with_the_new_address_unless_worse() {
        let now = t(10, 12);
        let moved = FeedState {
            permanent_url: Some("https://new.example/rss".into()),
            ..FeedState::default()
        };
        let a = assess(&moved, &rules(), now);
        assert_eq!(a.state, FeedHealth::Moved);
        assert_eq!(a.moved_to.as_deref(), Some("https://new.example/rss"));
        let failing_too = FeedState {
            failures: 4,
            failing_since: Some(t(10, 0)),
            ..moved
        };
        assert_eq!(
            assess(&failing_too, &rules(), now).state,
            FeedHealth::Failing
        );
    }

    #[test]
    fn stale_after_several_usual_gaps_and_never_under_the_floor() {
        let hourly = FeedState {
            last_new_item: Some(t(10, 0)),
            usual_gap_secs: Some(3600),
            ..FeedState::default()
        };
        // Four gaps are 4 h, but the floor is a day.
        assert_eq!(assess(&hourly, &rules(), t(10, 5)).state, FeedHealth::Ok);
        let a = assess(&hourly, &rules(), t(11, 1));
        assert_eq!(a.state, FeedHealth::Stale);
        assert!(a.reason.unwrap().contains("usually one every 1h"));
        let weekly = FeedState {
            usual_gap_secs: Some(7 * 24 * 3600),
            ..hourly.clone()
        };
        assert_eq!(assess(&weekly, &rules(), t(20, 0)).state, FeedHealth::Ok);
        assert_eq!(
            assess(
                &weekly,
                &rules(),
                t(10, 0) + TimeDelta::days(28) + TimeDelta::hours(1)
            )
            .state,
            FeedHealth::Stale
        );
        // No known gap: never stale.
        let unknown = FeedState {
            usual_gap_secs: None,
            ..hourly
        };
        assert_eq!(assess(&unknown, &rules(), t(30, 0)).state, FeedHealth::Ok);
    }

    #[test]
    fn durations_are_said_in_their_two_largest_units() {
        let h = |s| human(Duration::from_secs(s));
        assert_eq!(h(0), "0s");
        assert_eq!(h(45), "45s");
        assert_eq!(h(3600), "1h");
        assert_eq!(h(2405), "40m 5s");
        assert_eq!(h(86_400 + 59), "1d");
        assert_eq!(h(612 * 86_400 + 20 * 3600 + 38 * 60 + 47), "612d 20h");
    }

    #[test]
    fn transitions_are_told_once_and_recovery_once() {
        let rules = rules();
        let mut state = FeedState::default();
        assert_eq!(record(&mut state, &rules, t(10, 0)), None);
        state.failures = 3;
        state.failing_since = Some(t(10, 0));
        state.last_error = Some("server answered HTTP 500".into());
        let entered = record(&mut state, &rules, t(10, 1));
        assert!(
            matches!(
                &entered,
                Some(Transition::Unhealthy { from: FeedHealth::Ok, to: FeedHealth::Failing, reason, .. })
                    if reason.contains("HTTP 500")
            ),
            "{entered:?}"
        );
        // Still failing on the next polls: nothing more.
        state.failures = 4;
        assert_eq!(record(&mut state, &rules, t(10, 2)), None);
        assert_eq!(record(&mut state, &rules, t(10, 3)), None);
        // Worse: failing becomes gone, a new bad state.
        state.last_status = Some(410);
        assert!(matches!(
            record(&mut state, &rules, t(10, 4)),
            Some(Transition::Unhealthy {
                from: FeedHealth::Failing,
                to: FeedHealth::Gone,
                ..
            })
        ));
        state.failures = 0;
        state.failing_since = None;
        assert_eq!(
            record(&mut state, &rules, t(10, 5)),
            Some(Transition::Recovered {
                from: FeedHealth::Gone
            })
        );
        assert_eq!(record(&mut state, &rules, t(10, 6)), None);
    }

    #[test]
    fn a_stored_bad_state_is_not_told_again_after_a_restart() {
        // What a restarted daemon reads back: the state recorded as failing.
        let mut state = FeedState {
            failures: 5,
            failing_since: Some(t(10, 0)),
            health: FeedHealth::Failing,
            ..FeedState::default()
        };
        assert_eq!(record(&mut state, &rules(), t(10, 9)), None);
    }

    #[test]
    fn dated_items_give_the_last_new_item_and_the_median_gap() {
        let mut state = FeedState::default();
        let dates = [t(10, 1), t(10, 2), t(10, 4), t(10, 5), t(10, 6)];
        note_items(&mut state, &dates, Some(1), t(10, 7));
        assert_eq!(state.last_new_item, Some(t(10, 6)));
        assert_eq!(state.usual_gap_secs, Some(3600));
        // An item dated in the future counts as new now, not then.
        note_items(&mut state, &[t(10, 6), t(12, 0)], Some(2), t(10, 8));
        assert_eq!(state.last_new_item, Some(t(10, 8)));
        // The same items again move nothing.
        let before = state.clone();
        note_items(&mut state, &[t(10, 6), t(10, 8)], Some(2), t(10, 9));
        assert_eq!(state.last_new_item, before.last_new_item);
    }

    #[test]
    fn undated_items_count_as_new_when_their_ids_change() {
        let mut state = FeedState::default();
        note_items(&mut state, &[], Some(7), t(10, 0));
        assert_eq!(state.last_new_item, Some(t(10, 0)));
        assert_eq!(state.usual_gap_secs, None);
        note_items(&mut state, &[], Some(7), t(10, 1));
        assert_eq!(state.last_new_item, Some(t(10, 0)), "same ids: nothing new");
        note_items(&mut state, &[], Some(8), t(10, 4));
        assert_eq!(state.last_new_item, Some(t(10, 4)));
        assert_eq!(state.usual_gap_secs, Some(4 * 3600));
        note_items(&mut state, &[], Some(9), t(10, 8));
        assert_eq!(state.usual_gap_secs, Some(4 * 3600));
        // An empty feed says nothing.
        note_items(&mut state, &[], None, t(10, 9));
        assert_eq!(state.last_new_item, Some(t(10, 8)));
    }
}
