//! Schema versions and the moves between them: what `SledStore::open` does to a store
//! written by an older build before anything else reads it. The moves are the risky
//! code of the store (they rewrite records in place), so they live apart, each
//! resumable: a move cut short goes on at the next open.

use super::*;

impl SledStore {
    pub(super) fn check_schema(&self) -> Result<(), StoreError> {
        let db_error = |cause| StoreError::Db {
            op: "reading the schema version",
            cause,
        };
        match self.meta.get(SCHEMA_KEY).map_err(db_error)? {
            None => {
                self.meta
                    .insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes()[..])
                    .map_err(|cause| StoreError::Db {
                        op: "writing the schema version",
                        cause,
                    })?;
                Ok(())
            }
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt {
                        tree: META,
                        key: show_key(SCHEMA_KEY),
                        reason: format!("expected a 4-byte version, found {} bytes", bytes.len()),
                    })?;
                if found == SCHEMA_VERSION {
                    Ok(())
                } else if (2..=5).contains(&found) {
                    // Schema 3 differs in how records are encoded, and reads the JSON
                    // records of schema 2 as they are (see `codec`); schema 4 writes
                    // the items of a feed poll as one record, and reads the records
                    // of one item that 2 and 3 wrote as they are; schema 5 writes the
                    // sketches of a poll's new stories as one `lead_sketches` record
                    // and reads the sketches of one key each that 4 wrote; schema 6
                    // writes outbox records that name their event type (`0xA6`) and
                    // reads the alerts before them as `story.new`, and keeps story
                    // update steps in a tree of their own: nothing to move. The new
                    // number keeps an older build, which cannot read
                    // these records (and would miss the new stories' sketches, so
                    // their copies would alert again), out of the store.
                    self.meta
                        .insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes()[..])
                        .and_then(|_| self.db.flush())
                        .map_err(|cause| StoreError::Db {
                            op: "writing the schema version",
                            cause,
                        })?;
                    tracing::info!(
                        from = found,
                        "Moved the store to schema 6 (a record per feed poll, items and sketches; outbox events of several types)."
                    );
                    Ok(())
                } else if found == 1 || found == SCHEMA_MOVING_1_TO_2 {
                    let write_version = |version: u32| {
                        self.meta
                            .insert(SCHEMA_KEY, &version.to_be_bytes()[..])
                            .and_then(|_| self.db.flush())
                            .map_err(|cause| StoreError::Db {
                                op: "writing the schema version",
                                cause,
                            })
                    };
                    write_version(SCHEMA_MOVING_1_TO_2)?;
                    let moved = self.key_items_by_time()?;
                    write_version(SCHEMA_VERSION)?;
                    tracing::info!(
                        items = moved,
                        "Moved the store to schema 2 (items in time order)."
                    );
                    Ok(())
                } else {
                    Err(StoreError::Schema {
                        found,
                        supported: SCHEMA_VERSION,
                    })
                }
            }
        }
    }

    /// Schema 1 to 2: items keyed by id are stored again under their time key, in
    /// batches, each atomic. Time keys start with zero bytes and ids with a letter,
    /// so what is left to move is everything from byte 1 on; a crash part way leaves
    /// the version at [`SCHEMA_MOVING_1_TO_2`] and the next open goes on. The time is
    /// the one `seen` holds, which is where [`SledStore::get_item`] looks; a record with
    /// no seen entry (none should lack one) falls back to its own fetch time, and one
    /// with neither is unreachable either way and is dropped with a warning.
    fn key_items_by_time(&self) -> Result<usize, StoreError> {
        // Small in tests, so that a test's few items cross several batches.
        const BATCH: usize = if cfg!(test) { 100 } else { 10_000 };
        let read_error = |cause| StoreError::Db {
            op: "reading tree items",
            cause,
        };
        let mut moved = 0;
        loop {
            let mut batch = sled::Batch::default();
            let mut in_batch = 0;
            for entry in self.items.range(&[1u8][..]..) {
                let (id, value) = entry.map_err(read_error)?;
                let seen = self.seen.get(&id).map_err(|cause| StoreError::Db {
                    op: "reading tree seen",
                    cause,
                })?;
                let at = seen.as_deref().and_then(decode_millis).or_else(|| {
                    codec::decode::<StoredItem>(&value)
                        .ok()
                        .map(|item| millis(item.fetched))
                });
                match at {
                    Some(at) => batch.insert(time_key(at, &id), value),
                    None => {
                        tracing::warn!(tree = ITEMS, key = %show_key(&id), "Dropped an item record without a time while moving the store to schema 2.");
                    }
                }
                batch.remove(id);
                in_batch += 1;
                if in_batch == BATCH {
                    break;
                }
            }
            if in_batch == 0 {
                return Ok(moved);
            }
            self.items
                .apply_batch(batch)
                .map_err(|cause| StoreError::Db {
                    op: "moving items to time keys",
                    cause,
                })?;
            moved += in_batch;
        }
    }
}
