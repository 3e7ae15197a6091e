//! How records are written: the only place that encodes or decodes a stored value.
//!
//! Schema 3 writes compact records: the fields in postcard's binary form, and for
//! records that carry text (items, alerts) that form compressed with zstd at level 1.
//! A record starts with a tag byte saying which form it is in, so that records written
//! as JSON by schema 2 and earlier (which start with `{`) are still read as they are:
//! moving a store to schema 3 rewrites nothing: old records are read as JSON until
//! they are pruned, new ones are compact.
//!
//! Measured on 10,000 stored items of ~1 KB of HTML each (BENCHMARKS.md, "Store
//! records"): 1,285 bytes an item as JSON, 692 as JSON compressed, 622 as compressed
//! postcard; zstd level 3 saved 1% more than level 1 for 10-20% more time.
//!
//! Postcard is not self-describing: a field added to a record type needs a new tag
//! (and this file reading both), where JSON took new fields as they came.

use std::cell::RefCell;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::records::FeedStateV1;
use super::{show_key, FeedState, StoreError, StoredItem, FEEDS};

/// Postcard, uncompressed: small records with no text to speak of (stories, feeds).
const PLAIN: u8 = 0xA1;
/// Postcard compressed with zstd: records with text (alerts).
const PACKED: u8 = 0xA2;
/// The items of one feed poll fetched in the same millisecond, as one record:
/// postcard of the list, compressed with zstd (schema 4; see `items.rs`).
const BATCH: u8 = 0xA3;
/// The sketches of the stories a feed poll started, as one `lead_sketches` record
/// (schema 5): a plain binary list a lookup scans without allocating (see
/// [`encode_sketches`]).
const SKETCHES: u8 = 0xA4;
/// A feed state with its health fields, as postcard (uncompressed); feed states under
/// [`PLAIN`] or JSON are of the older layout and read as such ([`decode_feed`]).
const FEED: u8 = 0xA5;
/// An outbox record whose body names its event type (`StoredAlert` with a
/// `model::payload::Payload`): postcard compressed with zstd. Alerts of earlier
/// builds ([`PACKED`], [`PLAIN`] or JSON) carried a new story's alert alone and are
/// read as `story.new` ([`decode_alert`]).
const ALERT: u8 = 0xA6;
/// What JSON records of earlier schemas start with.
const JSON: u8 = b'{';

/// The zstd level: level 1 is the fastest, and higher levels gained little on
/// records of a few hundred bytes.
const LEVEL: i32 = 1;

/// The largest record a decompression may produce: far above any record newswatch
/// writes, and a bound on what a corrupt length field can make it allocate.
const MAX_RECORD: usize = 64 * 1024 * 1024;

thread_local! {
    // A record's uncompressed form, kept between records: a poll's batch is tens of
    // kilobytes, and growing a fresh vector to that size cost more than copying it.
    static RAW: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    // A compression context costs more to set up than compressing a record does.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// A record in its compact form.
pub(super) fn encode<T: Serialize>(
    tree: &'static str,
    key: &str,
    record: &T,
    packed: bool,
) -> Result<Vec<u8>, StoreError> {
    let tag = match (tree, packed) {
        (super::OUTBOX, _) => ALERT,
        (_, true) => PACKED,
        (_, false) => PLAIN,
    };
    encode_with(tree, key, record, &[tag], packed || tag == ALERT)
}

fn encode_with<T: Serialize>(
    tree: &'static str,
    key: &str,
    record: &T,
    header: &[u8],
    compress: bool,
) -> Result<Vec<u8>, StoreError> {
    let error = |reason: String| StoreError::Encode {
        tree,
        key: key.to_string(),
        reason,
    };
    RAW.with(|cell| {
        let mut raw = cell.borrow_mut();
        raw.clear();
        let filled = postcard::to_extend(record, std::mem::take(&mut *raw))
            .map_err(|e| error(e.to_string()))?;
        *raw = filled;
        if !compress {
            let mut out = Vec::with_capacity(header.len() + raw.len());
            out.extend_from_slice(header);
            out.extend_from_slice(&raw);
            return Ok(out);
        }
        // Compressed straight after the header, into room for the worst case.
        let mut out = Vec::with_capacity(header.len() + zstd::zstd_safe::compress_bound(raw.len()));
        out.extend_from_slice(header);
        let mut cursor = std::io::Cursor::new(out);
        cursor.set_position(header.len() as u64);
        COMPRESSOR
            .with(|cell| {
                let mut cell = cell.borrow_mut();
                let compressor = match cell.as_mut() {
                    Some(c) => c,
                    None => cell.insert(zstd::bulk::Compressor::new(LEVEL)?),
                };
                compressor.compress_to_buffer(raw.as_slice(), &mut cursor)
            })
            .map_err(|e| error(format!("compressing: {e}")))?;
        Ok(cursor.into_inner())
    })
}

/// Items as one record ([`BATCH`]).
pub(super) fn encode_batch(key: &str, items: &[&StoredItem]) -> Result<Vec<u8>, StoreError> {
    encode_with(super::ITEMS, key, &items, &[BATCH], true)
}

/// Whether an `items` record is a batch (schema 4 on) rather than one item.
pub(super) fn is_batch(value: &[u8]) -> bool {
    value.first() == Some(&BATCH)
}

/// The items of an `items` record: a batch, or one item as schemas 1 to 3 wrote it.
pub(super) fn decode_items(value: &[u8]) -> Result<Vec<StoredItem>, String> {
    match value.split_first() {
        Some((&BATCH, body)) => unpack(body),
        _ => decode(value).map(|item| vec![item]),
    }
}

/// A feed state in its compact form ([`FEED`]).
pub(super) fn encode_feed(key: &str, state: &FeedState) -> Result<Vec<u8>, StoreError> {
    encode_with(FEEDS, key, state, &[FEED], false)
}

/// A feed state in any form this build reads: the current one, or the layout before
/// the health fields (postcard under [`PLAIN`], or JSON), whose `disabled` feeds read
/// as gone.
pub(super) fn decode_feed(value: &[u8]) -> Result<FeedState, String> {
    match value.split_first() {
        Some((&FEED, body)) => postcard::from_bytes(body).map_err(|e| e.to_string()),
        Some((&PLAIN | &JSON, _)) => decode::<FeedStateV1>(value).map(FeedState::from),
        _ => decode(value),
    }
}

/// [`decode_feed`] for a record met in a listing: one that does not decode is skipped
/// with a warning, so that feed starts afresh instead of stopping the others.
pub(super) fn decode_feed_or_warn(key: &[u8], value: &[u8]) -> Option<FeedState> {
    match decode_feed(value) {
        Ok(state) => Some(state),
        Err(err) => {
            tracing::warn!(tree = FEEDS, key = %show_key(key), error = %err, "Skipped a corrupt record.");
            None
        }
    }
}

/// An outbox record in any form this build reads: one of this layout, or one of an
/// earlier build (a new story's alert, read as `story.new`).
pub(super) fn decode_alert(value: &[u8]) -> Result<super::StoredAlert, String> {
    match value.split_first() {
        Some((&ALERT, body)) => unpack(body),
        _ => decode::<super::records::v1::StoredAlert>(value).map(Into::into),
    }
}

/// [`decode_alert`] of a record found by key: one that does not decode is an error
/// naming it.
pub(super) fn decode_alert_at(key: &[u8], value: &[u8]) -> Result<super::StoredAlert, StoreError> {
    decode_alert(value).map_err(|reason| StoreError::Corrupt {
        tree: super::OUTBOX,
        key: show_key(key),
        reason,
    })
}

/// [`decode_alert`] of a record met in a listing: one that does not decode is skipped
/// with a warning.
pub(super) fn decode_alert_or_warn(key: &[u8], value: &[u8]) -> Option<super::StoredAlert> {
    match decode_alert(value) {
        Ok(alert) => Some(alert),
        Err(err) => {
            tracing::warn!(tree = super::OUTBOX, key = %show_key(key), error = %err, "Skipped a corrupt record.");
            None
        }
    }
}

/// Decodes a record in any form this build reads.
pub(super) fn decode<T: DeserializeOwned>(value: &[u8]) -> Result<T, String> {
    let (tag, body) = value.split_first().ok_or("empty record")?;
    match *tag {
        JSON => serde_json::from_slice(value).map_err(|e| e.to_string()),
        PLAIN | FEED => postcard::from_bytes(body).map_err(|e| e.to_string()),
        PACKED => unpack(body),
        other => Err(format!("unknown record format 0x{other:02x}")),
    }
}

fn unpack<T: DeserializeOwned>(packed: &[u8]) -> Result<T, String> {
    // The frame says how large the record is; a damaged one must not make us allocate
    // more than any record can be.
    let size = zstd::zstd_safe::get_frame_content_size(packed)
        .ok()
        .flatten()
        .ok_or("compressed record without its size")?;
    let size = usize::try_from(size)
        .ok()
        .filter(|&n| n <= MAX_RECORD)
        .ok_or_else(|| format!("compressed record claims {size} bytes"))?;
    let raw = DECOMPRESSOR
        .with(|cell| {
            let mut cell = cell.borrow_mut();
            let decompressor = match cell.as_mut() {
                Some(d) => d,
                None => cell.insert(zstd::bulk::Decompressor::new()?),
            };
            decompressor.decompress(packed, size)
        })
        .map_err(|e| format!("decompressing: {e}"))?;
    postcard::from_bytes(&raw).map_err(|e| e.to_string())
}

/// Decodes a record found by key: one that does not decode is an error naming it.
pub(super) fn decode_at<T: DeserializeOwned>(
    tree: &'static str,
    key: &[u8],
    value: &[u8],
) -> Result<T, StoreError> {
    decode(value).map_err(|reason| StoreError::Corrupt {
        tree,
        key: show_key(key),
        reason,
    })
}

/// Decodes a record met in a listing: one that does not decode is skipped with a
/// warning (the listing counts it).
pub(super) fn decode_or_warn<T: DeserializeOwned>(
    tree: &'static str,
    key: &[u8],
    value: &[u8],
) -> Option<T> {
    match decode(value) {
        Ok(record) => Some(record),
        Err(err) => {
            tracing::warn!(tree, key = %show_key(key), error = %err, "Skipped a corrupt record.");
            None
        }
    }
}

/// One story's entry in a `lead_sketches` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SketchEntry<'a> {
    pub(super) fingerprint: u64,
    pub(super) story: &'a str,
    /// The sketch's values, `u32` BE each (`keys::decode_sketch` reads them).
    pub(super) sketch: &'a [u8],
}

/// Stories' sketches as one record: [`SKETCHES`], then for each story its
/// fingerprint (`u64` BE), its id's length (`u16` BE) and bytes, its sketch's length
/// (one byte) and values (`u32` BE). Sketches have a few dozen values and ids are
/// short; an entry that does not fit (an id over 64 KiB, from a feed's absurd link,
/// or a sketch over 255 values) is left out with a warning, so that it does not cost
/// the other stories of the poll their sketches.
pub(super) fn encode_sketches<'a>(
    key: &str,
    entries: impl IntoIterator<Item = (u64, &'a str, &'a [u32])>,
) -> Vec<u8> {
    let mut out = vec![SKETCHES];
    for (fingerprint, story, sketch) in entries {
        let (Ok(id_len), Ok(values)) = (u16::try_from(story.len()), u8::try_from(sketch.len()))
        else {
            tracing::warn!(
                tree = super::LEAD_SKETCHES,
                key,
                story = %story.chars().take(200).collect::<String>(),
                id_bytes = story.len(),
                values = sketch.len(),
                "Left out a story's sketch too long to store; its copies will not find it."
            );
            continue;
        };
        out.extend_from_slice(&fingerprint.to_be_bytes());
        out.extend_from_slice(&id_len.to_be_bytes());
        out.extend_from_slice(story.as_bytes());
        out.push(values);
        for value in sketch {
            out.extend_from_slice(&value.to_be_bytes());
        }
    }
    out
}

/// The entries of a `lead_sketches` record, borrowed from it (the text is not copied).
pub(super) fn decode_sketches(value: &[u8]) -> Result<Vec<SketchEntry<'_>>, String> {
    let Some((&SKETCHES, mut rest)) = value.split_first() else {
        return Err("not a sketch record".into());
    };
    let mut entries = Vec::new();
    while !rest.is_empty() {
        let fingerprint = u64::from_be_bytes(take(&mut rest)?);
        let id_len = u16::from_be_bytes(take(&mut rest)?);
        let story = std::str::from_utf8(cut(&mut rest, usize::from(id_len))?)
            .map_err(|e| format!("story id: {e}"))?;
        let [values] = take(&mut rest)?;
        let sketch = cut(&mut rest, usize::from(values) * 4)?;
        entries.push(SketchEntry {
            fingerprint,
            story,
            sketch,
        });
    }
    Ok(entries)
}

/// The next `len` bytes of a record being read.
fn cut<'a>(rest: &mut &'a [u8], len: usize) -> Result<&'a [u8], String> {
    if rest.len() < len {
        return Err(format!(
            "record cut short: {len} bytes wanted, {} left",
            rest.len()
        ));
    }
    let (head, tail) = rest.split_at(len);
    *rest = tail;
    Ok(head)
}

fn take<const N: usize>(rest: &mut &[u8]) -> Result<[u8; N], String> {
    let mut out = [0u8; N];
    out.copy_from_slice(cut(rest, N)?);
    Ok(out)
}
