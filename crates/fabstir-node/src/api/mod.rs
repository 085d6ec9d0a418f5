//! The HTTP API (JSON), documented in `docs/API.md` and `docs/openapi.yaml`.
//!
//! One file per group of routes: [`results`] (submit, proofs, verify),
//! [`checkpoints`], [`settlements`], [`admin`], [`status`] (health and
//! metrics). [`error`] holds every error code and the one mapping from domain
//! errors to statuses; [`extract`] the strict request parsers; [`guard`] the
//! Host/Origin/Content-Type checks and the bearer token; [`wire`] the JSON
//! body of the errors the HTTP server answers itself. Handlers only parse,
//! call the domain modules off the async runtime, and shape the answer.

pub mod admin;
pub mod checkpoints;
pub mod error;
pub mod extract;
pub mod guard;
pub mod results;
pub mod settlements;
pub mod status;
pub mod wire;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use axum::Router;

pub use error::{ApiError, ErrorCode};

use crate::checkpoint::Checkpoints;
use crate::config::Config;
use crate::health::Health;
use crate::keys::KeyManager;
use crate::metrics::Metrics;
use crate::prover::{ProofGenerator, ProverPool};
use crate::settlement::SettlementValidator;
use crate::store::Store;
use crate::threads::Pools;
use guard::Access;

/// Shared state of the service.
pub struct App {
    pub config: Config,
    pub store: Arc<Store>,
    pub keys: Arc<KeyManager>,
    pub generator: Arc<ProofGenerator>,
    pub pool: Arc<ProverPool>,
    pub validator: Arc<SettlementValidator>,
    pub metrics: Arc<Metrics>,
    pub checkpoints: Arc<Checkpoints>,
    pub health: Arc<Health>,
    pub access: Arc<Access>,
    pub pools: Arc<Pools>,
}

/// Runs blocking work (database, proving, verification) off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await?
}

/// The router with every route and the request checks of [`guard`].
pub fn router(app: Arc<App>) -> Router {
    let limit = app.config.max_body_bytes;
    let access = app.access.clone();
    let token = from_fn_with_state(access.clone(), guard::require_token);
    let token_in_production =
        from_fn_with_state(access.clone(), guard::require_token_in_production);
    Router::new()
        .route(
            "/v1/results",
            post(results::post_result).route_layer(token_in_production.clone()),
        )
        .route("/v1/proofs/{job_id}", get(results::get_proof))
        .route("/v1/verify", post(results::post_verify))
        .route(
            "/v1/checkpoints",
            post(checkpoints::post_checkpoint).route_layer(token_in_production.clone()),
        )
        .route(
            "/v1/checkpoints/{job_id}",
            get(checkpoints::get_checkpoints),
        )
        .route("/v1/batches/{id}", get(checkpoints::get_batch))
        .route(
            "/v1/settlements/validate",
            post(settlements::post_validate_many),
        )
        .route(
            "/v1/settlements/{job_id}",
            post(settlements::post_settlement)
                .route_layer(token_in_production)
                .get(settlements::get_settlement),
        )
        .route(
            "/v1/admin/keys/reload",
            post(admin::post_reload_keys).route_layer(token),
        )
        .route("/health", get(status::health))
        .route("/health/ezkl", get(status::health_ezkl))
        .route("/metrics", get(status::metrics))
        .route_layer(from_fn(guard::require_json))
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(from_fn_with_state(access, guard::check_request))
        .layer(from_fn(guard::json_errors))
        .with_state(app)
}
