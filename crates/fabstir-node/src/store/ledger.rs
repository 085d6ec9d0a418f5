//! The `ledger` table: the embedded chain client's record of accepted
//! submissions (one per checkpoint, each `proofHash` once). Written on the
//! durable connection.

use rusqlite::{params, Connection, OptionalExtension};

use super::{now_ms, tokens_to_sql, StoreError};

/// Schema version 1 of the table.
pub(super) const SCHEMA_V1: &str = r#"
CREATE TABLE IF NOT EXISTS ledger (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    checkpoint_id  INTEGER NOT NULL UNIQUE,
    job_id         TEXT NOT NULL,
    proof_hash     TEXT NOT NULL UNIQUE,
    tokens_claimed INTEGER NOT NULL,
    calldata       TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
"#;

/// A ledger entry to record.
#[derive(Debug, Clone)]
pub struct LedgerEntry<'a> {
    pub checkpoint_id: i64,
    /// `0x` + 64 hex digits.
    pub job_id: &'a str,
    /// `0x` + 64 hex digits.
    pub proof_hash: &'a str,
    pub tokens_claimed: u64,
    /// The submission's calldata, `0x` hex.
    pub calldata: &'a str,
}

/// The ledger's entry for a checkpoint: its id and when it was recorded.
pub fn entry_of(conn: &Connection, checkpoint_id: i64) -> Result<Option<(i64, i64)>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id, created_at FROM ledger WHERE checkpoint_id = ?1",
            params![checkpoint_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?)
}

/// The checkpoint that already used `proof_hash`, if any.
pub fn checkpoint_with_proof_hash(
    conn: &Connection,
    proof_hash: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT checkpoint_id FROM ledger WHERE proof_hash = ?1",
            params![proof_hash],
            |row| row.get(0),
        )
        .optional()?)
}

/// Records an entry.
pub fn insert(conn: &Connection, entry: &LedgerEntry<'_>) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO ledger (checkpoint_id, job_id, proof_hash, tokens_claimed, calldata, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            entry.checkpoint_id,
            entry.job_id,
            entry.proof_hash,
            tokens_to_sql(entry.tokens_claimed)?,
            entry.calldata,
            now_ms()
        ],
    )?;
    Ok(())
}
