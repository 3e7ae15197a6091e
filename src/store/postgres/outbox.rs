//! The outbox: alerts claimed by one daemon at a time for delivery, attempts, listing
//! and requeueing. Alerts are written with their items (`items.rs`).
//!
//! [`PgStore::due_alerts`] claims what it returns for a lease period (`FOR UPDATE SKIP
//! LOCKED`, so daemons never wait for each other's claims); an attempt's record gives
//! the claim up. A daemon that dies with alerts claimed leaves them to the others once
//! the claims expire: delivery is at least once, as with the embedded store.

use chrono::{DateTime, Utc};

use super::{from_ms, ms, PgStore};
use crate::store::{codec, AlertStatus, Attempt, Listing, StoreError, StoredAlert, OUTBOX};

impl PgStore {
    pub(super) fn due_alerts(
        &self,
        sink: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.query(
            "claiming due alerts",
            "UPDATE alerts a SET claimed_by = $4, \
               claim_until = now() + $5 * interval '1 millisecond' \
             FROM (SELECT id FROM alerts WHERE sink = $1 AND status = 'pending' \
                     AND next_attempt_ms <= $2 \
                     AND (claim_until IS NULL OR claim_until < now() OR claimed_by = $4) \
                   ORDER BY next_attempt_ms, seq LIMIT $3 FOR UPDATE SKIP LOCKED) due \
             WHERE a.id = due.id RETURNING a.id, a.record, a.next_attempt_ms, a.seq",
            &[&sink, &ms(now), &limit, &self.node, &(self.lease_ms as f64)],
        )?;
        let mut due: Vec<(i64, i64, StoredAlert)> = rows
            .iter()
            .filter_map(|row| {
                let id: &str = row.get(0);
                codec::decode_alert_or_warn(id.as_bytes(), row.get(1))
                    .map(|alert| (row.get(2), row.get(3), alert))
            })
            .collect();
        due.sort_by_key(|(at, seq, _)| (*at, *seq));
        Ok(due.into_iter().map(|(_, _, alert)| alert).collect())
    }

    /// Renews this node's claim on a pending alert; false when another node has it
    /// now (this one's ran out) or it is no longer pending.
    pub(super) fn renew_claim(&self, id: &str) -> Result<bool, StoreError> {
        let rows = self.query(
            "renewing an alert claim",
            "UPDATE alerts SET claimed_by = $2, \
               claim_until = now() + $3 * interval '1 millisecond' \
             WHERE id = $1 AND status = 'pending' \
               AND (claimed_by = $2 OR claimed_by IS NULL OR claim_until < now()) \
             RETURNING 1",
            &[&id, &self.node, &(self.lease_ms as f64)],
        )?;
        Ok(!rows.is_empty())
    }

    /// When the next pending alert of `sink` is due for this daemon: one another
    /// daemon has claimed is due when its claim runs out.
    pub(super) fn next_due(&self, sink: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let rows = self.query(
            "reading the outbox",
            "SELECT min(GREATEST(next_attempt_ms, CASE WHEN claimed_by <> $2 AND claim_until > now() \
               THEN (extract(epoch FROM claim_until) * 1000)::bigint ELSE 0 END)) \
             FROM alerts WHERE sink = $1 AND status = 'pending'",
            &[&sink, &self.node],
        )?;
        Ok(rows
            .first()
            .and_then(|row| row.get::<_, Option<i64>>(0))
            .map(from_ms))
    }

    pub(super) fn record_attempt(
        &self,
        id: &str,
        attempt: &Attempt,
    ) -> Result<StoredAlert, StoreError> {
        self.transaction("recording a delivery attempt", |tx| {
            let row = tx
                .query_opt(
                    "reading an alert",
                    "SELECT record, status = 'pending' AND (claimed_by = $2 OR claimed_by IS NULL \
                       OR claim_until < now()) \
                     FROM alerts WHERE id = $1 FOR UPDATE",
                    &[&id, &self.node],
                )?
                .ok_or_else(|| StoreError::Corrupt {
                    tree: OUTBOX,
                    key: id.to_string(),
                    reason: "no such alert".into(),
                })?;
            let mut alert: StoredAlert = codec::decode_alert_at(id.as_bytes(), row.get(0))?;
            if !row.get::<_, bool>(1) {
                // Another daemon recorded it, or holds it now: its record stands (a late
                // failure here must not undo a delivery there).
                return Ok(alert);
            }
            attempt.apply(&mut alert);
            let record = codec::encode(OUTBOX, id, &alert, true)?;
            let delivered_by = matches!(attempt, Attempt::Delivered { .. }).then_some(&self.node);
            tx.execute(
                "recording a delivery attempt",
                "UPDATE alerts SET status = $2, next_attempt_ms = $3, record = $4, \
                   claimed_by = NULL, claim_until = NULL, \
                   delivered_by = coalesce($5, delivered_by) \
                 WHERE id = $1",
                &[
                    &id,
                    &alert.status.as_str(),
                    &ms(alert.next_attempt),
                    &record,
                    &delivered_by,
                ],
            )?;
            Ok(alert)
        })
    }

    pub(super) fn alerts(
        &self,
        status: Option<AlertStatus>,
        limit: usize,
    ) -> Result<Listing<StoredAlert>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let status = status.map(AlertStatus::as_str);
        let rows = self.query(
            "listing alerts",
            "SELECT id, record FROM alerts WHERE ($1::text IS NULL OR status = $1) \
             ORDER BY created_ms DESC, id LIMIT $2",
            &[&status, &limit],
        )?;
        let mut out = Listing::default();
        for row in rows {
            let id: &str = row.get(0);
            match codec::decode_alert_or_warn(id.as_bytes(), row.get(1)) {
                Some(alert) => out.records.push(alert),
                None => out.skipped += 1,
            }
        }
        Ok(out)
    }

    pub(super) fn get_alert(&self, id: &str) -> Result<Option<StoredAlert>, StoreError> {
        let rows = self.query(
            "reading an alert",
            "SELECT record FROM alerts WHERE id = $1",
            &[&id],
        )?;
        rows.first()
            .map(|row| codec::decode_alert_at(id.as_bytes(), row.get(0)))
            .transpose()
    }

    pub(super) fn retry_alert(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.transaction("requeueing an alert", |tx| {
            let Some(row) = tx.query_opt(
                "reading an alert",
                "SELECT record FROM alerts WHERE id = $1 AND status = 'failed' FOR UPDATE",
                &[&id],
            )?
            else {
                return Ok(false);
            };
            let mut alert: StoredAlert = codec::decode_alert_at(id.as_bytes(), row.get(0))?;
            alert.status = AlertStatus::Pending;
            alert.attempts = 0;
            alert.next_attempt = now;
            let record = codec::encode(OUTBOX, id, &alert, true)?;
            tx.execute(
                "requeueing an alert",
                "UPDATE alerts SET status = 'pending', next_attempt_ms = $2, record = $3, \
                   claimed_by = NULL, claim_until = NULL WHERE id = $1",
                &[&id, &ms(now), &record],
            )?;
            Ok(true)
        })
    }
}
