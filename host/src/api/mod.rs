//! The HTTP API: one axum router, served by `weft dev` and (through
//! `lambda_http`) by the Lambda HTTP handler.
//!
//! Every error is a JSON body `{"error": {"code", "message"}}` with a
//! matching status; no input reaches a panic.

// Request and guest input flows through here: no unchecked indexing.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod auth;
mod console;
mod error;
mod extract;
mod payloads;
mod replay;
mod schedules;
pub mod views;

pub use error::ApiError;

use crate::backend::{RunCursor, RunQuery};
use crate::model::{RunId, RunStatus};
use crate::service::{StagedUpload, StartOptions, UpgradeOptions, Weft, invocation};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use extract::{Path, Query};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Longest `?wait=` a request may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// Options of the HTTP API.
#[derive(Clone, Debug, Default)]
pub struct ApiConfig {
    /// When set, every `/v1` request must carry `Authorization: Bearer
    /// <token>` (`WEFT_API_TOKEN`). `/healthz` stays open.
    pub token: Option<String>,
}

impl ApiConfig {
    pub fn from_env() -> Self {
        Self {
            token: std::env::var("WEFT_API_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
        }
    }
}

/// The console's files alone (for `weft console`, which serves them next
/// to a forwarder instead of the API).
pub fn console_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    console::routes()
}

/// Builds the router over a service, with the options from the environment.
pub fn router(svc: Arc<Weft>) -> Router {
    router_with(svc, ApiConfig::from_env())
}

/// Builds the router over a service.
pub fn router_with(svc: Arc<Weft>, config: ApiConfig) -> Router {
    let v1 = v1_routes(&svc);
    let v1 = match config.token {
        Some(token) => v1.layer(axum::middleware::from_fn_with_state(
            Arc::new(token),
            auth::require_token,
        )),
        None => v1,
    };
    Router::new()
        .route("/healthz", get(healthz))
        .merge(console::routes())
        .merge(v1)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(svc)
}

fn v1_routes(svc: &Arc<Weft>) -> Router<Arc<Weft>> {
    let module_limit = svc.limits().max_module_bytes;
    let json_limit = svc.limits().max_payload_bytes + 1024;
    Router::new()
        .route(
            "/v1/modules/{name}",
            put(deploy_module)
                .get(module_versions)
                .layer(DefaultBodyLimit::max(module_limit)),
        )
        .route("/v1/modules", get(list_modules))
        // With the API's token, like /v1: the figures name workflows.
        .route("/metrics", get(metrics))
        .route("/v1/modules/{name}/uploads", post(stage_upload))
        .route("/v1/modules/{name}/uploads/{upload}", post(register_upload))
        .route(
            "/v1/workflows/{name}/runs",
            post(start_run).layer(DefaultBodyLimit::max(json_limit)),
        )
        .route("/v1/runs", get(list_runs))
        .route("/v1/runs/{id}", get(get_run))
        .route("/v1/runs/{id}/{payload}", get(payloads::run_payload))
        .route("/v1/runs/{id}/journal", get(replay::journal))
        .route("/v1/components/{digest}", get(replay::component))
        .route(
            "/v1/runs/{id}/steps/{step}/{payload}",
            get(payloads::step_payload),
        )
        .route("/v1/workflows/{name}/uploads", post(payloads::stage_input))
        .route("/v1/runs/{id}/cancel", post(cancel_run))
        .route("/v1/runs/{id}/steps", get(get_steps))
        .route("/v1/runs/{id}/children", get(get_children))
        .route("/v1/runs/{id}/logs", get(get_logs))
        .route("/v1/runs/{id}/events", get(get_events))
        .route("/v1/runs/{id}/events/{name}", post(send_event))
        .route("/v1/callbacks/{token}", post(complete_callback))
        .route("/v1/schedules", get(schedules::list_schedules))
        .route(
            "/v1/schedules/{name}",
            put(schedules::put_schedule)
                .get(schedules::get_schedule)
                .delete(schedules::delete_schedule)
                .layer(DefaultBodyLimit::max(json_limit)),
        )
        .route(
            "/v1/schedules/{name}/pause",
            post(schedules::pause_schedule),
        )
        .route(
            "/v1/schedules/{name}/resume",
            post(schedules::resume_schedule),
        )
}

type ApiResult = Result<axum::response::Response, ApiError>;

/// This process's figures, in the Prometheus text format.
async fn metrics(State(svc): State<Arc<Weft>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        svc.metrics_text(),
    )
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// Payloads larger than the store keeps in line are linked, not carried
/// (see `payloads`).
fn inline(svc: &Weft) -> views::Inline {
    views::Inline(svc.limits().inline_payload_bytes)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// A request body as JSON text: UTF-8 and valid JSON; empty means `null`.
fn json_body(body: &Bytes) -> Result<&str, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "the body is not UTF-8",
        )
    })?;
    let text = if text.trim().is_empty() { "null" } else { text };
    if let Err(e) = crate::model::json::validate(text) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON: {e}"),
        ));
    }
    Ok(text)
}

fn parse_run_id(raw: &str) -> Result<RunId, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_run_id",
            format!("{raw:?} is not a run id (run ids are UUIDs)"),
        )
    })
}

#[derive(Deserialize)]
struct DeployQuery {
    /// Comma-separated hosts an RPC module may reach over HTTP.
    #[serde(rename = "allowHosts")]
    allow_hosts: Option<String>,
    /// Replay the workflow's running runs with the module and report;
    /// publish nothing (unless `upgrade`).
    check: Option<bool>,
    /// Check, publish, and move the runs that replay exactly onto it.
    upgrade: Option<bool>,
    /// Check at most this many running runs.
    sample: Option<usize>,
}

impl DeployQuery {
    /// The options of a replay-checked deploy, if this is one.
    fn checked(&self) -> Option<UpgradeOptions> {
        let upgrade = self.upgrade.unwrap_or(false);
        (upgrade || self.check.unwrap_or(false)).then_some(UpgradeOptions {
            upgrade,
            sample: self.sample,
        })
    }

    fn hosts(&self) -> Vec<String> {
        self.allow_hosts
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect()
    }
}

async fn deploy_module(
    State(svc): State<Arc<Weft>>,
    Path(name): Path<String>,
    Query(query): Query<DeployQuery>,
    body: Bytes,
) -> ApiResult {
    if let Some(options) = query.checked() {
        return checked_deploy(&svc, &name, body.to_vec(), &query, options).await;
    }
    let hosts = query.hosts();
    let before = svc.latest_module(&name).await?;
    let version = svc.deploy_with_hosts(&name, body.to_vec(), &hosts).await?;
    let created = before.as_ref().is_none_or(|b| b.version != version.version);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(views::module(&version))).into_response())
}

/// A replay-checked deploy (`?check=true`, `?upgrade=true`): the report,
/// with `200` whether or not runs diverge (the report says which).
async fn checked_deploy(
    svc: &Weft,
    name: &str,
    bytes: Vec<u8>,
    query: &DeployQuery,
    options: UpgradeOptions,
) -> ApiResult {
    if !query.hosts().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "a checked deploy is for workflows, which take no allowHosts",
        ));
    }
    let report = svc.deploy_checked(name, bytes, options).await?;
    Ok(Json(views::upgrade(&report)).into_response())
}

/// How long a staged-upload URL stays valid.
pub(crate) const UPLOAD_URL_LIFETIME: Duration = Duration::from_secs(900);

/// Hands out a URL to upload a module too big for one request (Lambda caps
/// requests at 6 MB): `PUT` the bytes there, then register the upload.
async fn stage_upload(State(svc): State<Arc<Weft>>, Path(name): Path<String>) -> ApiResult {
    let Some(StagedUpload { id, url }) = svc.stage_upload(&name, UPLOAD_URL_LIFETIME).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "uploads_unsupported",
            "this backend takes module bytes directly: PUT /v1/modules/{name}",
        ));
    };
    let body = json!({
        "uploadId": id,
        "uploadUrl": url,
        "method": "PUT",
        "register": format!("/v1/modules/{name}/uploads/{id}"),
        "expiresInSeconds": UPLOAD_URL_LIFETIME.as_secs(),
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Validates and records a module staged with [`stage_upload`].
async fn register_upload(
    State(svc): State<Arc<Weft>>,
    Path((name, upload)): Path<(String, String)>,
    Query(query): Query<DeployQuery>,
) -> ApiResult {
    let Ok(id) = uuid::Uuid::parse_str(&upload) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_upload_id",
            format!("{upload:?} is not an upload id"),
        ));
    };
    let unknown = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_upload",
            format!("nothing was uploaded as {id} (or it was registered already)"),
        )
    };
    if let Some(options) = query.checked() {
        let bytes = svc
            .take_upload(&id.to_string())
            .await?
            .ok_or_else(unknown)?;
        return checked_deploy(&svc, &name, bytes, &query, options).await;
    }
    let hosts = query.hosts();
    let Some(version) = svc.register_upload(&name, &id.to_string(), &hosts).await? else {
        return Err(unknown());
    };
    Ok((StatusCode::CREATED, Json(views::module(&version))).into_response())
}

async fn module_versions(State(svc): State<Arc<Weft>>, Path(name): Path<String>) -> ApiResult {
    let versions = svc.module_versions(&name).await?;
    let running = svc.running_by_digest(&name).await?;
    let list: Vec<Value> = versions
        .iter()
        .map(|v| views::module_in_use(v, running.get(&v.digest).copied().unwrap_or(0)))
        .collect();
    Ok(Json(json!({ "name": name, "versions": list })).into_response())
}

async fn list_modules(State(svc): State<Arc<Weft>>) -> ApiResult {
    let latest = svc.list_modules().await?;
    let list: Vec<Value> = latest.iter().map(views::module).collect();
    Ok(Json(json!({ "modules": list })).into_response())
}

#[derive(Deserialize)]
struct StartQuery {
    /// Start from the input staged under this upload id (see `payloads`).
    upload: Option<String>,
    /// Seconds to wait for the run to finish before answering.
    wait: Option<f64>,
    /// Seconds after which the run fails with `run_timeout`.
    timeout: Option<f64>,
}

/// Parses a non-negative number of seconds from a query parameter.
fn seconds(name: &'static str, value: Option<f64>) -> Result<Option<Duration>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) if v.is_finite() && (0.0..=1e9).contains(&v) => {
            Ok(Some(Duration::from_secs_f64(v)))
        }
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            if name == "wait" {
                "invalid_wait"
            } else {
                "invalid_timeout"
            },
            format!("`{name}` must be a non-negative number of seconds"),
        )),
    }
}

/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The `Idempotency-Key` header, if the client sent one: printable ASCII,
/// at most [`MAX_IDEMPOTENCY_KEY`] characters.
fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
        .filter(|k| k.bytes().all(|b| b.is_ascii_graphic() || b == b' '));
    match key {
        Some(k) => Ok(Some(k.to_string())),
        None => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
            ),
        )),
    }
}

async fn start_run(
    State(svc): State<Arc<Weft>>,
    Path(name): Path<String>,
    Query(query): Query<StartQuery>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> ApiResult {
    let staged = match &query.upload {
        Some(upload) if body.is_empty() => Some(payloads::staged_input(&svc, upload).await?),
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "a run started from an upload takes no body",
            ));
        }
        None => None,
    };
    let input = match &staged {
        Some(input) => input.as_str(),
        None => json_body(&body)?,
    };
    // Never longer than the serving process can wait (a Lambda function's
    // timeout): a client must get an answer, not a gateway timeout.
    let longest = svc.settings().invocation_limit.map_or(MAX_WAIT, |limit| {
        MAX_WAIT.min(invocation::usable_span(limit))
    });
    let wait = seconds("wait", query.wait)?.map(|w| w.min(longest));
    let options = StartOptions {
        timeout: seconds("timeout", query.timeout)?,
        idempotency_key: idempotency_key(&headers)?,
        parent: None,
    };
    svc.admit_start().await?;
    let run_id = svc.start_run_with(&name, input, options).await?;
    let Some(wait) = wait else {
        return Ok((StatusCode::ACCEPTED, Json(json!({ "runId": run_id }))).into_response());
    };
    let run = svc.wait_for(&run_id, wait).await?;
    let status = if run.status.is_terminal() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(views::run_result(&run, inline(&svc)))).into_response())
}

#[derive(Deserialize)]
struct RunsQuery {
    status: Option<String>,
    workflow: Option<String>,
    limit: Option<usize>,
    /// The `next` of the previous page.
    after: Option<String>,
}

/// A page cursor as the API hands it out: `<createdAt ms>.<run id>`, the
/// last run of the page (opaque to clients; stable across backends).
fn cursor_text(c: &RunCursor) -> String {
    format!("{}.{}", c.created_at, c.id)
}

fn parse_cursor(raw: &str) -> Result<RunCursor, ApiError> {
    let parsed = raw.split_once('.').and_then(|(at, id)| {
        Some(RunCursor {
            created_at: at.parse().ok()?,
            id: id.parse().ok()?,
        })
    });
    parsed.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
            format!("{raw:?} is not a page cursor (pass the `next` of a listing)"),
        )
    })
}

async fn list_runs(State(svc): State<Arc<Weft>>, Query(q): Query<RunsQuery>) -> ApiResult {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_status",
                format!("{s:?} is not a run status (running, completed, failed, cancelled)"),
            )
        })?),
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let query = RunQuery {
        status,
        workflow: q.workflow.filter(|w| !w.is_empty()),
        limit,
        after: q.after.as_deref().map(parse_cursor).transpose()?,
    };
    let runs = svc.list_runs(&query).await?;
    // A full page may have a next one; an empty next page ends the paging.
    let next = runs
        .last()
        .filter(|_| runs.len() == limit)
        .map(|r| cursor_text(&RunCursor::after(r)));
    let list: Vec<Value> = runs.iter().map(|r| views::run(r, inline(&svc))).collect();
    Ok(Json(json!({ "runs": list, "next": next })).into_response())
}

async fn get_run(State(svc): State<Arc<Weft>>, Path(id): Path<String>) -> ApiResult {
    let run = svc.get_run(&parse_run_id(&id)?).await?;
    let waiting = svc.waiting_on(&run).await?;
    Ok(Json(views::run_with_wait(&run, waiting.as_ref(), inline(&svc))).into_response())
}

#[derive(Deserialize, Default)]
struct CancelBody {
    reason: Option<String>,
}

async fn cancel_run(
    State(svc): State<Arc<Weft>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let id = parse_run_id(&id)?;
    let request: CancelBody = if body.is_empty() {
        CancelBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("the body must be {{\"reason\": \"...\"}} or empty: {e}"),
            )
        })?
    };
    let reason = request
        .reason
        .unwrap_or_else(|| "cancelled by request".into());
    let run = svc.cancel(&id, &reason).await?;
    Ok(Json(views::run(&run, inline(&svc))).into_response())
}

async fn get_steps(State(svc): State<Arc<Weft>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_run_id(&id)?;
    let steps = svc.steps(&id).await?;
    let list: Vec<Value> = steps.iter().map(|v| views::step(v, inline(&svc))).collect();
    Ok(Json(json!({ "runId": id, "steps": list })).into_response())
}

async fn get_children(State(svc): State<Arc<Weft>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_run_id(&id)?;
    let children = svc.children(&id).await?;
    let list: Vec<Value> = children
        .iter()
        .map(|(step, child)| views::child(step, child.as_ref()))
        .collect();
    Ok(Json(json!({ "runId": id, "children": list })).into_response())
}

async fn get_logs(State(svc): State<Arc<Weft>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_run_id(&id)?;
    let logs = svc.logs(&id).await?;
    let list: Vec<Value> = logs.iter().map(views::log_line).collect();
    Ok(Json(json!({ "runId": id, "logs": list })).into_response())
}

async fn get_events(State(svc): State<Arc<Weft>>, Path(id): Path<String>) -> ApiResult {
    let id = parse_run_id(&id)?;
    let events = svc.events(&id).await?;
    let list: Vec<Value> = events
        .iter()
        .map(|e| views::event(e, inline(&svc)))
        .collect();
    Ok(Json(json!({ "runId": id, "events": list })).into_response())
}

/// `POST /v1/runs/{id}/events/{name}`: the body (JSON) is the payload; an
/// `Idempotency-Key` header is the event id, so a re-send is harmless.
async fn send_event(
    State(svc): State<Arc<Weft>>,
    Path((id, name)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> ApiResult {
    let id = parse_run_id(&id)?;
    let payload = json_body(&body)?;
    let event_id = idempotency_key(&headers)?;
    let sent = svc
        .send_event(&id, &name, payload, event_id.as_deref())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(views::event_sent(&sent))).into_response())
}

/// The body of `POST /v1/callbacks/{token}`: a result or an error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Completion {
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<CompletionError>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompletionError {
    code: String,
    message: String,
    #[serde(default)]
    details: Option<Value>,
}

/// `POST /v1/callbacks/{token}`: completes a callback once, with
/// `{"result": <json>}` or `{"error": {"code", "message", "details"?}}`.
async fn complete_callback(
    State(svc): State<Arc<Weft>>,
    Path(token): Path<String>,
    body: Bytes,
) -> ApiResult {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", message);
    let completion: Completion = serde_json::from_str(json_body(&body)?).map_err(|e| {
        bad(format!(
            "the body must be {{\"result\": <json>}} or {{\"error\": {{\"code\": ..., \"message\": ...}}}}: {e}"
        ))
    })?;
    let outcome = match (completion.result, completion.error) {
        (result, None) => Ok(result.unwrap_or(Value::Null).to_string()),
        (None, Some(e)) if !e.code.trim().is_empty() => Err(crate::model::ErrorInfo {
            code: e.code,
            message: e.message,
            details: e.details,
        }),
        (None, Some(_)) => return Err(bad("the error's code must not be empty".into())),
        (Some(_), Some(_)) => return Err(bad("give a result or an error, not both".into())),
    };
    let done = svc.complete_callback(&token, outcome).await?;
    Ok(Json(views::callback(&done)).into_response())
}
