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
