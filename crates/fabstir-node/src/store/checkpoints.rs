//! The `checkpoints` table: every proof-of-work checkpoint, recorded before it
//! is handed to the chain client (`chain`). A row
//! is written (`pending`) before anything is sent, then marked `submitted`
//! or `rejected` with the chain's answer. Written on the durable connection.
//!
//! Also [`claims`]: what a job's checkpoints and settlement have claimed,
//! read in the caller's transaction (the rules that use it live in
//! `checkpoint` and `settlement`).

use fabstir_zk::JobId;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

use super::{now_ms, settlements, tokens_from_sql, tokens_to_sql, StoreError};

/// Schema version 1 of the table.
pub(super) const SCHEMA_V1: &str = r#"
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
"#;

/// Version 2: a checkpoint records the delta it claims. Checkpoints written
/// before signed their `tokens_processed`, so that is what they claimed.
pub(super) const MIGRATE_V2: &str = r#"
ALTER TABLE checkpoints ADD COLUMN tokens_claimed INTEGER;
UPDATE checkpoints SET tokens_claimed = tokens_processed;
"#;

/// Where a checkpoint stands with its chain client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointStatus {
    /// Recorded, not yet accepted by the chain client (retried at start-up
    /// and by the next identical request).
    Pending,
    /// Accepted by the chain client.
    Submitted,
    /// Refused by the chain client; it claims nothing.
    Rejected,
}

impl CheckpointStatus {
    /// Every status.
    pub const ALL: [CheckpointStatus; 3] = [Self::Pending, Self::Submitted, Self::Rejected];

    /// The status as stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Submitted => "submitted",
            Self::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.name() == s)
    }
}

/// A checkpoint (proof-of-work claim), as recorded.
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
    pub payload: Value,
    pub status: CheckpointStatus,
    pub created_at_ms: i64,
    pub submitted_at_ms: Option<i64>,
}

/// A checkpoint to record.
#[derive(Debug, Clone)]
pub struct NewCheckpoint<'a> {
    pub job_id: &'a JobId,
    pub tokens_processed: u64,
    pub tokens_claimed: u64,
    pub commitment: &'a str,
    pub proof_hash: &'a str,
    pub proof_cid: &'a str,
    pub payload: &'a Value,
}

const COLUMNS: &str = "id, job_id, tokens_processed, tokens_claimed, commitment, proof_hash, proof_cid, payload, status, created_at, submitted_at";

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Checkpoint> {
    let job_id: String = row.get(1)?;
    let unreadable = |index: usize, reason: String| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            Box::new(StoreError::Corrupt {
                job_id: job_id.clone(),
                reason,
            }),
        )
    };
    let tokens = |index: usize| -> rusqlite::Result<u64> {
        // NULL: a row written by an older node without the delta; counted
        // as claiming everything (never as claiming nothing).
        let value: Option<i64> = row.get(index)?;
        tokens_from_sql(value.unwrap_or(i64::MAX), &job_id)
            .map_err(|e| unreadable(index, e.to_string()))
    };
    let payload: String = row.get(7)?;
    let status: String = row.get(8)?;
    Ok(Checkpoint {
        id: row.get(0)?,
        tokens_processed: tokens(2)?,
        tokens_claimed: tokens(3)?,
        commitment: row.get(4)?,
        proof_hash: row.get(5)?,
        proof_cid: row.get(6)?,
        payload: serde_json::from_str(&payload)
            .map_err(|e| unreadable(7, format!("payload: {e}")))?,
        status: CheckpointStatus::parse(&status)
            .ok_or_else(|| unreadable(8, format!("unknown status {status:?}")))?,
        created_at_ms: row.get(9)?,
        submitted_at_ms: row.get(10)?,
        job_id,
    })
}

/// A job's checkpoints, oldest first.
pub fn list(conn: &Connection, job_id: &JobId) -> Result<Vec<Checkpoint>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM checkpoints WHERE job_id = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map(params![job_id.to_string()], read_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The job's checkpoint at cumulative count `tokens`, if any.
pub fn by_tokens(
    conn: &Connection,
    job_id: &JobId,
    tokens: u64,
) -> Result<Option<Checkpoint>, StoreError> {
    let Ok(tokens) = i64::try_from(tokens) else {
        return Ok(None);
    };
    Ok(conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM checkpoints WHERE job_id = ?1 AND tokens_processed = ?2"
            ),
            params![job_id.to_string(), tokens],
            read_row,
        )
        .optional()?)
}

/// Records a `pending` checkpoint.
pub fn insert(conn: &Connection, new: &NewCheckpoint<'_>) -> Result<Checkpoint, StoreError> {
    conn.execute(
        "INSERT INTO checkpoints (job_id, tokens_processed, tokens_claimed, commitment, proof_hash,
            proof_cid, payload, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8)",
        params![
            new.job_id.to_string(),
            tokens_to_sql(new.tokens_processed)?,
            tokens_to_sql(new.tokens_claimed)?,
            new.commitment,
            new.proof_hash,
            new.proof_cid,
            new.payload.to_string(),
            now_ms()
        ],
    )?;
    by_id(conn, conn.last_insert_rowid())
}

/// The checkpoint `id`.
pub fn by_id(conn: &Connection, id: i64) -> Result<Checkpoint, StoreError> {
    Ok(conn.query_row(
        &format!("SELECT {COLUMNS} FROM checkpoints WHERE id = ?1"),
        params![id],
        read_row,
    )?)
}

/// Records the chain client's answer (`note`: its receipt or reason).
pub fn mark(
    conn: &Connection,
    id: i64,
    status: CheckpointStatus,
    note: &str,
) -> Result<Checkpoint, StoreError> {
    set_status(conn, id, status, note)?;
    by_id(conn, id)
}

/// [`mark`] without reading the checkpoint back (a missing one is no error).
pub fn set_status(
    conn: &Connection,
    id: i64,
    status: CheckpointStatus,
    note: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE checkpoints SET status = ?2, submitted_at = ?3,
            payload = json_set(payload, '$.chain', ?4) WHERE id = ?1",
        params![id, status.name(), now_ms(), note],
    )?;
    Ok(())
}

/// Every `pending` checkpoint, oldest first.
pub fn pending(conn: &Connection) -> Result<Vec<Checkpoint>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM checkpoints WHERE status = 'pending' ORDER BY id"
    ))?;
    let rows = stmt.query_map([], read_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Checkpoints with `status`.
pub fn count(conn: &Connection, status: CheckpointStatus) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM checkpoints WHERE status = ?1",
        params![status.name()],
        |row| row.get(0),
    )?;
    Ok(n.max(0) as u64)
}

/// What a job's checkpoints and settlement have claimed.
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

/// Reads the [`Claims`] of a job; call inside the transaction that acts on them.
pub fn claims(conn: &Connection, job_id: &JobId) -> Result<Claims, StoreError> {
    let mut claims = Claims {
        settled: settlements::get(conn, job_id)?.is_some(),
        ..Claims::default()
    };
    let mut claimed: u128 = 0;
    for checkpoint in list(conn, job_id)? {
        claims.checkpoints += 1;
        if checkpoint.status == CheckpointStatus::Rejected {
            continue;
        }
        claims.last_cumulative = claims.last_cumulative.max(checkpoint.tokens_processed);
        claimed += u128::from(checkpoint.tokens_claimed);
    }
    claims.claimed = u64::try_from(claimed).unwrap_or(u64::MAX);
    Ok(claims)
}
