//! hookgate's integration tests: one binary, a module per area.

mod api;
mod cache;
mod cli;
mod config;
mod crash;
mod dashboard;
mod delivery;
mod durability;
mod ingest;
mod journal;
mod logs;
mod messages;
mod metrics;
mod ratelimit;
mod retention;
mod support;
mod tls;
