//! Stories: grouping near-duplicate articles (one wire story on many outlets).
//!
//! A text is reduced to its *shingles*: the xxh3 hashes of every run of three
//! consecutive folded words ([`super::text::words`], so case, Unicode forms and
//! possessives do not matter). Two measures are built on them:
//!
//! - [`fingerprint`]: a 64-bit SimHash of the shingle set. Texts sharing most shingles
//!   get fingerprints far fewer bits apart than the 32 of unrelated texts, so a
//!   cheap Hamming distance over the recent stories ([`StoryIndex`]) *proposes*
//!   candidates;
//! - [`resemblance`]: the Jaccard index of two shingle sets, which *confirms* one.
//!   SimHash alone mis-groups short texts and texts on one event that share names and
//!   topic words; the shingle sets of two different stories overlap far less than
//!   those of two copies of one story, so a story is joined only when
//!   `resemblance >= SAME_STORY`.
//!
//! The thresholds were measured on a wire story against a lightly edited copy and
//! against other stories about the same talks; see `calibration` in the tests.
//!
//! Pure and synchronous: the index lives in memory and the caller feeds it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use xxhash_rust::xxh3::xxh3_64;

use super::text::words;

/// Fingerprints at most this many bits apart are candidates for the same story.
///
/// Measured on title + body (see `calibration` and `simulated_edits` in the tests):
/// a wire story and its lightly edited copies on other outlets (new headline verb,
/// a few words changed, a sentence added or dropped) are 15–16 bits apart; random
/// edits of one word in fifteen to a 140-word story stay within 20 bits in 99 trials
/// of 100 (worst 23), and longer texts drift less (10 edits to 530 words: 16 bits at
/// most). Different stories on the same event measured 30–35 bits, and unrelated
/// texts differ like coin flips, 32 ± 4 bits, so 20 admits about 0.2% of the
/// unrelated stories in the window as candidates; [`resemblance`] turns those away at
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

/// Words per shingle.
const SHINGLE: usize = 3;

/// The 64-bit SimHash of `text`'s shingles.
///
/// An empty text (no words) has fingerprint 0.
pub fn fingerprint(text: &str) -> u64 {
    simhash(&shingles(text))
}

/// The SimHash of shingles already computed (see [`fingerprint`]).
pub fn simhash(shingles: &[u64]) -> u64 {
    if shingles.is_empty() {
        return 0;
    }
    // One vote per shingle and bit: +1 when the shingle's hash has the bit set, -1
    // otherwise. A bit of the fingerprint is set where the votes are positive.
    let mut votes = [0i32; 64];
    for hash in shingles {
        for (bit, vote) in votes.iter_mut().enumerate() {
            if hash >> bit & 1 == 1 {
                *vote += 1;
            } else {
                *vote -= 1;
            }
        }
    }
    votes
        .iter()
        .enumerate()
        .filter(|(_, vote)| **vote > 0)
        .fold(0u64, |fp, (bit, _)| fp | 1 << bit)
}

/// The hashes of `text`'s word 3-shingles, sorted and deduplicated; texts of fewer
/// than three words give one hash per word.
pub fn shingles(text: &str) -> Vec<u64> {
    let folded: Vec<String> = words(text).into_iter().map(|w| w.folded).collect();
    shingles_of(folded.iter().map(String::as_str))
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

/// Posting lists longer than this are skipped in [`StoryIndex::same_story`].
const MAX_POSTING: usize = 64;

/// How many of a sketch's smallest values are indexed. A copy shares none of them with
/// its story only with probability about (1 - resemblance)^12: 0.2% at 0.4, 0.002% at
/// 0.6; indexing all 48 cost about 200 MB for 180,000 stories in the window.
const INDEXED: usize = 12;

/// Shingle hashes kept per story in a [`sketch`].
pub const SKETCH: usize = 48;

/// A bottom-k sketch of a shingle set: the [`SKETCH`] smallest hashes (top 32 bits).
///
/// Stories are confirmed in memory from sketches ([`estimate`]) instead of reading
/// and re-shingling each candidate's text from the store, which made a cold run over
/// many similar items quadratic in store reads. 48 values (192 bytes a story) keep
/// the estimate's standard error near 0.07 around the 0.4 threshold, where copies
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
/// other not at all, so texts without words never form a story.
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

/// The stories seen within a time window, searchable by fingerprint and sketch.
///
/// Candidates come from an inverted index from sketch values to the stories whose
/// sketch holds them: a copy shares many of its smallest shingle hashes with its
/// story, an unrelated text almost none, so a lookup touches only stories that share
/// something, instead of every story in the window. (A linear scan made a cold start
/// over 100,000 items quadratic: a third of its time, measured with perf.)
#[derive(Debug, Clone)]
pub struct StoryIndex {
    window: chrono::Duration,
    max_distance: u32,
    /// Ordered by first seen, oldest at the front, so expiry pops from the front.
    entries: VecDeque<Entry>,
    /// The sequence number of `entries[0]`; entry `i` has `first_seq + i`.
    first_seq: u64,
    /// Sketch value → sequence numbers of the entries holding it, oldest first.
    postings: HashMap<u32, Vec<u64>>,
    /// Postings that point at expired entries; compacted when they are the majority.
    stale: usize,
    live: usize,
}

#[derive(Debug, Clone)]
struct Entry {
    fingerprint: u64,
    story: String,
    first_seen: DateTime<Utc>,
    /// Empty when unknown (the lead's text was gone when the index was rebuilt).
    sketch: Box<[u32]>,
}

impl StoryIndex {
    /// An empty index keeping stories for `window` and proposing those within
    /// `max_distance` bits.
    pub fn new(window: Duration, max_distance: u32) -> StoryIndex {
        StoryIndex {
            // A window too large for chrono is as good as forever.
            window: chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX),
            max_distance,
            entries: VecDeque::new(),
            first_seq: 0,
            postings: HashMap::new(),
            stale: 0,
            live: 0,
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
        let entry = Entry {
            fingerprint,
            story: story_id,
            first_seen: at,
            sketch: sketch.into_boxed_slice(),
        };
        match self.entries.back() {
            Some(last) if last.first_seen > at => {
                // Rare (only when rebuilding out of order): positions shift, so the
                // postings are rebuilt.
                let position = self.entries.partition_point(|e| e.first_seen <= at);
                self.entries.insert(position, entry);
                self.rebuild_postings();
            }
            _ => {
                let seq = self.first_seq + self.entries.len() as u64;
                for &value in indexed(&entry.sketch) {
                    self.postings.entry(value).or_default().push(seq);
                }
                self.live += indexed(&entry.sketch).len();
                self.entries.push_back(entry);
            }
        }
    }

    /// Stories whose fingerprint is within the distance bound, nearest first (ties:
    /// the earlier story first), each story once. A linear scan, for tests and
    /// diagnostics; the daemon uses [`StoryIndex::same_story`].
    pub fn candidates(&self, fingerprint: u64) -> Vec<&str> {
        let mut found: Vec<(u32, usize)> = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(position, e)| {
                let distance = (e.fingerprint ^ fingerprint).count_ones();
                (distance <= self.max_distance).then_some((distance, position))
            })
            .collect();
        found.sort_unstable();
        let mut seen = HashSet::new();
        found
            .into_iter()
            .map(|(_, position)| self.entries[position].story.as_str())
            .filter(|story| seen.insert(*story))
            .collect()
    }

    /// The story a text with this fingerprint and sketch belongs to: among the stories
    /// sharing enough sketch values, the one with the highest estimated resemblance of
    /// at least [`SAME_STORY`] whose fingerprint is within the distance bound.
    pub fn same_story(&self, fingerprint: u64, sketch: &[u32]) -> Option<&str> {
        let mut shared: HashSet<u64> = HashSet::new();
        for value in indexed(sketch) {
            if let Some(seqs) = self.postings.get(value) {
                // A value in many sketches is a stock phrase ("the ministry said"),
                // not evidence of a copy; skipping it keeps lookups short, and a real
                // copy still shares plenty of rarer values.
                if seqs.len() > MAX_POSTING {
                    continue;
                }
                shared.extend(seqs.iter().filter(|&&seq| seq >= self.first_seq));
            }
        }
        let mut best: Option<(f64, u64)> = None;
        for seq in shared {
            let Some(e) = self.entries.get((seq - self.first_seq) as usize) else {
                continue;
            };
            if (e.fingerprint ^ fingerprint).count_ones() > self.max_distance {
                continue;
            }
            let resemblance = estimate(&e.sketch, sketch);
            let better = match best {
                None => true,
                Some((r, s)) => resemblance > r || (resemblance == r && seq < s),
            };
            if resemblance >= SAME_STORY && better {
                best = Some((resemblance, seq));
            }
        }
        best.and_then(|(_, seq)| self.entries.get((seq - self.first_seq) as usize))
            .map(|e| e.story.as_str())
    }

    /// Drops the stories first seen before `now - window`.
    pub fn expire(&mut self, now: DateTime<Utc>) {
        let Some(cutoff) = now.checked_sub_signed(self.window) else {
            return;
        };
        while self
            .entries
            .front()
            .is_some_and(|oldest| oldest.first_seen < cutoff)
        {
            if let Some(gone) = self.entries.pop_front() {
                self.stale += indexed(&gone.sketch).len();
                self.live -= indexed(&gone.sketch).len();
            }
            self.first_seq += 1;
        }
        if self.stale > self.live {
            self.rebuild_postings();
        }
    }

    fn rebuild_postings(&mut self) {
        self.postings.clear();
        for (i, e) in self.entries.iter().enumerate() {
            for &value in indexed(&e.sketch) {
                self.postings
                    .entry(value)
                    .or_default()
                    .push(self.first_seq + i as u64);
            }
        }
        self.live = self.entries.iter().map(|e| indexed(&e.sketch).len()).sum();
        self.stale = 0;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The part of a sketch that goes into the index: its smallest values.
fn indexed(sketch: &[u32]) -> &[u32] {
    &sketch[..sketch.len().min(INDEXED)]
}

#[cfg(test)]
mod tests {
    use super::*;
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
                shingles(&format!("{title}\n{body}")),
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
}
