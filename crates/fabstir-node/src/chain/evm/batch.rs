//! Batches: many checkpoints paid by one `submitVerifiedBatch` transaction
//! with one proof (`fabstir_zk::batch`), which is what makes a verified
//! checkpoint cost about as much gas as an unverified one.
//!
//! With batches on (`max_batch` > 0 and the marketplace has batch verifiers),
//! a checkpoint's outbox entry waits `pending` until `max_batch` entries
//! wait or the oldest has waited `batch_wait`. Then the submission worker
//! takes the oldest entries (at most the largest batch size the marketplace
//! verifies), proves them in one batch proof on the prover pool (padded up
//! to the smallest size that holds them), and records the batch
//! (`store::batches`) and its entries' place in it in one database
//! transaction. From there the batch is one transaction row driven by the
//! same steps as a single submission (simulate, sign, record, broadcast,
//! receipt at depth, fee bumps, reorgs). Its receipt's logs say what
//! happened to each entry: credited (`VerifiedProofSubmitted`), or skipped
//! with the contract's reason (`VerifiedCheckpointSkipped`): a skipped entry
//! whose count the job already had is covered (an earlier transaction paid
//! it); any other skip rejects the checkpoint, which then claims nothing.
//!
//! A crash before the batch is recorded leaves its entries `pending` (proved
//! again); after, the batch row carries them. A batch whose nonce another
//! transaction took, or that was proved under a host key the marketplace no
//! longer has, is dissolved: entries the contract shows paid (the job's
//! recorded count is at or above theirs) are confirmed, the others go into
//! a new batch. The contract pays each job's count only upwards, so nothing
//! is paid twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::rpc::types::TransactionReceipt;
use alloy::sol_types::{SolCall as _, SolEvent as _};
use fabstir_zk::batch::{BatchProof, BatchProvingKey, BatchSize, BatchStatement};
use fabstir_zk::{JobId, Srs, SrsTrust, Statement};

use super::connection::EvmError;
use super::rpc::{self, PassError};
use super::tx::parse_u256;
use super::EvmChain;
use crate::chain::contract::{batch_entries, IFabstirBatchVerifier, IFabstirMarketplace};
use crate::prover::ProofGenerator;
use crate::store::batches::{self, BatchRow, EntryOutcome, NewBatch};
use crate::store::outbox::{self, OutboxEntry, OutboxState};
use crate::store::{results, StoreError};

/// How the node batches (`max_batch`, `batch_wait`).
#[derive(Debug, Clone, Copy)]
pub struct BatchSettings {
    /// At most this many checkpoints per batch; 0 turns batches off (one
    /// `submitVerifiedProof` per checkpoint).
    pub max_batch: usize,
    /// A batch goes out once its oldest checkpoint has waited this long,
    /// full or not.
    pub wait: Duration,
}

/// What batches are proved with: the node's proof generator (its current
/// host key), the prover pool, and the parameters at the largest batch's
/// size.
pub struct BatchProver {
    pub generator: Arc<ProofGenerator>,
    pub pool: Arc<rayon::ThreadPool>,
    /// The parameters (at least `2^k` rows for the largest batch size), by
    /// `k`: the development SRS, or a ceremony file (see
    /// [`BatchProver::parameters`]).
    pub parameters: Box<dyn Fn(u32) -> Result<Arc<Srs>, fabstir_zk::KeyError> + Send + Sync>,
}

impl BatchProver {
    /// How a key set's parameters grow to a batch's size: the development
    /// SRS is generated at any size; a ceremony SRS is read again from
    /// `ceremony_file` (the file the keys were made from, checked against
    /// the manifest's pin), which must have at least `2^k` rows.
    pub fn parameters(
        trust: SrsTrust,
        source_sha256: fabstir_zk::Digest32,
        ceremony_file: Option<std::path::PathBuf>,
    ) -> Box<dyn Fn(u32) -> Result<Arc<Srs>, fabstir_zk::KeyError> + Send + Sync> {
        Box::new(move |k| match (trust, &ceremony_file) {
            (SrsTrust::InsecureDev, _) => Srs::insecure_dev_shared_at(k),
            (_, Some(path)) => Srs::load_ceremony_at(path, &source_sha256, k).map(Arc::new),
            (_, None) => Err(fabstir_zk::KeyError::SrsTooSmall {
                found: fabstir_zk::circuit::layout::K,
                needed: k,
            }),
        })
    }
}

/// The batch sizes the marketplace verifies and this node can prove.
pub(super) struct Batches {
    keys: BTreeMap<usize, Arc<BatchProvingKey>>,
    settings: BatchSettings,
    generator: Arc<ProofGenerator>,
    pool: Arc<rayon::ThreadPool>,
}

impl Batches {
    /// The batch size for `n` waiting entries: the smallest that holds them,
    /// else the largest.
    fn size_for(&self, n: usize) -> usize {
        self.keys
            .keys()
            .copied()
            .find(|size| *size >= n)
            .or_else(|| self.keys.keys().copied().last())
            .unwrap_or(1)
    }

    /// The largest batch the node sends.
    fn largest(&self) -> usize {
        self.keys
            .keys()
            .copied()
            .last()
            .unwrap_or(1)
            .min(self.settings.max_batch)
    }
}

/// The sizes the node asks the marketplace about: powers of two up to
/// `max_batch`, and `max_batch` itself.
fn candidate_sizes(max_batch: usize) -> Vec<usize> {
    let max_batch = max_batch.min(BatchSize::MAX);
    let mut sizes: Vec<usize> = (0..usize::BITS)
        .map(|i| 1usize << i)
        .take_while(|n| *n <= max_batch)
        .collect();
    if !sizes.contains(&max_batch) && max_batch > 0 {
        sizes.push(max_batch);
    }
    sizes
}

impl EvmChain {
    /// Turns batches on: asks the marketplace which batch sizes up to
    /// `settings.max_batch` it verifies (`batchVerifier(n)`), builds this
    /// node's batch key for each and checks that the verifier checks that
    /// key (`VK_ID`). Returns the sizes; none (the marketplace has no batch
    /// verifier, or `max_batch` is 0) leaves single submissions on.
    pub async fn enable_batches(
        &self,
        settings: BatchSettings,
        prover: BatchProver,
    ) -> Result<Vec<usize>, EvmError> {
        let rpc = |cause| EvmError::Rpc {
            url: self.settings.rpc_url.clone(),
            cause,
        };
        let market = IFabstirMarketplace::new(self.settings.marketplace, &self.provider);
        let mut deployed = Vec::new();
        for n in candidate_sizes(settings.max_batch) {
            let verifier = market
                .batchVerifier(U256::from(n))
                .call()
                .await
                .map_err(|e| rpc(rpc::transport(e)))?;
            if verifier == Address::ZERO {
                continue;
            }
            let vk_id = IFabstirBatchVerifier::new(verifier, &self.provider)
                .VK_ID()
                .call()
                .await
                .map_err(|e| rpc(rpc::transport(e)))?;
            deployed.push((n, vk_id));
        }
        if deployed.is_empty() {
            tracing::info!(
                max_batch = settings.max_batch,
                "no batches: the marketplace has no batch verifier for these sizes (or max_batch is 0); each checkpoint goes out in its own submitVerifiedProof"
            );
            return Ok(Vec::new());
        }
        let sizes: Vec<usize> = deployed.iter().map(|(n, _)| *n).collect();
        let largest_k = sizes
            .iter()
            .filter_map(|n| BatchSize::new(*n).ok())
            .map(|s| s.k())
            .max()
            .unwrap_or(fabstir_zk::circuit::layout::K);
        let parameters = prover.parameters;
        let built = tokio::task::spawn_blocking(move || {
            let srs = parameters(largest_k)?;
            sizes
                .iter()
                .map(|n| {
                    let size = BatchSize::new(*n)
                        .map_err(|e| fabstir_zk::KeyError::Backend(e.to_string()))?;
                    let pk = BatchProvingKey::build(srs.clone(), size)?;
                    Ok((*n, Arc::new(pk)))
                })
                .collect::<Result<BTreeMap<_, _>, fabstir_zk::KeyError>>()
        })
        .await
        .map_err(|e| fabstir_zk::KeyError::Backend(e.to_string()))
        .and_then(|built| built)
        .map_err(EvmError::BatchKeys)?;
        for (n, contract) in &deployed {
            let node = built[n].vk_id();
            if contract.0 != node.0 {
                return Err(EvmError::BatchVkMismatch {
                    size: *n,
                    contract: *contract,
                    node: B256::from(node.0),
                });
            }
        }
        let sizes: Vec<usize> = built.keys().copied().collect();
        tracing::info!(sizes = ?sizes, max_batch = settings.max_batch, batch_wait_ms = settings.wait.as_millis() as u64, "checkpoints go out in batches (submitVerifiedBatch)");
        let batches = Batches {
            keys: built,
            settings,
            generator: prover.generator,
            pool: prover.pool,
        };
        // Set once, at start-up; a second call keeps the first.
        let _ = self.batches.set(batches);
        Ok(sizes)
    }

    /// The batch settings in use, for `/health` and the start-up line:
    /// `null` when each checkpoint goes out on its own.
    pub fn batch_description(&self) -> serde_json::Value {
        match self.batches.get() {
            None => serde_json::Value::Null,
            Some(b) => serde_json::json!({
                "sizes": b.keys.keys().collect::<Vec<_>>(),
                "max_batch": b.settings.max_batch,
                "batch_wait_ms": b.settings.wait.as_millis() as u64,
            }),
        }
    }

    /// Whether checkpoints go out in batches.
    pub fn batching(&self) -> bool {
        self.batches.get().is_some()
    }

    /// The batch sizes in use (empty: single submissions).
    pub fn batch_sizes(&self) -> Vec<usize> {
        self.batches
            .get()
            .map(|b| b.keys.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Forms batches from the waiting entries while there is a full one, or
    /// the oldest entry has waited `batch_wait`.
    pub(super) async fn form_batches(&self) -> Result<(), PassError> {
        let Some(batches) = self.batches.get() else {
            return Ok(());
        };
        loop {
            let waiting = self
                .store
                .durable(|tx| outbox::in_state(tx, OutboxState::Pending))?;
            let Some(oldest) = waiting.first() else {
                return Ok(());
            };
            let largest = batches.largest();
            let waited = (crate::store::now_ms() - oldest.tx.created_at_ms).max(0) as u64;
            if waiting.len() < largest && waited < batches.settings.wait.as_millis() as u64 {
                return Ok(());
            }
            let take = waiting.len().min(largest);
            let size = batches.size_for(take);
            let members: Vec<OutboxEntry> = waiting.into_iter().take(take.min(size)).collect();
            if !self.form_one(batches, size, &members, waited).await? {
                // Proving failed: the next pass tries again.
                return Ok(());
            }
        }
    }

    /// Proves `members` in a batch of `size` and records it; false when the
    /// proof could not be made (the members keep waiting).
    async fn form_one(
        &self,
        batches: &Batches,
        size: usize,
        members: &[OutboxEntry],
        waited_ms: u64,
    ) -> Result<bool, PassError> {
        let host_id = batches.generator.host_id();
        let mut statements = Vec::with_capacity(members.len());
        let mut unprovable = Vec::new();
        self.store.read(|tx| {
            for entry in members {
                let stored = match JobId::parse(&entry.job_id) {
                    Ok(job) => results::get(tx, &job)?,
                    Err(_) => None,
                };
                match stored {
                    Some(stored) => statements.push(Statement {
                        host_id,
                        tokens: entry.cumulative_tokens,
                        ..stored.statement()
                    }),
                    None => unprovable.push(entry.id),
                }
            }
            Ok(())
        })?;
        if !unprovable.is_empty() {
            // Its result is gone: nothing can prove it again.
            self.store.durable(|tx| {
                for id in &unprovable {
                    let entry = outbox::by_id(tx, *id)?;
                    outbox::mark_failed(
                        tx,
                        *id,
                        "its result is no longer stored; it cannot be proved in a batch",
                    )?;
                    crate::store::checkpoints::set_status(
                        tx,
                        entry.checkpoint_id,
                        crate::store::CheckpointStatus::Rejected,
                        "its result is no longer stored; it cannot be proved in a batch",
                    )?;
                }
                Ok(())
            })?;
            return Ok(true);
        }
        let Some(pk) = batches.keys.get(&size).cloned() else {
            return Ok(false);
        };
        let generator = batches.generator.clone();
        let pool = batches.pool.clone();
        let proved = tokio::task::spawn_blocking(move || {
            let batch = BatchStatement::from_statements(&statements)
                .and_then(|b| b.padded(pk.size()))
                .map_err(|e| e.to_string())?;
            generator
                .prove_batch(&pk, &batch, &pool)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        let proof = match proved {
            Ok(proof) => proof,
            Err(e) => {
                tracing::error!(error = %e, entries = members.len(), "a batch could not be proved; its checkpoints wait for the next pass");
                return Ok(false);
            }
        };
        let ids: Vec<i64> = members.iter().map(|m| m.id).collect();
        let bytes = proof.to_bytes();
        let formed = self.store.durable(|tx| {
            batches::form(
                tx,
                &NewBatch {
                    members: &ids,
                    size: size as u32,
                    host_id: &host_id.to_string(),
                    proof: &bytes,
                },
            )
        })?;
        if let Some(batch) = formed {
            self.metrics.chain_batches.inc();
            self.metrics
                .chain_batch_checkpoints
                .inc_by(ids.len() as u64);
            self.metrics.chain_batch_size.set(ids.len() as i64);
            self.metrics
                .chain_batch_wait_seconds
                .observe(waited_ms as f64 / 1000.0);
            tracing::info!(
                batch = batch.id,
                size,
                checkpoints = ids.len(),
                waited_ms,
                "batch proved and recorded"
            );
        }
        Ok(true)
    }

    /// `submitVerifiedBatch(entries, proof)` from a batch's recorded proof.
    pub(super) fn batch_calldata(&self, batch: &BatchRow) -> Result<Bytes, StoreError> {
        let proof = BatchProof::from_bytes(&batch.proof).map_err(|e| StoreError::Corrupt {
            job_id: format!("batch {}", batch.id),
            reason: format!("its proof does not decode: {e}"),
        })?;
        Ok(IFabstirMarketplace::submitVerifiedBatchCall {
            entries: batch_entries(&proof.public),
            proof: Bytes::from(proof.proof),
        }
        .abi_encode()
        .into())
    }

    /// What the contract did with each entry of a mined batch, from its
    /// receipt's logs (in the entries' order).
    pub(super) fn batch_outcomes(
        &self,
        batch: &BatchRow,
        receipt: &TransactionReceipt,
    ) -> Result<Vec<EntryOutcome>, StoreError> {
        let members = self.store.durable(|tx| batches::members(tx, batch.id))?;
        let mut credited = Vec::new();
        let mut skipped = Vec::new();
        for log in receipt.inner.logs() {
            if log.address() != self.settings.marketplace {
                continue;
            }
            if let Ok(event) =
                IFabstirMarketplace::VerifiedProofSubmitted::decode_log_data(log.data())
            {
                credited.push((event.jobId, event.cumulativeTokens));
            } else if let Ok(event) =
                IFabstirMarketplace::VerifiedCheckpointSkipped::decode_log_data(log.data())
            {
                skipped.push((event.jobId, event.cumulativeTokens, event.reason));
            }
        }
        Ok(members
            .iter()
            .map(|entry| {
                let key = (
                    parse_u256(&entry.job_id),
                    U256::from(entry.cumulative_tokens),
                );
                if credited.contains(&key) {
                    return EntryOutcome::Credited;
                }
                match skipped
                    .iter()
                    .find(|(job, tokens, _)| (*job, *tokens) == key)
                {
                    Some((_, _, reason)) => skip_outcome(*reason),
                    None => EntryOutcome::Skipped("no event for it in the batch's receipt".into()),
                }
            })
            .collect())
    }

    /// The entries of a batch whose transaction cannot be found that the
    /// contract shows paid: their job's recorded count is at or above theirs.
    pub(super) async fn batch_credited(&self, batch: &BatchRow) -> Result<Vec<i64>, PassError> {
        let members = self.store.durable(|tx| batches::members(tx, batch.id))?;
        let market = IFabstirMarketplace::new(self.settings.marketplace, &self.provider);
        let mut credited = Vec::new();
        for entry in members {
            let job = market
                .getJob(parse_u256(&entry.job_id))
                .call()
                .await
                .map_err(|e| self.rpc_error("getJob", rpc::transport(e)))?;
            if job.tokensUsed >= U256::from(entry.cumulative_tokens) {
                credited.push(entry.id);
            }
        }
        Ok(credited)
    }

    /// Whether a batch was proved under another host key than the node's
    /// current one (after `keys rotate`: the marketplace checks the new id).
    pub(super) fn batch_outdated(&self, batch: &BatchRow) -> bool {
        self.batches
            .get()
            .is_some_and(|b| b.generator.host_id().to_string() != batch.host_id)
    }
}

/// A skip's reason as an entry's outcome.
fn skip_outcome(reason: IFabstirMarketplace::SkipReason) -> EntryOutcome {
    match reason {
        IFabstirMarketplace::SkipReason::TokensNotIncreasing => EntryOutcome::Covered,
        other => EntryOutcome::Skipped(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_sizes_are_powers_of_two_and_the_maximum() {
        assert_eq!(candidate_sizes(0), Vec::<usize>::new());
        assert_eq!(candidate_sizes(1), [1]);
        assert_eq!(candidate_sizes(64), [1, 2, 4, 8, 16, 32, 64]);
        assert_eq!(candidate_sizes(20), [1, 2, 4, 8, 16, 20]);
        assert_eq!(*candidate_sizes(10_000).last().unwrap(), BatchSize::MAX);
    }

    #[test]
    fn only_a_count_already_paid_is_covered() {
        use IFabstirMarketplace::SkipReason;
        assert_eq!(
            skip_outcome(SkipReason::TokensNotIncreasing),
            EntryOutcome::Covered
        );
        assert_eq!(
            skip_outcome(SkipReason::JobCompleted),
            EntryOutcome::Skipped("JobCompleted".into())
        );
    }
}
