//! A job's state as one transaction reads it: everything the payment gate
//! (`gate`) checks and the token rules (`checkpoint`, `settlement`) need,
//! read together so that what is checked is what is acted on.

use fabstir_zk::JobId;
use rusqlite::Connection;

use super::checkpoints::{self, Checkpoint};
use super::{proofs, results, Claims, StoreError, StoredProof, StoredResult};

/// A job's stored result, proof and claims, read in one transaction.
#[derive(Debug, Clone)]
pub struct JobSnapshot {
    /// The job.
    pub job: JobId,
    /// Its stored result, if any.
    pub result: Option<StoredResult>,
    /// Its stored proof, or why the row cannot be read (a damaged row is a
    /// `corrupt_proof` refusal for this job, not a failure of the request).
    pub proof: Result<Option<StoredProof>, String>,
    /// Another job whose stored proof has the same bytes (a replay).
    pub proof_reused_by: Option<String>,
    /// What the job's checkpoints and settlement have claimed.
    pub claims: Claims,
}

impl JobSnapshot {
    /// Reads the job's state; call inside the transaction that acts on it.
    pub fn read(conn: &Connection, job: &JobId) -> Result<Self, StoreError> {
        let proof = match proofs::get(conn, job) {
            Ok(proof) => Ok(proof),
            Err(StoreError::Corrupt { reason, .. }) => Err(reason),
            Err(e) => return Err(e),
        };
        let proof_reused_by = match &proof {
            Ok(Some(p)) => proofs::other_job_with(conn, job, &p.proof_sha256)?,
            _ => None,
        };
        Ok(Self {
            job: *job,
            result: results::get(conn, job)?,
            proof,
            proof_reused_by,
            claims: checkpoints::claims(conn, job)?,
        })
    }

    /// The job's checkpoint at cumulative count `tokens`, if one is recorded;
    /// call in the same transaction as [`JobSnapshot::read`].
    pub fn checkpoint_at(
        &self,
        conn: &Connection,
        tokens: u64,
    ) -> Result<Option<Checkpoint>, StoreError> {
        checkpoints::by_tokens(conn, &self.job, tokens)
    }
}
