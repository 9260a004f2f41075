//! Payloads too large for one API message. A response carries a payload
//! in line up to the size the store keeps in line; above that it names the
//! payload's size and a path under `/v1/runs/{id}/…` (`inputUrl`,
//! `outputUrl`, a step's `resultUrl`), which answers with the JSON itself,
//! or, where the store hands out presigned links (S3), with a `303 See
//! Other` to one, so a serverless function never has to carry more than
//! its 6 MB. A large input goes the other way: `POST
//! /v1/workflows/{name}/uploads` offers a presigned `PUT`, and
//! `POST /v1/workflows/{name}/runs?upload=<id>` starts the run from it.

use super::extract::Path;
use super::{ApiError, ApiResult, UPLOAD_URL_LIFETIME, parse_run_id};
use crate::model::{RunId, StepKind};
use crate::service::{StagedUpload, Weft};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// How long a download link stays valid.
const LINK_LIFETIME: Duration = Duration::from_secs(900);

/// Offers a URL to upload a run input too large for one request.
pub(super) async fn stage_input(
    State(svc): State<Arc<Weft>>,
    Path(workflow): Path<String>,
) -> ApiResult {
    let Some(StagedUpload { id, url }) = svc.stage_input(&workflow, UPLOAD_URL_LIFETIME).await?
    else {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "uploads_unsupported",
            "this backend takes inputs directly: POST /v1/workflows/{name}/runs",
        ));
    };
    let body = json!({
        "uploadId": id,
        "uploadUrl": url,
        "method": "PUT",
        "start": format!("/v1/workflows/{workflow}/runs?upload={id}"),
        "expiresInSeconds": UPLOAD_URL_LIFETIME.as_secs(),
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The input staged as `upload`, taken once.
pub(super) async fn staged_input(svc: &Weft, upload: &str) -> Result<String, ApiError> {
    let Ok(id) = uuid::Uuid::parse_str(upload) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_upload_id",
            format!("{upload:?} is not an upload id"),
        ));
    };
    let input = svc
        .take_staged_input(&id.to_string())
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_upload",
                format!("nothing was uploaded as {id} (or a run was started from it already)"),
            )
        })?;
    Ok(super::json_body(&input.into())?.to_string())
}

/// Answers with the payload `text` of `run`: a redirect to a download link
/// when the store offers one, the JSON itself otherwise.
async fn payload(svc: &Weft, run: &RunId, text: Option<&str>, what: &str) -> ApiResult {
    let Some(text) = text else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_payload",
            format!("run {run} has no {what} (yet)"),
        ));
    };
    if let Some(link) = svc.download_link(run, text, LINK_LIFETIME).await? {
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, link)]).into_response());
    }
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        text.to_string(),
    )
        .into_response())
}

/// `GET /v1/runs/{id}/input` and `…/output`.
pub(super) async fn run_payload(
    State(svc): State<Arc<Weft>>,
    Path((id, which)): Path<(String, String)>,
) -> ApiResult {
    let id = parse_run_id(&id)?;
    let run = svc.get_run(&id).await?;
    match which.as_str() {
        "input" => payload(&svc, &id, Some(&run.input), "input").await,
        "output" => payload(&svc, &id, run.output.as_deref(), "output").await,
        _ => Err(super::not_found().await),
    }
}

/// `GET /v1/runs/{id}/steps/{step}/input` and `…/result`.
pub(super) async fn step_payload(
    State(svc): State<Arc<Weft>>,
    Path((id, step, which)): Path<(String, String, String)>,
) -> ApiResult {
    let id = parse_run_id(&id)?;
    let steps = svc.steps(&id).await?;
    let Some(view) = steps.iter().find(|v| v.step.name == step) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_step",
            format!("run {id} has no step {step:?}"),
        ));
    };
    let s = &view.step;
    match which.as_str() {
        "input" => payload(&svc, &id, s.input.as_deref(), "step input").await,
        // A callback's token is a capability: never shown (see views).
        "result" if s.kind == StepKind::Callback => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "hidden",
            "a callback step's result is its token, which the API does not show",
        )),
        "result" => payload(&svc, &id, s.result.as_deref(), "step result").await,
        _ => Err(super::not_found().await),
    }
}
