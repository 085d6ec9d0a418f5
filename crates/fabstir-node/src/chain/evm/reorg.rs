//! Reorg checks: a confirmed submission mined inside the reorg window is
//! looked up again on every pass; one whose transaction is no longer in the
//! block it was confirmed in goes back to `sent`, and the submission worker
//! broadcasts its recorded transaction again (the same bytes, the same
//! nonce: it cannot be credited twice).

use alloy::providers::Provider as _;

use super::rpc::PassError;
use super::sender::Row;
use super::tx::parse_hash;
use super::EvmChain;
use crate::store::{batches, outbox};

impl EvmChain {
    /// Confirmed entries in the reorg window whose transaction left the
    /// chain (no receipt, or a receipt in another block) go back to `sent`.
    pub(super) async fn check_reorgs(&self, head: u64) -> Result<(), PassError> {
        let from = head.saturating_sub(self.settings.reorg_window);
        let confirmed = self.store.durable(|tx| {
            Ok(outbox::confirmed_since(tx, from)?
                .into_iter()
                .map(Row::Single)
                .chain(
                    batches::confirmed_since(tx, from)?
                        .into_iter()
                        .map(Row::Batch),
                )
                .collect::<Vec<_>>())
        })?;
        for row in confirmed {
            let Some(hash) = row.tx().tx_hash.as_deref().and_then(parse_hash) else {
                continue;
            };
            let receipt = self
                .provider
                .get_transaction_receipt(hash)
                .await
                .map_err(|e| self.rpc_error("eth_getTransactionReceipt", e))?;
            let still_there = receipt.as_ref().is_some_and(|r| {
                r.block_hash.map(|h| format!("{h:#x}")).as_deref() == row.tx().block_hash.as_deref()
            });
            if !still_there {
                tracing::warn!(submission = %row, tx = ?row.tx().tx_hash, "a reorg dropped a confirmed submission; sending it again");
                self.metrics.chain_reorgs.inc();
                self.store.durable(|tx| match &row {
                    Row::Single(entry) => {
                        outbox::mark_reorged(tx, outbox::TxTable::Outbox, entry.id)
                    }
                    Row::Batch(batch) => batches::reorged(tx, batch.id),
                })?;
            }
        }
        Ok(())
    }
}
