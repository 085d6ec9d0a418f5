//! The submission worker: the state machine that drives the outbox table's
//! rows to the chain, one pass at a time (see the [module
//! documentation](super) for why it is exactly once).
//!
//! A pass: the head and the wallet's mined nonce; [reorg checks](super::reorg)
//! of confirmed rows; receipts of `sent` rows (`confirmed` at the configured
//! depth, `failed` with the decoded revert, broadcast again when the node
//! lost the transaction, a fee bump when stuck, back to `pending` when
//! another transaction took the nonce); then `pending` rows simulated, signed
//! with the next nonce, recorded as `sent` and broadcast.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::eips::BlockId;
use alloy::primitives::{Bytes, B256, U256};
use alloy::providers::Provider as _;
use alloy::rpc::types::TransactionReceipt;

use super::fault::fault;
use super::rpc::{self, Failure, PassError};
use super::tx::{parse_hash, parse_u256};
use super::EvmChain;
use crate::chain::client::Revert;
use crate::chain::contract::IFabstirMarketplace;
use crate::store::batches::{self, BatchRow, Mined, CREDITED};
use crate::store::checkpoints::{self, CheckpointStatus};
use crate::store::outbox::{self, OutboxEntry, OutboxState, TxState, TxTable};
use crate::store::StoreError;

/// A transaction row the worker drives: a single submission (an outbox
/// entry, `submitVerifiedProof`) or a batch (`submitVerifiedBatch`). Both
/// go through the same steps; what differs is their calldata and what their
/// outcome means for their checkpoints.
#[derive(Debug, Clone)]
pub(super) enum Row {
    Single(OutboxEntry),
    Batch(BatchRow),
}

impl Row {
    fn table(&self) -> TxTable {
        match self {
            Self::Single(_) => TxTable::Outbox,
            Self::Batch(_) => TxTable::Batches,
        }
    }

    fn id(&self) -> i64 {
        match self {
            Self::Single(e) => e.id,
            Self::Batch(b) => b.id,
        }
    }

    /// Its transaction's state and what was signed for it.
    pub(super) fn tx(&self) -> &TxState {
        match self {
            Self::Single(e) => &e.tx,
            Self::Batch(b) => &b.tx,
        }
    }

    /// When its latest transaction was signed (or the row recorded).
    fn sent_at_ms(&self) -> i64 {
        self.tx().sent_at_ms.unwrap_or(self.tx().created_at_ms)
    }
}

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Single(e) => write!(f, "checkpoint {}", e.checkpoint_id),
            Self::Batch(b) => write!(f, "batch {} ({} checkpoints)", b.id, b.entries),
        }
    }
}

/// Rows of both tables in `state`, `sent` ones by nonce.
fn rows_in(conn: &rusqlite::Connection, state: OutboxState) -> Result<Vec<Row>, StoreError> {
    let mut rows: Vec<Row> = outbox::in_state(conn, state)?
        .into_iter()
        .map(Row::Single)
        .chain(batches::in_state(conn, state)?.into_iter().map(Row::Batch))
        .collect();
    if state == OutboxState::Sent {
        rows.sort_by_key(|row| row.tx().nonce);
    }
    Ok(rows)
}

impl EvmChain {
    /// Runs the submission worker until the process ends: every poll
    /// interval (or when woken by a new entry) one pass; transient RPC
    /// errors back off exponentially up to 30 s.
    pub async fn run(self: Arc<Self>) {
        let mut backoff = Duration::ZERO;
        loop {
            match self.pass().await {
                Ok(()) => backoff = Duration::ZERO,
                Err(PassError::Rpc(e)) => {
                    backoff =
                        (backoff * 2).clamp(Duration::from_millis(250), Duration::from_secs(30));
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "chain RPC error; retrying");
                }
                Err(PassError::Store(e)) => {
                    backoff = Duration::from_secs(5);
                    tracing::error!(error = %e, "submission worker: storage error");
                }
            }
            self.update_depth();
            let wait = backoff.max(self.settings.poll_interval);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified(), if backoff.is_zero() => {}
            }
        }
    }

    /// Waits until no entry is `pending` or `sent` (tests, the demo), at
    /// most `timeout`; returns whether it got there.
    pub async fn settle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let open = self.store.durable(|tx| {
                Ok(outbox::in_state(tx, OutboxState::Pending)?.len()
                    + outbox::in_state(tx, OutboxState::Batched)?.len()
                    + outbox::in_state(tx, OutboxState::Sent)?.len()
                    + batches::in_state(tx, OutboxState::Pending)?.len()
                    + batches::in_state(tx, OutboxState::Sent)?.len())
            });
            if matches!(open, Ok(0)) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            self.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The outbox metrics: rows by state, the oldest open row's age.
    fn update_depth(&self) {
        if let Ok(counts) = self.store.durable(|tx| outbox::count_by_state(tx)) {
            for (state, n) in counts {
                self.metrics
                    .chain_outbox_depth
                    .with_label_values(&[state.name()])
                    .set(n as i64);
            }
        }
        if let Ok(Some(oldest)) = self.store.durable(|tx| outbox::oldest_open_created_at(tx)) {
            let age = (crate::store::now_ms() - oldest).max(0) as f64 / 1000.0;
            self.metrics.chain_outbox_oldest_seconds.set(age);
        } else {
            self.metrics.chain_outbox_oldest_seconds.set(0.0);
        }
    }

    /// One pass: reorg checks, receipts of sent rows, batches formed, then
    /// pending rows signed and sent in order.
    pub(super) async fn pass(&self) -> Result<(), PassError> {
        let head = self
            .provider
            .get_block_number()
            .await
            .map_err(|e| self.rpc_error("eth_blockNumber", e))?;
        let mined_nonce = self
            .provider
            .get_transaction_count(self.wallet)
            .latest()
            .await
            .map_err(|e| self.rpc_error("eth_getTransactionCount", e))?;
        self.check_reorgs(head).await?;
        self.check_sent(head, mined_nonce).await?;
        self.form_batches().await?;
        self.send_pending(mined_nonce).await
    }

    /// Receipts for `sent` rows; broadcasts again what the node no longer
    /// knows about; bumps fees of what is stuck.
    async fn check_sent(&self, head: u64, mined_nonce: u64) -> Result<(), PassError> {
        let sent = self.store.durable(|tx| rows_in(tx, OutboxState::Sent))?;
        for row in sent {
            let mut found = None;
            for hash in row
                .tx()
                .tx_hashes
                .iter()
                .rev()
                .filter_map(|h| parse_hash(h))
            {
                if let Some(receipt) = self
                    .provider
                    .get_transaction_receipt(hash)
                    .await
                    .map_err(|e| self.rpc_error("eth_getTransactionReceipt", e))?
                {
                    found = Some(receipt);
                    break;
                }
            }
            let nonce = row.tx().nonce.unwrap_or(u64::MAX);
            let Some(receipt) = found else {
                // An endpoint can count a mined nonce before it serves the
                // receipt and the new state: wait a little before deciding.
                let grace = (self.settings.poll_interval * 5).max(Duration::from_secs(2));
                let settled = crate::store::now_ms() - row.sent_at_ms() > grace.as_millis() as i64;
                if nonce < mined_nonce && !settled {
                    continue;
                }
                if nonce < mined_nonce {
                    // The nonce is used, but no receipt of this row's
                    // transactions is found (an endpoint that lost them, or
                    // another transaction of this wallet). The contract
                    // decides.
                    self.lost(&row, head).await?;
                    continue;
                }
                fault("awaiting_receipt");
                self.nudge(&row).await?;
                continue;
            };
            let block = receipt.block_number.unwrap_or(u64::MAX);
            if head.saturating_add(1) < block.saturating_add(self.settings.confirmations) {
                self.log_depth_wait(&row, &receipt.transaction_hash, block, head);
                fault("awaiting_receipt");
                continue;
            }
            self.forget_depth_wait(&row);
            if receipt.status() {
                self.confirmed(&row, &receipt, block)?;
            } else {
                let revert = self.revert_reason(&row, block).await?;
                self.fail(&row, &revert)?;
            }
        }
        Ok(())
    }

    /// A sent row whose nonce is used without a receipt of its own: what the
    /// contract shows paid is confirmed; the rest is checked and signed
    /// again (a single submission) or goes into a new batch.
    async fn lost(&self, row: &Row, head: u64) -> Result<(), PassError> {
        match row {
            Row::Single(entry) => {
                if self.credited(entry).await? {
                    self.store
                        .durable(|tx| outbox::mark_confirmed(tx, entry.id, CREDITED, head, ""))?;
                    tracing::info!(
                        checkpoint = entry.checkpoint_id,
                        "verified submission found credited by the contract"
                    );
                    return Ok(());
                }
                tracing::warn!(checkpoint = entry.checkpoint_id, nonce = ?entry.tx.nonce, "nonce taken by another transaction; the submission is checked and signed again");
                self.store.durable(|tx| {
                    outbox::requeue(tx, entry.id, "nonce taken by another transaction")
                })?;
            }
            Row::Batch(batch) => {
                let credited = self.batch_credited(batch).await?;
                tracing::warn!(batch = batch.id, nonce = ?batch.tx.nonce, credited = credited.len(), entries = batch.entries, "no receipt of the batch's transactions and its nonce is used; checkpoints the contract shows paid are confirmed, the others go into a new batch");
                self.store.durable(|tx| {
                    batches::dissolve(
                        tx,
                        batch.id,
                        "nonce used without a receipt of the batch's transactions; its unpaid checkpoints went into a new batch",
                        &credited,
                    )
                })?;
            }
        }
        Ok(())
    }

    /// Records a mined, successful row at its confirmation depth.
    fn confirmed(
        &self,
        row: &Row,
        receipt: &TransactionReceipt,
        block: u64,
    ) -> Result<(), StoreError> {
        let tx_hash = format!("{:#x}", receipt.transaction_hash);
        let block_hash = receipt
            .block_hash
            .map(|h| format!("{h:#x}"))
            .unwrap_or_default();
        match row {
            Row::Single(entry) => {
                self.store.durable(|tx| {
                    outbox::mark_confirmed(tx, entry.id, &tx_hash, block, &block_hash)
                })?;
                let latency =
                    (crate::store::now_ms() - entry.tx.created_at_ms).max(0) as f64 / 1000.0;
                self.metrics.chain_confirm_seconds.observe(latency);
                tracing::info!(checkpoint = entry.checkpoint_id, job_id = %crate::store::job_for_people(&entry.job_id), cumulative_tokens = entry.cumulative_tokens, tx = %tx_hash, block, "verified submission confirmed");
            }
            Row::Batch(batch) => {
                let outcomes = self.batch_outcomes(batch, receipt)?;
                let members = self.store.durable(|tx| {
                    batches::confirm(
                        tx,
                        batch.id,
                        &Mined {
                            tx_hash: &tx_hash,
                            block_number: block,
                            block_hash: &block_hash,
                            gas_used: Some(receipt.gas_used),
                        },
                        &outcomes,
                    )?;
                    batches::members(tx, batch.id)
                })?;
                let now = crate::store::now_ms();
                for entry in &members {
                    let latency = (now - entry.tx.created_at_ms).max(0) as f64 / 1000.0;
                    self.metrics.chain_confirm_seconds.observe(latency);
                }
                let n = members.len().max(1) as u64;
                self.metrics.chain_batch_gas.inc_by(receipt.gas_used);
                self.metrics.chain_batch_confirmed_checkpoints.inc_by(n);
                self.metrics
                    .chain_batch_gas_per_checkpoint
                    .set((receipt.gas_used / n) as i64);
                let skipped = outcomes
                    .iter()
                    .filter(|o| matches!(o, batches::EntryOutcome::Skipped(_)))
                    .count();
                tracing::info!(batch = batch.id, checkpoints = members.len(), skipped, gas_used = receipt.gas_used, gas_per_checkpoint = receipt.gas_used / n, tx = %tx_hash, block, "batch confirmed");
            }
        }
        Ok(())
    }

    /// Says once per entry (and block) that a mined submission waits for
    /// its confirmation depth: which block holds it, the head, and the block
    /// at which it counts. On a chain that mines only when a transaction
    /// arrives (anvil without `--block-time`) that block may never come.
    fn log_depth_wait(&self, row: &Row, tx: &B256, block: u64, head: u64) {
        let mut logged = self.depth_logged.lock().unwrap_or_else(|p| p.into_inner());
        if logged.insert((row.table(), row.id()), block) == Some(block) {
            return;
        }
        let confirmed_at = block.saturating_add(self.settings.confirmations.saturating_sub(1));
        tracing::info!(
            submission = %row,
            tx = %format!("{tx:#x}"),
            block,
            head,
            confirmations = self.settings.confirmations,
            confirmed_at_block = confirmed_at,
            "verified submission mined; waiting for its confirmation depth (it counts once block {confirmed_at} exists; the chain must keep mining)"
        );
    }

    fn forget_depth_wait(&self, row: &Row) {
        self.depth_logged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(row.table(), row.id()));
    }

    /// A sent transaction without a receipt: broadcast again if the node
    /// does not know it (lost from the mempool, a crash before the first
    /// broadcast, a restarted node, a reorg), bump its fees if stuck.
    async fn nudge(&self, row: &Row) -> Result<(), PassError> {
        let Some(hash) = row.tx().tx_hash.as_deref().and_then(parse_hash) else {
            return Ok(());
        };
        let known = self
            .provider
            .get_transaction_by_hash(hash)
            .await
            .map_err(|e| self.rpc_error("eth_getTransactionByHash", e))?
            .is_some();
        let waited =
            Duration::from_millis((crate::store::now_ms() - row.sent_at_ms()).max(0) as u64);
        if waited >= self.settings.stuck_after && row.tx().bumps < self.settings.max_fee_bumps {
            return self.bump(row).await;
        }
        if !known {
            if let Some(raw) = &row.tx().raw_tx {
                tracing::info!(submission = %row, tx = %hash, "broadcasting a recorded transaction again");
                self.broadcast(raw).await?;
            }
        }
        Ok(())
    }

    /// Replaces a stuck transaction: same nonce and calldata, fees raised by
    /// 25% (above the 10% nodes require), within the fee cap.
    async fn bump(&self, row: &Row) -> Result<(), PassError> {
        let tx = row.tx();
        let (Some(nonce), Some(old_max), Some(old_tip)) = (
            tx.nonce,
            tx.max_fee.as_deref().and_then(|v| v.parse::<u128>().ok()),
            tx.priority_fee
                .as_deref()
                .and_then(|v| v.parse::<u128>().ok()),
        ) else {
            return Ok(());
        };
        let fees = self.fees().await?;
        let mut max_fee = (old_max + old_max / 4 + 1).max(fees.0);
        let tip = (old_tip + old_tip / 4 + 1).max(fees.1);
        if let Some(cap) = self.settings.max_fee_per_gas {
            if old_max >= cap {
                return Ok(());
            }
            max_fee = max_fee.min(cap);
        }
        let tip = tip.min(max_fee);
        let input = self.row_calldata(row)?;
        let gas = self.gas_for(&input).await?;
        let signed = self.sign(nonce, gas, max_fee, tip, input);
        self.store
            .durable(|tx| outbox::record_bump(tx, row.table(), row.id(), &signed.record()))?;
        self.metrics.chain_fee_bumps.inc();
        tracing::warn!(submission = %row, nonce, tx = %signed.hash, max_fee, "transaction stuck; replaced with higher fees");
        self.broadcast(&signed.raw).await
    }

    /// Pending rows, oldest first: simulated, signed with the next nonce,
    /// recorded, broadcast. With batches on, single entries wait for a batch
    /// instead.
    async fn send_pending(&self, mined_nonce: u64) -> Result<(), PassError> {
        let batching = self.batching();
        let pending: Vec<Row> = self
            .store
            .durable(|tx| rows_in(tx, OutboxState::Pending))?
            .into_iter()
            .filter(|row| !(batching && matches!(row, Row::Single(_))))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let wallet = format!("{:#x}", self.wallet);
        for row in pending {
            let input = self.row_calldata(&row)?;
            // Never send what would revert.
            if let Err(e) = self.provider.call(self.request(input.clone())).await {
                match rpc::classify("eth_call", e) {
                    Failure::Revert(revert) => {
                        self.refused_in_simulation(&row, &revert).await?;
                        continue;
                    }
                    Failure::Transient(e) => return Err(self.rpc_error(e.call, e.source)),
                }
            }
            let gas = self.gas_for(&input).await?;
            let (max_fee, tip) = self.fees().await?;
            let recorded = self.store.durable(|tx| outbox::next_nonce(tx, &wallet))?;
            let nonce = recorded.unwrap_or(0).max(mined_nonce);
            let signed = self.sign(nonce, gas, max_fee, tip, input);
            fault("after_sign");
            self.store.durable(|tx| {
                outbox::record_sent(tx, row.table(), row.id(), &signed.record())?;
                outbox::set_next_nonce(tx, &wallet, nonce + 1)
            })?;
            fault("after_record");
            match &row {
                Row::Single(entry) => {
                    tracing::info!(checkpoint = entry.checkpoint_id, job_id = %crate::store::job_for_people(&entry.job_id), cumulative_tokens = entry.cumulative_tokens, nonce, tx = %signed.hash, "verified submission sent")
                }
                Row::Batch(batch) => {
                    tracing::info!(batch = batch.id, checkpoints = batch.entries, size = batch.size, nonce, tx = %signed.hash, "batch sent")
                }
            }
            self.broadcast(&signed.raw).await?;
            fault("after_broadcast");
        }
        Ok(())
    }

    /// A pending row whose simulation reverts: a single submission already
    /// credited (sent before a crash or an endpoint switch) is confirmed; a
    /// batch proved under a host key the marketplace no longer has goes
    /// back to be proved again; anything else is a final failure.
    async fn refused_in_simulation(&self, row: &Row, revert: &Revert) -> Result<(), PassError> {
        match row {
            Row::Single(entry) => {
                if revert.name == "TokensNotIncreasing" && self.credited(entry).await? {
                    self.store
                        .durable(|tx| outbox::mark_confirmed(tx, entry.id, CREDITED, 0, ""))?;
                    return Ok(());
                }
            }
            Row::Batch(batch) => {
                if revert.name == "InvalidBatchProof" && self.batch_outdated(batch) {
                    tracing::warn!(batch = batch.id, "the batch was proved under the previous host key; its checkpoints are proved again under the current one");
                    self.store.durable(|tx| {
                        batches::dissolve(
                            tx,
                            batch.id,
                            "proved under a previous host key; its checkpoints went into a new batch",
                            &[],
                        )
                    })?;
                    return Ok(());
                }
            }
        }
        Ok(self.fail(row, revert)?)
    }

    /// The calldata of a row.
    fn row_calldata(&self, row: &Row) -> Result<Bytes, StoreError> {
        match row {
            Row::Single(entry) => Ok(self.calldata(entry)),
            Row::Batch(batch) => self.batch_calldata(batch),
        }
    }

    /// Whether the contract recorded this entry's commitment for its count
    /// (`commitmentOf(jobId, cumulativeTokens)`): the submission was credited.
    async fn credited(&self, entry: &OutboxEntry) -> Result<bool, PassError> {
        let recorded = IFabstirMarketplace::new(self.settings.marketplace, &self.provider)
            .commitmentOf(
                parse_u256(&entry.job_id),
                U256::from(entry.cumulative_tokens),
            )
            .call()
            .await
            .map_err(|e| self.rpc_error("commitmentOf", rpc::transport(e)))?;
        Ok(!recorded.is_zero() && recorded == parse_u256(&entry.commitment))
    }

    /// Why a mined transaction reverted: the call replayed on the state
    /// before its block (`unknown` when the replay does not revert or
    /// cannot be made).
    async fn revert_reason(&self, row: &Row, block: u64) -> Result<Revert, StoreError> {
        let request = self.request(self.row_calldata(row)?);
        Ok(
            match self
                .provider
                .call(request)
                .block(BlockId::number(block.saturating_sub(1)))
                .await
            {
                Err(e) => match rpc::classify("eth_call", e) {
                    Failure::Revert(revert) => revert,
                    Failure::Transient(e) => Revert {
                        name: "unknown".into(),
                        detail: e.to_string(),
                    },
                },
                Ok(_) => Revert {
                    name: "unknown".into(),
                    detail: "reverted in its block".into(),
                },
            },
        )
    }

    /// Records a final failure: the row, its checkpoints (rejected, so they
    /// claim nothing), the metric.
    fn fail(&self, row: &Row, revert: &Revert) -> Result<(), StoreError> {
        let reason = revert.to_string();
        tracing::warn!(submission = %row, reason = %reason, "verified submission refused by the contract");
        self.metrics
            .chain_reverts
            .with_label_values(&[&revert.name])
            .inc();
        self.store.durable(|tx| match row {
            Row::Single(entry) => {
                outbox::mark_failed(tx, entry.id, &reason)?;
                checkpoints::mark(
                    tx,
                    entry.checkpoint_id,
                    CheckpointStatus::Rejected,
                    &format!("refused by the marketplace: {reason}"),
                )?;
                Ok(())
            }
            Row::Batch(batch) => batches::fail(tx, batch.id, &reason),
        })
    }
}
