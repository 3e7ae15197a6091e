//! Backtests and backfills: the daemon's topic rules run again over stored items.
//!
//! A backtest asks what a topic (from the config, or a query typed on the command
//! line) would have alerted on over a window of history. It reads the stored items of
//! the window (`Store::scan_items`), runs each item's stored cleaned title and text
//! through the same [`RuleSet`] the daemon builds (one automaton scan, the same topic
//! evaluation, scores and `min_score`), and groups the matches by their stored story
//! as the daemon does: a story raises one alert per topic, on the first of its items
//! to match. Nothing is written.
//!
//! A backfill is the same scan for one topic of the running config, followed by the
//! alerts the daemon would have raised, written through the outbox once per story,
//! topic and sink ([`Store::record_backfill`]) with a record of the topic's
//! [`definition`], so that later reloads and restarts never repeat it.
//!
//! The scan is split over the cores: the calling thread reads and decodes records,
//! workers fold and match (BENCHMARKS.md, "Backtest"). docs/cli.md (`backtest`) and
//! docs/config.md (`backfill`) are the contracts.

use std::collections::{BTreeMap, HashMap};
use std::sync::{mpsc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::alert::outbox;
use crate::model::{Entity, Topic};
use crate::pipeline::rules::{entity_refs, RuleSet};
use crate::query;
use crate::store::{Store, StoreError, StoredAlert, StoredItem};

/// The id a query typed on the command line is reported under.
pub const QUERY_TOPIC: &str = "query";
/// Threads matching at once, at most: the reader keeps about this many busy.
const MAX_WORKERS: usize = 8;

/// A query typed for a backtest that cannot be used, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct QueryProblem {
    pub column: usize,
    pub message: String,
}

/// A topic from a query typed for a backtest, checked as the config checks a topic's
/// query: its syntax, and that every `@id` names one of `entities`.
pub fn query_topic(text: &str, entities: &[Entity]) -> Result<Topic, QueryProblem> {
    let parsed = query::parse(text).map_err(|err| QueryProblem {
        column: err.column,
        message: err.message,
    })?;
    if let Some((entity, column)) = entity_refs(&parsed)
        .into_iter()
        .find(|(entity, _)| !entities.iter().any(|e| e.id == *entity))
    {
        return Err(QueryProblem {
            column,
            message: format!("unknown entity @{entity}"),
        });
    }
    Ok(Topic {
        id: QUERY_TOPIC.into(),
        name: QUERY_TOPIC.into(),
        query_text: text.to_string(),
        query: parsed,
        min_score: 0.0,
        sinks: Vec::new(),
        backfill: None,
        updates: None,
    })
}

/// A stored item that matched a topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub item: String,
    pub feed: String,
    pub title: String,
    pub url: Option<String>,
    pub fetched: DateTime<Utc>,
    pub story: String,
    pub story_lead: bool,
    pub topic: String,
    pub score: f64,
    pub matched: Vec<String>,
    /// True for the item its story alerts on (the first of the story to match).
    pub alerts: bool,
    /// Why the topic matched, as `scan --explain` says it.
    pub explain: Option<String>,
}

/// A story that would have alerted on a topic.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryAlert {
    pub story: String,
    pub topic: String,
    /// The item it alerts on.
    pub item: String,
    pub title: String,
    pub fetched: DateTime<Utc>,
    pub score: f64,
    /// Its items in the window that matched the topic.
    pub items: usize,
}

/// What a backtest found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub since: DateTime<Utc>,
    /// The topics run.
    pub topics: Vec<String>,
    /// Stored items read.
    pub scanned: usize,
    /// Stored items that could not be read.
    pub skipped: usize,
    /// Matches, oldest first.
    pub matches: Vec<Match>,
    /// Stories that would have alerted, in the order of their alerting items.
    pub stories: Vec<StoryAlert>,
}

/// Runs `rules` over the items stored since `since`.
pub fn run(
    store: &dyn Store,
    rules: &RuleSet,
    since: DateTime<Utc>,
    explain: bool,
) -> Result<Report, StoreError> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_WORKERS);
    let (tx, rx) = mpsc::sync_channel::<Vec<StoredItem>>(workers * 4);
    let rx = Mutex::new(rx);
    let (skipped, found) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut found = Vec::new();
                    let mut scanned = 0usize;
                    loop {
                        // Held only while taking a record; records are a feed poll's items.
                        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok(items) = next else { break };
                        for item in &items {
                            scanned += 1;
                            found.extend(matches_of(rules, item, explain));
                        }
                    }
                    (scanned, found)
                })
            })
            .collect();
        let skipped = store.scan_items(since, &mut |items| {
            // The workers end only when the channel closes, so a send cannot fail.
            let _ = tx.send(items);
        });
        drop(tx);
        let found: Vec<(usize, Vec<Match>)> = handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect();
        (skipped, found)
    });
    let skipped = skipped?;
    let mut scanned = 0;
    let mut matches = Vec::new();
    for (count, found) in found {
        scanned += count;
        matches.extend(found);
    }
    // A story's lead is stored before its copies; at one fetch time it comes first.
    matches.sort_by(|a, b| {
        (a.fetched, !a.story_lead, &a.item, &a.topic).cmp(&(
            b.fetched,
            !b.story_lead,
            &b.item,
            &b.topic,
        ))
    });
    let stories = group_stories(&mut matches);
    Ok(Report {
        since,
        topics: rules.topic_ids(),
        scanned,
        skipped,
        matches,
        stories,
    })
}

/// The topics `item` matches, by the daemon's rules.
fn matches_of(rules: &RuleSet, item: &StoredItem, explain: bool) -> Vec<Match> {
    let findings = rules.analyze(&item.title, &item.text);
    if findings.topics.is_empty() {
        return Vec::new();
    }
    let why: HashMap<String, String> = if explain {
        rules.explain(&item.title, &item.text).into_iter().collect()
    } else {
        HashMap::new()
    };
    findings
        .topics
        .into_iter()
        .map(|m| Match {
            item: item.id.clone(),
            feed: item.feed_name.clone(),
            title: item.title.clone(),
            url: item.url.clone(),
            fetched: item.fetched,
            story: item.story.clone(),
            story_lead: item.is_story_lead,
            explain: why.get(&m.id).cloned(),
            topic: m.id,
            score: m.score,
            matched: m.matched,
            alerts: false,
        })
        .collect()
}

/// Marks the first match of each story and topic as the one that alerts, as the
/// item transaction decides it (`StoredStory::alerted`), and lists those stories.
fn group_stories(matches: &mut [Match]) -> Vec<StoryAlert> {
    let mut stories: Vec<StoryAlert> = Vec::new();
    let mut at: HashMap<(String, String), usize> = HashMap::new();
    for m in matches.iter_mut() {
        match at.get(&(m.story.clone(), m.topic.clone())) {
            Some(&n) => stories[n].items += 1,
            None => {
                m.alerts = true;
                at.insert((m.story.clone(), m.topic.clone()), stories.len());
                stories.push(StoryAlert {
                    story: m.story.clone(),
                    topic: m.topic.clone(),
                    item: m.item.clone(),
                    title: m.title.clone(),
                    fetched: m.fetched,
                    score: m.score,
                    items: 1,
                });
            }
        }
    }
    stories
}

impl Report {
    /// The report as one JSON document, by day (UTC) of fetching: what `backtest
    /// --json` prints and `/api/backtest` answers (docs/cli.md).
    pub fn to_json(&self) -> Value {
        let mut days: BTreeMap<NaiveDate, (Vec<Value>, Vec<Value>)> = BTreeMap::new();
        for m in &self.matches {
            let mut item = json!({
                "id": m.item,
                "feed": m.feed,
                "title": m.title,
                "url": m.url,
                "fetched": m.fetched.to_rfc3339(),
                "story": m.story,
                "story_lead": m.story_lead,
                "topic": m.topic,
                "score": m.score,
                "matched": m.matched,
                "alerts": m.alerts,
            });
            if let (Some(why), Some(obj)) = (&m.explain, item.as_object_mut()) {
                obj.insert("explain".into(), Value::String(why.clone()));
            }
            days.entry(m.fetched.date_naive()).or_default().0.push(item);
        }
        for s in &self.stories {
            days.entry(s.fetched.date_naive())
                .or_default()
                .1
                .push(json!({
                    "id": s.story,
                    "topic": s.topic,
                    "item": s.item,
                    "title": s.title,
                    "fetched": s.fetched.to_rfc3339(),
                    "score": s.score,
                    "items": s.items,
                }));
        }
        json!({
            "since": self.since.to_rfc3339(),
            "topics": self.topics,
            "scanned": self.scanned,
            "skipped": self.skipped,
            "items": self.matches.len(),
            "stories": self.stories.len(),
            "days": days.into_iter().map(|(day, (items, stories))| json!({
                "day": day.to_string(),
                "items": items,
                "stories": stories,
            })).collect::<Vec<_>>(),
        })
    }
}

/// What identifies a topic's definition for backfills: its query, `min_score` and
/// sinks (what decides which alerts it raises and where). Its name and the
/// `backfill` window itself are left out: renaming a topic, or widening its window,
/// does not raise its alerts again.
pub fn definition(topic: &Topic) -> String {
    let mut sinks = topic.sinks.clone();
    sinks.sort();
    let mut hash = Sha256::new();
    hash.update(
        format!(
            "query\n{}\nmin_score\n{}\nsinks\n{}",
            topic.query_text,
            topic.min_score,
            sinks.join("\n")
        )
        .as_bytes(),
    );
    hash.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a backfill did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backfilled {
    /// The topic has no `backfill` window.
    NotAsked,
    /// This definition of the topic was backfilled before.
    AlreadyDone,
    /// Stories found in the window, and alerts written for them (fewer when a story
    /// had alerted on the topic already).
    Done { stories: usize, alerts: usize },
}

/// Backfills `topic` over its `backfill` window before `now`, unless this definition
/// of it was backfilled before: its alerts go to the outbox through
/// [`Store::record_backfill`], with the record that it was done.
pub fn backfill(
    store: &dyn Store,
    entities: &[Entity],
    topic: &Topic,
    now: DateTime<Utc>,
) -> Result<Backfilled, StoreError> {
    let Some(window) = topic.backfill else {
        return Ok(Backfilled::NotAsked);
    };
    let definition = definition(topic);
    if store.backfilled(&topic.id)?.as_deref() == Some(definition.as_str()) {
        return Ok(Backfilled::AlreadyDone);
    }
    let rules = RuleSet::new(entities.to_vec(), vec![topic.clone()]);
    let since = chrono::Duration::from_std(window)
        .ok()
        .and_then(|window| now.checked_sub_signed(window))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let report = run(store, &rules, since, false)?;
    let mut alerts: Vec<StoredAlert> = Vec::new();
    let mut items: Vec<StoredItem> = Vec::new();
    for story in &report.stories {
        // Pruned since the scan: nothing to alert on.
        let Some(item) = store.get_item(&story.item)? else {
            continue;
        };
        let findings = rules.analyze(&item.title, &item.text);
        alerts.extend(outbox::alerts_for(
            &item,
            &findings.topics,
            &findings.entities,
            std::slice::from_ref(topic),
            now,
        ));
        items.push(item);
    }
    let written = store.record_backfill(&topic.id, &definition, &alerts, &items)?;
    Ok(Backfilled::Done {
        stories: report.stories.len(),
        alerts: written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matched(item: &str, story: &str, topic: &str, minute: u32, lead: bool) -> Match {
        Match {
            item: item.into(),
            feed: "Example".into(),
            title: item.into(),
            url: None,
            fetched: DateTime::parse_from_rfc3339(&format!("2025-03-14T10:{minute:02}:00Z"))
                .unwrap()
                .with_timezone(&Utc),
            story: story.into(),
            story_lead: lead,
            topic: topic.into(),
            score: 1.0,
            matched: vec!["x".into()],
            alerts: false,
            explain: None,
        }
    }

    #[test]
    fn each_story_alerts_once_per_topic_on_its_first_match() {
        let mut matches = vec![
            matched("a", "a", "t", 1, true),
            matched("a", "a", "u", 1, true),
            matched("b", "a", "t", 2, false),
            matched("c", "c", "t", 3, true),
        ];
        let stories = group_stories(&mut matches);
        let alerting: Vec<(&str, &str)> = matches
            .iter()
            .filter(|m| m.alerts)
            .map(|m| (m.item.as_str(), m.topic.as_str()))
            .collect();
        assert_eq!(alerting, [("a", "t"), ("a", "u"), ("c", "t")]);
        let counts: Vec<(&str, &str, usize)> = stories
            .iter()
            .map(|s| (s.story.as_str(), s.topic.as_str(), s.items))
            .collect();
        assert_eq!(counts, [("a", "t", 2), ("a", "u", 1), ("c", "t", 1)]);
        let json = Report {
            since: matches[0].fetched,
            topics: vec!["t".into(), "u".into()],
            scanned: 9,
            skipped: 0,
            matches,
            stories,
        }
        .to_json();
        assert_eq!(json["days"][0]["day"], "2025-03-14");
        assert_eq!(json["days"][0]["stories"].as_array().unwrap().len(), 3);
        assert_eq!(json["items"], 4);
    }

    #[test]
    fn a_definition_follows_query_score_and_sinks_only() {
        let base = Topic {
            sinks: vec!["a".into(), "b".into()],
            ..query_topic("museum", &[]).unwrap()
        };
        let same = Topic {
            name: "Renamed".into(),
            sinks: vec!["b".into(), "a".into()],
            backfill: Some(std::time::Duration::from_secs(60)),
            ..base.clone()
        };
        assert_eq!(definition(&base), definition(&same));
        for changed in [
            Topic {
                min_score: 2.0,
                ..base.clone()
            },
            Topic {
                sinks: vec!["a".into()],
                ..base.clone()
            },
            Topic {
                query_text: "museums".into(),
                ..base.clone()
            },
        ] {
            assert_ne!(definition(&base), definition(&changed));
        }
    }

    #[test]
    fn a_typed_query_is_checked_as_the_config_checks_one() {
        assert_eq!(
            query_topic("museum AND (", &[]).unwrap_err(),
            QueryProblem {
                column: 12,
                message: "unclosed (: expected a ) before end of query".into()
            }
        );
        let problem = query_topic("museum OR @nobody", &[]).unwrap_err();
        assert_eq!(
            (problem.column, problem.message.as_str()),
            (11, "unknown entity @nobody")
        );
        assert_eq!(query_topic("museum", &[]).unwrap().id, QUERY_TOPIC);
    }
}
