//! Stories and their sketches: attaching a stored item to its story inside the item
//! transaction, the window's reads on start, and the sketches written after it.

use std::collections::BTreeMap;

use super::*;

impl SledStore {
    /// A story by id: its record, or for a story of one item (which has none, see
    /// [`attach_to_story`]) what its lead says.
    pub fn get_story(&self, id: &str) -> Result<Option<StoredStory>, StoreError> {
        if let Some(story) = get_json(&self.stories, STORIES, id.as_bytes())? {
            return Ok(Some(story));
        }
        Ok(self
            .get_item(id)?
            .filter(|item| item.is_story_lead && item.story == id)
            .map(|lead| story_of_lead(&lead)))
    }

    /// Writes stories' sketches, all or none; an empty sketch is not stored.
    pub fn put_sketches(&self, leads: &[LeadSketch]) -> Result<(), StoreError> {
        let _writing = self.write_gate();
        self.write_sketches(leads)
    }

    /// [`SledStore::put_sketches`] for a caller that holds the write gate. The
    /// sketches of one first-seen millisecond (the stories a feed poll started) are
    /// one `lead_sketches` record: sled's cost is per key, and a sketch a key was the
    /// store's largest cost after the items themselves (BENCHMARKS.md).
    pub(super) fn write_sketches(&self, leads: &[LeadSketch]) -> Result<(), StoreError> {
        let db_error = |cause| StoreError::Db {
            op: "writing tree lead_sketches",
            cause,
        };
        let mut by_time: BTreeMap<u64, Vec<&LeadSketch>> = BTreeMap::new();
        for lead in leads.iter().filter(|lead| !lead.sketch.is_empty()) {
            by_time
                .entry(millis(lead.first_seen))
                .or_default()
                .push(lead);
        }
        #[cfg(test)]
        if self.fail_sketch_writes.load(Ordering::Relaxed) {
            return Err(StoreError::Db {
                op: "writing tree lead_sketches",
                cause: sled::Error::Unsupported("failing on purpose, for a test".into()),
            });
        }
        let mut records = Vec::with_capacity(by_time.len());
        for (at, leads) in by_time {
            // A key already taken (the clock went back to a millisecond used before and
            // the sequence met the same number) is drawn again, not overwritten.
            let mut key = self.next_batch_key(at);
            while self.lead_sketches.contains_key(&key).map_err(db_error)? {
                key = self.next_batch_key(at);
            }
            let record = codec::encode_sketches(
                &show_key(&key),
                leads.iter().map(|lead| {
                    (
                        lead.fingerprint,
                        lead.story.as_str(),
                        lead.sketch.as_slice(),
                    )
                }),
            );
            records.push((key, record));
        }
        // The leads of a poll share a millisecond, so this is nearly always one record,
        // written on its own: a sled batch writes and syncs its log twice, which cost
        // more than the record (BENCHMARKS.md, "Schema 5"). Several go in a batch, all
        // or none, so that a retry after a failure does not store some twice.
        if records.len() > 1 {
            let mut batch = sled::Batch::default();
            for (key, record) in records {
                batch.insert(key, record);
            }
            return self.lead_sketches.apply_batch(batch).map_err(db_error);
        }
        for (key, record) in records {
            self.lead_sketches.insert(key, record).map_err(db_error)?;
        }
        Ok(())
    }

    /// Makes [`SledStore::put_sketches`] fail (or work again), for tests.
    #[cfg(test)]
    pub(crate) fn fail_sketch_writes(&self, fail: bool) {
        self.fail_sketch_writes.store(fail, Ordering::Relaxed);
    }

    /// Stories first seen at or after `since`, oldest first (the order
    /// [`crate::pipeline::dedup::StoryWindow`] is rebuilt in).
    pub fn recent_stories(&self, since: DateTime<Utc>) -> Result<Vec<StoredStory>, StoreError> {
        self.stories_since(since).collect()
    }

    /// [`SledStore::recent_stories`] read one at a time, so that a window of many stories
    /// is never all in memory at once.
    pub fn stories_since(
        &self,
        since: DateTime<Utc>,
    ) -> impl Iterator<Item = Result<StoredStory, StoreError>> + '_ {
        self.stories_by_time
            .range(time_key(millis(since), b"")..)
            .filter_map(move |entry| {
                let (key, _) = match entry {
                    Ok(entry) => entry,
                    Err(cause) => {
                        return Some(Err(StoreError::Db {
                            op: "reading tree stories_by_time",
                            cause,
                        }))
                    }
                };
                let Some((at, id)) = split_time_key(&key) else {
                    tracing::warn!(tree = STORIES_BY_TIME, key = %show_key(&key), "Skipped a malformed index key.");
                    return None;
                };
                let record = match self.stories.get(id) {
                    Ok(record) => record?,
                    Err(cause) => {
                        return Some(Err(StoreError::Db {
                            op: "reading tree stories",
                            cause,
                        }))
                    }
                };
                let story = decode_or_warn::<StoredStory>(STORIES, id, &record)?;
                // A story whose first copy changed has an older index entry left behind;
                // it is listed under its current time only.
                (millis(story.first_seen) == at).then_some(Ok(story))
            })
    }

    /// The sketches of stories first seen at or after `since`, oldest first: what
    /// the daemon's story window is rebuilt from, stories of one item included. Those
    /// of schema 5 (a record per feed poll) and those of a sketch a key (schemas
    /// before) are merged in time order.
    pub fn sketches_since(
        &self,
        since: DateTime<Utc>,
    ) -> impl Iterator<Item = Result<LeadSketch, StoreError>> + '_ {
        let mut batched = self.batched_sketches_since(since).peekable();
        let mut single = self.single_sketches_since(since).peekable();
        std::iter::from_fn(move || {
            let time = |next: Option<&Result<LeadSketch, StoreError>>| {
                next.map(|next| {
                    next.as_ref()
                        .map_or(DateTime::<Utc>::MIN_UTC, |lead| lead.first_seen)
                })
            };
            match (time(batched.peek()), time(single.peek())) {
                (Some(b), Some(s)) if s < b => single.next(),
                (Some(_), _) => batched.next(),
                (None, _) => single.next(),
            }
        })
    }

    /// Schema 5's sketches from `since` on: a `lead_sketches` record per feed poll.
    fn batched_sketches_since(
        &self,
        since: DateTime<Utc>,
    ) -> impl Iterator<Item = Result<LeadSketch, StoreError>> + '_ {
        self.lead_sketches
            .range(time_key(millis(since), b"")..)
            .flat_map(|entry| {
                let (key, value) = match entry {
                    Ok(entry) => entry,
                    Err(cause) => {
                        return vec![Err(StoreError::Db {
                            op: "reading tree lead_sketches",
                            cause,
                        })]
                    }
                };
                let first_seen = split_time_key(&key)
                    .and_then(|(at, _)| DateTime::from_timestamp_millis(i64::try_from(at).ok()?));
                let entries = codec::decode_sketches(&value);
                match (first_seen, entries) {
                    (Some(first_seen), Ok(entries)) => entries
                        .into_iter()
                        .filter_map(|entry| {
                            Some(Ok(LeadSketch {
                                story: entry.story.to_string(),
                                first_seen,
                                fingerprint: entry.fingerprint,
                                sketch: decode_sketch(entry.sketch)?,
                            }))
                        })
                        .collect(),
                    (_, entries) => {
                        let error = entries.err().unwrap_or_else(|| "a key without a time".into());
                        tracing::warn!(tree = LEAD_SKETCHES, key = %show_key(&key), error, "Skipped a corrupt record.");
                        Vec::new()
                    }
                }
            })
    }

    /// The sketches schemas before 5 wrote, a key each, from `since` on.
    fn single_sketches_since(
        &self,
        since: DateTime<Utc>,
    ) -> impl Iterator<Item = Result<LeadSketch, StoreError>> + '_ {
        self.story_sketches
            .range(time_key(millis(since), b"")..)
            .filter_map(|entry| {
                let (key, value) = match entry {
                    Ok(entry) => entry,
                    Err(cause) => {
                        return Some(Err(StoreError::Db {
                            op: "reading tree story_sketches",
                            cause,
                        }))
                    }
                };
                let lead = split_sketch_key(&key).and_then(|(at, fingerprint, story)| {
                    Some(LeadSketch {
                        story: story.to_string(),
                        first_seen: DateTime::from_timestamp_millis(i64::try_from(at).ok()?)?,
                        fingerprint,
                        sketch: decode_sketch(&value)?,
                    })
                });
                if lead.is_none() {
                    tracing::warn!(tree = STORY_SKETCHES, key = %show_key(&key), "Skipped a corrupt record.");
                }
                lead.map(Ok)
            })
    }

    /// The sketches stored for stories first seen at `first_seen` (to the millisecond)
    /// with this fingerprint, with their story ids: normally one story, or none when
    /// it has no sketch.
    pub fn story_sketches(
        &self,
        first_seen: DateTime<Utc>,
        fingerprint: u64,
    ) -> Result<Vec<(String, Vec<u32>)>, StoreError> {
        let mut out = Vec::new();
        self.batched_sketches_of(first_seen, |entry| {
            if entry.fingerprint == fingerprint {
                if let Some(sketch) = decode_sketch(entry.sketch) {
                    out.push((entry.story.to_string(), sketch));
                }
            }
        })?;
        let prefix = sketch_key(first_seen, fingerprint, "");
        for entry in self.story_sketches.scan_prefix(&prefix) {
            let (key, value) = entry.map_err(|cause| StoreError::Db {
                op: "reading tree story_sketches",
                cause,
            })?;
            let story = std::str::from_utf8(&key[prefix.len()..]).ok();
            match (story, decode_sketch(&value)) {
                (Some(story), Some(sketch)) => out.push((story.to_string(), sketch)),
                _ => {
                    tracing::warn!(tree = STORY_SKETCHES, key = %show_key(&key), "Skipped a corrupt record.")
                }
            }
        }
        Ok(out)
    }

    /// Calls `each` with every entry of the `lead_sketches` records of the
    /// millisecond `first_seen` (normally one record: a feed poll's).
    fn batched_sketches_of(
        &self,
        first_seen: DateTime<Utc>,
        mut each: impl FnMut(codec::SketchEntry<'_>),
    ) -> Result<(), StoreError> {
        for entry in self.lead_sketches.range(batch_keys_of(millis(first_seen))) {
            let (key, value) = entry.map_err(|cause| StoreError::Db {
                op: "reading tree lead_sketches",
                cause,
            })?;
            match codec::decode_sketches(&value) {
                Ok(entries) => entries.into_iter().for_each(&mut each),
                Err(error) => {
                    tracing::warn!(tree = LEAD_SKETCHES, key = %show_key(&key), error, "Skipped a corrupt record.")
                }
            }
        }
        Ok(())
    }

    /// The sketch stored for `story` under its first-seen time and fingerprint.
    pub fn story_sketch(&self, story: &StoredStory) -> Result<Option<Vec<u32>>, StoreError> {
        let mut found = None;
        self.batched_sketches_of(story.first_seen, |entry| {
            if found.is_none() && entry.fingerprint == story.fingerprint && entry.story == story.id
            {
                found = decode_sketch(entry.sketch);
            }
        })?;
        if found.is_some() {
            return Ok(found);
        }
        let key = sketch_key(story.first_seen, story.fingerprint, &story.id);
        let value = self
            .story_sketches
            .get(&key)
            .map_err(|cause| StoreError::Db {
                op: "reading tree story_sketches",
                cause,
            })?;
        Ok(value.and_then(|value| {
            let sketch = decode_sketch(&value);
            if sketch.is_none() {
                tracing::warn!(tree = STORY_SKETCHES, key = %show_key(&key), "Skipped a corrupt record.");
            }
            sketch
        }))
    }

    /// Stores `story`'s sketch under its first-seen time and fingerprint: for stories
    /// stored without one (by an older build, or whose lead changed), so that
    /// [`SledStore::story_sketch`] and [`SledStore::story_sketches`] find it from then on.
    pub fn put_story_sketch(&self, story: &StoredStory, sketch: &[u32]) -> Result<(), StoreError> {
        let _writing = self.write_gate();
        self.write_sketches(&[LeadSketch {
            story: story.id.clone(),
            first_seen: story.first_seen,
            fingerprint: story.fingerprint,
            sketch: sketch.to_vec(),
        }])
    }
}

/// The trees a story update touches, inside the item transaction.
pub(super) struct StoryTrees<'a> {
    pub(super) items: &'a TransactionalTree,
    pub(super) seen: &'a TransactionalTree,
    pub(super) stories: &'a TransactionalTree,
    pub(super) stories_by_time: &'a TransactionalTree,
    /// Items this transaction has stored so far.
    pub(super) accepted: &'a [&'a StoredItem],
}

/// A story as [`attach_to_story`] left it. `stored` is false for a story of one
/// item, its lead, which has no record of its own (see [`SledStore::get_story`]).
pub(super) struct Attached {
    pub(super) story: StoredStory,
    pub(super) stored: bool,
}

/// Creates, claims or extends the story of a newly stored item, and returns it.
///
/// Most stories never get a second copy, and most never alert: a story of one item
/// is not written (its lead's record says all of it), which saved two of the seven
/// keys an item cost (docs/store.md). Its record is written when a copy joins it
/// (here) or when it alerts (by the caller, which then writes it).
pub(super) fn attach_to_story(trees: &StoryTrees<'_>, item: &StoredItem) -> TxResult<Attached> {
    let key = item.story.as_bytes();
    let existing = match trees.stories.get(key)? {
        Some(bytes) => match codec::decode::<StoredStory>(&bytes) {
            Ok(story) => Some(story),
            Err(err) => {
                // Unreadable either way; a fresh record keeps the new copies grouped.
                tracing::warn!(tree = STORIES, key = %show_key(key), error = %err, "Replacing a corrupt record.");
                None
            }
        },
        None => None,
    };
    let story = match existing {
        Some(mut story) if item.is_story_lead => {
            // Copies arrived first (out of order within a batch): the lead takes the
            // story over and the copy that stood in for it becomes a related one.
            if story.first_item != item.id {
                if let Some(previous) = read_item(trees, &story.first_item)? {
                    if !story.related.iter().any(|r| r.item_id == previous.id) {
                        story.related.insert(0, related(&previous));
                    }
                }
                story.first_item = item.id.clone();
            }
            story.related.retain(|r| r.item_id != item.id);
            story.fingerprint = item.fingerprint;
            if item.fetched < story.first_seen {
                trees
                    .stories_by_time
                    .remove(time_key(millis(story.first_seen), key))?;
                story.first_seen = item.fetched;
                trees
                    .stories_by_time
                    .insert(time_key(millis(story.first_seen), key), EMPTY)?;
            }
            story
        }
        Some(mut story) => {
            if story.first_item != item.id && !story.related.iter().any(|r| r.item_id == item.id) {
                story.related.push(related(item));
            }
            story
        }
        None if item.is_story_lead => {
            return Ok(Attached {
                story: story_of_lead(item),
                stored: false,
            });
        }
        None => {
            // The first copy to join a story of one item: the story gets its record,
            // from what the lead's `seen` entry says of it, or else from the lead.
            let lead = trees.seen.get(key)?.and_then(|seen| seen_lead(&seen));
            let mut story = match lead {
                Some((fingerprint, fetched)) => {
                    let mut story = StoredStory {
                        id: item.story.clone(),
                        first_item: item.story.clone(),
                        first_seen: fetched,
                        fingerprint,
                        related: Vec::new(),
                        alerted: Vec::new(),
                    };
                    story.related.push(related(item));
                    story
                }
                None => story_from_stored_lead(trees, item)?,
            };
            story.id = item.story.clone();
            trees
                .stories_by_time
                .insert(time_key(millis(story.first_seen), key), EMPTY)?;
            story
        }
    };
    let record = encode(STORIES, &story.id, &story).map_err(ConflictableTransactionError::Abort)?;
    trees.stories.insert(key, record)?;
    Ok(Attached {
        story,
        stored: true,
    })
}

/// The story a copy joins, built from its lead's stored record (a lead stored by
/// schema 4 or earlier, whose `seen` entry says nothing of it).
fn story_from_stored_lead(
    trees: &StoryTrees<'_>,
    item: &StoredItem,
) -> Result<StoredStory, UnabortableTransactionError> {
    Ok(match read_item(trees, &item.story)? {
        Some(lead) if lead.is_story_lead && lead.story == item.story => {
            let mut story = story_of_lead(&lead);
            story.related.push(related(item));
            story
        }
        _ => {
            // The lead was pruned or never stored: the copy stands in for it.
            tracing::warn!(story = %item.story, item = %item.id, "Started a story from a copy; its lead is not stored.");
            story_of_lead(item)
        }
    })
}

/// The story of one item, as its lead says it: what a story without a record is.
pub(super) fn story_of_lead(lead: &StoredItem) -> StoredStory {
    StoredStory {
        id: lead.story.clone(),
        first_item: lead.id.clone(),
        first_seen: lead.fetched,
        fingerprint: lead.fingerprint,
        related: Vec::new(),
        alerted: Vec::new(),
    }
}

/// An item by id inside the item transaction: one stored by this transaction (its
/// record is written at the end of it), or one stored before.
pub(super) fn read_item(
    trees: &StoryTrees<'_>,
    id: &str,
) -> Result<Option<StoredItem>, UnabortableTransactionError> {
    if let Some(item) = trees.accepted.iter().find(|item| item.id == id) {
        return Ok(Some((*item).clone()));
    }
    let Some(key) = trees
        .seen
        .get(id)?
        .and_then(|seen| item_record_key(&seen, id.as_bytes()))
    else {
        return Ok(None);
    };
    Ok(trees
        .items
        .get(key)?
        .and_then(|bytes| codec::decode_items(&bytes).ok())
        .and_then(|items| items.into_iter().find(|item| item.id == id)))
}

pub(super) fn related(item: &StoredItem) -> Related {
    Related {
        item_id: item.id.clone(),
        feed: item.feed.clone(),
        url: item.url.clone(),
        title: item.title.clone(),
    }
}
