//! SettlementValidator: before anything is paid, re-derive the statement
//! from the stored result, check every public input and verify the proof;
//! settle each job at most once, paying only the tokens its checkpoints have
//! not already claimed (see `checkpoint` for the token semantics).

use std::sync::Arc;
use std::time::Instant;

use fabstir_zk::{verify_batch, Digest32, Instance, JobId, ProofEnvelope, VerifyError};
use serde::Serialize;

use crate::keys::KeyManager;
use crate::metrics::Metrics;
use crate::mock::{mock_proof, MOCK_MAGIC};
pub use crate::reasons::Reason;
use crate::store::settlements::{self, NewSettlement};
use crate::store::{
    checkpoints, JobLocks, JobState, Settlement, Store, StoreError, StoredProof, StoredResult,
};

/// The outcome of validating one job.
#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    pub job_id: String,
    pub passed: bool,
    pub reason: Option<Reason>,
    pub detail: Option<String>,
    pub tokens: u64,
}

/// Settling failed or cannot happen yet.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error("job {job} is not proved yet (state {}); settle it once its proof exists", .state.name())]
    NotReady { job: String, state: JobState },
    #[error("no result is stored for job {0}")]
    UnknownJob(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Validates and settles jobs.
pub struct SettlementValidator {
    store: Arc<Store>,
    keys: Arc<KeyManager>,
    metrics: Arc<Metrics>,
    /// The verification pool.
    pool: Arc<rayon::ThreadPool>,
    production: bool,
    /// One settlement at a time per job (the database's uniqueness is the
    /// final guard; this avoids validating twice).
    locks: JobLocks,
}

/// A job's stored data, read once per validation.
struct Loaded {
    result: Option<StoredResult>,
    /// The proof row, or why it cannot be read (a damaged row is a
    /// `corrupt_proof` rejection for this job, not a failure of the request).
    proof: Result<Option<StoredProof>, String>,
}

/// Everything checked before the cryptographic verification.
enum Prechecked {
    Done(Validation),
    Verify {
        validation: Validation,
        envelope: Box<ProofEnvelope>,
        expected: Instance,
    },
}

impl SettlementValidator {
    /// A validator; `production` refuses mock proofs.
    /// `pool` does the cryptographic verification (see `threads`).
    pub fn new(
        store: Arc<Store>,
        keys: Arc<KeyManager>,
        metrics: Arc<Metrics>,
        pool: Arc<rayon::ThreadPool>,
        production: bool,
    ) -> Self {
        Self {
            store,
            keys,
            metrics,
            pool,
            production,
            locks: JobLocks::default(),
        }
    }

    fn load(&self, job: &JobId) -> Result<Loaded, StoreError> {
        let proof = match self.store.proof(job) {
            Ok(proof) => Ok(proof),
            Err(StoreError::Corrupt { reason, .. }) => Err(reason),
            Err(e) => return Err(e),
        };
        Ok(Loaded {
            result: self.store.result(job)?,
            proof,
        })
    }

    fn precheck(&self, job: &JobId, loaded: Loaded) -> Result<Prechecked, StoreError> {
        let reject = |reason: Reason, detail: String, tokens: u64| {
            Prechecked::Done(Validation {
                job_id: job.to_string(),
                passed: false,
                reason: Some(reason),
                detail: Some(detail),
                tokens,
            })
        };
        let Some(stored) = loaded.result else {
            return Ok(reject(Reason::MissingResult, "no result stored".into(), 0));
        };
        let tokens = stored.tokens_used;
        let proof = match loaded.proof {
            Ok(Some(proof)) => proof,
            Ok(None) => {
                return Ok(reject(
                    Reason::MissingProof,
                    format!("job is {}", stored.state.name()),
                    tokens,
                ))
            }
            Err(reason) => {
                return Ok(reject(
                    Reason::CorruptProof,
                    format!("stored proof row is unreadable: {reason}"),
                    tokens,
                ))
            }
        };
        if Digest32::sha256(&proof.envelope) != proof.proof_sha256 {
            return Ok(reject(
                Reason::CorruptProof,
                "stored proof does not match its recorded SHA-256".into(),
                tokens,
            ));
        }
        // The statement as the stored result says now.
        let statement = stored.result.statement(stored.host_id);
        let hashes_changed = [
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
        if let Some((_, reason, what)) = hashes_changed.iter().find(|(changed, _, _)| *changed) {
            return Ok(reject(
                *reason,
                format!("the stored {what} is not the one that was proved"),
                tokens,
            ));
        }
        if let Some(other) = self.store.proof_reused_by(job, &proof.proof_sha256)? {
            return Ok(reject(
                Reason::ReplayedProof,
                format!("the same proof is stored for job {other}"),
                tokens,
            ));
        }
        // Checked after every specific reason: the content digest stored at
        // acceptance, which covers fields the proof does not (tokens_used).
        let content_rejection = || {
            (crate::store::content_hash(&stored.result) != stored.content_hash).then(|| {
                reject(
                    Reason::ResultTampered,
                    "the stored result no longer matches the digest recorded when it was accepted"
                        .into(),
                    tokens,
                )
            })
        };
        let validation = Validation {
            job_id: job.to_string(),
            passed: true,
            reason: None,
            detail: None,
            tokens,
        };
        if proof.mock || proof.envelope.starts_with(MOCK_MAGIC) {
            if self.production {
                return Ok(reject(
                    Reason::MockProof,
                    "mock proofs are refused in production mode".into(),
                    tokens,
                ));
            }
            if let Some(rejection) = content_rejection() {
                return Ok(rejection);
            }
            if proof.envelope != mock_proof(&statement) {
                return Ok(reject(
                    Reason::InvalidProof,
                    "mock proof does not bind this statement".into(),
                    tokens,
                ));
            }
            return Ok(Prechecked::Done(validation));
        }
        let envelope = match ProofEnvelope::from_bytes(&proof.envelope) {
            Ok(envelope) => envelope,
            Err(e) => return Ok(reject(Reason::CorruptProof, e.to_string(), tokens)),
        };
        // The public inputs of the proof's own circuit version: a version 1
        // proof (stored before the upgrade) binds no token count, and is
        // checked against the version 1 key its vk_id names.
        let expected = statement.instance_for(envelope.version());
        // The envelope's public inputs against the re-derived ones; the most
        // specific reason wins (another job first: that is a replay).
        let differences = envelope.instance.differences(&expected);
        let mismatch = [
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
        ]
        .into_iter()
        .find(|(field, _, _)| differences.contains(field))
        .map(|(_, reason, detail)| (reason, detail));
        if let Some((reason, detail)) = mismatch {
            return Ok(reject(reason, detail.into(), tokens));
        }
        if let Some(rejection) = content_rejection() {
            return Ok(rejection);
        }
        if self.keys.verifier(&envelope.vk_id).is_none() {
            return Ok(reject(
                Reason::UnknownVerifyingKey,
                format!("vk_id {} is not held by this node", envelope.vk_id),
                tokens,
            ));
        }
        Ok(Prechecked::Verify {
            validation,
            envelope: Box::new(envelope),
            expected,
        })
    }

    fn record_metrics(&self, validation: &Validation, started: Instant) {
        let outcome = validation.reason.map_or("passed", Reason::code);
        self.metrics
            .settlement_validations
            .with_label_values(&[outcome])
            .inc();
        self.metrics
            .settlement_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.settlement_validations_total.inc();
        if validation.passed {
            self.metrics.settlement_validations_passed.inc();
        }
        let total = self.metrics.settlement_validations_total.get() as f64;
        let passed = self.metrics.settlement_validations_passed.get() as f64;
        self.metrics
            .settlement_success_ratio
            .set(passed / total.max(1.0));
        match validation.reason {
            None => tracing::info!(job_id = %validation.job_id, "settlement validation passed"),
            Some(reason) => {
                tracing::warn!(job_id = %validation.job_id, reason = reason.code(), "settlement validation rejected")
            }
        }
    }

    /// Validates one job.
    pub fn validate(&self, job: &JobId) -> Result<Validation, StoreError> {
        let started = Instant::now();
        let validation = match self.precheck(job, self.load(job)?)? {
            Prechecked::Done(validation) => validation,
            Prechecked::Verify {
                mut validation,
                envelope,
                expected,
            } => {
                let outcome = match self.keys.verifier(&envelope.vk_id) {
                    Some(vk) => self.pool.install(|| envelope.verify(&vk, &expected)),
                    None => Err(VerifyError::Invalid),
                };
                if let Err(e) = outcome {
                    validation.passed = false;
                    validation.reason = Some(Reason::InvalidProof);
                    validation.detail = Some(e.to_string());
                }
                validation
            }
        };
        self.record_metrics(&validation, started);
        Ok(validation)
    }

    /// Validates many jobs, verifying their proofs together with batch
    /// verification (one pairing check per core).
    pub fn validate_many(&self, jobs: &[JobId]) -> Result<Vec<Validation>, StoreError> {
        let started = Instant::now();
        let mut out: Vec<Option<Validation>> = vec![None; jobs.len()];
        let mut to_verify: Vec<(usize, ProofEnvelope, Instance)> = Vec::new();
        for (i, job) in jobs.iter().enumerate() {
            match self.precheck(job, self.load(job)?)? {
                Prechecked::Done(validation) => out[i] = Some(validation),
                Prechecked::Verify {
                    validation,
                    envelope,
                    expected,
                } => {
                    out[i] = Some(validation);
                    to_verify.push((i, *envelope, expected));
                }
            }
        }
        // Group by verifying key (usually one).
        let mut ids: Vec<_> = to_verify.iter().map(|(_, e, _)| e.vk_id).collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            let Some(vk) = self.keys.verifier(&id) else {
                continue;
            };
            let group: Vec<&(usize, ProofEnvelope, Instance)> =
                to_verify.iter().filter(|(_, e, _)| e.vk_id == id).collect();
            let items: Vec<(&ProofEnvelope, &Instance)> =
                group.iter().map(|(_, e, x)| (e, x)).collect();
            for ((i, _, _), result) in group
                .iter()
                .zip(self.pool.install(|| verify_batch(&vk, &items)))
            {
                if let (Err(e), Some(validation)) = (result, out[*i].as_mut()) {
                    validation.passed = false;
                    validation.reason = Some(Reason::InvalidProof);
                    validation.detail = Some(e.to_string());
                }
            }
        }
        let validations: Vec<Validation> = out.into_iter().flatten().collect();
        let per_job = started.elapsed() / validations.len().max(1) as u32;
        for validation in &validations {
            self.record_metrics(validation, Instant::now() - per_job);
        }
        Ok(validations)
    }

    /// The settlement of a job, if it has one.
    pub fn settlement(&self, job: &JobId) -> Result<Option<Settlement>, StoreError> {
        self.store.durable(|tx| settlements::get(tx, job))
    }

    /// Settles a job at most once: validates it and records the outcome
    /// (paid, or rejected with a reason). A passed job is paid its
    /// `tokens_used` minus what its checkpoints claimed, computed in the
    /// transaction that records the settlement (after which no checkpoint
    /// can claim more). Repeated and concurrent calls get the same settlement.
    pub fn settle(&self, job: &JobId) -> Result<Settlement, SettleError> {
        let _guard = self.locks.lock(job);
        if let Some(existing) = self.settlement(job)? {
            return Ok(existing);
        }
        let stored = self
            .store
            .result(job)?
            .ok_or_else(|| SettleError::UnknownJob(job.to_string()))?;
        if matches!(stored.state, JobState::Queued | JobState::Proving) {
            return Err(SettleError::NotReady {
                job: job.to_string(),
                state: stored.state,
            });
        }
        let validation = self.validate(job)?;
        // An unreadable proof row has no trustworthy digest to record.
        let proof_sha = match self.store.proof(job) {
            Ok(proof) => proof.map(|p| p.proof_sha256.to_string()),
            Err(StoreError::Corrupt { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let settlement_id = format!("stl_{}", hex::encode(rand::random::<[u8; 16]>()));
        let settlement = self.store.durable(|tx| {
            let claimed = checkpoints::claims(tx, job)?.claimed;
            let paid = if validation.passed {
                stored.tokens_used.saturating_sub(claimed)
            } else {
                0
            };
            settlements::insert(
                tx,
                &NewSettlement {
                    job_id: job,
                    settlement_id: &settlement_id,
                    passed: validation.passed,
                    reason: validation.reason.map(Reason::code),
                    tokens: paid,
                    checkpoint_tokens: claimed,
                    proof_sha256: proof_sha.as_deref(),
                },
            )
        })?;
        if settlement.settlement_id == settlement_id && validation.passed {
            self.metrics.settlements_paid.inc();
            tracing::info!(job_id = %job, settlement_id = %settlement.settlement_id, tokens = settlement.tokens, "job settled");
        }
        Ok(settlement)
    }
}
