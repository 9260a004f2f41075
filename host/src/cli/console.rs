//! `weft console`: the web console on this machine, for a server the
//! browser cannot authenticate to by itself.
//!
//! A browser cannot sign requests with SigV4 (the HTTP function behind API
//! Gateway's IAM authorization), and pasting a long-lived token into a page
//! is not always wanted. This command serves the console's files on a
//! loopback address and forwards every `/v1` and `/metrics` request to the
//! server with the credentials of the command line: the bearer token, or a
//! SigV4 signature from the standard AWS credential chain. Like `kubectl
//! proxy`, anyone who can reach the listening address acts with those
//! credentials, so it listens on loopback unless told otherwise.

use super::ServerArgs;
use super::remote::Client;
use crate::api;
use anyhow::Context as _;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

/// Request headers passed on to the server (the credentials are the
/// command's, never the browser's).
const FORWARDED_REQUEST: [header::HeaderName; 2] = [header::CONTENT_TYPE, header::ACCEPT];
/// Response headers passed back to the browser.
const FORWARDED_RESPONSE: [header::HeaderName; 3] =
    [header::CONTENT_TYPE, header::LOCATION, header::RETRY_AFTER];

/// Serves the console on `listen` for `server`, until interrupted.
pub async fn run(listen: SocketAddr, server: &ServerArgs) -> anyhow::Result<ExitCode> {
    let client = Arc::new(Client::new(server).await?);
    let app = api::console_routes()
        .fallback(forward)
        .with_state(Arc::clone(&client));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let bound = listener.local_addr()?;
    println!(
        "weft console on http://{bound}/ for {}",
        server.server.trim_end_matches('/')
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving the console")?;
    Ok(ExitCode::SUCCESS)
}

/// Forwards an API request to the server with the command's credentials.
async fn forward(
    State(client): State<Arc<Client>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    if !(path.starts_with("/v1/") || path == "/metrics") {
        return api::ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
            .into_response();
    }
    let mut request = client.request(method, path).body(body.to_vec());
    for name in FORWARDED_REQUEST {
        if let Some(value) = headers.get(&name) {
            request = request.header(name, value);
        }
    }
    if let Some(key) = headers.get("idempotency-key") {
        request = request.header("idempotency-key", key);
    }
    match client.execute(request).await {
        Ok(answer) => answered(answer).await,
        Err(e) => api::ApiError::new(
            StatusCode::BAD_GATEWAY,
            "server_unreachable",
            format!("{e:#}"),
        )
        .into_response(),
    }
}

/// The server's answer, as the browser gets it.
async fn answered(answer: reqwest::Response) -> Response {
    let status = answer.status();
    let mut forwarded = HeaderMap::new();
    for name in FORWARDED_RESPONSE {
        if let Some(value) = answer.headers().get(&name)
            && let Ok(value) = HeaderValue::from_bytes(value.as_bytes())
        {
            forwarded.insert(name, value);
        }
    }
    let body = match answer.bytes().await {
        Ok(body) => body,
        Err(e) => {
            return api::ApiError::new(
                StatusCode::BAD_GATEWAY,
                "server_unreachable",
                format!("reading the server's answer: {e}"),
            )
            .into_response();
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    *response.headers_mut() = forwarded;
    response
}
