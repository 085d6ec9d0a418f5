//! The payment gate: the one check every payment passes, whichever way it is
//! paid (settlement, a checkpoint on the local ledger, a signed
//! `submitProofOfWork` payload, a verified on-chain submission).
//!
//! From a [`JobSnapshot`] read in the transaction that records the payment,
//! the gate re-derives the statement from the stored result and checks, in
//! this order: a result and a proof are stored and readable; the proof bytes
//! have their recorded SHA-256; the stored prompt, response and model are the
//! ones proved; no other job stores the same proof; a mock proof is refused
//! in production; the envelope's public inputs are the re-derived ones (job,
//! host, chain, marketplace, tokens, commitment); the row still has the
//! content digest recorded when it was accepted (which covers
//! `tokens_used`); the verifying key is held; and the proof verifies. The
//! first failure is a [`Rejection`] with a stable [`Reason`].

use std::sync::Arc;

use fabstir_zk::{Digest32, Instance, ProofEnvelope, Statement, VerifyError};

use crate::keys::KeyManager;
use crate::mock::{mock_proof, MOCK_MAGIC};
use crate::reasons::Reason;
use crate::store::{JobSnapshot, StoredProof};

/// Why the gate refuses to pay for a job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", .reason.code())]
pub struct Rejection {
    /// The stable reason code.
    pub reason: Reason,
    /// What exactly is wrong, for the operator.
    pub detail: String,
}

impl Rejection {
    fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// A job that passed every check but the cryptographic verification.
#[derive(Debug)]
pub struct Prechecked {
    /// The statement re-derived from the stored result.
    pub statement: Statement,
    /// The stored proof.
    pub proof: StoredProof,
    /// The result's `tokens_used`.
    pub tokens_used: u64,
    /// What remains to verify: nothing for a mock proof (outside
    /// production), else the envelope against the re-derived public inputs.
    pub pending: Option<(Box<ProofEnvelope>, Instance)>,
}

/// A job the gate clears for payment.
#[derive(Debug)]
pub struct Cleared {
    /// The statement re-derived from the stored result.
    pub statement: Statement,
    /// The stored proof, verified.
    pub proof: StoredProof,
    /// The result's `tokens_used`.
    pub tokens_used: u64,
}

/// The gate: the keys it verifies with, the pool it verifies on, and
/// whether mock proofs are refused (production).
pub struct Gate {
    keys: Arc<KeyManager>,
    pool: Arc<rayon::ThreadPool>,
    production: bool,
}

impl Gate {
    /// A gate verifying with `keys` on `pool`; `production` refuses mock proofs.
    pub fn new(keys: Arc<KeyManager>, pool: Arc<rayon::ThreadPool>, production: bool) -> Self {
        Self {
            keys,
            pool,
            production,
        }
    }

    /// Every check but the cryptographic verification (see the module
    /// documentation for the order).
    pub fn precheck(&self, snapshot: &JobSnapshot) -> Result<Prechecked, Rejection> {
        let Some(stored) = &snapshot.result else {
            return Err(Rejection::new(Reason::MissingResult, "no result stored"));
        };
        let proof = match &snapshot.proof {
            Ok(Some(proof)) => proof,
            Ok(None) => {
                return Err(Rejection::new(
                    Reason::MissingProof,
                    format!("job is {}", stored.state.name()),
                ))
            }
            Err(reason) => {
                return Err(Rejection::new(
                    Reason::CorruptProof,
                    format!("stored proof row is unreadable: {reason}"),
                ))
            }
        };
        if Digest32::sha256(&proof.envelope) != proof.proof_sha256 {
            return Err(Rejection::new(
                Reason::CorruptProof,
                "stored proof does not match its recorded SHA-256",
            ));
        }
        let statement = stored.statement();
        let changed = [
            (
                proof.output_hash != statement.output_hash,
                Reason::OutputTampered,
                "response",
            ),
            (
                proof.input_hash != statement.input_hash,
                Reason::InputTampered,
                "prompt",
            ),
            (
                proof.model_hash != statement.model_hash,
                Reason::ModelMismatch,
                "model",
            ),
        ];
        if let Some((_, reason, what)) = changed.iter().find(|(changed, _, _)| *changed) {
            return Err(Rejection::new(
                *reason,
                format!("the stored {what} is not the one that was proved"),
            ));
        }
        if let Some(other) = &snapshot.proof_reused_by {
            return Err(Rejection::new(
                Reason::ReplayedProof,
                format!(
                    "the same proof is stored for job {}",
                    crate::store::job_for_people(other)
                ),
            ));
        }
        // Checked after every specific reason: the digest recorded at
        // acceptance covers fields the proof does not (tokens_used for a
        // version 1 proof).
        let content = || {
            if stored.content_intact() {
                Ok(())
            } else {
                Err(Rejection::new(
                    Reason::ResultTampered,
                    "the stored result no longer matches the digest recorded when it was accepted",
                ))
            }
        };
        let cleared = |pending| Prechecked {
            statement,
            proof: proof.clone(),
            tokens_used: stored.tokens_used,
            pending,
        };
        if proof.mock || proof.envelope.starts_with(MOCK_MAGIC) {
            if self.production {
                return Err(Rejection::new(
                    Reason::MockProof,
                    "mock proofs are refused in production mode",
                ));
            }
            content()?;
            if proof.envelope != mock_proof(&statement) {
                return Err(Rejection::new(
                    Reason::InvalidProof,
                    "mock proof does not bind this statement",
                ));
            }
            return Ok(cleared(None));
        }
        let envelope = ProofEnvelope::from_bytes(&proof.envelope)
            .map_err(|e| Rejection::new(Reason::CorruptProof, e.to_string()))?;
        // The public inputs of the proof's own circuit version: a version 1
        // proof (stored before the upgrade) binds no token count, and is
        // checked against the version 1 key its vk_id names.
        let expected = statement.instance_for(envelope.version());
        mismatch(&envelope.instance, &expected)?;
        content()?;
        if self.keys.verifier(&envelope.vk_id).is_none() {
            return Err(Rejection::new(
                Reason::UnknownVerifyingKey,
                format!("vk_id {} is not held by this node", envelope.vk_id),
            ));
        }
        Ok(cleared(Some((Box::new(envelope), expected))))
    }

    /// The whole gate: [`Gate::precheck`], then the proof verified.
    pub fn check(&self, snapshot: &JobSnapshot) -> Result<Cleared, Rejection> {
        let prechecked = self.precheck(snapshot)?;
        if let Some((envelope, expected)) = &prechecked.pending {
            self.verify(envelope, expected)
                .map_err(|e| Rejection::new(Reason::InvalidProof, e.to_string()))?;
        }
        Ok(Cleared {
            statement: prechecked.statement,
            proof: prechecked.proof,
            tokens_used: prechecked.tokens_used,
        })
    }

    /// Verifies `envelope` against `expected` with the key it names, on the
    /// verification pool.
    pub fn verify(&self, envelope: &ProofEnvelope, expected: &Instance) -> Result<(), VerifyError> {
        let vk = self
            .keys
            .verifier(&envelope.vk_id)
            .ok_or(VerifyError::Invalid)?;
        self.pool.install(|| envelope.verify(&vk, expected))
    }

    /// Verifies many prechecked proofs of one key together (one pairing
    /// check per core); the outcome of each, in order.
    pub fn verify_batch(
        &self,
        items: &[(&ProofEnvelope, &Instance)],
    ) -> Vec<Result<(), VerifyError>> {
        let Some((first, _)) = items.first() else {
            return Vec::new();
        };
        match self.keys.verifier(&first.vk_id) {
            Some(vk) => self.pool.install(|| fabstir_zk::verify_batch(&vk, items)),
            None => items.iter().map(|_| Err(VerifyError::Invalid)).collect(),
        }
    }

    /// Checks a proof made for a payment (a checkpoint's own proof) against
    /// `statement`: a real proof must verify against its public inputs; a
    /// mock proof (outside production) must start with the statement's
    /// binding.
    pub fn check_payment_proof(
        &self,
        bytes: &[u8],
        statement: &Statement,
    ) -> Result<(), Rejection> {
        if bytes.starts_with(MOCK_MAGIC) {
            if self.production {
                return Err(Rejection::new(
                    Reason::MockProof,
                    "mock proofs are refused in production mode",
                ));
            }
            if !bytes.starts_with(&mock_proof(statement)) {
                return Err(Rejection::new(
                    Reason::InvalidProof,
                    "mock proof does not bind this statement",
                ));
            }
            return Ok(());
        }
        let envelope = ProofEnvelope::from_bytes(bytes)
            .map_err(|e| Rejection::new(Reason::CorruptProof, e.to_string()))?;
        let expected = statement.instance_for(envelope.version());
        mismatch(&envelope.instance, &expected)?;
        self.verify(&envelope, &expected)
            .map_err(|e| Rejection::new(Reason::InvalidProof, e.to_string()))
    }
}

/// The envelope's public inputs against the re-derived ones; the most
/// specific reason wins (another job first: that is a replay).
fn mismatch(found: &Instance, expected: &Instance) -> Result<(), Rejection> {
    let differences = found.differences(expected);
    let reasons = [
        (
            "job_id",
            Reason::ReplayedProof,
            "the proof was made for another job",
        ),
        (
            "host_id",
            Reason::WrongHost,
            "the proof was made by another host",
        ),
        (
            "chain_id",
            Reason::WrongChain,
            "the proof was made for another chain",
        ),
        (
            "marketplace",
            Reason::WrongMarketplace,
            "the proof was made for another marketplace",
        ),
        (
            "tokens",
            Reason::WrongTokens,
            "the proof was made for another token count",
        ),
        (
            "commitment",
            Reason::InvalidProof,
            "the proof commits to another result",
        ),
    ];
    match reasons
        .into_iter()
        .find(|(field, _, _)| differences.contains(field))
    {
        Some((_, reason, detail)) => Err(Rejection::new(reason, detail)),
        None => Ok(()),
    }
}
