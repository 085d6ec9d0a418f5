//! The `proofs` table: one proof per job (the first one stored stays), with
//! the statement hashes it was made for. Written on the fast connection.

use fabstir_zk::{Digest32, JobId};
use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;

/// Schema version 1 of the table.
pub(super) const SCHEMA_V1: &str = r#"
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
"#;

/// Version 4: proofs looked up by digest (the replay check of every payment).
pub(super) const MIGRATE_V4: &str = r#"
CREATE INDEX IF NOT EXISTS proofs_sha256 ON proofs(proof_sha256);
"#;

/// A stored proof and the statement hashes it was made for.
#[derive(Debug, Clone, PartialEq)]
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

/// Stores a proof unless the job has one: a stored proof may already have
/// been checkpointed or settled, so it is never replaced.
pub fn insert(conn: &Connection, job_id: &JobId, proof: &StoredProof) -> Result<(), StoreError> {
    conn.execute(
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
    Ok(())
}

/// The stored proof of a job.
pub fn get(conn: &Connection, job_id: &JobId) -> Result<Option<StoredProof>, StoreError> {
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

/// Another job whose stored proof has these bytes (a replayed proof).
pub fn other_job_with(
    conn: &Connection,
    job_id: &JobId,
    sha: &Digest32,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT job_id FROM proofs WHERE proof_sha256 = ?1 AND job_id <> ?2 LIMIT 1",
            params![sha.to_string(), job_id.to_string()],
            |row| row.get::<_, String>(0),
        )
        .optional()?)
}

/// Number of stored proofs.
pub fn count(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM proofs", [], |row| row.get(0))?;
    Ok(n.max(0) as u64)
}
