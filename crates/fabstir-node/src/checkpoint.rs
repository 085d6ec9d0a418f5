//! Checkpoints: proof-of-work submissions recorded in an outbox and handed
//! to a [`ChainClient`].
//!
//! A checkpoint is the marketplace's `submitProofOfWork` payload (see
//! [`crate::chain`]), signed by the host wallet and stored with its calldata
//! before anything is sent, so an operator can also send it with any Ethereum
//! client. The embedded chain client is a local ledger in the same database
//! that enforces one submission per checkpoint and single use of each
//! `proofHash`. At start-up, pending outbox entries are reconciled with the
//! ledger: a crash between submitting and recording neither loses nor
//! duplicates a submission.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use fabstir_zk::{Digest32, JobId, ModelRef};
use rusqlite::{params, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::chain::abi::{keccak256, u256_from_u64};
use crate::chain::{HostWallet, ProofOfWorkSubmission};
use crate::http::{ApiError, App, JsonBody};
use crate::metrics::Metrics;
use crate::prover::ProofGenerator;
use crate::store::{now_ms, Checkpoint, Store, StoreError};

/// What the chain says about a submission.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Receipt {
    /// Ledger entry (or transaction) identifier.
    pub id: String,
    pub recorded_at_ms: i64,
}

/// A submission the chain refuses, or a failure to reach it.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("proofHash {0} was already submitted for another checkpoint")]
    ProofHashReused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Receives proof-of-work submissions.
pub trait ChainClient: Send + Sync {
    /// Submits checkpoint `checkpoint_id`. Submitting the same checkpoint
    /// again returns the first receipt.
    fn submit(
        &self,
        checkpoint_id: i64,
        submission: &ProofOfWorkSubmission,
    ) -> Result<Receipt, ChainError>;
    /// The receipt of a checkpoint already recorded, if any.
    fn receipt(&self, checkpoint_id: i64) -> Result<Option<Receipt>, ChainError>;
}

/// The embedded chain client: a ledger table in the node's database.
pub struct LocalLedger {
    store: Arc<Store>,
}

impl LocalLedger {
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }
}

fn read_receipt(
    tx: &rusqlite::Connection,
    checkpoint_id: i64,
) -> Result<Option<Receipt>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT id, created_at FROM ledger WHERE checkpoint_id = ?1",
            params![checkpoint_id],
            |row| {
                Ok(Receipt {
                    id: format!("ledger-{}", row.get::<_, i64>(0)?),
                    recorded_at_ms: row.get(1)?,
                })
            },
        )
        .optional()?)
}

impl ChainClient for LocalLedger {
    fn submit(
        &self,
        checkpoint_id: i64,
        submission: &ProofOfWorkSubmission,
    ) -> Result<Receipt, ChainError> {
        let proof_hash = format!("0x{}", hex::encode(submission.proof_hash));
        let outcome = self.store.durable(|tx| {
            if let Some(receipt) = read_receipt(tx, checkpoint_id)? {
                return Ok(Ok(receipt));
            }
            let reused: Option<i64> = tx
                .query_row("SELECT checkpoint_id FROM ledger WHERE proof_hash = ?1", params![proof_hash], |row| row.get(0))
                .optional()?;
            if reused.is_some() {
                return Ok(Err(()));
            }
            let tokens = u128::from_be_bytes(submission.tokens_claimed[16..].try_into().unwrap_or([0; 16]));
            tx.execute(
                "INSERT INTO ledger (checkpoint_id, job_id, proof_hash, tokens_claimed, calldata, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    checkpoint_id,
                    format!("0x{}", hex::encode(submission.job_id)),
                    proof_hash,
                    tokens as i64,
                    format!("0x{}", hex::encode(&submission.calldata)),
                    now_ms()
                ],
            )?;
            Ok(Ok(read_receipt(tx, checkpoint_id)?.unwrap_or(Receipt { id: String::new(), recorded_at_ms: 0 })))
        })?;
        outcome.map_err(|()| ChainError::ProofHashReused(proof_hash))
    }

    fn receipt(&self, checkpoint_id: i64) -> Result<Option<Receipt>, ChainError> {
        Ok(self.store.durable(|tx| read_receipt(tx, checkpoint_id))?)
    }
}

/// Why a checkpoint cannot be recorded.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("no result is stored for job {0}")]
    UnknownJob(String),
    #[error("job {0} has no proof yet; submit the checkpoint once it is proved")]
    NotProved(String),
    #[error("tokens_processed must be between 1 and the result's tokens_used ({0})")]
    Tokens(u64),
    #[error(
        "the result names its model by hash; give \"model_id\" (the registry's bytes32 modelId)"
    )]
    ModelIdRequired,
    #[error("proof generation for the checkpoint failed: {0}")]
    Prove(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The outbox and its chain client.
pub struct Checkpoints {
    /// Striped locks: one checkpoint submission at a time per job, so that
    /// concurrent checkpoints of a job choose distinct proofs.
    locks: Vec<std::sync::Mutex<()>>,
    store: Arc<Store>,
    generator: Arc<ProofGenerator>,
    wallet: HostWallet,
    chain: Arc<dyn ChainClient>,
    metrics: Arc<Metrics>,
}

fn read_checkpoint(row: &rusqlite::Row<'_>) -> rusqlite::Result<Checkpoint> {
    let payload: String = row.get(6)?;
    Ok(Checkpoint {
        id: row.get(0)?,
        job_id: row.get(1)?,
        tokens_processed: row.get::<_, i64>(2)? as u64,
        commitment: row.get(3)?,
        proof_hash: row.get(4)?,
        proof_cid: row.get(5)?,
        payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
        status: row.get(7)?,
        created_at_ms: row.get(8)?,
        submitted_at_ms: row.get(9)?,
    })
}

const CHECKPOINT_COLUMNS: &str =
    "id, job_id, tokens_processed, commitment, proof_hash, proof_cid, payload, status, created_at, submitted_at";

impl Checkpoints {
    pub fn new(
        store: Arc<Store>,
        generator: Arc<ProofGenerator>,
        wallet: HostWallet,
        chain: Arc<dyn ChainClient>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            locks: (0..64).map(|_| std::sync::Mutex::new(())).collect(),
            store,
            generator,
            wallet,
            chain,
            metrics,
        }
    }

    /// The host wallet's address.
    pub fn wallet_address(&self) -> String {
        self.wallet.address_checksummed()
    }

    /// Checkpoints of a job, oldest first.
    pub fn list(&self, job: &JobId) -> Result<Vec<Checkpoint>, StoreError> {
        self.store.durable(|tx| {
            let mut stmt = tx.prepare(&format!(
                "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE job_id = ?1 ORDER BY id"
            ))?;
            let rows = stmt.query_map(params![job.to_string()], read_checkpoint)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Records (once) and submits the checkpoint `(job, tokens)`.
    pub fn submit(
        &self,
        job: &JobId,
        tokens: u64,
        model_id: Option<[u8; 32]>,
        delta_cid: &str,
    ) -> Result<(Checkpoint, bool), CheckpointError> {
        let stripe = &self.locks[(job.0[31] as usize) % self.locks.len()];
        let _guard = stripe.lock().unwrap_or_else(|p| p.into_inner());
        let stored = self
            .store
            .result(job)?
            .ok_or_else(|| CheckpointError::UnknownJob(job.to_string()))?;
        let proof = self
            .store
            .proof(job)?
            .ok_or_else(|| CheckpointError::NotProved(job.to_string()))?;
        if tokens == 0 || tokens > stored.tokens_used {
            return Err(CheckpointError::Tokens(stored.tokens_used));
        }
        let existing = self.existing(job, tokens)?;
        if let Some(checkpoint) = existing {
            return Ok((self.send(checkpoint)?, false));
        }
        let model_id = match (model_id, &stored.result.model) {
            (Some(id), _) => id,
            (None, ModelRef::Name(name)) => keccak256(name.as_bytes()),
            (None, ModelRef::Hash(_)) => return Err(CheckpointError::ModelIdRequired),
        };
        // Each submission needs its own proofHash: the job's first checkpoint
        // uses the stored proof, later ones a fresh proof of the same
        // statement (proofs are randomised, so the bytes differ).
        let earlier = self.list(job)?.len();
        let proof_bytes = if earlier == 0 {
            proof.envelope.clone()
        } else {
            let statement = stored.result.statement(stored.host_id);
            self.generator
                .prove_fresh(&statement)
                .map_err(|e| CheckpointError::Prove(e.to_string()))?
                .bytes
        };
        let submission = ProofOfWorkSubmission::build(
            &self.wallet,
            &job.0,
            &u256_from_u64(tokens),
            &proof_bytes,
            &model_id,
            delta_cid,
        );
        let payload = json!({
            "submission": submission,
            "proof": format!("0x{}", hex::encode(&proof_bytes)),
            "mock": proof.mock,
        });
        let checkpoint = self.store.durable(|tx| {
            tx.execute(
                "INSERT INTO checkpoints (job_id, tokens_processed, commitment, proof_hash, proof_cid, payload, status, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7) ON CONFLICT (job_id, tokens_processed) DO NOTHING",
                params![
                    job.to_string(),
                    tokens as i64,
                    proof.commitment,
                    Digest32(submission.proof_hash).to_string(),
                    submission.proof_cid,
                    payload.to_string(),
                    now_ms()
                ],
            )?;
            let row = tx.query_row(
                &format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE job_id = ?1 AND tokens_processed = ?2"),
                params![job.to_string(), tokens as i64],
                read_checkpoint,
            )?;
            Ok(row)
        })?;
        Ok((self.send(checkpoint)?, true))
    }

    fn existing(&self, job: &JobId, tokens: u64) -> Result<Option<Checkpoint>, StoreError> {
        self.store.durable(|tx| {
            Ok(tx
                .query_row(
                    &format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE job_id = ?1 AND tokens_processed = ?2"),
                    params![job.to_string(), tokens as i64],
                    read_checkpoint,
                )
                .optional()?)
        })
    }

    /// Hands a pending checkpoint to the chain client and records the outcome.
    fn send(&self, checkpoint: Checkpoint) -> Result<Checkpoint, StoreError> {
        if checkpoint.status != "pending" {
            return Ok(checkpoint);
        }
        let submission: ProofOfWorkSubmission =
            match serde_json::from_value(checkpoint.payload["submission"].clone()) {
                Ok(s) => s,
                Err(e) => {
                    return Err(StoreError::Corrupt {
                        job_id: checkpoint.job_id.clone(),
                        reason: format!("outbox payload: {e}"),
                    })
                }
            };
        let (status, note) = match self.chain.submit(checkpoint.id, &submission) {
            Ok(receipt) => {
                self.metrics.checkpoints_submitted.inc();
                tracing::info!(job_id = %checkpoint.job_id, checkpoint = checkpoint.id, receipt = %receipt.id, "checkpoint submitted");
                ("submitted", receipt.id)
            }
            Err(ChainError::ProofHashReused(hash)) => {
                tracing::warn!(job_id = %checkpoint.job_id, checkpoint = checkpoint.id, "checkpoint refused: proofHash reused");
                ("rejected", format!("proofHash {hash} already submitted"))
            }
            Err(ChainError::Store(e)) => return Err(e),
        };
        self.mark(checkpoint.id, status, &note)
    }

    /// Records the chain's answer for a checkpoint.
    fn mark(&self, id: i64, status: &str, note: &str) -> Result<Checkpoint, StoreError> {
        self.store.durable(|tx| {
            tx.execute(
                "UPDATE checkpoints SET status = ?2, submitted_at = ?3,
                    payload = json_set(payload, '$.chain', ?4) WHERE id = ?1",
                params![id, status, now_ms(), note],
            )?;
            Ok(tx.query_row(
                &format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE id = ?1"),
                params![id],
                read_checkpoint,
            )?)
        })
    }

    /// At start-up: every pending outbox entry is checked against the chain
    /// and submitted if it is not there yet. Returns how many were pending.
    pub fn reconcile(&self) -> Result<usize, StoreError> {
        let pending: Vec<Checkpoint> = self.store.durable(|tx| {
            let mut stmt = tx.prepare(&format!(
                "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE status = 'pending' ORDER BY id"
            ))?;
            let rows = stmt.query_map([], read_checkpoint)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        for checkpoint in &pending {
            match self.chain.receipt(checkpoint.id) {
                // Submitted before a crash, not yet recorded here.
                Ok(Some(receipt)) => self.mark(checkpoint.id, "submitted", &receipt.id)?,
                Ok(None) => self.send(checkpoint.clone())?,
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

/// `POST /v1/checkpoints` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointRequest {
    job_id: JobId,
    tokens_processed: u64,
    #[serde(default)]
    model_id: Option<Digest32>,
    #[serde(default)]
    delta_cid: Option<String>,
}

/// `POST /v1/checkpoints`: record and submit a proof-of-work checkpoint.
pub async fn post_checkpoint(
    State(app): State<Arc<App>>,
    JsonBody(request): JsonBody<CheckpointRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let checkpoints = app.checkpoints.clone();
    let (checkpoint, created) = tokio::task::spawn_blocking(move || {
        checkpoints.submit(
            &request.job_id,
            request.tokens_processed,
            request.model_id.map(|d| d.0),
            request.delta_cid.as_deref().unwrap_or(""),
        )
    })
    .await?
    .map_err(|e| match e {
        CheckpointError::UnknownJob(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "unknown_job", e.to_string())
        }
        CheckpointError::NotProved(_) => {
            ApiError::new(StatusCode::CONFLICT, "not_proved", e.to_string())
        }
        CheckpointError::Tokens(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_tokens",
            e.to_string(),
        ),
        CheckpointError::ModelIdRequired => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "model_id_required",
            e.to_string(),
        ),
        CheckpointError::Prove(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "prove_failed",
            e.to_string(),
        ),
        CheckpointError::Store(e) => ApiError::from(e),
    })?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(checkpoint))))
}

/// `GET /v1/checkpoints/{job_id}`: the job's checkpoints.
pub async fn get_checkpoints(
    State(app): State<Arc<App>>,
    Path(job_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = JobId::parse(&job_id)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_job_id", e.to_string()))?;
    let checkpoints = app.checkpoints.clone();
    let list = tokio::task::spawn_blocking(move || checkpoints.list(&job)).await??;
    Ok(Json(
        json!({ "job_id": job.to_string(), "checkpoints": list }),
    ))
}
