//! Offline administration of the database file (the admin CLI): compaction.
