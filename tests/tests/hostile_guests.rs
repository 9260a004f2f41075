//! Guests that misbehave end `failed` with a named error code, and the host
//! keeps serving the healthy run started alongside them.

use serde_json::json;
use std::time::Duration;
use weft::config::RpcMode;
use weft::model::RunStatus;
use weft_tests::{Service, example, test_guest};

const T: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_hostile_guest_fails_with_its_code_while_a_healthy_run_completes() {
    let e = Service::start(RpcMode::Inline, |_, limits| {
        limits.workflow_fuel = 500_000_000;
        limits.memory_bytes = 64 << 20;
        limits.max_payload_bytes = 64 << 10;
        limits.max_steps_per_run = 40;
    });
    e.deploy("hostile", &test_guest("hostile")).await;
    e.deploy("hello", &example("hello")).await;

    let cases = [
        (json!({"mode": "loop"}), "cpu_limit"),
        (json!({"mode": "alloc"}), "memory_limit"),
        (json!({"mode": "recurse"}), "stack_overflow"),
        (json!({"mode": "recurse-shadow"}), "trap"),
        (json!({"mode": "panic"}), "trap"),
        (json!({"mode": "trap-in-step"}), "trap"),
        (
            json!({"mode": "big-output", "n": 100_000}),
            "payload_too_large",
        ),
        (
            json!({"mode": "big-step-result", "n": 100_000}),
            "payload_too_large",
        ),
        (json!({"mode": "many-steps", "n": 100}), "step_limit"),
        (json!({"mode": "invalid-json"}), "invalid_output"),
        (json!({"mode": "invalid-utf8"}), "invalid_output"),
        (json!({"mode": "fail", "n": 7}), "custom_failure"),
    ];
    let mut ids = Vec::new();
    for (input, code) in &cases {
        ids.push((
            e.svc
                .start_run("hostile", &input.to_string())
                .await
                .unwrap(),
            input,
            *code,
        ));
    }
    let healthy = e.svc.start_run("hello", r#"{"name":"Ada"}"#).await.unwrap();

    for (id, input, code) in ids {
        let run = e.wait(&id, T).await;
        assert_eq!(run.status, RunStatus::Failed, "{input}: {run:?}");
        let error = run.error.unwrap();
        assert_eq!(error.code, code, "{input}: {}", error.message);
        assert!(!error.message.is_empty());
    }
    let hello = e.wait(&healthy, T).await;
    assert_eq!(hello.status, RunStatus::Completed);
    assert_eq!(
        hello.output.as_deref(),
        Some(r#"{"greeting":"Hello, Ada!"}"#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_reports_the_guests_panic_message() {
    let e = Service::start(RpcMode::Inline, |_, _| {});
    e.deploy("hostile", &test_guest("hostile")).await;
    let run = e.run("hostile", &json!({"mode": "panic"}), T).await;
    let error = run.error.unwrap();
    assert_eq!(error.code, "trap");
    assert!(
        error.message.contains("panicked on purpose"),
        "{}",
        error.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_error_keeps_its_code_and_details() {
    let e = Service::start(RpcMode::Inline, |_, _| {});
    e.deploy("hostile", &test_guest("hostile")).await;
    let run = e.run("hostile", &json!({"mode": "fail", "n": 3}), T).await;
    let error = run.error.unwrap();
    assert_eq!(
        (error.code.as_str(), error.message.as_str()),
        ("custom_failure", "the workflow gave up")
    );
    assert_eq!(error.details, Some(json!({"n": 3})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_megabyte_output_is_refused_not_stored() {
    let e = Service::start(RpcMode::Inline, |_, limits| limits.memory_bytes = 768 << 20);
    e.deploy("hostile", &test_guest("hostile")).await;
    e.deploy("hello", &example("hello")).await;
    let big = e
        .svc
        .start_run(
            "hostile",
            &json!({"mode": "big-output", "n": 100_000_000}).to_string(),
        )
        .await
        .unwrap();
    let healthy = e.svc.start_run("hello", r#"{"name":"Ada"}"#).await.unwrap();
    let run = e.wait(&big, T).await;
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap();
    assert_eq!(error.code, "payload_too_large", "{}", error.message);
    assert!(run.output.is_none());
    assert_eq!(e.wait(&healthy, T).await.status, RunStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_and_python_guests_fail_with_the_same_codes() {
    let e = Service::start(RpcMode::Inline, |_, limits| {
        limits.workflow_fuel = 2_000_000_000;
        limits.memory_bytes = 192 << 20;
    });
    e.deploy("hello", &example("hello")).await;
    for guest in ["hostile-js", "hostile-py"] {
        e.deploy(guest, &test_guest(guest)).await;
    }
    let cases = [
        (json!({"mode": "loop"}), "cpu_limit"),
        (json!({"mode": "alloc"}), "memory_limit"),
        (json!({"mode": "fail", "n": 7}), "custom_failure"),
        (json!({"mode": "throw"}), "error"),
    ];
    let mut ids = Vec::new();
    for guest in ["hostile-js", "hostile-py"] {
        for (input, code) in &cases {
            ids.push((
                guest,
                e.svc.start_run(guest, &input.to_string()).await.unwrap(),
                input,
                *code,
            ));
        }
    }
    // A JavaScript workflow has no wasi:http; calling fetch traps it.
    let fetch = json!({"mode": "fetch"});
    ids.push((
        "hostile-js",
        e.svc
            .start_run("hostile-js", &fetch.to_string())
            .await
            .unwrap(),
        &fetch,
        "trap",
    ));
    let healthy = e.svc.start_run("hello", r#"{"name":"Ada"}"#).await.unwrap();
    for (guest, id, input, code) in ids {
        let run = e.wait(&id, T).await;
        assert_eq!(run.status, RunStatus::Failed, "{guest} {input}: {run:?}");
        let error = run.error.unwrap();
        assert_eq!(error.code, code, "{guest} {input}: {}", error.message);
        if code == "custom_failure" {
            assert_eq!(error.details, Some(json!({"n": 7})), "{guest}");
        }
    }
    assert_eq!(e.wait(&healthy, T).await.status, RunStatus::Completed);
}

/// RPC modules in JavaScript and Python that loop, hoard memory, call a
/// function they do not have, call a host outside their allow-list, look
/// at the host's environment or open a host file: each attempt ends with
/// its code (the relay workflow fails with it, no retries), no request
/// reaches the host, the environment is empty, the file's contents never
/// come back, and a healthy run alongside completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_and_python_rpc_modules_fail_with_the_same_codes() {
    let e = Service::start(RpcMode::Inline, |_, limits| {
        limits.rpc_fuel = 2_000_000_000;
        limits.memory_bytes = 192 << 20;
    });
    e.deploy("relay", &test_guest("relay")).await;
    e.deploy("hello", &example("hello")).await;
    for guest in ["hostile-rpc-js", "hostile-rpc-py"] {
        e.deploy(guest, &test_guest(guest)).await;
    }
    // A host file the module would read if the sandbox let it.
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "the host's secret").unwrap();
    let path = secret.path().display().to_string();
    // A listening host the modules are not allowed to reach: a request let
    // through would connect (the kernel accepts it into the backlog) and
    // then wait for an answer that never comes, so it would end in a
    // timeout, not `http_failed`, and leave a connection behind.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let failing = [
        ("hostile-rpc-js/get", json!({"url": url}), "http_failed"),
        ("hostile-rpc-py/get", json!({"url": url}), "http_failed"),
        ("hostile-rpc-js/loop", json!(null), "cpu_limit"),
        ("hostile-rpc-py/loop", json!(null), "cpu_limit"),
        ("hostile-rpc-js/alloc", json!(null), "memory_limit"),
        ("hostile-rpc-py/alloc", json!(null), "memory_limit"),
        ("hostile-rpc-py/read-file", json!({"path": path}), "error"),
        (
            "hostile-rpc-js/no-such-function",
            json!(null),
            "unknown_function",
        ),
        (
            "hostile-rpc-py/no-such-function",
            json!(null),
            "unknown_function",
        ),
    ];
    let mut ids = Vec::new();
    for (rpc, input, code) in &failing {
        let relay = json!({"rpc": rpc, "input": input}).to_string();
        ids.push((rpc, e.svc.start_run("relay", &relay).await.unwrap(), *code));
    }
    let healthy = e.svc.start_run("hello", r#"{"name":"Ada"}"#).await.unwrap();
    for (rpc, id, code) in ids {
        let run = e.wait(&id, T).await;
        assert_eq!(run.status, RunStatus::Failed, "{rpc}: {run:?}");
        let error = run.error.unwrap();
        assert_eq!(error.code, code, "{rpc}: {}", error.message);
        assert!(!error.message.is_empty(), "{rpc}");
        assert!(
            !error.message.contains("secret"),
            "{rpc}: {}",
            error.message
        );
    }
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener
            .accept()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "a module reached a host outside its allow-list"
    );
    // The test process has an environment; the module sees none of it.
    assert!(std::env::vars().next().is_some());
    let relay = json!({"rpc": "hostile-rpc-py/env", "input": null}).to_string();
    let id = e.svc.start_run("relay", &relay).await.unwrap();
    let run = e.wait(&id, T).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(
        run.output.as_deref(),
        Some("{}"),
        "the module sees no environment"
    );
    assert_eq!(e.wait(&healthy, T).await.status, RunStatus::Completed);
}
