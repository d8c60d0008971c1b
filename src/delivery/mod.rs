//! Delivery: what turns queued delivery rows into HTTP requests at destinations.
//!
//! The pure parts live here now: [`retry`] (policy and outcome classification), [`signer`]
//! (Standard Webhooks signatures) and [`ssrf`] (which addresses hookgate refuses to call). The
//! scheduler, lanes and HTTP client build on them.

pub mod retry;
pub mod signer;
pub mod ssrf;
