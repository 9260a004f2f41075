//! API errors as JSON responses.

use crate::backend::StoreError;
use crate::model::ErrorCode;
use crate::registry::DeployError;
use crate::service::ServiceError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error response: `{"error": {"code", "message"}}` with a status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
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
        };
        if status.is_server_error() {
            tracing::error!("request failed: {message}");
        }
        Self::new(status, code, message)
    }
}
