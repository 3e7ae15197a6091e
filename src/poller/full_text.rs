//! Full text for feeds that carry only a summary (`full_text = true`, docs/config.md):
//! each new item's page is fetched with the feed's own fetcher (per-host limits, body
//! cap, timeout, redirects and the address policy) and its article text
//! (`pipeline::clean::extract_article`) replaces the feed's summary as the item's body,
//! so the one pipeline reads it like any item. An item keeps its summary when its page
//! cannot be fetched or holds less text.
//!
//! The work is bounded: at most `[poller] full_text_pages` pages per poll of a feed,
//! a few at a time; items already seen are never fetched again.

use std::sync::Arc;

use futures_util::StreamExt as _;
use tokio::sync::Semaphore;
use url::Url;

use super::fetch::Fetcher;
use crate::config::{Feed, FeedUrl};
use crate::identity;
use crate::markup;
use crate::parse::{self, FeedItem};
use crate::pipeline::clean::{extract_article, html_to_text, normalize};
use crate::store::Store;

/// Pages of one feed fetched at once; the per-host limit still applies.
const AT_ONCE: usize = 4;

/// Replaces the body of up to `max_pages` new items of `feed` (not in `store`'s seen
/// ids) with their pages' article text. `host` gives the per-host semaphore of a URL.
pub async fn fill(
    fetcher: &Fetcher,
    host: &(dyn Fn(&FeedUrl) -> Arc<Semaphore> + Sync),
    store: Option<&dyn Store>,
    feed: &Feed,
    items: &mut [FeedItem],
    max_pages: usize,
) {
    let key = feed.url.to_string();
    let ids: Vec<String> = items
        .iter()
        .map(|e| {
            identity::item_id(
                e.id.as_deref(),
                e.link.as_deref(),
                &e.title,
                e.published,
                &key,
            )
        })
        .collect();
    let seen = match store {
        Some(store) => {
            match store.seen_among(&ids.iter().map(String::as_str).collect::<Vec<_>>()) {
                Ok(seen) => seen,
                Err(err) => {
                    tracing::warn!(error = %err, "Cannot read the seen index; not fetching full text this poll.");
                    return;
                }
            }
        }
        None => Default::default(),
    };
    let wanted: Vec<(usize, Url)> = items
        .iter()
        .zip(&ids)
        .enumerate()
        .filter(|(_, (_, id))| !seen.contains(*id))
        .filter_map(|(i, (item, _))| {
            let url = Url::parse(item.link.as_deref()?.trim()).ok()?;
            matches!(url.scheme(), "http" | "https").then_some((i, url))
        })
        .collect();
    if wanted.len() > max_pages {
        tracing::info!(
            new = wanted.len(),
            fetched = max_pages,
            "More new items than [poller] full_text_pages; the rest keep the feed's text."
        );
    }
    let fetched: Vec<(usize, Url, Result<_, _>)> =
        futures_util::stream::iter(wanted.into_iter().take(max_pages))
            .map(|(i, url)| async move {
                let limit = host(&FeedUrl::Http(url.clone()));
                // The semaphores are never closed.
                let _permit = limit.acquire_owned().await.ok();
                let page = fetcher.fetch_page(&url).await;
                (i, url, page)
            })
            .buffer_unordered(AT_ONCE)
            .collect()
            .await;
    // Extraction is CPU work (about a millisecond a page): off the fetching threads.
    let mut jobs = Vec::new();
    for (i, url, page) in fetched {
        match page {
            Ok((body, charset)) => jobs.push((i, url, body, charset, items[i].body.clone())),
            Err(err) => {
                crate::metrics::global().full_text("failed");
                tracing::warn!(url = %url, error = %err, "Could not fetch an item's page; it keeps the feed's text.");
            }
        }
    }
    let done = tokio::task::spawn_blocking(move || {
        jobs.into_iter()
            .map(|(i, url, body, charset, summary)| {
                (i, url, article_body(&body, charset.as_deref(), &summary))
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    for (i, url, body) in done {
        match body {
            Some(body) => {
                crate::metrics::global().full_text("extracted");
                items[i].body = body;
            }
            None => {
                crate::metrics::global().full_text("kept_summary");
                tracing::debug!(url = %url, "The item's page held less text than the feed; kept the feed's text.");
            }
        }
    }
}

/// The article of a page as an HTML body (one `<p>` a paragraph), or `None` when the
/// page yields no article or fewer words than `summary` (the feed's HTML).
pub fn article_body(page: &[u8], charset: Option<&str>, summary: &str) -> Option<String> {
    let html = parse::decode(page, charset).ok()?.text;
    let article = extract_article(&html);
    if !article.extracted {
        return None;
    }
    let text = normalize(&article.body);
    let words = |t: &str| unicode_segmentation::UnicodeSegmentation::unicode_words(t).count();
    if words(&text) <= words(&html_to_text(summary)) {
        return None;
    }
    Some(
        text.lines()
            .map(|line| format!("<p>{}</p>", markup::escape(line)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::article_body;

    const PAGE: &str = "<html><head><title>T</title></head><body>\
        <nav><a href='/'>Home</a> <a href='/world'>World</a></nav>\
        <article><h1>Headline</h1>\
        <p>The first paragraph of the article, with words enough to count, and commas.</p>\
        <p>The second paragraph says more &amp; more about the talks in Geneva, and ends.</p>\
        </article><div class='comments'><p>A reader's comment, long enough to be a paragraph.</p></div>\
        </body></html>";

    #[test]
    fn a_page_longer_than_the_summary_gives_its_article_as_paragraphs() {
        let body = article_body(PAGE.as_bytes(), None, "<p>Short summary.</p>").unwrap();
        assert!(
            body.contains("<p>The second paragraph says more &amp; more"),
            "{body}"
        );
        assert!(
            !body.contains("Home") && !body.contains("comment"),
            "{body}"
        );
    }

    #[test]
    fn a_summary_with_more_words_than_the_page_is_kept() {
        let summary = "word ".repeat(200);
        assert_eq!(article_body(PAGE.as_bytes(), None, &summary), None);
    }
}
