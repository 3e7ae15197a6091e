//! Integration tests: the real `newswatch` binary on real files and configs.
//!
//! One test binary (as ripgrep does), so the crate links once; each module below is
//! one area of behaviour.

// Helpers: run the binary, find fixtures, write temporary configs.
mod util;

// `newswatch scan`: articles, entities and topics from fixtures of every kind.
mod scan;
// `newswatch check`: the shipped config is valid; broken ones name every error.
mod check;
// The seed documents in ../shared, when present (the project never depends on them).
mod seeds;
