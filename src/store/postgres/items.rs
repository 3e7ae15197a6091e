//! Items and stories: the one transaction that stores a feed's new items with their
//! stories and alerts, the listings, the stories' sketches, and pruning.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::schema::LOCK_NAMESPACE;
use super::{from_ms, ms, Failure, PgStore, Tx};
use crate::model::payload::Payload;
use crate::pipeline::dedup;
use crate::store::{
    codec, updates, Batch, ChangedItem, Inserted, ItemQuery, ItemVersion, LeadSketch, Lease,
    Listing, PruneReport, Related, StoreError, StoredAlert, StoredItem, StoredStory, StoryStep,
    UpdateRule, ITEMS, OUTBOX, STORIES,
};

/// A sketch value shared by more stories than this is a stock phrase, not evidence
/// of a copy (as in the daemon's window).
const MAX_POSTING: usize = 64;
/// Separates the topics of a story's `alerted` list in the text that carries it into
/// a statement (the ASCII unit separator, which no topic id holds).
const UNIT_SEPARATOR: &str = "\u{1f}";

impl PgStore {
    pub(super) fn seen(&self, id: &str) -> Result<bool, StoreError> {
        let rows = self.query(
            "reading the seen ids",
            "SELECT 1 FROM seen WHERE id = $1",
            &[&id],
        )?;
        Ok(!rows.is_empty())
    }

    pub(super) fn seen_among(&self, ids: &[&str]) -> Result<HashSet<String>, StoreError> {
        Ok(self
            .query(
                "reading the seen ids",
                "SELECT id FROM seen WHERE id = ANY($1)",
                &[&ids],
            )?
            .iter()
            .map(|row| row.get(0))
            .collect())
    }

    pub(super) fn get_item(&self, id: &str) -> Result<Option<StoredItem>, StoreError> {
        let rows = self.query(
            "reading an item",
            "SELECT record FROM items WHERE id = $1",
            &[&id],
        )?;
        rows.first()
            .map(|row| codec::decode_at(ITEMS, id.as_bytes(), row.get::<_, &[u8]>(0)))
            .transpose()
    }

    /// Stores a feed's new items, their stories and alerts in one transaction. Every
    /// new story's lead is first looked for among the stories of every daemon (the
    /// caller's window knows only its own), under advisory locks on its indexed sketch
    /// values, so that copies of one story stored at once by two daemons are told
    /// apart here: the second to lock finds the first's story and joins it.
    pub(super) fn insert_batch(
        &self,
        lease: Option<&Lease>,
        batch: &Batch<'_>,
    ) -> Result<Inserted, StoreError> {
        let Batch {
            items,
            alerts,
            sketches,
            rules,
            changed,
        } = *batch;
        let sketches: HashMap<&str, &[u32]> = sketches
            .iter()
            .filter(|(_, sketch)| !sketch.is_empty())
            .copied()
            .collect();
        let (new, leads) = self.transaction("storing items", |tx| {
            if let Some(lease) = lease {
                self.check_lease(tx, lease)?;
            }
            self.apply_changes(tx, changed)?;
            self.insert_in(tx, items, alerts, &sketches, rules)
        })?;
        Ok(Inserted {
            new,
            leads,
            // Written in the transaction: a story's sketch is how other daemons find it.
            sketches: Ok(()),
        })
    }

    fn insert_in(
        &self,
        tx: &mut Tx<'_>,
        items: &[StoredItem],
        alerts: &[StoredAlert],
        sketches: &HashMap<&str, &[u32]>,
        rules: &[UpdateRule],
    ) -> Result<(usize, Vec<LeadSketch>), Failure> {
        // Marking the ids seen is what claims the items: another daemon storing the
        // same item at once (one article in two feeds) waits here for this
        // transaction, then skips it, instead of failing its whole batch on the key.
        let mut taken = HashSet::new();
        let unique: Vec<&StoredItem> = items
            .iter()
            .filter(|item| taken.insert(item.id.as_str()))
            .collect();
        let ids: Vec<&str> = unique.iter().map(|i| i.id.as_str()).collect();
        let fetched: Vec<i64> = unique.iter().map(|i| ms(i.fetched)).collect();
        let new: HashSet<String> = tx
            .query(
                "storing seen ids",
                "INSERT INTO seen (id, seen_ms) SELECT * FROM unnest($1::text[], $2::bigint[]) \
                 ON CONFLICT (id) DO NOTHING RETURNING id",
                &[&ids, &fetched],
            )?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let mut accepted: Vec<StoredItem> = unique
            .into_iter()
            .filter(|item| new.contains(&item.id))
            .cloned()
            .collect();
        if accepted.is_empty() {
            return Ok((0, Vec::new()));
        }
        let joined = self.join_known_stories(tx, &mut accepted, sketches)?;
        self.write_items(tx, &accepted)?;

        // Stories are worked out in memory, then written: the new ones in one
        // statement, the stored ones that copies joined (locked) one by one.
        let mut leads = Vec::new();
        let mut stories: HashMap<String, Story> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        let mut outgoing: Vec<StoredAlert> = Vec::new();
        let mut steps: HashMap<(String, String, String), Option<StoryStep>> = HashMap::new();
        let mut changed_steps: HashSet<(String, String, String)> = HashSet::new();
        for item in &accepted {
            if !stories.contains_key(&item.story) {
                let lead = item.is_story_lead && item.story == item.id;
                let story = if lead {
                    let sketch = sketches.get(item.id.as_str()).copied();
                    if let Some(sketch) = sketch {
                        leads.push(LeadSketch {
                            story: item.story.clone(),
                            first_seen: item.fetched,
                            fingerprint: item.fingerprint,
                            sketch: sketch.to_vec(),
                        });
                    }
                    Story::New(crate::store::story_of_lead(item), sketch, false)
                } else {
                    Story::Stored(self.story_for_update(tx, item)?, false)
                };
                order.push(item.story.clone());
                stories.insert(item.story.clone(), story);
            }
            let Some(entry) = stories.get_mut(&item.story) else {
                continue;
            };
            let (story, changed) = entry.parts();
            if story.first_item != item.id && !story.related.iter().any(|r| r.item_id == item.id) {
                story.related.push(related(item));
                *changed = true;
            }
            let mut alerted = Vec::new();
            for alert in alerts.iter().filter(|a| a.item_id == item.id) {
                if story.alerted.contains(&alert.topic) {
                    continue;
                }
                let mut alert = alert.clone();
                if alert.story != story.id {
                    // The lead joined another daemon's story: the alert is that story's.
                    alert.story = story.id.clone();
                    alert.id = crate::identity::alert_id(&story.id, &alert.topic, &alert.sink);
                    if let Payload::Alert(body) = &mut alert.payload {
                        body.id = alert.id.clone();
                        body.story.id = story.id.clone();
                    }
                }
                if !alerted.contains(&alert.topic) {
                    alerted.push(alert.topic.clone());
                }
                outgoing.push(alert);
            }
            if !alerted.is_empty() {
                story.alerted.extend(alerted);
                *changed = true;
            }
            // A stored story is locked (`story_for_update`), so two daemons adding
            // copies to it at once take their steps one after the other.
            for rule in rules {
                if !story.alerted.contains(&rule.topic) {
                    continue;
                }
                for sink in &rule.sinks {
                    let key = (story.id.clone(), rule.topic.clone(), sink.clone());
                    let state = match steps.get(&key) {
                        Some(state) => *state,
                        None => read_step(tx, &key)?,
                    };
                    let Some((state, event)) =
                        updates::next_step(rule, sink, story, state, None, item.fetched)
                    else {
                        continue;
                    };
                    steps.insert(key.clone(), Some(state));
                    changed_steps.insert(key);
                    if let Some(mut event) = event {
                        if let Some(lead) = self.lead_of(tx, &story.first_item)? {
                            if let Payload::StoryUpdated(body) = &mut event.payload {
                                body.story.title = lead.title;
                                body.story.url = lead.url;
                            }
                        }
                        outgoing.push(event);
                    }
                }
            }
        }
        let in_order = || order.iter().filter_map(|id| stories.get(id));
        self.write_new_stories(tx, in_order())?;
        for story in in_order() {
            if let Story::Stored(story, true) = story {
                let related = codec::encode(STORIES, &story.id, &story.related, false)?;
                tx.execute(
                    "updating a story",
                    "UPDATE stories SET related = $2, copies = $3, alerted = $4 WHERE id = $1",
                    &[
                        &story.id,
                        &related,
                        &(story.related.len() as i32),
                        &story.alerted,
                    ],
                )?;
            }
        }
        // After the stories: a step's row refers to its story.
        for key in &changed_steps {
            if let Some(Some(state)) = steps.get(key) {
                tx.execute(
                    "storing a story's update step",
                    "INSERT INTO story_steps (story, topic, sink, step, sources, at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (story, topic, sink) DO UPDATE \
                     SET step = excluded.step, sources = excluded.sources, at_ms = excluded.at_ms",
                    &[
                        &key.0,
                        &key.1,
                        &key.2,
                        &(state.step as i32),
                        &(state.sources as i32),
                        &state.at_ms,
                    ],
                )?;
            }
        }
        self.write_alerts(tx, &outgoing)?;
        if joined > 0 {
            tracing::debug!(
                stories = joined,
                "New stories joined stories another daemon had stored."
            );
        }
        Ok((accepted.len(), leads))
    }

    /// Turns each new story's lead that repeats a story already in the database (one
    /// another daemon stored) into a copy of it, and the batch's copies of that lead
    /// with it. Returns how many leads joined.
    fn join_known_stories(
        &self,
        tx: &mut Tx<'_>,
        items: &mut [StoredItem],
        sketches: &HashMap<&str, &[u32]>,
    ) -> Result<usize, Failure> {
        // Each lead's indexed values, with its fingerprint.
        let mut probes: Vec<(i32, i64)> = items
            .iter()
            .filter(|i| i.is_story_lead && i.story == i.id)
            .filter_map(|i| Some((sketches.get(i.id.as_str())?, i.fingerprint as i64)))
            .flat_map(|(sketch, print)| {
                dedup::indexed(sketch)
                    .iter()
                    .map(move |&v| (v as i32, print))
            })
            .collect();
        if probes.is_empty() {
            return Ok(0);
        }
        probes.sort_unstable();
        probes.dedup();
        let (values, prints): (Vec<i32>, Vec<i64>) = probes.into_iter().unzip();
        // In one order for every daemon, so that two batches cannot wait for each other.
        let mut locks = values.clone();
        locks.dedup();
        tx.execute(
            "locking stories",
            "SELECT pg_advisory_xact_lock($1, v) \
             FROM (SELECT unnest($2::integer[]) AS v ORDER BY 1) AS sorted",
            &[&LOCK_NAMESPACE, &locks],
        )?;
        // Every candidate of the batch's leads in one query: the stories in the window
        // holding one of their indexed values and within the fingerprint distance of
        // the lead that has it. A value held by MAX_POSTING stories or more is left
        // out, as in the daemon's window: a stock phrase, not evidence of a copy.
        let since = ms(Utc::now()) - self.story_window_ms;
        let rows = tx.query(
            "reading candidate stories",
            "SELECT v.value, s.id, s.fingerprint, s.sketch \
             FROM unnest($1::integer[], $2::bigint[]) AS v(value, print) \
             CROSS JOIN LATERAL (SELECT held.story, held.fingerprint, count(*) OVER () AS n \
                 FROM (SELECT p.story, p.fingerprint FROM story_postings p \
                       WHERE p.value = v.value AND p.first_seen_ms >= $3 LIMIT $4) AS held) AS c \
             JOIN stories s ON s.id = c.story \
             WHERE c.n < $4 AND bit_count((c.fingerprint # v.print)::bit(64)) <= $5 \
               AND s.sketch IS NOT NULL",
            &[
                &values,
                &prints,
                &since,
                &(MAX_POSTING as i64 + 1),
                &(dedup::DEFAULT_MAX_DISTANCE as i64),
            ],
        )?;
        let mut stored: HashMap<String, (u64, Vec<u32>)> = HashMap::new();
        let mut by_value: HashMap<u32, Vec<String>> = HashMap::new();
        for row in &rows {
            let id: String = row.get(1);
            by_value
                .entry(row.get::<_, i32>(0) as u32)
                .or_default()
                .push(id.clone());
            stored
                .entry(id)
                .or_insert_with(|| (row.get::<_, i64>(2) as u64, sketch_of(row.get(3))));
        }
        let mut joined: HashMap<String, String> = HashMap::new();
        for item in items.iter_mut() {
            if let Some(story) = joined.get(&item.story) {
                item.story = story.clone();
                item.is_story_lead = false;
                continue;
            }
            if !(item.is_story_lead && item.story == item.id) {
                continue;
            }
            let Some(sketch) = sketches.get(item.id.as_str()) else {
                continue;
            };
            let mut candidates: Vec<&str> = dedup::indexed(sketch)
                .iter()
                .filter_map(|value| by_value.get(value))
                .flatten()
                .map(String::as_str)
                .filter(|id| *id != item.id)
                .collect();
            candidates.sort_unstable();
            candidates.dedup();
            let found = dedup::best_story(
                item.fingerprint,
                sketch,
                dedup::DEFAULT_MAX_DISTANCE,
                candidates.into_iter().filter_map(|id| {
                    stored
                        .get(id)
                        .map(|(print, sketch)| (id, *print, sketch.as_slice()))
                }),
            )
            .map(str::to_string);
            if let Some(story) = found {
                joined.insert(item.id.clone(), story.clone());
                item.story = story;
                item.is_story_lead = false;
            }
        }
        Ok(joined.len())
    }

    /// The items and their topics, two statements for the batch.
    fn write_items(&self, tx: &mut Tx<'_>, items: &[StoredItem]) -> Result<(), Failure> {
        let mut ids = Vec::with_capacity(items.len());
        let mut feeds = Vec::with_capacity(items.len());
        let mut fetched = Vec::with_capacity(items.len());
        let mut matched = Vec::with_capacity(items.len());
        let mut stories = Vec::with_capacity(items.len());
        let mut records = Vec::with_capacity(items.len());
        let (mut topics, mut topic_times, mut topic_items, mut scores) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for item in items {
            ids.push(item.id.as_str());
            feeds.push(item.feed.as_str());
            fetched.push(ms(item.fetched));
            matched.push(!item.topics.is_empty());
            stories.push(item.story.as_str());
            records.push(codec::encode(ITEMS, &item.id, item, true)?);
            for topic in &item.topics {
                topics.push(topic.id.as_str());
                topic_times.push(ms(item.fetched));
                topic_items.push(item.id.as_str());
                scores.push(topic.score);
            }
        }
        tx.execute(
            "storing items",
            "INSERT INTO items (id, feed, fetched_ms, matched, story, stored_by, record) \
             SELECT i, f, t, m, s, $7, r FROM unnest($1::text[], $2::text[], $3::bigint[], \
               $4::boolean[], $5::text[], $6::bytea[]) AS x(i, f, t, m, s, r)",
            &[
                &ids, &feeds, &fetched, &matched, &stories, &records, &self.node,
            ],
        )?;
        if !topics.is_empty() {
            tx.execute(
                "storing the topic index",
                "INSERT INTO item_topics (topic, fetched_ms, item_id, score) \
                 SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], \
                   $4::double precision[]) \
                 ON CONFLICT DO NOTHING",
                &[&topics, &topic_times, &topic_items, &scores],
            )?;
        }
        Ok(())
    }

    /// The batch's new stories with their sketches, and their postings: two
    /// statements. A story stored already (the same lead stored again after a lost
    /// reply) is left as it is.
    fn write_new_stories<'s>(
        &self,
        tx: &mut Tx<'_>,
        stories: impl Iterator<Item = &'s Story<'s>>,
    ) -> Result<(), Failure> {
        let mut ids = Vec::new();
        let mut first_items = Vec::new();
        let mut first_seen = Vec::new();
        let mut prints = Vec::new();
        let mut sketch_texts = Vec::new();
        let mut copies = Vec::new();
        let mut related = Vec::new();
        let mut alerted = Vec::new();
        let (mut values, mut posted, mut posted_at, mut posted_prints) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for story in stories {
            let Story::New(story, sketch, _) = story else {
                continue;
            };
            ids.push(story.id.as_str());
            first_items.push(story.first_item.as_str());
            first_seen.push(ms(story.first_seen));
            prints.push(story.fingerprint as i64);
            // Arrays of arrays must be rectangular in SQL: each sketch and alerted
            // list goes as one text, split again by the statement.
            sketch_texts.push(sketch.map(|values| {
                values
                    .iter()
                    .map(|&v| (v as i32).to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            }));
            copies.push(story.related.len() as i32);
            related.push(codec::encode(STORIES, &story.id, &story.related, false)?);
            alerted.push(story.alerted.join(UNIT_SEPARATOR));
            if let Some(sketch) = sketch {
                for &value in dedup::indexed(sketch) {
                    values.push(value as i32);
                    posted.push(story.id.as_str());
                    posted_at.push(ms(story.first_seen));
                    posted_prints.push(story.fingerprint as i64);
                }
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        tx.execute(
            "storing stories",
            "INSERT INTO stories (id, first_item, first_seen_ms, fingerprint, sketch, copies, \
               related, alerted) \
             SELECT i, f, t, p, string_to_array(k, ',')::integer[], c, r, \
               coalesce(string_to_array(a, chr(31)), '{}') \
             FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], \
               $6::integer[], $7::bytea[], $8::text[]) AS x(i, f, t, p, k, c, r, a) \
             ON CONFLICT (id) DO NOTHING",
            &[
                &ids,
                &first_items,
                &first_seen,
                &prints,
                &sketch_texts,
                &copies,
                &related,
                &alerted,
            ],
        )?;
        if !values.is_empty() {
            tx.execute(
                "writing story postings",
                "INSERT INTO story_postings (value, story, first_seen_ms, fingerprint) \
                 SELECT * FROM unnest($1::integer[], $2::text[], $3::bigint[], $4::bigint[]) \
                 ON CONFLICT DO NOTHING",
                &[&values, &posted, &posted_at, &posted_prints],
            )?;
        }
        Ok(())
    }

    /// The story a copy joins, locked for this transaction. A copy may name a lead
    /// whose own story turned out to be another daemon's (that lead's item says which),
    /// or a story whose record is gone (pruned): then it is made again from the copy.
    fn story_for_update(&self, tx: &mut Tx<'_>, item: &StoredItem) -> Result<StoredStory, Failure> {
        if let Some(story) = locked_story(tx, &item.story)? {
            return Ok(story);
        }
        let lead_story: Option<String> = tx
            .query_opt(
                "reading a story's lead",
                "SELECT story FROM items WHERE id = $1",
                &[&item.story],
            )?
            .map(|row| row.get(0));
        if let Some(other) = lead_story.filter(|other| *other != item.story) {
            if let Some(story) = locked_story(tx, &other)? {
                return Ok(story);
            }
        }
        tx.execute(
            "storing a story",
            "INSERT INTO stories (id, first_item, first_seen_ms, fingerprint) \
             VALUES ($1, $1, $2, $3) ON CONFLICT (id) DO NOTHING",
            &[&item.story, &ms(item.fetched), &(item.fingerprint as i64)],
        )?;
        Ok(
            locked_story(tx, &item.story)?.unwrap_or_else(|| StoredStory {
                id: item.story.clone(),
                first_item: item.story.clone(),
                first_seen: item.fetched,
                fingerprint: item.fingerprint,
                related: Vec::new(),
                alerted: Vec::new(),
            }),
        )
    }

    /// The versions of the items among `ids` kept on a topic, from their records.
    pub(super) fn versions_among(
        &self,
        ids: &[&str],
    ) -> Result<HashMap<String, ItemVersion>, StoreError> {
        let rows = self.query(
            "reading item versions",
            "SELECT id, record FROM items WHERE id = ANY($1) AND matched",
            &[&ids],
        )?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let id: &str = row.get(0);
                codec::decode_or_warn::<StoredItem>(ITEMS, id.as_bytes(), row.get(1))
                    .map(|item| (item.id.clone(), ItemVersion::of(&item)))
            })
            .collect())
    }

    /// Stores each changed item over its stored version, with the `item.updated`
    /// events of the topics its story alerted on (the story locked, as a copy locks
    /// it). An item no longer stored is left alone.
    fn apply_changes(&self, tx: &mut Tx<'_>, changed: &[ChangedItem]) -> Result<(), Failure> {
        for change in changed {
            let item = &change.item;
            let record = codec::encode(ITEMS, &item.id, item, true)?;
            let updated = tx.execute(
                "storing a changed item",
                "UPDATE items SET record = $2 WHERE id = $1",
                &[&item.id, &record],
            )?;
            if updated == 0 {
                continue;
            }
            let alerted = locked_story(tx, &item.story)?
                .map(|story| story.alerted)
                .unwrap_or_default();
            let events: Vec<StoredAlert> = change
                .events
                .iter()
                .filter(|e| alerted.contains(&e.topic))
                .cloned()
                .collect();
            self.write_alerts(tx, &events)?;
        }
        Ok(())
    }

    /// The first item of a story, for its title in a follow-up; `None` once pruned.
    fn lead_of(&self, tx: &mut Tx<'_>, id: &str) -> Result<Option<StoredItem>, Failure> {
        let row = tx.query_opt(
            "reading a story's first item",
            "SELECT record FROM items WHERE id = $1",
            &[&id],
        )?;
        Ok(row
            .and_then(|row| codec::decode_or_warn::<StoredItem>(ITEMS, id.as_bytes(), row.get(0))))
    }

    /// Writes alerts and other events, each once (an id already stored is left as it
    /// is, as another daemon wrote it); returns how many were new.
    pub(super) fn write_alerts(
        &self,
        tx: &mut Tx<'_>,
        alerts: &[StoredAlert],
    ) -> Result<usize, Failure> {
        if alerts.is_empty() {
            return Ok(0);
        }
        let mut ids = Vec::new();
        let mut sinks = Vec::new();
        let mut statuses = Vec::new();
        let mut next = Vec::new();
        let mut created = Vec::new();
        let mut records = Vec::new();
        for alert in alerts {
            ids.push(alert.id.as_str());
            sinks.push(alert.sink.as_str());
            statuses.push(alert.status.as_str());
            next.push(ms(alert.next_attempt));
            created.push(ms(alert.created));
            records.push(codec::encode(OUTBOX, &alert.id, alert, true)?);
        }
        let written = tx.execute(
            "storing alerts",
            "INSERT INTO alerts (id, sink, status, next_attempt_ms, created_ms, record) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], \
               $5::bigint[], $6::bytea[]) \
             ON CONFLICT (id) DO NOTHING",
            &[&ids, &sinks, &statuses, &next, &created, &records],
        )?;
        Ok(usize::try_from(written).unwrap_or(usize::MAX))
    }

    /// The definition `topic` was last backfilled for.
    pub(super) fn backfilled(&self, topic: &str) -> Result<Option<String>, StoreError> {
        let rows = self.query(
            "reading a backfill record",
            "SELECT definition FROM backfills WHERE topic = $1",
            &[&topic],
        )?;
        Ok(rows.first().map(|row| row.get(0)))
    }

    /// A backfill's alerts, each only when its story (locked) has not alerted on its
    /// topic, the stories marked, and the record of `definition`: one transaction, so
    /// that daemons backfilling the same topic at once raise each alert once.
    pub(super) fn record_backfill(
        &self,
        topic: &str,
        definition: &str,
        alerts: &[StoredAlert],
        items: &[StoredItem],
    ) -> Result<usize, StoreError> {
        self.transaction("storing a backfill", |tx| {
            let mut outgoing: Vec<StoredAlert> = Vec::new();
            let mut stories: Vec<&str> = alerts.iter().map(|a| a.story.as_str()).collect();
            stories.sort_unstable();
            stories.dedup();
            for story_id in stories {
                let mine: Vec<&StoredAlert> =
                    alerts.iter().filter(|a| a.story == story_id).collect();
                let story = match locked_story(tx, story_id)? {
                    Some(story) => story,
                    None => {
                        // Every stored story has a row here; a pruned one is made again
                        // from the alert's item, as a late copy would make it.
                        let Some(item) = items.iter().find(|i| i.id == mine[0].item_id) else {
                            continue;
                        };
                        let mut probe = item.clone();
                        probe.story = story_id.to_string();
                        self.story_for_update(tx, &probe)?
                    }
                };
                let fresh: Vec<StoredAlert> = mine
                    .into_iter()
                    .filter(|a| !story.alerted.contains(&a.topic))
                    .cloned()
                    .collect();
                if fresh.is_empty() {
                    continue;
                }
                let mut alerted = story.alerted.clone();
                for alert in &fresh {
                    if !alerted.contains(&alert.topic) {
                        alerted.push(alert.topic.clone());
                    }
                }
                tx.execute(
                    "marking a story alerted",
                    "UPDATE stories SET alerted = $2 WHERE id = $1",
                    &[&story.id, &alerted],
                )?;
                outgoing.extend(fresh);
            }
            // What was inserted, not what was asked: an alert already in the outbox
            // under its id is not written again.
            let written = self.write_alerts(tx, &outgoing)?;
            tx.execute(
                "recording a backfill",
                "INSERT INTO backfills (topic, definition) VALUES ($1, $2) \
                 ON CONFLICT (topic) DO UPDATE SET definition = $2, done_at = now()",
                &[&topic, &definition],
            )?;
            Ok(written)
        })
    }

    pub(super) fn items(&self, query: &ItemQuery) -> Result<Listing<StoredItem>, StoreError> {
        let mut out = Listing::default();
        if query.limit == 0 {
            return Ok(out);
        }
        let since = query.since.map(ms).unwrap_or(i64::MIN);
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let rows = match &query.topic {
            Some(topic) => self.query(
                "listing items",
                "SELECT i.id, i.record FROM item_topics t JOIN items i ON i.id = t.item_id \
                 WHERE t.topic = $1 AND t.fetched_ms >= $2 \
                 ORDER BY t.fetched_ms DESC, t.item_id DESC LIMIT $3",
                &[topic, &since, &limit],
            )?,
            None => self.query(
                "listing items",
                "SELECT id, record FROM items WHERE fetched_ms >= $1 \
                 ORDER BY fetched_ms DESC, id DESC LIMIT $2",
                &[&since, &limit],
            )?,
        };
        for row in rows {
            let id: &str = row.get(0);
            match codec::decode_or_warn::<StoredItem>(ITEMS, id.as_bytes(), row.get(1)) {
                Some(item) => out.records.push(item),
                None => out.skipped += 1,
            }
        }
        Ok(out)
    }

    pub(super) fn count(&self, op: &'static str, sql: &'static str) -> usize {
        match self.query(op, sql, &[]) {
            Ok(rows) => rows
                .first()
                .map_or(0, |row| usize::try_from(row.get::<_, i64>(0)).unwrap_or(0)),
            Err(err) => {
                tracing::warn!(error = %err, "Could not count.");
                0
            }
        }
    }

    pub(super) fn get_story(&self, id: &str) -> Result<Option<StoredStory>, StoreError> {
        let rows = self.query(
            "reading a story",
            "SELECT id, first_item, first_seen_ms, fingerprint, related, alerted \
             FROM stories WHERE id = $1",
            &[&id],
        )?;
        rows.first().map(story_from_row).transpose()
    }

    /// Stories with more than one copy or an alert, first seen at or after `since`.
    pub(super) fn stories_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<StoredStory>, StoreError> {
        let rows = self.query(
            "listing stories",
            "SELECT id, first_item, first_seen_ms, fingerprint, related, alerted \
             FROM stories WHERE first_seen_ms >= $1 AND (copies > 0 OR alerted <> '{}') \
             ORDER BY first_seen_ms, id",
            &[&ms(since)],
        )?;
        rows.iter().map(story_from_row).collect()
    }

    pub(super) fn sketches_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<LeadSketch>, StoreError> {
        let rows = self.query(
            "reading story sketches",
            "SELECT id, first_seen_ms, fingerprint, sketch FROM stories \
             WHERE first_seen_ms >= $1 AND sketch IS NOT NULL ORDER BY first_seen_ms, id",
            &[&ms(since)],
        )?;
        Ok(rows
            .iter()
            .map(|row| LeadSketch {
                story: row.get(0),
                first_seen: from_ms(row.get(1)),
                fingerprint: row.get::<_, i64>(2) as u64,
                sketch: sketch_of(row.get(3)),
            })
            .collect())
    }

    pub(super) fn story_sketches(
        &self,
        first_seen: DateTime<Utc>,
        fingerprint: u64,
    ) -> Result<Vec<(String, Vec<u32>)>, StoreError> {
        let rows = self.query(
            "reading story sketches",
            "SELECT id, sketch FROM stories \
             WHERE first_seen_ms = $1 AND fingerprint = $2 AND sketch IS NOT NULL",
            &[&ms(first_seen), &(fingerprint as i64)],
        )?;
        Ok(rows
            .iter()
            .map(|row| (row.get(0), sketch_of(row.get(1))))
            .collect())
    }

    pub(super) fn story_sketch(&self, story: &StoredStory) -> Result<Option<Vec<u32>>, StoreError> {
        let rows = self.query(
            "reading a story sketch",
            "SELECT sketch FROM stories WHERE id = $1 AND sketch IS NOT NULL",
            &[&story.id],
        )?;
        Ok(rows.first().map(|row| sketch_of(row.get(0))))
    }

    /// Writes stories' sketches (and their postings), all or none.
    pub(super) fn put_sketches(&self, leads: &[LeadSketch]) -> Result<(), StoreError> {
        self.transaction("writing story sketches", |tx| {
            for lead in leads.iter().filter(|lead| !lead.sketch.is_empty()) {
                let values: Vec<i32> = lead.sketch.iter().map(|&v| v as i32).collect();
                tx.execute(
                    "writing a story sketch",
                    "INSERT INTO stories (id, first_item, first_seen_ms, fingerprint, sketch) \
                     VALUES ($1, $1, $2, $3, $4) \
                     ON CONFLICT (id) DO UPDATE SET sketch = excluded.sketch",
                    &[
                        &lead.story,
                        &ms(lead.first_seen),
                        &(lead.fingerprint as i64),
                        &values,
                    ],
                )?;
                let indexed: Vec<i32> = dedup::indexed(&lead.sketch)
                    .iter()
                    .map(|&v| v as i32)
                    .collect();
                tx.execute(
                    "writing story postings",
                    "INSERT INTO story_postings (value, story, first_seen_ms, fingerprint) \
                     SELECT unnest($1::integer[]), $2, $3, $4 ON CONFLICT DO NOTHING",
                    &[
                        &indexed,
                        &lead.story,
                        &ms(lead.first_seen),
                        &(lead.fingerprint as i64),
                    ],
                )?;
            }
            Ok(())
        })
    }

    /// One bounded pass: items past the history (topic matched ones past the
    /// retention), seen ids and stories past the longer of the two, and the postings
    /// of stories past the history.
    pub(super) fn prune(
        &self,
        now: DateTime<Utc>,
        history: Duration,
        retention: Duration,
        max: usize,
    ) -> Result<PruneReport, StoreError> {
        let cut = |age: Duration| ms(now) - super::millis_of(age);
        let history_cut = cut(history);
        let matched_cut = cut(history.max(retention));
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let mut report = PruneReport::default();
        let mut budget = max;
        let delete = |op, sql, params: &[super::Param<'_>]| self.execute(op, sql, params);
        let items = delete(
            "pruning items",
            "DELETE FROM items WHERE id IN (SELECT id FROM items \
             WHERE fetched_ms < $1 AND (NOT matched OR fetched_ms < $2) LIMIT $3)",
            &[&history_cut, &matched_cut, &budget],
        )? as i64;
        report.items = items as usize;
        budget -= items;
        let seen = delete(
            "pruning seen ids",
            "DELETE FROM seen WHERE id IN (SELECT id FROM seen WHERE seen_ms < $1 \
               AND NOT EXISTS (SELECT 1 FROM items WHERE items.id = seen.id) LIMIT $2)",
            &[&matched_cut, &budget.max(0)],
        )? as i64;
        report.seen = seen as usize;
        budget -= seen;
        let stories = delete(
            "pruning stories",
            "DELETE FROM stories WHERE id IN (SELECT id FROM stories \
             WHERE first_seen_ms < $1 LIMIT $2)",
            &[&matched_cut, &budget.max(0)],
        )? as i64;
        report.stories = stories as usize;
        budget -= stories;
        let postings = delete(
            "pruning story postings",
            "DELETE FROM story_postings WHERE (value, first_seen_ms, story) IN \
             (SELECT value, first_seen_ms, story FROM story_postings \
              WHERE first_seen_ms < $1 LIMIT $2)",
            &[&history_cut, &budget.max(0)],
        )? as i64;
        budget -= postings;
        report.done = budget > 0;
        Ok(report)
    }
}

fn sketch_of(values: Vec<i32>) -> Vec<u32> {
    values.into_iter().map(|v| v as u32).collect()
}

fn related(item: &StoredItem) -> Related {
    Related {
        item_id: item.id.clone(),
        feed: item.feed.clone(),
        url: item.url.clone(),
        title: item.title.clone(),
    }
}

/// A story of the batch: new (with its lead's sketch; written whole), or stored and
/// locked (written again only when `changed`).
enum Story<'s> {
    New(StoredStory, Option<&'s [u32]>, bool),
    Stored(StoredStory, bool),
}

impl Story<'_> {
    fn parts(&mut self) -> (&mut StoredStory, &mut bool) {
        match self {
            Story::New(story, _, changed) | Story::Stored(story, changed) => (story, changed),
        }
    }
}

/// A story's step state for one topic and sink, as stored.
fn read_step(
    tx: &mut Tx<'_>,
    key: &(String, String, String),
) -> Result<Option<StoryStep>, Failure> {
    let row = tx.query_opt(
        "reading a story's update step",
        "SELECT step, sources, at_ms FROM story_steps WHERE story = $1 AND topic = $2 AND sink = $3",
        &[&key.0, &key.1, &key.2],
    )?;
    Ok(row.map(|row| StoryStep {
        step: row.get::<_, i32>(0) as u32,
        sources: row.get::<_, i32>(1) as u32,
        at_ms: row.get(2),
    }))
}

fn locked_story(tx: &mut Tx<'_>, id: &str) -> Result<Option<StoredStory>, Failure> {
    let row = tx.query_opt(
        "reading a story",
        "SELECT id, first_item, first_seen_ms, fingerprint, related, alerted \
         FROM stories WHERE id = $1 FOR UPDATE",
        &[&id],
    )?;
    Ok(row.map(|row| story_from_row(&row)).transpose()?)
}

fn story_from_row(row: &tokio_postgres::Row) -> Result<StoredStory, StoreError> {
    let id: String = row.get(0);
    let related = match row.get::<_, Option<&[u8]>>(4) {
        Some(bytes) => codec::decode_at(STORIES, id.as_bytes(), bytes)?,
        None => Vec::new(),
    };
    Ok(StoredStory {
        first_item: row.get(1),
        first_seen: from_ms(row.get(2)),
        fingerprint: row.get::<_, i64>(3) as u64,
        related,
        alerted: row.get(5),
        id,
    })
}
