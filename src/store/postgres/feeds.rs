//! Feeds: their states, and the leases under which one daemon at a time polls each.
//!
//! A claim takes a due feed whose lease is free (never taken, given up, or expired)
//! with `FOR UPDATE SKIP LOCKED`, so daemons claiming at once never wait for each
//! other, and raises its epoch. The feed's items and its new state are written only
//! while that epoch's lease is held and unexpired by the database's clock
//! ([`PgStore::check_lease`]); the state write gives the lease up.

use chrono::{DateTime, Utc};

use super::{from_ms, ms, Failure, PgStore, Tx};
use crate::store::{codec, Claim, FeedState, Lease, StoreError};

impl PgStore {
    pub(super) fn feed_states(&self) -> Result<Vec<(String, FeedState)>, StoreError> {
        let rows = self.query(
            "reading feed states",
            "SELECT url, state FROM feeds WHERE state IS NOT NULL",
            &[],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let url: String = row.get(0);
            if let Some(state) = codec::decode_feed_or_warn(url.as_bytes(), row.get(1)) {
                out.push((url, state));
            }
        }
        Ok(out)
    }

    pub(super) fn put_feed_state(
        &self,
        lease: Option<&Lease>,
        url: &str,
        state: &FeedState,
    ) -> Result<(), StoreError> {
        let record = codec::encode_feed(url, state)?;
        let next = state.next_poll.map(ms);
        let Some(lease) = lease else {
            self.query(
                "saving a feed state",
                "INSERT INTO feeds (url, state, next_poll_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (url) DO UPDATE SET state = excluded.state, \
                   next_poll_ms = excluded.next_poll_ms",
                &[&url, &record, &next],
            )?;
            return Ok(());
        };
        let updated = self.query(
            "saving a feed state",
            "UPDATE feeds SET state = $2, next_poll_ms = $3, lease_owner = NULL, lease_until = NULL \
             WHERE url = $1 AND epoch = $4 AND lease_owner = $5 AND lease_until > now() \
             RETURNING 1",
            &[&url, &record, &next, &lease.epoch, &self.node],
        )?;
        if updated.is_empty() {
            return Err(StoreError::LeaseLost {
                feed: url.to_string(),
            });
        }
        Ok(())
    }

    /// Claims `url` for one poll when it is due at `now` and no other live daemon
    /// holds it; otherwise says when to ask again.
    pub(super) fn claim_feed(&self, url: &str, now: DateTime<Utc>) -> Result<Claim, StoreError> {
        self.transaction("claiming a feed", |tx| {
            tx.execute(
                "adding a feed",
                "INSERT INTO feeds (url) VALUES ($1) ON CONFLICT (url) DO NOTHING",
                &[&url],
            )?;
            let claimed = tx.query_opt(
                "claiming a feed",
                "UPDATE feeds f SET lease_owner = $2, \
                   lease_until = now() + $4 * interval '1 millisecond', epoch = f.epoch + 1 \
                 FROM (SELECT url FROM feeds WHERE url = $1 \
                         AND (lease_until IS NULL OR lease_until < now() OR lease_owner = $2) \
                         AND (next_poll_ms IS NULL OR next_poll_ms <= $3) \
                       FOR UPDATE SKIP LOCKED) due \
                 WHERE f.url = due.url RETURNING f.epoch, f.state",
                &[&url, &self.node, &ms(now), &(self.lease_ms as f64)],
            )?;
            if let Some(row) = claimed {
                return Ok(Claim::Granted {
                    lease: Some(Lease {
                        feed: url.to_string(),
                        epoch: row.get(0),
                    }),
                    state: decode_state(url, row.get(1)),
                });
            }
            let Some(row) = tx.query_opt(
                "reading a feed's lease",
                "SELECT state, next_poll_ms, CASE WHEN lease_until > now() \
                   THEN (extract(epoch FROM lease_until) * 1000)::bigint END \
                 FROM feeds WHERE url = $1",
                &[&url],
            )?
            else {
                // Added just above, in this transaction.
                return Ok(Claim::Taken {
                    until: from_ms(ms(now) + 1000),
                    state: None,
                });
            };
            let next: Option<i64> = row.get(1);
            let leased: Option<i64> = row.get(2);
            // A row locked by another daemon's claim right now reads as neither due
            // later nor leased: ask again shortly.
            let until = match (next.filter(|&n| n > ms(now)), leased) {
                (None, None) => ms(now) + 1000,
                (a, b) => a.unwrap_or(i64::MIN).max(b.unwrap_or(i64::MIN)),
            };
            Ok(Claim::Taken {
                until: from_ms(until),
                state: decode_state(url, row.get(0)),
            })
        })
    }

    /// Refuses the transaction unless this daemon holds `lease` now.
    pub(super) fn check_lease(&self, tx: &mut Tx<'_>, lease: &Lease) -> Result<(), Failure> {
        let held = tx.query_opt(
            "checking a feed's lease",
            "SELECT 1 FROM feeds WHERE url = $1 AND epoch = $2 AND lease_owner = $3 \
               AND lease_until > now() FOR SHARE",
            &[&lease.feed, &lease.epoch, &self.node],
        )?;
        match held {
            Some(_) => Ok(()),
            None => Err(Failure::Store(StoreError::LeaseLost {
                feed: lease.feed.clone(),
            })),
        }
    }

    pub(super) fn release_leases(&self) -> Result<(), StoreError> {
        self.query(
            "giving up feed leases",
            "UPDATE feeds SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
            &[&self.node],
        )?;
        self.query(
            "giving up alert claims",
            "UPDATE alerts SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = $1",
            &[&self.node],
        )?;
        Ok(())
    }
}

fn decode_state(url: &str, bytes: Option<&[u8]>) -> Option<FeedState> {
    bytes.and_then(|bytes| codec::decode_feed_or_warn(url.as_bytes(), bytes))
}
