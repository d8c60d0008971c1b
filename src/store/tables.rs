//! Every redb table, with its key layout, and the schema version.
//!
//! Keys of per-account resources are `(account_raw, id_raw)`: a lookup by id is scoped to the
//! caller's account by construction (another account's id is simply absent), and a listing
//! is one range scan in creation order. Values are `codec`-encoded records.
//!
//! Bump [`SCHEMA_VERSION`] and add a migration in `store::migrate` on any layout change.

use redb::TableDefinition;

/// Layout version of this file. Stored under `meta["schema_version"]`.
pub const SCHEMA_VERSION: u64 = 1;

/// `"schema_version"` → version.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// `account_raw` → Account.
pub const ACCOUNTS: TableDefinition<u128, &[u8]> = TableDefinition::new("accounts");

/// `(account_raw, key_raw)` → ApiKey.
pub const API_KEYS: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("api_keys");

/// SHA-256 of the key → `(account_raw, key_raw)`. Authentication is one lookup by hash.
pub const API_KEY_HASHES: TableDefinition<&[u8; 32], (u128, u128)> =
    TableDefinition::new("api_key_hashes");

/// `(account_raw, source_raw)` → Source.
pub const SOURCES: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("sources");

/// `path_token` → `(account_raw, source_raw)`.
pub const SOURCE_TOKENS: TableDefinition<&str, (u128, u128)> =
    TableDefinition::new("source_tokens");

/// `(account_raw, name)` → `source_raw`. Source names are unique per account so that
/// `POST /v1/messages` can name its source.
pub const SOURCE_NAMES: TableDefinition<(u128, &str), u128> = TableDefinition::new("source_names");

/// `(account_raw, destination_raw)` → Destination.
pub const DESTINATIONS: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("destinations");

/// `(account_raw, route_raw)` → Route.
pub const ROUTES: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("routes");

/// `(account_raw, event_raw)` → Event (binary). Event ids are time-ordered, so inserts
/// append within an account and a time range is a key range.
pub const EVENTS: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("events");

/// `(event_raw, delivery_raw)` → Delivery (binary). An event's deliveries are one range.
pub const DELIVERIES: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("deliveries");

/// The queue: `(due_at_ms, delivery_raw)` → `(account_raw, event_raw, destination_raw)`.
/// Holds exactly the deliveries that still need an attempt (pending or retry scheduled); for
/// each, `due_at_ms` equals the delivery record's `next_attempt_at_ms`. An attempt in flight
/// keeps its entry until its outcome commits, so a crash re-queues it.
pub const DUE: TableDefinition<(u64, u128), (u128, u128, u128)> = TableDefinition::new("due");

/// `(event_raw, delivery_raw, attempt_number)` → Attempt (JSON). Immutable.
pub const ATTEMPTS: TableDefinition<(u128, u128, u32), &[u8]> = TableDefinition::new("attempts");

/// `(account_raw, delivery_raw)` → `(event_raw, destination_raw)`: dead-lettered deliveries.
pub const DEAD_LETTERS: TableDefinition<(u128, u128), (u128, u128)> =
    TableDefinition::new("dead_letters");

/// `(account_raw, destination_raw)` → `(failing_since_ms, consecutive_dead_letters)`: written
/// only when either changes, not on every attempt.
pub const DESTINATION_HEALTH: TableDefinition<(u128, u128), (u64, u32)> =
    TableDefinition::new("destination_health");

/// `(account_raw, notice_raw)` → Notice (JSON), e.g. `endpoint.disabled`.
pub const NOTICES: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("notices");

/// `(source_raw, dedupe_key)` → `(event_raw, received_at_ms)`: the provider's delivery id (or
/// the send API's idempotency key) of recent events, for deduplication within the window.
pub const DEDUPE: TableDefinition<(u128, &str), (u128, u64)> = TableDefinition::new("dedupe");
