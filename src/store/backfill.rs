//! Backfills: the alerts a topic raises on items stored before it existed (or before
//! it changed), written once per story, topic and sink, with the record that the
//! topic's definition was backfilled, in one transaction (docs/store.md, "Backfills").

use std::collections::BTreeMap;

use super::*;

/// `meta` keys of backfill records: this prefix, then the topic id.
const BACKFILL_PREFIX: &[u8] = b"backfilled\0";

fn backfill_key(topic: &str) -> Vec<u8> {
    let mut key = BACKFILL_PREFIX.to_vec();
    key.extend_from_slice(topic.as_bytes());
    key
}

impl SledStore {
    /// The definition `topic` was last backfilled for.
    pub fn backfilled(&self, topic: &str) -> Result<Option<String>, StoreError> {
        let value = self
            .meta
            .get(backfill_key(topic))
            .map_err(|cause| StoreError::Db {
                op: "reading a backfill record",
                cause,
            })?;
        Ok(value.map(|value| String::from_utf8_lossy(&value).into_owned()))
    }

    /// Writes a backfill's alerts, each only when its story has not alerted on its
    /// topic, marks their stories alerted, and records `definition` for `topic`: all
    /// in one transaction. `items` holds the item of each alert (a story of one item
    /// has no record yet; it is made from its lead, as a copy joining it would).
    pub fn record_backfill(
        &self,
        topic: &str,
        definition: &str,
        alerts: &[StoredAlert],
        items: &[StoredItem],
    ) -> Result<usize, StoreError> {
        let _writing = self.write_gate();
        let encoded: Vec<(&StoredAlert, Vec<u8>)> = alerts
            .iter()
            .map(|alert| Ok((alert, encode(OUTBOX, &alert.id, alert)?)))
            .collect::<Result<_, StoreError>>()?;
        // One story at a time, its alerts together, as the item transaction does.
        let mut by_story: BTreeMap<&str, Vec<&(&StoredAlert, Vec<u8>)>> = BTreeMap::new();
        for entry in &encoded {
            by_story
                .entry(entry.0.story.as_str())
                .or_default()
                .push(entry);
        }
        let trees = (
            &self.stories,
            &self.stories_by_time,
            &self.seen,
            &self.outbox,
            &self.outbox_due,
            &self.meta,
        );
        let result = trees.transaction(
            |(stories, stories_by_time, seen, outbox, outbox_due, meta)| {
                let mut written = 0;
                for (story_id, alerts) in &by_story {
                    let key = story_id.as_bytes();
                    let existing = stories
                        .get(key)?
                        .and_then(|bytes| codec::decode::<StoredStory>(&bytes).ok());
                    let (mut story, stored) = match existing {
                        Some(story) => (story, true),
                        None => {
                            let Some(item) = items.iter().find(|i| i.id == alerts[0].0.item_id)
                            else {
                                continue;
                            };
                            let mut story = story_of_lead(item);
                            story.id = story_id.to_string();
                            if let Some((fingerprint, fetched)) =
                                seen.get(key)?.and_then(|seen| seen_lead(&seen))
                            {
                                story.first_item = story_id.to_string();
                                story.fingerprint = fingerprint;
                                story.first_seen = fetched;
                            }
                            (story, false)
                        }
                    };
                    let mut alerted = Vec::new();
                    for (alert, record) in alerts.iter().map(|entry| (entry.0, &entry.1)) {
                        if story.alerted.contains(&alert.topic) {
                            continue;
                        }
                        if outbox.get(alert.id.as_bytes())?.is_none() {
                            outbox.insert(alert.id.as_bytes(), record.as_slice())?;
                            outbox_due.insert(due_key(alert), EMPTY)?;
                            written += 1;
                        }
                        if !alerted.contains(&alert.topic) {
                            alerted.push(alert.topic.clone());
                        }
                    }
                    if alerted.is_empty() {
                        continue;
                    }
                    story.alerted.extend(alerted);
                    if !stored {
                        stories_by_time.insert(time_key(millis(story.first_seen), key), EMPTY)?;
                    }
                    let record = encode(STORIES, &story.id, &story)
                        .map_err(ConflictableTransactionError::Abort)?;
                    stories.insert(key, record)?;
                }
                meta.insert(backfill_key(topic), definition.as_bytes())?;
                Ok(written)
            },
        );
        result.map_err(|err| tx_error(err, "storing a backfill"))
    }
}
