//! The schedule routes: `PUT /v1/schedules/{name}` creates or replaces one,
//! `GET` lists or shows them, `DELETE` removes one, and `POST …/pause` and
//! `…/resume` stop and restart its fires.

use super::extract::Path;
use super::{ApiError, ApiResult, views};
use crate::model::Overlap;
use crate::service::{ScheduleSpec, Weft};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    workflow: String,
    cron: String,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    overlap: Option<String>,
}

fn bad_body(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", message)
}

pub(super) async fn put_schedule(
    State(svc): State<Arc<Weft>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body: PutBody = serde_json::from_slice(&body).map_err(|e| {
        bad_body(format!(
            "the body must be {{\"workflow\", \"cron\", \"input\"?, \"overlap\"?: \"skip\" | \"allow\"}}: {e}"
        ))
    })?;
    let overlap = match body.overlap.as_deref() {
        None => Overlap::default(),
        Some(text) => Overlap::parse(text).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_schedule",
                format!("overlap must be \"skip\" or \"allow\", not {text:?}"),
            )
        })?,
    };
    let spec = ScheduleSpec {
        workflow: body.workflow,
        cron: body.cron,
        input: body.input.unwrap_or(Value::Null).to_string(),
        overlap,
    };
    let schedule = svc.put_schedule(&name, spec).await?;
    Ok(Json(views::schedule(&schedule)).into_response())
}

pub(super) async fn list_schedules(State(svc): State<Arc<Weft>>) -> ApiResult {
    let list: Vec<Value> = svc
        .list_schedules()
        .await?
        .iter()
        .map(views::schedule)
        .collect();
    Ok(Json(json!({ "schedules": list })).into_response())
}

pub(super) async fn get_schedule(
    State(svc): State<Arc<Weft>>,
    Path(name): Path<String>,
) -> ApiResult {
    let schedule = svc.get_schedule(&name).await?;
    Ok(Json(views::schedule(&schedule)).into_response())
}

pub(super) async fn delete_schedule(
    State(svc): State<Arc<Weft>>,
    Path(name): Path<String>,
) -> ApiResult {
    svc.delete_schedule(&name).await?;
    Ok(Json(json!({ "deleted": name })).into_response())
}

pub(super) async fn pause_schedule(
    State(svc): State<Arc<Weft>>,
    Path(name): Path<String>,
) -> ApiResult {
    let schedule = svc.pause_schedule(&name).await?;
    Ok(Json(views::schedule(&schedule)).into_response())
}

pub(super) async fn resume_schedule(
    State(svc): State<Arc<Weft>>,
    Path(name): Path<String>,
) -> ApiResult {
    let schedule = svc.resume_schedule(&name).await?;
    Ok(Json(views::schedule(&schedule)).into_response())
}
