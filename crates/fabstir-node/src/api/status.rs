//! `GET /health`, `GET /health/ezkl`, `GET /metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::{blocking, App};
use crate::config::Backend;
use crate::health::Status;

/// Every health check, the job counts and peak memory: 200 when `ok` or
/// `degraded`, 503 when `failing`. Counts that cannot be read are `null`
/// (with `stats_error`); the checks are reported all the same.
pub async fn health(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    // The counts come from the database; when it is damaged they may not
    // be readable, and the checks must still be reported.
    let store = app.store.clone();
    let stats = blocking(move || Ok(store.stats())).await?;
    let (stats, stats_error) = match stats {
        Ok(stats) => (json!(stats), Value::Null),
        Err(e) => (Value::Null, json!(e.to_string())),
    };
    let mut chain = app.checkpoints.chain_description();
    if chain["kind"] == "evm" {
        // The outbox table of verified submissions: counts by state and the age
        // of the oldest one not confirmed or failed yet, and the batch
        // transactions by state (null if unreadable).
        let store = app.store.clone();
        let outbox = blocking(move || {
            Ok(store.read(|tx| {
                let mut summary = crate::store::outbox::summary(tx)?;
                let batches: serde_json::Map<String, Value> =
                    crate::store::batches::count_by_state(tx)?
                        .into_iter()
                        .map(|(state, n)| (state.name().to_string(), n.into()))
                        .collect();
                summary["batches"] = batches.into();
                Ok(summary)
            }))
        })
        .await?;
        chain["outbox"] = outbox.unwrap_or(Value::Null);
    }
    let report = app.health.report(app.pool.depth(), app.pool.capacity());
    let status = if report.status == Status::Failing {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let mut checks = json!({
        "database": report.database,
        "keys": report.keys,
        "key_reload": report.key_reload,
        "prover_queue": report.prover_queue,
    });
    if let Some(check) = &report.chain_host_id {
        checks["chain_host_id"] = json!(check);
    }
    let body = json!({
        "status": report.status,
        "checks": checks,
        "stats": stats,
        "stats_error": stats_error,
        "chain": chain,
        "peak_rss_kib": crate::metrics::peak_rss_kib(),
    });
    Ok((status, Json(body)).into_response())
}

/// Prover, keys and queue status.
pub async fn health_ezkl(State(app): State<Arc<App>>) -> Json<Value> {
    let keys = app.keys.current();
    let real = app.generator.backend() == Backend::Real;
    let report = app.health.report(app.pool.depth(), app.pool.capacity());
    Json(json!({
        "status": report.status,
        "backend": app.generator.backend(),
        "real_proofs": real,
        "keys_loaded": report.keys_loaded(),
        "keys": report.keys,
        "key_reload": report.key_reload,
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
        "thread_layout": app.pools.layout(),
        "cores": crate::threads::ThreadLayout::cores(),
    }))
}

/// The Prometheus text format.
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    app.metrics.queue_depth.set(app.pool.depth() as i64);
    app.health
        .publish_queue(app.pool.depth(), app.pool.capacity());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}
