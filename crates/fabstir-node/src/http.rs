//! The HTTP API (JSON). Documented in `docs/API.md` and `docs/openapi.yaml`.
//!
//! Every error is `{"error": {"code": "...", "message": "..."}}` with a
//! fitting status; bodies over the configured limit are refused with 413.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fabstir_zk::{
    Address, Digest32, HostId, InferenceResult, JobId, ModelRef, ProofEnvelope, VerifyError,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::{Backend, Config};
use crate::keys::KeyManager;
use crate::metrics::Metrics;
use crate::prover::{ProofGenerator, ProverPool};
use crate::settlement::{SettleError, SettlementValidator};
use crate::store::{InsertOutcome, JobState, Store, StoreError};

/// Shared state of the service.
pub struct App {
    pub config: Config,
    pub store: Arc<Store>,
    pub keys: Arc<KeyManager>,
    pub generator: Arc<ProofGenerator>,
    pub pool: Arc<ProverPool>,
    pub validator: Arc<SettlementValidator>,
    pub metrics: Arc<Metrics>,
    pub checkpoints: Arc<crate::checkpoint::Checkpoints>,
}

/// An API error.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage error");
        Self::internal(e.to_string())
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal(format!("worker task failed: {e}"))
    }
}

/// A JSON body parsed with our error format (and the body-size limit).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes =
            Bytes::from_request(req, state)
                .await
                .map_err(|rejection: BytesRejection| {
                    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "body_too_large",
                            "request body exceeds the size limit",
                        )
                    } else {
                        ApiError::bad_request("unreadable_body", rejection.body_text())
                    }
                })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))
    }
}

/// Runs blocking work (database, proving, verification) off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await?
}

fn parse_job_id(s: &str) -> Result<JobId, ApiError> {
    JobId::parse(s).map_err(|e| ApiError::bad_request("invalid_job_id", e.to_string()))
}

/// The router with every route.
pub fn router(app: Arc<App>) -> Router {
    let limit = app.config.max_body_bytes;
    Router::new()
        .route("/v1/results", post(post_result))
        .route("/v1/proofs/{job_id}", get(get_proof))
        .route("/v1/verify", post(post_verify))
        .route("/v1/checkpoints", post(crate::checkpoint::post_checkpoint))
        .route(
            "/v1/checkpoints/{job_id}",
            get(crate::checkpoint::get_checkpoints),
        )
        .route("/v1/settlements/validate", post(post_validate_many))
        .route(
            "/v1/settlements/{job_id}",
            post(post_settlement).get(get_settlement),
        )
        .route("/v1/admin/keys/reload", post(post_reload_keys))
        .route("/health", get(health))
        .route("/health/ezkl", get(health_ezkl))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(app)
}

/// `POST /v1/results` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultRequest {
    job_id: JobId,
    chain_id: u64,
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
    fn into_result(self) -> Result<(InferenceResult, u64), ApiError> {
        let model = ModelRef::from_parts(self.model, self.model_hash)
            .map_err(|e| ApiError::bad_request("invalid_result", e.to_string()))?;
        Ok((
            InferenceResult {
                job_id: self.job_id,
                chain_id: self.chain_id,
                marketplace: self.marketplace,
                model,
                prompt: self.prompt,
                response: self.response,
            },
            self.tokens_used,
        ))
    }
}

async fn post_result(
    State(app): State<Arc<App>>,
    JsonBody(request): JsonBody<ResultRequest>,
) -> Result<Response, ApiError> {
    let (result, tokens) = request.into_result()?;
    // Without a place in the queue, a job that is already stored still gets
    // its idempotent answer (duplicate or conflict); only new jobs get 503.
    let reserved = app.pool.reserve().is_ok();
    if !reserved {
        let store = app.store.clone();
        let job = result.job_id;
        let hash = crate::store::content_hash(&result, tokens);
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
        let mut error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_full",
            format!(
                "the prover queue is full ({} results); retry later",
                app.pool.capacity()
            ),
        );
        error.retry_after = Some(1);
        return Err(error);
    }
    let host_id = app.keys.current().host_key.host_id();
    let store = app.store.clone();
    let outcome = blocking(move || Ok(store.insert_result(&result, tokens, host_id)?)).await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            app.pool.release();
            return Err(e);
        }
    };
    let (status, stored, duplicate) = match outcome {
        InsertOutcome::Inserted(stored) => {
            app.pool.submit(stored.result.job_id);
            app.metrics.results_accepted.inc();
            app.metrics.queue_depth.set(app.pool.depth() as i64);
            tracing::info!(job_id = %stored.result.job_id, "result accepted");
            (StatusCode::ACCEPTED, stored, false)
        }
        InsertOutcome::Duplicate(stored) => {
            app.pool.release();
            (StatusCode::ACCEPTED, stored, true)
        }
        InsertOutcome::Conflict(stored) => {
            app.pool.release();
            return Err(conflict(&app, &stored));
        }
    };
    let body = accepted_body(&stored, duplicate);
    Ok((status, Json(body)).into_response())
}

/// The 202 body for a stored result.
fn accepted_body(stored: &crate::store::StoredResult, duplicate: bool) -> Value {
    json!({
        "job_id": stored.result.job_id.to_string(),
        "job_id_decimal": stored.result.job_id.to_decimal(),
        "state": stored.state,
        "duplicate": duplicate,
        "host_id": stored.host_id.to_string(),
    })
}

/// The 409 for a job stored with other content.
fn conflict(app: &App, stored: &crate::store::StoredResult) -> ApiError {
    app.metrics
        .results_rejected
        .with_label_values(&["conflict"])
        .inc();
    ApiError::new(
        StatusCode::CONFLICT,
        "job_conflict",
        format!(
            "job {} is already stored with different content; nothing was changed",
            stored.result.job_id
        ),
    )
}

async fn get_proof(
    State(app): State<Arc<App>>,
    Path(job_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = parse_job_id(&job_id)?;
    let store = app.store.clone();
    let (stored, proof) = blocking(move || Ok((store.result(&job)?, store.proof(&job)?))).await?;
    let stored = stored.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_job",
            format!("no result for job {job}"),
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
                ApiError::internal(format!("stored proof for job {job} is unreadable: {e}"))
            })?;
            body["public_inputs"] = json!(envelope.instance);
            body["proof"] = serde_json::from_str(&envelope.to_json()).unwrap_or(Value::Null);
        }
    }
    Ok(Json(body))
}

/// `POST /v1/verify` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    result: Value,
    proof: Value,
    #[serde(default)]
    host_id: Option<String>,
}

async fn post_verify(
    State(app): State<Arc<App>>,
    JsonBody(request): JsonBody<VerifyRequest>,
) -> Result<Json<Value>, ApiError> {
    let result = InferenceResult::from_json(request.result.to_string().as_bytes())
        .map_err(|e| ApiError::bad_request("invalid_result", e.to_string()))?;
    let envelope = ProofEnvelope::from_json(request.proof.to_string().as_bytes())
        .map_err(|e| ApiError::bad_request("malformed_proof", e.to_string()))?;
    let job_id = result.job_id;
    let host_id = match request.host_id {
        Some(s) => HostId::parse(&s)
            .map_err(|e| ApiError::bad_request("invalid_host_id", e.to_string()))?,
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
    let outcome = blocking(move || {
        let started = std::time::Instant::now();
        let outcome = envelope.verify(&vk, &result.statement(host_id).instance());
        metrics
            .verify_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(outcome)
    })
    .await?;
    let body = match outcome {
        Ok(()) => json!({ "valid": true }),
        Err(e) => {
            json!({ "valid": false, "reason": e.to_string(), "reason_code": verify_reason_code(&e) })
        }
    };
    let label = body
        .get("reason_code")
        .and_then(Value::as_str)
        .unwrap_or("valid")
        .to_string();
    if label == "valid" {
        tracing::info!(job_id = %job_id, host_id = %host_id, "proof verified");
    } else {
        tracing::warn!(job_id = %job_id, host_id = %host_id, reason = %label, "proof rejected");
    }
    app.metrics
        .verifications
        .with_label_values(&[label.as_str()])
        .inc();
    Ok(Json(body))
}

/// Stable codes for verification failures.
pub fn verify_reason_code(e: &VerifyError) -> &'static str {
    match e {
        VerifyError::Malformed(_) => "malformed_proof",
        VerifyError::UnknownVerifyingKey { .. } => "unknown_verifying_key",
        VerifyError::InstanceMismatch { field: "host_id" } => "wrong_host",
        VerifyError::InstanceMismatch { field: "chain_id" } => "wrong_chain",
        VerifyError::InstanceMismatch {
            field: "marketplace",
        } => "wrong_marketplace",
        VerifyError::InstanceMismatch { field: "job_id" } => "wrong_job",
        VerifyError::InstanceMismatch { .. } => "commitment_mismatch",
        VerifyError::Invalid => "invalid_proof",
    }
}

async fn post_settlement(
    State(app): State<Arc<App>>,
    Path(job_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = parse_job_id(&job_id)?;
    let validator = app.validator.clone();
    let settlement = blocking(move || {
        validator.settle(&job).map_err(|e| match e {
            SettleError::NotReady { .. } => {
                ApiError::new(StatusCode::CONFLICT, "not_ready", e.to_string())
            }
            SettleError::UnknownJob(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_job", e.to_string())
            }
            SettleError::Store(e) => ApiError::from(e),
        })
    })
    .await?;
    Ok(Json(json!(settlement)))
}

async fn get_settlement(
    State(app): State<Arc<App>>,
    Path(job_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = parse_job_id(&job_id)?;
    let validator = app.validator.clone();
    let settlement = blocking(move || Ok(validator.settlement(&job)?)).await?;
    settlement.map(|s| Json(json!(s))).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_settled",
            format!("job {job} has no settlement"),
        )
    })
}

/// `POST /v1/settlements/validate` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateRequest {
    job_ids: Vec<String>,
}

/// Most jobs validated in one request.
const MAX_BATCH_VALIDATION: usize = 10_000;

async fn post_validate_many(
    State(app): State<Arc<App>>,
    JsonBody(request): JsonBody<ValidateRequest>,
) -> Result<Json<Value>, ApiError> {
    if request.job_ids.len() > MAX_BATCH_VALIDATION {
        return Err(ApiError::bad_request(
            "batch_too_large",
            format!("at most {MAX_BATCH_VALIDATION} jobs per request"),
        ));
    }
    let jobs = request
        .job_ids
        .iter()
        .map(|s| parse_job_id(s))
        .collect::<Result<Vec<_>, _>>()?;
    let validator = app.validator.clone();
    let validations = blocking(move || Ok(validator.validate_many(&jobs)?)).await?;
    let passed = validations.iter().filter(|v| v.passed).count();
    Ok(Json(
        json!({ "passed": passed, "failed": validations.len() - passed, "validations": validations }),
    ))
}

async fn post_reload_keys(State(app): State<Arc<App>>) -> Result<Json<Value>, ApiError> {
    let keys = app.keys.clone();
    let production = app.config.production;
    let metrics = app.metrics.clone();
    let id = blocking(move || {
        keys.reload(production).map_err(|e| {
            metrics.key_load_failures.inc();
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "key_reload_failed",
                e.to_string(),
            )
        })
    })
    .await?;
    tracing::info!(vk_id = %id, "keys reloaded");
    Ok(Json(
        json!({ "vk_id": id.to_string(), "verifying_keys": app.keys.verifier_ids().iter().map(|i| i.to_string()).collect::<Vec<_>>() }),
    ))
}

async fn health(State(app): State<Arc<App>>) -> Result<Json<Value>, ApiError> {
    let store = app.store.clone();
    let stats = blocking(move || Ok(store.stats()?)).await?;
    Ok(Json(
        json!({ "status": "ok", "stats": stats, "peak_rss_kib": crate::metrics::peak_rss_kib() }),
    ))
}

async fn health_ezkl(State(app): State<Arc<App>>) -> Json<Value> {
    let keys = app.keys.current();
    let real = app.generator.backend() == Backend::Real;
    Json(json!({
        "status": "ok",
        "backend": app.generator.backend(),
        "real_proofs": real,
        "keys_loaded": true,
        "vk_id": keys.manifest.vk_id.to_string(),
        "host_id": keys.manifest.host_id.to_string(),
        "srs_trust": keys.manifest.srs.trust.to_string(),
        "srs_insecure": keys.manifest.srs.trust == fabstir_zk::SrsTrust::InsecureDev,
        "production": app.config.production,
        "queue_depth": app.pool.depth(),
        "queue_capacity": app.pool.capacity(),
        "last_proof_ms": app.pool.last_proof_ms(),
        "proof_cache_entries": app.generator.cache_len(),
        "verifying_keys": app.keys.verifier_ids().iter().map(|i| i.to_string()).collect::<Vec<_>>(),
    }))
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    app.metrics.queue_depth.set(app.pool.depth() as i64);
    app.metrics.keys_loaded.set(1);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}
