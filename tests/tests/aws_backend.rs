//! The conformance and scenario suites on the AWS backend (DynamoDB, SQS,
//! S3), against the moto emulator over HTTP.

fn provision()
-> std::pin::Pin<Box<dyn std::future::Future<Output = weft_tests::conformance::Backend> + Send>> {
    Box::pin(weft_tests::aws::test_backend())
}

mod conformance {
    use super::provision;
    weft_tests::conformance_suite!(provision);
}

mod scenarios {
    use super::provision;
    weft_tests::scenario_suite!(provision);
}

/// A precompiled artifact written by one host is loaded by another whose
/// `/tmp` is empty (a Lambda cold start) from the shared copy in S3, and
/// only if its bytes still hash to the digest recorded with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precompiled_artifacts_are_shared_through_the_bucket() {
    use weft::config::Limits;
    use weft::engine::WeftEngine;
    use weft::model::Digest;
    use weft::registry::loader::ComponentLoader;

    let backend = weft_tests::aws::test_backend().await;
    let engine = WeftEngine::new(Limits::default()).unwrap();
    let loader = |dir: &std::path::Path| {
        ComponentLoader::new(
            engine.engine.clone(),
            engine.engine_hash.clone(),
            backend.modules.clone(),
            dir.to_path_buf(),
        )
    };
    let wasm = weft_tests::bytes(&weft_tests::example("hello"));
    let digest = Digest::of(&wasm);
    backend.modules.put_blob(&digest, &wasm).await.unwrap();

    let first = tempfile::tempdir().unwrap();
    let compiled = loader(first.path())
        .compile_fresh(&digest, wasm.clone())
        .await
        .unwrap();
    loader(first.path())
        .store_artifact(&digest, &compiled)
        .await
        .unwrap();

    let fresh = tempfile::tempdir().unwrap();
    assert!(
        loader(fresh.path())
            .load_artifact(&digest)
            .await
            .unwrap()
            .is_some(),
        "a host with an empty cache directory loads the shared artifact"
    );
    assert_eq!(
        std::fs::read_dir(fresh.path()).unwrap().count(),
        1,
        "and keeps a copy on its own disk"
    );

    // Tampered shared bytes are refused (the loader falls back to compiling).
    let shared = backend
        .modules
        .get_shared_artifact(&digest, &engine.engine_hash)
        .await
        .unwrap()
        .expect("the artifact is in the bucket");
    let mut tampered = shared.clone();
    if let Some(last) = tampered.last_mut() {
        *last ^= 0xff;
    }
    backend
        .modules
        .put_shared_artifact(&digest, &engine.engine_hash, &tampered)
        .await
        .unwrap();
    let other = tempfile::tempdir().unwrap();
    assert!(
        loader(other.path())
            .load_artifact(&digest)
            .await
            .unwrap()
            .is_none()
    );
}

/// DynamoDB may keep answering a batch write with every item unprocessed
/// (throttling). Logs too many to ride in the state transaction are written
/// first, by such batches; if they never get through, the commit fails and
/// no state moves, so no run advances past lines it has lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_logs_stay_throttled_fails_before_any_state_moves() {
    use weft::backend::aws::dynamo::DynamoStore;
    use weft::backend::aws::{AwsClients, AwsSettings};
    use weft::backend::{RunWrite, StateStore, StateWrite};
    use weft::model::LogLine;

    let (env, direct) = weft_tests::aws::test_store().await;
    let settings = AwsSettings {
        endpoint: Some(throttling_proxy(weft_tests::aws::endpoint()).await),
        ..env.settings.clone()
    };
    let clients = AwsClients::connect(&settings, Some(weft_tests::aws::credentials())).await;
    let throttled = DynamoStore::new(clients.dynamo.clone(), &settings);

    let run = weft_tests::conformance::run_record("throttled-logs");
    direct.create_run(&run).await.unwrap();
    let mut next = run.clone();
    next.updated_at += 1;
    // More lines than a transaction holds: they go ahead of it, batched.
    let logs = (0..120)
        .map(|index| {
            let line = LogLine {
                position: 0,
                index,
                at: 1,
                level: "info".into(),
                message: format!("line {index}"),
            };
            (run.id.clone(), line)
        })
        .collect();
    let write = StateWrite {
        run: Some(RunWrite::replacing(&run, next)),
        logs,
        ..Default::default()
    };
    let result = throttled.commit(write).await;
    assert!(
        result.is_err(),
        "a commit whose logs were never written reported success"
    );
    let stored = direct.get_run(&run.id).await.unwrap().unwrap();
    assert_eq!(
        stored.version, run.version,
        "the run advanced although its logs were not written"
    );
}

/// An HTTP endpoint in front of the emulator that passes every request
/// through except `BatchWriteItem`, which it answers with every item
/// unprocessed, as a throttled table does. Returns its address.
async fn throttling_proxy(upstream: String) -> String {
    use axum::body::{Body, to_bytes};
    use axum::extract::Request;
    use axum::response::Response;

    // Headers the proxy's own HTTP stack sets for each hop.
    const HOP_BY_HOP: &[&str] = &["host", "content-length", "transfer-encoding", "connection"];
    let client = reqwest::Client::new();
    let handler = move |request: Request| {
        let (client, upstream) = (client.clone(), upstream.clone());
        async move {
            let (parts, body) = request.into_parts();
            let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
            let target = parts
                .headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if target.ends_with(".BatchWriteItem") {
                let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let answer = serde_json::json!({ "UnprocessedItems": request["RequestItems"] });
                return Response::builder()
                    .header("content-type", "application/x-amz-json-1.0")
                    .body(Body::from(answer.to_string()))
                    .unwrap();
            }
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).unwrap();
            let mut forward = client.request(method, format!("{upstream}{path}"));
            for (name, value) in &parts.headers {
                if !HOP_BY_HOP.contains(&name.as_str()) {
                    forward = forward.header(name.as_str(), value.as_bytes());
                }
            }
            let answer = forward.body(body.to_vec()).send().await.unwrap();
            let mut response = Response::builder().status(answer.status().as_u16());
            for (name, value) in answer.headers() {
                if HOP_BY_HOP.contains(&name.as_str()) {
                    continue;
                }
                response = response.header(name.as_str(), value.as_bytes());
            }
            response
                .body(Body::from(answer.bytes().await.unwrap_or_default()))
                .unwrap()
        }
    };
    let app = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

/// A run item written before the journal was chunked (every name in
/// `stepNames`, no `stepBase`) still reads whole, and a step appended to it
/// afterwards lands on top of the full journal, not on top of a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_written_before_journal_chunks_carries_on() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use weft::backend::aws::dynamo::items::run_item;
    use weft::backend::{RunWrite, StateStore, StateWrite};

    let (env, store) = weft_tests::aws::test_store().await;
    let names: Vec<String> = (0..250).map(|i| format!("step-{i}")).collect();
    let mut run = weft_tests::conformance::run_record("legacy-journal");
    run.step_names = names.clone().into();
    // The old layout, as an older Weft wrote it.
    let mut item = run_item(&run);
    item.remove("stepBase");
    item.insert(
        "stepNames".into(),
        AttributeValue::L(names.iter().cloned().map(AttributeValue::S).collect()),
    );
    env.clients
        .dynamo
        .put_item()
        .table_name(&env.settings.runs_table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();

    let read = store.get_run(&run.id).await.unwrap().unwrap();
    assert!(read.step_names == names, "the old item did not read whole");
    let mut next = read.clone();
    next.step_names.push("step-250".into());
    store
        .commit(StateWrite {
            run: Some(RunWrite::replacing(&read, next)),
            ..Default::default()
        })
        .await
        .unwrap();
    let after = store.get_run(&run.id).await.unwrap().unwrap();
    let mut expected = names;
    expected.push("step-250".into());
    assert!(
        after.step_names == expected,
        "after one more step the journal reads {} names",
        after.step_names.len()
    );
}

/// The sweep reads only the runs that went quiet: with forty busy running
/// runs and none quiet it reads no run at all (reading every running run
/// to decide, as it once did, costs a BatchGetItem of all forty), and with
/// two quiet ones it re-drives exactly those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_reads_only_the_runs_that_went_quiet() {
    use weft::config::RpcMode;
    use weft::service::worker;

    let env = weft_tests::aws::AwsEnv::provision(Default::default()).await;
    let backend = env.backend(std::time::Duration::from_secs(60), 5).await;
    let state = backend.state.clone();
    let s = weft_tests::Service::on(backend, RpcMode::Queued, |_, _| {});
    for _ in 0..40 {
        let run = weft_tests::conformance::run_record("wf-busy");
        state.create_run(&run).await.unwrap();
    }
    let reads = |counts: &std::collections::BTreeMap<String, u64>| {
        counts
            .iter()
            .filter(|(op, _)| op.ends_with("BatchGetItem") || op.ends_with("GetItem"))
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    env.clients.counter.reset();
    assert_eq!(worker::sweep_runs(&s.svc).await.unwrap(), 0);
    let counts = env.clients.counter.snapshot();
    assert_eq!(reads(&counts), 0, "the sweep read runs: {counts:?}");

    let an_hour_ago = weft::model::now_millis() - 3_600_000;
    for _ in 0..2 {
        let mut run = weft_tests::conformance::run_record("wf-stranded");
        run.created_at = an_hour_ago;
        run.updated_at = an_hour_ago;
        state.create_run(&run).await.unwrap();
    }
    assert_eq!(worker::sweep_runs(&s.svc).await.unwrap(), 2);
}

/// Runs started before the quiet index existed are not in it; `weft aws
/// init` adds the index to a table made without it and indexes them, so
/// the sweep finds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_from_before_the_quiet_index_are_found_by_the_sweep() {
    use aws_sdk_dynamodb::types::{DeleteGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate};
    use weft::backend::StateStore;
    use weft::backend::aws::dynamo::items::run_item;
    use weft::backend::aws::init::init;

    let (env, store) = weft_tests::aws::test_store().await;
    let runs = &env.settings.runs_table;
    // The table as an older Weft made it: no quiet index, and a stranded
    // run without the index's attributes.
    env.clients
        .dynamo
        .update_table()
        .table_name(runs)
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .delete(
                    DeleteGlobalSecondaryIndexAction::builder()
                        .index_name("quiet-index")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut run = weft_tests::conformance::run_record("wf-old");
    run.updated_at -= 3_600_000;
    let mut item = run_item(&run);
    item.remove("quietShard");
    item.remove("quietKey");
    env.clients
        .dynamo
        .put_item()
        .table_name(runs)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();

    let done = init(&env.clients, &env.settings, Default::default())
        .await
        .unwrap();
    assert!(
        done.iter()
            .any(|p| p.created && p.name.ends_with("/quiet-index")),
        "{done:?}"
    );
    let quiet_before = weft::model::now_millis() - 60_000;
    let page = store.list_quiet_runs(quiet_before, None, 10).await.unwrap();
    assert_eq!(
        page.runs.iter().map(|r| &r.id).collect::<Vec<_>>(),
        [&run.id]
    );
}

/// The acceptance check of stored-aside payloads on the raw DynamoDB items:
/// a saga with a 20 MB input and a 5 MB RPC result leaves every item of
/// every table under DynamoDB's 400 KB (sized as DynamoDB sizes them), and
/// the payloads in S3 under `payloads/<run>/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_item_of_a_run_with_large_payloads_fits_dynamodb() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use serde_json::json;
    use std::time::Duration;
    use weft::config::RpcMode;
    use weft::model::RunStatus;
    use weft_tests::{Service, example, saga_input};

    fn value_size(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.len(),
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
            AttributeValue::M(m) => {
                3 + m
                    .iter()
                    .map(|(k, v)| 1 + k.len() + value_size(v))
                    .sum::<usize>()
            }
            AttributeValue::Ss(s) => s.iter().map(String::len).sum(),
            AttributeValue::Ns(n) => n.iter().map(String::len).sum(),
            _ => 1,
        }
    }

    let env = weft_tests::aws::AwsEnv::provision(weft::backend::aws::init::QueueOptions {
        visibility_timeout: Duration::from_secs(1),
        max_receives: 3,
    })
    .await;
    let mut s = Service::on(
        env.backend(Duration::from_secs(1), 3).await,
        RpcMode::Queued,
        |_, _| {},
    );
    s.deploy("order-saga", &example("order-saga")).await;
    s.deploy("order-rpc", &example("order-rpc")).await;
    s.start_worker();
    let mut input = saga_input("o-raw");
    input["labelBytes"] = json!(5 << 20);
    input["note"] = json!("n".repeat(20 << 20));
    let run = s.run("order-saga", &input, Duration::from_secs(60)).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);

    let settings = &env.settings;
    let mut largest = (0, String::new());
    for (table, item) in env.scan_state_tables().await {
        let size: usize = item.iter().map(|(k, v)| k.len() + value_size(v)).sum();
        if size > largest.0 {
            largest = (size, table);
        }
    }
    assert!(
        largest.0 < 400 * 1024,
        "the largest item ({} in {}) does not fit",
        largest.0,
        largest.1
    );
    let objects = env
        .clients
        .s3
        .list_objects_v2()
        .bucket(&settings.modules_bucket)
        .prefix(format!("payloads/{}/", run.id))
        .send()
        .await
        .unwrap();
    let sizes: Vec<i64> = objects.contents().iter().filter_map(|o| o.size()).collect();
    assert!(
        sizes.iter().any(|&n| n > 20 << 20),
        "the input is in S3: {sizes:?}"
    );
    assert!(
        sizes.iter().any(|&n| n > 5 << 20 && n < 6 << 20),
        "the label is in S3: {sizes:?}"
    );
}

/// Retention on the raw tables: a finished run with a journal past one
/// chunk, steps, attempts, logs, events of two names (with their sender-id
/// markers) and a callback carries its TTL attribute in seconds, and once
/// deleted leaves no item in any table that names it. The conformance case
/// sees through the store; this one sees the items it cannot (chunks,
/// inboxes, markers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_run_leaves_no_item_in_any_table() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use weft::backend::{
        CallbackWrite, NewEvent, RunWrite, StateStore, StateWrite, StepExpect, StepWrite,
    };
    use weft::model::{
        AttemptRecord, CallbackRecord, CallbackState, LogLine, RunStatus, StepRecord, StepStatus,
        now_millis,
    };
    use weft_tests::conformance::run_record;

    let (env, store) = weft_tests::aws::test_store().await;
    let mut run = run_record("wf-raw-retention");
    store.create_run(&run).await.unwrap();
    let other = run_record("wf-raw-retention");
    store.create_run(&other).await.unwrap();
    for (name, id) in [("go", "a"), ("go", "b"), ("stop", "a")] {
        for target in [&run, &other] {
            store
                .send_event(NewEvent {
                    run_id: target.id.clone(),
                    name: name.into(),
                    event_id: id.into(),
                    payload: "1".into(),
                    sent_at: now_millis(),
                })
                .await
                .unwrap();
        }
    }
    // 150 names: one full chunk item and a tail; a few of them as steps.
    let mut next = run.clone();
    for i in 0..150 {
        next.step_names.push(format!("s{i}"));
    }
    let steps: Vec<StepWrite> = (0..3)
        .map(|i| {
            let call = weft::model::StepCall {
                kind: weft::model::StepKind::Rpc,
                name: format!("s{i}"),
                rpc_name: Some("m/f".into()),
                input: Some("{}".into()),
                options: Default::default(),
            };
            StepWrite {
                record: StepRecord::new(&run.id, i, &call, now_millis()),
                expect: StepExpect::Absent,
            }
        })
        .collect();
    let attempts = (1..=2)
        .map(|attempt| AttemptRecord {
            step_id: StepRecord::key(&run.id, "s0"),
            attempt,
            status: StepStatus::Failed,
            error: None,
            started_at: 1,
            ended_at: Some(2),
        })
        .collect();
    let logs = (0..3)
        .map(|index| {
            let line = LogLine {
                position: 0,
                index,
                at: 1,
                level: "info".into(),
                message: "m".into(),
            };
            (run.id.clone(), line)
        })
        .collect();
    let callback = CallbackRecord {
        hash: weft::model::token_hash("wcb_raw"),
        run_id: run.id.clone(),
        step: "link".into(),
        created_at: now_millis(),
        expires_at: Some(now_millis() + 60_000),
        state: CallbackState::Waiting,
    };
    store
        .commit(StateWrite {
            run: Some(RunWrite::replacing(&run, next.clone())),
            steps,
            attempts,
            logs,
            callbacks: vec![CallbackWrite::Create(callback)],
            ..Default::default()
        })
        .await
        .unwrap();
    next.version = run.version + 1;
    run = next;
    let mut ended = run.clone();
    ended.status = RunStatus::Completed;
    ended.expires_at = Some(1_000_000_000_000);
    store
        .commit(StateWrite {
            run: Some(RunWrite::replacing(&run, ended)),
            ..Default::default()
        })
        .await
        .unwrap();

    let names = |item: &std::collections::HashMap<String, AttributeValue>, id: &str| {
        item.values()
            .any(|v| v.as_s().is_ok_and(|s| s.contains(id)))
    };
    let before = env.scan_state_tables().await;
    let run_item = before
        .iter()
        .find(|(_, i)| i.get("id").and_then(|v| v.as_s().ok()) == Some(&run.id.to_string()))
        .map(|(_, i)| i.clone())
        .expect("the run item");
    assert_eq!(
        run_item.get("expiresAt"),
        Some(&AttributeValue::N("1000000000".into())),
        "DynamoDB's TTL counts seconds"
    );
    let stored = before
        .iter()
        .filter(|(_, i)| names(i, run.id.as_str()))
        .count();
    // The run, a chunk, 3 steps, 2 attempts, 3 logs, 2 inboxes, 3 events,
    // 3 markers, the callback.
    assert_eq!(stored, 19, "{before:#?}");
    let others = before
        .iter()
        .filter(|(_, i)| names(i, other.id.as_str()))
        .count();

    store.delete_run(&run.id).await.unwrap();
    let after = env.scan_state_tables().await;
    let left: Vec<_> = after
        .iter()
        .filter(|(_, i)| names(i, run.id.as_str()))
        .collect();
    assert!(left.is_empty(), "{left:#?}");
    assert_eq!(
        after
            .iter()
            .filter(|(_, i)| names(i, other.id.as_str()))
            .count(),
        others,
        "the other run keeps everything"
    );
}
