//! Durable state in an embedded SQLite database (WAL mode).
//!
//! One file per table, each with its schema, row type and queries:
//! [`results`], [`proofs`], [`checkpoints`], [`ledger`], [`settlements`],
//! [`outbox`] (the outbox table: the EVM chain client's verified submissions,
//! driven by its submission worker), [`batches`] (the batch transactions
//! that carry outbox entries); [`snapshot`] reads a
//! job's state across them in one transaction (what the payment gate checks);
//! [`schema`] orders their migrations. This file holds the [`Store`] (the
//! connections), the errors and the token-count conversions.
//!
//! Two connections: results and proofs are written with `synchronous=NORMAL`
//! (in WAL mode a commit survives a process crash, the failure the node must
//! tolerate); checkpoints, the ledger and settlements, which move money, with
//! `synchronous=FULL` (a commit also survives power loss). Every state change
//! is one transaction, so a crash at any point loses nothing and applies
//! nothing twice.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use fabstir_zk::{Digest32, HostId, InferenceResult, JobId};
use rusqlite::{Connection, TransactionBehavior};
use serde::Serialize;

pub mod batches;
pub mod checkpoints;
pub mod ledger;
pub mod outbox;
pub mod proofs;
pub mod results;
pub mod schema;
pub mod settlements;
pub mod snapshot;

pub use checkpoints::{Checkpoint, CheckpointStatus, Claims};
pub use proofs::StoredProof;
pub use results::{content_hash, InsertOutcome, JobState, StoredResult};
pub use schema::SCHEMA_VERSION;
pub use settlements::Settlement;
pub use snapshot::JobSnapshot;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database integrity check failed: {0} (restore from backup or move the database away)"
    )]
    Integrity(String),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("stored row for job {job_id} is unreadable: {reason}")]
    Corrupt { job_id: String, reason: String },
    #[error("token count {0} is above {MAX_TOKENS} (2^63 - 1), the largest the database stores")]
    TokensOutOfRange(u64),
    #[error("the database has schema version {found}, newer than this node's {supported}; run a newer fabstir-node or restore a backup")]
    NewerSchema { found: i64, supported: i64 },
    #[error("cannot back up the database to {path} before migrating it (nothing was changed; free disk space or fix permissions in the data directory): {reason}")]
    Backup { path: PathBuf, reason: String },
}

/// The copy of the database kept before a schema migration: the rollback
/// path to the release that wrote it (DEPLOYMENT.md, "Upgrades").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeBackup {
    /// The schema version the copy has (the previous release's).
    pub from_version: i64,
    /// Where the copy is.
    pub path: PathBuf,
}

/// The largest token count the node stores (SQLite integers are signed 64-bit).
/// Larger counts are refused where they enter, never wrapped.
pub const MAX_TOKENS: u64 = i64::MAX as u64;

/// A token count as SQLite stores it; refuses counts above [`MAX_TOKENS`].
pub fn tokens_to_sql(tokens: u64) -> Result<i64, StoreError> {
    i64::try_from(tokens).map_err(|_| StoreError::TokensOutOfRange(tokens))
}

/// A stored token count; a negative value means the row was damaged.
pub fn tokens_from_sql(value: i64, job_id: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        job_id: job_id.to_string(),
        reason: format!("negative token count {value}"),
    })
}

/// Counts for `/health` and metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub queued: u64,
    pub proving: u64,
    pub proved: u64,
    pub failed: u64,
    pub proofs: u64,
    pub checkpoints_pending: u64,
    pub checkpoints_submitted: u64,
    pub settlements_settled: u64,
    pub settlements_rejected: u64,
}

/// A job id as stored (`0x` and 64 hex digits) written for people: the
/// short form of [`JobId::short`] (`42`); an unreadable one as it is.
pub fn job_for_people(stored: &str) -> String {
    JobId::parse(stored).map_or_else(|_| stored.to_string(), |job| job.short().to_string())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The node's database.
pub struct Store {
    path: PathBuf,
    /// `synchronous=NORMAL`: results and proofs.
    fast: Mutex<Connection>,
    /// `synchronous=FULL`: checkpoints, ledger, settlements.
    durable: Mutex<Connection>,
    /// The copy kept before this start-up migrated the schema, if it did.
    upgrade_backup: Option<UpgradeBackup>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn open_connection(path: &Path, synchronous: &str) -> Result<Connection, StoreError> {
    let open = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(open)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(open)?;
    // Before WAL: a new database takes incremental auto-vacuum only before
    // its first table and before the journal mode is written.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .map_err(open)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open)?;
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(open)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(open)?;
    // The write-ahead log is truncated to this size after each checkpoint,
    // so a burst of writes does not leave a large file behind.
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
        .map_err(open)?;
    Ok(conn)
}

/// Bytes the write-ahead log is truncated to after a checkpoint.
const WAL_SIZE_LIMIT: i64 = 64 << 20;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a half-applied change (every
    // change is one transaction), so a poisoned lock is safe to reuse.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Store {
    /// Opens (creating if needed) the database and runs an integrity check.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut fast = open_connection(path, "NORMAL")?;
        quick_check(&fast)?;
        let found = schema::version(&fast)?;
        // A database from before versioning has version 0 and tables.
        let tables: i64 = fast.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |row| row.get(0),
        )?;
        let upgrade_backup = if tables > 0 && found < SCHEMA_VERSION {
            Some(back_up_before_migration(&fast, path, found)?)
        } else {
            None
        };
        schema::migrate(&mut fast)?;
        incremental_vacuum_on(&fast)?;
        let durable = open_connection(path, "FULL")?;
        Ok(Self {
            path: path.to_path_buf(),
            fast: Mutex::new(fast),
            durable: Mutex::new(durable),
            upgrade_backup,
        })
    }

    /// The copy kept before this start-up migrated the schema, if it did.
    pub fn upgrade_backup(&self) -> Option<&UpgradeBackup> {
        self.upgrade_backup.as_ref()
    }

    /// Runs `PRAGMA quick_check` on a fresh connection (so that it reads
    /// what is on disk, not a cache), without blocking writers.
    pub fn quick_check(&self) -> Result<(), StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: self.path.clone(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        quick_check(&conn)
    }

    /// Runs `f` on the fast connection (results and proofs).
    fn fast<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(&lock(&self.fast))
    }

    /// Runs `f` in a read transaction (a consistent snapshot of every table)
    /// on the fast connection; for reads that act on nothing.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = lock(&self.fast);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Runs `f` in an immediate transaction on the fast connection.
    fn fast_tx<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = lock(&self.fast);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Stores a result (queued) unless the job exists; see [`InsertOutcome`].
    pub fn insert_result(
        &self,
        result: &InferenceResult,
        host_id: HostId,
    ) -> Result<InsertOutcome, StoreError> {
        self.fast_tx(|tx| results::insert(tx, result, host_id))
    }

    /// The stored result of a job.
    pub fn result(&self, job_id: &JobId) -> Result<Option<StoredResult>, StoreError> {
        self.fast(|conn| results::get(conn, job_id))
    }

    /// Moves a job to `proving` (counting the attempt).
    pub fn mark_proving(&self, job_id: &JobId) -> Result<(), StoreError> {
        self.fast(|conn| results::mark_proving(conn, job_id))
    }

    /// Assigns a not-yet-proved job to another host (after a host key rotation).
    pub fn reassign_host(&self, job_id: &JobId, host_id: HostId) -> Result<(), StoreError> {
        self.fast(|conn| results::reassign_host(conn, job_id, host_id))
    }

    /// Records a failure with its reason.
    pub fn mark_failed(&self, job_id: &JobId, reason: &str) -> Result<(), StoreError> {
        self.fast(|conn| results::mark_failed(conn, job_id, reason))
    }

    /// Stores a proof (unless the job has one) and marks the job proved, in
    /// one transaction.
    pub fn put_proof(&self, job_id: &JobId, proof: &StoredProof) -> Result<(), StoreError> {
        self.fast_tx(|tx| {
            proofs::insert(tx, job_id, proof)?;
            results::mark_proved(tx, job_id)
        })
    }

    /// The stored proof of a job.
    pub fn proof(&self, job_id: &JobId) -> Result<Option<StoredProof>, StoreError> {
        self.fast(|conn| proofs::get(conn, job_id))
    }

    /// Another job whose stored proof has these bytes.
    pub fn proof_reused_by(
        &self,
        job_id: &JobId,
        sha: &Digest32,
    ) -> Result<Option<String>, StoreError> {
        self.fast(|conn| proofs::other_job_with(conn, job_id, sha))
    }

    /// Jobs accepted but not yet proved (after a crash, also those that were
    /// being proved), oldest first; they are put back in the queue.
    pub fn unfinished_jobs(&self) -> Result<Vec<JobId>, StoreError> {
        self.fast(results::requeue_unfinished)
    }

    /// Counts by state.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        let mut stats = self.fast(|conn| {
            let mut stats = Stats::default();
            for (state, count) in results::count_by_state(conn)? {
                *match state {
                    JobState::Queued => &mut stats.queued,
                    JobState::Proving => &mut stats.proving,
                    JobState::Proved => &mut stats.proved,
                    JobState::Failed => &mut stats.failed,
                } = count;
            }
            stats.proofs = proofs::count(conn)?;
            Ok(stats)
        })?;
        self.durable(|tx| {
            stats.checkpoints_pending = checkpoints::count(tx, CheckpointStatus::Pending)?;
            stats.checkpoints_submitted = checkpoints::count(tx, CheckpointStatus::Submitted)?;
            stats.settlements_settled = settlements::count(tx, "settled")?;
            stats.settlements_rejected = settlements::count(tx, "rejected")?;
            Ok(())
        })?;
        Ok(stats)
    }

    /// Retention: deletes the prompt and response text of up to `batch`
    /// jobs settled at or before `cutoff_ms`, keeping their hashes; returns
    /// the jobs pruned and the bytes of text deleted.
    pub fn prune_settled(&self, cutoff_ms: i64, batch: usize) -> Result<(u64, u64), StoreError> {
        self.fast_tx(|tx| {
            let now = now_ms();
            let mut bytes = 0;
            let jobs = results::prunable(tx, cutoff_ms, batch)?;
            for job in &jobs {
                bytes += results::prune(tx, job, now)?;
            }
            Ok((jobs.len() as u64, bytes))
        })
    }

    /// Gives the database's free pages back to the file system, when it
    /// has any: the file shrinks once the write-ahead log is checkpointed,
    /// which is asked for here without waiting on readers. Returns the pages
    /// freed.
    pub fn reclaim(&self) -> Result<u64, StoreError> {
        self.fast(|conn| {
            let free: i64 = conn.query_row("PRAGMA freelist_count", [], |row| row.get(0))?;
            if free > 0 {
                // Each step of the statement frees one page: run it to the end.
                let mut vacuum = conn.prepare("PRAGMA incremental_vacuum")?;
                let mut rows = vacuum.query([])?;
                while rows.next()?.is_some() {}
                conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
            }
            Ok(free.max(0) as u64)
        })
    }

    /// The database's size on disk: the file and its write-ahead log.
    pub fn size_bytes(&self) -> u64 {
        let size = |suffix: &str| {
            let mut name = self.path.clone().into_os_string();
            name.push(suffix);
            std::fs::metadata(PathBuf::from(name)).map_or(0, |m| m.len())
        };
        size("") + size("-wal")
    }

    /// Runs `f` in an immediate transaction on the durable connection.
    pub fn durable<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = lock(&self.durable);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }
}

/// Striped per-job locks: one state change at a time per job inside this
/// process (checkpoints, settlements), so that concurrent requests for a job
/// see each other's effects. The database's transactions remain the final
/// guard.
pub struct JobLocks {
    stripes: Vec<Mutex<()>>,
}

impl Default for JobLocks {
    fn default() -> Self {
        Self {
            stripes: (0..64).map(|_| Mutex::new(())).collect(),
        }
    }
}

impl JobLocks {
    /// Holds the lock of `job` until the guard is dropped.
    pub fn lock(&self, job: &JobId) -> std::sync::MutexGuard<'_, ()> {
        let stripe = &self.stripes[usize::from(job.0[31]) % self.stripes.len()];
        lock(stripe)
    }
}

/// Copies the database (schema `version`) next to it with SQLite's online
/// backup, before anything is migrated: `node.db.schema3-<unix seconds>.bak`,
/// created 0600 (it holds prompts and responses).
fn back_up_before_migration(
    conn: &Connection,
    path: &Path,
    version: i64,
) -> Result<UpgradeBackup, StoreError> {
    let seconds = now_ms() / 1000;
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".schema{version}-{seconds}.bak"));
    let backup = PathBuf::from(name);
    let fail = |reason: String| StoreError::Backup {
        path: backup.clone(),
        reason,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(&backup).map_err(|e| fail(e.to_string()))?;
    let started = std::time::Instant::now();
    conn.backup(rusqlite::MAIN_DB, &backup, None)
        .map_err(|e| fail(e.to_string()))?;
    tracing::warn!(
        from_version = version,
        to_version = SCHEMA_VERSION,
        backup = %backup.display(),
        ms = started.elapsed().as_millis() as u64,
        "database copied before its schema migration; to roll back, stop the node and restore this copy (DEPLOYMENT.md, Upgrades)"
    );
    Ok(UpgradeBackup {
        from_version: version,
        path: backup,
    })
}

/// Puts the database in incremental auto-vacuum mode, so that space freed
/// by retention can be given back to the file system
/// ([`Store::reclaim`]). A database created before that mode needs one
/// `VACUUM` (a rewrite of the file, once).
fn incremental_vacuum_on(conn: &Connection) -> Result<(), StoreError> {
    let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |row| row.get(0))?;
    if mode != 2 {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        let started = std::time::Instant::now();
        conn.execute_batch("VACUUM")?;
        tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            "database rewritten once for incremental vacuum"
        );
    }
    Ok(())
}

fn quick_check(conn: &Connection) -> Result<(), StoreError> {
    let check: String = conn.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if check == "ok" {
        Ok(())
    } else {
        Err(StoreError::Integrity(check))
    }
}
