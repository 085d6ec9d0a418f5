//! Durable state in an embedded SQLite database (WAL mode).
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
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

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

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Proving,
    Proved,
    Failed,
}

impl JobState {
    /// The state's name, as the API shows it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Proving => "proving",
            Self::Proved => "proved",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "proving" => Self::Proving,
            "proved" => Self::Proved,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A stored inference result.
#[derive(Debug, Clone)]
pub struct StoredResult {
    pub result: InferenceResult,
    pub tokens_used: u64,
    pub host_id: HostId,
    pub content_hash: Digest32,
    pub state: JobState,
    pub failure: Option<String>,
    pub attempts: u32,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A stored proof and the statement hashes it was made for.
#[derive(Debug, Clone)]
pub struct StoredProof {
    /// Binary proof envelope (or, for a mock proof, the mock record).
    pub envelope: Vec<u8>,
    pub mock: bool,
    pub vk_id: String,
    pub commitment: String,
    /// SHA-256 of `envelope`.
    pub proof_sha256: Digest32,
    pub model_hash: Digest32,
    pub input_hash: Digest32,
    pub output_hash: Digest32,
    pub prove_ms: f64,
    pub created_at_ms: i64,
}

/// Outcome of storing a result.
#[derive(Debug)]
pub enum InsertOutcome {
    /// New job, queued for proving.
    Inserted(StoredResult),
    /// The same job with the same content was already stored.
    Duplicate(StoredResult),
    /// The same job with different content was already stored; nothing changed.
    Conflict(StoredResult),
}

/// A checkpoint (proof-of-work submission) in the outbox.
#[derive(Debug, Clone, Serialize)]
pub struct Checkpoint {
    pub id: i64,
    pub job_id: String,
    /// The job's cumulative token count at this checkpoint.
    pub tokens_processed: u64,
    /// What this checkpoint claims and signs: `tokens_processed` minus the
    /// job's previous (not rejected) checkpoint's.
    pub tokens_claimed: u64,
    pub commitment: String,
    pub proof_hash: String,
    pub proof_cid: String,
    /// The full submission: signature, calldata, and the proof bytes it hashes.
    pub payload: serde_json::Value,
    pub status: String,
    pub created_at_ms: i64,
    pub submitted_at_ms: Option<i64>,
}

/// A settlement record.
#[derive(Debug, Clone, Serialize)]
pub struct Settlement {
    pub settlement_id: String,
    pub job_id: String,
    pub outcome: String,
    pub reason: Option<String>,
    /// Tokens this settlement pays: the result's `tokens_used` minus what
    /// checkpoints already claimed (0 when rejected).
    pub tokens: u64,
    /// Tokens the job's checkpoints had claimed when it was settled.
    pub checkpoint_tokens: u64,
    pub proof_sha256: Option<String>,
    pub created_at_ms: i64,
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

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Canonical digest of a result's content: what "the same job with the same
/// content" means for idempotency.
pub fn content_hash(result: &InferenceResult, tokens_used: u64) -> Digest32 {
    let model = match &result.model {
        fabstir_zk::ModelRef::Name(name) => format!("name:{}", Digest32::sha256(name.as_bytes())),
        fabstir_zk::ModelRef::Hash(hash) => format!("hash:{hash}"),
    };
    let canonical = format!(
        "fabstir result v1|{}|{}|{}|{}|{}|{}|{}",
        result.job_id,
        result.chain_id,
        result.marketplace,
        model,
        Digest32::sha256(result.prompt.as_bytes()),
        Digest32::sha256(result.response.as_bytes()),
        tokens_used
    );
    Digest32::sha256(canonical.as_bytes())
}

/// Schema version 1: the tables as the first node wrote them (databases
/// from before versioning have these tables and `user_version` 0; every
/// statement is `IF NOT EXISTS`, so applying it to them changes nothing).
const SCHEMA_V1: &str = r#"
CREATE TABLE IF NOT EXISTS results (
    job_id        TEXT PRIMARY KEY,
    chain_id      INTEGER NOT NULL,
    marketplace   TEXT NOT NULL,
    model_name    TEXT,
    model_hash    TEXT,
    prompt        TEXT NOT NULL,
    response      TEXT NOT NULL,
    tokens_used   INTEGER NOT NULL,
    host_id       TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    state         TEXT NOT NULL,
    failure       TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS results_state ON results(state);
CREATE TABLE IF NOT EXISTS proofs (
    job_id        TEXT PRIMARY KEY REFERENCES results(job_id),
    envelope      BLOB NOT NULL,
    mock          INTEGER NOT NULL,
    vk_id         TEXT NOT NULL,
    commitment    TEXT NOT NULL,
    proof_sha256  TEXT NOT NULL,
    model_hash    TEXT NOT NULL,
    input_hash    TEXT NOT NULL,
    output_hash   TEXT NOT NULL,
    prove_ms      REAL NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id           TEXT NOT NULL,
    tokens_processed INTEGER NOT NULL,
    commitment       TEXT NOT NULL,
    proof_hash       TEXT NOT NULL,
    proof_cid        TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    submitted_at     INTEGER,
    UNIQUE (job_id, tokens_processed)
);
CREATE TABLE IF NOT EXISTS ledger (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    checkpoint_id  INTEGER NOT NULL UNIQUE,
    job_id         TEXT NOT NULL,
    proof_hash     TEXT NOT NULL UNIQUE,
    tokens_claimed INTEGER NOT NULL,
    calldata       TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS settlements (
    job_id         TEXT PRIMARY KEY,
    settlement_id  TEXT NOT NULL UNIQUE,
    outcome        TEXT NOT NULL,
    reason         TEXT,
    tokens         INTEGER NOT NULL,
    proof_sha256   TEXT,
    created_at     INTEGER NOT NULL
);
"#;

/// Version 2: a checkpoint records the delta it claims (`tokens_claimed`;
/// checkpoints written before signed their `tokens_processed`), and a
/// settlement what checkpoints had claimed before it.
const SCHEMA_V2: &str = r#"
ALTER TABLE checkpoints ADD COLUMN tokens_claimed INTEGER;
UPDATE checkpoints SET tokens_claimed = tokens_processed;
ALTER TABLE settlements ADD COLUMN checkpoint_tokens INTEGER NOT NULL DEFAULT 0;
"#;

/// Every migration, in order: `(version it produces, SQL)`.
const MIGRATIONS: &[(i64, &str)] = &[(1, SCHEMA_V1), (2, SCHEMA_V2)];

/// The schema version this node writes.
pub const SCHEMA_VERSION: i64 = 2;

/// Brings the database to [`SCHEMA_VERSION`], one transaction per step.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        if found > 0 || *version > 1 {
            tracing::info!(version, "database schema migrated");
        }
    }
    Ok(())
}

/// The node's database.
pub struct Store {
    path: PathBuf,
    /// `synchronous=NORMAL`: results and proofs.
    fast: Mutex<Connection>,
    /// `synchronous=FULL`: checkpoints, ledger, settlements.
    durable: Mutex<Connection>,
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
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open)?;
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(open)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(open)?;
    Ok(conn)
}

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
        migrate(&mut fast)?;
        let durable = open_connection(path, "FULL")?;
        Ok(Self {
            path: path.to_path_buf(),
            fast: Mutex::new(fast),
            durable: Mutex::new(durable),
        })
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

    /// Stores a result (queued) unless the job exists; see [`InsertOutcome`].
    pub fn insert_result(
        &self,
        result: &InferenceResult,
        tokens_used: u64,
        host_id: HostId,
    ) -> Result<InsertOutcome, StoreError> {
        let hash = content_hash(result, tokens_used);
        let mut conn = lock(&self.fast);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(existing) = read_result(&tx, &result.job_id)? {
            return Ok(if existing.content_hash == hash {
                InsertOutcome::Duplicate(existing)
            } else {
                InsertOutcome::Conflict(existing)
            });
        }
        let (model_name, model_hash) = match &result.model {
            fabstir_zk::ModelRef::Name(name) => (Some(name.clone()), None),
            fabstir_zk::ModelRef::Hash(hash) => (None, Some(hash.to_string())),
        };
        let now = now_ms();
        tx.execute(
            "INSERT INTO results (job_id, chain_id, marketplace, model_name, model_hash, prompt, response,
                tokens_used, host_id, content_hash, state, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'queued', ?11, ?11)",
            params![
                result.job_id.to_string(),
                // Bit-cast: every u64 chain id round-trips (read back `as u64`).
                result.chain_id as i64,
                result.marketplace.to_string(),
                model_name,
                model_hash,
                result.prompt,
                result.response,
                tokens_to_sql(tokens_used)?,
                host_id.to_string(),
                hash.to_string(),
                now
            ],
        )?;
        let stored = read_result(&tx, &result.job_id)?.ok_or_else(|| StoreError::Corrupt {
            job_id: result.job_id.to_string(),
            reason: "row vanished after insert".into(),
        })?;
        tx.commit()?;
        Ok(InsertOutcome::Inserted(stored))
    }

    /// The stored result of a job.
    pub fn result(&self, job_id: &JobId) -> Result<Option<StoredResult>, StoreError> {
        read_result(&lock(&self.fast), job_id)
    }

    /// Moves a job to `proving` (counting the attempt).
    pub fn mark_proving(&self, job_id: &JobId) -> Result<(), StoreError> {
        lock(&self.fast).execute(
            "UPDATE results SET state = 'proving', attempts = attempts + 1, updated_at = ?2 WHERE job_id = ?1",
            params![job_id.to_string(), now_ms()],
        )?;
        Ok(())
    }

    /// Assigns a not-yet-proved job to another host (after a host key rotation).
    pub fn reassign_host(&self, job_id: &JobId, host_id: HostId) -> Result<(), StoreError> {
        lock(&self.fast).execute(
            "UPDATE results SET host_id = ?2, updated_at = ?3 WHERE job_id = ?1 AND state IN ('queued', 'proving')",
            params![job_id.to_string(), host_id.to_string(), now_ms()],
        )?;
        Ok(())
    }

    /// Records a failure with its reason.
    pub fn mark_failed(&self, job_id: &JobId, reason: &str) -> Result<(), StoreError> {
        lock(&self.fast).execute(
            "UPDATE results SET state = 'failed', failure = ?2, updated_at = ?3 WHERE job_id = ?1",
            params![job_id.to_string(), reason, now_ms()],
        )?;
        Ok(())
    }

    /// Stores a proof and marks the job proved, in one transaction. A job
    /// that already has a proof keeps it (it may have been checkpointed or
    /// settled already); the new one is dropped.
    pub fn put_proof(&self, job_id: &JobId, proof: &StoredProof) -> Result<(), StoreError> {
        let mut conn = lock(&self.fast);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO proofs (job_id, envelope, mock, vk_id, commitment, proof_sha256, model_hash,
                input_hash, output_hash, prove_ms, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (job_id) DO NOTHING",
            params![
                job_id.to_string(),
                proof.envelope,
                proof.mock,
                proof.vk_id,
                proof.commitment,
                proof.proof_sha256.to_string(),
                proof.model_hash.to_string(),
                proof.input_hash.to_string(),
                proof.output_hash.to_string(),
                proof.prove_ms,
                proof.created_at_ms
            ],
        )?;
        tx.execute(
            "UPDATE results SET state = 'proved', failure = NULL, updated_at = ?2 WHERE job_id = ?1",
            params![job_id.to_string(), now_ms()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The stored proof of a job.
    pub fn proof(&self, job_id: &JobId) -> Result<Option<StoredProof>, StoreError> {
        let conn = lock(&self.fast);
        let row = conn
            .query_row(
                "SELECT envelope, mock, vk_id, commitment, proof_sha256, model_hash, input_hash, output_hash,
                        prove_ms, created_at FROM proofs WHERE job_id = ?1",
                params![job_id.to_string()],
                |row| {
                    Ok((
                        row.get::<_, Vec<u8>>(0)?,
                        row.get::<_, bool>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, String>(5)?,
                        row.get::<_, String>(6)?,
                        row.get::<_, String>(7)?,
                        row.get::<_, f64>(8)?,
                        row.get::<_, i64>(9)?,
                    ))
                },
            )
            .optional()?;
        let Some((envelope, mock, vk_id, commitment, sha, model, input, output, prove_ms, created)) =
            row
        else {
            return Ok(None);
        };
        let digest = |what: &'static str, s: &str| {
            Digest32::parse(what, s).map_err(|e| StoreError::Corrupt {
                job_id: job_id.to_string(),
                reason: e.to_string(),
            })
        };
        Ok(Some(StoredProof {
            envelope,
            mock,
            vk_id,
            commitment,
            proof_sha256: digest("proof_sha256", &sha)?,
            model_hash: digest("model_hash", &model)?,
            input_hash: digest("input_hash", &input)?,
            output_hash: digest("output_hash", &output)?,
            prove_ms,
            created_at_ms: created,
        }))
    }

    /// Jobs accepted but not yet proved (after a crash, also those that were
    /// being proved), oldest first; they are put back in the queue.
    pub fn unfinished_jobs(&self) -> Result<Vec<JobId>, StoreError> {
        let conn = lock(&self.fast);
        conn.execute(
            "UPDATE results SET state = 'queued' WHERE state = 'proving'",
            [],
        )?;
        let mut stmt =
            conn.prepare("SELECT job_id FROM results WHERE state = 'queued' ORDER BY created_at")?;
        let ids = stmt
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        ids.iter()
            .map(|id| {
                JobId::parse(id).map_err(|e| StoreError::Corrupt {
                    job_id: id.clone(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// Counts by state.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        let conn = lock(&self.fast);
        let mut stats = Stats::default();
        let mut stmt = conn.prepare("SELECT state, COUNT(*) FROM results GROUP BY state")?;
        for row in stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })? {
            let (state, count) = row?;
            let slot = match JobState::parse(&state) {
                Some(JobState::Queued) => &mut stats.queued,
                Some(JobState::Proving) => &mut stats.proving,
                Some(JobState::Proved) => &mut stats.proved,
                Some(JobState::Failed) => &mut stats.failed,
                None => continue,
            };
            *slot = count as u64;
        }
        stats.proofs = conn.query_row("SELECT COUNT(*) FROM proofs", [], |row| {
            row.get::<_, i64>(0)
        })? as u64;
        let count = |sql: &str| {
            conn.query_row(sql, [], |row| row.get::<_, i64>(0))
                .map(|n| n as u64)
        };
        stats.checkpoints_pending =
            count("SELECT COUNT(*) FROM checkpoints WHERE status = 'pending'")?;
        stats.checkpoints_submitted =
            count("SELECT COUNT(*) FROM checkpoints WHERE status = 'submitted'")?;
        stats.settlements_settled =
            count("SELECT COUNT(*) FROM settlements WHERE outcome = 'settled'")?;
        stats.settlements_rejected =
            count("SELECT COUNT(*) FROM settlements WHERE outcome = 'rejected'")?;
        Ok(stats)
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

/// What a job's checkpoints and settlement have claimed, read together in
/// one transaction (the rules that use it are in `checkpoint` and
/// `settlement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Claims {
    /// The highest cumulative count of a checkpoint that was not rejected
    /// (0 without checkpoints).
    pub last_cumulative: u64,
    /// Tokens claimed by checkpoints that were not rejected (pending ones
    /// count: they may still reach the chain).
    pub claimed: u64,
    /// Checkpoints of the job, rejected ones included.
    pub checkpoints: u64,
    /// Whether the job has a settlement (of any outcome).
    pub settled: bool,
}

/// Reads the [`Claims`] of `job_id`.
pub fn read_claims(conn: &Connection, job_id: &str) -> Result<Claims, StoreError> {
    let mut claims = Claims {
        settled: conn
            .query_row(
                "SELECT 1 FROM settlements WHERE job_id = ?1",
                params![job_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some(),
        ..Claims::default()
    };
    let mut stmt = conn.prepare(
        "SELECT tokens_processed, tokens_claimed, status FROM checkpoints WHERE job_id = ?1",
    )?;
    let mut claimed: u128 = 0;
    for row in stmt.query_map(params![job_id], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, Option<i64>>(1)?,
            row.get::<_, String>(2)?,
        ))
    })? {
        let (cumulative, delta, status) = row?;
        claims.checkpoints += 1;
        if status == "rejected" {
            continue;
        }
        let cumulative = tokens_from_sql(cumulative, job_id)?;
        let delta = tokens_from_sql(delta.unwrap_or(i64::MAX), job_id)?;
        claims.last_cumulative = claims.last_cumulative.max(cumulative);
        claimed += u128::from(delta);
    }
    claims.claimed = u64::try_from(claimed).unwrap_or(u64::MAX);
    Ok(claims)
}

fn quick_check(conn: &Connection) -> Result<(), StoreError> {
    let check: String = conn.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if check == "ok" {
        Ok(())
    } else {
        Err(StoreError::Integrity(check))
    }
}

fn read_result(conn: &Connection, job_id: &JobId) -> Result<Option<StoredResult>, StoreError> {
    let row = conn
        .query_row(
            "SELECT chain_id, marketplace, model_name, model_hash, prompt, response, tokens_used, host_id,
                    content_hash, state, failure, attempts, created_at, updated_at
             FROM results WHERE job_id = ?1",
            params![job_id.to_string()],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, i64>(6)?,
                    row.get::<_, String>(7)?,
                    row.get::<_, String>(8)?,
                    row.get::<_, String>(9)?,
                    row.get::<_, Option<String>>(10)?,
                    row.get::<_, i64>(11)?,
                    row.get::<_, i64>(12)?,
                    row.get::<_, i64>(13)?,
                ))
            },
        )
        .optional()?;
    let Some((
        chain,
        market,
        name,
        hash,
        prompt,
        response,
        tokens,
        host,
        content,
        state,
        failure,
        attempts,
        created,
        updated,
    )) = row
    else {
        return Ok(None);
    };
    let corrupt = |reason: String| StoreError::Corrupt {
        job_id: job_id.to_string(),
        reason,
    };
    let model = match (name, hash) {
        (Some(name), None) => fabstir_zk::ModelRef::Name(name),
        (None, Some(hash)) => fabstir_zk::ModelRef::Hash(
            Digest32::parse("model_hash", &hash).map_err(|e| corrupt(e.to_string()))?,
        ),
        _ => return Err(corrupt("model must be a name or a hash".into())),
    };
    Ok(Some(StoredResult {
        result: InferenceResult {
            job_id: *job_id,
            chain_id: chain as u64,
            marketplace: fabstir_zk::Address::parse(&market).map_err(|e| corrupt(e.to_string()))?,
            model,
            prompt,
            response,
        },
        tokens_used: tokens_from_sql(tokens, &job_id.to_string())?,
        host_id: HostId::parse(&host).map_err(|e| corrupt(e.to_string()))?,
        content_hash: Digest32::parse("content_hash", &content)
            .map_err(|e| corrupt(e.to_string()))?,
        state: JobState::parse(&state)
            .ok_or_else(|| corrupt(format!("unknown state {state:?}")))?,
        failure,
        attempts: attempts as u32,
        created_at_ms: created,
        updated_at_ms: updated,
    }))
}
