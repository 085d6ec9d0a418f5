//! `POST /v1/results`, `GET /v1/proofs/{job_id}`, `POST /v1/verify`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use fabstir_zk::{
    Address, BatchProof, Digest32, EntryError, HostId, InferenceResult, JobId, ModelRef,
    ProofEnvelope,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, ErrorCode};
use super::extract::{JobPath, JsonBody};
use super::{blocking, App};
use crate::store::{self, InsertOutcome, JobState, StoredResult};

/// `POST /v1/results` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultRequest {
    job_id: JobId,
    chain_id: u64,
    #[serde(with = "fabstir_zk::statement::checksummed")]
    marketplace: Address,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    model_hash: Option<Digest32>,
    prompt: String,
    response: String,
    tokens_used: u64,
}

impl ResultRequest {
    fn into_result(self) -> Result<InferenceResult, ApiError> {
        if self.tokens_used > store::MAX_TOKENS {
            return Err(ApiError::new(
                ErrorCode::TokensOutOfRange,
                format!(
                    "tokens_used {} is above {} (2^63 - 1), the largest count the node stores",
                    self.tokens_used,
                    store::MAX_TOKENS
                ),
            ));
        }
        let model = ModelRef::from_parts(self.model, self.model_hash)
            .map_err(|e| ApiError::new(ErrorCode::InvalidResult, e.to_string()))?;
        // A proof for such a job would register this host for a wallet of
        // the caller's choosing (fabstir_zk::registration).
        if self.job_id.is_reserved() {
            return Err(ApiError::new(
                ErrorCode::InvalidResult,
                format!(
                    "job_id {}: {}",
                    self.job_id,
                    fabstir_zk::statement::RESERVED_JOB_ID
                ),
            ));
        }
        Ok(InferenceResult {
            job_id: self.job_id,
            chain_id: self.chain_id,
            marketplace: self.marketplace,
            model,
            prompt: self.prompt,
            response: self.response,
            tokens_used: self.tokens_used,
        })
    }
}

/// Stores a result and queues it for proving (202), idempotently.
pub async fn post_result(
    State(app): State<Arc<App>>,
    JsonBody(request): JsonBody<ResultRequest>,
) -> Result<Response, ApiError> {
    let result = request.into_result()?;
    check_chain(&app, &result)?;
    // Without a place in the queue, a job that is already stored still gets
    // its idempotent answer (duplicate or conflict); only new jobs get 503.
    let reserved = app.pool.reserve().is_ok();
    if !reserved {
        let store = app.store.clone();
        let job = result.job_id;
        let hash = store::content_hash(&result);
        if let Some(stored) = blocking(move || Ok(store.result(&job)?)).await? {
            if stored.content_hash == hash {
                return Ok(
                    (StatusCode::ACCEPTED, Json(accepted_body(&stored, true))).into_response()
                );
            }
            return Err(conflict(&app, &stored));
        }
        app.metrics.queue_full.inc();
        app.metrics
            .results_rejected
            .with_label_values(&["queue_full"])
            .inc();
        return Err(ApiError::new(
            ErrorCode::QueueFull,
            format!(
                "the prover queue is full ({} results); retry later",
                app.pool.capacity()
            ),
        )
        .retry_after(1));
    }
    let host_id = app.keys.current().host_key.host_id();
    let store = app.store.clone();
    let outcome = blocking(move || Ok(store.insert_result(&result, host_id)?)).await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            app.pool.release();
            return Err(e);
        }
    };
    let (stored, duplicate) = match outcome {
        InsertOutcome::Inserted(stored) => {
            app.pool.submit(stored.result.job_id);
            app.metrics.results_accepted.inc();
            app.metrics.queue_depth.set(app.pool.depth() as i64);
            tracing::info!(job_id = %stored.result.job_id.short(), "result accepted");
            (stored, false)
        }
        InsertOutcome::Duplicate(stored) => {
            app.pool.release();
            (stored, true)
        }
        InsertOutcome::Conflict(stored) => {
            app.pool.release();
            return Err(conflict(&app, &stored));
        }
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(accepted_body(&stored, duplicate)),
    )
        .into_response())
}

/// On a node that submits to a marketplace, a result for another chain or
/// marketplace is refused when it arrives: its proof binds both, so the
/// contract would refuse every checkpoint of it, and nothing could pay it.
fn check_chain(app: &App, result: &InferenceResult) -> Result<(), ApiError> {
    let Some((chain_id, marketplace)) = app.checkpoints.chain_target() else {
        return Ok(());
    };
    let refuse = |code: ErrorCode, message: String| {
        app.metrics
            .results_rejected
            .with_label_values(&[code.as_str()])
            .inc();
        Err(ApiError::new(code, message))
    };
    if result.chain_id != chain_id {
        return refuse(
            ErrorCode::WrongChain,
            format!(
                "chain_id {} is not the chain this node submits checkpoints to (chain {chain_id}, --rpc-url): \
                 the contract there could never pay for this result; send it to a node serving chain {}",
                result.chain_id, result.chain_id
            ),
        );
    }
    if result.marketplace != Address::from(marketplace) {
        return refuse(
            ErrorCode::WrongMarketplace,
            format!(
                "marketplace {} is not the marketplace this node submits checkpoints to ({}, --marketplace): \
                 that contract could never pay for this result; send it to a node serving that marketplace",
                result.marketplace,
                Address::from(marketplace)
            ),
        );
    }
    Ok(())
}

/// The 202 body for a stored result.
fn accepted_body(stored: &StoredResult, duplicate: bool) -> Value {
    json!({
        "job_id": stored.result.job_id.to_string(),
        "job_id_decimal": stored.result.job_id.to_decimal(),
        "state": stored.state,
        "duplicate": duplicate,
        "host_id": stored.host_id.to_string(),
    })
}

/// The 409 for a job stored with other content.
fn conflict(app: &App, stored: &StoredResult) -> ApiError {
    app.metrics
        .results_rejected
        .with_label_values(&["conflict"])
        .inc();
    ApiError::new(
        ErrorCode::JobConflict,
        format!(
            "job {} is already stored with different content; nothing was changed",
            stored.result.job_id.short()
        ),
    )
}

/// A job's state and, once proved, its proof.
pub async fn get_proof(
    State(app): State<Arc<App>>,
    JobPath(job): JobPath,
) -> Result<Json<Value>, ApiError> {
    let store = app.store.clone();
    let (stored, proof) = blocking(move || Ok((store.result(&job)?, store.proof(&job)?))).await?;
    let stored = stored.ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownJob,
            format!("no result for job {}", job.short()),
        )
    })?;
    let mut body = json!({
        "job_id": job.to_string(),
        "state": stored.state,
        "attempts": stored.attempts,
        "host_id": stored.host_id.to_string(),
        "tokens_used": stored.tokens_used,
        "created_at_ms": stored.created_at_ms,
        "updated_at_ms": stored.updated_at_ms,
    });
    if let Some(failure) = &stored.failure {
        body["failure"] = json!(failure);
    }
    if let (JobState::Proved, Some(proof)) = (stored.state, proof) {
        body["mock"] = json!(proof.mock);
        body["prove_ms"] = json!(proof.prove_ms);
        body["proof_sha256"] = json!(proof.proof_sha256.to_string());
        if proof.mock {
            body["proof"] =
                json!({ "mock": true, "bytes": format!("0x{}", hex::encode(&proof.envelope)) });
        } else {
            let envelope = ProofEnvelope::from_bytes(&proof.envelope).map_err(|e| {
                ApiError::internal(format!(
                    "stored proof for job {} is unreadable: {e}",
                    job.short()
                ))
            })?;
            body["public_inputs"] = json!(envelope.instance);
            body["proof"] = serde_json::from_str(&envelope.to_json()).unwrap_or(Value::Null);
        }
    }
    Ok(Json(body))
}

/// `POST /v1/verify` body. `result` and `proof` are kept as JSON values and
/// handed to the library's strict parsers (the whole body was already
/// checked for repeated keys). With `batch` (a batch proof's `0x` hex form)
/// instead of `proof`, the result's checkpoint at `tokens` (default: its
/// `tokens_used`) is checked inside the batch.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    result: Value,
    /// `None` when absent; `Some(Value::Null)` for `"proof": null`.
    #[serde(default, deserialize_with = "present")]
    proof: Option<Value>,
    #[serde(default)]
    batch: Option<String>,
    #[serde(default)]
    tokens: Option<u64>,
    #[serde(default)]
    host_id: Option<String>,
}

/// A field that is present, whatever its value (`null` included).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Verifies a proof against a result the caller holds (stateless).
pub async fn post_verify(
    State(app): State<Arc<App>>,
    JsonBody(request): JsonBody<VerifyRequest>,
) -> Result<Json<Value>, ApiError> {
    let result = InferenceResult::from_json(request.result.to_string().as_bytes())
        .map_err(|e| ApiError::new(ErrorCode::InvalidResult, e.to_string()))?;
    if let Some(batch) = request.batch {
        if request.proof.is_some() {
            return Err(ApiError::new(
                ErrorCode::InvalidJson,
                "give either \"proof\" (a single proof) or \"batch\" (a batch proof), not both",
            ));
        }
        return verify_in_batch(app, result, &batch, request.tokens, request.host_id).await;
    }
    if request.tokens.is_some() {
        return Err(ApiError::new(
            ErrorCode::InvalidJson,
            "\"tokens\" names a checkpoint inside a batch: it goes with \"batch\", not with \"proof\"",
        ));
    }
    let Some(proof) = request.proof else {
        return Err(ApiError::new(
            ErrorCode::InvalidJson,
            "missing field `proof` (or `batch`, for a checkpoint inside a batch proof)",
        ));
    };
    if proof.is_null() {
        return Err(ApiError::new(
            ErrorCode::MalformedProof,
            "proof is null: the job has no proof yet; GET /v1/proofs/{job_id} gives `proof` once its state is proved",
        ));
    }
    let envelope = ProofEnvelope::from_json(proof.to_string().as_bytes())
        .map_err(|e| ApiError::new(ErrorCode::MalformedProof, e.to_string()))?;
    let job_id = result.job_id;
    let host_id = match request.host_id {
        Some(s) => {
            HostId::parse(&s).map_err(|e| ApiError::new(ErrorCode::InvalidHostId, e.to_string()))?
        }
        None => app.keys.current().host_key.host_id(),
    };
    let Some(vk) = app.keys.verifier(&envelope.vk_id) else {
        app.metrics
            .verifications
            .with_label_values(&["unknown_verifying_key"])
            .inc();
        return Ok(Json(json!({
            "valid": false,
            "reason": format!("the proof was made for verifying key {}, which this node does not hold", envelope.vk_id),
            "reason_code": "unknown_verifying_key",
        })));
    };
    let metrics = app.metrics.clone();
    let pool = app.pools.verify();
    let outcome = blocking(move || {
        let started = std::time::Instant::now();
        // The public inputs of the proof's own circuit version (a version 1
        // proof binds no token count).
        let expected = result.statement(host_id).instance_for(envelope.version());
        let outcome = pool.install(|| envelope.verify(&vk, &expected));
        metrics
            .verify_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(outcome)
    })
    .await?;
    let (body, label) = match outcome {
        Ok(()) => (json!({ "valid": true }), "valid"),
        Err(e) => {
            let code = crate::reasons::verify_reason_code(&e);
            (
                json!({ "valid": false, "reason": e.to_string(), "reason_code": code }),
                code,
            )
        }
    };
    if label == "valid" {
        tracing::info!(job_id = %job_id.short(), host_id = %host_id, "proof verified");
    } else {
        tracing::warn!(job_id = %job_id.short(), host_id = %host_id, reason = %label, "proof rejected");
    }
    app.metrics.verifications.with_label_values(&[label]).inc();
    Ok(Json(body))
}

/// Why a checkpoint inside a batch is not confirmed.
enum Refusal {
    /// A check of `fabstir_zk::batch::check` failed.
    Check(EntryError),
    /// No batch verifying key of the proof's size (the SRS is too small).
    NoKey(String),
}

/// `POST /v1/verify` with `batch`: the result's checkpoint at `tokens`
/// inside a batch proof, under the batch verifying key of the proof's size
/// ([`crate::keys::KeyManager::batch_verifier`], derived on first use).
/// Bytes that do not parse are a 400 `malformed_proof`; every failed check
/// is a 200 with `valid: false` and its reason code
/// ([`crate::reasons::batch_reason_code`]).
async fn verify_in_batch(
    app: Arc<App>,
    result: InferenceResult,
    batch: &str,
    tokens: Option<u64>,
    host_id: Option<String>,
) -> Result<Json<Value>, ApiError> {
    let proof = BatchProof::from_hex(batch)
        .map_err(|e| ApiError::new(ErrorCode::MalformedProof, format!("batch: {e}")))?;
    let host_id = match host_id {
        Some(s) => {
            HostId::parse(&s).map_err(|e| ApiError::new(ErrorCode::InvalidHostId, e.to_string()))?
        }
        None => app.keys.current().host_key.host_id(),
    };
    let tokens = tokens.unwrap_or(result.tokens_used);
    let job_id = result.job_id;
    let size = proof.size;
    let keys = app.keys.clone();
    let metrics = app.metrics.clone();
    let pool = app.pools.verify();
    let outcome = blocking(move || {
        let vk = match keys.batch_verifier(size) {
            Ok(vk) => vk,
            // This node's SRS cannot give the key of this size.
            Err(e @ fabstir_zk::KeyError::BatchSrs { .. }) => {
                return Ok(Err(Refusal::NoKey(e.to_string())))
            }
            Err(e) => return Err(ApiError::internal(format!("batch verifying key: {e}"))),
        };
        let started = std::time::Instant::now();
        let outcome =
            pool.install(|| fabstir_zk::check_result(&proof, &vk, &result, host_id, tokens));
        metrics
            .verify_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(outcome.map_err(Refusal::Check))
    })
    .await?;
    let (body, label) = match outcome {
        Ok(found) => (
            json!({ "valid": true, "entry": found.entry, "entries": found.entries, "batch_size": found.size }),
            "valid",
        ),
        Err(Refusal::Check(EntryError::Malformed(e))) => {
            return Err(ApiError::new(
                ErrorCode::MalformedProof,
                format!("batch: {e}"),
            ))
        }
        Err(Refusal::NoKey(reason)) => (
            json!({ "valid": false, "reason": reason, "reason_code": "unsupported_batch_size", "batch_size": size.get() }),
            "unsupported_batch_size",
        ),
        Err(Refusal::Check(e)) => {
            let code = crate::reasons::batch_reason_code(&e);
            (
                json!({ "valid": false, "reason": e.to_string(), "reason_code": code, "batch_size": size.get() }),
                code,
            )
        }
    };
    if label == "valid" {
        tracing::info!(job_id = %job_id.short(), host_id = %host_id, batch_size = size.get(), "checkpoint verified in a batch");
    } else {
        tracing::warn!(job_id = %job_id.short(), host_id = %host_id, batch_size = size.get(), reason = %label, "checkpoint in a batch rejected");
    }
    app.metrics.verifications.with_label_values(&[label]).inc();
    Ok(Json(body))
}
