//! AWS Lambda glue, and nothing else: the service is built once per
//! container (SDK clients, the wasmtime engine, the module cache in memory
//! and in `/tmp`), then events are handed to the same code `weft dev` runs.
//!
//! Two functions (two binaries, both `provided.al2023`):
//! - `weft-http`: API Gateway (REST v1 or HTTP API v2) → the axum router of
//!   [`crate::api`], through `lambda_http`.
//! - `weft-worker`: SQS batches from the work queue and its dead-letter queue
//!   (failures reported per message), and the scheduled recovery sweep.

pub mod worker;

use crate::backend::Backends;
use crate::backend::aws::{AwsClients, AwsSettings};
use crate::config::Limits;
use crate::service::{Settings, Weft};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Builds the service from the environment (the AWS backend). Runs during
/// the Lambda init phase: clients and the engine are ready before the first
/// event; modules are loaded when first needed.
pub async fn service_from_env() -> anyhow::Result<Arc<Weft>> {
    let limits = Limits::from_env()?;
    let aws = AwsSettings::from_env();
    let clients = AwsClients::connect(&aws, None).await;
    let backends = Backends::aws(&clients, &aws).await?;
    let mut settings = Settings::from_env(aws.rpc_mode(), &limits)?;
    if let Ok(name) = std::env::var("AWS_LAMBDA_LOG_STREAM_NAME") {
        settings.worker_id = format!("lambda-{name}");
    }
    Weft::new(backends, limits, settings)
}

/// When the invocation described by `context` ends. The runtime gives its
/// deadline in milliseconds since the epoch; a deadline that has already
/// passed as the invocation starts is not one (emulators send the timeout
/// itself there), and then the function's configured timeout, `limit`
/// (`WEFT_INVOCATION_TIMEOUT_SECS`), counts from now. `None`: no deadline
/// is known.
pub fn invocation_end(
    context: &lambda_runtime::Context,
    limit: Option<Duration>,
) -> Option<Instant> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    match context.deadline.checked_sub(now_ms) {
        Some(left) if left > 0 => Some(Instant::now() + Duration::from_millis(left)),
        _ => limit.map(|limit| Instant::now() + limit),
    }
}

/// The API router as the HTTP function serves it. API Gateway REST APIs
/// deliver paths with the stage in front (`/prod/v1/runs`), which
/// `lambda_http` keeps; strip it so every API flavour reaches the same
/// routes.
/// (The rewrite must wrap the router: a `Router::layer` runs after routing.)
pub fn http_app(svc: Arc<Weft>) -> tower::util::MapRequest<axum::Router, StageStripper> {
    let strip: StageStripper = strip_stage;
    let router = crate::api::router(Arc::clone(&svc))
        .layer(axum::middleware::from_fn_with_state(svc, log_metrics_after));
    tower::ServiceExt::map_request(router, strip)
}

/// After each request: what it changed, as CloudWatch metrics (EMF lines
/// on stdout, which Lambda ships to CloudWatch Logs).
async fn log_metrics_after(
    axum::extract::State(svc): axum::extract::State<Arc<Weft>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let response = next.run(request).await;
    log_metrics(&svc);
    response
}

/// Prints the metrics a process gathered since it last did, as CloudWatch
/// Embedded Metric Format lines: one per invocation, no agent needed.
pub fn log_metrics(svc: &Weft) {
    for doc in svc.take_emf() {
        println!("{doc}");
    }
}

/// The request rewrite [`http_app`] puts in front of the router.
pub type StageStripper = fn(lambda_http::Request) -> lambda_http::Request;

fn strip_stage(mut request: lambda_http::Request) -> lambda_http::Request {
    use lambda_http::request::RequestContext;
    let stage = match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage.filter(|s| s != "$default") else {
        return request;
    };
    let prefix = format!("/{stage}");
    let uri = request.uri();
    let path = uri.path();
    let stripped = match path.strip_prefix(&prefix) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => return request,
    };
    let mut target = if stripped.is_empty() {
        "/".to_string()
    } else {
        stripped.to_string()
    };
    if let Some(query) = uri.query() {
        target.push('?');
        target.push_str(query);
    }
    if let Ok(new) = target.parse() {
        *request.uri_mut() = new;
    }
    request
}

/// Logs as JSON-free plain lines on stderr (CloudWatch keeps them).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,weft=info")),
        )
        .with_ansi(false)
        .without_time()
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_is_an_instant_or_else_the_configured_timeout() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let mut context = lambda_runtime::Context::default();
        context.deadline = now_ms + 30_000;
        let end = invocation_end(&context, Some(Duration::from_secs(900))).unwrap();
        let left = end.saturating_duration_since(Instant::now());
        assert!(left > Duration::from_secs(28) && left <= Duration::from_secs(30));
        // An emulator's timeout in the deadline's place.
        context.deadline = 600_000;
        let end = invocation_end(&context, Some(Duration::from_secs(60))).unwrap();
        assert!(end.saturating_duration_since(Instant::now()) > Duration::from_secs(58));
        assert!(invocation_end(&context, None).is_none());
    }
}
