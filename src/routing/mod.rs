//! Routing: which destinations an event goes to.
//!
//! [`pattern`] holds event-type patterns (`invoice.*`, `orders/*`, comma-separated globs) and
//! event-type validation; matching is pure CPU so it can run inside the ingest transaction.

pub mod pattern;
