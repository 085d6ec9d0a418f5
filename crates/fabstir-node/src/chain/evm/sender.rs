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
use alloy::primitives::{B256, U256};
use alloy::providers::Provider as _;

use super::fault::fault;
use super::rpc::{self, Failure, PassError};
use super::tx::{parse_hash, parse_u256};
use super::EvmChain;
use crate::chain::client::Revert;
use crate::chain::contract::IFabstirMarketplace;
use crate::store::checkpoints::{self, CheckpointStatus};
use crate::store::outbox::{self, OutboxEntry, OutboxState};
use crate::store::StoreError;

/// The `tx_hash` recorded for a submission found credited by the contract
/// without a receipt of its own transaction at hand.
const CREDITED: &str = "credited";

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
                    + outbox::in_state(tx, OutboxState::Sent)?.len())
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
        if let Ok(Some(oldest)) = self.store.durable(|tx| {
            Ok(outbox::in_state(tx, OutboxState::Pending)?
                .into_iter()
                .chain(outbox::in_state(tx, OutboxState::Sent)?)
                .map(|e| e.created_at_ms)
                .min())
        }) {
            let age = (crate::store::now_ms() - oldest).max(0) as f64 / 1000.0;
            self.metrics.chain_outbox_oldest_seconds.set(age);
        } else {
            self.metrics.chain_outbox_oldest_seconds.set(0.0);
        }
    }

    /// One pass: reorg checks, receipts of sent entries, then pending
    /// entries signed and sent in order.
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
        self.send_pending(mined_nonce).await
    }

    /// Receipts for `sent` entries; broadcasts again what the node no
    /// longer knows about; bumps fees of what is stuck.
    async fn check_sent(&self, head: u64, mined_nonce: u64) -> Result<(), PassError> {
        let sent = self
            .store
            .durable(|tx| outbox::in_state(tx, OutboxState::Sent))?;
        for entry in sent {
            let mut found = None;
            for hash in entry.tx_hashes.iter().rev().filter_map(|h| parse_hash(h)) {
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
            let nonce = entry.nonce.unwrap_or(u64::MAX);
            let Some(receipt) = found else {
                // An endpoint can count a mined nonce before it serves the
                // receipt and the new state: wait a little before deciding.
                let sent_at = entry.sent_at_ms.unwrap_or(entry.created_at_ms);
                let grace = (self.settings.poll_interval * 5).max(Duration::from_secs(2));
                let settled = crate::store::now_ms() - sent_at > grace.as_millis() as i64;
                if nonce < mined_nonce && !settled {
                    continue;
                }
                if nonce < mined_nonce {
                    // The nonce is used, but no receipt of this entry's
                    // transactions is found (an endpoint that lost them, or
                    // another transaction of this wallet). The contract
                    // decides: its recorded commitment for this count.
                    if self.credited(&entry).await? {
                        self.store.durable(|tx| {
                            outbox::mark_confirmed(tx, entry.id, CREDITED, head, "")
                        })?;
                        tracing::info!(
                            checkpoint = entry.checkpoint_id,
                            "verified submission found credited by the contract"
                        );
                        continue;
                    }
                    tracing::warn!(checkpoint = entry.checkpoint_id, nonce, "nonce taken by another transaction; the submission is checked and signed again");
                    self.store.durable(|tx| {
                        outbox::requeue(tx, entry.id, "nonce taken by another transaction")
                    })?;
                    continue;
                }
                fault("awaiting_receipt");
                self.nudge(&entry).await?;
                continue;
            };
            let block = receipt.block_number.unwrap_or(u64::MAX);
            if head.saturating_add(1) < block.saturating_add(self.settings.confirmations) {
                self.log_depth_wait(&entry, &receipt.transaction_hash, block, head);
                fault("awaiting_receipt");
                continue;
            }
            self.forget_depth_wait(entry.id);
            let tx_hash = format!("{:#x}", receipt.transaction_hash);
            let block_hash = receipt
                .block_hash
                .map(|h| format!("{h:#x}"))
                .unwrap_or_default();
            if receipt.status() {
                self.store.durable(|tx| {
                    outbox::mark_confirmed(tx, entry.id, &tx_hash, block, &block_hash)
                })?;
                let latency = (crate::store::now_ms() - entry.created_at_ms).max(0) as f64 / 1000.0;
                self.metrics.chain_confirm_seconds.observe(latency);
                tracing::info!(checkpoint = entry.checkpoint_id, job_id = %crate::store::job_for_people(&entry.job_id), cumulative_tokens = entry.cumulative_tokens, tx = %tx_hash, block, "verified submission confirmed");
            } else {
                let revert = self.revert_reason(&entry, block).await;
                self.fail(&entry, &revert)?;
            }
        }
        Ok(())
    }

    /// Says once per entry (and block) that a mined submission waits for
    /// its confirmation depth: which block holds it, the head, and the block
    /// at which it counts. On a chain that mines only when a transaction
    /// arrives (anvil without `--block-time`) that block may never come.
    fn log_depth_wait(&self, entry: &OutboxEntry, tx: &B256, block: u64, head: u64) {
        let mut logged = self.depth_logged.lock().unwrap_or_else(|p| p.into_inner());
        if logged.insert(entry.id, block) == Some(block) {
            return;
        }
        let confirmed_at = block.saturating_add(self.settings.confirmations.saturating_sub(1));
        tracing::info!(
            checkpoint = entry.checkpoint_id,
            job_id = %crate::store::job_for_people(&entry.job_id),
            tx = %format!("{tx:#x}"),
            block,
            head,
            confirmations = self.settings.confirmations,
            confirmed_at_block = confirmed_at,
            "verified submission mined; waiting for its confirmation depth (it counts once block {confirmed_at} exists; the chain must keep mining)"
        );
    }

    fn forget_depth_wait(&self, id: i64) {
        self.depth_logged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// A sent transaction without a receipt: broadcast again if the node
    /// does not know it (lost from the mempool, a crash before the first
    /// broadcast, a restarted node, a reorg), bump its fees if stuck.
    async fn nudge(&self, entry: &OutboxEntry) -> Result<(), PassError> {
        let Some(hash) = entry.tx_hash.as_deref().and_then(parse_hash) else {
            return Ok(());
        };
        let known = self
            .provider
            .get_transaction_by_hash(hash)
            .await
            .map_err(|e| self.rpc_error("eth_getTransactionByHash", e))?
            .is_some();
        let sent_at = entry.sent_at_ms.unwrap_or(entry.created_at_ms);
        let waited = Duration::from_millis((crate::store::now_ms() - sent_at).max(0) as u64);
        if waited >= self.settings.stuck_after && entry.bumps < self.settings.max_fee_bumps {
            return self.bump(entry).await;
        }
        if !known {
            if let Some(raw) = &entry.raw_tx {
                tracing::info!(checkpoint = entry.checkpoint_id, tx = %hash, "broadcasting a recorded transaction again");
                self.broadcast(raw).await?;
            }
        }
        Ok(())
    }

    /// Replaces a stuck transaction: same nonce and calldata, fees raised by
    /// 25% (above the 10% nodes require), within the fee cap.
    async fn bump(&self, entry: &OutboxEntry) -> Result<(), PassError> {
        let (Some(nonce), Some(old_max), Some(old_tip)) = (
            entry.nonce,
            entry
                .max_fee
                .as_deref()
                .and_then(|v| v.parse::<u128>().ok()),
            entry
                .priority_fee
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
        let input = self.calldata(entry);
        let gas = self.gas_for(&input).await?;
        let signed = self.sign(nonce, gas, max_fee, tip, input);
        self.store
            .durable(|tx| outbox::record_bump(tx, entry.id, &signed.record()))?;
        self.metrics.chain_fee_bumps.inc();
        tracing::warn!(checkpoint = entry.checkpoint_id, nonce, tx = %signed.hash, max_fee, "transaction stuck; replaced with higher fees");
        self.broadcast(&signed.raw).await
    }

    /// Pending entries, oldest first: simulated, signed with the next nonce,
    /// recorded, broadcast.
    async fn send_pending(&self, mined_nonce: u64) -> Result<(), PassError> {
        let pending = self
            .store
            .durable(|tx| outbox::in_state(tx, OutboxState::Pending))?;
        if pending.is_empty() {
            return Ok(());
        }
        let wallet = format!("{:#x}", self.wallet);
        for entry in pending {
            let input = self.calldata(&entry);
            // Never send what would revert.
            if let Err(e) = self.provider.call(self.request(input.clone())).await {
                match rpc::classify("eth_call", e) {
                    Failure::Revert(revert) => {
                        // Already credited (sent before a crash or an
                        // endpoint switch, by this very submission)?
                        if revert.name == "TokensNotIncreasing" && self.credited(&entry).await? {
                            self.store.durable(|tx| {
                                outbox::mark_confirmed(tx, entry.id, CREDITED, 0, "")
                            })?;
                            continue;
                        }
                        self.fail(&entry, &revert)?;
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
                outbox::record_sent(tx, entry.id, &signed.record())?;
                outbox::set_next_nonce(tx, &wallet, nonce + 1)
            })?;
            fault("after_record");
            tracing::info!(checkpoint = entry.checkpoint_id, job_id = %crate::store::job_for_people(&entry.job_id), cumulative_tokens = entry.cumulative_tokens, nonce, tx = %signed.hash, "verified submission sent");
            self.broadcast(&signed.raw).await?;
            fault("after_broadcast");
        }
        Ok(())
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
    async fn revert_reason(&self, entry: &OutboxEntry, block: u64) -> Revert {
        let request = self.request(self.calldata(entry));
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
        }
    }

    /// Records a final failure: the entry, its checkpoint (rejected, so it
    /// claims nothing), the metric.
    fn fail(&self, entry: &OutboxEntry, revert: &Revert) -> Result<(), StoreError> {
        let reason = revert.to_string();
        tracing::warn!(checkpoint = entry.checkpoint_id, job_id = %crate::store::job_for_people(&entry.job_id), reason = %reason, "verified submission refused by the contract");
        self.metrics
            .chain_reverts
            .with_label_values(&[&revert.name])
            .inc();
        self.store.durable(|tx| {
            outbox::mark_failed(tx, entry.id, &reason)?;
            checkpoints::mark(
                tx,
                entry.checkpoint_id,
                CheckpointStatus::Rejected,
                &format!("refused by the marketplace: {reason}"),
            )?;
            Ok(())
        })
    }
}
