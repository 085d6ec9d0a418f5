//! Checkpoints: proof-of-work claims recorded in the checkpoints table and
//! handed to a [`ChainClient`].
//!
//! Token semantics, defined once here: a checkpoint's `tokens_processed` is
//! the job's **cumulative** token count at that point. The node claims and
//! signs the **delta** over the job's last checkpoint that was not rejected
//! (the marketplace adds every `tokensClaimed` it receives). A count that
//! does not increase, that exceeds the result's `tokens_used`, or that comes
//! after the job's settlement is refused and nothing is signed. Settlement
//! pays only what checkpoints have not claimed (see `settlement`), so for
//! every job: tokens claimed by checkpoints + tokens paid by settlement <=
//! `tokens_used`, and no token is claimed twice. The rules are checked again
//! inside the transaction that records the checkpoint.
//!
//! What a checkpoint records depends on what its chain client takes (see
//! [`crate::chain`], which shows every way a checkpoint reaches money): the
//! local ledger takes the host wallet's signed `submitProofOfWork` payload
//! (its proof proves the result); the EVM chain takes a proof of the
//! checkpoint's own cumulative count, which the contract verifies (nothing
//! is signed for it but the transaction). Either way the checkpoint is
//! recorded in the checkpoints table, with its proof, before it is handed to
//! the client. At start-up, pending checkpoints are reconciled with the
//! client: a crash between submitting and recording neither loses nor
//! duplicates a submission.

use std::sync::Arc;

use fabstir_zk::{Digest32, JobId, ModelRef};
use serde_json::json;

use crate::chain::abi::{keccak256, proof_cid_from_sha256, u256_from_u64, u64_from_u256};
use crate::chain::{
    ChainClient, ChainError, HostWallet, ProofOfWorkSubmission, Refusal, Submission, SubmissionKind,
};
use crate::gate::{Gate, Rejection};
use crate::metrics::Metrics;
use crate::mock::MOCK_MAGIC;
use crate::prover::ProofGenerator;
use crate::reasons::Reason;
use crate::store::checkpoints::{self, CheckpointStatus, NewCheckpoint};
use crate::store::{Checkpoint, Claims, JobLocks, JobSnapshot, JobState, Store, StoreError};

/// Why a checkpoint cannot be recorded.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("no result is stored for job {0}")]
    UnknownJob(String),
    #[error("job {0} has no proof yet; submit the checkpoint once it is proved")]
    NotProved(String),
    #[error("tokens_processed {tokens} does not increase the job's count: its last checkpoint is at {last} (tokens_processed is the job's cumulative count); nothing was signed")]
    NotIncreasing { tokens: u64, last: u64 },
    #[error(
        "tokens_processed {tokens} exceeds the result's tokens_used ({used}); nothing was signed"
    )]
    ExceedsUsed { tokens: u64, used: u64 },
    #[error("job {0} is settled; no further checkpoint can claim tokens for it")]
    Settled(String),
    #[error(
        "the result names its model by hash; give \"model_id\" (the registry's bytes32 modelId)"
    )]
    ModelIdRequired,
    #[error("the chain refuses the checkpoint: {0}; nothing was signed")]
    ChainRefused(Refusal),
    #[error("proof generation for the checkpoint failed: {0}")]
    Prove(String),
    /// The payment gate refuses the job: settlement would not pay it.
    #[error(
        "the checkpoint is refused ({0}); settlement would not pay it either; nothing was signed"
    )]
    Refused(Rejection),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The checkpoints table and its chain client.
pub struct Checkpoints {
    /// One checkpoint submission at a time per job, so that concurrent
    /// checkpoints of a job see each other's claims and choose distinct proofs.
    locks: JobLocks,
    store: Arc<Store>,
    generator: Arc<ProofGenerator>,
    /// Where the fresh proofs of later checkpoints are made.
    pool: Arc<rayon::ThreadPool>,
    wallet: HostWallet,
    chain: Arc<dyn ChainClient>,
    /// What every checkpoint passes before anything is signed.
    gate: Arc<Gate>,
    metrics: Arc<Metrics>,
}

/// The delta a checkpoint at cumulative count `tokens` may claim, given the
/// job's `tokens_used` and its [`Claims`] so far; see the module documentation.
pub fn claimable(
    job: &JobId,
    tokens: u64,
    tokens_used: u64,
    claims: &Claims,
) -> Result<u64, CheckpointError> {
    if claims.settled {
        return Err(CheckpointError::Settled(job.short().to_string()));
    }
    if tokens > tokens_used {
        return Err(CheckpointError::ExceedsUsed {
            tokens,
            used: tokens_used,
        });
    }
    if tokens <= claims.last_cumulative {
        return Err(CheckpointError::NotIncreasing {
            tokens,
            last: claims.last_cumulative,
        });
    }
    Ok(tokens - claims.last_cumulative)
}

impl Checkpoints {
    /// The checkpoints on `store`, handed to `chain`; later checkpoints'
    /// proofs are made on `pool`.
    pub fn new(
        store: Arc<Store>,
        generator: Arc<ProofGenerator>,
        pool: Arc<rayon::ThreadPool>,
        wallet: HostWallet,
        chain: Arc<dyn ChainClient>,
        gate: Arc<Gate>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            locks: JobLocks::default(),
            store,
            generator,
            pool,
            wallet,
            chain,
            gate,
            metrics,
        }
    }

    /// The chain client, for `/health`: its kind (`local_ledger` or `evm`)
    /// and, for an EVM chain, where it submits.
    pub fn chain_description(&self) -> serde_json::Value {
        self.chain.describe()
    }

    /// The chain id and marketplace results must name (see
    /// [`ChainClient::target`]).
    pub fn chain_target(&self) -> Option<(u64, [u8; 20])> {
        self.chain.target()
    }

    /// The host wallet's address.
    pub fn wallet_address(&self) -> String {
        self.wallet.address_checksummed()
    }

    /// Checkpoints of a job, oldest first.
    pub fn list(&self, job: &JobId) -> Result<Vec<Checkpoint>, StoreError> {
        self.store.durable(|tx| checkpoints::list(tx, job))
    }

    /// Records (once) and submits the checkpoint at cumulative count
    /// `tokens`, claiming the delta over the job's last checkpoint. Returns
    /// the checkpoint and whether it is new (a repeat of an existing count
    /// returns the stored one).
    ///
    /// Nothing is signed or sent for a job the payment [`Gate`] refuses. The
    /// checkpoint's proof (the stored one, or a fresh one: proving takes tens
    /// of milliseconds, so it is made before the recording transaction, from
    /// a snapshot) is checked in the transaction that records the
    /// checkpoint: there the job's state is read once, passed through the
    /// gate (statement re-derived, stored proof verified), the token rules
    /// applied, and the checkpoint's own proof verified against that state.
    pub fn submit(
        &self,
        job: &JobId,
        tokens: u64,
        model_id: Option<[u8; 32]>,
        delta_cid: &str,
    ) -> Result<(Checkpoint, bool), CheckpointError> {
        let _guard = self.locks.lock(job);
        self.submit_locked(job, tokens, model_id, delta_cid)
            .inspect_err(|e| {
                if let CheckpointError::Refused(rejection) = e {
                    self.refused(job, rejection);
                }
            })
    }

    /// [`Checkpoints::submit`] with the job's lock held.
    fn submit_locked(
        &self,
        job: &JobId,
        tokens: u64,
        model_id: Option<[u8; 32]>,
        delta_cid: &str,
    ) -> Result<(Checkpoint, bool), CheckpointError> {
        let (plan, existing) = self.store.read(|tx| {
            let snapshot = JobSnapshot::read(tx, job)?;
            let existing = snapshot.checkpoint_at(tx, tokens)?;
            Ok((snapshot, existing))
        })?;
        if let Some(checkpoint) = existing {
            return Ok((self.send(checkpoint)?, false));
        }
        // Refuse early what the recording transaction would refuse, before
        // anything is proved.
        let stored = plan
            .result
            .as_ref()
            .ok_or_else(|| CheckpointError::UnknownJob(job.short().to_string()))?;
        if !matches!(plan.proof, Ok(Some(_))) && stored.state != JobState::Proved {
            return Err(CheckpointError::NotProved(job.short().to_string()));
        }
        claimable(job, tokens, stored.tokens_used, &plan.claims)?;
        let prechecked = self
            .gate
            .precheck(&plan)
            .map_err(CheckpointError::Refused)?;
        let kind = self.chain.takes();
        kind.admits(prechecked.proof.mock)
            .map_err(CheckpointError::ChainRefused)?;
        match self.chain.precheck(&stored.result, tokens) {
            Ok(()) => {}
            Err(ChainError::Refused(refusal)) => {
                return Err(CheckpointError::ChainRefused(refusal))
            }
            Err(ChainError::Store(e)) => return Err(e.into()),
            // The submission worker simulates every submission before sending it.
            Err(e) => {
                tracing::warn!(job_id = %job.short(), error = %e, "cannot check the checkpoint against the chain now; the submission worker checks it before sending")
            }
        }
        let model_id = match (model_id, &stored.result.model) {
            (Some(id), _) => id,
            (None, ModelRef::Name(name)) => keccak256(name.as_bytes()),
            (None, ModelRef::Hash(_)) => return Err(CheckpointError::ModelIdRequired),
        };
        // The statement the checkpoint's proof binds: a verified submission
        // proves the checkpoint's own count (the contract credits the
        // statement's `tokens`); a signed payload carries a proof of the
        // result (its tokens_used).
        let mut statement = prechecked.statement;
        statement.tokens = kind.proved_tokens(statement.tokens, tokens);
        // Made under the key in use: after a host key rotation the
        // marketplace pays proofs of the wallet's new host id only, so a job
        // proved under the old key is checkpointed with a fresh proof.
        let host_id = self.generator.host_id();
        statement.host_id = host_id;
        // Each submission needs its own proofHash: the job's first checkpoint
        // uses the stored proof when it binds this statement, later ones a
        // fresh proof (proofs are randomised, so the bytes differ).
        let first = plan.claims.checkpoints == 0;
        let proof_bytes = if first && statement == prechecked.statement {
            prechecked.proof.envelope.clone()
        } else {
            self.generator
                .prove_another(&statement, &self.pool)
                .map_err(|e| CheckpointError::Prove(e.to_string()))?
                .bytes
        };
        let recorded = self.store.durable(|tx| {
            let now = JobSnapshot::read(tx, job)?;
            if let Some(checkpoint) = now.checkpoint_at(tx, tokens)? {
                return Ok(Ok((checkpoint, false)));
            }
            match self.record(
                tx,
                &now,
                tokens,
                host_id,
                kind,
                &proof_bytes,
                &model_id,
                delta_cid,
            ) {
                Ok(checkpoint) => Ok(Ok((checkpoint, true))),
                Err(CheckpointError::Store(e)) => Err(e),
                Err(e) => Ok(Err(e)),
            }
        })?;
        let (checkpoint, created) = recorded?;
        if created {
            tracing::info!(job_id = %job.short(), tokens_processed = tokens, tokens_claimed = checkpoint.tokens_claimed, "checkpoint recorded");
        }
        Ok((self.send(checkpoint)?, created))
    }

    /// Inside the recording transaction, on the job's state `now` as it
    /// read it: the gate, the token rules, the checkpoint's own proof
    /// against the re-derived statement, then the checkpoint recorded
    /// (`pending`) with what its chain client takes: the proof, and for a
    /// signed payload the payload. `host_id` is the key in use's, which the
    /// proof was made for (after a host key rotation, not the result's).
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        tx: &rusqlite::Connection,
        now: &JobSnapshot,
        tokens: u64,
        host_id: fabstir_zk::HostId,
        kind: SubmissionKind,
        proof_bytes: &[u8],
        model_id: &[u8; 32],
        delta_cid: &str,
    ) -> Result<Checkpoint, CheckpointError> {
        let job = &now.job;
        let cleared = self.gate.check(now).map_err(CheckpointError::Refused)?;
        let delta = claimable(job, tokens, cleared.tokens_used, &now.claims)?;
        let mut statement = cleared.statement;
        statement.tokens = kind.proved_tokens(statement.tokens, tokens);
        statement.host_id = host_id;
        if proof_bytes != cleared.proof.envelope.as_slice() || statement != cleared.statement {
            self.gate
                .check_payment_proof(proof_bytes, &statement)
                .map_err(CheckpointError::Refused)?;
        }
        let mock = proof_bytes.starts_with(MOCK_MAGIC);
        let proof_hash = Digest32::sha256(proof_bytes);
        let mut payload = json!({
            "proof": format!("0x{}", hex::encode(proof_bytes)),
            "mock": mock,
        });
        if kind == SubmissionKind::SignedPayload {
            payload["submission"] = json!(ProofOfWorkSubmission::build(
                &self.wallet,
                &job.0,
                &u256_from_u64(delta),
                proof_bytes,
                model_id,
                delta_cid,
            ));
        }
        let commitment = if mock {
            cleared.proof.commitment.clone()
        } else {
            statement.instance().commitment.to_string()
        };
        Ok(checkpoints::insert(
            tx,
            &NewCheckpoint {
                job_id: job,
                tokens_processed: tokens,
                tokens_claimed: delta,
                commitment: &commitment,
                proof_hash: &proof_hash.to_string(),
                proof_cid: &proof_cid_from_sha256(&proof_hash.0),
                payload: &payload,
            },
        )?)
    }

    /// Logs and counts a checkpoint the gate refused.
    fn refused(&self, job: &JobId, rejection: &Rejection) {
        tracing::warn!(job_id = %job.short(), reason = rejection.reason.code(), detail = %rejection.detail, "checkpoint refused by the payment gate; nothing was signed");
        self.metrics
            .checkpoints_refused
            .with_label_values(&[rejection.reason.code()])
            .inc();
    }

    /// A recorded checkpoint that is still `pending` (recorded before a
    /// crash, sent now), checked as it would be recorded: the job through the
    /// gate, and the payload's proof and signature against the row.
    fn recheck(&self, checkpoint: &Checkpoint) -> Result<Result<(), Rejection>, StoreError> {
        let reject = |detail: String| {
            Ok(Err(Rejection {
                reason: Reason::CorruptProof,
                detail,
            }))
        };
        let Ok(job) = JobId::parse(&checkpoint.job_id) else {
            return reject(format!("unreadable job id {:?}", checkpoint.job_id));
        };
        let snapshot = self.store.read(|tx| JobSnapshot::read(tx, &job))?;
        let cleared = match self.gate.check(&snapshot) {
            Ok(cleared) => cleared,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let Some(proof) = stored_proof(checkpoint) else {
            return reject("the checkpoint's payload has no readable proof".into());
        };
        let kind = self.chain.takes();
        if Digest32::sha256(&proof).to_string() != checkpoint.proof_hash {
            return reject("the checkpoint's proof does not match its recorded proofHash".into());
        }
        if kind == SubmissionKind::SignedPayload {
            let submission: Option<ProofOfWorkSubmission> =
                serde_json::from_value(checkpoint.payload["submission"].clone()).ok();
            let Some(submission) = submission else {
                return reject("the checkpoint's payload has no readable submission".into());
            };
            if submission.proof_hash != Digest32::sha256(&proof).0
                || u64_from_u256(&submission.tokens_claimed) != Some(checkpoint.tokens_claimed)
                || submission.verify().is_err()
            {
                return reject("the checkpoint's payload does not match its recorded proofHash, claim or signature".into());
            }
        }
        let mut statement = cleared.statement;
        statement.tokens = kind.proved_tokens(statement.tokens, checkpoint.tokens_processed);
        Ok(self.gate.check_payment_proof(&proof, &statement))
    }

    /// Hands a pending checkpoint to the chain client and records the outcome.
    fn send(&self, checkpoint: Checkpoint) -> Result<Checkpoint, StoreError> {
        if checkpoint.status != CheckpointStatus::Pending {
            return Ok(checkpoint);
        }
        let proof = stored_proof(&checkpoint);
        let signed: ProofOfWorkSubmission;
        let submission = match self.chain.takes() {
            SubmissionKind::SignedPayload => {
                signed = serde_json::from_value(checkpoint.payload["submission"].clone()).map_err(
                    |e| StoreError::Corrupt {
                        job_id: checkpoint.job_id.clone(),
                        reason: format!("checkpoint payload: {e}"),
                    },
                )?;
                Ok(Submission::SignedPayload(&signed))
            }
            SubmissionKind::VerifiedProof => proof
                .as_deref()
                .map(|envelope| Submission::VerifiedProof { envelope })
                .ok_or(ChainError::Refused(Refusal::NoProof)),
        };
        let answer = submission.and_then(|submission| self.chain.submit(&checkpoint, submission));
        let (status, note) = match answer {
            Ok(receipt) => {
                self.metrics.checkpoints_submitted.inc();
                tracing::info!(job_id = %checkpoint.job_id, checkpoint = checkpoint.id, receipt = %receipt.id, "checkpoint submitted");
                (CheckpointStatus::Submitted, receipt.id)
            }
            Err(ChainError::ProofHashReused(hash)) => {
                tracing::warn!(job_id = %checkpoint.job_id, checkpoint = checkpoint.id, "checkpoint refused: proofHash reused");
                (
                    CheckpointStatus::Rejected,
                    format!("proofHash {hash} already submitted"),
                )
            }
            Err(ChainError::Refused(refusal)) => {
                tracing::warn!(job_id = %checkpoint.job_id, checkpoint = checkpoint.id, reason = %refusal, "checkpoint refused by the chain");
                (CheckpointStatus::Rejected, refusal.to_string())
            }
            Err(ChainError::Unavailable(reason)) => {
                tracing::warn!(job_id = %checkpoint.job_id, checkpoint = checkpoint.id, reason = %reason, "chain unavailable; the checkpoint stays pending");
                return Ok(checkpoint);
            }
            Err(ChainError::Store(e)) => return Err(e),
        };
        self.mark(checkpoint.id, status, &note)
    }

    /// Records the chain's answer for a checkpoint.
    fn mark(
        &self,
        id: i64,
        status: CheckpointStatus,
        note: &str,
    ) -> Result<Checkpoint, StoreError> {
        self.store
            .durable(|tx| checkpoints::mark(tx, id, status, note))
    }

    /// At start-up: every pending checkpoint is checked against the chain
    /// and submitted if it is not there yet. Returns how many were pending.
    pub fn reconcile(&self) -> Result<usize, StoreError> {
        let pending = self.store.durable(|tx| checkpoints::pending(tx))?;
        for checkpoint in &pending {
            match self.chain.receipt(checkpoint.id) {
                // Submitted before a crash, not yet recorded here.
                Ok(Some(receipt)) => {
                    self.mark(checkpoint.id, CheckpointStatus::Submitted, &receipt.id)?
                }
                Ok(None) => match self.recheck(checkpoint)? {
                    Ok(()) => self.send(checkpoint.clone())?,
                    Err(rejection) => {
                        let job = JobId::parse(&checkpoint.job_id).unwrap_or(JobId([0; 32]));
                        self.refused(&job, &rejection);
                        self.mark(
                            checkpoint.id,
                            CheckpointStatus::Rejected,
                            &format!("refused by the payment gate: {rejection}"),
                        )?
                    }
                },
                Err(ChainError::Store(e)) => return Err(e),
                Err(e) => {
                    tracing::warn!(checkpoint = checkpoint.id, error = %e, "cannot reconcile checkpoint");
                    continue;
                }
            };
        }
        Ok(pending.len())
    }
}

/// The proof bytes recorded in a checkpoint's payload (`0x` hex), if readable.
fn stored_proof(checkpoint: &Checkpoint) -> Option<Vec<u8>> {
    checkpoint.payload["proof"]
        .as_str()
        .and_then(|h| hex::decode(h.trim_start_matches("0x")).ok())
}
