//! `POST /v1/admin/keys/reload` (bearer token required).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::NoBody;
use super::{blocking, App};

/// Reloads the key directory after a rotation; the old keys stay in use if
/// the new ones do not load.
pub async fn post_reload_keys(
    State(app): State<Arc<App>>,
    _: NoBody,
) -> Result<Json<Value>, ApiError> {
    let keys = app.keys.clone();
    let health = app.health.clone();
    let production = app.config.production;
    let id = blocking(move || Ok(health.record_reload(keys.reload(production))?)).await?;
    tracing::info!(vk_id = %id, "keys reloaded");
    Ok(Json(
        json!({ "vk_id": id.to_string(), "verifying_keys": app.keys.verifier_ids().iter().map(|i| i.to_string()).collect::<Vec<_>>() }),
    ))
}
