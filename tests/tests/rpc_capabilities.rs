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

/// `fetch` in a JavaScript RPC module goes through the same `wasi:http` and
/// the same allow-list as Rust's: the allowed host answers, another is
/// denied before any connection (the module fails with `http_failed`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_fetch_reaches_only_allow_listed_hosts() {
    let (port, hits) = hello_server().await;
    let s = service().await;
    let module = bytes(&test_guest("hostile-rpc-js"));
    s.svc
        .deploy_with_hosts("open-js", module.clone(), &[format!("127.0.0.1:{port}")])
        .await
        .unwrap();
    s.svc.deploy("closed-js", module).await.unwrap();
    let url = format!("http://127.0.0.1:{port}/greeting");

    let ok = s
        .run(
            "relay",
            &json!({"rpc": "open-js/get", "input": {"url": url}}),
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
            &json!({"rpc": "closed-js/get", "input": {"url": url}}),
            T,
        )
        .await;
    assert_eq!(denied.status, RunStatus::Failed, "{denied:?}");
    assert_eq!(denied.error.unwrap().code, "http_failed");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the denied request never reached the server"
    );
}
