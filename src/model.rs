//! The control-plane records every layer shares: accounts, API keys, sources, destinations,
//! routes, as they are stored and as the API shows them.
//!
//! These are plain data. Validation of client input lives with the API resource that accepts
//! it (`http/api/*`); persistence lives in `store/`. Secrets held here (API key hashes, source
//! verification secrets, destination signing secrets and auth) have `Debug` impls that mask
//! them, because these records travel through spans and error paths.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::delivery::retry::RetryPolicy;
use crate::ids::{AccountId, ApiKeyId, DeliveryId, DestinationId, EventId, RouteId, SourceId};
use crate::routing::pattern::EventTypePattern;
use crate::verify::VerificationConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub created_at_ms: u64,
    /// Where hookgate sends the account's own notices (e.g. `endpoint.disabled`).
    #[serde(default)]
    pub notification_destination_id: Option<DestinationId>,
    /// Days the account's events are kept after receipt (one with a delivery still queued is
    /// kept regardless); `None`: the global `[retention] days`, 0: for ever. Absent in records
    /// written before retention existed.
    #[serde(default)]
    pub retention_days: Option<u32>,
}

/// What an API key may do. Spelled as the contract spells it; underscores accepted on input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Scope {
    /// Everything in its account.
    #[serde(rename = "full")]
    Full,
    /// GET requests only.
    #[serde(rename = "read-only", alias = "read_only")]
    ReadOnly,
    /// Only `POST /v1/messages`.
    #[serde(rename = "send-only", alias = "send_only")]
    SendOnly,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub account_id: AccountId,
    pub name: String,
    pub scope: Scope,
    /// The first characters of the key, so an operator can tell keys apart; not a secret.
    pub prefix: String,
    /// SHA-256 of the whole key. Keys carry 192 random bits, so a fast hash is enough: there
    /// is nothing to brute-force that a slow KDF would protect.
    pub hash: [u8; 32],
    pub created_at_ms: u64,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("scope", &self.scope)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Inbound: providers POST to `/ingest/<path_token>`.
    Webhook,
    /// Outbound: fed by `POST /v1/messages`.
    Api,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub id: SourceId,
    pub account_id: AccountId,
    pub name: String,
    pub kind: SourceKind,
    /// Unguessable token in the ingest URL; only `webhook` sources have one.
    pub path_token: Option<String>,
    pub verification: Option<VerificationConfig>,
    /// Ingest requests per second accepted at most (token bucket); `None`: unlimited.
    #[serde(default)]
    pub rate_limit_per_s: Option<u32>,
    /// Bucket size: a burst this large passes at once (default: one second's worth).
    #[serde(default)]
    pub rate_limit_burst: Option<u32>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DestinationAuth {
    /// `Authorization: Bearer <token>`.
    Bearer { token: String },
    /// `Authorization: Basic base64(username:password)`.
    Basic { username: String, password: String },
}

impl fmt::Debug for DestinationAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bearer { .. } => f.write_str("Bearer(****)"),
            Self::Basic { username, .. } => write!(f, "Basic({username}:****)"),
        }
    }
}

impl DestinationAuth {
    /// The same auth with its secret parts masked, for API responses.
    pub fn redacted(&self) -> Self {
        match self {
            Self::Bearer { .. } => Self::Bearer { token: MASK.into() },
            Self::Basic { username, .. } => Self::Basic {
                username: username.clone(),
                password: MASK.into(),
            },
        }
    }
}

/// Shown in place of a secret in responses.
pub const MASK: &str = "****";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    /// Deliveries to the destination run concurrently, up to `max_in_flight`.
    #[default]
    None,
    /// One at a time, in event order; a failing head blocks this destination only.
    Fifo,
}

/// A `whsec_` signing secret and, for a rotated-out one, when it stops signing.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKey {
    pub secret: String,
    pub expires_at_ms: Option<u64>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("secret", &MASK)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Destination {
    pub id: DestinationId,
    pub account_id: AccountId,
    pub name: String,
    pub url: String,
    pub auth: Option<DestinationAuth>,
    pub headers: BTreeMap<String, String>,
    pub timeout_ms: u32,
    pub retry: RetryPolicy,
    pub rate_limit_per_s: Option<u32>,
    pub max_in_flight: u32,
    pub ordering: Ordering,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Current secret first, then rotated-out secrets still in their grace period.
    pub signing_keys: Vec<SigningKey>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub id: RouteId,
    pub account_id: AccountId,
    /// `None`: a catch-all for every source of the account.
    pub source_id: Option<SourceId>,
    pub destination_id: DestinationId,
    /// `None`: every event type.
    pub event_type_pattern: Option<EventTypePattern>,
    pub created_at_ms: u64,
}

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A provider's webhook through `POST /ingest/<token>`.
    Inbound,
    /// A message through `POST /v1/messages`.
    Outbound,
}

/// A persisted request or message. Immutable once written: its status is derived from its
/// deliveries, so delivery progress never rewrites (possibly large) event bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: EventId,
    pub account_id: AccountId,
    pub source_id: SourceId,
    pub origin: Origin,
    pub received_at_ms: u64,
    pub event_type: Option<String>,
    /// The provider's delivery id (inbound) or the idempotency key (outbound): the dedupe key.
    pub dedupe_key: Option<String>,
    pub content_type: Option<String>,
    /// Request headers kept with the event (hop-by-hop and credentials dropped).
    pub headers: Vec<(String, Vec<u8>)>,
    /// Shared, not copied: the request body as read, stored and later sent.
    pub body: bytes::Bytes,
}

/// An event without headers and body: what listings and the scheduler's bookkeeping need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    pub id: EventId,
    pub account_id: AccountId,
    pub source_id: SourceId,
    pub origin: Origin,
    pub received_at_ms: u64,
    pub event_type: Option<String>,
    pub dedupe_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivering,
    RetryScheduled,
    Delivered,
    DeadLetter,
}

/// One event on its way to one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub account_id: AccountId,
    pub destination_id: DestinationId,
    pub status: DeliveryStatus,
    /// Attempts made, ever; numbers the attempt log.
    pub attempts: u32,
    /// `attempts` when the delivery was last replayed: the retry policy counts attempts since
    /// then, so a replayed dead letter gets a full schedule again.
    pub retry_base: u32,
    pub next_attempt_at_ms: Option<u64>,
    pub last_status_code: Option<u16>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

/// An event's status, summarising its deliveries (DESIGN.md "Lifecycle").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Stored; no route matched it.
    Received,
    Queued,
    Delivering,
    RetryScheduled,
    Delivered,
    DeadLetter,
}

impl EventStatus {
    /// The precedence: work in progress outranks outcomes, and an event is `delivered` only
    /// when every delivery is.
    pub fn summarise(statuses: impl IntoIterator<Item = DeliveryStatus>) -> Self {
        let (mut any, mut delivering, mut retry, mut pending, mut dead) =
            (false, false, false, false, false);
        for s in statuses {
            any = true;
            match s {
                DeliveryStatus::Delivering => delivering = true,
                DeliveryStatus::RetryScheduled => retry = true,
                DeliveryStatus::Pending => pending = true,
                DeliveryStatus::DeadLetter => dead = true,
                DeliveryStatus::Delivered => {}
            }
        }
        match () {
            _ if !any => Self::Received,
            _ if delivering => Self::Delivering,
            _ if retry => Self::RetryScheduled,
            _ if pending => Self::Queued,
            _ if dead => Self::DeadLetter,
            _ => Self::Delivered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeliveryStatus::*;

    #[test]
    fn event_status_summarises_deliveries() {
        let cases: &[(&[DeliveryStatus], EventStatus)] = &[
            (&[], EventStatus::Received),
            (&[Pending], EventStatus::Queued),
            (&[Delivered, Pending], EventStatus::Queued),
            (
                &[Delivered, Delivering, RetryScheduled],
                EventStatus::Delivering,
            ),
            (&[Delivered, RetryScheduled], EventStatus::RetryScheduled),
            (&[Delivered, Delivered], EventStatus::Delivered),
            (&[Delivered, DeadLetter], EventStatus::DeadLetter),
            (&[DeadLetter, Pending], EventStatus::Queued),
        ];
        for (deliveries, want) in cases {
            assert_eq!(
                EventStatus::summarise(deliveries.iter().copied()),
                *want,
                "{deliveries:?}"
            );
        }
    }
}

/// Why an attempt got no HTTP answer (or was not made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttemptFailure {
    /// `timeout`, `connect`, `dns`, `tls`, `ssrf_blocked`, `invalid_url`, `protocol`, `other`,
    /// or `destination_deleted`.
    pub kind: String,
    pub message: String,
}

/// One HTTP try of one delivery. Immutable once recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub attempt: u32,
    pub delivery_id: DeliveryId,
    pub destination_id: DestinationId,
    pub started_at_ms: u64,
    pub duration_ms: u64,
    pub status_code: Option<u16>,
    pub error: Option<AttemptFailure>,
    /// The first 4 KiB of the response body, lossily decoded.
    pub response_body: String,
}

/// Something the account should know about, e.g. a destination hookgate disabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub id: u128,
    /// `endpoint.disabled`.
    pub kind: String,
    pub destination_id: Option<DestinationId>,
    pub message: String,
    pub created_at_ms: u64,
}
