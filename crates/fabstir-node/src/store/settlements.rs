//! The `settlements` table: at most one settlement per job, paid or
//! rejected with a reason. Written on the durable connection.

use fabstir_zk::JobId;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{now_ms, tokens_from_sql, tokens_to_sql, StoreError};

/// Schema version 1 of the table.
pub(super) const SCHEMA_V1: &str = r#"
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

/// Version 2: a settlement records what checkpoints had claimed before it.
pub(super) const MIGRATE_V2: &str = r#"
ALTER TABLE settlements ADD COLUMN checkpoint_tokens INTEGER NOT NULL DEFAULT 0;
"#;

/// A settlement record.
#[derive(Debug, Clone, Serialize)]
pub struct Settlement {
    pub settlement_id: String,
    pub job_id: String,
    /// `settled` or `rejected`.
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

/// A settlement to record.
#[derive(Debug, Clone)]
pub struct NewSettlement<'a> {
    pub job_id: &'a JobId,
    pub settlement_id: &'a str,
    pub passed: bool,
    pub reason: Option<&'a str>,
    pub tokens: u64,
    pub checkpoint_tokens: u64,
    pub proof_sha256: Option<&'a str>,
}

/// The settlement of a job.
pub fn get(conn: &Connection, job_id: &JobId) -> Result<Option<Settlement>, StoreError> {
    let key = job_id.to_string();
    conn.query_row(
        "SELECT settlement_id, outcome, reason, tokens, checkpoint_tokens, proof_sha256, created_at
         FROM settlements WHERE job_id = ?1",
        params![key],
        |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, Option<String>>(5)?,
                row.get::<_, i64>(6)?,
            ))
        },
    )
    .optional()?
    .map(
        |(settlement_id, outcome, reason, tokens, checkpoint_tokens, proof_sha256, created)| {
            Ok::<_, StoreError>(Settlement {
                settlement_id,
                outcome,
                reason,
                tokens: tokens_from_sql(tokens, &key)?,
                checkpoint_tokens: tokens_from_sql(checkpoint_tokens, &key)?,
                proof_sha256,
                created_at_ms: created,
                job_id: key.clone(),
            })
        },
    )
    .transpose()
}

/// Records a settlement unless the job has one; returns the job's settlement
/// (the new one, or the one recorded first).
pub fn insert(conn: &Connection, new: &NewSettlement<'_>) -> Result<Settlement, StoreError> {
    conn.execute(
        "INSERT INTO settlements (job_id, settlement_id, outcome, reason, tokens, checkpoint_tokens,
            proof_sha256, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (job_id) DO NOTHING",
        params![
            new.job_id.to_string(),
            new.settlement_id,
            if new.passed { "settled" } else { "rejected" },
            new.reason,
            tokens_to_sql(new.tokens)?,
            tokens_to_sql(new.checkpoint_tokens)?,
            new.proof_sha256,
            now_ms()
        ],
    )?;
    get(conn, new.job_id)?.ok_or_else(|| StoreError::Corrupt {
        job_id: new.job_id.to_string(),
        reason: "settlement vanished after insert".into(),
    })
}

/// Settlements with this outcome (`settled` or `rejected`).
pub fn count(conn: &Connection, outcome: &str) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM settlements WHERE outcome = ?1",
        params![outcome],
        |row| row.get(0),
    )?;
    Ok(n.max(0) as u64)
}
