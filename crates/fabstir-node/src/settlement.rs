//! SettlementValidator: settle each job at most once, paying only what the
//! payment [`Gate`] clears (the statement re-derived from the stored result,
//! every public input checked, the proof verified) and only the tokens its
//! checkpoints have not already claimed (see `checkpoint` for the token
//! semantics).

use std::sync::Arc;
use std::time::Instant;

use fabstir_zk::{Instance, JobId, ProofEnvelope};
use serde::Serialize;

use crate::gate::{Gate, Prechecked, Rejection};
use crate::metrics::Metrics;
pub use crate::reasons::Reason;
use crate::store::results;
use crate::store::settlements::{self, NewSettlement};
use crate::store::{now_ms, JobLocks, JobSnapshot, JobState, Settlement, Store, StoreError};

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
    gate: Arc<Gate>,
    metrics: Arc<Metrics>,
    /// One settlement at a time per job (the database's uniqueness is the
    /// final guard; this avoids validating twice).
    locks: JobLocks,
    /// `result_retention` is zero: a job's text is deleted in the
    /// transaction that settles it.
    prune_at_settlement: bool,
}

/// A validation from the gate's verdict on a job.
fn validation(job: &JobId, snapshot: &JobSnapshot, verdict: Result<(), Rejection>) -> Validation {
    let tokens = snapshot.result.as_ref().map_or(0, |r| r.tokens_used);
    match verdict {
        Ok(()) => Validation {
            job_id: job.to_string(),
            passed: true,
            reason: None,
            detail: None,
            tokens,
        },
        Err(rejection) => Validation {
            job_id: job.to_string(),
            passed: false,
            reason: Some(rejection.reason),
            detail: Some(rejection.detail),
            tokens,
        },
    }
}

impl SettlementValidator {
    /// A validator that pays what `gate` clears.
    pub fn new(store: Arc<Store>, gate: Arc<Gate>, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            gate,
            metrics,
            locks: JobLocks::default(),
            prune_at_settlement: false,
        }
    }

    /// Deletes each job's prompt and response text (keeping their hashes)
    /// in the transaction that settles it (`result_retention` 0).
    pub fn prune_at_settlement(mut self, prune: bool) -> Self {
        self.prune_at_settlement = prune;
        self
    }

    fn record_metrics(&self, job: &JobId, validation: &Validation, started: Instant) {
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
            None => tracing::info!(job_id = %job.short(), "settlement validation passed"),
            Some(reason) => {
                tracing::warn!(job_id = %job.short(), reason = reason.code(), "settlement validation rejected")
            }
        }
    }

    /// Validates one job (changes nothing).
    pub fn validate(&self, job: &JobId) -> Result<Validation, StoreError> {
        let started = Instant::now();
        let snapshot = self.store.read(|tx| JobSnapshot::read(tx, job))?;
        let verdict = self.gate.check(&snapshot).map(|_| ());
        let validation = validation(job, &snapshot, verdict);
        self.record_metrics(job, &validation, started);
        Ok(validation)
    }

    /// Validates many jobs, verifying their proofs together with batch
    /// verification (one pairing check per core).
    pub fn validate_many(&self, jobs: &[JobId]) -> Result<Vec<Validation>, StoreError> {
        let started = Instant::now();
        let mut out: Vec<Validation> = Vec::with_capacity(jobs.len());
        let mut to_verify: Vec<(usize, ProofEnvelope, Instance)> = Vec::new();
        for job in jobs {
            let snapshot = self.store.read(|tx| JobSnapshot::read(tx, job))?;
            match self.gate.precheck(&snapshot) {
                Ok(Prechecked {
                    pending: Some((envelope, expected)),
                    ..
                }) => to_verify.push((out.len(), *envelope, expected)),
                Ok(_) => {}
                Err(rejection) => {
                    out.push(validation(job, &snapshot, Err(rejection)));
                    continue;
                }
            }
            out.push(validation(job, &snapshot, Ok(())));
        }
        // Group by verifying key (usually one).
        let mut ids: Vec<_> = to_verify.iter().map(|(_, e, _)| e.vk_id).collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            let group: Vec<&(usize, ProofEnvelope, Instance)> =
                to_verify.iter().filter(|(_, e, _)| e.vk_id == id).collect();
            let items: Vec<(&ProofEnvelope, &Instance)> =
                group.iter().map(|(_, e, x)| (e, x)).collect();
            for ((i, _, _), result) in group.iter().zip(self.gate.verify_batch(&items)) {
                if let Err(e) = result {
                    let validation = &mut out[*i];
                    validation.passed = false;
                    validation.reason = Some(Reason::InvalidProof);
                    validation.detail = Some(e.to_string());
                }
            }
        }
        let per_job = started.elapsed() / out.len().max(1) as u32;
        for (job, validation) in jobs.iter().zip(&out) {
            self.record_metrics(job, validation, Instant::now() - per_job);
        }
        Ok(out)
    }

    /// The settlement of a job, if it has one.
    pub fn settlement(&self, job: &JobId) -> Result<Option<Settlement>, StoreError> {
        self.store.durable(|tx| settlements::get(tx, job))
    }

    /// Settles a job at most once: in one transaction, reads the job's
    /// state, passes it through the [`Gate`] and records the outcome (paid,
    /// or rejected with a reason). A passed job is paid its `tokens_used`
    /// minus what its checkpoints claimed (after which no checkpoint can
    /// claim more). Repeated and concurrent calls get the same settlement.
    pub fn settle(&self, job: &JobId) -> Result<Settlement, SettleError> {
        let _guard = self.locks.lock(job);
        if let Some(existing) = self.settlement(job)? {
            return Ok(existing);
        }
        let started = Instant::now();
        let settlement_id = format!("stl_{}", hex::encode(rand::random::<[u8; 16]>()));
        let outcome = self.store.durable(|tx| {
            if let Some(existing) = settlements::get(tx, job)? {
                return Ok(Ok((existing, None)));
            }
            let snapshot = JobSnapshot::read(tx, job)?;
            let Some(stored) = &snapshot.result else {
                return Ok(Err(SettleError::UnknownJob(job.short().to_string())));
            };
            if matches!(stored.state, JobState::Queued | JobState::Proving) {
                return Ok(Err(SettleError::NotReady {
                    job: job.short().to_string(),
                    state: stored.state,
                }));
            }
            let verdict = self.gate.check(&snapshot).map(|_| ());
            let validation = validation(job, &snapshot, verdict);
            // An unreadable proof row has no trustworthy digest to record.
            let proof_sha = match &snapshot.proof {
                Ok(Some(proof)) => Some(proof.proof_sha256.to_string()),
                _ => None,
            };
            let claimed = snapshot.claims.claimed;
            let paid = if validation.passed {
                stored.tokens_used.saturating_sub(claimed)
            } else {
                0
            };
            let settlement = settlements::insert(
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
            )?;
            if self.prune_at_settlement && results::prune(tx, &job.to_string(), now_ms())? > 0 {
                self.metrics.results_pruned.inc();
            }
            Ok(Ok((settlement, Some(validation))))
        })?;
        let (settlement, validation) = outcome?;
        if let Some(validation) = validation {
            self.record_metrics(job, &validation, started);
            if validation.passed {
                self.metrics.settlements_paid.inc();
                tracing::info!(job_id = %job.short(), settlement_id = %settlement.settlement_id, tokens = settlement.tokens, "job settled");
            }
        }
        Ok(settlement)
    }
}
