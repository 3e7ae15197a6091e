//! Cleaning: raw text or HTML in, [`Article`]s of normalised plain text out.
//!
//! (Being written: see the module contract in the helper brief.)

use regex::Regex;

/// One article: a title and a body of paragraphs separated by `\n`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Article {
    pub title: String,
    pub body: String,
}

/// The cleaning rules: built-in ones plus the configured `split_on` and `drop_lines`.
#[derive(Debug, Clone)]
pub struct Cleaner {
    split_on: Vec<Regex>,
    drop_lines: Vec<Regex>,
}

impl Cleaner {
    pub fn new(split_on: Vec<Regex>, drop_lines: Vec<Regex>) -> Cleaner {
        Cleaner {
            split_on,
            drop_lines,
        }
    }

    /// A whole document (plain text, or HTML when `is_html`): split into articles.
    pub fn clean_document(&self, text: &str, is_html: bool) -> Vec<Article> {
        let _ = (&self.split_on, &self.drop_lines, is_html);
        vec![Article {
            title: String::new(),
            body: text.to_string(),
        }]
    }

    /// A feed item: the title is given, the body is HTML (or text, which parses as HTML).
    pub fn clean_item(&self, title: &str, body_html: &str) -> Article {
        Article {
            title: title.to_string(),
            body: body_html.to_string(),
        }
    }
}
