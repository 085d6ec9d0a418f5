//! The `results` table: inference results as accepted, and each job's state
//! (`queued` -> `proving` -> `proved` | `failed`). Written on the fast
//! connection.

use fabstir_zk::{Digest32, HostId, InferenceResult, JobId, ModelRef, Statement};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{now_ms, tokens_from_sql, tokens_to_sql, StoreError};

/// Schema version 1 of the table.
pub(super) const SCHEMA_V1: &str = r#"
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
"#;

/// Version 4: retention. Once a settled job's prompt and response text is
/// deleted (`pruned_at` set), their SHA-256 hashes stay in `input_hash` and
/// `output_hash`, which is all the statement and the content digest need.
pub(super) const MIGRATE_V4: &str = r#"
ALTER TABLE results ADD COLUMN input_hash TEXT;
ALTER TABLE results ADD COLUMN output_hash TEXT;
ALTER TABLE results ADD COLUMN pruned_at INTEGER;
"#;

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
    /// Every state.
    pub const ALL: [JobState; 4] = [Self::Queued, Self::Proving, Self::Proved, Self::Failed];

    /// The state's name, as the API and the database show it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Proving => "proving",
            Self::Proved => "proved",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.name() == s)
    }
}

/// A stored inference result.
///
/// After retention deleted its text (`pruned_at_ms` set), `result.prompt`
/// and `result.response` are empty and only `input_hash` and `output_hash`
/// remain: use [`StoredResult::statement`], never `result.statement`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResult {
    pub result: InferenceResult,
    /// SHA-256 of the prompt (kept when the text is deleted).
    pub input_hash: Digest32,
    /// SHA-256 of the response (kept when the text is deleted).
    pub output_hash: Digest32,
    /// When retention deleted the prompt and response text, if it did.
    pub pruned_at_ms: Option<i64>,
    /// The result's `tokens_used` (the same as `result.tokens_used`).
    pub tokens_used: u64,
    pub host_id: HostId,
    pub content_hash: Digest32,
    pub state: JobState,
    pub failure: Option<String>,
    pub attempts: u32,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
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

/// Canonical digest of a result's content: what "the same job with the same
/// content" means for idempotency, and what the settlement gate checks a
/// stored row against. It covers the prompt and response through their
/// hashes, so it can be recomputed after retention deleted the text.
pub fn content_hash(result: &InferenceResult) -> Digest32 {
    content_digest(
        result,
        &Digest32::sha256(result.prompt.as_bytes()),
        &Digest32::sha256(result.response.as_bytes()),
    )
}

/// [`content_hash`] from the prompt's and response's hashes (the text in
/// `result` is not read).
fn content_digest(
    result: &InferenceResult,
    input_hash: &Digest32,
    output_hash: &Digest32,
) -> Digest32 {
    let model = match &result.model {
        ModelRef::Name(name) => format!("name:{}", Digest32::sha256(name.as_bytes())),
        ModelRef::Hash(hash) => format!("hash:{hash}"),
    };
    let canonical = format!(
        "fabstir result v1|{}|{}|{}|{}|{}|{}|{}",
        result.job_id,
        result.chain_id,
        result.marketplace,
        model,
        input_hash,
        output_hash,
        result.tokens_used
    );
    Digest32::sha256(canonical.as_bytes())
}

impl StoredResult {
    /// The statement the stored result makes for its host, from the stored
    /// hashes (so it holds after retention deleted the text).
    pub fn statement(&self) -> Statement {
        Statement {
            input_hash: self.input_hash,
            output_hash: self.output_hash,
            ..self.result.statement(self.host_id)
        }
    }

    /// Whether the row still has the content digest recorded when it was
    /// accepted (a field the proof does not cover, such as `tokens_used`,
    /// edited since is caught here).
    pub fn content_intact(&self) -> bool {
        content_digest(&self.result, &self.input_hash, &self.output_hash) == self.content_hash
    }
}

/// Stores a result (queued) unless the job exists; call inside a transaction.
pub fn insert(
    tx: &Connection,
    result: &InferenceResult,
    host_id: HostId,
) -> Result<InsertOutcome, StoreError> {
    let hash = content_hash(result);
    if let Some(existing) = get(tx, &result.job_id)? {
        return Ok(if existing.content_hash == hash {
            InsertOutcome::Duplicate(existing)
        } else {
            InsertOutcome::Conflict(existing)
        });
    }
    let (model_name, model_hash) = match &result.model {
        ModelRef::Name(name) => (Some(name.clone()), None),
        ModelRef::Hash(hash) => (None, Some(hash.to_string())),
    };
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
            tokens_to_sql(result.tokens_used)?,
            host_id.to_string(),
            hash.to_string(),
            now_ms()
        ],
    )?;
    let stored = get(tx, &result.job_id)?.ok_or_else(|| StoreError::Corrupt {
        job_id: result.job_id.to_string(),
        reason: "row vanished after insert".into(),
    })?;
    Ok(InsertOutcome::Inserted(stored))
}

/// Moves a job to `proving` (counting the attempt).
pub fn mark_proving(conn: &Connection, job_id: &JobId) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE results SET state = 'proving', attempts = attempts + 1, updated_at = ?2 WHERE job_id = ?1",
        params![job_id.to_string(), now_ms()],
    )?;
    Ok(())
}

/// Moves a job to `proved` (its proof is stored in the same transaction).
pub fn mark_proved(conn: &Connection, job_id: &JobId) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE results SET state = 'proved', failure = NULL, updated_at = ?2 WHERE job_id = ?1",
        params![job_id.to_string(), now_ms()],
    )?;
    Ok(())
}

/// Assigns a not-yet-proved job to another host (after a host key rotation).
pub fn reassign_host(conn: &Connection, job_id: &JobId, host_id: HostId) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE results SET host_id = ?2, updated_at = ?3 WHERE job_id = ?1 AND state IN ('queued', 'proving')",
        params![job_id.to_string(), host_id.to_string(), now_ms()],
    )?;
    Ok(())
}

/// Records a failure with its reason.
pub fn mark_failed(conn: &Connection, job_id: &JobId, reason: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE results SET state = 'failed', failure = ?2, updated_at = ?3 WHERE job_id = ?1",
        params![job_id.to_string(), reason, now_ms()],
    )?;
    Ok(())
}

/// Puts jobs that were being proved when the node stopped back in the queue
/// and returns every queued job, oldest first.
pub fn requeue_unfinished(conn: &Connection) -> Result<Vec<JobId>, StoreError> {
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

/// Jobs by state.
pub fn count_by_state(conn: &Connection) -> Result<Vec<(JobState, u64)>, StoreError> {
    let mut stmt = conn.prepare("SELECT state, COUNT(*) FROM results GROUP BY state")?;
    let rows = stmt
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(state, count)| Some((JobState::parse(&state)?, count.max(0) as u64)))
        .collect())
}

/// The stored result of a job.
pub fn get(conn: &Connection, job_id: &JobId) -> Result<Option<StoredResult>, StoreError> {
    let row = conn
        .query_row(
            "SELECT chain_id, marketplace, model_name, model_hash, prompt, response, tokens_used, host_id,
                    content_hash, state, failure, attempts, created_at, updated_at,
                    input_hash, output_hash, pruned_at
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
                    (
                        row.get::<_, Option<String>>(14)?,
                        row.get::<_, Option<String>>(15)?,
                        row.get::<_, Option<i64>>(16)?,
                    ),
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
        (input_hash, output_hash, pruned_at),
    )) = row
    else {
        return Ok(None);
    };
    let corrupt = |reason: String| StoreError::Corrupt {
        job_id: job_id.to_string(),
        reason,
    };
    let model = match (name, hash) {
        (Some(name), None) => ModelRef::Name(name),
        (None, Some(hash)) => ModelRef::Hash(
            Digest32::parse("model_hash", &hash).map_err(|e| corrupt(e.to_string()))?,
        ),
        _ => return Err(corrupt("model must be a name or a hash".into())),
    };
    let tokens_used = tokens_from_sql(tokens, &job_id.to_string())?;
    // Text deleted by retention: its hashes are stored; otherwise they are
    // the text's (what is stored is what is checked).
    let (input_hash, output_hash) = match pruned_at {
        Some(_) => {
            let stored = |what: &'static str, value: Option<String>| {
                value
                    .ok_or_else(|| {
                        corrupt(format!("{what} is missing although the text was deleted"))
                    })
                    .and_then(|v| Digest32::parse(what, &v).map_err(|e| corrupt(e.to_string())))
            };
            (
                stored("input_hash", input_hash)?,
                stored("output_hash", output_hash)?,
            )
        }
        None => (
            Digest32::sha256(prompt.as_bytes()),
            Digest32::sha256(response.as_bytes()),
        ),
    };
    Ok(Some(StoredResult {
        input_hash,
        output_hash,
        pruned_at_ms: pruned_at,
        result: InferenceResult {
            job_id: *job_id,
            chain_id: chain as u64,
            marketplace: fabstir_zk::parse_address(&market).map_err(|e| corrupt(e.to_string()))?,
            model,
            prompt,
            response,
            tokens_used,
        },
        tokens_used,
        host_id: HostId::parse(&host).map_err(|e| corrupt(e.to_string()))?,
        content_hash: Digest32::parse("content_hash", &content)
            .map_err(|e| corrupt(e.to_string()))?,
        state: JobState::parse(&state)
            .ok_or_else(|| corrupt(format!("unknown state {state:?}")))?,
        failure,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        created_at_ms: created,
        updated_at_ms: updated,
    }))
}

/// Settled jobs whose settlement is at or before `cutoff_ms` and whose text
/// is still stored, oldest settlement first, at most `limit`.
pub fn prunable(
    conn: &Connection,
    cutoff_ms: i64,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT r.job_id FROM results r JOIN settlements s ON s.job_id = r.job_id
         WHERE r.pruned_at IS NULL AND s.created_at <= ?1 ORDER BY s.created_at LIMIT ?2",
    )?;
    let ids = stmt
        .query_map(params![cutoff_ms, limit as i64], |row| {
            row.get::<_, String>(0)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ids)
}

/// Deletes a job's prompt and response text, keeping their SHA-256 hashes
/// (computed from the text as stored); returns the bytes of text deleted.
pub fn prune(conn: &Connection, job_id: &str, now: i64) -> Result<u64, StoreError> {
    let text: Option<(String, String)> = conn
        .query_row(
            "SELECT prompt, response FROM results WHERE job_id = ?1 AND pruned_at IS NULL",
            params![job_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let Some((prompt, response)) = text else {
        return Ok(0);
    };
    conn.execute(
        "UPDATE results SET prompt = '', response = '', input_hash = ?2, output_hash = ?3,
            pruned_at = ?4 WHERE job_id = ?1",
        params![
            job_id,
            Digest32::sha256(prompt.as_bytes()).to_string(),
            Digest32::sha256(response.as_bytes()).to_string(),
            now
        ],
    )?;
    Ok((prompt.len() + response.len()) as u64)
}
