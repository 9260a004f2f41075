//! The HTTP contract of `weft dev`, success and error cases, against the
//! real binary over loopback.

use serde_json::{Value, json};
use std::time::Duration;
use weft_tests::{Api, DevServer, bytes, example, saga_input, test_guest, weft_bin};

const T: Duration = Duration::from_secs(60);

fn server() -> (DevServer, tempfile::TempDir) {
    server_with(&[])
}

fn server_with(env: &[(&str, &str)]) -> (DevServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start(dir.path(), env).expect("weft dev starts");
    (server, dir)
}

/// A payload limit of 256 KB, so the refusals over it stay cheap to test
/// (the default is 32 MB).
const SMALL_PAYLOADS: [(&str, &str); 1] = [("WEFT_MAX_PAYLOAD_BYTES", "262144")];

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_deploy_list_and_refuse_what_is_not_a_weft_component() {
    let (server, _dir) = server();
    let api = server.api();
    assert_eq!(
        api.get("/healthz").await.unwrap(),
        (200, json!({"status": "ok"}))
    );

    let hello = bytes(&example("hello"));
    let (status, body) = api.put("/v1/modules/hello", hello.clone()).await.unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], "hello");
    assert_eq!(body["version"], 1);
    assert_eq!(body["kind"], "workflow");
    assert_eq!(body["digest"].as_str().unwrap().len(), 64);
    // Identical bytes: a no-op returning the same version.
    let (status, again) = api.put("/v1/modules/hello", hello).await.unwrap();
    assert_eq!(
        (status, &again["version"], &again["digest"]),
        (200, &body["version"], &body["digest"])
    );

    let (status, rpc) = api
        .put("/v1/modules/order-rpc", bytes(&example("order-rpc")))
        .await
        .unwrap();
    assert_eq!((status, rpc["kind"].as_str()), (201, Some("rpc")));

    let (status, list) = api.get("/v1/modules").await.unwrap();
    assert_eq!(status, 200);
    let names: Vec<&str> = list["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hello", "order-rpc"]);
    let (status, versions) = api.get("/v1/modules/hello").await.unwrap();
    assert_eq!(
        (status, versions["versions"].as_array().unwrap().len()),
        (200, 1)
    );

    let refused = [
        (
            "random bytes",
            b"definitely not wasm".to_vec(),
            "not_wasm",
            "magic",
        ),
        (
            "core module",
            b"\0asm\x01\0\0\0".to_vec(),
            "not_a_component",
            "core WebAssembly module",
        ),
        (
            "truncated component",
            b"\0asm\x0d\0\x01\0\x01".to_vec(),
            "invalid_component",
            "component",
        ),
        (
            "wrong world",
            bytes(&test_guest("command")),
            "wrong_world",
            "run",
        ),
    ];
    for (what, body, code, hint) in refused {
        let (status, reply) = api.put("/v1/modules/junk", body).await.unwrap();
        assert_eq!(status, 400, "{what}: {reply}");
        assert_eq!(error_code(&reply), code, "{what}: {reply}");
        assert!(
            reply["error"]["message"].as_str().unwrap().contains(hint),
            "{what}: {reply}"
        );
    }
    let (status, reply) = api
        .put("/v1/modules/Bad%20Name", bytes(&example("hello")))
        .await
        .unwrap();
    assert_eq!((status, error_code(&reply)), (400, "invalid_module_name"));
    // Nothing of the refused uploads was recorded.
    let (status, reply) = api.get("/v1/modules/junk").await.unwrap();
    assert_eq!((status, error_code(&reply)), (404, "unknown_module"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_start_finish_and_report_their_steps() {
    let (server, _dir) = server();
    let api = server.api();
    api.deploy_saga().await.unwrap();
    api.deploy("hello", &example("hello")).await.unwrap();

    // ?wait returns the finished run.
    let (status, done) = api
        .post("/v1/workflows/hello/runs?wait=30", r#"{"name":"Ada"}"#)
        .await
        .unwrap();
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"], json!({"greeting": "Hello, Ada!"}));
    assert!(done["error"].is_null());

    let run_id = api
        .start("order-saga", &saga_input("o-http"))
        .await
        .unwrap();
    let run = api.wait(&run_id, T).await.unwrap();
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["workflow"], "order-saga");
    assert_eq!(
        run["input"]["orderId"], "o-http",
        "input is a JSON value, not a string"
    );
    assert_eq!(run["output"]["status"], "completed");
    assert_eq!(run["output"]["chargeId"], "ch-o-http");
    assert_eq!(run["moduleDigest"].as_str().unwrap().len(), 64);
    for field in ["createdAt", "updatedAt"] {
        assert!(
            run[field].as_str().unwrap().ends_with('Z'),
            "{field}: {run}"
        );
    }

    let (status, steps) = api.get(&format!("/v1/runs/{run_id}/steps")).await.unwrap();
    assert_eq!(status, 200);
    let steps = steps["steps"].as_array().unwrap();
    let summary: Vec<(&str, &str, &str, u64)> = steps
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["kind"].as_str().unwrap(),
                s["status"].as_str().unwrap(),
                s["attempts"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("price", "inline", "succeeded", 1),
            ("reserve", "rpc", "succeeded", 1),
            ("charge", "rpc", "succeeded", 2),
            ("cool-off", "sleep", "succeeded", 0),
            ("ship", "rpc", "succeeded", 1),
        ]
    );
    assert_eq!(steps[0]["result"], json!(3097), "results are JSON values");
    let charge_history = steps[2]["history"].as_array().unwrap();
    assert_eq!(charge_history.len(), 2);
    assert_eq!(charge_history[0]["status"], "failed");
    assert_eq!(
        charge_history[0]["error"]["code"],
        "card_processor_unavailable"
    );
    assert_eq!(charge_history[1]["status"], "succeeded");

    let (status, logs) = api.get(&format!("/v1/runs/{run_id}/logs")).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(logs["logs"].as_array().unwrap().len(), 2, "{logs}");

    let (status, listed) = api
        .get("/v1/runs?workflow=order-saga&status=completed")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(listed["runs"][0]["runId"], json!(run_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_returns_202_while_the_run_is_still_going() {
    let (server, _dir) = server();
    let api = server.api();
    api.deploy_saga().await.unwrap();
    let mut input = saga_input("o-slow");
    input["coolOffMs"] = json!(5_000);
    let (status, body) = api
        .post("/v1/workflows/order-saga/runs?wait=0.3", input.to_string())
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "running");
    assert!(body["runId"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_json_errors() {
    let (server, _dir) = server_with(&SMALL_PAYLOADS);
    let api = server.api();
    api.deploy("hello", &example("hello")).await.unwrap();
    api.deploy("order-rpc", &example("order-rpc"))
        .await
        .unwrap();

    let cases: Vec<(&str, (u16, Value), u16, &str)> = vec![
        (
            "unknown workflow",
            api.post("/v1/workflows/nope/runs", "{}").await.unwrap(),
            404,
            "unknown_workflow",
        ),
        (
            "bad JSON",
            api.post("/v1/workflows/hello/runs", "{\"name\":")
                .await
                .unwrap(),
            400,
            "invalid_json",
        ),
        (
            "not UTF-8",
            api.post("/v1/workflows/hello/runs", vec![0xff, 0xfe])
                .await
                .unwrap(),
            400,
            "invalid_json",
        ),
        (
            "an RPC module",
            api.post("/v1/workflows/order-rpc/runs", "{}")
                .await
                .unwrap(),
            400,
            "not_a_workflow",
        ),
        (
            "bad wait",
            api.post("/v1/workflows/hello/runs?wait=-1", "{}")
                .await
                .unwrap(),
            400,
            "invalid_wait",
        ),
        (
            "wait that is not a number",
            api.post("/v1/workflows/hello/runs?wait=soon", "{}")
                .await
                .unwrap(),
            400,
            "invalid_query",
        ),
        (
            "run id that is not UTF-8",
            api.get("/v1/runs/%FF%FE").await.unwrap(),
            400,
            "invalid_path",
        ),
        (
            "a number out of range",
            api.post("/v1/workflows/hello/runs", "{\"n\":1e400}")
                .await
                .unwrap(),
            400,
            "invalid_json",
        ),
        (
            "unknown run",
            api.get("/v1/runs/01938a3c-0000-7000-8000-000000000000")
                .await
                .unwrap(),
            404,
            "unknown_run",
        ),
        (
            "malformed run id",
            api.get("/v1/runs/not-a-uuid").await.unwrap(),
            400,
            "invalid_run_id",
        ),
        (
            "steps of unknown run",
            api.get("/v1/runs/01938a3c-0000-7000-8000-000000000000/steps")
                .await
                .unwrap(),
            404,
            "unknown_run",
        ),
        (
            "events of unknown run",
            api.get("/v1/runs/01938a3c-0000-7000-8000-000000000000/events")
                .await
                .unwrap(),
            404,
            "unknown_run",
        ),
        (
            "bad page cursor",
            api.get("/v1/runs?after=yesterday").await.unwrap(),
            400,
            "invalid_cursor",
        ),
        (
            "bad status filter",
            api.get("/v1/runs?status=bogus").await.unwrap(),
            400,
            "invalid_status",
        ),
        (
            "unknown route",
            api.get("/v2/whatever").await.unwrap(),
            404,
            "not_found",
        ),
    ];
    for (what, (status, body), want_status, want_code) in cases {
        assert_eq!(status, want_status, "{what}: {body}");
        assert_eq!(error_code(&body), want_code, "{what}: {body}");
        assert!(
            !body["error"]["message"].as_str().unwrap().is_empty(),
            "{what}"
        );
    }

    // An input over the payload limit is refused before anything is stored.
    let big = json!({ "name": "x".repeat(300 * 1024) }).to_string();
    let (status, _) = api.post("/v1/workflows/hello/runs", big).await.unwrap();
    assert_eq!(status, 413);
    let (_, runs) = api.get("/v1/runs").await.unwrap();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 0, "{runs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_reports_its_error() {
    let (server, _dir) = server();
    let api = server.api();
    api.deploy("hostile", &test_guest("hostile")).await.unwrap();
    let (status, body) = api
        .post(
            "/v1/workflows/hostile/runs?wait=30",
            json!({"mode": "fail", "n": 1}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["status"], "failed");
    assert_eq!(body["error"]["code"], "custom_failure");
    assert_eq!(body["error"]["details"], json!({"n": 1}));
    let api2 = Api::new(&server.url);
    let (_, run) = api2
        .get(&format!("/v1/runs/{}", body["runId"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(run["output"], Value::Null);
}

/// `weft start --id KEY`, retried (as a client does after a timeout),
/// starts one run: the retry prints the same id, the key with another input
/// is refused, and a malformed key is a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_retried_under_its_idempotency_key_is_one_run() {
    let (server, _dir) = server();
    let api = server.api();
    api.deploy("hello", &example("hello")).await.unwrap();
    let start = |input: &str| {
        std::process::Command::new(weft_bin())
            .args(["start", "hello", "--input", input, "--id", "order-1"])
            .env("WEFT_URL", &server.url)
            .output()
            .expect("weft start runs")
    };
    let first = start(r#"{"name":"ada"}"#);
    assert!(first.status.success(), "{first:?}");
    let again = start(r#"{"name":"ada"}"#);
    assert!(again.status.success(), "{again:?}");
    let id = String::from_utf8_lossy(&first.stdout).trim().to_string();
    assert!(!id.is_empty());
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), id);
    let other = start(r#"{"name":"bob"}"#);
    assert!(!other.status.success(), "{other:?}");
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("409"),
        "{other:?}"
    );
    let (_, listed) = api.get("/v1/runs?workflow=hello").await.unwrap();
    assert_eq!(listed["next"], Value::Null, "one page: {listed}");
    assert_eq!(listed["runs"].as_array().map(Vec::len), Some(1), "{listed}");
    let run = api.wait(&id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(run["status"], "completed", "{run}");

    let bad = reqwest::Client::new()
        .post(format!("{}/v1/workflows/hello/runs", server.url))
        .header("idempotency-key", "x".repeat(300))
        .body(r#"{"name":"eve"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(error_code(&body), "invalid_idempotency_key");
}

/// `POST /v1/runs/{id}/events/{name}` and `weft send-event`: an expense
/// decided by an event sent through the CLI, a re-send under the same id
/// that changes nothing, and every refusal with its status and code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_sent_over_http_and_from_the_cli() {
    let (server, _dir) = server_with(&SMALL_PAYLOADS);
    let api = server.api();
    api.deploy("expense-approval", &example("expense-approval"))
        .await
        .unwrap();
    let input = json!({
        "expenseId": "e-1", "amountCents": 900, "submitter": "ada",
        "approvalTimeoutMs": 600000, "escalationTimeoutMs": 600000
    });
    let id = api.start("expense-approval", &input).await.unwrap();
    let path = format!("/v1/runs/{id}/events/approval");

    // Refused: not JSON, a bad name, an unknown run, a malformed run id, too large.
    let (status, body) = api.post(&path, "{not json").await.unwrap();
    assert_eq!((status, error_code(&body)), (400, "invalid_json"), "{body}");
    let (status, body) = api
        .post(&format!("/v1/runs/{id}/events/has%20space"), "1")
        .await
        .unwrap();
    assert_eq!(
        (status, error_code(&body)),
        (400, "invalid_event"),
        "{body}"
    );
    let unknown = "00000000-0000-4000-8000-000000000000";
    let (status, body) = api
        .post(&format!("/v1/runs/{unknown}/events/approval"), "1")
        .await
        .unwrap();
    assert_eq!((status, error_code(&body)), (404, "unknown_run"), "{body}");
    let (status, body) = api
        .post("/v1/runs/nope/events/approval", "1")
        .await
        .unwrap();
    assert_eq!(
        (status, error_code(&body)),
        (400, "invalid_run_id"),
        "{body}"
    );
    let big = format!("\"{}\"", "x".repeat(300 * 1024));
    let (status, body) = api.post(&path, big).await.unwrap();
    assert_eq!(
        (status, error_code(&body)),
        (413, "payload_too_large"),
        "{body}"
    );

    let send = |id_arg: &str| {
        std::process::Command::new(weft_bin())
            .args([
                "send-event",
                &id,
                "approval",
                "--data",
                r#"{"approved": true, "by": "grace"}"#,
                "--id",
                id_arg,
            ])
            .env("WEFT_URL", &server.url)
            .output()
            .expect("weft send-event runs")
    };
    let first = send("decision-1");
    assert!(first.status.success(), "{first:?}");
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("event approval #0"),
        "{first:?}"
    );
    let run = api.wait(&id, T).await.unwrap();
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"]["decidedBy"], "grace", "{run}");

    // A retried send is answered as the repeat it is, even now; a new
    // event is refused by the finished run, which says so.
    let repeat = send("decision-1");
    assert!(repeat.status.success(), "{repeat:?}");
    assert!(
        String::from_utf8_lossy(&repeat.stdout).contains("repeat"),
        "{repeat:?}"
    );
    let again = send("decision-2");
    assert!(!again.status.success(), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("409"),
        "{again:?}"
    );
    let (status, body) = api.post(&path, "1").await.unwrap();
    assert_eq!((status, error_code(&body)), (409, "not_running"), "{body}");

    // The inbox as the console lists it: the one event, taken by the wait.
    let (status, listed) = api.get(&format!("/v1/runs/{id}/events")).await.unwrap();
    assert_eq!(status, 200, "{listed}");
    let events = listed["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{listed}");
    assert_eq!(events[0]["event"], "approval");
    assert_eq!(events[0]["eventId"], "decision-1");
    assert_eq!(events[0]["payload"]["by"], "grace");
    assert_eq!(events[0]["takenBy"], "await-manager");
}

/// `POST /v1/callbacks/{token}` and `weft complete-callback`: a token read
/// from the run's logs (as an email would carry it) completes the wait
/// once; a forged token is 404, a used one 409, a bad body 400; the steps
/// listing never shows the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_completed_over_http_and_from_the_cli() {
    let (server, _dir) = server();
    let api = server.api();
    api.deploy("callback", &test_guest("callback"))
        .await
        .unwrap();
    let id = api.start("callback", &json!({})).await.unwrap();
    let mut token = String::new();
    for _ in 0..600 {
        let (_, logs) = api.get(&format!("/v1/runs/{id}/logs")).await.unwrap();
        let found = logs["logs"].as_array().into_iter().flatten().find_map(|l| {
            l["message"]
                .as_str()?
                .strip_prefix("callback token: ")
                .map(str::to_string)
        });
        if let Some(found) = found {
            token = found;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(token.starts_with("wcb_"), "no token in the logs");
    let steps = api.steps(&id).await.unwrap();
    assert!(
        !serde_json::to_string(&steps).unwrap().contains(&token),
        "the steps listing shows the token: {steps:?}"
    );

    let path = format!("/v1/callbacks/{token}");
    let (status, body) = api
        .post(
            &path,
            r#"{"result": 1, "error": {"code": "x", "message": "y"}}"#,
        )
        .await
        .unwrap();
    assert_eq!((status, error_code(&body)), (400, "invalid_json"), "{body}");
    let (status, body) = api.post(&path, r#"{"outcome": 1}"#).await.unwrap();
    assert_eq!((status, error_code(&body)), (400, "invalid_json"), "{body}");
    let (status, body) = api
        .post(
            &format!("/v1/callbacks/wcb_{}", "0".repeat(64)),
            r#"{"result": 1}"#,
        )
        .await
        .unwrap();
    assert_eq!(
        (status, error_code(&body)),
        (404, "unknown_callback"),
        "{body}"
    );

    let complete = std::process::Command::new(weft_bin())
        .args(["complete-callback", &token, "--result", r#"{"paid": true}"#])
        .env("WEFT_URL", &server.url)
        .output()
        .expect("weft complete-callback runs");
    assert!(complete.status.success(), "{complete:?}");
    let run = api.wait(&id, T).await.unwrap();
    assert_eq!(run["output"], json!({"result": {"paid": true}}), "{run}");

    let (status, body) = api.post(&path, r#"{"result": 2}"#).await.unwrap();
    assert_eq!(
        (status, error_code(&body)),
        (409, "callback_closed"),
        "{body}"
    );
    // The same completion again is a retry: answered as the first was.
    let (status, body) = api
        .post(&path, r#"{"result": {"paid": true}}"#)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["runId"], id.as_str(), "{body}");
}

/// A parent's children over HTTP: `GET /v1/runs/{id}/children` lists each
/// child with the step that started it; a child run shows its parent, and
/// the parent's child step names the child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_runs_are_listed_with_their_parent() {
    let (server, _dir) = server();
    let api = server.api();
    api.deploy("fanout", &test_guest("fanout")).await.unwrap();
    api.deploy("fanout-rpc", &test_guest("fanout-rpc"))
        .await
        .unwrap();
    let input = json!({
        "spawn": {"workflow": "fanout", "input": {}},
        "children": [
            {"workflow": "fanout", "input": {"all": [{"ms": 1}]}},
            {"workflow": "missing", "input": {}}
        ]
    });
    let id = api.start("fanout", &input).await.unwrap();
    let run = api.wait(&id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(run["status"], "completed", "{run}");

    let (status, body) = api.get(&format!("/v1/runs/{id}/children")).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let children = body["children"].as_array().unwrap();
    let shown: Vec<(&str, bool, &str)> = children
        .iter()
        .map(|c| {
            (
                c["step"].as_str().unwrap(),
                c["detached"].as_bool().unwrap(),
                c["status"].as_str().unwrap_or("none"),
            )
        })
        .collect();
    assert_eq!(
        shown[..2],
        [("spawned", true, shown[0].2), ("kid", false, "completed")],
        "{body}"
    );
    assert_eq!(shown[2], ("kid#2", false, "none"), "{body}");
    assert_eq!(children[2]["error"]["code"], "unknown_workflow");

    let kid = children[1]["runId"].as_str().unwrap();
    let (_, child) = api.get(&format!("/v1/runs/{kid}")).await.unwrap();
    assert_eq!(
        child["parent"],
        json!({"runId": id, "step": "kid", "detached": false})
    );
    let (_, steps) = api.get(&format!("/v1/runs/{id}/steps")).await.unwrap();
    let step = steps["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "kid")
        .unwrap();
    assert_eq!(step["kind"], "child");
    assert_eq!(step["childRunId"], kid);

    let (status, body) = api
        .get("/v1/runs/00000000-0000-4000-8000-000000000000/children")
        .await
        .unwrap();
    assert_eq!((status, error_code(&body)), (404, "unknown_run"), "{body}");
}

/// Schedules over HTTP and from the CLI: put, list, pause, resume and
/// delete with `weft schedule`; a bad cron expression or overlap, a body
/// that is not a schedule, an unknown workflow or schedule are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_managed_over_http_and_from_the_cli() {
    let (server, _dir) = server();
    let api = server.api();
    api.deploy("hello", &example("hello")).await.unwrap();
    let weft = |args: &[&str]| {
        let out = std::process::Command::new(weft_bin())
            .args(args)
            .env("WEFT_URL", &server.url)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, text) = weft(&[
        "schedule",
        "put",
        "nightly",
        "--workflow",
        "hello",
        "--cron",
        "0 3 * * *",
        "--input",
        r#"{"name":"ada"}"#,
    ]);
    assert!(
        ok && text.contains("nightly") && text.contains("active"),
        "{text}"
    );
    let (status, body) = api.get("/v1/schedules/nightly").await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cron"], "0 3 * * *");
    assert_eq!(body["input"], json!({"name": "ada"}));
    assert_eq!(body["overlap"], "skip");
    assert!(
        body["nextFireAt"].as_str().unwrap().contains("T03:00:00"),
        "{body}"
    );

    // A schedule keeps its input in its own item: 64 KB at most.
    let big = json!({ "workflow": "hello", "cron": "0 3 * * *", "input": "x".repeat(70_000) });
    let (status, refused) = api
        .put("/v1/schedules/too-big", big.to_string().into_bytes())
        .await
        .unwrap();
    assert_eq!((status, error_code(&refused)), (413, "payload_too_large"));
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("WEFT_INLINE_PAYLOAD_BYTES"),
        "{refused}"
    );

    let (ok, text) = weft(&["schedule", "pause", "nightly"]);
    assert!(ok && text.contains("paused"), "{text}");
    let (ok, text) = weft(&["schedule", "list"]);
    assert!(
        ok && text.contains("nightly") && text.contains("paused"),
        "{text}"
    );
    let (ok, text) = weft(&["schedule", "resume", "nightly"]);
    assert!(ok && text.contains("active"), "{text}");

    let put = |body: Value| {
        let api = Api::new(&server.url);
        async move {
            api.put("/v1/schedules/nightly", body.to_string().into_bytes())
                .await
                .unwrap()
        }
    };
    let (status, body) = put(json!({"workflow": "hello", "cron": "0 25 * * *"})).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "invalid_schedule"),
        "{body}"
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains("hour"),
        "{body}"
    );
    let (status, body) =
        put(json!({"workflow": "hello", "cron": "* * * * *", "overlap": "often"})).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "invalid_schedule"),
        "{body}"
    );
    let (status, body) = put(json!({"cron": "* * * * *"})).await;
    assert_eq!((status, error_code(&body)), (400, "invalid_json"), "{body}");
    let (status, body) = put(json!({"workflow": "nope", "cron": "* * * * *"})).await;
    assert_eq!(
        (status, error_code(&body)),
        (404, "unknown_workflow"),
        "{body}"
    );
    let (_, body) = api.get("/v1/schedules/nightly").await.unwrap();
    assert_eq!(body["cron"], "0 3 * * *", "refusals changed nothing");

    let (ok, text) = weft(&["schedule", "delete", "nightly"]);
    assert!(ok && text.contains("deleted"), "{text}");
    let (status, body) = api.get("/v1/schedules/nightly").await.unwrap();
    assert_eq!(
        (status, error_code(&body)),
        (404, "unknown_schedule"),
        "{body}"
    );
    let (ok, text) = weft(&["schedule", "pause", "nightly"]);
    assert!(!ok && text.contains("no schedule named"), "{text}");
}

/// A run whose input, output and a step result are larger than a response
/// carries in line: the views name their sizes and paths instead, and the
/// paths answer with the JSON, byte for byte. Staging an input is for
/// stores with a staging area (S3); here it is refused clearly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_payloads_are_linked_from_the_views() {
    let (server, _dir) = server();
    let api = server.api();
    api.deploy("order-saga", &example("order-saga"))
        .await
        .unwrap();
    api.deploy("order-rpc", &example("order-rpc"))
        .await
        .unwrap();
    let mut input = saga_input("o-linked");
    input["labelBytes"] = json!(2 << 20);
    input["note"] = json!("n".repeat(1 << 20));
    let (status, done) = api
        .post("/v1/workflows/order-saga/runs?wait=60", input.to_string())
        .await
        .unwrap();
    assert_eq!(status, 200, "{done}");
    let id = done["runId"].as_str().unwrap().to_string();
    assert!(
        done.get("output").is_none(),
        "the output is linked, not carried"
    );
    let url = done["outputUrl"].as_str().unwrap();
    assert_eq!(url, format!("/v1/runs/{id}/output"));
    let (status, output) = api.get(url).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        done["outputBytes"].as_u64(),
        Some(output.to_string().len() as u64)
    );
    assert_eq!(output["trackingNumber"], "trk-o-linked");
    assert_eq!(output["label"].as_str().map(str::len), Some(2 << 20));

    let (_, run) = api.get(&format!("/v1/runs/{id}")).await.unwrap();
    assert!(
        run.get("input").is_none() && run.get("output").is_none(),
        "{run:.300}"
    );
    assert!(
        run["expiresAt"].is_string(),
        "a finished run says when it expires"
    );
    let (status, read_input) = api.get(run["inputUrl"].as_str().unwrap()).await.unwrap();
    assert_eq!((status, &read_input), (200, &input));

    let (_, steps) = api.get(&format!("/v1/runs/{id}/steps")).await.unwrap();
    let ship = steps["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ship")
        .unwrap();
    let (status, result) = api.get(ship["resultUrl"].as_str().unwrap()).await.unwrap();
    assert_eq!((status, &result["label"]), (200, &output["label"]));
    let price = steps["steps"][0].clone();
    assert_eq!(price["result"], 3097, "small results stay in line");

    let (status, refused) = api
        .post("/v1/workflows/order-saga/uploads", "")
        .await
        .unwrap();
    assert_eq!((status, error_code(&refused)), (501, "uploads_unsupported"));
    let (status, missing) = api
        .get(&format!("/v1/runs/{id}/steps/nope/result"))
        .await
        .unwrap();
    assert_eq!((status, error_code(&missing)), (404, "unknown_step"));
}
