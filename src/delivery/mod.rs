//! Delivery: what turns queued delivery rows into HTTP requests at destinations.
//!
//! - [`scheduler`]: the queue in memory, one [`lane`] per destination, attempts as tasks.
//! - [`attempt`]: one attempt, from building the request to recording its outcome.
//! - [`client`]: the pooled HTTP(S) client with the SSRF check at connect time.
//! - Pure parts: [`retry`] (policy and outcome classification), [`signer`] (Standard Webhooks
//!   signatures), [`ssrf`] (which addresses hookgate refuses to call).

pub mod attempt;
pub mod client;
pub mod lane;
pub mod retry;
pub mod scheduler;
pub mod signer;
pub mod ssrf;
