//! The embedded chain client: a ledger table in the node's database (the
//! `store::ledger` table) that takes each checkpoint's signed
//! `submitProofOfWork` payload once and each `proofHash` once.

use std::sync::Arc;

use fabstir_zk::Digest32;

use super::abi::u64_from_u256;
use super::client::{ChainClient, ChainError, Receipt, Refusal, Submission, SubmissionKind};
use crate::store::ledger::{self, LedgerEntry};
use crate::store::{Checkpoint, Store, StoreError};

/// The local ledger: what a node without `--rpc-url` submits to.
pub struct LocalLedger {
    store: Arc<Store>,
}

impl LocalLedger {
    /// The ledger in `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }
}

fn read_receipt(
    tx: &rusqlite::Connection,
    checkpoint_id: i64,
) -> Result<Option<Receipt>, StoreError> {
    Ok(
        ledger::entry_of(tx, checkpoint_id)?.map(|(id, recorded_at_ms)| Receipt {
            id: format!("ledger-{id}"),
            recorded_at_ms,
        }),
    )
}

impl ChainClient for LocalLedger {
    fn kind(&self) -> &'static str {
        "local_ledger"
    }

    fn takes(&self) -> SubmissionKind {
        SubmissionKind::SignedPayload
    }

    fn submit(
        &self,
        checkpoint: &Checkpoint,
        submission: Submission<'_>,
    ) -> Result<Receipt, ChainError> {
        let Submission::SignedPayload(submission) = submission else {
            return Err(Refusal::WrongKind {
                expected: SubmissionKind::SignedPayload,
                given: submission.kind(),
            }
            .into());
        };
        let checkpoint_id = checkpoint.id;
        let proof_hash = Digest32(submission.proof_hash);
        let outcome = self.store.durable(|tx| {
            if let Some(receipt) = read_receipt(tx, checkpoint_id)? {
                return Ok(Ok(receipt));
            }
            if ledger::checkpoint_with_proof_hash(tx, &proof_hash.to_string())?.is_some() {
                return Ok(Err(ChainError::ProofHashReused(proof_hash)));
            }
            let Some(tokens) = u64_from_u256(&submission.tokens_claimed) else {
                return Ok(Err(Refusal::ClaimTooLarge.into()));
            };
            let job_id = format!("0x{}", hex::encode(submission.job_id));
            ledger::insert(
                tx,
                &LedgerEntry {
                    checkpoint_id,
                    job_id: &job_id,
                    proof_hash: &proof_hash.to_string(),
                    tokens_claimed: tokens,
                    calldata: &format!("0x{}", hex::encode(&submission.calldata)),
                },
            )?;
            let receipt = read_receipt(tx, checkpoint_id)?.ok_or_else(|| StoreError::Corrupt {
                job_id,
                reason: "ledger entry vanished after insert".into(),
            })?;
            Ok(Ok(receipt))
        })?;
        outcome
    }

    fn receipt(&self, checkpoint_id: i64) -> Result<Option<Receipt>, ChainError> {
        Ok(self.store.durable(|tx| read_receipt(tx, checkpoint_id))?)
    }
}
