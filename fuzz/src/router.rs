//! The HTTP API, as `weft dev` and the HTTP Lambda function serve it.
//!
//! Input: a method byte, a path line (with any query), a line of header
//! value sent as `idempotency-key`, then the body. Whatever arrives, the
//! answer is a success or a JSON error, never a panic or a 5xx.

use crate::service::{runtime, weft};
use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode};
use std::sync::Arc;
use tower::ServiceExt;
use weft::api::{ApiConfig, router_with};
use weft::service::Weft;

const METHODS: [Method; 7] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::HEAD,
    Method::OPTIONS,
];

/// The console's files and the Prometheus metrics are the only answers
/// that are not JSON.
const TEXT_PATHS: [&str; 4] = ["/", "/console/app.js", "/console/style.css", "/metrics"];

pub fn run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let method = METHODS[usize::from(first) % METHODS.len()].clone();
    let (path, rest) = line(rest);
    let (key, body) = line(rest);
    let uri = shortened_waits(&path);
    let uri = if uri.starts_with('/') {
        uri
    } else {
        format!("/{uri}")
    };
    let mut request = Request::builder().method(method.clone()).uri(&uri);
    if !key.is_empty() {
        request = request.header("idempotency-key", key.as_str());
    }
    let Ok(request) = request.body(Body::from(body.to_vec())) else {
        return; // not a request an HTTP client could send
    };
    let (status, text) = send(request);
    check_answer(&method, request_path(&uri), status, &text);
}

/// Sends `request` through the API's router.
pub(crate) fn send(request: Request<Body>) -> (StatusCode, Vec<u8>) {
    send_to(weft(), request) // built outside the runtime: its setup blocks on it
}

/// Sends `request` through `svc`'s router.
pub(crate) fn send_to(svc: Arc<Weft>, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    runtime().block_on(async move {
        let response = router_with(svc, ApiConfig::default())
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let bytes = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body the server wrote");
        (status, bytes.to_vec())
    })
}

/// What every answer of the API must be: not a server error, and JSON
/// unless it is a console file or the answer to a `HEAD`.
pub(crate) fn check_answer(method: &Method, path: &str, status: StatusCode, body: &[u8]) {
    let text = String::from_utf8_lossy(body);
    assert!(
        !status.is_server_error(),
        "{method} {path} -> {status}: {text}"
    );
    let text_path = *method == Method::GET && TEXT_PATHS.contains(&path);
    if *method != Method::HEAD && !text_path {
        assert!(
            serde_json::from_slice::<serde_json::Value>(body).is_ok(),
            "{method} {path} -> {status}: not JSON: {text:?}"
        );
    }
}

/// Longest `?wait=` an execution may ask for. A start that waits for a
/// run that never ends (one waiting for an event, say) answers only when
/// the wait runs out, which would slow the fuzzer to a crawl.
const MAX_WAIT_SECS: f64 = 0.05;

/// `uri` with every `wait=` of more than [`MAX_WAIT_SECS`] cut to it;
/// values that are not numbers stay, for the parser to refuse.
fn shortened_waits(uri: &str) -> String {
    let Some((path, query)) = uri.split_once('?') else {
        return uri.to_string();
    };
    let params: Vec<String> = query
        .split('&')
        .map(
            |param| match param.strip_prefix("wait=").map(str::parse::<f64>) {
                Some(Ok(secs)) if secs > MAX_WAIT_SECS => format!("wait={MAX_WAIT_SECS}"),
                _ => param.to_string(),
            },
        )
        .collect();
    format!("{path}?{}", params.join("&"))
}

fn request_path(uri: &str) -> &str {
    uri.split(['?', '#']).next().unwrap_or(uri)
}

/// The text up to the first newline (lossily decoded), and what follows it.
pub(crate) fn line(data: &[u8]) -> (String, &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(end) => (
            String::from_utf8_lossy(&data[..end]).into_owned(),
            &data[end + 1..],
        ),
        None => (String::from_utf8_lossy(data).into_owned(), &[]),
    }
}
