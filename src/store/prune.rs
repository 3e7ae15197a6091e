//! Pruning: bounded passes in time order that remove items past the history period
//! (topic-matched ones after the retention), seen ids past the retention, and stories
//! and sketches past the history, each pass going on where the last stopped.

use super::*;

impl SledStore {
    /// One bounded pruning pass: at most `max` removals.
    ///
    /// Items fetched before `now - history` go, with their index entries, unless they
    /// matched a topic: those are kept until `now - retention` (or history, if that is
    /// longer). Seen ids and stories are kept for the longer of the two, so a seen id
    /// never expires before its item. Story sketches go after the history period; they
    /// count against `max` but are not in the report.
    pub fn prune(
        &self,
        now: DateTime<Utc>,
        history: Duration,
        retention: Duration,
        max: usize,
    ) -> Result<PruneReport, StoreError> {
        let keep_all = history.max(retention);
        let history_cut = cutoff(now, history);
        let matched_cut = cutoff(now, keep_all);
        let mut report = PruneReport {
            done: true,
            ..PruneReport::default()
        };

        let expired = self.expired_items(history_cut, matched_cut, max, &mut report)?;
        report.items = self.remove_items(&expired)?;
        // Saturating: a record removed while the counter was being set at open
        // must not wrap it.
        let _ = self
            .item_count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(report.items))
            });

        let budget = max - expired.len();
        let expired = self.expired_keys(
            &self.seen_by_time,
            "reading tree seen_by_time",
            matched_cut,
            budget,
            &mut report,
        )?;
        report.seen = self.remove_timed(
            &self.seen,
            &self.seen_by_time,
            SEEN,
            &expired,
            decode_millis,
        )?;

        let budget = budget - expired.len();
        let expired = self.expired_keys(
            &self.stories_by_time,
            "reading tree stories_by_time",
            matched_cut,
            budget,
            &mut report,
        )?;
        report.stories = self.remove_timed(
            &self.stories,
            &self.stories_by_time,
            STORIES,
            &expired,
            |v| {
                codec::decode::<StoredStory>(v)
                    .ok()
                    .map(|s| millis(s.first_seen))
            },
        )?;

        let budget = budget - expired.len();
        let expired = self.expired_keys(
            &self.story_sketches,
            "reading tree story_sketches",
            history_cut,
            budget,
            &mut report,
        )?;
        let mut batch = sled::Batch::default();
        for key in expired {
            batch.remove(key);
        }
        self.story_sketches
            .apply_batch(batch)
            .map_err(|cause| StoreError::Db {
                op: "pruning expired records",
                cause,
            })?;
        Ok(report)
    }

    /// `by_time` keys of expired items, at most `max`: every item fetched before
    /// `matched_cut`, and those without a topic fetched before `history_cut`.
    ///
    /// Items on a topic are kept for the retention, weeks after the plain items
    /// around them are gone, so a pass that stepped over them all every time would
    /// read more the longer the daemon runs. Passes remember how far they have
    /// looked (`prune_scanned`) and go on from there. Items are stored with their
    /// fetch time, so none is added behind that point while the store is open; one
    /// stored with an older time (a clock set back) waits for the next start.
    fn expired_items(
        &self,
        history_cut: u64,
        matched_cut: u64,
        max: usize,
        report: &mut PruneReport,
    ) -> Result<Vec<sled::IVec>, StoreError> {
        let read = |entry: sled::Result<(sled::IVec, sled::IVec)>| {
            entry.map_err(|cause| StoreError::Db {
                op: "reading tree by_time",
                cause,
            })
        };
        let mut expired = Vec::new();
        // Past the retention every item goes, topic or not.
        for entry in self.by_time.range(..time_key(matched_cut, b"")) {
            let (key, _) = read(entry)?;
            report.scanned += 1;
            if expired.len() >= max {
                report.done = false;
                return Ok(expired);
            }
            expired.push(key);
        }
        let from = self.prune_scanned.load(Ordering::Relaxed).max(matched_cut);
        if from >= history_cut {
            return Ok(expired);
        }
        for entry in self
            .by_time
            .range(time_key(from, b"")..time_key(history_cut, b""))
        {
            let (key, flag) = read(entry)?;
            report.scanned += 1;
            // A malformed key sorts somewhere arbitrary; it is garbage and goes too.
            let at = split_time_key(&key).map_or(0, |(at, _)| at);
            // Items that matched a topic stay for the retention period. They are
            // skipped by their flag, without decoding their records.
            if !flag.is_empty() && at >= matched_cut {
                continue;
            }
            if expired.len() >= max {
                report.done = false;
                // Everything before `at` is expired (and in `expired`) or kept.
                self.prune_scanned.store(at.max(from), Ordering::Relaxed);
                return Ok(expired);
            }
            expired.push(key);
        }
        self.prune_scanned.store(history_cut, Ordering::Relaxed);
        Ok(expired)
    }

    /// Removes items by their `by_time` keys, with their topic index entries.
    fn remove_items(&self, by_time_keys: &[sled::IVec]) -> Result<usize, StoreError> {
        if by_time_keys.is_empty() {
            return Ok(0);
        }
        // The topic index keys come from the records, read before the transaction.
        let mut plan: Vec<(&[u8], Vec<Vec<u8>>)> = Vec::with_capacity(by_time_keys.len());
        for key in by_time_keys {
            let Some((at, id)) = split_time_key(key) else {
                plan.push((key.as_ref(), Vec::new()));
                continue;
            };
            let record = self.items.get(key).map_err(|cause| StoreError::Db {
                op: "reading tree items",
                cause,
            })?;
            let topic_keys = match record.as_deref().map(codec::decode::<StoredItem>) {
                Some(Ok(item)) => item
                    .topics
                    .iter()
                    .map(|t| topic_key(&t.id, at, id))
                    .collect(),
                Some(Err(err)) => {
                    // Its topic index entries cannot be found; listings skip them
                    // because the item is gone.
                    tracing::warn!(tree = ITEMS, key = %show_key(id), error = %err, "Pruning a corrupt record.");
                    Vec::new()
                }
                None => Vec::new(),
            };
            plan.push((key.as_ref(), topic_keys));
        }
        let result = (&self.items, &self.by_time, &self.topic_index, &self.meta).transaction(
            |(items, by_time, topic_index, meta)| {
                let mut removed = 0u64;
                for (key, topic_keys) in &plan {
                    // Items are keyed like their `by_time` entry, so a record stored
                    // again later (its seen id had expired) has a key of its own.
                    items.remove(*key)?;
                    for topic_key in topic_keys {
                        topic_index.remove(topic_key.as_slice())?;
                    }
                    if by_time.remove(*key)?.is_some() {
                        removed += 1;
                    }
                }
                let count = read_u64(meta.get(STORED_KEY)?.as_deref());
                meta.insert(STORED_KEY, &count.saturating_sub(removed).to_be_bytes()[..])?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            },
        );
        result.map_err(|err| tx_error(err, "pruning items"))?;
        Ok(plan.len())
    }

    /// Oldest first: keys of a time index older than `cut`, at most `max`.
    fn expired_keys(
        &self,
        index: &Tree,
        op: &'static str,
        cut: u64,
        max: usize,
        report: &mut PruneReport,
    ) -> Result<Vec<sled::IVec>, StoreError> {
        let mut expired = Vec::new();
        for entry in index.range(..time_key(cut, b"")) {
            let (key, _) = entry.map_err(|cause| StoreError::Db { op, cause })?;
            if expired.len() >= max {
                report.done = false;
                break;
            }
            expired.push(key);
        }
        Ok(expired)
    }

    /// Removes time index entries and the records they point at, unless the record
    /// has moved on to a newer time (`time_of` reads a record's time; a record it
    /// cannot read is removed).
    fn remove_timed(
        &self,
        records: &Tree,
        index: &Tree,
        records_name: &'static str,
        keys: &[sled::IVec],
        time_of: impl Fn(&[u8]) -> Option<u64>,
    ) -> Result<usize, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let result = (records, index).transaction(|(records, index)| {
            let mut removed = 0;
            for key in keys {
                if let Some((at, id)) = split_time_key(key) {
                    if let Some(value) = records.get(id)? {
                        let current = time_of(&value);
                        if current.is_none_or(|t| t == at) {
                            if current.is_none() {
                                tracing::warn!(tree = records_name, key = %show_key(id), "Pruning a corrupt record.");
                            }
                            records.remove(id)?;
                            removed += 1;
                        }
                    }
                }
                index.remove(key)?;
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(removed)
        });
        result.map_err(|err| tx_error(err, "pruning expired records"))
    }
}
