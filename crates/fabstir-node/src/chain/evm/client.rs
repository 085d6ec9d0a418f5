//! [`EvmClient`]: the EVM chain behind the [`ChainClient`] interface. A
//! checkpoint is checked against the contract before anything is proved,
//! then its verified submission is recorded in the outbox table (once per
//! checkpoint) and the submission worker is woken; the receipt the
//! checkpoint flow gets is the outbox row (`outbox-N`), not a transaction.

use std::sync::Arc;

use alloy::primitives::{Address, U256};
use fabstir_zk::{InferenceResult, ProofEnvelope};
use serde_json::json;

use super::{hex32, rpc, EvmChain};
use crate::chain::client::{
    ChainClient, ChainError, Receipt, Refusal, Shortfall, Submission, SubmissionKind,
};
use crate::chain::contract::IFabstirMarketplace;
use crate::store::outbox::{self, NewEntry, OutboxEntry};
use crate::store::{Checkpoint, StoreError};

impl EvmChain {
    /// Checks a checkpoint against the contract before anything is proved or
    /// signed: the result names this chain and marketplace, and the job
    /// exists, is this host's, is open, and can pay for `tokens` cumulative
    /// tokens above the count the contract recorded.
    pub async fn precheck(&self, result: &InferenceResult, tokens: u64) -> Result<(), ChainError> {
        if result.chain_id != self.chain_id {
            return Err(Refusal::WrongChain {
                result: result.chain_id,
                chain: self.chain_id,
            }
            .into());
        }
        if result.marketplace != self.settings.marketplace {
            return Err(Refusal::WrongMarketplace {
                result: result.marketplace,
                configured: self.settings.marketplace,
            }
            .into());
        }
        let job_id = U256::from_be_bytes(result.job_id.0);
        let job = IFabstirMarketplace::new(self.settings.marketplace, &self.provider)
            .getJob(job_id)
            .call()
            .await
            .map_err(|e| match rpc::classify("getJob", rpc::transport(e)) {
                rpc::Failure::Revert(revert) => ChainError::from(Refusal::JobReverted {
                    job: job_id,
                    revert,
                }),
                rpc::Failure::Transient(e) => {
                    self.metrics
                        .chain_rpc_errors
                        .with_label_values(&["getJob"])
                        .inc();
                    ChainError::from(e)
                }
            })?;
        if job.client == Address::ZERO {
            return Err(Refusal::NoSuchJob { job: job_id }.into());
        }
        if job.host != self.wallet {
            return Err(Refusal::NotJobHost {
                job: job_id,
                host: job.host,
                wallet: self.wallet,
            }
            .into());
        }
        if job.completed {
            return Err(Refusal::JobCompleted { job: job_id }.into());
        }
        let claimed = U256::from(tokens);
        if claimed <= job.tokensUsed {
            return Err(Refusal::NotAboveRecorded {
                job: job_id,
                tokens,
                recorded: job.tokensUsed,
            }
            .into());
        }
        let cost = claimed.saturating_mul(job.pricePerToken);
        if cost > job.deposit {
            return Err(Refusal::ExceedsDeposit(Box::new(Shortfall {
                job: job_id,
                tokens,
                price: job.pricePerToken,
                cost,
                deposit: job.deposit,
            }))
            .into());
        }
        Ok(())
    }

    /// Records a checkpoint's verified submission in the outbox table (once
    /// per checkpoint) and wakes the submission worker. `envelope` is the
    /// proof envelope whose public inputs say what is claimed.
    pub fn enqueue(
        &self,
        checkpoint_id: i64,
        envelope: &[u8],
    ) -> Result<Result<OutboxEntry, Refusal>, StoreError> {
        let envelope = match ProofEnvelope::from_bytes(envelope) {
            Ok(envelope) => envelope,
            Err(e) => return Ok(Err(Refusal::NotAnEnvelope(e))),
        };
        let Some(tokens) = envelope.instance.tokens else {
            return Ok(Err(Refusal::TokensNotBound));
        };
        let entry = self.store.durable(|tx| {
            outbox::insert(
                tx,
                &NewEntry {
                    checkpoint_id,
                    job_id: &envelope.instance.job_id.to_string(),
                    cumulative_tokens: tokens,
                    commitment: &hex32(&fabstir_zk::statement::field_to_be(
                        &envelope.instance.commitment.0,
                    )),
                    proof: &envelope.proof,
                },
            )
        })?;
        self.wake.notify_one();
        Ok(Ok(entry))
    }

    /// The outbox row of a checkpoint, if any.
    pub fn entry(&self, checkpoint_id: i64) -> Result<Option<OutboxEntry>, StoreError> {
        self.store
            .durable(|tx| outbox::by_checkpoint(tx, checkpoint_id))
    }
}

/// The EVM chain as a [`ChainClient`]: checkpoints go to its outbox table;
/// its submission worker ([`EvmChain::run`]) sends them.
pub struct EvmClient {
    chain: Arc<EvmChain>,
    runtime: tokio::runtime::Handle,
}

impl EvmClient {
    /// `chain`, whose RPC calls run on `runtime` (blocking callers only).
    pub fn new(chain: Arc<EvmChain>, runtime: tokio::runtime::Handle) -> Self {
        Self { chain, runtime }
    }
}

/// The receipt the checkpoint flow records for an outbox row.
fn receipt(entry: &OutboxEntry) -> Receipt {
    Receipt {
        id: format!("outbox-{}", entry.id),
        recorded_at_ms: entry.tx.created_at_ms,
    }
}

impl ChainClient for EvmClient {
    fn kind(&self) -> &'static str {
        "evm"
    }

    fn takes(&self) -> SubmissionKind {
        SubmissionKind::VerifiedProof
    }

    fn describe(&self) -> serde_json::Value {
        json!({
            "kind": self.kind(),
            "rpc_url": self.chain.rpc_url(),
            "chain_id": self.chain.chain_id(),
            "marketplace": self.chain.marketplace().to_checksum(None),
            "confirmations": self.chain.confirmations(),
            "batches": self.chain.batch_description(),
        })
    }

    fn target(&self) -> Option<(u64, [u8; 20])> {
        Some((self.chain.chain_id(), self.chain.marketplace().0 .0))
    }

    fn precheck(&self, result: &InferenceResult, tokens: u64) -> Result<(), ChainError> {
        let chain = self.chain.clone();
        let result = result.clone();
        // Called from blocking threads (the API's, start-up): block on the
        // runtime that owns the RPC client.
        self.runtime
            .block_on(async move { chain.precheck(&result, tokens).await })
    }

    fn submit(
        &self,
        checkpoint: &Checkpoint,
        submission: Submission<'_>,
    ) -> Result<Receipt, ChainError> {
        let Submission::VerifiedProof { envelope } = submission else {
            return Err(Refusal::WrongKind {
                expected: SubmissionKind::VerifiedProof,
                given: submission.kind(),
            }
            .into());
        };
        match self.chain.enqueue(checkpoint.id, envelope)? {
            Ok(entry) => Ok(receipt(&entry)),
            Err(refusal) => Err(refusal.into()),
        }
    }

    fn receipt(&self, checkpoint_id: i64) -> Result<Option<Receipt>, ChainError> {
        Ok(self.chain.entry(checkpoint_id)?.as_ref().map(receipt))
    }
}
