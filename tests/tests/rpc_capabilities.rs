//! RPC modules reach the network only through `wasi:http`, and only the
//! hosts allow-listed for the module at deploy time; workflows have no
//! network at all.

use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft::config::RpcMode;
use weft::model::RunStatus;
use weft::service::ServiceError;
use weft_tests::{Service, bytes, test_guest};

const T: Duration = Duration::from_secs(60);

/// A minimal HTTP server on loopback that answers `hello` and counts the
/// requests that reached it.
async fn hello_server() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
                    )
                    .await;
            });
        }
    });
    (port, hits)
}

async fn service() -> Service {
    let s = Service::start(RpcMode::Inline, |_, _| {});
    s.deploy("relay", &test_guest("relay")).await;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_listed_host_is_reachable_and_nothing_else_is() {
    let (port, hits) = hello_server().await;
    let s = service().await;
    let fetcher = bytes(&test_guest("fetcher"));
    let allowed = vec![format!("127.0.0.1:{port}")];
    s.svc
        .deploy_with_hosts("open", fetcher.clone(), &allowed)
        .await
        .unwrap();
    s.svc.deploy("closed", fetcher.clone()).await.unwrap();
    s.svc
        .deploy_with_hosts(
            "other-port",
            fetcher,
            &[format!("127.0.0.1:{}", port.wrapping_add(1))],
        )
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/greeting");

    let ok = s
        .run(
            "relay",
            &json!({"rpc": "open/get", "input": {"url": url}}),
            T,
        )
        .await;
    assert_eq!(ok.status, RunStatus::Completed, "{ok:?}");
    let out: serde_json::Value = serde_json::from_str(ok.output.as_deref().unwrap()).unwrap();
    assert_eq!(out, json!({"status": 200, "body": "hello"}));
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    for module in ["closed", "other-port"] {
        let denied = s
            .run(
                "relay",
                &json!({"rpc": format!("{module}/get"), "input": {"url": url}}),
                T,
            )
            .await;
        assert_eq!(denied.status, RunStatus::Failed, "{module}: {denied:?}");
        let error = denied.error.unwrap();
        assert_eq!(error.code, "http_failed", "{module}: {error:?}");
        assert!(
            error.message.to_lowercase().contains("denied"),
            "{module}: {}",
            error.message
        );
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "denied requests never reached the server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_cannot_use_the_network() {
    let s = service().await;
    let err = s
        .svc
        .deploy("net", bytes(&test_guest("net-workflow")))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ServiceError::Deploy(_)), "{err:?}");
    assert!(
        text.contains("wasi:http/"),
        "the error names the import: {text}"
    );
    let hosts = vec!["example.com".to_string()];
    let err = s
        .svc
        .deploy_with_hosts("relay2", bytes(&test_guest("relay")), &hosts)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("workflows cannot make network requests"),
        "{err}"
    );
    let err = s
        .svc
        .deploy_with_hosts(
            "f",
            bytes(&test_guest("fetcher")),
            &["http://x/".to_string()],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid allowed host"), "{err}");
}

/// Deploys `guest` (an RPC module with a `get` function) as `open-<lang>`,
/// allowed to reach a loopback server, and as `closed-<lang>`, allowed
/// nothing. Through the open one the server answers; the closed one fails
/// with `http_failed` before any connection. Returns that error.
async fn only_the_allow_listed_host_answers(guest: &str, lang: &str) -> weft::model::ErrorInfo {
    let (port, hits) = hello_server().await;
    let s = service().await;
    let module = bytes(&test_guest(guest));
    let (open, closed) = (format!("open-{lang}"), format!("closed-{lang}"));
    s.svc
        .deploy_with_hosts(&open, module.clone(), &[format!("127.0.0.1:{port}")])
        .await
        .unwrap();
    s.svc.deploy(&closed, module).await.unwrap();
    let url = format!("http://127.0.0.1:{port}/greeting");

    let ok = s
        .run(
            "relay",
            &json!({"rpc": format!("{open}/get"), "input": {"url": url}}),
            T,
        )
        .await;
    assert_eq!(ok.status, RunStatus::Completed, "{ok:?}");
    let out: serde_json::Value = serde_json::from_str(ok.output.as_deref().unwrap()).unwrap();
    assert_eq!(out, json!({"status": 200, "body": "hello"}));
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    let denied = s
        .run(
            "relay",
            &json!({"rpc": format!("{closed}/get"), "input": {"url": url}}),
            T,
        )
        .await;
    assert_eq!(denied.status, RunStatus::Failed, "{denied:?}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the denied request never reached the server"
    );
    let error = denied.error.expect("the denied run's error");
    assert_eq!(error.code, "http_failed", "{error:?}");
    error
}

/// `fetch` in a JavaScript RPC module goes through the same `wasi:http` and
/// the same allow-list as Rust's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_fetch_reaches_only_allow_listed_hosts() {
    only_the_allow_listed_host_answers("hostile-rpc-js", "js").await;
}

/// `weft.http` in a Python RPC module goes through the same `wasi:http` and
/// allow-list as Rust's and JavaScript's, with the same code, and the
/// failure is permanent (retrying cannot make the host allowed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_http_reaches_only_allow_listed_hosts() {
    let error = only_the_allow_listed_host_answers("http-rpc-py", "py").await;
    assert!(error.message.contains("denied"), "{}", error.message);
    let details = error.details.unwrap_or_default();
    assert_eq!(details["retryable"], false, "{details}");
    assert_eq!(details["reason"], "HttpRequestDenied", "{details}");
}

/// A loopback server that answers what it received: `/missing` with 404,
/// anything else with 201, a JSON echo of the request and the header
/// `x-echo` sent twice.
async fn echo_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(echo(socket));
        }
    });
    port
}

async fn echo(mut socket: tokio::net::TcpStream) {
    let mut received = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let path = request_line.next().unwrap_or_default().to_string();
    let header = |name: &str| {
        head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while received.len() < head_end + length {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
    let (status, body) = if path == "/missing" {
        ("404 Not Found", json!({"error": "no such thing"}))
    } else {
        let sent = String::from_utf8_lossy(&received[head_end..head_end + length]);
        (
            "201 Created",
            json!({
                "method": method,
                "path": path,
                "contentType": header("content-type"),
                "idempotencyKey": header("idempotency-key"),
                "body": sent,
            }),
        )
    };
    let body = body.to_string();
    let response = format!(
        "HTTP/1.1 {status}\r\nx-echo: a\r\nx-echo: b\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = socket.write_all(response.as_bytes()).await;
}

/// The Python client sends a method, headers and a JSON body (one larger
/// than a single `wasi:io` write), and gives back any status as a response
/// rather than an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_http_sends_bodies_and_reads_any_status() {
    let port = echo_server().await;
    let s = service().await;
    s.svc
        .deploy_with_hosts(
            "http-py",
            bytes(&test_guest("http-rpc-py")),
            &[format!("127.0.0.1:{port}")],
        )
        .await
        .unwrap();
    let order = json!({"sku": "book", "qty": 2, "note": "x".repeat(100_000)});
    let input = json!({
        "method": "post",
        "url": format!("http://127.0.0.1:{port}/orders?dry=1"),
        "json": order,
    });

    let sent = s
        .run("relay", &json!({"rpc": "http-py/send", "input": input}), T)
        .await;
    assert_eq!(sent.status, RunStatus::Completed, "{sent:?}");
    let out: serde_json::Value = serde_json::from_str(sent.output.as_deref().unwrap()).unwrap();
    assert_eq!(out["status"], 201);
    assert_eq!(out["ok"], true);
    assert_eq!(out["headers"]["x-echo"], "a, b", "repeated headers joined");
    let echoed = &out["body"];
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["path"], "/orders?dry=1");
    assert_eq!(echoed["contentType"], "application/json");
    assert_eq!(
        echoed["idempotencyKey"],
        format!("{}/call", sent.id),
        "the call's key went out as a header"
    );
    let body: serde_json::Value = serde_json::from_str(echoed["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, order, "the whole body arrived");

    let input = json!({"method": "GET", "url": format!("http://127.0.0.1:{port}/missing")});
    let missing = s
        .run("relay", &json!({"rpc": "http-py/send", "input": input}), T)
        .await;
    assert_eq!(missing.status, RunStatus::Completed, "{missing:?}");
    let out: serde_json::Value = serde_json::from_str(missing.output.as_deref().unwrap()).unwrap();
    assert_eq!(out["status"], 404);
    assert_eq!(out["ok"], false);
    assert_eq!(out["body"], json!({"error": "no such thing"}));
}

/// The WASI WIT the Python SDK builds RPC modules with
/// (`guest-sdk/python/weft/wit/deps`) is a copy of what the host's
/// wasmtime-wasi-http ships, so an upgrade of wasmtime that changes it
/// fails here until the copy is refreshed.
#[test]
fn python_sdk_vendors_the_wasi_wit_the_host_links() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(weft_tests::root())
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifest = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "wasmtime-wasi-http")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("wasmtime-wasi-http is a dependency");
    let shipped = std::path::Path::new(manifest)
        .parent()
        .unwrap()
        .join("wit/deps");
    let vendored = weft_tests::root().join("guest-sdk/python/weft/wit/deps");
    let names = |dir: &std::path::Path| {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&vendored), names(&shipped), "the same WIT files");
    for name in names(&shipped) {
        assert!(
            bytes(&vendored.join(&name)) == bytes(&shipped.join(&name)),
            "{} differs from {}: copy it over",
            vendored.join(&name).display(),
            shipped.join(&name).display()
        );
    }
}
