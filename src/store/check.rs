//! `newswatch store check` and `newswatch store backup`: reading every record of a
//! store to see that it decodes and that the indexes and the records agree, and
//! copying a store, tree by tree, into a new directory.
//!
//! A check needs the store to itself (sled lets one process open it): stop the daemon
//! or check a backup. A backup also runs inside a running daemon (the API asks for
//! it); it is consistent because it holds the write gate alone while it copies, so
//! no write starts or is under way meanwhile (docs/store.md, "Damage and recovery").

use std::collections::BTreeMap;
use std::path::Path;

use super::{
    codec, read_u64, split_time_key, AlertStatus, SledStore, StoreError, StoredStory, BY_TIME,
    FEEDS, FLUSHED_FILE, ITEMS, LEAD_SKETCHES, OUTBOX, OUTBOX_DUE, SEEN, STORED_KEY, STORIES,
    TOPIC_INDEX, WRITTEN_KEY,
};

/// How many examples of one kind of problem a report keeps; the count is always whole.
const EXAMPLES: usize = 5;

/// What [`SledStore::check`] found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CheckReport {
    /// Entries read, by tree.
    pub entries: BTreeMap<String, usize>,
    /// Problems by kind: how many, and the first few keys or details.
    pub problems: BTreeMap<&'static str, (usize, Vec<String>)>,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// Problems found, all kinds together.
    pub fn problem_count(&self) -> usize {
        self.problems.values().map(|(n, _)| n).sum()
    }

    fn problem(&mut self, kind: &'static str, detail: impl FnOnce() -> String) {
        let (count, examples) = self.problems.entry(kind).or_default();
        *count += 1;
        if examples.len() < EXAMPLES {
            examples.push(detail());
        }
    }
}

/// What [`SledStore::backup`] copied.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BackupReport {
    pub trees: usize,
    pub entries: usize,
}

impl SledStore {
    /// Reads every record and index entry: records that do not decode, index entries
    /// without their record, records without their index entries, and a kept item
    /// count that differs from the items there are. Read errors of sled itself are
    /// errors; everything else is a problem in the report.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        let mut report = CheckReport::default();

        let mut items = 0usize;
        for entry in self.items.iter() {
            let (key, value) = entry.map_err(db_error("reading tree items"))?;
            items += 1;
            if split_time_key(&key).is_none() {
                report.problem("item key without a time", || super::show_key(&key));
                continue;
            }
            match codec::decode_items(&value) {
                Err(reason) => report.problem("item record that does not decode", || {
                    format!("{}: {reason}", super::show_key(&key))
                }),
                Ok(stored) => {
                    for item in &stored {
                        // Its `seen` entry must lead back to this record.
                        let seen = self
                            .seen
                            .get(item.id.as_bytes())
                            .map_err(db_error("reading tree seen"))?;
                        let back =
                            seen.and_then(|seen| super::item_record_key(&seen, item.id.as_bytes()));
                        if back.as_deref() != Some(key.as_ref()) {
                            report.problem("item without its seen entry", || item.id.clone());
                        }
                    }
                }
            }
            if !self
                .by_time
                .contains_key(&key)
                .map_err(db_error("reading tree by_time"))?
            {
                report.problem("item without its by_time entry", || super::show_key(&key));
            }
        }
        report.entries.insert(ITEMS.into(), items);

        // Items counted by their `by_time` entries, which say how many each record has.
        let mut by_time = 0u64;
        let mut counted = 0u64;
        for entry in self.by_time.iter() {
            let (key, value) = entry.map_err(db_error("reading tree by_time"))?;
            by_time += 1;
            counted += super::read_by_time(&value).1 as u64;
            if !self
                .items
                .contains_key(&key)
                .map_err(db_error("reading tree items"))?
            {
                report.problem("by_time entry without its item", || super::show_key(&key));
            }
        }
        report.entries.insert(BY_TIME.into(), by_time as usize);

        let mut topics = 0usize;
        for entry in self.topic_index.iter() {
            let (key, _) = entry.map_err(db_error("reading tree topic_index"))?;
            topics += 1;
            let id = key
                .iter()
                .position(|&b| b == 0)
                .and_then(|at| split_time_key(&key[at + 1..]))
                .map(|(_, id)| id);
            let record = match id {
                Some(id) => self
                    .seen
                    .get(id)
                    .map_err(db_error("reading tree seen"))?
                    .and_then(|seen| super::item_record_key(&seen, id)),
                None => None,
            };
            let found = match record {
                Some(record) => self
                    .items
                    .contains_key(record)
                    .map_err(db_error("reading tree items"))?,
                None => false,
            };
            if !found {
                report.problem("topic index entry without its item", || {
                    super::show_key(&key)
                });
            }
        }
        report.entries.insert(TOPIC_INDEX.into(), topics);

        report.entries.insert(SEEN.into(), self.seen.len());
        let stories = SledStore::decode_all::<StoredStory>(
            &self.stories,
            "story record that does not decode",
            &mut report,
        )?;
        report.entries.insert(STORIES.into(), stories);
        let mut sketches = 0usize;
        for entry in self.lead_sketches.iter() {
            let (key, value) = entry.map_err(db_error("reading tree lead_sketches"))?;
            sketches += 1;
            if split_time_key(&key).is_none() {
                report.problem("sketch record key without a time", || super::show_key(&key));
            } else if let Err(reason) = codec::decode_sketches(&value) {
                report.problem("sketch record that does not decode", || {
                    format!("{}: {reason}", super::show_key(&key))
                });
            }
        }
        report.entries.insert(LEAD_SKETCHES.into(), sketches);
        let mut feeds = 0usize;
        for entry in self.feeds.iter() {
            let (key, value) = entry.map_err(db_error("reading a tree to check it"))?;
            feeds += 1;
            if let Err(reason) = codec::decode_feed(&value) {
                report.problem("feed state that does not decode", || {
                    format!("{}: {reason}", super::show_key(&key))
                });
            }
        }
        report.entries.insert(FEEDS.into(), feeds);

        let mut outbox = 0usize;
        for entry in self.outbox.iter() {
            let (key, value) = entry.map_err(db_error("reading tree outbox"))?;
            outbox += 1;
            match codec::decode_alert(&value) {
                Ok(alert) if alert.status == AlertStatus::Pending => {
                    if !self
                        .outbox_due
                        .contains_key(super::due_key(&alert))
                        .map_err(db_error("reading tree outbox_due"))?
                    {
                        report.problem("pending alert without its due entry", || {
                            super::show_key(&key)
                        });
                    }
                }
                Ok(_) => {}
                Err(reason) => report.problem("alert record that does not decode", || {
                    format!("{}: {reason}", super::show_key(&key))
                }),
            }
        }
        report.entries.insert(OUTBOX.into(), outbox);
        report
            .entries
            .insert(OUTBOX_DUE.into(), self.outbox_due.len());

        let kept = self
            .meta
            .get(STORED_KEY)
            .map_err(db_error("reading tree meta"))?;
        if let Some(kept) = kept {
            let kept = read_u64(Some(&kept));
            if kept != counted {
                report.problem("kept item count differs from the items there are", || {
                    format!("kept {kept}, counted {counted}")
                });
            }
        }
        Ok(report)
    }

    /// Decodes every record of `tree`; each that does not is a problem of `kind`.
    fn decode_all<T: serde::de::DeserializeOwned>(
        tree: &sled::Tree,
        kind: &'static str,
        report: &mut CheckReport,
    ) -> Result<usize, StoreError> {
        let mut count = 0;
        for entry in tree.iter() {
            let (key, value) = entry.map_err(db_error("reading a tree to check it"))?;
            count += 1;
            if let Err(reason) = codec::decode::<T>(&value) {
                report.problem(kind, || format!("{}: {reason}", super::show_key(&key)));
            }
        }
        Ok(count)
    }

    /// Copies every tree into a new store at `to`, which must not exist or be an empty
    /// directory, and flushes it; returns the copy, open (sled releases a directory's
    /// lock some time after its last handle drops, so opening it again at once could
    /// find it locked). Writes wait while the trees are copied, so the copy is of one
    /// moment even while a daemon works on the store.
    pub fn backup(&self, to: &Path) -> Result<(BackupReport, SledStore), StoreError> {
        let refuse = |reason: String| StoreError::Backup {
            path: to.to_path_buf(),
            reason,
        };
        if let Ok(mut entries) = std::fs::read_dir(to) {
            if entries.next().is_some() {
                return Err(refuse("it exists and is not empty".into()));
            }
        } else if to.exists() {
            return Err(refuse("it exists and is not a directory".into()));
        }
        let copy = sled::Config::new()
            .path(to)
            .cache_capacity(super::CACHE_CAPACITY)
            .open()
            .map_err(|cause| refuse(format!("creating it: {cause}")))?;
        let mut report = BackupReport::default();
        // No write starts or is under way while the trees are copied: the copy is the
        // store as of one moment, though a daemon has it open.
        let _alone = self
            .writes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for name in self.db.tree_names() {
            let from = self
                .db
                .open_tree(&name)
                .map_err(db_error("opening a tree to back it up"))?;
            let into = copy
                .open_tree(&name)
                .map_err(|cause| refuse(format!("creating a tree: {cause}")))?;
            let mut batch = sled::Batch::default();
            let mut in_batch = 0;
            for entry in from.iter() {
                let (key, value) = entry.map_err(db_error("reading a tree to back it up"))?;
                batch.insert(key, value);
                in_batch += 1;
                report.entries += 1;
                if in_batch == 1000 {
                    into.apply_batch(std::mem::take(&mut batch))
                        .map_err(|cause| refuse(format!("writing: {cause}")))?;
                    in_batch = 0;
                }
            }
            into.apply_batch(batch)
                .map_err(|cause| refuse(format!("writing: {cause}")))?;
            report.trees += 1;
        }
        copy.flush()
            .map_err(|cause| refuse(format!("flushing: {cause}")))?;
        let written = read_u64(
            self.meta
                .get(WRITTEN_KEY)
                .map_err(db_error("reading tree meta"))?
                .as_deref(),
        );
        if written > 0 {
            std::fs::write(to.join(FLUSHED_FILE), format!("{written}\n"))
                .map_err(|e| refuse(format!("writing {FLUSHED_FILE}: {e}")))?;
        }
        Ok((report, SledStore::from_db(copy, to)?))
    }
}

/// A sled error while doing `op`.
fn db_error(op: &'static str) -> impl Fn(sled::Error) -> StoreError {
    move |cause| StoreError::Db { op, cause }
}
