//! Offline administration of the database file, for the admin CLI: compaction, and telling
//! "a gateway holds the file" apart from every other failure to open it.
//!
//! Invariant: these functions open the file without the journal, so they are only correct
//! while nothing else has it open. redb enforces that with a lock on the file: a second open,
//! from a running gateway or another admin command, fails with `DatabaseAlreadyOpen`, which
//! [`StoreError::is_in_use`] recognises so the CLI can say what to do instead.
//!
//! This module does not print or decide exit codes (that is `cli.rs`), and redb types stay
//! inside it like everywhere else under `store/`.

use std::path::{Path, PathBuf};

use redb::{Database, DatabaseError, StorageError};

use super::{StoreError, DB_FILE};

/// What [`compact`] did to the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactReport {
    pub path: PathBuf,
    pub size_before_bytes: u64,
    pub size_after_bytes: u64,
}

/// Compacts `data_dir`'s database: rewrites live pages towards the start of the file and
/// truncates the free tail, so space freed by deletions and retention goes back to the
/// filesystem. Needs the file to itself (module invariant); refuses a missing file rather
/// than creating an empty one.
pub fn compact(data_dir: &Path, cache_size_bytes: usize) -> Result<CompactReport, StoreError> {
    let path = data_dir.join(DB_FILE);
    let size_before_bytes = file_size(&path)?;
    // The configured cache, not redb's 1 GiB default: compaction reads the whole file, on the
    // same small VM the gateway runs on.
    let mut db = Database::builder()
        .set_cache_size(cache_size_bytes)
        .open(&path)
        .map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
    // `compact` answers whether it moved anything; both answers leave a valid file, and the
    // sizes below are what the operator wants to know.
    db.compact().map_err(|e| StoreError::Redb(e.into()))?;
    // Close explicitly, not by drop: a failure to release the file must be reported, and the
    // size is only final once redb has finished with it.
    db.close().map_err(|e| StoreError::Redb(e.into()))?;
    let size_after_bytes = file_size(&path)?;
    Ok(CompactReport {
        path,
        size_before_bytes,
        size_after_bytes,
    })
}

/// The file's length; a missing or unreadable file is reported as a failure to open it, with
/// its path, which is what it amounts to for the caller.
fn file_size(path: &Path) -> Result<u64, StoreError> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| StoreError::Open {
            path: path.to_owned(),
            source: DatabaseError::Storage(StorageError::Io(e)),
        })
}

// === impl StoreError ===

// Kept here rather than beside the enum: only the offline tools need to ask, and the answer
// depends on redb's error variants, which this module already speaks.
impl StoreError {
    /// Whether the database file is held by another open handle, which for hookgate means a
    /// running gateway (or a concurrent admin command) on the same data directory.
    pub fn is_in_use(&self) -> bool {
        matches!(
            self,
            Self::Open {
                source: DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch,
                ..
            } | Self::Redb(redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_dir_with_garbage() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join(DB_FILE)).unwrap();
        let table: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("t");
        let value = vec![7u8; 4096];
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(table).unwrap();
            for i in 0..2_000u64 {
                t.insert(i, value.as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(table).unwrap();
            for i in 10..2_000u64 {
                t.remove(i).unwrap();
            }
        }
        txn.commit().unwrap();
        drop(db);
        dir
    }

    #[test]
    fn compact_shrinks_a_file_with_free_space_and_keeps_its_rows() {
        let dir = data_dir_with_garbage();
        let report = compact(dir.path(), 16 << 20).unwrap();
        assert!(
            report.size_after_bytes < report.size_before_bytes,
            "{report:?}"
        );
        assert_eq!(
            report.size_after_bytes,
            std::fs::metadata(dir.path().join(DB_FILE)).unwrap().len()
        );
        use redb::{ReadableDatabase, ReadableTableMetadata};
        let db = Database::open(dir.path().join(DB_FILE)).unwrap();
        let table: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("t");
        let txn = db.begin_read().unwrap();
        assert_eq!(txn.open_table(table).unwrap().len().unwrap(), 10);
    }

    #[test]
    fn compact_reports_a_missing_file_with_its_path_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let err = compact(dir.path(), 16 << 20).unwrap_err();
        assert!(!err.is_in_use());
        assert!(err.to_string().contains(DB_FILE), "{err}");
        assert!(!dir.path().join(DB_FILE).exists());
    }

    #[test]
    fn a_file_held_open_elsewhere_is_reported_in_use() {
        let dir = data_dir_with_garbage();
        let _held = Database::open(dir.path().join(DB_FILE)).unwrap();
        let err = compact(dir.path(), 16 << 20).unwrap_err();
        assert!(err.is_in_use(), "{err:?}");
    }
}
