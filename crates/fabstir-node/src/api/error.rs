//! Every error the API answers with, and the one mapping from each domain
//! error to its status and code.
//!
//! A response error is `{"error": {"code": "...", "message": "..."}}`. The
//! code is an [`ErrorCode`]: each has exactly one HTTP status, fixed here.
//! `docs/API.md` and `docs/openapi.yaml` list the same codes with the same
//! statuses (a test compares them with [`ErrorCode::ALL`]).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::checkpoint::CheckpointError;
use crate::keys::KeysError;
use crate::settlement::SettleError;
use crate::store::StoreError;

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = ($code:literal, $status:ident),)*) => {
        /// A stable, machine-readable error code and its HTTP status.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in documentation order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as it appears in a response.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The HTTP status every response with this code has.
            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)*
                }
            }
        }
    };
}

error_codes! {
    /// The body is not JSON, repeats a key, or a field is missing, unknown,
    /// of the wrong type or malformed.
    InvalidJson = ("invalid_json", BAD_REQUEST),
    /// The body could not be read (e.g. the connection broke mid-body).
    UnreadableBody = ("unreadable_body", BAD_REQUEST),
    /// A job id in the path or in `job_ids` is malformed.
    InvalidJobId = ("invalid_job_id", BAD_REQUEST),
    /// The inference result is inconsistent (model and model_hash, ...).
    InvalidResult = ("invalid_result", BAD_REQUEST),
    /// The proof is not a readable proof envelope.
    MalformedProof = ("malformed_proof", BAD_REQUEST),
    /// `host_id` is not a BN254 scalar in hex.
    InvalidHostId = ("invalid_host_id", BAD_REQUEST),
    /// Too many job ids in one validation request.
    BatchTooLarge = ("batch_too_large", BAD_REQUEST),
    /// A request refused by the HTTP framework before a route saw it, with a
    /// client-error status that has no code of its own (this includes a
    /// request the HTTP server cannot parse at all, see [`super::wire`]).
    BadRequest = ("bad_request", BAD_REQUEST),
    /// The route needs `Authorization: Bearer <token>` and it is missing or wrong.
    Unauthorized = ("unauthorized", UNAUTHORIZED),
    /// The `Host` header names neither the listen address nor a configured name.
    ForbiddenHost = ("forbidden_host", FORBIDDEN),
    /// The `Origin` header names a web origin that is not allowed.
    ForbiddenOrigin = ("forbidden_origin", FORBIDDEN),
    /// No such route.
    NotFound = ("not_found", NOT_FOUND),
    /// No result is stored for the job.
    UnknownJob = ("unknown_job", NOT_FOUND),
    /// The job has no settlement.
    NotSettled = ("not_settled", NOT_FOUND),
    /// The path exists but not with this method.
    MethodNotAllowed = ("method_not_allowed", METHOD_NOT_ALLOWED),
    /// The job is stored with different content.
    JobConflict = ("job_conflict", CONFLICT),
    /// The job has no proof yet.
    NotProved = ("not_proved", CONFLICT),
    /// The job is still queued or proving.
    NotReady = ("not_ready", CONFLICT),
    /// `tokens_processed` is not above the job's last checkpoint.
    TokensNotIncreasing = ("tokens_not_increasing", CONFLICT),
    /// `tokens_processed` is above the result's `tokens_used`.
    TokensExceedUsed = ("tokens_exceed_used", CONFLICT),
    /// The job is settled: nothing more can be claimed for it.
    JobSettled = ("job_settled", CONFLICT),
    /// The chain refuses the checkpoint (the job on the marketplace is
    /// unknown, another host's, completed, already credited that far, or
    /// cannot pay for it); nothing was signed.
    ChainRefused = ("chain_refused", CONFLICT),
    /// The payment gate refuses the job as settlement would (a tampered
    /// row, a mock proof in production, a proof that binds another count or
    /// does not verify); the message names the settlement reason code.
    /// Nothing was signed or sent.
    CheckpointRefused = ("checkpoint_refused", CONFLICT),
    /// The body exceeds the size limit.
    BodyTooLarge = ("body_too_large", PAYLOAD_TOO_LARGE),
    /// The request target is longer than the HTTP server reads (65,534
    /// bytes); answered by the HTTP server before any route (see [`super::wire`]).
    UriTooLong = ("uri_too_long", URI_TOO_LONG),
    /// A `POST` without `Content-Type: application/json`.
    UnsupportedMediaType = ("unsupported_media_type", UNSUPPORTED_MEDIA_TYPE),
    /// A token count the node cannot store (above 2^63 − 1).
    TokensOutOfRange = ("tokens_out_of_range", UNPROCESSABLE_ENTITY),
    /// The result names its model by hash and no `model_id` was given.
    ModelIdRequired = ("model_id_required", UNPROCESSABLE_ENTITY),
    /// With a chain configured: the result names another `chain_id` than
    /// the chain the node submits to, so its proof could never be paid there.
    WrongChain = ("wrong_chain", UNPROCESSABLE_ENTITY),
    /// With a chain configured: the result names another marketplace
    /// contract than the one the node submits to.
    WrongMarketplace = ("wrong_marketplace", UNPROCESSABLE_ENTITY),
    /// The key directory cannot be loaded; the old keys stay in use.
    KeyReloadFailed = ("key_reload_failed", UNPROCESSABLE_ENTITY),
    /// The request head has more header fields (100) or bytes (the HTTP
    /// server's read buffer) than the HTTP server reads; answered before any
    /// route (see [`super::wire`]).
    HeadersTooLarge = ("headers_too_large", REQUEST_HEADER_FIELDS_TOO_LARGE),
    /// Storage failure, unreadable stored row, failed worker task.
    InternalError = ("internal_error", INTERNAL_SERVER_ERROR),
    /// The prover queue is full.
    QueueFull = ("queue_full", SERVICE_UNAVAILABLE),
    /// A fresh proof for a checkpoint could not be made.
    ProveFailed = ("prove_failed", SERVICE_UNAVAILABLE),
}

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    /// The settlement reason code behind a `checkpoint_refused`.
    reason: Option<&'static str>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `code`'s status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reason: None,
            retry_after: None,
        }
    }

    /// Names the settlement reason code behind the error (`reason` in the
    /// body), for clients that act on it.
    pub fn with_reason(mut self, reason: crate::reasons::Reason) -> Self {
        self.reason = Some(reason.code());
        self
    }

    /// Asks the client to retry after `seconds` (`Retry-After`).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// A storage or task failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }

    /// The JSON form of a response the HTTP framework produced itself (a
    /// rejection without our body): the code that fits its status. A status
    /// without a code of its own becomes `bad_request` (400) or
    /// `internal_error` (500), so every code keeps exactly one status.
    pub fn from_status(status: StatusCode, message: String) -> Self {
        let code = ErrorCode::for_status(status);
        let message = if message.trim().is_empty() {
            status
                .canonical_reason()
                .unwrap_or("request refused")
                .to_string()
        } else {
            message
        };
        Self::new(code, message)
    }
}

impl ErrorCode {
    /// The code for a response the HTTP framework or server produced itself
    /// with `status`: the code of that status, else `bad_request` (400) for
    /// a client error and `internal_error` (500) for anything else.
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::BodyTooLarge,
            StatusCode::URI_TOO_LONG => ErrorCode::UriTooLong,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ErrorCode::HeadersTooLarge,
            StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
            s if s.is_client_error() => ErrorCode::BadRequest,
            _ => ErrorCode::InternalError,
        }
    }

    /// The JSON body of an error with this code: `{"error": {"code", "message"}}`.
    pub fn body(self, message: &str) -> serde_json::Value {
        json!({ "error": { "code": self.as_str(), "message": message } })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.code.body(&self.message);
        if let Some(reason) = self.reason {
            body["error"]["reason"] = json!(reason);
        }
        let mut response = (self.code.status(), Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.code == ErrorCode::Unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"fabstir-node\""),
            );
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

impl From<CheckpointError> for ApiError {
    fn from(e: CheckpointError) -> Self {
        if let CheckpointError::Refused(rejection) = &e {
            return Self::new(ErrorCode::CheckpointRefused, e.to_string())
                .with_reason(rejection.reason);
        }
        let code = match &e {
            CheckpointError::UnknownJob(_) => ErrorCode::UnknownJob,
            CheckpointError::NotProved(_) => ErrorCode::NotProved,
            CheckpointError::NotIncreasing { .. } => ErrorCode::TokensNotIncreasing,
            CheckpointError::ExceedsUsed { .. } => ErrorCode::TokensExceedUsed,
            CheckpointError::Settled(_) => ErrorCode::JobSettled,
            CheckpointError::ModelIdRequired => ErrorCode::ModelIdRequired,
            CheckpointError::ChainRefused(_) => ErrorCode::ChainRefused,
            CheckpointError::Prove(_) => ErrorCode::ProveFailed,
            CheckpointError::Refused(_) => ErrorCode::CheckpointRefused,
            CheckpointError::Store(_) => {
                tracing::error!(error = %e, "storage error");
                ErrorCode::InternalError
            }
        };
        Self::new(code, e.to_string())
    }
}

impl From<SettleError> for ApiError {
    fn from(e: SettleError) -> Self {
        match e {
            SettleError::NotReady { .. } => Self::new(ErrorCode::NotReady, e.to_string()),
            SettleError::UnknownJob(_) => Self::new(ErrorCode::UnknownJob, e.to_string()),
            SettleError::Store(e) => e.into(),
        }
    }
}

impl From<KeysError> for ApiError {
    fn from(e: KeysError) -> Self {
        Self::new(ErrorCode::KeyReloadFailed, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_errors() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(
                text.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{text}"
            );
            let status = code.status();
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{text}: {status}"
            );
        }
    }

    #[test]
    fn framework_statuses_map_to_codes_with_that_status() {
        for status in [400u16, 401, 404, 405, 413, 414, 415, 431, 500] {
            let status = StatusCode::from_u16(status).unwrap();
            let error = ApiError::from_status(status, String::new());
            assert_eq!(error.code.status(), status, "{status}");
            assert!(!error.message.is_empty());
            assert_eq!(error.into_response().status(), status);
        }
        // Statuses without a code of their own take a generic code, and
        // that code's one status.
        let error = ApiError::from_status(StatusCode::REQUEST_TIMEOUT, "slow".into());
        assert_eq!(error.code, ErrorCode::BadRequest);
        assert_eq!(error.into_response().status(), StatusCode::BAD_REQUEST);
        let error = ApiError::from_status(StatusCode::BAD_GATEWAY, String::new());
        assert_eq!(error.code, ErrorCode::InternalError);
    }
}
