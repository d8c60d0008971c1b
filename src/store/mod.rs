//! The `Store` boundary: everything hookgate persists, behind typed methods.
//!
//! redb is the embedded backend; its types never leave this module, so a PostgreSQL backend
//! can stand behind the same methods later (DESIGN.md, "Beyond one machine"). Reads open a
//! short read transaction on the shared `Database` (they pin pages, so none is held across an
//! `.await`); every write goes through the [`journal`] and is durable when its future resolves.
//!
//! Durability choices, written down because correctness rests on them:
//! - Every commit is `Durability::Immediate` (fsync) — see `journal.rs` invariant 2.
//! - Two-phase commit and quick-repair stay off (redb defaults). After an unclean stop redb
//!   runs its full repair on open, which costs start-up time proportional to the file, not
//!   correctness (the `repair` module keeps that start alive under systemd); quick-repair
//!   would turn on two-phase commit (a second fsync) and write the allocator state in every
//!   commit on the hot path.

pub mod admin;
pub mod codec;
pub mod deliveries;
pub mod events;
pub mod journal;
mod repair;
pub mod retention;
pub mod tables;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use prometheus::Registry;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::StorageConfig;
use crate::ids::{AccountId, ApiKeyId, DestinationId, RouteId, SourceId};
use crate::model::{Account, ApiKey, Destination, Route, Source};
use codec::CodecError;
use journal::{Journal, JournalMetrics, JournalOptions, JournalStats, JournalThread};
use tables::*;

/// File name of the database inside `storage.data_dir`.
pub const DB_FILE: &str = "hookgate.redb";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: redb::DatabaseError,
    },
    #[error("database schema version {found} is newer than this hookgate supports ({supported})")]
    SchemaTooNew { found: u64, supported: u64 },
    #[error("cannot register storage metrics")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot start the journal writer thread")]
    SpawnWriter(#[source] std::io::Error),
    #[error("storage operation failed")]
    Redb(#[from] redb::Error),
    #[error("stored record in table {table} is unreadable")]
    Codec {
        table: &'static str,
        #[source]
        source: CodecError,
    },
    #[error("the journal queue is full")]
    Overloaded,
    #[error("the journal is shutting down")]
    ShuttingDown,
    #[error("the write batch failed")]
    BatchFailed(#[source] Arc<StoreError>),
    // Logical outcomes below: a job returning one of these has written nothing.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

impl StoreError {
    /// Storage failures doom a journal batch; logical outcomes do not (journal invariant 5).
    pub fn is_storage_failure(&self) -> bool {
        !matches!(
            self,
            Self::NotFound(_) | Self::Conflict(_) | Self::Invalid { .. }
        )
    }

    /// Transient conditions a client should retry after a pause (503 + Retry-After).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Overloaded | Self::ShuttingDown)
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                Self::Redb(redb::Error::from(e))
            }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A per-account record stored in a `(account, id)`-keyed table.
trait Record: Serialize + DeserializeOwned {
    const TABLE: TableDefinition<'static, (u128, u128), &'static [u8]>;
    const NAME: &'static str;
    fn key(&self) -> (u128, u128);
}

impl Record for ApiKey {
    const TABLE: TableDefinition<'static, (u128, u128), &'static [u8]> = API_KEYS;
    const NAME: &'static str = "api key";
    fn key(&self) -> (u128, u128) {
        (self.account_id.raw(), self.id.raw())
    }
}
impl Record for Source {
    const TABLE: TableDefinition<'static, (u128, u128), &'static [u8]> = SOURCES;
    const NAME: &'static str = "source";
    fn key(&self) -> (u128, u128) {
        (self.account_id.raw(), self.id.raw())
    }
}
impl Record for Destination {
    const TABLE: TableDefinition<'static, (u128, u128), &'static [u8]> = DESTINATIONS;
    const NAME: &'static str = "destination";
    fn key(&self) -> (u128, u128) {
        (self.account_id.raw(), self.id.raw())
    }
}
impl Record for Route {
    const TABLE: TableDefinition<'static, (u128, u128), &'static [u8]> = ROUTES;
    const NAME: &'static str = "route";
    fn key(&self) -> (u128, u128) {
        (self.account_id.raw(), self.id.raw())
    }
}

fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    codec::decode(bytes).map_err(|source| StoreError::Codec { table, source })
}

/// A page of a listing: the records and whether more follow.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_more: bool,
}

/// Told of every queue entry a commit creates (new events' deliveries, replays).
pub type DueListener = Arc<dyn Fn(&[deliveries::DueEntry]) + Send + Sync>;

/// The store handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    journal: Journal,
    path: PathBuf,
    due_listener: Arc<std::sync::OnceLock<DueListener>>,
}

// === impl Store ===

impl Store {
    /// A store in `dir` with small test-sized settings, for unit tests of the store modules.
    #[cfg(test)]
    pub(crate) fn open_for_test(dir: &Path) -> Store {
        let config = StorageConfig {
            data_dir: dir.to_owned(),
            journal_queue_capacity: 64,
            journal_max_batch: 64,
            journal_enqueue_timeout: std::time::Duration::from_secs(5),
            cache_size_bytes: 16 << 20,
        };
        let (store, _thread) = Store::open(&config, &Registry::new()).unwrap();
        store
    }

    /// Opens (or creates) the database and starts the journal writer.
    pub fn open(
        config: &StorageConfig,
        registry: &Registry,
    ) -> Result<(Store, JournalThread), StoreError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StoreError::CreateDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let path = config.data_dir.join(DB_FILE);
        let repair = repair::RepairReport::new(&path);
        let report = repair.clone();
        let opened = Database::builder()
            .set_cache_size(config.cache_size_bytes)
            .set_repair_callback(move |session| report.progress(session.progress()))
            .create(&path);
        repair.finish(opened.is_ok());
        let db = opened.map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        init_schema(&db)?;
        if let Some(newest) = newest_event_id(&db)? {
            crate::ids::resume_after(newest);
        }
        let metrics = JournalMetrics::register(registry)?;
        let db = Arc::new(db);
        let due_listener: Arc<std::sync::OnceLock<DueListener>> = Arc::default();
        let (journal, thread) = Journal::spawn(
            db.clone(),
            JournalOptions {
                queue_capacity: config.journal_queue_capacity,
                max_batch: config.journal_max_batch,
                enqueue_timeout: config.journal_enqueue_timeout,
            },
            metrics,
            due_listener.clone(),
        )?;
        Ok((
            Store {
                db,
                journal,
                path,
                due_listener,
            },
            thread,
        ))
    }

    /// Sets who hears of new queue entries (the scheduler); the first call wins.
    pub fn set_due_listener(&self, listener: DueListener) {
        let _ = self.due_listener.set(listener);
    }

    /// Names the queue entries `entries(result)` for the listener, if one is set (nobody
    /// needs them otherwise).
    fn due_hook<R: 'static>(
        &self,
        entries: impl Fn(&R, &mut Vec<deliveries::DueEntry>) + Send + 'static,
    ) -> Option<journal::QueuedBy<R>> {
        self.due_listener.get()?;
        Some(Box::new(entries))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn journal_stats(&self) -> &Arc<JournalStats> {
        self.journal.stats()
    }

    /// The journal itself, for callers (benchmarks, tests) that drive it directly.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Whether the last commit succeeded (for `/readyz`).
    pub fn is_writable(&self) -> bool {
        self.journal
            .stats()
            .writable
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    // --- generic record access -----------------------------------------------------------

    fn get<T: Record>(&self, account: AccountId, id: u128) -> Result<Option<T>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(T::TABLE)?;
        let value = table.get((account.raw(), id))?;
        value.map(|v| decode(T::NAME, v.value())).transpose()
    }

    fn list<T: Record>(
        &self,
        account: AccountId,
        after: Option<u128>,
        limit: usize,
    ) -> Result<Page<T>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(T::TABLE)?;
        let start = match after {
            Some(u128::MAX) => {
                return Ok(Page {
                    items: vec![],
                    has_more: false,
                })
            }
            Some(id) => id + 1,
            None => 0,
        };
        let mut items = Vec::with_capacity(limit.min(256));
        let mut has_more = false;
        // `limit == usize::MAX` reads everything (internal callers only).
        for entry in table.range((account.raw(), start)..=(account.raw(), u128::MAX))? {
            let (_, v) = entry?;
            if items.len() == limit {
                has_more = true;
                break;
            }
            items.push(decode(T::NAME, v.value())?);
        }
        Ok(Page { items, has_more })
    }

    /// Applies `patch` to the stored record inside the journal transaction, so concurrent
    /// PATCHes never overwrite each other with stale copies.
    async fn update<T, F>(&self, account: AccountId, id: u128, patch: F) -> Result<T, StoreError>
    where
        T: Record + Clone + Send + 'static,
        F: FnOnce(&WriteTransaction, &mut T) -> Result<(), StoreError> + Send + 'static,
    {
        self.journal
            .submit(move |batch| {
                let txn = batch.txn();
                let table = txn.open_table(T::TABLE)?;
                let current = match table.get((account.raw(), id))? {
                    Some(v) => decode::<T>(T::NAME, v.value())?,
                    None => return Err(StoreError::NotFound(T::NAME)),
                };
                let mut next = current.clone();
                drop(table);
                patch(txn, &mut next)?;
                let mut table = txn.open_table(T::TABLE)?;
                table.insert(next.key(), codec::encode(&next).as_slice())?;
                Ok(next)
            })
            .await
    }

    // --- accounts and keys ---------------------------------------------------------------

    /// Creates an account together with its first API key, in one commit.
    pub async fn create_account(&self, account: Account, key: ApiKey) -> Result<(), StoreError> {
        self.journal
            .submit(move |batch| {
                let txn = batch.txn();
                txn.open_table(ACCOUNTS)?
                    .insert(account.id.raw(), codec::encode(&account).as_slice())?;
                insert_api_key(txn, &key)
            })
            .await
    }

    pub fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ACCOUNTS)?;
        let value = table.get(id.raw())?;
        value.map(|v| decode("account", v.value())).transpose()
    }

    /// The key whose SHA-256 is `hash`, if any.
    pub fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>, StoreError> {
        let txn = self.db.begin_read()?;
        let index = txn.open_table(API_KEY_HASHES)?;
        let Some(key) = index.get(hash)?.map(|v| v.value()) else {
            return Ok(None);
        };
        let table = txn.open_table(API_KEYS)?;
        let value = table.get(key)?;
        value.map(|v| decode("api key", v.value())).transpose()
    }

    pub async fn create_api_key(&self, key: ApiKey) -> Result<(), StoreError> {
        self.journal
            .submit(move |batch| insert_api_key(batch.txn(), &key))
            .await
    }

    pub fn api_key(&self, account: AccountId, id: ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        self.get(account, id.raw())
    }

    pub fn list_api_keys(
        &self,
        account: AccountId,
        after: Option<u128>,
        limit: usize,
    ) -> Result<Page<ApiKey>, StoreError> {
        self.list(account, after, limit)
    }

    /// Revokes a key; returns its hash so caches can forget it.
    pub async fn delete_api_key(
        &self,
        account: AccountId,
        id: ApiKeyId,
    ) -> Result<[u8; 32], StoreError> {
        self.journal
            .submit(move |batch| {
                let txn = batch.txn();
                let mut table = txn.open_table(API_KEYS)?;
                let Some(removed) = table.remove((account.raw(), id.raw()))? else {
                    return Err(StoreError::NotFound("api key"));
                };
                let key: ApiKey = decode("api key", removed.value())?;
                drop(removed);
                txn.open_table(API_KEY_HASHES)?.remove(&key.hash)?;
                Ok(key.hash)
            })
            .await
    }

    // --- sources -------------------------------------------------------------------------

    pub async fn create_source(&self, source: Source) -> Result<(), StoreError> {
        self.journal
            .submit(move |batch| {
                let txn = batch.txn();
                let acc = source.account_id.raw();
                let mut names = txn.open_table(SOURCE_NAMES)?;
                if names.get((acc, source.name.as_str()))?.is_some() {
                    return Err(name_taken(&source.name));
                }
                names.insert((acc, source.name.as_str()), source.id.raw())?;
                if let Some(token) = &source.path_token {
                    txn.open_table(SOURCE_TOKENS)?
                        .insert(token.as_str(), source.key())?;
                }
                txn.open_table(SOURCES)?
                    .insert(source.key(), codec::encode(&source).as_slice())?;
                Ok(())
            })
            .await
    }

    pub fn source(&self, account: AccountId, id: SourceId) -> Result<Option<Source>, StoreError> {
        self.get(account, id.raw())
    }

    pub fn source_by_name(
        &self,
        account: AccountId,
        name: &str,
    ) -> Result<Option<Source>, StoreError> {
        let txn = self.db.begin_read()?;
        let names = txn.open_table(SOURCE_NAMES)?;
        let Some(id) = names.get((account.raw(), name))?.map(|v| v.value()) else {
            return Ok(None);
        };
        let table = txn.open_table(SOURCES)?;
        let value = table.get((account.raw(), id))?;
        value.map(|v| decode("source", v.value())).transpose()
    }

    pub fn source_by_token(&self, token: &str) -> Result<Option<Source>, StoreError> {
        let txn = self.db.begin_read()?;
        let tokens = txn.open_table(SOURCE_TOKENS)?;
        let Some(key) = tokens.get(token)?.map(|v| v.value()) else {
            return Ok(None);
        };
        let table = txn.open_table(SOURCES)?;
        let value = table.get(key)?;
        value.map(|v| decode("source", v.value())).transpose()
    }

    pub fn list_sources(
        &self,
        account: AccountId,
        after: Option<u128>,
        limit: usize,
    ) -> Result<Page<Source>, StoreError> {
        self.list(account, after, limit)
    }

    /// Applies `patch` to the stored source; keeps the name index in step.
    pub async fn update_source<F>(
        &self,
        account: AccountId,
        id: SourceId,
        patch: F,
    ) -> Result<Source, StoreError>
    where
        F: FnOnce(&mut Source) -> Result<(), StoreError> + Send + 'static,
    {
        self.update(account, id.raw(), move |txn, source: &mut Source| {
            let old_name = source.name.clone();
            patch(source)?;
            if source.name != old_name {
                let mut names = txn.open_table(SOURCE_NAMES)?;
                if names.get((account.raw(), source.name.as_str()))?.is_some() {
                    return Err(name_taken(&source.name));
                }
                names.remove((account.raw(), old_name.as_str()))?;
                names.insert((account.raw(), source.name.as_str()), id.raw())?;
            }
            Ok(())
        })
        .await
    }

    /// Every source of every account (for the catalog at start).
    pub fn all_sources(&self) -> Result<Vec<Source>, StoreError> {
        self.scan_all::<Source>()
    }

    /// Every route of every account (for the catalog at start).
    pub fn all_routes(&self) -> Result<Vec<Route>, StoreError> {
        self.scan_all::<Route>()
    }

    /// Every route of one account.
    pub fn account_routes(&self, account: AccountId) -> Result<Vec<Route>, StoreError> {
        Ok(self.list::<Route>(account, None, usize::MAX)?.items)
    }

    fn scan_all<T: Record>(&self) -> Result<Vec<T>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(T::TABLE)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (_, v) = entry?;
            out.push(decode(T::NAME, v.value())?);
        }
        Ok(out)
    }

    /// Deletes a source, its indexes and the routes that start at it; returns what it was.
    pub async fn delete_source(
        &self,
        account: AccountId,
        id: SourceId,
    ) -> Result<Source, StoreError> {
        self.journal
            .submit(move |batch| {
                let txn = batch.txn();
                let mut table = txn.open_table(SOURCES)?;
                let Some(removed) = table.remove((account.raw(), id.raw()))? else {
                    return Err(StoreError::NotFound("source"));
                };
                let source: Source = decode("source", removed.value())?;
                drop(removed);
                txn.open_table(SOURCE_NAMES)?
                    .remove((account.raw(), source.name.as_str()))?;
                if let Some(token) = &source.path_token {
                    txn.open_table(SOURCE_TOKENS)?.remove(token.as_str())?;
                }
                remove_routes_where(txn, account, |r| r.source_id == Some(id))?;
                Ok(source)
            })
            .await
    }

    // --- destinations --------------------------------------------------------------------

    pub async fn create_destination(&self, destination: Destination) -> Result<(), StoreError> {
        self.journal
            .submit(move |batch| {
                let txn = batch.txn();
                txn.open_table(DESTINATIONS)?
                    .insert(destination.key(), codec::encode(&destination).as_slice())?;
                Ok(())
            })
            .await
    }

    pub fn destination(
        &self,
        account: AccountId,
        id: DestinationId,
    ) -> Result<Option<Destination>, StoreError> {
        self.get(account, id.raw())
    }

    pub fn list_destinations(
        &self,
        account: AccountId,
        after: Option<u128>,
        limit: usize,
    ) -> Result<Page<Destination>, StoreError> {
        self.list(account, after, limit)
    }

    pub async fn update_destination<F>(
        &self,
        account: AccountId,
        id: DestinationId,
        patch: F,
    ) -> Result<Destination, StoreError>
    where
        F: FnOnce(&mut Destination) -> Result<(), StoreError> + Send + 'static,
    {
        self.update(account, id.raw(), move |_txn, d: &mut Destination| patch(d))
            .await
    }

    /// Deletes a destination and the routes that lead to it.
    pub async fn delete_destination(
        &self,
        account: AccountId,
        id: DestinationId,
    ) -> Result<(), StoreError> {
        self.journal
            .submit(move |batch| {
                let txn = batch.txn();
                let mut table = txn.open_table(DESTINATIONS)?;
                if table.remove((account.raw(), id.raw()))?.is_none() {
                    return Err(StoreError::NotFound("destination"));
                }
                drop(table);
                remove_routes_where(txn, account, |r| r.destination_id == id)
            })
            .await
    }

    // --- routes --------------------------------------------------------------------------

    /// Creates a route after checking, in the same transaction, that both ends exist in the
    /// route's account (so a route can never point at another tenant's resources).
    pub async fn create_route(&self, route: Route) -> Result<(), StoreError> {
        self.journal
            .submit(move |batch| {
                let txn = batch.txn();
                let acc = route.account_id.raw();
                if let Some(source) = route.source_id {
                    if txn.open_table(SOURCES)?.get((acc, source.raw()))?.is_none() {
                        return Err(StoreError::invalid("source_id", "no such source"));
                    }
                }
                let destination = route.destination_id.raw();
                if txn
                    .open_table(DESTINATIONS)?
                    .get((acc, destination))?
                    .is_none()
                {
                    return Err(StoreError::invalid("destination_id", "no such destination"));
                }
                txn.open_table(ROUTES)?
                    .insert(route.key(), codec::encode(&route).as_slice())?;
                Ok(())
            })
            .await
    }

    pub fn route(&self, account: AccountId, id: RouteId) -> Result<Option<Route>, StoreError> {
        self.get(account, id.raw())
    }

    pub fn list_routes(
        &self,
        account: AccountId,
        after: Option<u128>,
        limit: usize,
    ) -> Result<Page<Route>, StoreError> {
        self.list(account, after, limit)
    }

    pub async fn delete_route(&self, account: AccountId, id: RouteId) -> Result<(), StoreError> {
        self.journal
            .submit(move |batch| {
                let txn = batch.txn();
                let mut table = txn.open_table(ROUTES)?;
                if table.remove((account.raw(), id.raw()))?.is_none() {
                    return Err(StoreError::NotFound("route"));
                }
                Ok(())
            })
            .await
    }
}

fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "a source named \"{}\" already exists",
        name.escape_debug()
    ))
}

fn insert_api_key(txn: &WriteTransaction, key: &ApiKey) -> Result<(), StoreError> {
    txn.open_table(API_KEY_HASHES)?
        .insert(&key.hash, key.key())?;
    txn.open_table(API_KEYS)?
        .insert(key.key(), codec::encode(key).as_slice())?;
    Ok(())
}

fn remove_routes_where(
    txn: &WriteTransaction,
    account: AccountId,
    doomed: impl Fn(&Route) -> bool,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(ROUTES)?;
    let mut remove = Vec::new();
    for entry in table.range((account.raw(), 0)..=(account.raw(), u128::MAX))? {
        let (k, v) = entry?;
        let route: Route = decode("route", v.value())?;
        if doomed(&route) {
            remove.push(k.value());
        }
    }
    for key in remove {
        table.remove(key)?;
    }
    Ok(())
}

/// The greatest event id stored: one short read of each account's last event key.
fn newest_event_id(db: &Database) -> Result<Option<u128>, StoreError> {
    let txn = db.begin_read()?;
    let accounts = txn.open_table(ACCOUNTS)?;
    let events = txn.open_table(EVENTS)?;
    let mut newest = None;
    for account in accounts.iter()? {
        let acc = account?.0.value();
        if let Some(last) = events.range((acc, 0)..=(acc, u128::MAX))?.next_back() {
            newest = newest.max(Some(last?.0.value().1));
        }
    }
    Ok(newest)
}

/// Creates every table and checks the schema version, so reads never meet a missing table.
fn init_schema(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        let found = meta.get("schema_version")?.map(|v| v.value());
        match found {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::SchemaTooNew {
                    found: v,
                    supported: SCHEMA_VERSION,
                })
            }
            // Version 1 is the first layout; later versions migrate here.
            Some(_) => {}
            None => {
                meta.insert("schema_version", SCHEMA_VERSION)?;
            }
        }
        txn.open_table(ACCOUNTS)?;
        txn.open_table(API_KEYS)?;
        txn.open_table(API_KEY_HASHES)?;
        txn.open_table(SOURCES)?;
        txn.open_table(SOURCE_TOKENS)?;
        txn.open_table(SOURCE_NAMES)?;
        txn.open_table(DESTINATIONS)?;
        txn.open_table(ROUTES)?;
        txn.open_table(EVENTS)?;
        txn.open_table(DELIVERIES)?;
        txn.open_table(DUE)?;
        txn.open_table(DEDUPE)?;
        txn.open_table(ATTEMPTS)?;
        txn.open_table(DEAD_LETTERS)?;
        txn.open_table(DESTINATION_HEALTH)?;
        txn.open_table(NOTICES)?;
    }
    txn.commit()?;
    Ok(())
}
