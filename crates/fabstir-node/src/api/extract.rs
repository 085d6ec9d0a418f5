//! Request extractors that answer with our JSON errors: strict JSON bodies
//! (size-limited, no repeated keys, no unknown fields), routes without a
//! body, and job ids in paths.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use fabstir_zk::JobId;
use serde::de::DeserializeOwned;

use super::error::{ApiError, ErrorCode};

/// Reads the body (within the router's size limit).
async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state)
        .await
        .map_err(|rejection: BytesRejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::BodyTooLarge,
                    "request body exceeds the size limit (max_body_bytes)",
                )
            } else {
                ApiError::new(ErrorCode::UnreadableBody, rejection.body_text())
            }
        })
}

/// Parses a JSON request body strictly: a key repeated at any depth is
/// refused before anything is deserialized (see [`fabstir_zk::json`]).
/// A value that does not fit is named by its path (`$.job_id: ...`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    fabstir_zk::json::from_slice(bytes)
        .map_err(|e| ApiError::new(ErrorCode::InvalidJson, e.to_string()))
}

/// A JSON body, parsed with [`parse_json`].
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// The body of a route that takes none: empty, or an empty JSON object.
pub struct NoBody;

impl<S: Send + Sync> FromRequest<S> for NoBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(NoBody);
        }
        let value: serde_json::Map<String, serde_json::Value> = parse_json(&bytes)?;
        if value.is_empty() {
            Ok(NoBody)
        } else {
            let fields: Vec<&str> = value.keys().map(String::as_str).collect();
            Err(ApiError::new(
                ErrorCode::InvalidJson,
                format!("this route takes no body (send nothing or {{}}); unexpected fields: {fields:?}"),
            ))
        }
    }
}

/// The `{job_id}` of a path: decimal or `0x` hex uint256.
pub struct JobPath(pub JobId);

impl<S: Send + Sync> FromRequestParts<S> for JobPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| {
                ApiError::new(
                    ErrorCode::InvalidJobId,
                    format!(
                        "the job id in the path is not a valid percent-encoded string: {}",
                        rejection.body_text()
                    ),
                )
            })?;
        parse_job_id(&raw).map(JobPath)
    }
}

/// Parses a job id given as a string (path or `job_ids`).
pub fn parse_job_id(s: &str) -> Result<JobId, ApiError> {
    JobId::parse(s).map_err(|e| ApiError::new(ErrorCode::InvalidJobId, e.to_string()))
}
