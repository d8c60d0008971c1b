//! hookgate's integration tests: one binary, a module per area.

mod api;
mod config;
mod durability;
mod journal;
mod support;
