//! The compiled rule set: one automaton over every entity alias and every topic term.
//!
//! Matching cost must not grow with the number of topics, so nothing here loops over
//! topics per item. Instead:
//!
//! 1. every alias and term, in all its [`pattern_forms`], goes into one Aho-Corasick
//!    automaton, built once per config;
//! 2. an item is folded into a [`MatchText`] and scanned once; each automaton hit is
//!    kept if it lies on word boundaries and becomes an [`Occurrence`] of the entities
//!    and terms that share that pattern;
//! 3. each topic is indexed under a few *trigger* keys: terms of which at least one
//!    must be present for the topic to match (see [`topics::triggers`]). Only topics
//!    whose triggers were hit are evaluated, plus the rare topic that can match on no
//!    hit at all (`NOT sport`).
//!
//! So the work per item is one scan of its text plus work proportional to its hits.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use super::entities;
use super::hits::{Hits, Key};
use super::text::{pattern_forms, with_match_text, MatchText, Occurrence};
use super::topics::{self, CompiledTopic};
use crate::model::{Entity, Findings, Topic};
use crate::query::{LeafKind, Node};

/// Entities and topics compiled for matching.
#[derive(Debug)]
pub struct RuleSet {
    /// `None` when there is nothing to look for.
    automaton: Option<AhoCorasick>,
    /// For each automaton pattern, what it stands for.
    uses: Vec<Vec<Use>>,
    pub(super) entities: Vec<Entity>,
    pub(super) topics: Vec<CompiledTopic>,
    /// Topic numbers to evaluate when a term (by term number) is hit.
    term_topics: Vec<Vec<u32>>,
    /// Topic numbers to evaluate when an entity (by entity number) is hit.
    entity_topics: Vec<Vec<u32>>,
    /// Topics that can match without any hit, evaluated for every item.
    always: Vec<u32>,
    /// Number of distinct patterns in the automaton, for reports and benchmarks.
    pattern_count: usize,
}

#[derive(Debug, Clone, Copy)]
struct Use {
    key: Key,
    prefix: bool,
}

impl RuleSet {
    /// Compiles entities and topics. Topic queries must already be validated: an
    /// `@id` naming no entity never matches (the config rejects such queries first).
    pub fn new(entities: Vec<Entity>, topics: Vec<Topic>) -> RuleSet {
        let mut patterns: Vec<String> = Vec::new();
        let mut pattern_ids: HashMap<String, usize> = HashMap::new();
        let mut uses: Vec<Vec<Use>> = Vec::new();
        let mut add = |form: String, u: Use| {
            let id = *pattern_ids.entry(form.clone()).or_insert_with(|| {
                patterns.push(form);
                uses.push(Vec::new());
                patterns.len() - 1
            });
            if !uses[id]
                .iter()
                .any(|x| x.key == u.key && x.prefix == u.prefix)
            {
                uses[id].push(u);
            }
        };

        let entity_ids: HashMap<&str, u32> = entities
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id.as_str(), i as u32))
            .collect();
        for (i, entity) in entities.iter().enumerate() {
            for alias in &entity.aliases {
                let (text, prefix) = match alias.strip_suffix('*') {
                    Some(stem) => (stem, true),
                    None => (alias.as_str(), false),
                };
                for form in pattern_forms(text) {
                    add(
                        form,
                        Use {
                            key: Key::Entity(i as u32),
                            prefix,
                        },
                    );
                }
            }
        }

        // Terms shared by several topics are one term, so a hit is recorded once.
        let mut term_ids: HashMap<LeafKind, u32> = HashMap::new();
        let mut compiled = Vec::with_capacity(topics.len());
        for topic in topics {
            let root = topics::compile(&topic.query, &entity_ids, &mut |kind: &LeafKind| {
                if let Some(&id) = term_ids.get(kind) {
                    return id;
                }
                let id = term_ids.len() as u32;
                term_ids.insert(kind.clone(), id);
                let (text, prefix) = match kind {
                    LeafKind::Word(w) | LeafKind::Phrase(w) => (w.as_str(), false),
                    LeafKind::Prefix(p) => (p.as_str(), true),
                    // Entity leaves never reach here: compile resolves them.
                    LeafKind::Entity(e) => (e.as_str(), false),
                };
                for form in pattern_forms(text) {
                    add(
                        form,
                        Use {
                            key: Key::Term(id),
                            prefix,
                        },
                    );
                }
                id
            });
            compiled.push(CompiledTopic { topic, root });
        }

        let mut term_topics = vec![Vec::new(); term_ids.len()];
        let mut entity_topics = vec![Vec::new(); entities.len()];
        let mut always = Vec::new();
        for (n, topic) in compiled.iter().enumerate() {
            match topics::triggers(&topic.root) {
                Some(keys) => {
                    for key in keys {
                        match key {
                            Key::Term(t) => term_topics[t as usize].push(n as u32),
                            Key::Entity(e) => entity_topics[e as usize].push(n as u32),
                        }
                    }
                }
                None => always.push(n as u32),
            }
        }

        let pattern_count = patterns.len();
        // Building only fails for patterns beyond the automaton's size limits, which a
        // config cannot reach in practice; such a rule set then matches nothing rather
        // than taking the daemon down, and says so.
        let automaton = if patterns.is_empty() {
            None
        } else {
            match AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .kind(automaton_kind(patterns.len()))
                .build(&patterns)
            {
                Ok(ac) => Some(ac),
                Err(err) => {
                    tracing::error!(error = %err, "Could not build the matching automaton; nothing will match.");
                    None
                }
            }
        };
        RuleSet {
            automaton,
            uses,
            entities,
            topics: compiled,
            term_topics,
            entity_topics,
            always,
            pattern_count,
        }
    }

    /// The ids of the topics, in config order.
    pub fn topic_ids(&self) -> Vec<String> {
        self.topics.iter().map(|t| t.topic.id.clone()).collect()
    }

    /// Number of distinct patterns the automaton searches for.
    pub fn pattern_count(&self) -> usize {
        self.pattern_count
    }

    /// Bytes the automaton takes in memory.
    pub fn automaton_bytes(&self) -> usize {
        self.automaton.as_ref().map_or(0, AhoCorasick::memory_usage)
    }

    /// Finds entities and topics in an article's cleaned title and body.
    pub fn analyze(&self, title: &str, body: &str) -> Findings {
        with_match_text(title, body, |text| self.analyze_text(text, title, body))
    }

    /// [`RuleSet::analyze`] on a match form already built from `title` and `body`.
    pub fn analyze_text(&self, text: &MatchText, title: &str, body: &str) -> Findings {
        let hits = self.scan(text);
        let entities = entities::mentions(&self.entities, &hits, title, body);
        let mut candidates: Vec<u32> = self.always.clone();
        let mut last: Option<Key> = None;
        for (key, _) in &hits.hits {
            if last == Some(*key) {
                continue;
            }
            last = Some(*key);
            let list = match key {
                Key::Term(t) => &self.term_topics[*t as usize],
                Key::Entity(e) => &self.entity_topics[*e as usize],
            };
            candidates.extend_from_slice(list);
        }
        candidates.sort_unstable();
        candidates.dedup();
        let topics = candidates
            .into_iter()
            .filter_map(|n| self.topics[n as usize].evaluate(&hits))
            .collect();
        Findings { entities, topics }
    }

    /// Says, for every topic, why it matched or did not.
    pub fn explain(&self, title: &str, body: &str) -> Vec<(String, String)> {
        let text = MatchText::new(title, body);
        let hits = self.scan(&text);
        self.topics
            .iter()
            .map(|t| (t.topic.id.clone(), t.explain(&hits)))
            .collect()
    }

    fn scan(&self, text: &MatchText) -> Hits {
        let mut hits = Vec::new();
        if let Some(ac) = &self.automaton {
            for m in ac.find_overlapping_iter(&text.haystack) {
                let mut exact = None;
                let mut prefix = None;
                for u in &self.uses[m.pattern().as_usize()] {
                    // Each boundary check is done once per hit, not once per use.
                    let slot = if u.prefix { &mut prefix } else { &mut exact };
                    let occ =
                        *slot.get_or_insert_with(|| text.occurrence(m.start(), m.end(), u.prefix));
                    if let Some(occ) = occ {
                        hits.push((u.key, occ));
                    }
                }
            }
        }
        drop_shadowed_entities(&mut hits);
        hits.sort_unstable_by_key(|(k, o)| (*k, o.field as u8, o.first_word, o.last_word));
        // The spaced and joined forms of a compound hit the same words once each.
        hits.dedup_by_key(|(k, o)| (*k, o.field as u8, o.first_word));
        Hits { hits }
    }
}

/// Up to this many patterns the automaton is a DFA; above, the crate's own choice
/// (a contiguous NFA). A DFA scans faster (backtest 3.02 → 2.23 s with one) but its
/// build time and memory grow with the patterns: rule sets of 636 and 2,921 patterns
/// built in 36 and 127 ms with 2.6 and 12.8 MB of DFA (BENCHMARKS.md, pipeline).
const DFA_PATTERNS: usize = 3_000;

fn automaton_kind(patterns: usize) -> Option<AhoCorasickKind> {
    (patterns <= DFA_PATTERNS).then_some(AhoCorasickKind::DFA)
}

/// Drops an entity hit lying inside a longer hit of another entity: in "Ukrainian
/// President Zelensky" the words name Zelensky, not Ukraine, as a reader would say.
/// Hits of one entity never shadow each other; they are merged into one mention later.
fn drop_shadowed_entities(hits: &mut Vec<(Key, Occurrence)>) {
    let mut spans: Vec<(u8, u32, u32, Key)> = hits
        .iter()
        .filter(|(k, _)| matches!(k, Key::Entity(_)))
        .map(|(k, o)| (o.field as u8, o.first_word, o.last_word, *k))
        .collect();
    if spans.len() < 2 {
        return;
    }
    // Earlier starts first and, at one start, longer spans first, so the span that
    // could cover a hit has always been seen before it.
    spans.sort_unstable_by(|a, b| (a.0, a.1, b.2).cmp(&(b.0, b.1, a.2)));
    let mut shadowed: Vec<(u8, u32, u32, Key)> = Vec::new();
    let mut cover: Option<(u8, u32, u32, Key)> = None;
    for span in spans {
        match cover {
            Some(c) if c.0 == span.0 && span.2 <= c.2 => {
                if c.3 != span.3 && (c.2 - c.1) > (span.2 - span.1) {
                    shadowed.push(span);
                }
            }
            _ => cover = Some(span),
        }
    }
    if shadowed.is_empty() {
        return;
    }
    shadowed.sort_unstable();
    hits.retain(|(k, o)| {
        !matches!(k, Key::Entity(_))
            || shadowed
                .binary_search(&(o.field as u8, o.first_word, o.last_word, *k))
                .is_err()
    });
}

/// Every `@id` in a query, with its column, for config validation.
pub fn entity_refs(query: &Node) -> Vec<(&str, usize)> {
    query
        .leaves()
        .into_iter()
        .filter_map(|leaf| match &leaf.kind {
            LeafKind::Entity(id) => Some((id.as_str(), leaf.column)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EntityKind;
    use crate::query;

    fn entity(id: &str, aliases: &[&str]) -> Entity {
        Entity {
            id: id.into(),
            kind: EntityKind::Person,
            name: aliases[0].into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn topic(id: &str, q: &str) -> Topic {
        Topic {
            id: id.into(),
            name: id.into(),
            query_text: q.into(),
            query: query::parse(q).unwrap(),
            min_score: 0.0,
            sinks: vec![],
            updates: None,
            backfill: None,
        }
    }

    fn rules(topics: &[(&str, &str)]) -> RuleSet {
        RuleSet::new(
            vec![
                entity(
                    "putin",
                    &["Vladimir Putin", "Putin", "Russian President", "Путин*"],
                ),
                entity(
                    "zelensky",
                    &["Volodymyr Zelensky", "Zelensky", "Zelenskyy", "Зеленськ*"],
                ),
                entity("russia", &["Russia", "Russian", "Росси*"]),
            ],
            topics.iter().map(|(id, q)| topic(id, q)).collect(),
        )
    }

    /// Ids of the topics matching a (title, body).
    fn matching(rules: &RuleSet, title: &str, body: &str) -> Vec<String> {
        rules
            .analyze(title, body)
            .topics
            .into_iter()
            .map(|t| t.id)
            .collect()
    }

    #[test]
    fn topic_semantics() {
        let r = rules(&[
            ("and", "ceasefire AND @putin"),
            ("or", "truce OR armistice"),
            ("not", "ceasefire NOT gaza"),
            ("phrase", "\"peace talks\""),
            ("prefix", "negotiat*"),
            ("near", "ceasefire NEAR/3 @zelensky"),
            ("title", "title:ceasefire"),
            ("only-not", "NOT football"),
        ]);
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "",
                "Putin spoke of a ceasefire.",
                &["and", "not", "only-not"],
            ),
            ("", "A ceasefire in Gaza.", &["only-not"]),
            (
                "",
                "Peace talks resume; negotiators met.",
                &["phrase", "prefix", "only-not"],
            ),
            ("", "The talks on peace resume.", &["only-not"]),
            (
                "",
                "Ceasefire, said Zelensky.",
                &["not", "near", "only-not"],
            ),
            (
                "",
                "A ceasefire was on the table for many long weeks, Zelensky said.",
                &["not", "only-not"],
            ),
            (
                "Ceasefire now",
                "Zelensky agreed.",
                &["not", "title", "only-not"],
            ),
            ("", "football and an armistice", &["or"]),
        ];
        for (title, body, expected) in cases {
            assert_eq!(matching(&r, title, body), *expected, "{title:?} / {body:?}");
        }
    }

    #[test]
    fn near_does_not_pair_title_with_body() {
        let r = rules(&[("near", "ceasefire NEAR/5 @zelensky")]);
        assert!(matching(&r, "Ceasefire", "Zelensky agreed.").is_empty());
    }

    #[test]
    fn inflected_cyrillic_names_match_through_prefix_aliases() {
        let r = rules(&[("t", "переговор* AND @putin")]);
        let f = r.analyze("", "Переговоры с Путиным и Россией продолжатся.");
        assert_eq!(f.topics.len(), 1);
        let ids: Vec<&str> = f.entities.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["putin", "russia"]);
    }

    #[test]
    fn overlapping_aliases_are_one_mention() {
        let r = rules(&[]);
        let f = r.analyze("", "Russian President Vladimir Putin met Putin's aides.");
        let putin = f.entities.iter().find(|e| e.id == "putin").unwrap();
        assert_eq!(putin.mentions, 2);
        assert_eq!(putin.first.char_offset, 0);
        // "Russian" inside "Russian President" names Putin, not Russia.
        assert!(
            f.entities.iter().all(|e| e.id != "russia"),
            "{:?}",
            f.entities
        );
        let f = r.analyze("", "The Russian President spoke; Russian troops advanced.");
        let russia = f.entities.iter().find(|e| e.id == "russia").unwrap();
        assert_eq!(russia.mentions, 1);
    }

    #[test]
    fn score_weighs_title_and_caps_repeats() {
        let r = rules(&[("t", "ceasefire")]);
        let body_once = &r.analyze("", "a ceasefire").topics[0];
        let body_many = &r
            .analyze("", "ceasefire ceasefire ceasefire ceasefire ceasefire")
            .topics[0];
        let in_title = &r.analyze("Ceasefire", "a ceasefire").topics[0];
        assert_eq!(body_once.score, 1.0);
        assert_eq!(body_many.score, 3.0);
        assert_eq!(in_title.score, 4.0);
        assert_eq!(in_title.matched, ["ceasefire"]);
    }

    #[test]
    fn min_score_filters() {
        let mut t = topic("t", "ceasefire");
        t.min_score = 2.0;
        let r = RuleSet::new(vec![], vec![t]);
        assert!(r.analyze("", "a ceasefire").topics.is_empty());
        assert_eq!(r.analyze("", "ceasefire, ceasefire").topics.len(), 1);
    }

    #[test]
    fn topics_are_indexed_under_their_cheapest_required_terms() {
        let r = rules(&[
            ("t", "(ceasefire OR truce) AND @putin"),
            ("u", "@putin AND @russia"),
        ]);
        // "t" is reached through its words, not through the common entity.
        assert!(r.entity_topics[0].iter().all(|&n| n != 0));
        assert_eq!(r.term_topics.iter().filter(|l| l.contains(&0)).count(), 2);
        // "u" has only entities, so it is reached through one of them.
        assert_eq!(r.entity_topics.iter().filter(|l| l.contains(&1)).count(), 1);
        assert!(r.always.is_empty());
    }

    #[test]
    fn many_topics_share_one_automaton() {
        let topics: Vec<(String, String)> = (0..500)
            .map(|i| {
                (
                    format!("t{i}"),
                    format!("word{i} AND (ceasefire OR @putin)"),
                )
            })
            .collect();
        let refs: Vec<(&str, &str)> = topics
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let r = rules(&refs);
        // 500 distinct words + ceasefire + the aliases' forms, each pattern once.
        assert!(r.pattern_count() < 520, "{}", r.pattern_count());
        assert_eq!(
            matching(&r, "", "word7 and word300 and a ceasefire"),
            ["t7", "t300"]
        );
    }
}
