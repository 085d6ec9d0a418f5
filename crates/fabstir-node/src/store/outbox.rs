//! The outbox table (`chain_outbox`): every verified submission the EVM chain
//! client sends, one row each. The rows are the data; the state machine that
//! moves them is the submission worker (`chain::evm::sender`), which records
//! each step before it takes the next:
//! `pending` (recorded, nothing sent) -> `sent` (signed with a nonce; the raw
//! transaction is stored *before* it is broadcast, so it can be broadcast
//! again after a crash) -> `confirmed` (receipt at the configured depth) or
//! `failed` (a revert, decoded; final). A reorg that drops a confirmed
//! transaction moves it back to `sent`. Also `chain_nonce`: the next nonce of
//! each wallet, advanced in the transaction that records a `sent` row, so
//! nonces have no gaps and are never reused. Written on the durable
//! connection.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{now_ms, tokens_from_sql, tokens_to_sql, StoreError};

/// Schema version 3: the outbox and the wallet nonces.
pub(super) const SCHEMA_V3: &str = r#"
CREATE TABLE IF NOT EXISTS chain_outbox (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    checkpoint_id     INTEGER NOT NULL UNIQUE,
    job_id            TEXT NOT NULL,
    cumulative_tokens INTEGER NOT NULL,
    commitment        TEXT NOT NULL,
    proof             BLOB NOT NULL,
    state             TEXT NOT NULL,
    nonce             INTEGER,
    tx_hash           TEXT,
    tx_hashes         TEXT NOT NULL DEFAULT '[]',
    raw_tx            BLOB,
    max_fee           TEXT,
    priority_fee      TEXT,
    bumps             INTEGER NOT NULL DEFAULT 0,
    block_number      INTEGER,
    block_hash        TEXT,
    reason            TEXT,
    created_at        INTEGER NOT NULL,
    sent_at           INTEGER,
    confirmed_at      INTEGER,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chain_outbox_state ON chain_outbox (state, id);
CREATE TABLE IF NOT EXISTS chain_nonce (
    wallet     TEXT PRIMARY KEY,
    next_nonce INTEGER NOT NULL
);
"#;

/// Where a submission stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxState {
    /// Recorded; not signed or sent yet (with batches on: waiting for one).
    Pending,
    /// An entry of a batch transaction (`store::batches`): the batch's row
    /// is signed, sent and confirmed; the entry ends `confirmed` or `failed`
    /// with it (or back to `pending` if the batch dissolves unsent).
    Batched,
    /// Signed with a nonce and (about to be) broadcast; waiting for a receipt.
    Sent,
    /// Mined successfully, at least the configured depth deep.
    Confirmed,
    /// Refused (a decoded revert) or given up; final, nothing was credited.
    Failed,
}

impl OutboxState {
    /// Every state.
    pub const ALL: [OutboxState; 5] = [
        Self::Pending,
        Self::Batched,
        Self::Sent,
        Self::Confirmed,
        Self::Failed,
    ];

    /// The state as stored and shown (also the metric label).
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Batched => "batched",
            Self::Sent => "sent",
            Self::Confirmed => "confirmed",
            Self::Failed => "failed",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.name() == s)
    }
}

/// Where a transaction row stands and what was signed for it: the columns
/// the outbox and the batches tables share, which the submission worker's
/// steps read and write.
#[derive(Debug, Clone, Serialize)]
pub struct TxState {
    pub state: OutboxState,
    pub nonce: Option<u64>,
    /// The latest transaction's hash.
    pub tx_hash: Option<String>,
    /// Every transaction signed for this nonce (fee bumps add one each).
    pub tx_hashes: Vec<String>,
    #[serde(skip)]
    pub raw_tx: Option<Vec<u8>>,
    /// Fees of the latest transaction, in wei (decimal).
    pub max_fee: Option<String>,
    pub priority_fee: Option<String>,
    pub bumps: u32,
    pub block_number: Option<u64>,
    pub block_hash: Option<String>,
    pub reason: Option<String>,
    pub created_at_ms: i64,
    pub sent_at_ms: Option<i64>,
    pub confirmed_at_ms: Option<i64>,
}

/// The shared columns, in [`TxState`]'s order.
pub(super) const TX_COLUMNS: &str = "state, nonce, tx_hash, tx_hashes, raw_tx, max_fee, priority_fee, bumps, block_number, block_hash, reason, created_at, sent_at, confirmed_at";

/// Reads [`TX_COLUMNS`] starting at column `first`; `row_label` names the
/// row in an error (`0x…` job id, `batch 3`).
pub(super) fn read_tx(
    row: &rusqlite::Row<'_>,
    first: usize,
    row_label: &str,
) -> rusqlite::Result<TxState> {
    let unreadable = |index: usize, reason: String| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            Box::new(StoreError::Corrupt {
                job_id: row_label.to_string(),
                reason,
            }),
        )
    };
    let u64_of = |index: usize, value: i64| {
        tokens_from_sql(value, row_label).map_err(|e| unreadable(index, e.to_string()))
    };
    let at = |offset: usize| first + offset;
    let state: String = row.get(at(0))?;
    let nonce: Option<i64> = row.get(at(1))?;
    let hashes: String = row.get(at(3))?;
    let bumps: i64 = row.get(at(7))?;
    let block: Option<i64> = row.get(at(8))?;
    Ok(TxState {
        state: OutboxState::parse(&state)
            .ok_or_else(|| unreadable(at(0), format!("unknown state {state:?}")))?,
        nonce: nonce.map(|n| u64_of(at(1), n)).transpose()?,
        tx_hash: row.get(at(2))?,
        tx_hashes: serde_json::from_str(&hashes)
            .map_err(|e| unreadable(at(3), format!("tx_hashes: {e}")))?,
        raw_tx: row.get(at(4))?,
        max_fee: row.get(at(5))?,
        priority_fee: row.get(at(6))?,
        bumps: u32::try_from(bumps).map_err(|_| unreadable(at(7), format!("bumps {bumps}")))?,
        block_number: block.map(|b| u64_of(at(8), b)).transpose()?,
        block_hash: row.get(at(9))?,
        reason: row.get(at(10))?,
        created_at_ms: row.get(at(11))?,
        sent_at_ms: row.get(at(12))?,
        confirmed_at_ms: row.get(at(13))?,
    })
}

/// One submission in the outbox.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub checkpoint_id: i64,
    /// `0x` + 64 hex digits.
    pub job_id: String,
    pub cumulative_tokens: u64,
    /// `0x` + 64 hex digits.
    pub commitment: String,
    /// The halo2 proof bytes the verifier checks.
    #[serde(skip)]
    pub proof: Vec<u8>,
    /// Its transaction's state (a batched entry's own: `batched`, then
    /// its batch's outcome).
    #[serde(flatten)]
    pub tx: TxState,
    /// The batch transaction carrying this entry (`store::batches`), if any.
    pub batch_id: Option<i64>,
    /// The entry's position in that batch's proof.
    pub batch_index: Option<u32>,
}

/// The two tables whose rows are transactions the submission worker signs,
/// sends and follows with the same steps: single submissions and batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxTable {
    /// `chain_outbox`: one `submitVerifiedProof` per row.
    Outbox,
    /// `chain_batches`: one `submitVerifiedBatch` per row.
    Batches,
}

impl TxTable {
    /// The table's name.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Outbox => "chain_outbox",
            Self::Batches => "chain_batches",
        }
    }
}

/// A submission to record.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub checkpoint_id: i64,
    pub job_id: &'a str,
    pub cumulative_tokens: u64,
    pub commitment: &'a str,
    pub proof: &'a [u8],
}

/// A signed transaction to record for an entry.
#[derive(Debug, Clone)]
pub struct SignedTx<'a> {
    pub nonce: u64,
    pub tx_hash: &'a str,
    pub raw_tx: &'a [u8],
    pub max_fee: u128,
    pub priority_fee: u128,
}

/// The outbox's columns: its own, then [`TX_COLUMNS`] (from 6), then the
/// batch ones (20, 21).
fn columns() -> String {
    format!("id, checkpoint_id, job_id, cumulative_tokens, commitment, proof, {TX_COLUMNS}, batch_id, batch_index")
}

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxEntry> {
    let job_id: String = row.get(2)?;
    let cumulative: i64 = row.get(3)?;
    Ok(OutboxEntry {
        id: row.get(0)?,
        checkpoint_id: row.get(1)?,
        cumulative_tokens: tokens_from_sql(cumulative, &job_id).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Integer,
                Box::new(e),
            )
        })?,
        commitment: row.get(4)?,
        proof: row.get(5)?,
        tx: read_tx(row, 6, &job_id)?,
        batch_id: row.get(20)?,
        batch_index: row.get(21)?,
        job_id,
    })
}

/// Records a submission (`pending`) unless its checkpoint has one; returns
/// the entry either way.
pub fn insert(conn: &Connection, entry: &NewEntry<'_>) -> Result<OutboxEntry, StoreError> {
    let now = now_ms();
    conn.execute(
        "INSERT INTO chain_outbox (checkpoint_id, job_id, cumulative_tokens, commitment, proof,
            state, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6) ON CONFLICT (checkpoint_id) DO NOTHING",
        params![
            entry.checkpoint_id,
            entry.job_id,
            tokens_to_sql(entry.cumulative_tokens)?,
            entry.commitment,
            entry.proof,
            now
        ],
    )?;
    by_checkpoint(conn, entry.checkpoint_id)?.ok_or_else(|| StoreError::Corrupt {
        job_id: entry.job_id.to_string(),
        reason: "outbox entry vanished after insert".into(),
    })
}

/// The entry of a checkpoint.
pub fn by_checkpoint(
    conn: &Connection,
    checkpoint_id: i64,
) -> Result<Option<OutboxEntry>, StoreError> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {} FROM chain_outbox WHERE checkpoint_id = ?1",
                columns()
            ),
            params![checkpoint_id],
            read_row,
        )
        .optional()?)
}

/// The entry with `id`.
pub fn by_id(conn: &Connection, id: i64) -> Result<OutboxEntry, StoreError> {
    Ok(conn.query_row(
        &format!("SELECT {} FROM chain_outbox WHERE id = ?1", columns()),
        params![id],
        read_row,
    )?)
}

/// Entries in `state`: `pending` oldest first, `sent` by nonce, `batched`
/// by batch and position.
pub fn in_state(conn: &Connection, state: OutboxState) -> Result<Vec<OutboxEntry>, StoreError> {
    let order = match state {
        OutboxState::Sent => "nonce, id",
        OutboxState::Batched => "batch_id, batch_index",
        _ => "id",
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT {cols} FROM chain_outbox WHERE state = ?1 ORDER BY {order}",
        cols = columns()
    ))?;
    let rows = stmt.query_map(params![state.name()], read_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The entries of batch `batch_id`, in the proof's order.
pub fn in_batch(conn: &Connection, batch_id: i64) -> Result<Vec<OutboxEntry>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {cols} FROM chain_outbox WHERE batch_id = ?1 ORDER BY batch_index",
        cols = columns()
    ))?;
    let rows = stmt.query_map(params![batch_id], read_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Confirmed single submissions mined at or above `from_block` (the reorg
/// watch window; batch entries are watched through their batch).
pub fn confirmed_since(conn: &Connection, from_block: u64) -> Result<Vec<OutboxEntry>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {cols} FROM chain_outbox WHERE state = 'confirmed' AND block_number >= ?1 AND batch_id IS NULL ORDER BY nonce", cols = columns()
    ))?;
    let rows = stmt.query_map(params![tokens_to_sql(from_block)?], read_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Every entry, oldest first.
pub fn all(conn: &Connection) -> Result<Vec<OutboxEntry>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {} FROM chain_outbox ORDER BY id",
        columns()
    ))?;
    let rows = stmt.query_map([], read_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Entries by state, for metrics.
pub fn count_by_state(conn: &Connection) -> Result<Vec<(OutboxState, u64)>, StoreError> {
    OutboxState::ALL
        .into_iter()
        .map(|state| {
            let n: i64 = conn.query_row(
                "SELECT COUNT(*) FROM chain_outbox WHERE state = ?1",
                params![state.name()],
                |row| row.get(0),
            )?;
            Ok((state, u64::try_from(n).unwrap_or(0)))
        })
        .collect()
}

/// When the oldest entry still open (`pending`, `batched` or `sent`) was
/// recorded (ms since the epoch), if any.
pub fn oldest_open_created_at(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(conn.query_row(
        "SELECT MIN(created_at) FROM chain_outbox WHERE state IN ('pending', 'batched', 'sent')",
        [],
        |row| row.get(0),
    )?)
}

/// The outbox at a glance, for `/health`: entries by state and the age of
/// the oldest open one (`null` when none is open).
pub fn summary(conn: &Connection) -> Result<serde_json::Value, StoreError> {
    let mut summary = serde_json::Map::new();
    for (state, n) in count_by_state(conn)? {
        summary.insert(state.name().into(), n.into());
    }
    let age = oldest_open_created_at(conn)?.map(|at| (now_ms() - at).max(0));
    summary.insert("oldest_open_age_ms".into(), age.into());
    Ok(serde_json::Value::Object(summary))
}

/// What a checkpoint's API record shows of its entry (`onchain`): its
/// state, transaction, block and reason (for an entry a batch skipped, the
/// contract's reason), and its batch (`GET /v1/batches/{id}` has the proof).
pub fn onchain_view(entry: &OutboxEntry) -> serde_json::Value {
    let batch = entry.batch_id.map(|id| {
        serde_json::json!({
            "id": id,
            "index": entry.batch_index,
        })
    });
    serde_json::json!({
        "batch": batch,
        "state": entry.tx.state,
        "tx_hash": entry.tx.tx_hash,
        "nonce": entry.tx.nonce,
        "block_number": entry.tx.block_number,
        "reason": entry.tx.reason,
        "sent_at_ms": entry.tx.sent_at_ms,
        "confirmed_at_ms": entry.tx.confirmed_at_ms,
    })
}

/// The wallet's next nonce as recorded, if any.
pub fn next_nonce(conn: &Connection, wallet: &str) -> Result<Option<u64>, StoreError> {
    let value: Option<i64> = conn
        .query_row(
            "SELECT next_nonce FROM chain_nonce WHERE wallet = ?1",
            params![wallet],
            |row| row.get(0),
        )
        .optional()?;
    value.map(|n| tokens_from_sql(n, wallet)).transpose()
}

/// Sets the wallet's next nonce.
pub fn set_next_nonce(conn: &Connection, wallet: &str, nonce: u64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO chain_nonce (wallet, next_nonce) VALUES (?1, ?2)
         ON CONFLICT (wallet) DO UPDATE SET next_nonce = excluded.next_nonce",
        params![wallet, tokens_to_sql(nonce)?],
    )?;
    Ok(())
}

/// Records the first signed transaction of a pending row of `table` (state
/// `sent`).
pub fn record_sent(
    conn: &Connection,
    table: TxTable,
    id: i64,
    tx: &SignedTx<'_>,
) -> Result<(), StoreError> {
    let now = now_ms();
    conn.execute(
        &format!(
            "UPDATE {} SET state = 'sent', nonce = ?2, tx_hash = ?3, tx_hashes = json_array(?3),
            raw_tx = ?4, max_fee = ?5, priority_fee = ?6, bumps = 0, sent_at = ?7, updated_at = ?7,
            reason = NULL
         WHERE id = ?1 AND state = 'pending'",
            table.name()
        ),
        params![
            id,
            tokens_to_sql(tx.nonce)?,
            tx.tx_hash,
            tx.raw_tx,
            tx.max_fee.to_string(),
            tx.priority_fee.to_string(),
            now
        ],
    )?;
    Ok(())
}

/// Records a replacement (fee bump) of a sent row's transaction: same
/// nonce, higher fees, one more hash to watch.
pub fn record_bump(
    conn: &Connection,
    table: TxTable,
    id: i64,
    tx: &SignedTx<'_>,
) -> Result<(), StoreError> {
    conn.execute(
        &format!("UPDATE {} SET tx_hash = ?2, tx_hashes = json_insert(tx_hashes, '$[#]', ?2),
            raw_tx = ?3, max_fee = ?4, priority_fee = ?5, bumps = bumps + 1, sent_at = ?6, updated_at = ?6
         WHERE id = ?1 AND state = 'sent'", table.name()),
        params![
            id,
            tx.tx_hash,
            tx.raw_tx,
            tx.max_fee.to_string(),
            tx.priority_fee.to_string(),
            now_ms()
        ],
    )?;
    Ok(())
}

/// Marks an entry confirmed in `block` by transaction `tx_hash`.
pub fn mark_confirmed(
    conn: &Connection,
    id: i64,
    tx_hash: &str,
    block_number: u64,
    block_hash: &str,
) -> Result<(), StoreError> {
    let now = now_ms();
    conn.execute(
        "UPDATE chain_outbox SET state = 'confirmed', tx_hash = ?2, block_number = ?3, block_hash = ?4,
            confirmed_at = ?5, updated_at = ?5 WHERE id = ?1",
        params![id, tx_hash, tokens_to_sql(block_number)?, block_hash, now],
    )?;
    Ok(())
}

/// Marks an entry failed (final) with its reason.
pub fn mark_failed(conn: &Connection, id: i64, reason: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE chain_outbox SET state = 'failed', reason = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, reason, now_ms()],
    )?;
    Ok(())
}

/// A confirmed row of `table` whose block was dropped by a reorg goes back
/// to `sent` (its signed transaction is broadcast again).
pub fn mark_reorged(conn: &Connection, table: TxTable, id: i64) -> Result<(), StoreError> {
    conn.execute(
        &format!(
            "UPDATE {} SET state = 'sent', block_number = NULL, block_hash = NULL,
            confirmed_at = NULL, reason = 'dropped by a reorg', updated_at = ?2
         WHERE id = ?1 AND state = 'confirmed'",
            table.name()
        ),
        params![id, now_ms()],
    )?;
    Ok(())
}

/// A sent entry whose nonce was taken by another transaction of the wallet
/// (none of its own hashes was mined) goes back to `pending`, to be checked
/// and signed again with a new nonce.
pub fn requeue(conn: &Connection, id: i64, reason: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE chain_outbox SET state = 'pending', nonce = NULL, tx_hash = NULL, tx_hashes = '[]',
            raw_tx = NULL, bumps = 0, reason = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'sent'",
        params![id, reason, now_ms()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn sample(checkpoint_id: i64) -> NewEntry<'static> {
        NewEntry {
            checkpoint_id,
            job_id: "0x01",
            cumulative_tokens: 8,
            commitment: "0x02",
            proof: b"proof",
        }
    }

    fn summary_pending(conn: &Connection) -> Result<u64, StoreError> {
        Ok(summary(conn)?["pending"].as_u64().unwrap_or(u64::MAX))
    }

    #[test]
    fn steps_are_recorded_and_nonces_advance() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("node.db")).unwrap();
        store
            .durable(|tx| {
                let first = insert(tx, &sample(7))?;
                assert_eq!(first.tx.state, OutboxState::Pending);
                // Idempotent per checkpoint.
                assert_eq!(insert(tx, &sample(7))?.id, first.id);
                assert_eq!(next_nonce(tx, "w")?, None);
                record_sent(
                    tx,
                    TxTable::Outbox,
                    first.id,
                    &SignedTx {
                        nonce: 4,
                        tx_hash: "0xaa",
                        raw_tx: b"raw",
                        max_fee: 10,
                        priority_fee: 1,
                    },
                )?;
                set_next_nonce(tx, "w", 5)?;
                assert_eq!(next_nonce(tx, "w")?, Some(5));
                record_bump(
                    tx,
                    TxTable::Outbox,
                    first.id,
                    &SignedTx {
                        nonce: 4,
                        tx_hash: "0xbb",
                        raw_tx: b"raw2",
                        max_fee: 20,
                        priority_fee: 2,
                    },
                )?;
                let sent = by_id(tx, first.id)?;
                assert_eq!(sent.tx.state, OutboxState::Sent);
                assert_eq!(sent.tx.nonce, Some(4));
                assert_eq!(sent.tx.tx_hashes, ["0xaa", "0xbb"]);
                assert_eq!(sent.tx.bumps, 1);
                assert_eq!(sent.tx.max_fee.as_deref(), Some("20"));
                mark_confirmed(tx, first.id, "0xbb", 12, "0xblock")?;
                assert_eq!(confirmed_since(tx, 12)?.len(), 1);
                assert_eq!(confirmed_since(tx, 13)?.len(), 0);
                mark_reorged(tx, TxTable::Outbox, first.id)?;
                let back = by_id(tx, first.id)?;
                assert_eq!(
                    (back.tx.state, back.tx.block_number),
                    (OutboxState::Sent, None)
                );
                requeue(tx, first.id, "nonce taken")?;
                let again = by_id(tx, first.id)?;
                assert_eq!(
                    (again.tx.state, again.tx.nonce),
                    (OutboxState::Pending, None)
                );
                mark_failed(tx, first.id, "TokensNotIncreasing")?;
                let counts = count_by_state(tx)?;
                assert!(counts.contains(&(OutboxState::Failed, 1)), "{counts:?}");
                let failed = by_id(tx, first.id)?;
                let view = onchain_view(&failed);
                assert_eq!(view["state"], "failed");
                assert_eq!(view["reason"], "TokensNotIncreasing");
                // Nothing open: no age.
                let summary = summary(tx)?;
                assert_eq!(summary["failed"], 1, "{summary}");
                assert_eq!(summary["oldest_open_age_ms"], serde_json::Value::Null);
                let open = insert(tx, &sample(8))?;
                assert_eq!(oldest_open_created_at(tx)?, Some(open.tx.created_at_ms));
                assert_eq!(summary_pending(tx)?, 1);
                Ok(())
            })
            .unwrap();
    }
}
