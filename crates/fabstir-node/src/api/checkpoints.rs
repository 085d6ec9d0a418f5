//! `POST /v1/checkpoints`, `GET /v1/checkpoints/{job_id}`, `GET /v1/batches/{id}`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use fabstir_zk::{Digest32, JobId};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, ErrorCode};
use super::extract::{JobPath, JsonBody};
use super::{blocking, App};
use crate::store::{batches, outbox, Checkpoint};

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

/// A batch transaction of the EVM chain client: its state and transaction,
/// its checkpoints with their outcomes, and its proof (`0x` + the hex of the
/// batch proof's binary form), which a client checks its own checkpoint
/// against.
pub async fn get_batch(
    State(app): State<Arc<App>>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let unknown = || {
        ApiError::new(
            ErrorCode::NotFound,
            format!("no batch {raw:?} on this node"),
        )
    };
    let id: i64 = raw.parse().map_err(|_| unknown())?;
    let store = app.store.clone();
    let view = blocking(move || {
        Ok(store.read(|tx| match batches::find(tx, id)? {
            Some(batch) => batches::view(tx, &batch).map(Some),
            None => Ok(None),
        })?)
    })
    .await?;
    view.map(Json).ok_or_else(unknown)
}
