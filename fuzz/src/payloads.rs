//! Event and callback payloads, sent to real runs: an `expense-approval`
//! run waiting for its `approval` event, and a `callback` run waiting on
//! the callback whose token it logged.
//!
//! Input: a selector byte, a line (the event's name, or the callback token
//! when the selector asks for a made-up one), a line sent as the
//! idempotency key, then the body. Every answer is a success or a JSON
//! error, never a panic or a 5xx, whether the run still waits or the
//! fuzzer already resumed it.

use crate::router::{check_answer, line, send_to};
use crate::service::{runtime, weft_for_payloads};
use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

struct Targets {
    waiting_run: String,
    token: String,
}

pub fn run(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let targets = targets();
    let (text, rest) = line(rest);
    let (key, body) = line(rest);
    let path = match selector % 3 {
        0 => format!("/v1/runs/{}/events/{}", targets.waiting_run, encoded(&text)),
        1 => format!("/v1/callbacks/{}", targets.token),
        _ => format!("/v1/callbacks/{}", encoded(&text)),
    };
    let mut request = Request::builder().method(Method::POST).uri(&path);
    if !key.is_empty() {
        request = request.header("idempotency-key", key.as_str());
    }
    let Ok(request) = request.body(Body::from(body.to_vec())) else {
        return;
    };
    let (status, answer) = send_to(weft_for_payloads(), request);
    check_answer(&Method::POST, &path, status, &answer);
}

/// `text` as one path segment.
fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The two runs, started once per process.
fn targets() -> &'static Targets {
    static TARGETS: OnceLock<Targets> = OnceLock::new();
    TARGETS.get_or_init(|| {
        let day = 86_400_000u64;
        let waiting_run = start(
            "expense-approval",
            json!({ "expenseId": "e-1", "amountCents": 100, "submitter": "ada",
                    "approvalTimeoutMs": day, "escalationTimeoutMs": day }),
        );
        let callback_run = start("callback", json!({}));
        let token = logged_token(&callback_run);
        Targets { waiting_run, token }
    })
}

fn start(workflow: &str, input: Value) -> String {
    let request = Request::post(format!("/v1/workflows/{workflow}/runs"))
        .header("content-type", "application/json")
        .body(Body::from(input.to_string()))
        .expect("a request");
    let (status, body) = send_to(weft_for_payloads(), request);
    let answer: Value = serde_json::from_slice(&body).expect("JSON");
    assert!(
        status.is_success(),
        "starting {workflow}: {status} {answer}"
    );
    answer["runId"].as_str().expect("a run id").to_string()
}

/// The callback token run `id` logs once its first activation ran.
fn logged_token(id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let request = Request::get(format!("/v1/runs/{id}/logs"))
            .body(Body::empty())
            .expect("a request");
        let (_, body) = send_to(weft_for_payloads(), request);
        let logs: Value = serde_json::from_slice(&body).expect("JSON");
        let token = logs["logs"].as_array().into_iter().flatten().find_map(|l| {
            l["message"]
                .as_str()?
                .strip_prefix("callback token: ")
                .map(str::to_string)
        });
        if let Some(token) = token {
            return token;
        }
        assert!(Instant::now() < deadline, "run {id} never logged its token");
        runtime().block_on(async { tokio::time::sleep(Duration::from_millis(20)).await });
    }
}
