//! The Lambda functions, for real: the `weft-http` and `weft-worker`
//! binaries under the cargo-lambda Runtime API emulator, fed real API
//! Gateway (REST v1 and HTTP API v2) and SQS event JSON, against moto.

use aws_sdk_sqs::types::MessageSystemAttributeName;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use weft::backend::aws::init::QueueOptions;
use weft_tests::aws::AwsEnv;
use weft_tests::lambda::{
    LambdaFunction, http_api_event, queue_arn, response, rest_api_event, sqs_record,
};
use weft_tests::{DevServer, bytes, example, saga_input, weft_bin};

async fn env() -> AwsEnv {
    AwsEnv::provision(QueueOptions {
        visibility_timeout: Duration::from_secs(2),
        max_receives: 5,
    })
    .await
}

/// Moves what is on the queue into the worker function, as the SQS event
/// source mapping would (deleting what it reports as processed).
async fn pump(env: &AwsEnv, worker: &LambdaFunction) -> usize {
    let url = format!(
        "{}{}",
        env.settings.queue_url_prefix.as_deref().unwrap_or_default(),
        env.settings.queue_name
    );
    let out = env
        .clients
        .sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .unwrap();
    let messages = out.messages();
    if messages.is_empty() {
        return 0;
    }
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            sqs_record(
                m.message_id().unwrap(),
                m.body().unwrap(),
                1,
                &queue_arn(env),
            )
        })
        .collect();
    let reply = worker.invoke(&json!({ "Records": records })).unwrap();
    let failed: Vec<&str> = reply["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["itemIdentifier"].as_str())
        .collect();
    assert!(failed.is_empty(), "the worker reported failures: {reply}");
    for m in messages {
        env.clients
            .sqs
            .delete_message()
            .queue_url(&url)
            .receipt_handle(m.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
    }
    messages.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_saga_runs_through_the_http_and_worker_functions() {
    let env = env().await;
    let http = LambdaFunction::start("weft-http", &env.env(), &[]).unwrap();
    let worker = LambdaFunction::start("weft-worker", &env.env(), &[]).unwrap();

    for (name, module) in [("order-saga", "order-saga"), ("order-rpc", "order-rpc")] {
        let event = http_api_event(
            "PUT",
            &format!("/v1/modules/{name}"),
            "",
            Some(&bytes(&example(module))),
        );
        let (status, body) = response(&http.invoke(&event).unwrap());
        assert_eq!(status, 201, "{body}");
    }
    // A REST v1 event starts the run.
    let mut input = saga_input("o-lambda");
    input["coolOffMs"] = json!(500);
    let start = rest_api_event(
        "POST",
        "/v1/workflows/order-saga/runs",
        Some(&input.to_string()),
    );
    let (status, body) = response(&http.invoke(&start).unwrap());
    assert_eq!(status, 202, "{body}");
    let run_id = body["runId"].as_str().unwrap().to_string();

    let deadline = Instant::now() + Duration::from_secs(120);
    let run = loop {
        pump(&env, &worker).await;
        let (_, run) = response(
            &http
                .invoke(&http_api_event(
                    "GET",
                    &format!("/v1/runs/{run_id}"),
                    "",
                    None,
                ))
                .unwrap(),
        );
        if run["status"] != "running" {
            break run;
        }
        assert!(Instant::now() < deadline, "the run did not finish: {run}");
    };
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"]["trackingNumber"], "trk-o-lambda");
    let (status, steps) = response(
        &http
            .invoke(&http_api_event(
                "GET",
                &format!("/v1/runs/{run_id}/steps"),
                "",
                None,
            ))
            .unwrap(),
    );
    assert_eq!(status, 200);
    let names: Vec<&str> = steps["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["price", "reserve", "charge", "cool-off", "ship"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_is_the_only_failure_reported() {
    let env = env().await;
    let worker = LambdaFunction::start("weft-worker", &env.env(), &[]).unwrap();
    let mut records = Vec::new();
    for i in 0..9 {
        // Well-formed work (for runs that do not exist: handled, nothing to do).
        let body =
            json!({"type": "resume", "runId": format!("01938a3c-0000-7000-8000-00000000000{i}")});
        records.push(sqs_record(
            &format!("good-{i}"),
            &body.to_string(),
            1,
            &queue_arn(&env),
        ));
    }
    records.insert(
        4,
        sqs_record(
            "poison",
            "{this is not a weft envelope",
            1,
            &queue_arn(&env),
        ),
    );
    let reply = worker.invoke(&json!({ "Records": records })).unwrap();
    assert_eq!(
        reply,
        json!({"batchItemFailures": [{"itemIdentifier": "poison"}]})
    );

    // The scheduled sweep is handled by the same function.
    let sweep = json!({
        "version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-25T23:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/sweep"], "detail": {}
    });
    assert_eq!(
        worker.invoke(&sweep).unwrap(),
        json!({"resumed": 0, "schedulesFired": 0, "purged": 0})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_become_api_gateway_responses() {
    let env = env().await;
    let http = LambdaFunction::start("weft-http", &env.env(), &[]).unwrap();
    let cases = [
        (
            http_api_event(
                "GET",
                "/v1/runs/01938a3c-0000-7000-8000-000000000000",
                "",
                None,
            ),
            404,
            "unknown_run",
        ),
        (
            http_api_event("GET", "/v1/runs/nope", "", None),
            400,
            "invalid_run_id",
        ),
        (
            rest_api_event("POST", "/v1/workflows/missing/runs", Some("{}")),
            404,
            "unknown_workflow",
        ),
        (
            rest_api_event("POST", "/v1/workflows/missing/runs", Some("{bad")),
            400,
            "invalid_json",
        ),
        (
            http_api_event("PUT", "/v1/modules/junk", "", Some(b"not wasm")),
            400,
            "not_wasm",
        ),
    ];
    for (event, want, code) in cases {
        let (status, body) = response(&http.invoke(&event).unwrap());
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (want, Some(code)),
            "{body}"
        );
    }
    // A backend failure (a table that does not exist) is a 503 with a JSON
    // body, and the function keeps serving.
    let broken = LambdaFunction::start(
        "weft-http",
        &env.env(),
        &[("RUNS_TABLE_NAME", "no-such-table")],
    )
    .unwrap();
    let (status, body) = response(
        &broken
            .invoke(&http_api_event(
                "GET",
                "/v1/runs/01938a3c-0000-7000-8000-000000000000",
                "",
                None,
            ))
            .unwrap(),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("store_unavailable")),
        "{body}"
    );
    let (status, _) = response(
        &broken
            .invoke(&http_api_event("GET", "/healthz", "", None))
            .unwrap(),
    );
    assert_eq!(status, 200);

    // The console is served by the function too: its page and script, with
    // the data behind the API's auth like every /v1 route.
    for (path, marker) in [
        ("/", "<title>Weft console</title>"),
        ("/console/app.js", "function runPage("),
    ] {
        let answer = http.invoke(&http_api_event("GET", path, "", None)).unwrap();
        let (status, body) = response(&answer);
        assert_eq!(status, 200, "{path}: {answer}");
        assert!(
            body.as_str().is_some_and(|b| b.contains(marker)),
            "{path}: {answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_modules_upload_through_a_presigned_url() {
    let env = env().await;
    let http = LambdaFunction::start("weft-http", &env.env(), &[]).unwrap();
    let big = bytes(&example("hello-js"));
    assert!(big.len() > 6 << 20, "bigger than a Lambda request may be");
    let (status, offer) = response(
        &http
            .invoke(&http_api_event(
                "POST",
                "/v1/modules/hello-js/uploads",
                "",
                None,
            ))
            .unwrap(),
    );
    assert_eq!(status, 201, "{offer}");
    let put = reqwest::Client::new()
        .put(offer["uploadUrl"].as_str().unwrap())
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let register = offer["register"].as_str().unwrap();
    let (status, module) = response(
        &http
            .invoke(&http_api_event("POST", register, "", None))
            .unwrap(),
    );
    assert_eq!(status, 201, "{module}");
    assert_eq!(module["kind"], "workflow");
    assert_eq!(module["size"], big.len());
    // The staged object is gone: registering twice finds nothing.
    let (status, again) = response(
        &http
            .invoke(&http_api_event("POST", register, "", None))
            .unwrap(),
    );
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (404, Some("unknown_upload"))
    );
}

/// `weft deploy` picks the staged path by itself for a module over the
/// direct-upload limit, and falls back to a direct upload where the server
/// has no staging area (the embedded backend).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weft_deploy_stages_large_modules_transparently() {
    let env = env().await;
    let module = example("hello-js");
    for (label, vars) in [("aws", env.env()), ("embedded", Vec::new())] {
        let dir = tempfile::tempdir().unwrap();
        let server = DevServer::start_with(dir.path(), &vars).unwrap();
        let out = std::process::Command::new(weft_bin())
            .args(["deploy", "--name", "hello-js", "--server", &server.url])
            .arg(&module)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            stdout.contains("through a staged upload"),
            label == "aws",
            "{label}: {stdout}"
        );
        let run = server
            .api()
            .post("/v1/workflows/hello-js/runs?wait=60", r#"{"name":"Ada"}"#)
            .await
            .unwrap();
        assert_eq!(
            (run.0, &run.1["output"]["greeting"]),
            (200, &json!("Hello, Ada!")),
            "{label}: {}",
            run.1
        );
    }
}

/// On AWS a large input goes through S3 and so does a large output: the
/// HTTP function offers a presigned upload for the input and starts the
/// run from it, and answers a request for the output with a redirect to a
/// presigned download instead of a body Lambda could not return. The run
/// itself is driven by `weft dev` on the same tables and queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_inputs_and_outputs_go_through_s3() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start_with(dir.path(), &env.env()).unwrap();
    let api = server.api();
    api.deploy("order-saga", &example("order-saga"))
        .await
        .unwrap();
    api.deploy("order-rpc", &example("order-rpc"))
        .await
        .unwrap();
    let http = LambdaFunction::start("weft-http", &env.env(), &[]).unwrap();

    let mut input = saga_input("o-s3");
    input["labelBytes"] = json!(7 << 20);
    input["note"] = json!("n".repeat(8 << 20));
    let input_text = input.to_string();
    assert!(
        input_text.len() > 6 << 20,
        "bigger than a Lambda request may be"
    );
    let (status, offer) = response(
        &http
            .invoke(&http_api_event(
                "POST",
                "/v1/workflows/order-saga/uploads",
                "",
                None,
            ))
            .unwrap(),
    );
    assert_eq!(status, 201, "{offer}");
    let put = reqwest::Client::new()
        .put(offer["uploadUrl"].as_str().unwrap())
        .body(input_text.clone())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let start = offer["start"].as_str().unwrap();
    let (path, query) = start.split_once('?').unwrap();
    let (status, started) = response(
        &http
            .invoke(&http_api_event("POST", path, query, None))
            .unwrap(),
    );
    assert_eq!(status, 202, "{started}");
    let id = started["runId"].as_str().unwrap().to_string();

    let mut run = Value::Null;
    for _ in 0..600 {
        run = api.get(&format!("/v1/runs/{id}")).await.unwrap().1;
        if run["status"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(run["status"], "completed", "{run:.400}");
    let output_path = format!("/v1/runs/{id}/output");
    let (status, redirect) = {
        let v = http
            .invoke(&http_api_event("GET", &output_path, "", None))
            .unwrap();
        (v["statusCode"].as_u64(), v)
    };
    assert_eq!(status, Some(303), "{redirect:.300}");
    let link = redirect["headers"]["location"].as_str().unwrap();
    let output = reqwest::get(link).await.unwrap().bytes().await.unwrap();
    let output: Value = serde_json::from_slice(&output).unwrap();
    assert_eq!(output["label"].as_str().map(str::len), Some(7 << 20));
    assert_eq!(output["trackingNumber"], "trk-o-s3");
    // The input reads back from S3 as it was uploaded, byte for byte.
    let read = http
        .invoke(&http_api_event(
            "GET",
            &format!("/v1/runs/{id}/input"),
            "",
            None,
        ))
        .unwrap();
    assert_eq!(
        read["statusCode"], 303,
        "the input is a redirect too, not a body"
    );
    let input_link = api.get(&format!("/v1/runs/{id}")).await.unwrap().1["inputUrl"].clone();
    let (status, fetched) = api.get(input_link.as_str().unwrap()).await.unwrap();
    assert_eq!((status, fetched), (200, input));
}
