//! The API under hostile requests: bearer-token protection, size limits.

use serde_json::json;
use std::process::Command;
use weft_tests::{Api, DevServer, bytes, example, weft_bin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_protects_the_api_when_set() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start(dir.path(), &[("WEFT_API_TOKEN", "s3cret-token")]).unwrap();
    let anonymous = server.api();
    assert_eq!(
        anonymous.get("/healthz").await.unwrap().0,
        200,
        "health stays open"
    );
    let (status, body) = anonymous
        .put("/v1/modules/hello", bytes(&example("hello")))
        .await
        .unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    assert_eq!(anonymous.get("/v1/modules").await.unwrap().0, 401);
    let wrong = Api::with_token(&server.url, "s3cret-tokeN");
    assert_eq!(wrong.get("/v1/modules").await.unwrap().0, 401);

    // The CLI sends the token from WEFT_API_TOKEN.
    let out = Command::new(weft_bin())
        .args(["deploy", "--name", "hello", "--server", &server.url])
        .arg(example("hello"))
        .env("WEFT_API_TOKEN", "s3cret-token")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let right = Api::with_token(&server.url, "s3cret-token");
    let (status, body) = right
        .post("/v1/workflows/hello/runs?wait=30", r#"{"name":"Ada"}"#)
        .await
        .unwrap();
    assert_eq!(
        (status, &body["output"]),
        (200, &json!({"greeting": "Hello, Ada!"}))
    );
    let out = Command::new(weft_bin())
        .args(["deploy", "--name", "hello2", "--server", &server.url])
        .arg(example("hello"))
        .env_remove("WEFT_API_TOKEN")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "an upload without the token is refused"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_uploads_are_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start(dir.path(), &[("WEFT_MAX_MODULE_BYTES", "100000")]).unwrap();
    let api = server.api();
    let big = bytes(&example("order-saga"));
    assert!(big.len() > 100_000);
    let (status, _) = api.put("/v1/modules/big", big).await.unwrap();
    assert_eq!(status, 413);
    let (status, body) = api.get("/v1/modules/big").await.unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_module"))
    );
    let modules_dir = dir.path().join("modules");
    let stored = std::fs::read_dir(&modules_dir)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(stored, 0, "no module bytes were written");
}

/// `weft --sigv4` signs for API Gateway's IAM authorization: the signature
/// a verifier recomputes from what arrived (method, path, headers, body)
/// with the same key and time is the one sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_signs_requests_with_sigv4() {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use axum::http::HeaderMap;
    use std::sync::{Arc, Mutex};

    type Seen = Arc<Mutex<Option<(String, String, HeaderMap, Vec<u8>)>>>;
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    let app = axum::Router::new().fallback(
        move |method: axum::http::Method,
              uri: axum::http::Uri,
              headers: HeaderMap,
              body: axum::body::Bytes| {
            let record = Arc::clone(&record);
            async move {
                *record.lock().unwrap() =
                    Some((method.to_string(), uri.to_string(), headers, body.to_vec()));
                (
                    axum::http::StatusCode::CREATED,
                    axum::Json(
                        json!({"name": "hello", "version": 1, "kind": "workflow", "digest": "x"}),
                    ),
                )
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let url = format!("http://{addr}");
    let out = tokio::process::Command::new(weft_bin())
        .args(["deploy", "--name", "hello", "--sigv4", "--server", &url])
        .arg(example("hello"))
        .env("AWS_ACCESS_KEY_ID", "AKIDWEFTTEST")
        .env("AWS_SECRET_ACCESS_KEY", "weft-test-secret")
        .env("AWS_REGION", "eu-west-1")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (method, uri, headers, body) = seen.lock().unwrap().take().expect("a request arrived");
    assert_eq!(body, bytes(&example("hello")));
    let sent = headers["authorization"].to_str().unwrap().to_string();
    assert!(
        sent.starts_with("AWS4-HMAC-SHA256 Credential=AKIDWEFTTEST/")
            && sent.contains("/eu-west-1/execute-api/aws4_request"),
        "{sent}"
    );

    // Verify: re-sign what arrived, at the time it claims.
    let time = amz_date(headers["x-amz-date"].to_str().unwrap());
    let identity = aws_credential_types::Credentials::new(
        "AKIDWEFTTEST",
        "weft-test-secret",
        None,
        None,
        "test",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-west-1")
        .name("execute-api")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let listed = sent
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .split(';')
        .collect::<Vec<_>>();
    assert!(
        listed.contains(&"host") && listed.contains(&"x-amz-date"),
        "{sent}"
    );
    let signed: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(k, _)| listed.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
        .collect();
    let full = format!("{url}{uri}");
    let request = SignableRequest::new(
        &method,
        &full,
        signed.into_iter(),
        SignableBody::Bytes(&body),
    )
    .unwrap();
    let (instructions, _) = sign(request, &params).unwrap().into_parts();
    let expected = instructions
        .headers()
        .find(|(k, _)| *k == "authorization")
        .map(|(_, v)| v.to_string())
        .unwrap();
    assert_eq!(sent, expected);
}

/// `YYYYMMDDTHHMMSSZ` (SigV4's `x-amz-date`) → a `SystemTime`.
fn amz_date(stamp: &str) -> std::time::SystemTime {
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    );
    humantime::parse_rfc3339(&rfc3339).unwrap()
}
