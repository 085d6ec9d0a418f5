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
use crate::store::{outbox, Checkpoint};

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
    let mut list = with_onchain(&app, vec![checkpoint]).await?;
    Ok((status, Json(list.pop().unwrap_or(Value::Null))))
}

/// The checkpoints as JSON; on a node that submits to a marketplace each
/// gets `onchain`, its verified submission as the outbox table has it (`null`
/// when it has none: refused before it was queued).
async fn with_onchain(app: &App, list: Vec<Checkpoint>) -> Result<Vec<Value>, ApiError> {
    if app.checkpoints.chain_target().is_none() {
        return Ok(list.iter().map(|c| json!(c)).collect());
    }
    let store = app.store.clone();
    blocking(move || {
        Ok(store.read(|tx| {
            list.iter()
                .map(|checkpoint| {
                    let mut value = json!(checkpoint);
                    value["onchain"] = outbox::by_checkpoint(tx, checkpoint.id)?
                        .map(|entry| outbox::onchain_view(&entry))
                        .unwrap_or(Value::Null);
                    Ok(value)
                })
                .collect::<Result<Vec<_>, _>>()
        })?)
    })
    .await
}

/// The job's checkpoints, oldest first.
pub async fn get_checkpoints(
    State(app): State<Arc<App>>,
    JobPath(job): JobPath,
) -> Result<Json<Value>, ApiError> {
    let checkpoints = app.checkpoints.clone();
    let list = blocking(move || Ok(checkpoints.list(&job)?)).await?;
    let list = with_onchain(&app, list).await?;
    Ok(Json(
        json!({ "job_id": job.to_string(), "checkpoints": list }),
    ))
}
