//! Lambda events as the two functions receive them: the worker's (SQS
//! batches, EventBridge's scheduled event, anything else) and the HTTP
//! function's (API Gateway REST v1 and HTTP v2 proxy events).
//!
//! Input: the event's JSON (the Lambda runtime refuses what is not JSON
//! before Weft sees it). The worker answers every event without a panic,
//! and a batch's reported failures are among the messages it was given;
//! an HTTP event that parses is answered without a server error, in JSON
//! unless it fetched a console file.

use crate::service::{runtime, weft};
use axum::http::StatusCode;
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::HashSet;
use tower::ServiceExt;

pub fn run(data: &[u8]) {
    let Ok(event) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    worker_event(event.clone());
    if let Ok(text) = std::str::from_utf8(data) {
        http_event(text);
    }
}

fn worker_event(event: Value) {
    // A record without a `messageId` (SQS always sets one) can only be
    // reported as "", which Lambda takes as the whole batch failing: the
    // safe answer, since nothing else names it.
    let given: HashSet<String> = event
        .get("Records")
        .and_then(Value::as_array)
        .map(|records| {
            records
                .iter()
                .map(|r| r.get("messageId").and_then(Value::as_str).unwrap_or(""))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let svc = weft();
    let answer = runtime().block_on(weft::lambda::worker::handle_event(&svc, event, None));
    let Ok(answer) = answer else {
        return; // refused as a whole: Lambda retries or drops it, nothing was taken
    };
    if let Some(failures) = answer.get("batchItemFailures").and_then(Value::as_array) {
        for failure in failures {
            let id = failure["itemIdentifier"].as_str().unwrap_or_default();
            assert!(
                given.contains(id),
                "the batch reported {id:?} as failed, which it was not given: {answer}"
            );
        }
    }
}

fn http_event(text: &str) {
    let Some(Ok(request)) = converted(text) else {
        return;
    };
    let app = weft::lambda::http_app(weft());
    let (status, json_answer, body) = runtime().block_on(async {
        let response = app
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let json_answer = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a body the server wrote")
            .to_bytes();
        (status, json_answer, body)
    });
    let text = String::from_utf8_lossy(&body);
    assert!(!status.is_server_error(), "{status}: {text}");
    if json_answer {
        assert!(
            serde_json::from_slice::<Value>(&body).is_ok(),
            "{status}: labelled JSON but is not: {text:?}"
        );
    } else {
        // Only a console file is served as something else.
        assert!(
            status == StatusCode::OK || body.is_empty(),
            "{status}: an error that is not JSON: {text:?}"
        );
    }
}

/// The event as `lambda_http` turns it into a request, or `None` where that
/// conversion panics: lambda_http 1.3 unwraps `Url::parse` of the Host
/// header and path, so an event whose host is not a domain name panics in
/// the library, before Weft's code. In the function, `lambda_runtime`
/// catches the panic and fails that one invocation; here the event is
/// skipped. (libFuzzer's panic hook aborts on any panic, caught or not,
/// so the hook is silenced for the call.)
fn converted(text: &str) -> Option<Result<lambda_http::Request, serde_json::Error>> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let converted = std::panic::catch_unwind(|| lambda_http::request::from_str(text)).ok();
    std::panic::set_hook(hook);
    converted
}
