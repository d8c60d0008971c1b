//! hookgate's integration tests: one binary, a module per area.

mod api;
mod cli;
mod config;
mod crash;
mod delivery;
mod durability;
mod ingest;
mod journal;
mod messages;
mod metrics;
mod ratelimit;
mod support;
mod tls;
