//! Pruning: bounded passes in time order that remove items past the history period
//! (topic-matched ones after the retention), seen ids past the retention, and stories
//! and sketches past the history, each pass going on where the last stopped.

use super::*;

/// An items record to remove: its key, its topic index keys, how many items it holds.
type Removal<'a> = (&'a [u8], Vec<Vec<u8>>, usize);
/// A `seen_by_time` entry past the retention and the ids it holds.
type ExpiredSeen = (sled::IVec, Vec<String>);

/// `by_time` keys of expired item records, with how many items each holds.
type ExpiredRecords = Vec<(sled::IVec, usize)>;

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
        let _writing = self.write_gate();
        let keep_all = history.max(retention);
        let history_cut = cutoff(now, history);
        let matched_cut = cutoff(now, keep_all);
        let mut report = PruneReport {
            done: true,
            ..PruneReport::default()
        };

        let (expired, scanned_to) =
            self.expired_items(history_cut, matched_cut, max, &mut report)?;
        let taken: usize = expired.iter().map(|(_, items)| items).sum();
        report.items = self.remove_items(&expired)?;
        // Only once they are gone: a failed removal leaves them for the next pass.
        if let Some(at) = scanned_to {
            self.prune_scanned.store(at, Ordering::Relaxed);
        }
        // Saturating: a record removed while the counter was being set at open
        // must not wrap it.
        let _ = self
            .item_count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(report.items))
            });

        let budget = max.saturating_sub(taken);
        let (expired, ids) = self.expired_seen(matched_cut, budget, &mut report)?;
        report.seen = self.remove_seen(&expired)?;
        // An item's version goes with its seen id (after it: a version left by a crash
        // in between is of an id never seen again, and read by no one).
        for id in expired.iter().flat_map(|(_, ids)| ids) {
            self.item_versions
                .remove(id.as_bytes())
                .map_err(|cause| StoreError::Db {
                    op: "pruning tree item_versions",
                    cause,
                })?;
        }

        let budget = budget.saturating_sub(ids);
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

        self.remove_story_steps(&expired)?;

        let budget = budget - expired.len();
        let expired = self.expired_keys(
            &self.story_sketches,
            "reading tree story_sketches",
            history_cut,
            budget,
            &mut report,
        )?;
        let budget = budget - expired.len();
        let expired_batches = self.expired_keys(
            &self.lead_sketches,
            "reading tree lead_sketches",
            history_cut,
            budget,
            &mut report,
        )?;
        for (tree, keys) in [
            (&self.story_sketches, expired),
            (&self.lead_sketches, expired_batches),
        ] {
            let mut batch = sled::Batch::default();
            for key in keys {
                batch.remove(key);
            }
            tree.apply_batch(batch).map_err(|cause| StoreError::Db {
                op: "pruning expired records",
                cause,
            })?;
        }
        Ok(report)
    }

    /// `by_time` keys of expired records with how many items each holds, at most
    /// `max` items (and at least one record): every record fetched before
    /// `matched_cut`, and those without a topic fetched before `history_cut`. With
    /// them, how far the pass has looked, for `prune_scanned` once they are removed.
    ///
    /// Items on a topic are kept for the retention, weeks after the plain items
    /// around them are gone (they are stored in records of their own for this), so a
    /// pass that stepped over them all every time would read more the longer the
    /// daemon runs. Passes remember how far they have looked (`prune_scanned`) and go
    /// on from there. Items are stored with their fetch time, so none is added behind
    /// that point while the store is open; one stored with an older time (a clock set
    /// back) waits for the next start.
    fn expired_items(
        &self,
        history_cut: u64,
        matched_cut: u64,
        max: usize,
        report: &mut PruneReport,
    ) -> Result<(ExpiredRecords, Option<u64>), StoreError> {
        let read = |entry: sled::Result<(sled::IVec, sled::IVec)>| {
            entry.map_err(|cause| StoreError::Db {
                op: "reading tree by_time",
                cause,
            })
        };
        let mut expired: Vec<(sled::IVec, usize)> = Vec::new();
        let mut taken = 0usize;
        // Past the retention every item goes, topic or not.
        for entry in self.by_time.range(..time_key(matched_cut, b"")) {
            let (key, value) = read(entry)?;
            report.scanned += 1;
            let (_, items) = read_by_time(&value);
            if taken + items > max && !expired.is_empty() || taken >= max {
                report.done = false;
                return Ok((expired, None));
            }
            taken += items;
            expired.push((key, items));
        }
        let from = self.prune_scanned.load(Ordering::Relaxed).max(matched_cut);
        if from >= history_cut {
            return Ok((expired, None));
        }
        for entry in self
            .by_time
            .range(time_key(from, b"")..time_key(history_cut, b""))
        {
            let (key, value) = read(entry)?;
            report.scanned += 1;
            // A malformed key sorts somewhere arbitrary; it is garbage and goes too.
            let at = split_time_key(&key).map_or(0, |(at, _)| at);
            // Items that matched a topic stay for the retention period. They are
            // skipped by their flag, without decoding their records.
            let (matched, items) = read_by_time(&value);
            if matched && at >= matched_cut {
                continue;
            }
            if taken + items > max && !expired.is_empty() || taken >= max {
                report.done = false;
                // Everything before `at` is expired (and in `expired`) or kept.
                return Ok((expired, Some(at.max(from))));
            }
            taken += items;
            expired.push((key, items));
        }
        Ok((expired, Some(history_cut)))
    }

    /// Removes item records by their `by_time` keys, with their topic index entries;
    /// returns how many items went.
    fn remove_items(&self, records: &[(sled::IVec, usize)]) -> Result<usize, StoreError> {
        if records.is_empty() {
            return Ok(0);
        }
        #[cfg(test)]
        if self.fail_item_removals.load(Ordering::Relaxed) {
            return Err(StoreError::Db {
                op: "pruning items",
                cause: sled::Error::Io(std::io::Error::other("injected: no space left")),
            });
        }
        // The topic index keys come from the records, read before the transaction.
        let mut plan: Vec<Removal<'_>> = Vec::with_capacity(records.len());
        for (key, counted) in records {
            let Some((at, _)) = split_time_key(key) else {
                plan.push((key.as_ref(), Vec::new(), *counted));
                continue;
            };
            let record = self.items.get(key).map_err(|cause| StoreError::Db {
                op: "reading tree items",
                cause,
            })?;
            let (topic_keys, items) = match record.as_deref().map(codec::decode_items) {
                Some(Ok(items)) => (
                    items
                        .iter()
                        .flat_map(|item| {
                            item.topics
                                .iter()
                                .map(move |t| topic_key(&t.id, at, item.id.as_bytes()))
                        })
                        .collect(),
                    items.len(),
                ),
                Some(Err(err)) => {
                    // Its topic index entries cannot be found; listings skip them
                    // because the item is gone.
                    tracing::warn!(tree = ITEMS, key = %show_key(key), error = %err, "Pruning a corrupt record.");
                    (Vec::new(), *counted)
                }
                None => (Vec::new(), *counted),
            };
            plan.push((key.as_ref(), topic_keys, items));
        }
        let result = (&self.items, &self.by_time, &self.topic_index, &self.meta).transaction(
            |(items, by_time, topic_index, meta)| {
                let mut removed = 0u64;
                for (key, topic_keys, count) in &plan {
                    // Records are keyed like their `by_time` entry, so an item stored
                    // again later (its seen id had expired) is in a record of its own.
                    items.remove(*key)?;
                    for topic_key in topic_keys {
                        topic_index.remove(topic_key.as_slice())?;
                    }
                    if by_time.remove(*key)?.is_some() {
                        removed += *count as u64;
                    }
                }
                let kept = read_u64(meta.get(STORED_KEY)?.as_deref());
                meta.insert(STORED_KEY, &kept.saturating_sub(removed).to_be_bytes()[..])?;
                Ok::<_, ConflictableTransactionError<StoreError>>(removed)
            },
        );
        let removed = result.map_err(|err| tx_error(err, "pruning items"))?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    /// `seen_by_time` entries older than the retention, with the ids they hold, at
    /// most `max` ids (and at least one entry); returns them and the ids counted.
    /// An entry of schema 4 holds the ids of one items record; an older one is keyed
    /// by its one id.
    fn expired_seen(
        &self,
        cut: u64,
        max: usize,
        report: &mut PruneReport,
    ) -> Result<(Vec<ExpiredSeen>, usize), StoreError> {
        let mut expired = Vec::new();
        let mut taken = 0usize;
        for entry in self.seen_by_time.range(..time_key(cut, b"")) {
            let (key, value) = entry.map_err(|cause| StoreError::Db {
                op: "reading tree seen_by_time",
                cause,
            })?;
            let ids: Vec<String> = if is_batch_key(&key) {
                postcard::from_bytes::<Vec<String>>(&value).unwrap_or_else(|err| {
                    tracing::warn!(tree = SEEN_BY_TIME, key = %show_key(&key), error = %err, "Pruning a corrupt record.");
                    Vec::new()
                })
            } else {
                split_time_key(&key)
                    .and_then(|(_, id)| std::str::from_utf8(id).ok())
                    .map(|id| vec![id.to_string()])
                    .unwrap_or_default()
            };
            let count = ids.len().max(1);
            if taken + count > max && !expired.is_empty() || taken >= max {
                report.done = false;
                break;
            }
            taken += count;
            expired.push((key, ids));
        }
        Ok((expired, taken))
    }

    /// Removes expired seen ids, unless an id was stored again since (its `seen`
    /// entry then points at a newer record), and their `seen_by_time` entries.
    fn remove_seen(&self, expired: &[ExpiredSeen]) -> Result<usize, StoreError> {
        if expired.is_empty() {
            return Ok(0);
        }
        let result = (&self.seen, &self.seen_by_time).transaction(|(seen, seen_by_time)| {
            let mut removed = 0;
            for (key, ids) in expired {
                let at = split_time_key(key).map(|(at, _)| at);
                for id in ids {
                    let Some(value) = seen.get(id.as_bytes())? else {
                        continue;
                    };
                    let current = if let Some(record) = seen_record(&value) {
                        record == key.as_ref()
                    } else {
                        decode_millis(&value).is_none_or(|t| Some(t) == at)
                    };
                    if current {
                        seen.remove(id.as_bytes())?;
                        removed += 1;
                    }
                }
                seen_by_time.remove(key)?;
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(removed)
        });
        result.map_err(|err| tx_error(err, "pruning expired seen ids"))
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
    /// The `story_steps` entries of pruned stories (keyed as `stories_by_time`). Not in
    /// the stories' transaction: an entry left by a crash between the two is never read
    /// again (no story gets a pruned story's id back before its seen id expires).
    fn remove_story_steps(&self, keys: &[sled::IVec]) -> Result<(), StoreError> {
        for key in keys {
            let Some((_, id)) = split_time_key(key) else {
                continue;
            };
            let mut prefix = id.to_vec();
            prefix.push(0);
            for entry in self.story_steps.scan_prefix(&prefix).keys() {
                let entry = entry.map_err(|cause| StoreError::Db {
                    op: "reading tree story_steps",
                    cause,
                })?;
                self.story_steps
                    .remove(entry)
                    .map_err(|cause| StoreError::Db {
                        op: "pruning tree story_steps",
                        cause,
                    })?;
            }
        }
        Ok(())
    }

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
