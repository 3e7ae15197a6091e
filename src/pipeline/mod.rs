//! The pipeline: the same rules for every item, whatever its source.
//!
//! Stages, in order:
//!
//! 1. [`clean`]: HTML to text, Unicode normalisation, splitting a document into
//!    articles, dropping menus, captions and configured boilerplate;
//! 2. [`text`]: folding words into the match form;
//! 3. [`rules`]: one automaton scan for every entity alias and topic term;
//! 4. [`entities`] and [`topics`]: mentions counted, topics evaluated and scored;
//! 5. [`dedup`]: SimHash fingerprints and shingle resemblance group copies into stories.
//!
//! Everything here is pure and synchronous: text in, findings out. Fetching, storing
//! and alerting happen at the edges, so the pipeline is tested without a network.

pub mod clean;
pub mod dedup;
pub mod entities;
pub mod hits;
pub mod rules;
pub mod text;
pub mod topics;

use crate::model::Findings;
use clean::{Article, Cleaner};
use rules::RuleSet;

/// The cleaning and matching rules of one config, compiled.
#[derive(Debug)]
pub struct Pipeline {
    cleaner: Cleaner,
    rules: RuleSet,
}

/// An article and what was found in it.
#[derive(Debug, Clone)]
pub struct Processed {
    pub article: Article,
    pub findings: Findings,
    /// The article's word shingles ([`dedup::article_shingles`] of its title and body), for
    /// story grouping; taken from the matcher's folded words, so not folded twice.
    pub shingles: Vec<u64>,
}

impl Pipeline {
    pub fn new(cleaner: Cleaner, rules: RuleSet) -> Pipeline {
        Pipeline { cleaner, rules }
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// A document that may hold several articles (a text file, a web page), on up
    /// to `threads` threads (the caller's among them): a large text file is cleaned
    /// in pieces at once, and its articles analysed at once, in document order.
    pub fn process_document(&self, text: &str, is_html: bool, threads: usize) -> Vec<Processed> {
        let articles = self.cleaner.clean_document_on(text, is_html, threads);
        if threads <= 1 || articles.len() < 16 {
            return articles.into_iter().map(|a| self.analyze(a)).collect();
        }
        let found = crate::par::map_ordered(&articles, threads, |a| self.find(a));
        articles
            .into_iter()
            .zip(found)
            .map(|(article, (findings, shingles))| Processed {
                article,
                findings,
                shingles,
            })
            .collect()
    }

    /// One feed item: a title and an HTML (or plain text) body.
    pub fn process_item(&self, title: &str, body_html: &str) -> Processed {
        self.analyze(self.cleaner.clean_item(title, body_html))
    }

    /// Many feed items (title, HTML or plain body) at once, on up to `threads` threads
    /// (the caller's among them), in the order given: each item's cleaning, matching
    /// and shingles depend on it alone. What depends on the order of items (grouping
    /// them into stories) is left to the caller, on one thread, after this returns.
    pub fn process_items(&self, items: &[(&str, &str)], threads: usize) -> Vec<Processed> {
        crate::par::map_ordered(items, threads, |(title, body)| {
            self.process_item(title, body)
        })
    }

    /// Why each topic matched or not, for an already cleaned article.
    pub fn explain(&self, article: &Article) -> Vec<(String, String)> {
        self.rules.explain(&article.title, &article.body)
    }

    /// Analyses an article already cleaned: what [`Pipeline::process_item`] does after cleaning.
    pub fn analyze(&self, article: Article) -> Processed {
        let (findings, shingles) = self.find(&article);
        Processed {
            article,
            findings,
            shingles,
        }
    }

    /// What [`Pipeline::analyze`] finds in an article, and its shingles.
    fn find(&self, article: &Article) -> (Findings, Vec<u64>) {
        text::with_match_text(&article.title, &article.body, |text| {
            let findings = self.rules.analyze_text(text, &article.title, &article.body);
            (findings, dedup::text_shingles(text))
        })
    }
}
