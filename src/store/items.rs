//! Items: the seen check, the one transaction that stores a feed's new items with
//! their indexes, stories, alerts and story updates, and the listings by time and
//! topic.

use super::*;
use crate::model::payload::Payload;

impl SledStore {
    pub fn seen(&self, id: &str) -> Result<bool, StoreError> {
        self.seen.contains_key(id).map_err(|cause| StoreError::Db {
            op: "reading tree seen",
            cause,
        })
    }

    pub fn get_item(&self, id: &str) -> Result<Option<StoredItem>, StoreError> {
        let seen = self.seen.get(id).map_err(|cause| StoreError::Db {
            op: "reading tree seen",
            cause,
        })?;
        let Some(seen) = seen else {
            return Ok(None);
        };
        let key = item_record_key(&seen, id.as_bytes()).ok_or_else(|| StoreError::Corrupt {
            tree: SEEN,
            key: show_key(id.as_bytes()),
            reason: format!(
                "expected an 8-byte time or a 13-byte batch key, found {} bytes",
                seen.len()
            ),
        })?;
        let value = self.items.get(&key).map_err(|cause| StoreError::Db {
            op: "reading tree items",
            cause,
        })?;
        let Some(value) = value else {
            return Ok(None);
        };
        let items = codec::decode_items(&value).map_err(|reason| StoreError::Corrupt {
            tree: ITEMS,
            key: format!("{} (item {id})", show_key(&key)),
            reason,
        })?;
        Ok(items.into_iter().find(|item| item.id == id))
    }

    /// Stores a batch of items in one transaction and returns how many were new.
    ///
    /// The new items of each fetch time become one record (those on a topic another),
    /// with one `by_time` and one `seen_by_time` entry; each item gets its `seen` entry
    /// and its `topic_index` entries. A later copy is added to its story's `related`
    /// (the story gets its record then). Items whose id is already in `seen` are
    /// skipped, so storing the same batch twice stores nothing the second time.
    pub fn insert_items(&self, items: &[StoredItem]) -> Result<usize, StoreError> {
        self.insert_items_with_alerts(items, &[])
    }

    /// [`SledStore::insert_items`], writing each new item's alerts to the outbox in the
    /// same transaction. An alert is written only when its story has not alerted on
    /// its topic before (through an earlier copy, or an earlier item of this batch);
    /// alerts of items already seen are dropped with them.
    pub fn insert_items_with_alerts(
        &self,
        items: &[StoredItem],
        alerts: &[StoredAlert],
    ) -> Result<usize, StoreError> {
        self.insert_batch(items, alerts, &[])
            .map(|inserted| inserted.new)
    }

    /// [`SledStore::insert_items_with_alerts`], also writing the sketches of story leads:
    /// `sketches` pairs an item id with its sketch. A sketch is stored (in
    /// `lead_sketches`, in one record for the leads of one fetch time) only with a new
    /// item that leads its story; an empty one is not stored.
    ///
    /// The sketches are written after the transaction, not in it: one more tree in
    /// every transaction cost more than the write itself. A sketch lost to a crash in
    /// between is rebuilt from its lead's text at the next start when its story has a
    /// record; a story of one item without its sketch is not found by later copies,
    /// which then start a story of their own (an alert on it is still one: the lost
    /// story had not alerted, or it would have a record). One whose write failed is in
    /// [`Inserted::leads`] for the caller to keep and write again
    /// ([`SledStore::put_sketches`]).
    pub fn insert_batch(
        &self,
        items: &[StoredItem],
        alerts: &[StoredAlert],
        sketches: &[(&str, &[u32])],
    ) -> Result<Inserted, StoreError> {
        self.write_batch(&Batch {
            items,
            alerts,
            sketches,
            rules: &[],
            changed: &[],
        })
    }

    /// [`SledStore::insert_batch`] with the topics' update rules ([`Store::write_batch`]):
    /// the step states of the stories copies joined are in `story_steps`, written in
    /// the same transaction as the copies, with the `story.updated` events they raise.
    pub fn write_batch(&self, batch: &Batch<'_>) -> Result<Inserted, StoreError> {
        let Batch {
            items,
            alerts,
            sketches,
            rules,
            changed,
        } = *batch;
        let _writing = self.write_gate();
        let sketches: HashMap<&str, &[u32]> = sketches
            .iter()
            .filter(|(_, sketch)| !sketch.is_empty())
            .copied()
            .collect();
        let encoded_alerts: Vec<(&StoredAlert, Vec<u8>)> = alerts
            .iter()
            .map(|alert| Ok((alert, encode(OUTBOX, &alert.id, alert)?)))
            .collect::<Result<_, StoreError>>()?;
        // A new record's key is taken only if the clock went back to a millisecond
        // already used and the sequence met the same number there: rare, but it would
        // overwrite items, so the transaction refuses it and runs again with new keys.
        const TRIES: u32 = 4;
        let mut tries = 0;
        loop {
            tries += 1;
            match self.insert_batch_once(items, &encoded_alerts, rules) {
                Err(StoreError::KeyTaken { key, .. }) if tries < TRIES => {
                    tracing::warn!(key, "A new record's key is taken; storing with new keys.");
                }
                Err(StoreError::KeyTaken { key, .. }) => {
                    return Err(StoreError::KeyTaken { key, tries })
                }
                Err(err) => return Err(err),
                Ok((new, leads)) => {
                    let inserted = self.inserted(new, leads, &sketches);
                    // An item on a topic gets its version, so that a change to it is
                    // seen (`versions_among`); lost to a crash, it is only not seen.
                    // Single inserts, not a batch: a sled batch writes and syncs its
                    // log twice (BENCHMARKS.md), and a poll has few items on a topic.
                    for item in items.iter().filter(|i| !i.topics.is_empty()) {
                        self.item_versions
                            .insert(item.id.as_bytes(), &ItemVersion::of(item).to_bytes()[..])
                            .map_err(|cause| StoreError::Db {
                                op: "writing tree item_versions",
                                cause,
                            })?;
                    }
                    self.apply_changes(changed)?;
                    break inserted;
                }
            }
        }
    }

    /// One try of [`SledStore::insert_batch`]'s transaction: the number of new items
    /// and the story leads among them.
    fn insert_batch_once<'i>(
        &self,
        items: &'i [StoredItem],
        encoded_alerts: &[(&StoredAlert, Vec<u8>)],
        rules: &[UpdateRule],
    ) -> Result<(usize, Vec<&'i StoredItem>), StoreError> {
        // One record for the new items of each fetch time (a feed poll has one), topic
        // matched ones apart so that pruning can keep them longer without rewriting.
        // Keys are chosen before the transaction, which sled may run more than once.
        let mut record_keys: HashMap<(u64, bool), Vec<u8>> = HashMap::new();
        for item in items {
            record_keys
                .entry((millis(item.fetched), !item.topics.is_empty()))
                .or_insert_with(|| self.next_batch_key(millis(item.fetched)));
        }
        let trees = (
            &self.items,
            &self.by_time,
            &self.seen,
            &self.seen_by_time,
            &self.topic_index,
            &self.stories,
            &self.stories_by_time,
            &self.outbox,
            &self.outbox_due,
            &self.meta,
            &self.story_steps,
        );
        let result = trees.transaction(
            |(
                items_tree,
                by_time,
                seen,
                seen_by_time,
                topic_index,
                stories,
                stories_by_time,
                outbox,
                outbox_due,
                meta,
                story_steps,
            )| {
                let mut accepted: Vec<&StoredItem> = Vec::new();
                let mut leads = Vec::new();
                for item in items {
                    let id = item.id.as_bytes();
                    if seen.get(id)?.is_some() {
                        continue;
                    }
                    let fetched = millis(item.fetched);
                    let record = &record_keys[&(fetched, !item.topics.is_empty())];
                    let lead = (item.is_story_lead && item.story == item.id)
                        .then_some((item.fingerprint, item.fetched));
                    seen.insert(id, seen_value(record, lead))?;
                    for topic in &item.topics {
                        topic_index.insert(
                            topic_key(&topic.id, fetched, id),
                            &topic.score.to_be_bytes()[..],
                        )?;
                    }
                    accepted.push(item);
                    let trees = StoryTrees {
                        items: items_tree,
                        seen,
                        stories,
                        stories_by_time,
                        accepted: &accepted,
                    };
                    if item.is_story_lead {
                        leads.push(item);
                    }
                    let mine = encoded_alerts.iter().filter(|(a, _)| a.item_id == item.id);
                    let Attached { mut story, stored } = attach_to_story(&trees, item)?;
                    let mut alerted = Vec::new();
                    for (alert, json) in mine {
                        if story.alerted.contains(&alert.topic) {
                            continue;
                        }
                        if outbox.get(alert.id.as_bytes())?.is_none() {
                            outbox.insert(alert.id.as_bytes(), json.as_slice())?;
                            outbox_due.insert(due_key(alert), EMPTY)?;
                        }
                        if !alerted.contains(&alert.topic) {
                            alerted.push(alert.topic.clone());
                        }
                    }
                    if !alerted.is_empty() {
                        story.alerted.extend(alerted);
                        if !stored {
                            stories_by_time.insert(
                                time_key(millis(story.first_seen), story.id.as_bytes()),
                                EMPTY,
                            )?;
                        }
                        let json = encode(STORIES, &story.id, &story)
                            .map_err(ConflictableTransactionError::Abort)?;
                        stories.insert(story.id.as_bytes(), json)?;
                    }
                    for rule in rules {
                        if !story.alerted.contains(&rule.topic) {
                            continue;
                        }
                        for sink in &rule.sinks {
                            let key = step_key(&story.id, &rule.topic, sink);
                            let state = story_steps.get(&key)?.and_then(|v| read_step(&v));
                            // The first item's title names the story; read only for an event.
                            let due =
                                updates::next_step(rule, sink, &story, state, None, item.fetched);
                            let Some((state, event)) = due else {
                                continue;
                            };
                            story_steps.insert(key, write_step(&state).to_vec())?;
                            let Some(mut event) = event else {
                                continue;
                            };
                            if let Some(lead) = read_item(&trees, &story.first_item)? {
                                if let Payload::StoryUpdated(body) = &mut event.payload {
                                    body.story.title = lead.title.clone();
                                    body.story.url = lead.url.clone();
                                }
                            }
                            if outbox.get(event.id.as_bytes())?.is_none() {
                                let record = encode(OUTBOX, &event.id, &event)
                                    .map_err(ConflictableTransactionError::Abort)?;
                                outbox.insert(event.id.as_bytes(), record)?;
                                outbox_due.insert(due_key(&event), EMPTY)?;
                            }
                        }
                    }
                }
                for ((fetched, matched), key) in &record_keys {
                    let mut members: Vec<&StoredItem> = accepted
                        .iter()
                        .filter(|i| {
                            millis(i.fetched) == *fetched && i.topics.is_empty() != *matched
                        })
                        .copied()
                        .collect();
                    if members.is_empty() {
                        continue;
                    }
                    if by_time.get(key.as_slice())?.is_some() {
                        return Err(ConflictableTransactionError::Abort(StoreError::KeyTaken {
                            key: show_key(key),
                            tries: 1,
                        }));
                    }
                    // Listed newest first by reading records backwards: within one
                    // record, by id, as keys of one item each were ordered before.
                    members.sort_by(|a, b| a.id.cmp(&b.id));
                    let record = codec::encode_batch(&show_key(key), &members)
                        .map_err(ConflictableTransactionError::Abort)?;
                    items_tree.insert(key.as_slice(), record)?;
                    by_time.insert(key.as_slice(), by_time_value(*matched, members.len()))?;
                    let ids: Vec<&str> = members.iter().map(|i| i.id.as_str()).collect();
                    let ids = postcard::to_stdvec(&ids).map_err(|e| {
                        ConflictableTransactionError::Abort(StoreError::Encode {
                            tree: SEEN_BY_TIME,
                            key: show_key(key),
                            reason: e.to_string(),
                        })
                    })?;
                    seen_by_time.insert(key.as_slice(), ids)?;
                }
                let new = accepted.len();
                if new > 0 {
                    for key in [WRITTEN_KEY, STORED_KEY] {
                        let count = read_u64(meta.get(key)?.as_deref());
                        meta.insert(key, &(count + new as u64).to_be_bytes()[..])?;
                    }
                }
                Ok((new, leads))
            },
        );
        result.map_err(|err| tx_error(err, "storing items"))
    }

    /// The versions of the items among `ids` kept on a topic.
    pub fn versions_among(&self, ids: &[&str]) -> Result<HashMap<String, ItemVersion>, StoreError> {
        let mut out = HashMap::new();
        for id in ids {
            let value = self
                .item_versions
                .get(id.as_bytes())
                .map_err(|cause| StoreError::Db {
                    op: "reading tree item_versions",
                    cause,
                })?;
            if let Some(version) = value.as_deref().and_then(ItemVersion::from_bytes) {
                out.insert(id.to_string(), version);
            }
        }
        Ok(out)
    }

    /// Stores each changed item over its stored version, in its record, with the
    /// `item.updated` events of the topics its story alerted on: one transaction an
    /// item, then its new version. An item no longer stored (pruned) is left alone.
    fn apply_changes(&self, changed: &[ChangedItem]) -> Result<(), StoreError> {
        for change in changed {
            let item = &change.item;
            let events: Vec<(&StoredAlert, Vec<u8>)> = change
                .events
                .iter()
                .map(|e| Ok((e, encode(OUTBOX, &e.id, e)?)))
                .collect::<Result<_, StoreError>>()?;
            let trees = (
                &self.items,
                &self.seen,
                &self.stories,
                &self.outbox,
                &self.outbox_due,
            );
            let result = trees.transaction(|(items, seen, stories, outbox, outbox_due)| {
                let Some(key) = seen
                    .get(item.id.as_bytes())?
                    .and_then(|seen| item_record_key(&seen, item.id.as_bytes()))
                else {
                    return Ok(false);
                };
                let Some(value) = items.get(&key)? else {
                    return Ok(false);
                };
                let Ok(mut record) = codec::decode_items(&value) else {
                    return Ok(false);
                };
                let Some(at) = record.iter().position(|i| i.id == item.id) else {
                    return Ok(false);
                };
                record[at] = item.clone();
                let encoded = if codec::is_batch(&value) {
                    let members: Vec<&StoredItem> = record.iter().collect();
                    codec::encode_batch(&show_key(&key), &members)
                } else {
                    encode(ITEMS, &item.id, &record[at])
                }
                .map_err(ConflictableTransactionError::Abort)?;
                items.insert(key, encoded)?;
                let alerted = stories
                    .get(item.story.as_bytes())?
                    .and_then(|bytes| codec::decode::<StoredStory>(&bytes).ok())
                    .map(|story| story.alerted)
                    .unwrap_or_default();
                for (event, record) in &events {
                    if alerted.contains(&event.topic) && outbox.get(event.id.as_bytes())?.is_none()
                    {
                        outbox.insert(event.id.as_bytes(), record.as_slice())?;
                        outbox_due.insert(due_key(event), EMPTY)?;
                    }
                }
                Ok(true)
            });
            let stored = result.map_err(|err| tx_error(err, "storing a changed item"))?;
            if stored {
                self.item_versions
                    .insert(item.id.as_bytes(), &ItemVersion::of(item).to_bytes()[..])
                    .map_err(|cause| StoreError::Db {
                        op: "writing tree item_versions",
                        cause,
                    })?;
            }
        }
        Ok(())
    }

    /// After [`SledStore::insert_batch`]'s transaction: counts the new items and writes
    /// the sketches of the new stories' leads.
    fn inserted(
        &self,
        new: usize,
        leads: Vec<&StoredItem>,
        sketches: &HashMap<&str, &[u32]>,
    ) -> Result<Inserted, StoreError> {
        self.item_count.fetch_add(new, Ordering::Relaxed);
        let leads: Vec<LeadSketch> = leads
            .into_iter()
            .filter_map(|lead| {
                sketches.get(lead.id.as_str()).map(|sketch| LeadSketch {
                    story: lead.story.clone(),
                    first_seen: lead.fetched,
                    fingerprint: lead.fingerprint,
                    sketch: sketch.to_vec(),
                })
            })
            .collect();
        let sketches = self.write_sketches(&leads);
        Ok(Inserted {
            new,
            leads,
            sketches,
        })
    }

    /// Stored items, newest (by fetch time) first. A record that cannot be read or
    /// decoded (a damaged store) is skipped and counted, so that one bad page does not
    /// hide every other item.
    pub fn items(&self, query: &ItemQuery) -> Result<Listing<StoredItem>, StoreError> {
        let mut out = Listing::default();
        if query.limit == 0 {
            return Ok(out);
        }
        let since = query.since.map(millis).unwrap_or(0);
        match &query.topic {
            None => self.list_all(since, query.limit, &mut out)?,
            Some(topic) => self.list_topic(topic, since, query.limit, &mut out)?,
        }
        Ok(out)
    }

    /// Items fetched at or after `since`, oldest first, handed to `visit` a record
    /// (a feed poll's items) at a time, so that a long window is never held whole.
    /// Returns how many items could not be read and were skipped.
    pub fn scan_items(
        &self,
        since: DateTime<Utc>,
        visit: &mut dyn FnMut(Vec<StoredItem>),
    ) -> Result<usize, StoreError> {
        let mut out = Listing::default();
        for entry in self.by_time.range(time_key(millis(since), b"")..) {
            let (key, value) = match entry {
                Ok(entry) => entry,
                Err(cause) => {
                    out.stop_at_damage(BY_TIME, cause, "scanning items")?;
                    break;
                }
            };
            let (_, holds) = read_by_time(&value);
            if let Record::Items(items) = self.read_record(&key, holds, &mut out)? {
                visit(items);
            }
        }
        Ok(out.skipped)
    }

    /// Every record from `since` on, newest first, through `by_time`.
    fn list_all(
        &self,
        since: u64,
        limit: usize,
        out: &mut Listing<StoredItem>,
    ) -> Result<(), StoreError> {
        for entry in self.by_time.range(time_key(since, b"")..).rev() {
            let (key, value) = match entry {
                Ok(entry) => entry,
                Err(cause) => {
                    out.stop_at_damage(BY_TIME, cause, "listing items")?;
                    break;
                }
            };
            // A record that cannot be read costs the items `by_time` says it holds.
            let (_, holds) = read_by_time(&value);
            let Record::Items(items) = self.read_record(&key, holds, out)? else {
                continue;
            };
            for item in items.into_iter().rev() {
                out.records.push(item);
                if out.records.len() >= limit {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The items of one topic from `since` on, newest first, through `topic_index`;
    /// each is found in its record through `seen`.
    fn list_topic(
        &self,
        topic: &str,
        since: u64,
        limit: usize,
        out: &mut Listing<StoredItem>,
    ) -> Result<(), StoreError> {
        let prefix = topic_prefix(topic);
        let mut start = prefix.clone();
        start.extend_from_slice(&since.to_be_bytes());
        // The topic's range ends where the next byte after its 0x00 separator would.
        let mut end = topic.as_bytes().to_vec();
        end.push(1);
        // The record last read: the items of one feed poll usually come in a row.
        let mut last: Option<(Vec<u8>, Record)> = None;
        for entry in self.topic_index.range(start..end).rev() {
            let key = match entry {
                Ok((key, _)) => key,
                Err(cause) => {
                    out.stop_at_damage(TOPIC_INDEX, cause, "listing items")?;
                    break;
                }
            };
            let Some((_, id)) = key.get(prefix.len()..).and_then(split_time_key) else {
                tracing::warn!(tree = TOPIC_INDEX, key = %show_key(&key), "Skipped a malformed index key.");
                continue;
            };
            let seen = match self.seen.get(id) {
                Ok(seen) => seen,
                Err(cause) => {
                    out.skip_damaged(SEEN, id, cause, "reading tree seen")?;
                    continue;
                }
            };
            // An index entry without its item: pruned meanwhile, or left behind by a
            // corrupt record. Not an item to list.
            let Some(record_key) = seen.and_then(|seen| item_record_key(&seen, id)) else {
                continue;
            };
            match &last {
                Some((key, Record::Unreadable)) if *key == record_key => {
                    // Another item of a record that could not be read.
                    out.skipped += 1;
                    continue;
                }
                Some((key, _)) if *key == record_key => {}
                _ => {
                    let record = self.read_record(&record_key, 1, out)?;
                    last = Some((record_key, record));
                }
            }
            // A record gone (pruned since the index was read) lists nothing.
            let Some((_, Record::Items(items))) = &last else {
                continue;
            };
            let Some(item) = items.iter().find(|item| item.id.as_bytes() == id) else {
                continue;
            };
            out.records.push(item.clone());
            if out.records.len() >= limit {
                break;
            }
        }
        Ok(())
    }

    /// The items of the `items` record at `key`: [`Record::Gone`] when there is none,
    /// [`Record::Unreadable`] when it cannot be read or decoded (then `holds` items are
    /// counted as skipped in `out`).
    fn read_record(
        &self,
        key: &[u8],
        holds: usize,
        out: &mut Listing<StoredItem>,
    ) -> Result<Record, StoreError> {
        let record = match self.items.get(key) {
            Ok(record) => record,
            Err(cause) => {
                out.skip_damaged(ITEMS, key, cause, "reading tree items")?;
                out.skipped += holds.saturating_sub(1);
                return Ok(Record::Unreadable);
            }
        };
        let Some(record) = record else {
            return Ok(Record::Gone);
        };
        match codec::decode_items(&record) {
            Ok(items) => Ok(Record::Items(items)),
            Err(err) => {
                tracing::warn!(tree = ITEMS, key = %show_key(key), error = %err, "Skipped a corrupt record.");
                out.skipped += holds;
                Ok(Record::Unreadable)
            }
        }
    }
}

/// What a listing found at a record's key.
enum Record {
    Items(Vec<StoredItem>),
    /// Damaged: its items are counted as skipped.
    Unreadable,
    /// Pruned since an index pointed to it: nothing to list or count.
    Gone,
}
