//! `POST /v1/settlements/{job_id}`, `GET /v1/settlements/{job_id}`,
//! `POST /v1/settlements/validate`.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, ErrorCode};
use super::extract::{parse_job_id, JobPath, JsonBody, NoBody};
use super::{blocking, App};

/// Validates and settles a job, at most once; pays what checkpoints have not claimed.
pub async fn post_settlement(
    State(app): State<Arc<App>>,
    JobPath(job): JobPath,
    _: NoBody,
) -> Result<Json<Value>, ApiError> {
    let validator = app.validator.clone();
    let settlement = blocking(move || Ok(validator.settle(&job)?)).await?;
    Ok(Json(json!(settlement)))
}

/// The settlement of a job.
pub async fn get_settlement(
    State(app): State<Arc<App>>,
    JobPath(job): JobPath,
) -> Result<Json<Value>, ApiError> {
    let validator = app.validator.clone();
    let settlement = blocking(move || Ok(validator.settlement(&job)?)).await?;
    settlement.map(|s| Json(json!(s))).ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotSettled,
            format!("job {} has no settlement", job.short()),
        )
    })
}

/// `POST /v1/settlements/validate` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    job_ids: Vec<String>,
}

/// Most jobs validated in one request.
pub const MAX_BATCH_VALIDATION: usize = 10_000;

/// Dry-run validation of many jobs, proofs verified in batches.
pub async fn post_validate_many(
    State(app): State<Arc<App>>,
    JsonBody(request): JsonBody<ValidateRequest>,
) -> Result<Json<Value>, ApiError> {
    if request.job_ids.len() > MAX_BATCH_VALIDATION {
        return Err(ApiError::new(
            ErrorCode::BatchTooLarge,
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
