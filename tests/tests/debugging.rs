//! Debugging and upgrading recorded runs, on the embedded backend and on
//! the AWS backend (against moto): `weft replay` replays a run on this
//! machine, step by step, with the module it is pinned to, and a new build
//! that changes a step's input fails the replay, naming the step; `weft
//! deploy --check --upgrade` moves exactly the running runs a new version
//! replays.

use serde_json::{Value, json};
use std::path::Path;
use std::process::Output;
use std::time::Duration;
use weft::backend::aws::init::QueueOptions;
use weft_tests::aws::AwsEnv;
use weft_tests::{DevServer, example, saga_input, test_guest, weft_bin};

/// `weft dev` on the embedded backend, in a fresh data directory.
fn embedded_server() -> (DevServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start(dir.path(), &[]).unwrap();
    (server, dir)
}

/// `weft dev` on fresh AWS resources (moto).
async fn aws_server() -> (DevServer, tempfile::TempDir) {
    let env = AwsEnv::provision(QueueOptions {
        visibility_timeout: Duration::from_secs(2),
        max_receives: 5,
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start_with(dir.path(), &env.env()).unwrap();
    (server, dir)
}

fn weft_replay(server: &DevServer, run_id: &str, module: Option<&Path>) -> (Output, String) {
    let mut command = std::process::Command::new(weft_bin());
    command.args(["replay", run_id, "--server", &server.url]);
    if let Some(module) = module {
        command.arg("--module").arg(module);
    }
    let out = command.output().expect("weft replay runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (out, text)
}

async fn replays_here(server: &DevServer) {
    let api = server.api();
    api.deploy("order-saga", &example("order-saga"))
        .await
        .unwrap();
    api.deploy("order-rpc", &example("order-rpc"))
        .await
        .unwrap();
    let (status, done) = api
        .post(
            "/v1/workflows/order-saga/runs?wait=60",
            saga_input("o-replay").to_string(),
        )
        .await
        .unwrap();
    assert_eq!(
        (status, done["status"].as_str()),
        (200, Some("completed")),
        "{done}"
    );
    let id = done["runId"].as_str().unwrap();

    let (out, text) = weft_replay(server, id, None);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (seq, step) in ["price", "reserve", "charge", "cool-off", "ship"]
        .iter()
        .enumerate()
    {
        assert!(
            text.lines()
                .any(|l| l.contains(&format!("ok  #{seq} ")) && l.contains(step)),
            "step #{seq} {step} matches: {text}"
        );
    }
    assert!(
        text.contains("order o-replay totals 3097 cents"),
        "the run's logs: {text}"
    );
    assert!(text.contains("finishes as recorded"), "{text}");

    // A new build that sends `reserve` its input with the fields in
    // another order: the same JSON to a reader, another step to replay.
    let changed = example("order-saga-c");
    let (out, text) = weft_replay(server, id, Some(&changed));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("ok  #0 ") && text.contains("DIVERGED at #1"),
        "{text}"
    );
    let journal = text
        .lines()
        .find(|l| l.contains("journal:"))
        .unwrap_or_default();
    assert!(
        journal.contains("`reserve`"),
        "the diff names the step: {text}"
    );

    let (out, _) = weft_replay(server, "01a250e4-0000-7000-8000-000000000000", None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("no run"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_on_the_embedded_backend_replays_here() {
    let (server, _dir) = embedded_server();
    replays_here(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_on_the_aws_backend_replays_here() {
    let (server, _dir) = aws_server().await;
    replays_here(&server).await;
}

/// `weft deploy --check` and `--check --upgrade` with ten sleeping runs of
/// which the new version replays half: the check publishes nothing and
/// exits non-zero naming the five that diverge; the upgrade publishes the
/// version and moves the five others, which finish on it, while the five
/// that diverge finish on the version they started with. None fails.
async fn upgrades_only_the_runs_that_replay(server: &DevServer) {
    let api = server.api();
    let v1 = api
        .deploy("orders", &test_guest("upgrade-v1"))
        .await
        .unwrap();
    let mut runs = Vec::new();
    for i in 0..10 {
        let path = if i % 2 == 0 { "a" } else { "b" };
        let input = json!({ "path": path, "sleepMs": 8_000 }).to_string();
        let (status, started) = api.post("/v1/workflows/orders/runs", input).await.unwrap();
        assert_eq!(status, 202, "{started}");
        runs.push((path, started["runId"].as_str().unwrap().to_string()));
    }
    // Every run asleep: its journal ends with the sleep.
    for (path, id) in &runs {
        let asleep = if *path == "a" { 2 } else { 3 };
        let mut run = Value::Null;
        for _ in 0..300 {
            run = api.get(&format!("/v1/runs/{id}")).await.unwrap().1;
            if run["steps"] == asleep {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(run["steps"], asleep, "{run}");
    }

    let deploy = |upgrade: bool| {
        let mut command = std::process::Command::new(weft_bin());
        command.args([
            "deploy",
            "--name",
            "orders",
            "--server",
            &server.url,
            "--check",
        ]);
        if upgrade {
            command.arg("--upgrade");
        }
        command.arg(test_guest("upgrade-v2"));
        let out = command.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, text) = deploy(false);
    assert_eq!(code, Some(1), "a check with diverging runs fails: {text}");
    assert!(
        text.contains("checked 10 of 10") && text.contains("5 would diverge"),
        "{text}"
    );
    assert!(
        text.contains("`check-stock`"),
        "the diff names the step: {text}"
    );
    let (_, versions) = api.get("/v1/modules/orders").await.unwrap();
    assert_eq!(
        versions["versions"].as_array().unwrap().len(),
        1,
        "nothing published"
    );

    let (code, text) = deploy(true);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("moved 5 runs"), "{text}");
    let (_, versions) = api.get("/v1/modules/orders").await.unwrap();
    let v2 = versions["versions"][1]["digest"].clone();
    assert!(v2.is_string() && v2 != v1["digest"], "{versions}");

    for (path, id) in &runs {
        let mut run = Value::Null;
        for _ in 0..600 {
            run = api.get(&format!("/v1/runs/{id}")).await.unwrap().1;
            if run["status"] != "running" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(run["status"], "completed", "{run}");
        let (finisher, digest) = if *path == "a" {
            ("v2", &v2)
        } else {
            ("v1", &v1["digest"])
        };
        assert_eq!(
            run["output"],
            json!(format!("prepared {path}, finished by {finisher}")),
            "{run}"
        );
        assert_eq!(&run["moduleDigest"], digest, "{run}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checked_upgrade_moves_only_compatible_runs_on_the_embedded_backend() {
    let (server, _dir) = embedded_server();
    upgrades_only_the_runs_that_replay(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checked_upgrade_moves_only_compatible_runs_on_the_aws_backend() {
    let (server, _dir) = aws_server().await;
    upgrades_only_the_runs_that_replay(&server).await;
}

/// `weft start --wait` shows each step as it finishes (on stderr, the
/// result on stdout), `weft logs --follow` each line as it is written, and
/// both end with the run; `weft runs` lists runs by status and workflow.
/// "As it finishes" is checked by time: the first step's line arrives
/// well before the run ends (a 1.5 s cool-off sits between them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_follows_a_run_as_it_goes() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::Instant;

    let (server, _dir) = embedded_server();
    let api = server.api();
    api.deploy("order-saga", &example("order-saga"))
        .await
        .unwrap();
    api.deploy("order-rpc", &example("order-rpc"))
        .await
        .unwrap();
    let mut input = saga_input("o-follow");
    input["coolOffMs"] = json!(1_500);

    let mut start = Command::new(weft_bin())
        .args(["start", "order-saga", "--wait", "--server", &server.url])
        .args(["--input", &input.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let began = Instant::now();
    let lines: Vec<(Duration, String)> = BufReader::new(start.stderr.take().unwrap())
        .lines()
        .map(|l| (began.elapsed(), l.unwrap()))
        .collect();
    let out = start.wait_with_output().unwrap();
    assert!(out.status.success(), "{lines:?}");
    let names: Vec<&str> = lines
        .iter()
        .filter_map(|(_, l)| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(
        names,
        [
            "price",
            "reserve",
            "charge",
            "cool-off",
            "ship",
            "completed"
        ],
        "{lines:?}"
    );
    let (first, last) = (lines[0].0, lines[lines.len() - 1].0);
    assert!(
        last - first >= Duration::from_millis(1_000),
        "the steps came as they finished, not at the end: {lines:?}"
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["output"]["trackingNumber"], "trk-o-follow");
    let id = result["runId"].as_str().unwrap();

    // Following the logs of a run still going: they end when it does.
    let (_, started) = api
        .post("/v1/workflows/order-saga/runs", input.to_string())
        .await
        .unwrap();
    let following = started["runId"].as_str().unwrap();
    let follow = Command::new(weft_bin())
        .args(["logs", following, "--follow", "--server", &server.url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&follow.stdout);
    assert!(follow.status.success(), "{text}");
    assert!(
        text.contains("totals 3097 cents") && text.contains("shipped as trk-o-follow"),
        "{text}"
    );
    let (_, run) = api.get(&format!("/v1/runs/{following}")).await.unwrap();
    assert_eq!(run["status"], "completed", "--follow ended with the run");

    let runs = Command::new(weft_bin())
        .args(["runs", "--status", "completed", "--workflow", "order-saga"])
        .args(["--server", &server.url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&runs.stdout);
    assert!(text.contains(id) && text.contains(following), "{text}");
    let none = Command::new(weft_bin())
        .args(["runs", "--status", "failed", "--server", &server.url])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&none.stdout).contains("(no runs)"));
}

/// `GET /metrics` parses with a Prometheus text-format parser, and its
/// counters match the runs executed: three sagas that complete (each with a
/// charge retried once), one that fails at its first step, one cancelled
/// while it sleeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_runs_executed() {
    use prometheus_parse::{Scrape, Value as Sample};

    let (server, _dir) = embedded_server();
    let api = server.api();
    api.deploy("order-saga", &example("order-saga"))
        .await
        .unwrap();
    api.deploy("order-rpc", &example("order-rpc"))
        .await
        .unwrap();
    for i in 0..3 {
        let input = saga_input(&format!("o-metrics-{i}"));
        let (status, done) = api
            .post("/v1/workflows/order-saga/runs?wait=60", input.to_string())
            .await
            .unwrap();
        assert_eq!(
            (status, done["status"].as_str()),
            (200, Some("completed")),
            "{done}"
        );
    }
    let mut empty = saga_input("o-metrics-empty");
    empty["items"] = json!([]);
    let (_, failed) = api
        .post("/v1/workflows/order-saga/runs?wait=60", empty.to_string())
        .await
        .unwrap();
    assert_eq!(failed["status"], "failed", "{failed}");
    let mut sleepy = saga_input("o-metrics-sleepy");
    sleepy["coolOffMs"] = json!(600_000);
    let (_, started) = api
        .post("/v1/workflows/order-saga/runs", sleepy.to_string())
        .await
        .unwrap();
    let sleeping = started["runId"].as_str().unwrap();
    for _ in 0..300 {
        let (_, run) = api.get(&format!("/v1/runs/{sleeping}")).await.unwrap();
        if run["steps"] == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _) = api
        .post(&format!("/v1/runs/{sleeping}/cancel"), "")
        .await
        .unwrap();
    assert_eq!(status, 200);

    let text = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses");
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                Sample::Counter(v) | Sample::Gauge(v) | Sample::Untyped(v) => *v,
                _ => 0.0,
            })
            .sum()
    };
    let saga = ("workflow", "order-saga");
    assert_eq!(value("weft_runs_started_total", &[saga]), 5.0, "{text}");
    assert_eq!(
        value("weft_runs_finished_total", &[saga, ("status", "completed")]),
        3.0
    );
    assert_eq!(
        value(
            "weft_runs_finished_total",
            &[saga, ("status", "failed"), ("code", "empty_order")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "weft_runs_finished_total",
            &[saga, ("status", "cancelled"), ("code", "cancelled")]
        ),
        1.0
    );
    // Per completed saga: price, reserve, charge (2 attempts), cool-off,
    // ship; the cancelled one got as far as its cool-off.
    let steps = |kind, status| {
        value(
            "weft_steps_finished_total",
            &[("kind", kind), ("status", status)],
        )
    };
    assert_eq!(steps("rpc", "succeeded"), 11.0, "{text}");
    assert_eq!(steps("inline", "succeeded"), 4.0);
    assert_eq!(steps("inline", "failed"), 1.0);
    assert_eq!(steps("sleep", "succeeded"), 3.0);
    assert_eq!(value("weft_step_attempts_total", &[("kind", "rpc")]), 15.0);
    let rpc_durations = scrape
        .samples
        .iter()
        .find(|s| s.metric == "weft_step_duration_seconds" && s.labels.get("kind") == Some("rpc"))
        .map(|s| match &s.value {
            Sample::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            _ => 0.0,
        });
    assert_eq!(rpc_durations, Some(11.0), "{text}");
    assert!(value("weft_activations_total", &[]) >= 5.0);
    assert!(value("weft_fuel_used_total", &[]) > 0.0);
    assert!(value("weft_store_requests_total", &[("op", "commit")]) > 0.0);
}
