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
            match self.outbox.get(id) {
                Ok(Some(bytes)) => {
                    if let Some(alert) = decode_or_warn::<StoredAlert>(OUTBOX, id, &bytes) {
                        if alert.status == AlertStatus::Pending {
                            out.push(alert);
                        }
                    }
                }
                Ok(None) => {}
                Err(cause) => {
                    return Err(StoreError::Db {
                        op: "reading tree outbox",
                        cause,
                    })
                }
            }
        }
        Ok(out)
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
        let mut alert: StoredAlert =
            get_json(&self.outbox, OUTBOX, id.as_bytes())?.ok_or_else(|| StoreError::Corrupt {
                tree: OUTBOX,
                key: id.to_string(),
                reason: "no such alert".into(),
            })?;
        let old_due = due_key(&alert);
        alert.attempts += 1;
        match attempt {
            Attempt::Delivered { at } => {
                alert.status = AlertStatus::Delivered;
                alert.delivered_at = Some(*at);
                alert.last_error = None;
            }
            Attempt::Retry { next, error } => {
                alert.next_attempt = *next;
                alert.last_error = Some(error.clone());
            }
            Attempt::Failed { error } => {
                alert.status = AlertStatus::Failed;
                alert.last_error = Some(error.clone());
            }
        }
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
            match decode_or_warn::<StoredAlert>(OUTBOX, &key, &value) {
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
        get_json(&self.outbox, OUTBOX, id.as_bytes())
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
    /// the old entry, in one transaction.
    fn put_alert(&self, alert: &StoredAlert, old_due: Option<Vec<u8>>) -> Result<(), StoreError> {
        let json = encode(OUTBOX, &alert.id, alert)?;
        let result = (&self.outbox, &self.outbox_due).transaction(|(outbox, due)| {
            if let Some(old) = &old_due {
                due.remove(old.as_slice())?;
            }
            outbox.insert(alert.id.as_bytes(), json.as_slice())?;
            if alert.status == AlertStatus::Pending {
                due.insert(due_key(alert), EMPTY)?;
            }
            Ok(())
        });
        result.map_err(|err| tx_error(err, "updating an alert"))
    }
}
