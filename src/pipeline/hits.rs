//! What a rule set finds in an item: keys (a query term or an entity, by number) and
//! where each occurs. The rule set's scan fills it; entity counting and topic
//! evaluation read it, so it sits below all three.

use super::text::Occurrence;

/// What a leaf resolves to: a query term or a dictionary entity, by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    Term(u32),
    Entity(u32),
}

/// The keys found in one item, with where they were found.
#[derive(Debug, Default)]
pub struct Hits {
    /// Sorted by key, then field, then word; no duplicates.
    pub(super) hits: Vec<(Key, Occurrence)>,
}

impl Hits {
    /// Occurrences of one key, in text order.
    pub fn of(&self, key: Key) -> &[(Key, Occurrence)] {
        let start = self.hits.partition_point(|(k, _)| *k < key);
        let end = start + self.hits[start..].partition_point(|(k, _)| *k == key);
        &self.hits[start..end]
    }
}
