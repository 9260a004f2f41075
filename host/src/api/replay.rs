//! What `weft replay` fetches to replay a recorded run on a laptop:
//! `GET /v1/runs/{id}/journal` (the run and its recorded steps exactly as
//! stored, payloads as the text the workflow produced, since replay
//! compares them byte for byte) and `GET /v1/components/{digest}` (the
//! module the run is pinned to).

use super::extract::Path;
use super::{ApiError, ApiResult, parse_run_id};
use crate::model::Digest;
use crate::service::Weft;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;
use std::sync::Arc;

pub(super) async fn journal(State(svc): State<Arc<Weft>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_run_id(&id)?;
    let (run, steps) = svc.journal(&id).await?;
    let logs = svc.logs(&id).await?;
    Ok(Json(json!({ "run": run, "steps": steps, "logs": logs })).into_response())
}

pub(super) async fn component(
    State(svc): State<Arc<Weft>>,
    Path(digest): Path<String>,
) -> ApiResult {
    let Some(digest) = Digest::parse(&digest) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_digest",
            format!("{digest:?} is not a module digest (64 hex characters)"),
        ));
    };
    let Some(bytes) = svc.module_bytes(&digest).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_module",
            format!("no module has the digest {digest}"),
        ));
    };
    Ok(([(header::CONTENT_TYPE, "application/wasm")], bytes).into_response())
}
