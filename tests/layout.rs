//! The layout as ARCHITECTURE.md states it: the modules import one another without a
//! cycle, so each stage can be read (and changed) knowing only what is below it.
//!
//! Read from the source text: a module's dependencies are the `crate::x` paths (and,
//! inside a folder module, the `super::y` siblings) outside comments and test modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `crate::a::b` → `a` or `a::b` (the second when inside `a`), with `super::b` too.
fn names_after<'a>(code: &'a str, prefix: &str) -> Vec<(&'a str, Option<&'a str>)> {
    let ident = |s: &'a str| {
        let end = s
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(s.len());
        &s[..end]
    };
    code.match_indices(prefix)
        .map(|(at, _)| {
            let rest = &code[at + prefix.len()..];
            let first = ident(rest);
            let second = rest[first.len()..]
                .strip_prefix("::")
                .map(ident)
                .filter(|s| !s.is_empty());
            (first, second)
        })
        .filter(|(first, _)| !first.is_empty())
        .collect()
}

/// The module graph: top-level modules, and the files of folder modules apart.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        if parts == ["lib"] || parts == ["main"] {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let text = match text.find("#[cfg(test)]\nmod tests") {
            Some(at) => &text[..at],
            None => &text[..],
        };
        let code: String = text
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let top = parts[0].clone();
        let me = parts.join("::");
        for (first, second) in names_after(&code, "crate::") {
            if first != top {
                edges
                    .entry(me.clone())
                    .or_default()
                    .insert(first.to_string());
            } else if let (Some(second), Some(own)) = (second, parts.get(1)) {
                if second != own {
                    let to = format!("{top}::{second}");
                    edges.entry(me.clone()).or_default().insert(to);
                }
            }
        }
        if let Some(own) = parts.get(1) {
            for (sibling, _) in names_after(&code, "super::") {
                let exists = src.join(&top).join(format!("{sibling}.rs")).exists()
                    || src.join(&top).join(sibling).is_dir();
                if exists && sibling != own {
                    let to = format!("{top}::{sibling}");
                    edges.entry(me.clone()).or_default().insert(to);
                }
            }
        }
    }
    // A file of a folder module depends, for the top-level graph, as its folder does.
    let mut merged = edges.clone();
    for (from, tos) in &edges {
        if let Some((top, _)) = from.split_once("::") {
            let tops: BTreeSet<String> =
                tos.iter().filter(|t| !t.contains("::")).cloned().collect();
            merged.entry(top.to_string()).or_default().extend(tops);
        }
    }
    merged
}

/// A cycle through `from`, if any, as the path that closes it.
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, edges, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

#[test]
fn the_modules_import_one_another_without_a_cycle() {
    let edges = graph();
    assert!(
        edges.get("daemon").is_some_and(|d| d.contains("store")),
        "the graph reader finds nothing: {edges:?}"
    );
    if let Some(found) = cycle(&edges) {
        panic!("import cycle: {}", found.join(" -> "));
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.entry("a".into()).or_default().insert("b".into());
    edges.entry("b".into()).or_default().insert("c".into());
    assert_eq!(cycle(&edges), None);
    edges.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        cycle(&edges),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
