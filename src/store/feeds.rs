//! Feed states: what the poller remembers about each feed between polls.

use super::*;

impl SledStore {
    pub fn feed_state(&self, url: &str) -> Result<Option<FeedState>, StoreError> {
        let value = self.feeds.get(url).map_err(|cause| StoreError::Db {
            op: "reading tree feeds",
            cause,
        })?;
        value
            .map(|bytes| {
                codec::decode_feed(&bytes).map_err(|reason| StoreError::Corrupt {
                    tree: FEEDS,
                    key: show_key(url.as_bytes()),
                    reason,
                })
            })
            .transpose()
    }

    pub fn put_feed_state(&self, url: &str, state: &FeedState) -> Result<(), StoreError> {
        let _writing = self.write_gate();
        let json = codec::encode_feed(url, state)?;
        self.feeds
            .insert(url, json)
            .map(drop)
            .map_err(|cause| StoreError::Db {
                op: "writing tree feeds",
                cause,
            })
    }

    /// Every feed's state; a corrupt record is skipped with a warning, so the feed
    /// starts afresh instead of stopping every other feed.
    pub fn feed_states(&self) -> Result<Vec<(String, FeedState)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.feeds.iter() {
            let (key, value) = entry.map_err(|cause| StoreError::Db {
                op: "reading tree feeds",
                cause,
            })?;
            let url = String::from_utf8_lossy(&key).into_owned();
            if let Some(state) = codec::decode_feed_or_warn(&key, &value) {
                out.push((url, state));
            }
        }
        Ok(out)
    }
}
