//! The alert outbox: alerts due per sink in time order, delivery attempts, listing
//! and requeueing. Alerts are written with their items (`items.rs`).

use super::*;

impl SledStore {
    /// Pending alerts of `sink` due at `now`, earliest first, at most `limit`.
    pub fn due_alerts(
        &self,
        sink: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        let prefix = sink_prefix(sink);
        let end = millis(now);
        let mut out = Vec::new();
        for entry in self.outbox_due.scan_prefix(&prefix) {
            let (key, _) = entry.map_err(|cause| StoreError::Db {
                op: "reading tree outbox_due",
                cause,
            })?;
            let Some((at, id)) = split_time_key(&key[prefix.len()..]) else {
                continue;
            };
            if at > end || out.len() >= limit {
                break;
            }
            match self.due_entry(&key, id)? {
                Due::Alert(alert) => out.push(*alert),
                Due::Stale => self.remove_stale_due(&key, id)?,
                Due::Unreadable => {}
            }
        }
        Ok(out)
    }

    /// What a due entry leads to. An entry is trusted only when its record is pending
    /// and due at the entry's time: [`SledStore::put_alert`] writes the new entry
    /// before the record and removes the old one after, so a crash between them leaves
    /// an entry the record does not match, which is stale, not a second delivery.
    fn due_entry(&self, key: &[u8], id: &[u8]) -> Result<Due, StoreError> {
        let bytes = self.outbox.get(id).map_err(|cause| StoreError::Db {
            op: "reading tree outbox",
            cause,
        })?;
        let Some(bytes) = bytes else {
            return Ok(Due::Stale);
        };
        // A damaged record is left to `store check` and stays where it is.
        let Some(alert) = codec::decode_alert_or_warn(id, &bytes) else {
            return Ok(Due::Unreadable);
        };
        if alert.status == AlertStatus::Pending && due_key(&alert) == key {
            Ok(Due::Alert(Box::new(alert)))
        } else {
            Ok(Due::Stale)
        }
    }

    /// Removes a due entry found stale, after looking again under the outbox lock: the
    /// first look may have fallen between the writes of a [`SledStore::put_alert`]
    /// (say, a failed alert retried from the API), where the new entry is already
    /// written and its record not yet.
    fn remove_stale_due(&self, key: &[u8], id: &[u8]) -> Result<(), StoreError> {
        let _writing = self.write_gate();
        let _outbox = self
            .outbox_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Due::Stale = self.due_entry(key, id)? {
            self.outbox_due
                .remove(key)
                .map_err(|cause| StoreError::Db {
                    op: "removing a stale entry of tree outbox_due",
                    cause,
                })?;
        }
        Ok(())
    }

    /// When the next pending alert of `sink` is due, if any.
    pub fn next_due(&self, sink: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let prefix = sink_prefix(sink);
        let first = self
            .outbox_due
            .scan_prefix(&prefix)
            .next()
            .transpose()
            .map_err(|cause| StoreError::Db {
                op: "reading tree outbox_due",
                cause,
            })?;
        Ok(first
            .and_then(|(key, _)| split_time_key(&key[prefix.len()..]).map(|(at, _)| at))
            .and_then(|at| DateTime::from_timestamp_millis(at as i64)))
    }

    /// Records one delivery attempt of an alert, moving it in the due index.
    pub fn record_attempt(&self, id: &str, attempt: &Attempt) -> Result<StoredAlert, StoreError> {
        let _writing = self.write_gate();
        let mut alert: StoredAlert = self.get_alert(id)?.ok_or_else(|| StoreError::Corrupt {
            tree: OUTBOX,
            key: id.to_string(),
            reason: "no such alert".into(),
        })?;
        let old_due = due_key(&alert);
        attempt.apply(&mut alert);
        self.put_alert(&alert, Some(old_due))?;
        Ok(alert)
    }

    /// Alerts, newest first, optionally of one status; at most `limit`. As with
    /// [`SledStore::items`], unreadable records are skipped and counted.
    pub fn alerts(
        &self,
        status: Option<AlertStatus>,
        limit: usize,
    ) -> Result<Listing<StoredAlert>, StoreError> {
        let mut out = Listing::default();
        for entry in self.outbox.iter() {
            let (key, value) = match entry {
                Ok(entry) => entry,
                Err(cause) => {
                    out.stop_at_damage(OUTBOX, cause, "reading tree outbox")?;
                    break;
                }
            };
            match codec::decode_alert_or_warn(&key, &value) {
                Some(alert) if status.is_none_or(|s| s == alert.status) => out.records.push(alert),
                Some(_) => {}
                None => out.skipped += 1,
            }
        }
        out.records
            .sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        out.records.truncate(limit);
        Ok(out)
    }

    pub fn get_alert(&self, id: &str) -> Result<Option<StoredAlert>, StoreError> {
        let value = self
            .outbox
            .get(id.as_bytes())
            .map_err(|cause| StoreError::Db {
                op: "reading tree outbox",
                cause,
            })?;
        value
            .map(|bytes| codec::decode_alert_at(id.as_bytes(), &bytes))
            .transpose()
    }

    /// [`Store::put_events`]: each event not in the outbox yet, with its due entry.
    pub fn put_events(&self, events: &[StoredAlert]) -> Result<usize, StoreError> {
        let _writing = self.write_gate();
        let mut new = 0;
        for event in events {
            let known = self
                .outbox
                .contains_key(event.id.as_bytes())
                .map_err(|cause| StoreError::Db {
                    op: "reading tree outbox",
                    cause,
                })?;
            if !known {
                self.put_alert(event, None)?;
                new += 1;
            }
        }
        Ok(new)
    }

    /// Puts a failed alert back in the queue, due at `now`, with its attempts reset.
    /// Returns false when it is not failed (already pending or delivered).
    pub fn retry_alert(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let _writing = self.write_gate();
        let Some(mut alert) = self.get_alert(id)? else {
            return Ok(false);
        };
        if alert.status != AlertStatus::Failed {
            return Ok(false);
        }
        alert.status = AlertStatus::Pending;
        alert.attempts = 0;
        alert.next_attempt = now;
        self.put_alert(&alert, None)?;
        Ok(true)
    }

    /// Number of pending alerts: the size of the due index, without decoding records.
    pub fn pending_alerts(&self) -> usize {
        self.outbox_due.len()
    }

    /// Writes an alert record and its due-index entry (only while pending), removing
    /// the old entry. These are single-key writes in an order that is safe at every
    /// step, not a transaction: a sled transaction writes and syncs its log twice, and
    /// with one an alert that was most of the write path's system time (BENCHMARKS.md,
    /// "Schema 5"). The new entry comes first, so a pending record always has its
    /// entry; an entry its record does not match is stale and skipped
    /// ([`SledStore::due_alerts`]).
    fn put_alert(&self, alert: &StoredAlert, old_due: Option<Vec<u8>>) -> Result<(), StoreError> {
        let record = encode(OUTBOX, &alert.id, alert)?;
        let new_due = (alert.status == AlertStatus::Pending).then(|| due_key(alert));
        let db_error = |op| move |cause| StoreError::Db { op, cause };
        let _outbox = self
            .outbox_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        #[cfg(test)]
        let allowed = self.alert_writes_allowed.load(Ordering::Relaxed);
        #[cfg(test)]
        let crash = |step: usize| {
            (step >= allowed).then(|| StoreError::Db {
                op: "updating an alert",
                cause: sled::Error::Unsupported("stopping on purpose, for a test".into()),
            })
        };
        #[cfg(test)]
        if let Some(err) = crash(0) {
            return Err(err);
        }
        if let Some(key) = &new_due {
            self.outbox_due
                .insert(key.as_slice(), EMPTY)
                .map_err(db_error("writing tree outbox_due"))?;
        }
        #[cfg(test)]
        if let Some(err) = crash(1) {
            return Err(err);
        }
        self.outbox
            .insert(alert.id.as_bytes(), record)
            .map_err(db_error("writing tree outbox"))?;
        #[cfg(test)]
        if let Some(err) = crash(2) {
            return Err(err);
        }
        if let Some(old) = old_due.filter(|old| Some(old) != new_due.as_ref()) {
            self.outbox_due
                .remove(old)
                .map_err(db_error("removing from tree outbox_due"))?;
        }
        Ok(())
    }
}

/// Where a due entry leads ([`SledStore::due_entry`]).
enum Due {
    Alert(Box<StoredAlert>),
    Stale,
    Unreadable,
}
