//! Stories: grouping near-duplicate articles (one wire story on many outlets).
//!
//! A text is reduced to its *shingles*: the xxh3 hashes of every run of three
//! consecutive folded words ([`super::text::words`], so case, Unicode forms and
//! possessives do not matter). Two measures are built on them:
//!
//! - [`simhash`]: a 64-bit SimHash of the shingle set. Texts sharing most shingles
//!   get fingerprints far fewer bits apart than the 32 of unrelated texts, so the
//!   Hamming distance filters candidates cheaply;
//! - [`sketch`]: the smallest shingle hashes, from which [`estimate`] gives the
//!   resemblance (Jaccard index) of two texts. SimHash alone mis-groups short texts
//!   and texts on one event that share names and topic words; the shingle sets of two
//!   different stories overlap far less than those of two copies of one story, so a
//!   story is joined only when the resemblance is at least [`SAME_STORY`].
//!
//! [`StoryWindow`] holds the recent stories compactly (fingerprint, time, postings of
//! a few sketch values) and proposes candidates; the caller supplies their whole
//! sketches to confirm one. The daemon keeps those sketches in the store, so memory
//! does not grow with a sketch per story; [`StoryIndex`] keeps them in memory, for
//! tests and benchmarks.
//!
//! The thresholds were measured on a wire story against a lightly edited copy and
//! against other stories about the same talks; see `calibration` in the tests.
//!
//! Pure and synchronous: the window lives in memory and the caller feeds it.
//! docs/stories.md ("Stories") is the contract.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use chrono::{DateTime, Utc};
use xxhash_rust::xxh3::xxh3_64;

use super::text::{words, MatchText};

/// Fingerprints at most this many bits apart are candidates for the same story.
///
/// Measured on title + body (see `calibration` and `simulated_edits` in the tests):
/// a wire story and its lightly edited copies on other outlets (new headline verb,
/// a few words changed, a sentence added or dropped) are 15–16 bits apart; random
/// edits of one word in fifteen to a 140-word story stay within 20 bits in 99 trials
/// of 100 (worst 23), and longer texts drift less (10 edits to 530 words: 16 bits at
/// most). Different stories on the same event measured 30–35 bits, and unrelated
/// texts differ like coin flips, 32 ± 4 bits, so 20 admits about 0.2% of the
/// unrelated stories in the window as candidates; resemblance turns those away at
/// the cost of one comparison each, while a missed copy would cost a repeated alert.
pub const DEFAULT_MAX_DISTANCE: u32 = 20;

/// Shingle resemblance from which two texts are the same story.
///
/// Lightly edited copies measured 0.66–0.73 against the original and 0.50 against
/// each other (one changed word removes up to three shingles, an added sentence only
/// grows the union); different stories on the same event, sharing people, places and
/// topic words, measured 0.06 at most (two long reports on the same talks, 530 and
/// 1,486 words: 0.013 and 38 bits). 0.4 leaves a margin on both sides.
pub const SAME_STORY: f64 = 0.4;

/// How far back a new item is compared with earlier stories. Outlets run the same wire
/// story within hours; a longer window only adds false candidates to rule out.
pub const STORY_WINDOW: Duration = Duration::from_secs(48 * 3600);

/// Among `candidates` (story id, fingerprint, sketch), the story a text with this
/// fingerprint and sketch belongs to, by the rules of [`StoryWindow::same_story`]:
/// within `max_distance` bits, the highest resemblance of at least [`SAME_STORY`], the
/// first on a tie. For a store that keeps the window itself.
pub fn best_story<'a>(
    fingerprint: u64,
    sketch: &[u32],
    max_distance: u32,
    candidates: impl IntoIterator<Item = (&'a str, u64, &'a [u32])>,
) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for (story, theirs, their_sketch) in candidates {
        if (theirs ^ fingerprint).count_ones() > max_distance {
            continue;
        }
        let resemblance = estimate(their_sketch, sketch);
        if resemblance >= SAME_STORY && best.is_none_or(|(r, _)| resemblance > r) {
            best = Some((resemblance, story));
        }
    }
    best.map(|(_, story)| story)
}

/// Words per shingle.
const SHINGLE: usize = 3;

/// The 64-bit SimHash of `text`'s shingles.
///
/// An empty text (no words) has fingerprint 0. The daemon and benchmarks take the
/// shingles the pipeline computed ([`simhash`]); this whole-text form is for tests.
#[cfg(test)]
pub fn fingerprint(text: &str) -> u64 {
    simhash(&shingles(text))
}

/// The SimHash of shingles already computed.
pub fn simhash(shingles: &[u64]) -> u64 {
    if shingles.is_empty() {
        return 0;
    }
    // One vote per shingle and bit: +1 when the shingle's hash has the bit set, -1
    // otherwise; a bit of the fingerprint is set where the votes are positive, that
    // is where more than half the shingles have it. Counting bit by bit cost 64 steps
    // a shingle (a tenth of the CPU of `once`'s story detection); here each byte of a
    // hash adds its eight bits to eight one-byte counters packed in a `u64` at once,
    // emptied into wide counters before a byte can overflow.
    let mut counts = [0u32; 64];
    let mut packed = [0u64; 8];
    for chunk in shingles.chunks(u8::MAX as usize) {
        for &hash in chunk {
            for (byte, lanes) in packed.iter_mut().enumerate() {
                *lanes += SPREAD[(hash >> (8 * byte)) as u8 as usize];
            }
        }
        for (byte, lanes) in packed.iter_mut().enumerate() {
            for (bit, count) in counts[8 * byte..8 * byte + 8].iter_mut().enumerate() {
                *count += (*lanes >> (8 * bit)) as u8 as u32;
            }
            *lanes = 0;
        }
    }
    let n = shingles.len();
    counts
        .iter()
        .enumerate()
        .filter(|(_, count)| 2 * **count as usize > n)
        .fold(0u64, |fp, (bit, _)| fp | 1 << bit)
}

/// Each byte value with its eight bits spread over eight bytes (bit `i` of the value
/// in byte `i` of the word), for counting bits eight at a time in [`simhash`].
const SPREAD: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut value = 0;
    while value < 256 {
        let mut bit = 0;
        while bit < 8 {
            if value >> bit & 1 == 1 {
                table[value] |= 1 << (8 * bit);
            }
            bit += 1;
        }
        value += 1;
    }
    table
};

/// The hashes of `text`'s word 3-shingles, sorted and deduplicated; texts of fewer
/// than three words give one hash per word.
pub fn shingles(text: &str) -> Vec<u64> {
    let folded: Vec<String> = words(text).into_iter().map(|w| w.folded).collect();
    shingles_of(folded.iter().map(String::as_str))
}

/// The shingles of an article's title and body, as the pipeline computes them for
/// [`Processed::shingles`]: the one place that says how the two are joined, so that a
/// stored item's sketch rebuilt after a restart matches its copies' live ones.
///
/// [`Processed::shingles`]: super::Processed::shingles
pub fn article_shingles(title: &str, body: &str) -> Vec<u64> {
    shingles(&format!("{title}\n{body}"))
}

/// [`shingles`] of words already folded, such as a [`MatchText`]'s: the pipeline
/// hashes the words its matcher folded instead of splitting and folding them again.
///
/// [`MatchText`]: super::text::MatchText
pub fn shingles_of<'a>(folded: impl Iterator<Item = &'a str>) -> Vec<u64> {
    let folded: Vec<&str> = folded.collect();
    let mut hashes: Vec<u64> = if folded.len() < SHINGLE {
        folded.iter().map(|w| xxh3_64(w.as_bytes())).collect()
    } else {
        let mut joined = String::new();
        folded
            .windows(SHINGLE)
            .map(|window| {
                // Folded words never contain a space, so the joined form is unambiguous.
                joined.clear();
                for (i, word) in window.iter().enumerate() {
                    if i > 0 {
                        joined.push(' ');
                    }
                    joined.push_str(word);
                }
                xxh3_64(joined.as_bytes())
            })
            .collect()
    };
    hashes.sort_unstable();
    hashes.dedup();
    hashes
}

/// [`shingles_of`] a match form's [plain words], without a second split or fold of
/// the text: each run of words is hashed where it stands in the haystack, already
/// joined by single spaces, so no run is copied (only one across the title and body).
/// The hashes are those of [`article_shingles`] of the same title and body.
///
/// [plain words]: MatchText::plain_words
pub fn text_shingles(text: &MatchText) -> Vec<u64> {
    if text.plain_word_count() < SHINGLE {
        return shingles_of(text.plain_words());
    }
    let mut hashes = Vec::with_capacity(text.plain_word_count() + 1 - SHINGLE);
    text.each_run(SHINGLE, |run| hashes.push(xxh3_64(run.as_bytes())));
    hashes.sort_unstable();
    hashes.dedup();
    hashes
}

/// Posting lists longer than this are skipped in [`StoryWindow::same_story`].
const MAX_POSTING: usize = 64;

/// How many of a sketch's smallest values are indexed. A copy shares none of them with
/// its story only with probability about (1 - resemblance)^12: 0.2% at 0.4, 0.002% at
/// 0.6; indexing all 48 cost about 200 MB for 180,000 stories in the window.
const INDEXED: usize = 12;

/// Shingle hashes kept per story in a [`sketch`].
pub const SKETCH: usize = 48;

/// A bottom-k sketch of a shingle set: the [`SKETCH`] smallest hashes (top 32 bits).
///
/// Stories are confirmed from sketches ([`estimate`]), one small record a candidate,
/// instead of reading and re-shingling each candidate's text from the store, which
/// made a cold run over many similar items quadratic in store reads. 48 values (192
/// bytes a story) keep the estimate's standard error near 0.07 around the 0.4 threshold, where copies
/// measure 0.5 and more and different stories 0.06 at most.
pub fn sketch(shingles: &[u64]) -> Vec<u32> {
    // `shingles` is sorted, so its start is the smallest hashes and their top halves
    // come out sorted too.
    let mut out: Vec<u32> = Vec::with_capacity(SKETCH);
    for &hash in shingles {
        let top = (hash >> 32) as u32;
        if out.last() != Some(&top) {
            out.push(top);
            if out.len() == SKETCH {
                break;
            }
        }
    }
    out
}

/// The Jaccard index estimated from two [`sketch`]es: among the [`SKETCH`] smallest
/// values of their union, the share found in both.
pub fn estimate(a: &[u32], b: &[u32]) -> f64 {
    // A sketch shorter than SKETCH is its whole set. Two whole sets give the exact
    // index; otherwise only the SKETCH smallest values of the union are known for
    // both sides.
    let k = if a.len() < SKETCH && b.len() < SKETCH {
        usize::MAX
    } else {
        SKETCH
    };
    let (mut i, mut j, mut union, mut both) = (0, 0, 0usize, 0usize);
    while union < k && (i < a.len() || j < b.len()) {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                both += 1;
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => i += 1,
            (Some(_), None) => i += 1,
            _ => j += 1,
        }
        union += 1;
    }
    if union == 0 {
        0.0
    } else {
        both as f64 / union as f64
    }
}

/// The Jaccard index of two shingle sets as given by [`shingles`] (sorted, no
/// duplicates): shared shingles over all shingles. Two empty sets resemble each
/// other not at all, so texts without words never form a story. The exact measure the
/// sketches estimate; only tests compute it, to check the estimate.
#[cfg(test)]
pub fn resemblance(a: &[u64], b: &[u64]) -> f64 {
    let (mut i, mut j, mut shared) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - shared;
    if union == 0 {
        0.0
    } else {
        shared as f64 / union as f64
    }
}

/// The stories seen within a time window, searchable by fingerprint and sketch, with
/// what the caller keeps about each story (`T`).
///
/// Candidates come from an inverted index from sketch values to the stories whose
/// sketch holds them ([`Postings`]): a copy shares many of its smallest shingle hashes
/// with its story, an unrelated text almost none, so a lookup touches only stories
/// that share something, instead of every story in the window. (A linear scan made a
/// cold start over 100,000 items quadratic: a third of its time, measured with perf.)
///
/// Per story the window holds only what proposes candidates: the fingerprint, the
/// first-seen time and the postings of the [`INDEXED`] smallest sketch values, about
/// 115 bytes. Confirming a candidate needs its whole sketch and its story id, which
/// the caller supplies in [`StoryWindow::same_story`]: the daemon keeps them in the
/// store, where a window of 200,000 stories held in memory cost about 800 bytes each;
/// [`StoryIndex`] keeps them in `T`.
#[derive(Debug, Clone)]
pub struct StoryWindow<T = ()> {
    window: chrono::Duration,
    max_distance: u32,
    /// First-seen times in nanoseconds since the epoch, oldest first, so expiry pops
    /// from the front. The story at position `i` (in this and the following deques)
    /// has sequence number `first_seq + i`.
    times: VecDeque<i64>,
    fingerprints: VecDeque<u64>,
    /// How many postings each story has, to count the stale ones when it expires.
    indexed: VecDeque<u8>,
    payloads: VecDeque<T>,
    first_seq: u32,
    postings: Postings,
    /// Postings of expired stories, not yet compacted away.
    stale: usize,
}

/// A story proposed by [`StoryWindow::same_story`], for the caller to supply its
/// sketches.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a, T> {
    pub fingerprint: u64,
    pub first_seen: DateTime<Utc>,
    pub payload: &'a T,
}

/// The story [`StoryWindow::same_story`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The story id, as the caller supplied it with the sketch.
    pub story: String,
    /// The entry's position in the window (oldest first), valid until the window
    /// changes.
    pub position: usize,
}

impl<T> StoryWindow<T> {
    /// An empty window keeping stories for `window` and proposing those within
    /// `max_distance` bits.
    pub fn new(window: Duration, max_distance: u32) -> StoryWindow<T> {
        StoryWindow {
            // A window too large for chrono is as good as forever.
            window: chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX),
            max_distance,
            times: VecDeque::new(),
            fingerprints: VecDeque::new(),
            indexed: VecDeque::new(),
            payloads: VecDeque::new(),
            first_seq: 0,
            postings: Postings::default(),
            stale: 0,
        }
    }

    /// Adds a story first seen `at`, indexed by the smallest values of its `sketch`
    /// (an empty sketch is never proposed). Out-of-order times (a rebuild from the
    /// store, a clock set back) keep the window in time order.
    pub fn insert(&mut self, fingerprint: u64, at: DateTime<Utc>, sketch: &[u32], payload: T) {
        let at = nanos(at);
        let values = indexed(sketch);
        let position = match self.times.back() {
            Some(&last) if last > at => {
                // Rare: the stories after this one move up by one.
                let position = self.times.partition_point(|&t| t <= at);
                self.postings.shift_from(self.seq(position));
                position
            }
            _ => self.times.len(),
        };
        if self.seq(self.times.len()) == u32::MAX {
            // After some four billion stories: number them from 0 again.
            self.compact();
        }
        self.times.insert(position, at);
        self.fingerprints.insert(position, fingerprint);
        self.indexed.insert(position, values.len() as u8);
        self.payloads.insert(position, payload);
        self.postings.push(self.seq(position), values);
    }

    /// Drops the stories first seen before `now - window`.
    pub fn expire(&mut self, now: DateTime<Utc>) {
        let Some(cutoff) = now.checked_sub_signed(self.window) else {
            return;
        };
        let cutoff = nanos(cutoff);
        while self.times.front().is_some_and(|&oldest| oldest < cutoff) {
            self.times.pop_front();
            self.fingerprints.pop_front();
            self.payloads.pop_front();
            self.stale += usize::from(self.indexed.pop_front().unwrap_or(0));
            self.first_seq += 1;
        }
        // Compacting costs a pass over the postings; a quarter of them stale bounds
        // both that work per expired story and the memory held by the dead ones.
        if self.stale > 0 && self.stale * 4 > self.postings.len() {
            self.compact();
        }
    }

    /// The story a text with this fingerprint and sketch belongs to: among the stories
    /// sharing one of its indexed values (each value held by at most [`MAX_POSTING`]
    /// stories) whose fingerprint is within the distance bound, the one with the
    /// highest estimated resemblance of at least [`SAME_STORY`]; on a tie, the earlier.
    ///
    /// `sketches` is called for each such candidate, oldest first, and calls back with
    /// the story id and whole sketch of every story it knows under that candidate
    /// (none when it has lost them, more than one only if the caller's keys collide).
    pub fn same_story<E>(
        &self,
        fingerprint: u64,
        sketch: &[u32],
        mut sketches: impl FnMut(Candidate<'_, T>, &mut dyn FnMut(&str, &[u32])) -> Result<(), E>,
    ) -> Result<Option<Found>, E> {
        let mut seqs: Vec<u32> = Vec::new();
        let mut found = Vec::new();
        for &value in indexed(sketch) {
            found.clear();
            // A value in many sketches is a stock phrase ("the ministry said"), not
            // evidence of a copy; skipping it keeps lookups short, and a real copy
            // still shares plenty of rarer values.
            self.postings
                .find(value, self.first_seq, MAX_POSTING + 1, &mut found);
            if found.len() <= MAX_POSTING {
                seqs.extend_from_slice(&found);
            }
        }
        seqs.sort_unstable();
        seqs.dedup();
        let mut best: Option<(f64, Found)> = None;
        for seq in seqs {
            let position = (seq - self.first_seq) as usize;
            let theirs = self.fingerprints[position];
            if (theirs ^ fingerprint).count_ones() > self.max_distance {
                continue;
            }
            let candidate = Candidate {
                fingerprint: theirs,
                first_seen: DateTime::from_timestamp_nanos(self.times[position]),
                payload: &self.payloads[position],
            };
            sketches(candidate, &mut |story, their_sketch| {
                let resemblance = estimate(their_sketch, sketch);
                // Candidates come oldest first, so only a strictly better one replaces.
                if resemblance >= SAME_STORY && best.as_ref().is_none_or(|(r, _)| resemblance > *r)
                {
                    let story = story.to_owned();
                    best = Some((resemblance, Found { story, position }));
                }
            })?;
        }
        Ok(best.map(|(_, found)| found))
    }

    /// The stories in the window, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = Candidate<'_, T>> + '_ {
        self.times
            .iter()
            .zip(&self.fingerprints)
            .zip(&self.payloads)
            .map(|((&at, &fingerprint), payload)| Candidate {
                fingerprint,
                first_seen: DateTime::from_timestamp_nanos(at),
                payload,
            })
    }

    /// The payload of the story at `position` (oldest first).
    pub fn payload(&self, position: usize) -> Option<&T> {
        self.payloads.get(position)
    }

    /// How far back stories are kept.
    pub fn window(&self) -> chrono::Duration {
        self.window
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    fn seq(&self, position: usize) -> u32 {
        self.first_seq + position as u32
    }

    /// Drops the stale postings and numbers the stories from 0 again.
    fn compact(&mut self) {
        self.postings.retain_from(self.first_seq);
        self.first_seq = 0;
        self.stale = 0;
    }
}

/// Nanoseconds since the epoch; times beyond what an `i64` holds (before 1677, after
/// 2262) are clamped, which keeps their order.
fn nanos(at: DateTime<Utc>) -> i64 {
    at.timestamp_nanos_opt().unwrap_or(if at.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// Sketch value → the sequence numbers of the stories whose indexed values hold it.
///
/// A `HashMap<u32, Vec<u64>>` spent about 800 bytes a story on 12 entries, each with
/// its own tiny list, since nearly every value belongs to one story. Here each posting
/// is 8 bytes in a few sorted runs, like a log-structured merge tree: a new story's
/// postings form a run of their own, and the newest run is merged into the one before
/// it while that one is not more than [`MERGE_FACTOR`] times longer. Run lengths so
/// grow geometrically from newest to oldest: a lookup searches a logarithmic number of
/// runs, and each posting is moved a logarithmic number of times in all.
#[derive(Debug, Clone, Default)]
struct Postings {
    /// The oldest run first.
    runs: Vec<Run>,
}

/// Postings sorted by value, then sequence number.
#[derive(Debug, Clone, Default)]
struct Run {
    postings: Vec<Posting>,
    /// Every [`FENCE`]th value of a long run. A binary search over millions of
    /// postings missed the cache at nearly every step, and the lookups took twice the
    /// time of the `HashMap` before; the fence is small enough to stay in cache, and
    /// leaves one block of the run to search.
    fence: Vec<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Posting {
    value: u32,
    seq: u32,
}

/// A run is merged into the one before it while that one is at most this many times
/// longer. Larger means fewer runs to search and more moves per posting; at 4 and
/// 2.4 million postings, about 9 runs and about 20 moves each.
const MERGE_FACTOR: usize = 4;

/// Postings per block of a run's fence (32 postings: four cache lines).
const FENCE: usize = 32;
/// Runs shorter than this have no fence: they are searched in cache anyway.
const FENCED: usize = 1024;

impl Run {
    fn new(postings: Vec<Posting>) -> Run {
        let mut run = Run {
            postings,
            fence: Vec::new(),
        };
        run.refence();
        run
    }

    /// Rebuilds the fence after the postings' values changed.
    fn refence(&mut self) {
        self.fence.clear();
        if self.postings.len() >= FENCED {
            self.fence
                .extend(self.postings.iter().step_by(FENCE).map(|p| p.value));
        }
        self.fence.shrink_to_fit();
    }

    /// The position of the first posting with a value of at least `value`.
    fn start(&self, value: u32) -> usize {
        if self.fence.is_empty() {
            return self.postings.partition_point(|p| p.value < value);
        }
        // Blocks before `block` start below `value`, the others at or above it, so
        // the position is in the block before `block`, or at its start.
        let block = self.fence.partition_point(|&v| v < value);
        let low = block.saturating_sub(1) * FENCE;
        let high = (block * FENCE).min(self.postings.len());
        low + self.postings[low..high].partition_point(|p| p.value < value)
    }
}

impl Postings {
    /// Indexes `values` (distinct) for story `seq`.
    fn push(&mut self, seq: u32, values: &[u32]) {
        if values.is_empty() {
            return;
        }
        let mut run: Vec<Posting> = values.iter().map(|&value| Posting { value, seq }).collect();
        run.sort_unstable();
        self.runs.push(Run::new(run));
        self.merge_tail();
    }

    /// Merges the newest run into the one before it while that one is not much longer.
    fn merge_tail(&mut self) {
        while let [.., older, newer] = self.runs.as_slice() {
            if older.postings.len() > MERGE_FACTOR * newer.postings.len() {
                break;
            }
            let newer = self.runs.pop().unwrap_or_default();
            if let Some(older) = self.runs.last_mut() {
                merge(&mut older.postings, &newer.postings);
                older.refence();
            }
        }
    }

    /// Appends to `out` the sequence numbers at or after `first_seq` filed under
    /// `value`, stopping once `out` holds `limit`: a stock phrase's list can be long.
    fn find(&self, value: u32, first_seq: u32, limit: usize, out: &mut Vec<u32>) {
        for run in &self.runs {
            let start = run.start(value);
            for posting in run.postings[start..]
                .iter()
                .take_while(|p| p.value == value)
            {
                if out.len() >= limit {
                    return;
                }
                if posting.seq >= first_seq {
                    out.push(posting.seq);
                }
            }
        }
    }

    /// Adds one to every sequence number at or after `seq`, making room for a story
    /// inserted out of order. Order within the runs is kept: a number that moves up
    /// stays above every number below `seq`.
    fn shift_from(&mut self, seq: u32) {
        for posting in self.runs.iter_mut().flat_map(|run| &mut run.postings) {
            if posting.seq >= seq {
                posting.seq += 1;
            }
        }
    }

    /// Drops the postings before `first_seq` and numbers the rest from 0.
    fn retain_from(&mut self, first_seq: u32) {
        let mut runs: Vec<Vec<Posting>> = Vec::with_capacity(self.runs.len());
        for mut run in self.runs.drain(..).map(|run| run.postings) {
            run.retain(|p| p.seq >= first_seq);
            for posting in run.iter_mut() {
                posting.seq -= first_seq;
            }
            run.shrink_to_fit();
            if !run.is_empty() {
                runs.push(run);
            }
        }
        // Runs that shrank may now be short next to newer ones; merging them from the
        // newest end restores the geometric lengths.
        let mut merged: Vec<Vec<Posting>> = Vec::with_capacity(runs.len());
        for run in runs.into_iter().rev() {
            merged.push(run);
            while let [.., newer, older] = merged.as_slice() {
                if older.len() > MERGE_FACTOR * newer.len() {
                    break;
                }
                let mut older = merged.pop().unwrap_or_default();
                let newer = merged.pop().unwrap_or_default();
                merge(&mut older, &newer);
                merged.push(older);
            }
        }
        self.runs = merged.into_iter().rev().map(Run::new).collect();
    }

    fn len(&self) -> usize {
        self.runs.iter().map(|run| run.postings.len()).sum()
    }
}

/// Merges sorted `newer` into sorted `older`, in place from the back, so the only
/// extra memory is `newer`'s length.
fn merge(older: &mut Vec<Posting>, newer: &[Posting]) {
    let (mut i, mut j) = (older.len(), newer.len());
    older.reserve_exact(j);
    older.resize(i + j, Posting::default());
    let mut k = i + j;
    while j > 0 {
        if i > 0 && older[i - 1] > newer[j - 1] {
            older[k - 1] = older[i - 1];
            i -= 1;
        } else {
            older[k - 1] = newer[j - 1];
            j -= 1;
        }
        k -= 1;
    }
}

/// The stories seen within a time window, with their ids and sketches in memory.
///
/// A [`StoryWindow`] that keeps each story's id and sketch itself, for callers without
/// a store (tests, benchmarks); the daemon keeps those in the store instead.
#[derive(Debug, Clone)]
pub struct StoryIndex {
    stories: StoryWindow<(Box<str>, Box<[u32]>)>,
}

impl StoryIndex {
    /// An empty index keeping stories for `window` and proposing those within
    /// `max_distance` bits.
    pub fn new(window: Duration, max_distance: u32) -> StoryIndex {
        StoryIndex {
            stories: StoryWindow::new(window, max_distance),
        }
    }

    /// Adds a story; out-of-order times (a rebuild from the store) keep the order.
    pub fn insert(&mut self, fingerprint: u64, story_id: String, at: DateTime<Utc>) {
        self.insert_sketched(fingerprint, story_id, at, Vec::new());
    }

    /// [`StoryIndex::insert`] with the lead's [`sketch`], for [`StoryIndex::same_story`].
    pub fn insert_sketched(
        &mut self,
        fingerprint: u64,
        story_id: String,
        at: DateTime<Utc>,
        sketch: Vec<u32>,
    ) {
        let payload = (story_id.into_boxed_str(), sketch.into_boxed_slice());
        let values = payload.1.clone();
        self.stories.insert(fingerprint, at, &values, payload);
    }

    /// Stories whose fingerprint is within the distance bound, nearest first (ties:
    /// the earlier story first), each story once. A linear scan, for tests and
    /// diagnostics (the poll benchmark counts candidates with it); the daemon uses
    /// [`StoryWindow::same_story`].
    pub fn candidates(&self, fingerprint: u64) -> Vec<&str> {
        let max_distance = self.stories.max_distance;
        let mut found: Vec<(u32, usize, &str)> = self
            .stories
            .iter()
            .enumerate()
            .filter_map(|(position, story)| {
                let distance = (story.fingerprint ^ fingerprint).count_ones();
                (distance <= max_distance).then_some((distance, position, &*story.payload.0))
            })
            .collect();
        found.sort_unstable();
        let mut seen = std::collections::HashSet::new();
        found
            .into_iter()
            .map(|(_, _, story)| story)
            .filter(|story| seen.insert(*story))
            .collect()
    }

    /// The story a text with this fingerprint and sketch belongs to; see
    /// [`StoryWindow::same_story`].
    pub fn same_story(&self, fingerprint: u64, sketch: &[u32]) -> Option<&str> {
        let Ok(found) = self
            .stories
            .same_story(fingerprint, sketch, |candidate, confirm| {
                let (story, sketch) = candidate.payload;
                confirm(story, sketch);
                Ok::<(), Infallible>(())
            });
        let found = found?;
        self.stories
            .payload(found.position)
            .map(|(story, _)| &**story)
    }

    /// Drops the stories first seen before `now - window`.
    pub fn expire(&mut self, now: DateTime<Utc>) {
        self.stories.expire(now);
    }

    pub fn len(&self) -> usize {
        self.stories.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stories.is_empty()
    }
}

/// The part of a sketch that goes into the index: its smallest values.
/// The smallest values of a sketch, under which its story is indexed: a store that
/// finds stories itself (a shared one) looks candidates up by these.
pub fn indexed(sketch: &[u32]) -> &[u32] {
    &sketch[..sketch.len().min(INDEXED)]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SimHash as defined: a vote per shingle and bit.
    fn simhash_by_bits(shingles: &[u64]) -> u64 {
        let mut votes = [0i64; 64];
        for hash in shingles {
            for (bit, vote) in votes.iter_mut().enumerate() {
                *vote += if hash >> bit & 1 == 1 { 1 } else { -1 };
            }
        }
        (0..64)
            .filter(|&bit| votes[bit] > 0)
            .fold(0, |fp, bit| fp | 1 << bit)
    }

    /// Counting eight bits at a time gives the fingerprint bit-by-bit voting gives,
    /// for sets shorter and longer than the 255 a packed counter holds, and for ties.
    #[test]
    fn simhash_counts_bits_as_votes_do() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        for len in [1, 2, 3, 7, 64, 254, 255, 256, 511, 600, 2000] {
            let shingles: Vec<u64> = (0..len).map(|_| next()).collect();
            assert_eq!(
                simhash(&shingles),
                simhash_by_bits(&shingles),
                "{len} shingles"
            );
        }
        // Every bit set in exactly half: a tie is not a set bit.
        assert_eq!(simhash(&[u64::MAX, 0]), 0);
        assert_eq!(simhash(&[u64::MAX; 300]), u64::MAX);
        assert_eq!(simhash(&[]), 0);
    }
    use chrono::TimeZone;

    fn t(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 14, hour, 0, 0).unwrap()
    }

    fn distance(a: &str, b: &str) -> u32 {
        (fingerprint(a) ^ fingerprint(b)).count_ones()
    }

    fn similarity(a: &str, b: &str) -> f64 {
        resemblance(&shingles(a), &shingles(b))
    }

    // A wire story, as filed.
    const WIRE: &str = "Putin gives Witkoff messages for Trump as Kremlin weighs truce proposal\n\
        Vladimir Putin spent the late evening on Thursday with Steve Witkoff, the White House \
        envoy, and gave him a set of points to pass on to Donald Trump, the Kremlin said on \
        Friday. Dmitry Peskov, the Kremlin's spokesman, said Russia saw some reason for hope in \
        the American ceasefire proposal, but that much of the detail was still open and Moscow \
        would not sign up to it yet. Putin said a day earlier that he was, in principle, for a \
        truce, while listing questions about how a pause in the fighting would be monitored and \
        whether Ukraine would use it to rearm. Trump wrote on social media that there was a good \
        chance the war could end, and said a phone call with the Russian leader was likely soon.";

    // The same story on another outlet: a new headline verb, a few words changed.
    const EDITED: &str =
        "Putin hands Witkoff messages for Trump as Kremlin studies truce proposal\n\
        Vladimir Putin spent late Thursday evening with Steve Witkoff, the White House envoy, \
        and gave him a set of points to pass on to Donald Trump, the Kremlin said on Friday. \
        Dmitry Peskov, the Kremlin's spokesman, said Russia saw some reason for hope in the \
        American ceasefire proposal, but that much of the detail was still open and Moscow \
        would not agree to it yet. Putin said on Thursday that he was, in principle, for a \
        truce, while listing questions about how a pause in the fighting would be monitored and \
        whether Ukraine would use it to rearm. Trump wrote on social media that there was a real \
        chance the war could end, and said a call with the Russian leader was likely soon. \
        Reporting by Example Wire; editing by the Europe desk.";

    // The same story with a sentence added and the last one dropped.
    const TRIMMED: &str =
        "Putin gives Witkoff messages for Trump as Kremlin weighs truce proposal\n\
        Vladimir Putin spent the late evening on Thursday with Steve Witkoff, the White House \
        envoy, and gave him a set of points to pass on to Donald Trump, the Kremlin said on \
        Friday. The meeting lasted several hours, according to Russian state media. Dmitry \
        Peskov, the Kremlin's spokesman, said Russia saw some reason for hope in the American \
        ceasefire proposal, but that much of the detail was still open and Moscow would not \
        sign up to it yet. Putin said a day earlier that he was, in principle, for a truce, \
        while listing questions about how a pause in the fighting would be monitored and \
        whether Ukraine would use it to rearm.";

    // A different story on the same event: same people, places and topic words.
    const OTHER_SAME_EVENT: &str =
        "US envoy takes Putin's comments on ceasefire proposal to Trump\n\
        Russian President Vladimir Putin met U.S. envoy Steve Witkoff to discuss details of \
        the American proposal for a 30-day ceasefire in the war with Ukraine, asking him to \
        convey Moscow's thoughts to Washington, Kremlin spokesman Dmitry Peskov said Friday. \
        Peskov told reporters that Putin supported a truce in principle but set out a host of \
        details that need to be clarified. Trump said the U.S. held very good and productive \
        discussions with Putin, and that there is a very good chance the bloody war can \
        finally come to an end. A phone call between Putin and Trump could be arranged after \
        Witkoff delivers the messages in Washington, Peskov said.";

    // Another story on the same talks, told from Kyiv.
    const OTHER_KYIV: &str =
        "Zelensky says Putin is stalling on ceasefire as Witkoff meets Kremlin\n\
        Ukrainian President Volodymyr Zelensky said on Friday that Vladimir Putin was \
        stalling on the American ceasefire proposal and setting conditions to drag out the \
        war. Kyiv accepted the 30-day truce this week after talks with a US delegation in \
        Jeddah. Zelensky said Russia's answer to Steve Witkoff, the White House envoy, was \
        manipulative, and urged Donald Trump to press Moscow with new sanctions. The Kremlin \
        said Putin gave Witkoff messages for Trump and that a phone call was likely soon.";

    #[test]
    fn shingles_fold_words_and_fall_back_to_single_words() {
        assert_eq!(
            shingles("Putin's Talks begin"),
            shingles("putin talks BEGIN")
        );
        assert_eq!(shingles("one two three four").len(), 2);
        assert_eq!(shingles("ceasefire talks").len(), 2);
        assert_eq!(shingles("a a a a a").len(), 1);
        assert!(shingles("  ,.;  ").is_empty());
        let s = shingles("the quick brown fox jumps over the lazy dog");
        assert!(s.windows(2).all(|w| w[0] < w[1]), "sorted and deduplicated");
    }

    #[test]
    fn match_text_words_give_the_same_shingles_as_the_text() {
        // The daemon rebuilds sketches after a restart from stored texts with
        // `shingles`; live items get theirs from the matcher's words. They must agree,
        // or copies arriving after a restart would not join their stories.
        use crate::pipeline::text::MatchText;
        let cases = [
            ("Putin's cease-fire offer", WIRE),
            ("", "two words"),
            (
                "Заголовок — ПУТИН",
                "Зеленський: «перемир'я» STRASSE straße, Russia-Ukraine",
            ),
            ("only a title here", ""),
            ("", ""),
        ];
        for (title, body) in cases {
            let text = MatchText::new(title, body);
            assert_eq!(
                shingles_of(text.plain_words()),
                article_shingles(title, body),
                "{title:?} / {body:?}"
            );
        }
    }

    #[test]
    fn runs_hashed_in_the_haystack_are_the_text_shingles() {
        // Stored fingerprints and sketches were made from `article_shingles`; hashing
        // runs in place must not change one of them.
        let long: String = (0..400).map(|i| format!("word{} ", i % 37)).collect();
        let cases = [
            ("Putin's cease-fire offer", WIRE),
            ("", "two words"),
            ("", "three words here"),
            ("one", "two three"),
            (
                "title of one-two words",
                "Переговори з Росією — «перемир’я», Russia-Ukraine",
            ),
            ("only a title here", ""),
            ("", ""),
            ("A", long.as_str()),
        ];
        for (title, body) in cases {
            let text = MatchText::new(title, body);
            assert_eq!(
                text_shingles(&text),
                article_shingles(title, body),
                "{title:?} / {body:?}"
            );
        }
    }

    #[test]
    fn resemblance_is_jaccard() {
        assert_eq!(resemblance(&[1, 2, 3, 4], &[3, 4, 5, 6]), 2.0 / 6.0);
        assert_eq!(resemblance(&[1, 2], &[1, 2]), 1.0);
        assert_eq!(resemblance(&[1, 2], &[3]), 0.0);
        assert_eq!(resemblance(&[], &[]), 0.0);
        assert_eq!(resemblance(&[], &[1]), 0.0);
        assert_eq!(similarity(WIRE, WIRE), 1.0);
    }

    #[test]
    fn fingerprints_are_stable_and_total() {
        assert_eq!(fingerprint(WIRE), fingerprint(WIRE));
        assert_eq!(fingerprint(""), 0);
        assert_eq!(fingerprint("PUTIN'S truce"), fingerprint("putin truce"));
        assert_ne!(fingerprint(WIRE), fingerprint(OTHER_SAME_EVENT));
    }

    /// The measurement behind `DEFAULT_MAX_DISTANCE` and `SAME_STORY`. Run with
    /// `--nocapture` to see the figures.
    #[test]
    fn calibration() {
        let copies = [
            ("edited", EDITED),
            ("sentence added, last dropped", TRIMMED),
        ];
        let others = [
            ("other story, same event", OTHER_SAME_EVENT),
            ("other story, from Kyiv", OTHER_KYIV),
        ];
        for (name, copy) in copies {
            let (d, r) = (distance(WIRE, copy), similarity(WIRE, copy));
            println!("wire vs {name}: distance {d}, resemblance {r:.3}");
            assert!(d <= DEFAULT_MAX_DISTANCE, "{name}: distance {d}");
            assert!(r >= SAME_STORY, "{name}: resemblance {r}");
        }
        // The copies of one story are also one story with each other.
        let (d, r) = (distance(EDITED, TRIMMED), similarity(EDITED, TRIMMED));
        println!("edited vs trimmed: distance {d}, resemblance {r:.3}");
        assert!(d <= DEFAULT_MAX_DISTANCE && r >= SAME_STORY);

        for (name, other) in others {
            for (base_name, base) in [("wire", WIRE), ("edited", EDITED)] {
                let (d, r) = (distance(base, other), similarity(base, other));
                println!("{base_name} vs {name}: distance {d}, resemblance {r:.3}");
                assert!(r < SAME_STORY, "{name}: resemblance {r}");
            }
        }
        let (d, r) = (
            distance(OTHER_SAME_EVENT, OTHER_KYIV),
            similarity(OTHER_SAME_EVENT, OTHER_KYIV),
        );
        println!("same event vs Kyiv: distance {d}, resemblance {r:.3}");
        assert!(r < SAME_STORY);
    }

    /// Random light edits (a word replaced, dropped or inserted) of a short story:
    /// copies must stay candidates and confirmed. A fixed seed keeps this exact.
    #[test]
    fn simulated_edits() {
        let words: Vec<&str> = WIRE.split_whitespace().collect();
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut random = move |n: usize| {
            // xorshift64: good enough to pick positions.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let base = (fingerprint(WIRE), shingles(WIRE));
        let trials = 100;
        let edits = words.len() / 15;
        let mut worst_distance = 0;
        let mut worst_resemblance = 1.0f64;
        let mut outside = 0;
        for trial in 0..trials {
            let mut copy: Vec<String> = words.iter().map(|w| w.to_string()).collect();
            for _ in 0..edits {
                let at = random(copy.len());
                match random(3) {
                    0 => copy[at] = format!("replaced{trial}"),
                    1 => drop(copy.remove(at)),
                    _ => copy.insert(at, format!("inserted{trial}")),
                }
            }
            let copy = copy.join(" ");
            let distance = (fingerprint(&copy) ^ base.0).count_ones();
            let similar = resemblance(&shingles(&copy), &base.1);
            worst_distance = worst_distance.max(distance);
            worst_resemblance = worst_resemblance.min(similar);
            if distance > DEFAULT_MAX_DISTANCE {
                outside += 1;
            }
        }
        println!(
            "{trials} copies with {edits} edits of {} words: worst distance {worst_distance}, \
             {outside} beyond {DEFAULT_MAX_DISTANCE}, worst resemblance {worst_resemblance:.3}",
            words.len()
        );
        assert!(outside <= trials / 50, "{outside} copies missed");
        assert!(worst_resemblance >= SAME_STORY, "{worst_resemblance}");
    }

    #[test]
    fn index_proposes_near_fingerprints_nearest_first() {
        let mut index = StoryIndex::new(Duration::from_secs(48 * 3600), 3);
        index.insert(0b0000, "exact".into(), t(1));
        index.insert(0b0111, "three".into(), t(2));
        index.insert(0b0001, "one".into(), t(3));
        index.insert(0b1111, "four".into(), t(4));
        index.insert(0b0011, "one".into(), t(5)); // a second fingerprint of story "one"
        assert_eq!(index.candidates(0), ["exact", "one", "three"]);
        assert_eq!(index.len(), 5);
        assert!(index.candidates(u64::MAX).is_empty());
    }

    #[test]
    fn index_expires_by_window_and_keeps_time_order() {
        let mut index = StoryIndex::new(Duration::from_secs(3 * 3600), DEFAULT_MAX_DISTANCE);
        assert!(index.is_empty());
        index.insert(1, "b".into(), t(5));
        index.insert(1, "c".into(), t(8));
        // A rebuild may hand stories over out of order.
        index.insert(1, "a".into(), t(2));
        index.insert(1, "d".into(), t(6));
        index.expire(t(8));
        assert_eq!(index.len(), 3, "a (2h) is older than 8h - 3h");
        // Same distance: the earlier story first.
        assert_eq!(index.candidates(1), ["b", "d", "c"]);
        index.expire(t(10));
        assert_eq!(index.candidates(1), ["c"]);
        // A window beyond chrono's range never expires anything.
        let mut forever = StoryIndex::new(Duration::MAX, 0);
        forever.insert(7, "x".into(), t(0));
        forever.expire(t(23));
        assert_eq!(forever.len(), 1);
    }

    #[test]
    fn sketches_estimate_resemblance() {
        let base: String = (0..300).map(|i| format!("w{} ", i % 97 * 7 + i)).collect();
        let edited = base
            .replacen("w5 ", "changed ", 1)
            .replacen("w40 ", "other ", 1);
        let unrelated: String = (0..300).map(|i| format!("u{i} ")).collect();
        let (a, b, c) = (shingles(&base), shingles(&edited), shingles(&unrelated));
        let exact = resemblance(&a, &b);
        let est = estimate(&sketch(&a), &sketch(&b));
        assert!((exact - est).abs() < 0.2, "exact {exact}, estimate {est}");
        assert!(est >= SAME_STORY);
        assert!(estimate(&sketch(&a), &sketch(&c)) < 0.1);
        assert_eq!(estimate(&sketch(&a), &sketch(&a)), 1.0);
        assert_eq!(estimate(&[], &[]), 0.0);
        // Short texts: the sketch is the whole set, so the estimate is exact.
        let (x, y) = (
            shingles("one two three four five"),
            shingles("one two three four six"),
        );
        assert_eq!(estimate(&sketch(&x), &sketch(&y)), resemblance(&x, &y));
    }

    #[test]
    fn same_story_confirms_candidates_from_sketches() {
        let now = Utc::now();
        let mut index = StoryIndex::new(Duration::from_secs(3600), DEFAULT_MAX_DISTANCE);
        let text =
            "Putin gives Witkoff messages for Trump as the Kremlin weighs the truce proposal, \
                    Peskov said on Friday after a late meeting in Moscow that lasted hours";
        let copy = text.replace("gives", "hands").replace("weighs", "studies");
        let other = "Kyiv backs the US plan for a thirty day ceasefire after talks in Jeddah, \
                     Zelensky said, urging Moscow to accept it without conditions";
        let s = shingles(text);
        index.insert_sketched(simhash(&s), "lead".into(), now, sketch(&s));
        let c = shingles(&copy);
        assert_eq!(index.same_story(simhash(&c), &sketch(&c)), Some("lead"));
        let o = shingles(other);
        assert_eq!(index.same_story(simhash(&o), &sketch(&o)), None);
    }

    #[test]
    fn same_story_survives_expiry_and_ignores_unrelated_stories() {
        let start = Utc::now();
        let mut index = StoryIndex::new(Duration::from_secs(3600), DEFAULT_MAX_DISTANCE);
        let text = |n: usize| -> String { (0..60).map(|i| format!("w{n}x{i} ")).collect() };
        for n in 0..200 {
            let s = shingles(&text(n));
            let at = start + chrono::Duration::seconds(n as i64 * 30);
            index.insert_sketched(simhash(&s), format!("story-{n}"), at, sketch(&s));
        }
        // The first 40 minutes' stories expire; the postings keep pointing right.
        index.expire(start + chrono::Duration::minutes(100));
        assert_eq!(index.len(), 120);
        let old = shingles(&text(10));
        assert_eq!(
            index.same_story(simhash(&old), &sketch(&old)),
            None,
            "expired"
        );
        let recent = shingles(&text(150).replacen("w150x3 ", "changed ", 1));
        assert_eq!(
            index.same_story(simhash(&recent), &sketch(&recent)),
            Some("story-150")
        );
        let unrelated = shingles(&text(999));
        assert_eq!(
            index.same_story(simhash(&unrelated), &sketch(&unrelated)),
            None
        );
    }
    /// xorshift64, so the randomised tests below are exact and repeatable.
    struct Xorshift(u64);

    impl Xorshift {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// Postings against a plain list of (value, seq) pairs, through many pushes,
    /// out-of-order shifts, compactions and the merges they cause.
    #[test]
    fn postings_agree_with_a_plain_list() {
        let mut random = Xorshift(0x9e37_79b9_7f4a_7c15);
        let mut postings = Postings::default();
        let mut model: Vec<(u32, u32)> = Vec::new();
        let mut next_seq = 0u32;
        let mut first_seq = 0u32;
        let mut fenced = 0;
        for step in 0..20_000 {
            match random.below(100) {
                0..5 if next_seq > first_seq => {
                    // A story inserted out of order, somewhere in the live range.
                    let at = first_seq + random.below(u64::from(next_seq - first_seq)) as u32;
                    postings.shift_from(at);
                    for (_, seq) in &mut model {
                        if *seq >= at {
                            *seq += 1;
                        }
                    }
                    let values = distinct_values(&mut random, 300);
                    postings.push(at, &values);
                    model.extend(values.iter().map(|&v| (v, at)));
                    next_seq += 1;
                }
                5 => {
                    first_seq += random.below(u64::from(next_seq - first_seq) + 1) as u32;
                    if random.below(2) == 0 {
                        postings.retain_from(first_seq);
                        model.retain(|&(_, seq)| seq >= first_seq);
                        for (_, seq) in &mut model {
                            *seq -= first_seq;
                        }
                        next_seq -= first_seq;
                        first_seq = 0;
                    }
                }
                _ => {
                    let values = distinct_values(&mut random, 300);
                    postings.push(next_seq, &values);
                    model.extend(values.iter().map(|&v| (v, next_seq)));
                    next_seq += 1;
                }
            }
            if step % 97 == 0 || step == 19_999 {
                assert_eq!(
                    postings.len(),
                    model.len(),
                    "step {step}: postings before first_seq are kept until compacted"
                );
                fenced += usize::from(postings.runs.iter().any(|r| !r.fence.is_empty()));
                for run in &postings.runs {
                    let sorted = run.postings.windows(2).all(|w| w[0] < w[1]);
                    assert!(sorted, "step {step}: a run is sorted");
                    assert_eq!(run.fence, Run::new(run.postings.clone()).fence);
                }
                for value in 0..300 {
                    let mut found = Vec::new();
                    postings.find(value, first_seq, usize::MAX, &mut found);
                    let mut limited = Vec::new();
                    postings.find(value, first_seq, 3, &mut limited);
                    assert_eq!(limited.len(), found.len().min(3), "step {step}");
                    found.sort_unstable();
                    let mut expected: Vec<u32> = model
                        .iter()
                        .filter(|&&(v, seq)| v == value && seq >= first_seq)
                        .map(|&(_, seq)| seq)
                        .collect();
                    expected.sort_unstable();
                    assert_eq!(found, expected, "step {step}, value {value}");
                }
            }
        }
        // The runs stay few: lengths grow geometrically from the newest.
        assert!(postings.runs.len() <= 12, "{} runs", postings.runs.len());
        assert!(fenced > 100, "only {fenced} checks searched a fenced run");
    }

    /// Up to INDEXED distinct values below `range`, sorted, like a sketch's start.
    fn distinct_values(random: &mut Xorshift, range: u64) -> Vec<u32> {
        let mut values: Vec<u32> = (0..random.below(INDEXED as u64 + 1))
            .map(|_| random.below(range) as u32)
            .collect();
        values.sort_unstable();
        values.dedup();
        values
    }

    /// The rules of `StoryWindow::same_story`, the slow way: every live story, in time
    /// order (stories with equal times in the order they came).
    struct NaiveWindow {
        window: chrono::Duration,
        stories: Vec<(DateTime<Utc>, u64, String, Vec<u32>)>,
    }

    impl NaiveWindow {
        fn insert(&mut self, fingerprint: u64, id: &str, at: DateTime<Utc>, sketch: &[u32]) {
            let position = self.stories.partition_point(|s| s.0 <= at);
            self.stories
                .insert(position, (at, fingerprint, id.to_string(), sketch.to_vec()));
        }

        fn expire(&mut self, now: DateTime<Utc>) {
            let cutoff = now - self.window;
            let expired = self.stories.partition_point(|s| s.0 < cutoff);
            self.stories.drain(..expired);
        }

        fn same_story(&self, fingerprint: u64, sketch: &[u32]) -> Option<&str> {
            let holders = |value: &u32| {
                self.stories
                    .iter()
                    .filter(|s| indexed(&s.3).contains(value))
                    .count()
            };
            let usable: Vec<u32> = indexed(sketch)
                .iter()
                .filter(|v| holders(v) <= MAX_POSTING)
                .copied()
                .collect();
            let mut best: Option<(f64, &str)> = None;
            for (_, theirs, id, their_sketch) in &self.stories {
                if !indexed(their_sketch).iter().any(|v| usable.contains(v))
                    || (theirs ^ fingerprint).count_ones() > DEFAULT_MAX_DISTANCE
                {
                    continue;
                }
                let r = estimate(their_sketch, sketch);
                if r >= SAME_STORY && best.is_none_or(|(b, _)| r > b) {
                    best = Some((r, id));
                }
            }
            best.map(|(_, id)| id)
        }
    }

    /// The window through thousands of inserts (some out of order, some at equal
    /// times), expiries and lookups, against the slow way. Sketch values come from a
    /// small range, so stories share values, resemble each other and overflow
    /// MAX_POSTING; fingerprints differ in few bits, so most pass the distance bound.
    #[test]
    fn story_window_agrees_with_a_linear_scan() {
        let mut random = Xorshift(0x2545_f491_4f6c_dd1d);
        let window = Duration::from_secs(3600);
        let mut index = StoryIndex::new(window, DEFAULT_MAX_DISTANCE);
        let mut naive = NaiveWindow {
            window: chrono::Duration::from_std(window).unwrap(),
            stories: Vec::new(),
        };
        let start = t(0);
        let mut clock = start;
        let mut earlier: Vec<Vec<u32>> = Vec::new();
        let mut sketch_of = |random: &mut Xorshift| -> Vec<u32> {
            let mut values: Vec<u32> = match earlier.len() {
                // Half are edited copies of an earlier sketch: a few values replaced.
                n if n > 0 && random.below(2) == 0 => {
                    let mut copy =
                        earlier[n - 1 - random.below(n.min(200) as u64) as usize].clone();
                    for _ in 0..random.below(12) {
                        let at = random.below(copy.len().max(1) as u64) as usize;
                        if at < copy.len() {
                            copy[at] = 10 + random.below(5_000) as u32;
                        }
                    }
                    copy
                }
                _ => {
                    // Some are whole short sets, most are SKETCH values long.
                    let len = if random.below(4) == 0 {
                        random.below(SKETCH as u64)
                    } else {
                        60
                    };
                    (0..len).map(|_| 10 + random.below(5_000) as u32).collect()
                }
            };
            // Stock phrases: small values in most sketches, beyond MAX_POSTING.
            for stock in 0..4 {
                if random.below(10) < 7 {
                    values.push(stock);
                }
            }
            values.sort_unstable();
            values.dedup();
            values.truncate(SKETCH);
            earlier.push(values.clone());
            values
        };
        let (mut matched, mut compactions) = (0, 0);
        for step in 0..3_000 {
            let fingerprint = random.below(1 << 24) << 20;
            let sketch = sketch_of(&mut random);
            let expected = naive.same_story(fingerprint, &sketch).map(str::to_string);
            assert_eq!(
                index.same_story(fingerprint, &sketch).map(str::to_string),
                expected,
                "step {step}"
            );
            matched += usize::from(expected.is_some());
            // Time moves on by up to a minute; a few stories come out of order or at
            // the same time as the one before.
            let at = match random.below(10) {
                0 => clock - chrono::Duration::seconds(random.below(1800) as i64),
                1 => clock,
                _ => {
                    clock += chrono::Duration::seconds(random.below(60) as i64 + 1);
                    clock
                }
            };
            let id = format!("s{step}");
            index.insert_sketched(fingerprint, id.clone(), at, sketch.clone());
            naive.insert(fingerprint, &id, at, &sketch);
            if random.below(8) == 0 {
                let stale_before = index.stories.stale;
                index.expire(clock);
                naive.expire(clock);
                compactions += usize::from(index.stories.stale < stale_before);
                assert_eq!(index.len(), naive.stories.len(), "step {step}");
            }
        }
        println!("{matched} lookups found a story; {compactions} compactions");
        assert!(
            matched > 100 && matched < 2_900,
            "{matched}: too easy a test"
        );
        assert!(compactions > 5, "{compactions}");
        let order: Vec<&str> = index.stories.iter().map(|c| &*c.payload.0).collect();
        let expected: Vec<&str> = naive.stories.iter().map(|s| s.2.as_str()).collect();
        assert_eq!(order, expected);
    }

    /// A value held by MAX_POSTING stories still proposes them; one more and it is a
    /// stock phrase, skipped, whatever those stories' fingerprints.
    #[test]
    fn posting_lists_beyond_max_posting_are_skipped() {
        // The query and the story share only value 1 among their indexed values, and
        // most of the rest of their sketches.
        let query: Vec<u32> = [1].into_iter().chain(2..=12).chain(200..236).collect();
        let story: Vec<u32> = [1].into_iter().chain(200..236).chain(300..311).collect();
        assert!(estimate(&story, &query) >= SAME_STORY);
        for (fillers, expected) in [(MAX_POSTING - 1, Some("story")), (MAX_POSTING, None)] {
            let mut index = StoryIndex::new(Duration::from_secs(3600), DEFAULT_MAX_DISTANCE);
            index.insert_sketched(0, "story".into(), t(1), story.clone());
            for k in 0..fillers as u32 {
                let other = [1]
                    .into_iter()
                    .chain(1_000 + k * 20..1_020 + k * 20)
                    .collect();
                index.insert_sketched(u64::MAX, format!("filler-{k}"), t(1), other);
            }
            assert_eq!(index.same_story(0, &query), expected, "{fillers} fillers");
        }
    }

    /// Sequence numbers are u32: reaching the end numbers the stories from 0 again.
    #[test]
    fn story_window_renumbers_before_its_numbers_run_out() {
        let mut index = StoryIndex::new(Duration::from_secs(3600), DEFAULT_MAX_DISTANCE);
        index.stories.first_seq = u32::MAX - 3;
        let text = |n: usize| -> String { (0..60).map(|i| format!("w{n}x{i} ")).collect() };
        let now = Utc::now();
        for n in 0..10 {
            let s = shingles(&text(n));
            index.insert_sketched(simhash(&s), format!("story-{n}"), now, sketch(&s));
        }
        assert!(index.stories.first_seq < 10);
        for n in 0..10 {
            let s = shingles(&text(n).replacen(" ", " changed ", 1));
            let name = format!("story-{n}");
            assert_eq!(
                index.same_story(simhash(&s), &sketch(&s)),
                Some(name.as_str())
            );
        }
    }

    /// What the daemon's window costs per story; run with `--nocapture`.
    #[test]
    fn story_window_memory_per_story() {
        let mut random = Xorshift(7);
        let mut window: StoryWindow = StoryWindow::new(Duration::from_secs(3600), 20);
        let now = Utc::now();
        let stories = 20_000;
        for _ in 0..stories {
            let mut values: Vec<u32> = (0..SKETCH).map(|_| random.below(1 << 31) as u32).collect();
            values.sort_unstable();
            window.insert(random.below(u64::MAX), now, &values, ());
        }
        let postings: usize = window
            .postings
            .runs
            .iter()
            .map(|r| {
                r.postings.capacity() * std::mem::size_of::<Posting>() + r.fence.capacity() * 4
            })
            .sum();
        let per_story = (postings
            + window.times.capacity() * 8
            + window.fingerprints.capacity() * 8
            + window.indexed.capacity()) as f64
            / stories as f64;
        println!(
            "{stories} stories: {} runs, {per_story:.0} bytes a story",
            window.postings.runs.len()
        );
        // 12 postings of 8 bytes, 17 bytes of time, fingerprint and count, and the
        // deques' spare capacity.
        assert!(per_story < 160.0, "{per_story}");
    }
}
