//! The batches table (`chain_batches`): every `submitVerifiedBatch`
//! transaction the EVM chain client sends, one row each, with the batch
//! proof (its binary form, `FZK-BP1`, which holds the entries it proves).
//! The checkpoints a batch carries keep their rows in the outbox table
//! (`store::outbox`), in state `batched`, pointing here (`batch_id`,
//! `batch_index`).
//!
//! A batch row moves through the outbox's states with the same steps
//! (`pending` -> `sent` -> `confirmed` or `failed`; a reorg moves a confirmed
//! batch back to `sent`), driven by the same submission worker. What a
//! batch's end means for its entries is recorded in the same database
//! transaction: confirmed, each entry is `confirmed` (credited, or covered by
//! a count the contract already had) or `failed` (skipped by the contract,
//! with its reason; its checkpoint is rejected, so it claims nothing); a
//! failed batch fails its entries; a batch whose nonce another transaction
//! took hands its entries back (`pending`) for a new batch. Written on the
//! durable connection.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::checkpoints::{self, CheckpointStatus};
use super::outbox::{self, OutboxEntry, OutboxState, TxState, TxTable};
use super::{now_ms, tokens_to_sql, StoreError};

/// Schema version 5: batches, and the outbox entries' place in one.
pub(super) const SCHEMA_V5: &str = r#"
ALTER TABLE chain_outbox ADD COLUMN batch_id INTEGER;
ALTER TABLE chain_outbox ADD COLUMN batch_index INTEGER;
CREATE INDEX IF NOT EXISTS chain_outbox_batch ON chain_outbox (batch_id, batch_index);
CREATE TABLE IF NOT EXISTS chain_batches (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    size          INTEGER NOT NULL,
    entries       INTEGER NOT NULL,
    host_id       TEXT NOT NULL,
    proof         BLOB NOT NULL,
    state         TEXT NOT NULL,
    nonce         INTEGER,
    tx_hash       TEXT,
    tx_hashes     TEXT NOT NULL DEFAULT '[]',
    raw_tx        BLOB,
    max_fee       TEXT,
    priority_fee  TEXT,
    bumps         INTEGER NOT NULL DEFAULT 0,
    block_number  INTEGER,
    block_hash    TEXT,
    gas_used      INTEGER,
    reason        TEXT,
    created_at    INTEGER NOT NULL,
    sent_at       INTEGER,
    confirmed_at  INTEGER,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chain_batches_state ON chain_batches (state, id);
"#;

/// One batch transaction.
#[derive(Debug, Clone, Serialize)]
pub struct BatchRow {
    pub id: i64,
    /// The proof's size N (the verifier the marketplace picks).
    pub size: u32,
    /// Real entries (the rest is padding).
    pub entries: u32,
    /// The host id the proof was made under, `0x` + 64 hex digits.
    pub host_id: String,
    /// The batch proof's binary form (`FZK-BP1`).
    #[serde(skip)]
    pub proof: Vec<u8>,
    /// The mined transaction's gas.
    pub gas_used: Option<u64>,
    /// Its transaction's state (the outbox's steps).
    #[serde(flatten)]
    pub tx: TxState,
}

/// The batches table's columns: its own, then [`outbox::TX_COLUMNS`] (from 6).
fn columns() -> String {
    format!(
        "id, size, entries, host_id, proof, gas_used, {}",
        outbox::TX_COLUMNS
    )
}

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<BatchRow> {
    let id: i64 = row.get(0)?;
    let label = format!("batch {id}");
    let out_of_range = |index: usize, value: i64| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Integer,
            Box::new(StoreError::Corrupt {
                job_id: label.clone(),
                reason: format!("{value} out of range"),
            }),
        )
    };
    let u32_of =
        |index: usize, value: i64| u32::try_from(value).map_err(|_| out_of_range(index, value));
    let gas: Option<i64> = row.get(5)?;
    Ok(BatchRow {
        id,
        size: u32_of(1, row.get(1)?)?,
        entries: u32_of(2, row.get(2)?)?,
        host_id: row.get(3)?,
        proof: row.get(4)?,
        gas_used: gas
            .map(|g| u64::try_from(g).map_err(|_| out_of_range(5, g)))
            .transpose()?,
        tx: outbox::read_tx(row, 6, &label)?,
    })
}

/// A batch to record.
#[derive(Debug, Clone)]
pub struct NewBatch<'a> {
    /// The outbox entries it carries, in the proof's order.
    pub members: &'a [i64],
    pub size: u32,
    pub host_id: &'a str,
    /// The proof's binary form.
    pub proof: &'a [u8],
}

/// Records a batch (`pending`) and moves its entries into it (`batched`),
/// if every one of them is still `pending`; `None` (nothing written) if one
/// is not (another pass took it).
pub fn form(conn: &Connection, batch: &NewBatch<'_>) -> Result<Option<BatchRow>, StoreError> {
    for id in batch.members {
        if outbox::by_id(conn, *id)?.tx.state != OutboxState::Pending {
            return Ok(None);
        }
    }
    let now = now_ms();
    conn.execute(
        "INSERT INTO chain_batches (size, entries, host_id, proof, state, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)",
        params![
            batch.size,
            batch.members.len() as i64,
            batch.host_id,
            batch.proof,
            now
        ],
    )?;
    let id = conn.last_insert_rowid();
    for (index, member) in batch.members.iter().enumerate() {
        conn.execute(
            "UPDATE chain_outbox SET state = 'batched', batch_id = ?2, batch_index = ?3,
                reason = NULL, updated_at = ?4 WHERE id = ?1 AND state = 'pending'",
            params![member, id, index as i64, now],
        )?;
    }
    by_id(conn, id).map(Some)
}

/// The batch with `id`, if any.
pub fn find(conn: &Connection, id: i64) -> Result<Option<BatchRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {} FROM chain_batches WHERE id = ?1", columns()),
            params![id],
            read_row,
        )
        .optional()?)
}

/// The batch with `id`.
pub fn by_id(conn: &Connection, id: i64) -> Result<BatchRow, StoreError> {
    Ok(conn.query_row(
        &format!("SELECT {} FROM chain_batches WHERE id = ?1", columns()),
        params![id],
        read_row,
    )?)
}

/// Batches in `state`: `sent` by nonce, others oldest first.
pub fn in_state(conn: &Connection, state: OutboxState) -> Result<Vec<BatchRow>, StoreError> {
    let order = if state == OutboxState::Sent {
        "nonce, id"
    } else {
        "id"
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT {cols} FROM chain_batches WHERE state = ?1 ORDER BY {order}",
        cols = columns()
    ))?;
    let rows = stmt.query_map(params![state.name()], read_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Confirmed batches mined at or above `from_block` (the reorg watch window).
pub fn confirmed_since(conn: &Connection, from_block: u64) -> Result<Vec<BatchRow>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {cols} FROM chain_batches WHERE state = 'confirmed' AND block_number >= ?1 ORDER BY nonce", cols = columns()
    ))?;
    let rows = stmt.query_map(params![tokens_to_sql(from_block)?], read_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The outbox entries a batch carries, in the proof's order.
pub fn members(conn: &Connection, batch_id: i64) -> Result<Vec<OutboxEntry>, StoreError> {
    outbox::in_batch(conn, batch_id)
}

/// What the contract did with one entry of a confirmed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOutcome {
    /// Credited by this batch (`VerifiedProofSubmitted`).
    Credited,
    /// Skipped because the job's recorded count was already at or above the
    /// entry's (`TokensNotIncreasing`): an earlier transaction paid these
    /// tokens; the checkpoint's claim stands.
    Covered,
    /// Skipped for another reason (the contract's `SkipReason`): nothing was
    /// paid; the checkpoint is rejected, so it claims nothing.
    Skipped(String),
}

/// Records a mined batch at its confirmation depth and each entry's outcome
/// (`outcomes[i]` for the entry at `batch_index` i), in one transaction.
pub fn confirm(
    conn: &Connection,
    id: i64,
    mined: &Mined<'_>,
    outcomes: &[EntryOutcome],
) -> Result<(), StoreError> {
    let now = now_ms();
    conn.execute(
        "UPDATE chain_batches SET state = 'confirmed', tx_hash = ?2, block_number = ?3,
            block_hash = ?4, gas_used = ?5, confirmed_at = ?6, updated_at = ?6 WHERE id = ?1",
        params![
            id,
            mined.tx_hash,
            tokens_to_sql(mined.block_number)?,
            mined.block_hash,
            mined.gas_used.map(tokens_to_sql).transpose()?,
            now
        ],
    )?;
    for (entry, outcome) in members(conn, id)?.iter().zip(outcomes) {
        outbox::mark_confirmed(
            conn,
            entry.id,
            mined.tx_hash,
            mined.block_number,
            mined.block_hash,
        )?;
        match outcome {
            EntryOutcome::Credited => set_reason(conn, entry.id, None)?,
            EntryOutcome::Covered => set_reason(
                conn,
                entry.id,
                Some("covered: the job's recorded count was already at or above it (TokensNotIncreasing)"),
            )?,
            EntryOutcome::Skipped(reason) => {
                let reason = format!("skipped by the marketplace: {reason}");
                outbox::mark_failed(conn, entry.id, &reason)?;
                checkpoints::set_status(
                    conn,
                    entry.checkpoint_id,
                    CheckpointStatus::Rejected,
                    &reason,
                )?;
            }
        }
    }
    Ok(())
}

/// Where a batch's transaction was mined.
#[derive(Debug, Clone, Copy)]
pub struct Mined<'a> {
    pub tx_hash: &'a str,
    pub block_number: u64,
    pub block_hash: &'a str,
    pub gas_used: Option<u64>,
}

fn set_reason(conn: &Connection, entry: i64, reason: Option<&str>) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE chain_outbox SET reason = ?2 WHERE id = ?1",
        params![entry, reason],
    )?;
    Ok(())
}

/// Records a final failure of a batch (a decoded revert): the batch, its
/// entries and their checkpoints (rejected, so they claim nothing).
pub fn fail(conn: &Connection, id: i64, reason: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE chain_batches SET state = 'failed', reason = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, reason, now_ms()],
    )?;
    for entry in members(conn, id)? {
        outbox::mark_failed(conn, entry.id, reason)?;
        checkpoints::set_status(
            conn,
            entry.checkpoint_id,
            CheckpointStatus::Rejected,
            &format!("refused by the marketplace: {reason}"),
        )?;
    }
    Ok(())
}

/// Ends a batch that will never be mined (its nonce went to another
/// transaction, or it was proved under a host key the marketplace no longer
/// has): the batch is `failed` with `reason`; each entry in `credited` is
/// `confirmed` (the contract shows its count paid), every other entry goes
/// back to `pending` for a new batch.
pub fn dissolve(
    conn: &Connection,
    id: i64,
    reason: &str,
    credited: &[i64],
) -> Result<(), StoreError> {
    let now = now_ms();
    conn.execute(
        "UPDATE chain_batches SET state = 'failed', reason = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, reason, now],
    )?;
    for entry in members(conn, id)? {
        if credited.contains(&entry.id) {
            outbox::mark_confirmed(conn, entry.id, CREDITED, 0, "")?;
        } else {
            conn.execute(
                "UPDATE chain_outbox SET state = 'pending', batch_id = NULL, batch_index = NULL,
                    reason = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'batched'",
                params![entry.id, reason, now],
            )?;
        }
    }
    Ok(())
}

/// The `tx_hash` recorded for an entry found credited by the contract
/// without a receipt of its own transaction at hand.
pub const CREDITED: &str = "credited";

/// A confirmed batch whose block a reorg dropped goes back to `sent` (its
/// recorded transaction is broadcast again), and its entries back to
/// `batched`; checkpoints its skips had rejected are `submitted` again (the
/// batch's outcome is decided anew when it is mined again).
pub fn reorged(conn: &Connection, id: i64) -> Result<(), StoreError> {
    outbox::mark_reorged(conn, TxTable::Batches, id)?;
    for entry in members(conn, id)? {
        if entry.tx.state == OutboxState::Failed {
            checkpoints::set_status(
                conn,
                entry.checkpoint_id,
                CheckpointStatus::Submitted,
                "its batch was dropped by a reorg; sent again",
            )?;
        }
        conn.execute(
            "UPDATE chain_outbox SET state = 'batched', block_number = NULL, block_hash = NULL,
                confirmed_at = NULL, reason = 'dropped by a reorg', updated_at = ?2 WHERE id = ?1",
            params![entry.id, now_ms()],
        )?;
    }
    Ok(())
}

/// Batches by state, for metrics and `/health`.
pub fn count_by_state(conn: &Connection) -> Result<Vec<(OutboxState, u64)>, StoreError> {
    [
        OutboxState::Pending,
        OutboxState::Sent,
        OutboxState::Confirmed,
        OutboxState::Failed,
    ]
    .into_iter()
    .map(|state| {
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM chain_batches WHERE state = ?1",
            params![state.name()],
            |row| row.get(0),
        )?;
        Ok((state, u64::try_from(n).unwrap_or(0)))
    })
    .collect()
}

/// What `GET /v1/batches/{id}` shows: the batch, its transaction, its
/// entries (checkpoint, job, count, state, reason) and its proof
/// (`0x` + the hex of its binary form).
pub fn view(conn: &Connection, batch: &BatchRow) -> Result<serde_json::Value, StoreError> {
    let entries: Vec<serde_json::Value> = members(conn, batch.id)?
        .iter()
        .map(|entry| {
            serde_json::json!({
                "index": entry.batch_index,
                "checkpoint_id": entry.checkpoint_id,
                "job_id": entry.job_id,
                "cumulative_tokens": entry.cumulative_tokens,
                "state": entry.tx.state,
                "reason": entry.tx.reason,
            })
        })
        .collect();
    let mut value = serde_json::json!(batch);
    value["checkpoints"] = entries.into();
    value["proof"] = format!("0x{}", hex::encode(&batch.proof)).into();
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::outbox::{NewEntry, SignedTx};
    use crate::store::Store;

    fn entry(conn: &Connection, checkpoint_id: i64) -> Result<OutboxEntry, StoreError> {
        outbox::insert(
            conn,
            &NewEntry {
                checkpoint_id,
                job_id: "0x01",
                cumulative_tokens: checkpoint_id as u64,
                commitment: "0x02",
                proof: b"proof",
            },
        )
    }

    #[test]
    fn a_batch_carries_its_entries_to_their_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("node.db")).unwrap();
        store
            .durable(|tx| {
                let a = entry(tx, 1)?;
                let b = entry(tx, 2)?;
                let c = entry(tx, 3)?;
                let new = NewBatch {
                    members: &[a.id, b.id],
                    size: 4,
                    host_id: "0x03",
                    proof: b"FZK-BP1",
                };
                let batch = form(tx, &new)?.expect("both pending");
                assert_eq!(
                    (batch.tx.state, batch.entries, batch.size),
                    (OutboxState::Pending, 2, 4)
                );
                // An entry already in a batch cannot join another.
                let again = NewBatch {
                    members: &[b.id, c.id],
                    ..new
                };
                assert!(form(tx, &again)?.is_none());
                assert_eq!(outbox::by_id(tx, c.id)?.tx.state, OutboxState::Pending);
                let carried = members(tx, batch.id)?;
                assert_eq!(
                    carried
                        .iter()
                        .map(|e| (e.id, e.batch_index))
                        .collect::<Vec<_>>(),
                    [(a.id, Some(0)), (b.id, Some(1))]
                );
                assert_eq!(carried[0].tx.state, OutboxState::Batched);
                outbox::record_sent(
                    tx,
                    TxTable::Batches,
                    batch.id,
                    &SignedTx {
                        nonce: 0,
                        tx_hash: "0xaa",
                        raw_tx: b"raw",
                        max_fee: 1,
                        priority_fee: 1,
                    },
                )?;
                assert_eq!(in_state(tx, OutboxState::Sent)?.len(), 1);
                let mined = Mined {
                    tx_hash: "0xaa",
                    block_number: 9,
                    block_hash: "0xbb",
                    gas_used: Some(500_000),
                };
                confirm(
                    tx,
                    batch.id,
                    &mined,
                    &[
                        EntryOutcome::Credited,
                        EntryOutcome::Skipped("JobCompleted".into()),
                    ],
                )?;
                let [first, second] = &members(tx, batch.id)?[..] else {
                    panic!("two entries");
                };
                assert_eq!(first.tx.state, OutboxState::Confirmed);
                assert_eq!(first.tx.tx_hash.as_deref(), Some("0xaa"));
                assert_eq!(second.tx.state, OutboxState::Failed);
                assert_eq!(
                    second.tx.reason.as_deref(),
                    Some("skipped by the marketplace: JobCompleted")
                );
                assert_eq!(by_id(tx, batch.id)?.gas_used, Some(500_000));
                assert_eq!(confirmed_since(tx, 9)?.len(), 1);
                // Its entries are watched for reorgs through the batch only.
                assert!(outbox::confirmed_since(tx, 0)?.is_empty());
                // A reorg puts everything back in flight.
                reorged(tx, batch.id)?;
                assert_eq!(by_id(tx, batch.id)?.tx.state, OutboxState::Sent);
                assert!(members(tx, batch.id)?
                    .iter()
                    .all(|e| e.tx.state == OutboxState::Batched));
                // Dissolved: the credited entry is confirmed, the other free again.
                dissolve(tx, batch.id, "nonce taken by another transaction", &[a.id])?;
                assert_eq!(by_id(tx, batch.id)?.tx.state, OutboxState::Failed);
                assert_eq!(outbox::by_id(tx, a.id)?.tx.state, OutboxState::Confirmed);
                let freed = outbox::by_id(tx, b.id)?;
                assert_eq!(
                    (freed.tx.state, freed.batch_id),
                    (OutboxState::Pending, None)
                );
                let view = view(tx, &by_id(tx, batch.id)?)?;
                assert_eq!(view["proof"], "0x".to_string() + &hex::encode(b"FZK-BP1"));
                Ok(())
            })
            .unwrap();
    }
}
