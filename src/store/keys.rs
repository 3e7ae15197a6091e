//! Key layouts: time keys (milliseconds since the epoch, big-endian, then an id) so
//! that sled's byte order is time order, and the prefixed keys of the indexes.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::StoredAlert;

/// A time stored as milliseconds (`u64` BE), as `seen` holds it.
pub(super) fn decode_millis(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_be_bytes)
}

/// Milliseconds since the epoch; times before 1970 (never a fetch time) count as 0.
pub(super) fn millis(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

/// `now - age` in milliseconds; an age beyond the calendar means "nothing is older".
pub(super) fn cutoff(now: DateTime<Utc>, age: Duration) -> u64 {
    chrono::Duration::from_std(age)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
        .map_or(0, millis)
}

pub(super) fn time_key(at: u64, id: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + id.len());
    key.extend_from_slice(&at.to_be_bytes());
    key.extend_from_slice(id);
    key
}

pub(super) fn split_time_key(key: &[u8]) -> Option<(u64, &[u8])> {
    let (at, id) = key.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*at), id))
}

pub(super) fn sink_prefix(sink: &str) -> Vec<u8> {
    let mut key = sink.as_bytes().to_vec();
    key.push(0);
    key
}

pub(super) fn due_key(alert: &StoredAlert) -> Vec<u8> {
    let mut key = sink_prefix(&alert.sink);
    key.extend_from_slice(&time_key(millis(alert.next_attempt), alert.id.as_bytes()));
    key
}

pub(super) fn topic_prefix(topic: &str) -> Vec<u8> {
    let mut key = topic.as_bytes().to_vec();
    key.push(0);
    key
}

pub(super) fn topic_key(topic: &str, at: u64, id: &[u8]) -> Vec<u8> {
    let mut key = topic_prefix(topic);
    key.extend_from_slice(&time_key(at, id));
    key
}

/// The `story_sketches` key of a story; with an empty `story`, the prefix of every
/// story first seen in that millisecond with that fingerprint.
pub(super) fn sketch_key(first_seen: DateTime<Utc>, fingerprint: u64, story: &str) -> Vec<u8> {
    let mut key = time_key(millis(first_seen), &fingerprint.to_be_bytes());
    key.extend_from_slice(story.as_bytes());
    key
}

/// A `story_sketches` key's first-seen time, fingerprint and story id.
pub(super) fn split_sketch_key(key: &[u8]) -> Option<(u64, u64, &str)> {
    let (at, rest) = split_time_key(key)?;
    let (fingerprint, story) = rest.split_first_chunk::<8>()?;
    Some((
        at,
        u64::from_be_bytes(*fingerprint),
        std::str::from_utf8(story).ok()?,
    ))
}

/// A sketch as schemas before 5 stored it, a key each (tests write such stores).
#[cfg(test)]
pub(super) fn encode_sketch(sketch: &[u32]) -> Vec<u8> {
    sketch.iter().flat_map(|v| v.to_be_bytes()).collect()
}

pub(super) fn decode_sketch(bytes: &[u8]) -> Option<Vec<u32>> {
    (bytes.len() % 4 == 0).then(|| {
        bytes
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    })
}

/// A key for messages: as text when it is printable text, else in hex.
pub(super) fn show_key(key: &[u8]) -> String {
    let printable = |key: &[u8]| {
        std::str::from_utf8(key)
            .ok()
            .filter(|text| !text.is_empty() && !text.chars().any(char::is_control))
            .map(str::to_string)
    };
    if let Some(text) = printable(key) {
        return text;
    }
    // A time key: its milliseconds, then the id it ends with.
    if let Some((at, id)) = split_time_key(key).and_then(|(at, id)| Some((at, printable(id)?))) {
        return format!("{at}/{id}");
    }
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// The byte after the time in a batch key. Item ids are UTF-8 text, which never holds
/// 0xFF, so a batch key is never an item's time key of schemas 1 to 3.
const BATCH_MARK: u8 = 0xFF;

/// The key of a batch of items (`items`, `by_time`, `seen_by_time`): fetch time, the
/// mark, and a sequence number that tells apart batches of the same millisecond.
pub(super) fn batch_key(at: u64, seq: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(13);
    key.extend_from_slice(&at.to_be_bytes());
    key.push(BATCH_MARK);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The first and last batch keys of millisecond `at`.
pub(super) fn batch_keys_of(at: u64) -> std::ops::RangeInclusive<Vec<u8>> {
    batch_key(at, 0)..=batch_key(at, u32::MAX)
}

pub(super) fn is_batch_key(key: &[u8]) -> bool {
    key.len() == 13 && key[8] == BATCH_MARK
}

/// A `seen` value of schema 4 and later: the batch key of the item's record, and
/// for a story's lead (whose id is its story's) its fingerprint and exact fetch time
/// (`u64` BE, `i64` BE nanoseconds) as well, so that the first copy to join the
/// story builds the story's record without decoding the lead's record (schema 5).
pub(super) fn seen_value(record: &[u8], lead: Option<(u64, DateTime<Utc>)>) -> Vec<u8> {
    let mut value = Vec::with_capacity(record.len() + 16);
    value.extend_from_slice(record);
    if let Some((fingerprint, fetched)) = lead {
        if let Some(nanos) = fetched.timestamp_nanos_opt() {
            value.extend_from_slice(&fingerprint.to_be_bytes());
            value.extend_from_slice(&nanos.to_be_bytes());
        }
    }
    value
}

/// The batch key in a `seen` value of schema 4 or later ([`seen_value`]).
pub(super) fn seen_record(seen: &[u8]) -> Option<&[u8]> {
    let record = seen.get(..13).filter(|key| is_batch_key(key))?;
    matches!(seen.len(), 13 | 29).then_some(record)
}

/// A lead's fingerprint and fetch time, from its `seen` value ([`seen_value`]).
pub(super) fn seen_lead(seen: &[u8]) -> Option<(u64, DateTime<Utc>)> {
    seen_record(seen)?;
    let rest = seen.get(13..29)?;
    let (fingerprint, nanos) = rest.split_at(8);
    Some((
        u64::from_be_bytes(fingerprint.try_into().ok()?),
        DateTime::from_timestamp_nanos(i64::from_be_bytes(nanos.try_into().ok()?)),
    ))
}

/// The `items` key of the record holding item `id`, from its `seen` value: a batch
/// key (schema 4 on), or the fetch time of a record of its own (schemas 1 to 3).
pub(super) fn item_record_key(seen: &[u8], id: &[u8]) -> Option<Vec<u8>> {
    if let Some(record) = seen_record(seen) {
        return Some(record.to_vec());
    }
    decode_millis(seen).map(|at| time_key(at, id))
}

/// A `by_time` value: whether the record's items matched a topic, and how many items
/// it holds. Schemas 1 to 3 wrote `[1]` or nothing for a record of one item.
pub(super) fn by_time_value(matched: bool, items: usize) -> Vec<u8> {
    let count = u16::try_from(items).unwrap_or(u16::MAX).to_be_bytes();
    vec![u8::from(matched), count[0], count[1]]
}

pub(super) fn read_by_time(value: &[u8]) -> (bool, usize) {
    match value {
        [flag, hi, lo] => (*flag == 1, usize::from(u16::from_be_bytes([*hi, *lo]))),
        [] => (false, 1),
        _ => (true, 1),
    }
}

/// A `story_steps` key: story id ++ `0x00` ++ topic id ++ `0x00` ++ sink id.
pub(super) fn step_key(story: &str, topic: &str, sink: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(story.len() + topic.len() + sink.len() + 2);
    key.extend_from_slice(story.as_bytes());
    key.push(0);
    key.extend_from_slice(topic.as_bytes());
    key.push(0);
    key.extend_from_slice(sink.as_bytes());
    key
}

/// A `story_steps` value: step and copies (`u32` BE each), time in ms (`i64` BE).
pub(super) fn write_step(step: &super::StoryStep) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&step.step.to_be_bytes());
    out[4..8].copy_from_slice(&step.sources.to_be_bytes());
    out[8..].copy_from_slice(&step.at_ms.to_be_bytes());
    out
}

/// A `story_steps` value, or `None` when it is not 16 bytes (then the story starts
/// counting again, as one without a state).
pub(super) fn read_step(value: &[u8]) -> Option<super::StoryStep> {
    let value: [u8; 16] = value.try_into().ok()?;
    Some(super::StoryStep {
        step: u32::from_be_bytes(value[..4].try_into().ok()?),
        sources: u32::from_be_bytes(value[4..8].try_into().ok()?),
        at_ms: i64::from_be_bytes(value[8..].try_into().ok()?),
    })
}
