//! Entity rules: from alias hits to one mention count and first position per entity.
//!
//! Aliases of one entity often overlap or touch ("Russian President Vladimir Putin"
//! hits `Russian President`, `Vladimir Putin` and `Putin`); such a run is one mention.
//! "Zelensky" and "Zelenskyy" are aliases of one entity, so they add up under one id.

use super::hits::{Hits, Key};
use crate::model::{Entity, EntityMention, Position};
use crate::query::Field;

/// Mentions of every entity found, in order of first mention (title first).
pub(super) fn mentions(
    entities: &[Entity],
    hits: &Hits,
    title: &str,
    body: &str,
) -> Vec<EntityMention> {
    let mut out: Vec<(u8, u32, EntityMention)> = Vec::new();
    let mut i = 0;
    let all = &hits.hits;
    while i < all.len() {
        let Key::Entity(e) = all[i].0 else {
            i += 1;
            continue;
        };
        let run = hits.of(Key::Entity(e));
        i += run.len();
        // Hits are sorted by field, then first word, so one pass merges touching runs.
        let mut count = 0u32;
        let mut current: Option<(Field, u32)> = None;
        for (_, occ) in run {
            match current {
                Some((field, end)) if field == occ.field && occ.first_word <= end + 1 => {
                    current = Some((field, end.max(occ.last_word)));
                }
                _ => {
                    count += 1;
                    current = Some((occ.field, occ.last_word));
                }
            }
        }
        let first = run[0].1;
        let (in_title, text) = match first.field {
            Field::Title => (true, title),
            _ => (false, body),
        };
        let char_offset = text
            .get(..first.source as usize)
            .map_or(0, |before| before.chars().count());
        let entity = &entities[e as usize];
        out.push((
            u8::from(!in_title),
            first.first_word,
            EntityMention {
                id: entity.id.clone(),
                name: entity.name.clone(),
                kind: entity.kind,
                mentions: count,
                first: Position {
                    in_title,
                    char_offset,
                },
            },
        ));
    }
    out.sort_by_key(|(field, word, _)| (*field, *word));
    out.into_iter().map(|(_, _, m)| m).collect()
}
