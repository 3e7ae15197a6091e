//! newswatch: a streaming news monitor.
//!
//! Feeds are polled, every item goes through one pipeline of cleaning, entity and topic
//! rules, and items that match a tracked topic are stored and raised as alerts.
//!
//! # Layout
//!
//! - [`config`]: the TOML file and environment overrides, validated into a [`config::Config`];
//! - [`parse`]: bytes of a feed, a web page or a text file into documents and items;
//! - [`pipeline`]: cleaning, entities and topics; pure functions, text in, findings out;
//! - [`model`]: the domain types the stages pass between them;
//! - [`cli`]: the command line, a thin layer over the stages.

pub mod cli;
pub mod config;
pub mod model;
pub mod parse;
pub mod pipeline;
