//! API errors as JSON responses.

use crate::backend::StoreError;
use crate::model::ErrorCode;
use crate::registry::DeployError;
use crate::service::ServiceError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error response: `{"error": {"code", "message"}}` with a status,
/// and a `Retry-After` header when the client should come back later.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Whole seconds for `Retry-After`.
    pub retry_after: Option<u64>,
}

/// What a `503` advises: the store or queue failed a call, which usually
/// passes within a second.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        use StatusCode as S;
        let message = e.to_string();
        let (status, code) = match &e {
            ServiceError::UnknownWorkflow(_) => (S::NOT_FOUND, "unknown_workflow"),
            ServiceError::NotAWorkflow(_) => (S::BAD_REQUEST, "not_a_workflow"),
            ServiceError::UnknownRun(_) => (S::NOT_FOUND, "unknown_run"),
            ServiceError::UnknownModule(_) => (S::NOT_FOUND, "unknown_module"),
            ServiceError::NotRunning { .. } => (S::CONFLICT, "not_running"),
            ServiceError::IdempotencyConflict { .. } => (S::CONFLICT, "idempotency_conflict"),
            ServiceError::InvalidInput(_) => (S::BAD_REQUEST, "invalid_json"),
            ServiceError::InvalidEvent(_) => (S::BAD_REQUEST, "invalid_event"),
            ServiceError::UnknownCallback => (S::NOT_FOUND, "unknown_callback"),
            ServiceError::CallbackClosed(_) => (S::CONFLICT, "callback_closed"),
            ServiceError::UnknownSchedule(_) => (S::NOT_FOUND, "unknown_schedule"),
            ServiceError::InvalidSchedule(_) => (S::BAD_REQUEST, "invalid_schedule"),
            ServiceError::PayloadTooLarge(_) => (S::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ServiceError::Deploy(d) => match d {
                DeployError::InvalidName(_) => (S::BAD_REQUEST, "invalid_module_name"),
                DeployError::TooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "payload_too_large"),
                DeployError::Empty | DeployError::NotWasm => (S::BAD_REQUEST, "not_wasm"),
                DeployError::CoreModule => (S::BAD_REQUEST, "not_a_component"),
                DeployError::Invalid(_) => (S::BAD_REQUEST, "invalid_component"),
                DeployError::WrongWorld { .. } => (S::BAD_REQUEST, "wrong_world"),
                DeployError::InvalidHost(_) => (S::BAD_REQUEST, "invalid_host"),
                DeployError::HostsForWorkflow => (S::BAD_REQUEST, "hosts_for_workflow"),
                DeployError::Store(_) => {
                    (S::SERVICE_UNAVAILABLE, ErrorCode::StoreUnavailable.as_str())
                }
            },
            ServiceError::Store(StoreError::TooLarge(_)) => {
                (S::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            ServiceError::Store(StoreError::Corrupt(_)) => {
                (S::INTERNAL_SERVER_ERROR, ErrorCode::Internal.as_str())
            }
            ServiceError::Store(_) => {
                (S::SERVICE_UNAVAILABLE, ErrorCode::StoreUnavailable.as_str())
            }
            ServiceError::Queue(_) => (S::SERVICE_UNAVAILABLE, "queue_unavailable"),
            ServiceError::Overloaded { .. } => (S::TOO_MANY_REQUESTS, "overloaded"),
        };
        let retry_after = match &e {
            ServiceError::Overloaded { retry_after, .. } => Some(retry_after.as_secs().max(1)),
            _ if status == S::SERVICE_UNAVAILABLE => Some(UNAVAILABLE_RETRY_AFTER_SECS),
            _ => None,
        };
        if status.is_server_error() {
            tracing::error!("request failed: {message}");
        }
        Self {
            retry_after,
            ..Self::new(status, code, message)
        }
    }
}
