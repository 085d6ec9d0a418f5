//! `POST /v1/checkpoints`, `GET /v1/checkpoints/{job_id}`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use fabstir_zk::{Digest32, JobId};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{JobPath, JsonBody};
use super::{blocking, App};

/// `POST /v1/checkpoints` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointRequest {
    job_id: JobId,
    /// The job's cumulative token count at this checkpoint.
    tokens_processed: u64,
    #[serde(default)]
    model_id: Option<Digest32>,
    #[serde(default)]
    delta_cid: Option<String>,
}

/// Records and submits a proof-of-work checkpoint that claims the tokens
/// processed since the job's last checkpoint (201 new, 200 repeated).
pub async fn post_checkpoint(
    State(app): State<Arc<App>>,
    JsonBody(request): JsonBody<CheckpointRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let checkpoints = app.checkpoints.clone();
    let (checkpoint, created) = blocking(move || {
        Ok(checkpoints.submit(
            &request.job_id,
            request.tokens_processed,
            request.model_id.map(|d| d.0),
            request.delta_cid.as_deref().unwrap_or(""),
        )?)
    })
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(checkpoint))))
}

/// The job's checkpoints, oldest first.
pub async fn get_checkpoints(
    State(app): State<Arc<App>>,
    JobPath(job): JobPath,
) -> Result<Json<Value>, ApiError> {
    let checkpoints = app.checkpoints.clone();
    let list = blocking(move || Ok(checkpoints.list(&job)?)).await?;
    Ok(Json(
        json!({ "job_id": job.to_string(), "checkpoints": list }),
    ))
}
