//! How fast lol_html lexes the repository's HTML fixtures against html5ever's
//! tokenizer, the lexer the cleaner streams (src/pipeline/clean/html.rs): both only
//! lex and hand over text, so the difference is the lexer's. Prints µs per file and
//! per KB over all files.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use lol_html::{doc_text, element, HtmlRewriter, Settings};

/// Counts text bytes and tags; switches to raw text after script/style/title as
/// the cleaner does, so both lexers see the same token stream.
#[derive(Default)]
struct Count {
    text: usize,
    tags: usize,
}

impl TokenSink for Count {
    type Handle = ();
    fn process_token(&mut self, token: Token, _line: u64) -> TokenSinkResult<()> {
        match token {
            Token::CharacterTokens(t) => self.text += t.len(),
            Token::TagToken(tag) => {
                self.tags += 1;
                if tag.kind == TagKind::StartTag {
                    match &*tag.name {
                        "script" => return TokenSinkResult::RawData(RawKind::ScriptData),
                        "style" | "noscript" | "iframe" | "xmp" | "noembed" | "noframes" => {
                            return TokenSinkResult::RawData(RawKind::Rawtext)
                        }
                        "title" | "textarea" => return TokenSinkResult::RawData(RawKind::Rcdata),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

fn html5ever(html: &str) -> usize {
    let mut tokenizer = Tokenizer::new(Count::default(), TokenizerOpts::default());
    let mut queue = BufferQueue::default();
    queue.push_back(StrTendril::from_slice(html));
    let _ = tokenizer.feed(&mut queue);
    tokenizer.end();
    tokenizer.sink.text + tokenizer.sink.tags
}

/// Text chunks only.
fn lol_text(html: &str) -> usize {
    let mut text = 0;
    {
        let mut rewriter = HtmlRewriter::new(
            Settings {
                document_content_handlers: vec![doc_text!(|t| {
                    text += t.as_str().len();
                    Ok(())
                })],
                ..Settings::new()
            },
            |_: &[u8]| {},
        );
        let _ = rewriter.write(html.as_bytes());
        let _ = rewriter.end();
    }
    text
}

/// Text chunks and an end-tag handler on the block elements, which the cleaner
/// needs for line breaks.
fn lol_blocks(html: &str) -> usize {
    let text = std::cell::Cell::new(0usize);
    // End-tag handlers must own what they touch.
    let blocks = std::rc::Rc::new(std::cell::Cell::new(0usize));
    {
        let mut rewriter = HtmlRewriter::new(
            Settings {
                document_content_handlers: vec![doc_text!(|t| {
                    text.set(text.get() + t.as_str().len());
                    Ok(())
                })],
                element_content_handlers: vec![element!(
                    "p, div, li, h1, h2, h3, h4, h5, h6, br, tr, td, th, section, article, header, footer, nav, ul, ol, table, blockquote, figure, figcaption, aside, form",
                    |el| {
                        blocks.set(blocks.get() + 1);
                        let at_end = blocks.clone();
                        if let Some(handlers) = el.end_tag_handlers() {
                            let handler: lol_html::EndTagHandler<'static> =
                                Box::new(move |_end| {
                                    at_end.set(at_end.get() + 1);
                                    Ok(())
                                });
                            handlers.push(handler);
                        }
                        Ok(())
                    }
                )],
                ..Settings::new()
            },
            |_: &[u8]| {},
        );
        let _ = rewriter.write(html.as_bytes());
        let _ = rewriter.end();
    }
    text.get() + blocks.get()
}

fn html_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            html_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "html") {
            out.push(path);
        }
    }
}

/// Mean time of `f` on `html` over at least `budget`.
fn time(html: &str, budget: Duration, f: fn(&str) -> usize) -> Duration {
    std::hint::black_box(f(html));
    let start = Instant::now();
    let mut runs = 0u32;
    while start.elapsed() < budget || runs < 3 {
        std::hint::black_box(f(std::hint::black_box(html)));
        runs += 1;
    }
    start.elapsed() / runs
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let mut files = Vec::new();
    html_files(&root, &mut files);
    files.sort();
    let budget = Duration::from_millis(
        std::env::var("BUDGET_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(300),
    );
    let (mut bytes, mut t5, mut tl, mut tb) = (0usize, 0.0, 0.0, 0.0);
    println!("file                                  KB   html5ever  lol text  lol+blocks  (µs)");
    for path in &files {
        let raw = std::fs::read(path).expect("reading a fixture");
        let html = String::from_utf8_lossy(&raw).into_owned();
        let a = time(&html, budget, html5ever).as_secs_f64() * 1e6;
        let b = time(&html, budget, lol_text).as_secs_f64() * 1e6;
        let c = time(&html, budget, lol_blocks).as_secs_f64() * 1e6;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        println!("{name:36} {:5.0} {a:10.0} {b:9.0} {c:11.0}", html.len() as f64 / 1024.0);
        bytes += html.len();
        t5 += a;
        tl += b;
        tb += c;
    }
    let kb = bytes as f64 / 1024.0;
    println!(
        "all {} files, {kb:.0} KB: html5ever {:.2} µs a KB; lol_html text {:.2} µs a KB ({:.2}×); with block end tags {:.2} µs a KB ({:.2}×)",
        files.len(),
        t5 / kb,
        tl / kb,
        tl / t5,
        tb / kb,
        tb / t5
    );
}
