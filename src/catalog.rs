//! The in-memory catalog the ingest path reads: sources by path token (with their verifier
//! built) and each account's routes prepared for matching.
//!
//! Loaded from the store at start and updated by the API after each committed change, so an
//! ingest request costs one hash lookup instead of a read transaction, a JSON decode and a
//! verifier build. The catalog follows the store; it is never the source of truth. A request
//! racing a route change may see the routes from just before or just after it, the same as if
//! it had arrived a moment earlier or later.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};

use crate::ids::{AccountId, ApiKeyId, SourceId};
use crate::model::{Scope, Source, SourceKind};
use crate::routing::AccountRoutes;
use crate::store::{Store, StoreError};
use crate::verify::{self, Verifier};

/// What ingest needs to know about a source.
pub struct SourceEntry {
    pub id: SourceId,
    pub name: String,
    /// `id` as text, made once: it labels this source's metrics on every request.
    pub label: String,
    pub account: AccountId,
    pub kind: SourceKind,
    /// `Err` holds why a stored verification config failed to build; such a source refuses
    /// every request rather than accepting unverified ones.
    pub verifier: Result<Arc<dyn Verifier>, String>,
    /// The source's ingest rate limit; the bucket starts full.
    pub limiter: Option<governor::DefaultDirectRateLimiter>,
}

/// An authenticated API key as the auth check needs it.
#[derive(Debug, Clone, Copy)]
pub struct KeyEntry {
    pub account: AccountId,
    pub key_id: ApiKeyId,
    pub scope: Scope,
}

#[derive(Default)]
pub struct Catalog {
    by_token: RwLock<HashMap<String, Arc<SourceEntry>>>,
    by_id: RwLock<HashMap<SourceId, Arc<SourceEntry>>>,
    by_name: RwLock<HashMap<(AccountId, String), SourceId>>,
    routes: RwLock<HashMap<AccountId, Arc<AccountRoutes>>>,
    /// Keys seen valid, by SHA-256. Filled on first use, emptied of a key when it is revoked.
    keys: RwLock<HashMap<[u8; 32], KeyEntry>>,
    /// Per-key request rate limiters of the `/v1` API, made on a key's first request.
    key_limiters: RwLock<HashMap<ApiKeyId, Arc<governor::DefaultDirectRateLimiter>>>,
}

fn entry(source: &Source) -> SourceEntry {
    let config = source
        .verification
        .clone()
        .unwrap_or_else(|| verify::VerificationConfig::new(verify::Provider::None));
    let verifier = verify::build(&config).map_err(|e| {
        tracing::error!(source_id = %source.id, error = %e, "Stored verification config does not build; the source refuses events.");
        e.to_string()
    });
    SourceEntry {
        id: source.id,
        name: source.name.clone(),
        label: source.id.to_string(),
        account: source.account_id,
        kind: source.kind,
        verifier,
        limiter: source
            .rate_limit_per_s
            .and_then(NonZeroU32::new)
            .map(|rate| {
                let burst = source
                    .rate_limit_burst
                    .and_then(NonZeroU32::new)
                    .unwrap_or(rate);
                governor::RateLimiter::direct(governor::Quota::per_second(rate).allow_burst(burst))
            }),
    }
}

// === impl Catalog ===

impl Catalog {
    pub fn load(store: &Store) -> Result<Self, StoreError> {
        let catalog = Catalog::default();
        for source in store.all_sources()? {
            catalog.upsert_source(&source);
        }
        let mut by_account: HashMap<AccountId, Vec<crate::model::Route>> = HashMap::new();
        for route in store.all_routes()? {
            by_account.entry(route.account_id).or_default().push(route);
        }
        let mut routes = write(&catalog.routes);
        for (account, list) in by_account {
            routes.insert(account, Arc::new(AccountRoutes::new(list)));
        }
        drop(routes);
        Ok(catalog)
    }

    pub fn source_by_token(&self, token: &str) -> Option<Arc<SourceEntry>> {
        read(&self.by_token).get(token).cloned()
    }

    pub fn upsert_source(&self, source: &Source) {
        let e = Arc::new(entry(source));
        if let Some(token) = &source.path_token {
            write(&self.by_token).insert(token.clone(), e.clone());
        }
        let old = write(&self.by_id).insert(source.id, e);
        let mut names = write(&self.by_name);
        if let Some(old) = old {
            names.remove(&(old.account, old.name.clone()));
        }
        names.insert((source.account_id, source.name.clone()), source.id);
    }

    pub fn remove_source(&self, source: &Source) {
        if let Some(token) = &source.path_token {
            write(&self.by_token).remove(token);
        }
        if let Some(old) = write(&self.by_id).remove(&source.id) {
            write(&self.by_name).remove(&(old.account, old.name.clone()));
        }
    }

    /// A source of `account` by id (`src_…`) or by name.
    pub fn source_by_id_or_name(&self, account: AccountId, key: &str) -> Option<Arc<SourceEntry>> {
        let id = match SourceId::parse(key) {
            Some(id) => id,
            None => *read(&self.by_name).get(&(account, key.to_owned()))?,
        };
        read(&self.by_id)
            .get(&id)
            .filter(|e| e.account == account)
            .cloned()
    }

    pub fn key(&self, hash: &[u8; 32]) -> Option<KeyEntry> {
        read(&self.keys).get(hash).copied()
    }

    pub fn remember_key(&self, hash: [u8; 32], entry: KeyEntry) {
        write(&self.keys).insert(hash, entry);
    }

    /// Called after a key's revocation commits: the next request with it is refused.
    pub fn forget_key(&self, hash: &[u8; 32]) {
        if let Some(entry) = write(&self.keys).remove(hash) {
            write(&self.key_limiters).remove(&entry.key_id);
        }
    }

    /// Takes one request from `key`'s bucket; `Err` carries how long until one is available.
    pub fn check_key_rate(
        &self,
        key: ApiKeyId,
        per_s: NonZeroU32,
        burst: NonZeroU32,
    ) -> Result<(), std::time::Duration> {
        use governor::clock::{Clock, DefaultClock};
        let existing = read(&self.key_limiters).get(&key).cloned();
        let limiter = match existing {
            Some(l) => l,
            None => write(&self.key_limiters)
                .entry(key)
                .or_insert_with(|| {
                    Arc::new(governor::RateLimiter::direct(
                        governor::Quota::per_second(per_s).allow_burst(burst),
                    ))
                })
                .clone(),
        };
        limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    pub fn routes(&self, account: AccountId) -> Arc<AccountRoutes> {
        read(&self.routes)
            .get(&account)
            .cloned()
            .unwrap_or_default()
    }

    /// Re-reads one account's routes from the store; called after any committed change to
    /// them (route created or deleted, source or destination deleted).
    pub fn reload_routes(&self, store: &Store, account: AccountId) -> Result<(), StoreError> {
        let table = AccountRoutes::new(store.account_routes(account)?);
        let mut routes = write(&self.routes);
        if table.is_empty() {
            routes.remove(&account);
        } else {
            routes.insert(account, Arc::new(table));
        }
        Ok(())
    }
}

// A poisoned lock only means another thread panicked mid-update of a plain map; the map itself
// is still a valid map, so keep serving rather than turning one panic into an outage.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}
