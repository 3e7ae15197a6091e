//! Items: the seen check, the one transaction that stores a feed's new items with
//! their indexes, stories and alerts, and the listings by time and topic.

use super::*;

impl SledStore {
    pub fn seen(&self, id: &str) -> Result<bool, StoreError> {
        self.seen.contains_key(id).map_err(|cause| StoreError::Db {
            op: "reading tree seen",
            cause,
        })
    }

    pub fn get_item(&self, id: &str) -> Result<Option<StoredItem>, StoreError> {
        let fetched = self.seen.get(id).map_err(|cause| StoreError::Db {
            op: "reading tree seen",
            cause,
        })?;
        let Some(fetched) = fetched else {
            return Ok(None);
        };
        let at = decode_millis(&fetched).ok_or_else(|| StoreError::Corrupt {
            tree: SEEN,
            key: show_key(id.as_bytes()),
            reason: format!("expected an 8-byte time, found {} bytes", fetched.len()),
        })?;
        get_json(&self.items, ITEMS, &time_key(at, id.as_bytes()))
    }

    /// Stores a batch of items in one transaction and returns how many were new.
    ///
    /// Each new item gets its record, its `by_time`, `seen` and `topic_index` entries;
    /// a story lead creates its story, a later copy is appended to its story's
    /// `related`. Items whose id is already in `seen` are skipped, so storing the same
    /// batch twice stores nothing the second time.
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
    /// `story_sketches`, under the lead's fetch time, fingerprint and story) only with
    /// a new item that leads its story; an empty one is not stored.
    ///
    /// The sketches are written after the transaction, not in it: one more tree in
    /// every transaction cost more than the write itself. A sketch lost to a crash in
    /// between is rebuilt from its lead's text at the next start; one whose write
    /// failed is in [`Inserted::leads`] for the caller to keep and write again
    /// ([`SledStore::put_sketches`]).
    pub fn insert_batch(
        &self,
        items: &[StoredItem],
        alerts: &[StoredAlert],
        sketches: &[(&str, &[u32])],
    ) -> Result<Inserted, StoreError> {
        let sketches: HashMap<&str, &[u32]> = sketches
            .iter()
            .filter(|(_, sketch)| !sketch.is_empty())
            .copied()
            .collect();
        let encoded: Vec<(&StoredItem, Vec<u8>)> = items
            .iter()
            .map(|item| Ok((item, encode(ITEMS, &item.id, item)?)))
            .collect::<Result<_, StoreError>>()?;
        let encoded_alerts: Vec<(&StoredAlert, Vec<u8>)> = alerts
            .iter()
            .map(|alert| Ok((alert, encode(OUTBOX, &alert.id, alert)?)))
            .collect::<Result<_, StoreError>>()?;
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
        );
        let result = trees.transaction(
            |(
                items,
                by_time,
                seen,
                seen_by_time,
                topic_index,
                stories,
                stories_by_time,
                outbox,
                outbox_due,
                meta,
            )| {
                let mut new = 0;
                let mut leads = Vec::new();
                for (item, json) in &encoded {
                    let id = item.id.as_bytes();
                    if seen.get(id)?.is_some() {
                        continue;
                    }
                    let fetched = millis(item.fetched);
                    items.insert(time_key(fetched, id), json.as_slice())?;
                    let flag = if item.topics.is_empty() {
                        EMPTY
                    } else {
                        MATCHED
                    };
                    by_time.insert(time_key(fetched, id), flag)?;
                    seen.insert(id, &fetched.to_be_bytes()[..])?;
                    seen_by_time.insert(time_key(fetched, id), EMPTY)?;
                    for topic in &item.topics {
                        topic_index.insert(
                            topic_key(&topic.id, fetched, id),
                            &topic.score.to_be_bytes()[..],
                        )?;
                    }
                    let trees = StoryTrees {
                        items,
                        seen,
                        stories,
                        stories_by_time,
                    };
                    if item.is_story_lead {
                        leads.push(*item);
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
                    new += 1;
                }
                if new > 0 {
                    for key in [WRITTEN_KEY, STORED_KEY] {
                        let count = read_u64(meta.get(key)?.as_deref());
                        meta.insert(key, &(count + new as u64).to_be_bytes()[..])?;
                    }
                }
                Ok((new, leads))
            },
        );
        let (new, leads) = result.map_err(|err| tx_error(err, "storing items"))?;
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
        let sketches = self.put_sketches(&leads);
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
        let (tree, tree_name, prefix) = match &query.topic {
            Some(topic) => (&self.topic_index, TOPIC_INDEX, topic_prefix(topic)),
            None => (&self.by_time, BY_TIME, Vec::new()),
        };
        let mut start = prefix.clone();
        start.extend_from_slice(&since.to_be_bytes());
        let entries = match &query.topic {
            // The topic's range ends where the next byte after its 0x00 separator would.
            Some(topic) => {
                let mut end = topic.as_bytes().to_vec();
                end.push(1);
                tree.range(start..end)
            }
            None => tree.range(start..),
        };
        for entry in entries.rev() {
            let key = match entry {
                Ok((key, _)) => key,
                Err(cause) => {
                    out.stop_at_damage(tree_name, cause, "listing items")?;
                    break;
                }
            };
            let Some(item_key) = key.get(prefix.len()..) else {
                continue;
            };
            let Some((_, id)) = split_time_key(item_key) else {
                tracing::warn!(tree = tree_name, key = %show_key(&key), "Skipped a malformed index key.");
                continue;
            };
            let record = match self.items.get(item_key) {
                Ok(record) => record,
                Err(cause) => {
                    out.skip_damaged(ITEMS, id, cause, "reading tree items")?;
                    continue;
                }
            };
            // An index entry without its item: pruned meanwhile, or left behind by a
            // corrupt record. Not an item to list.
            let Some(record) = record else { continue };
            match decode_or_warn::<StoredItem>(ITEMS, id, &record) {
                Some(item) => {
                    out.records.push(item);
                    if out.records.len() >= query.limit {
                        break;
                    }
                }
                None => out.skipped += 1,
            }
        }
        Ok(out)
    }
}
