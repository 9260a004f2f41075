//! The fault-injection suite: many concurrent sagas on the AWS backend
//! (moto), served by three `weft dev` workers while a controller SIGKILLs
//! and restarts a random worker every few seconds, the workers' queues
//! duplicate and delay messages, and the RPC module fails or hangs a share
//! of first attempts and reports every call it receives to a counter. Each
//! saga fans out two RPCs, waits for an event the harness sends it (twice,
//! under one id) at a random moment, and ships through a child run.
//!
//! The saga's steps get just the two attempts a crash-free run needs (a
//! first attempt may fail or hang on purpose), so a killed worker that
//! cost a step an attempt would show as a run that compensated or failed.
//!
//! At the end: every run completed with its crash-free output, no step has
//! two outcomes, every executed RPC attempt is in the history exactly once
//! (and every attempt in the history that a worker did not lose executed
//! exactly once), and nothing is left in flight.
//!
//! Sized for `make test`; `FAULT_RUNS` and `FAULT_ROUNDS` scale it up
//! (`FAULT_ROUNDS=3` runs it three times in a row).

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use rand::RngExt;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weft::backend::aws::init::QueueOptions;
use weft_tests::aws::AwsEnv;
use weft_tests::{Api, DevServer, test_guest};

const WORKERS: usize = 3;
const KILL_EVERY: Duration = Duration::from_secs(3);
/// A round fails once no run has finished or reached a new step for this
/// long: longer than the slowest single step here (a lost attempt's lease
/// expiring, then its retry's backoff).
const STALL: Duration = Duration::from_secs(120);
/// And in any case after this long.
const CAP: Duration = Duration::from_secs(900);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The RPC module's own record: how often each (idempotency key, attempt)
/// was executed.
type Calls = Arc<Mutex<HashMap<(String, u32), u32>>>;

async fn counter_server() -> (String, Calls) {
    let calls: Calls = Arc::default();
    let app = axum::Router::new()
        .route(
            "/",
            post(
                |State(calls): State<Calls>, Json(call): Json<Value>| async move {
                    let key = call["key"].as_str().unwrap_or_default().to_string();
                    let attempt = call["attempt"].as_u64().unwrap_or(0) as u32;
                    *calls.lock().unwrap().entry((key, attempt)).or_insert(0) += 1;
                    "ok"
                },
            ),
        )
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("127.0.0.1:{port}"), calls)
}

/// `weft dev` processes on one AWS environment: the workers the chaos
/// kills, plus a front process that serves the test's API calls (and works
/// too) and is left alone, so the test always has someone to talk to.
struct Fleet {
    env: Vec<(String, String)>,
    front: Option<DevServer>,
    workers: Vec<DevServer>,
    dir: tempfile::TempDir,
    logs: Vec<PathBuf>,
}

impl Fleet {
    fn spawn(&mut self, i: usize) -> DevServer {
        let log = self
            .dir
            .path()
            .join(format!("worker-{i}-{}.log", self.logs.len()));
        self.logs.push(log.clone());
        DevServer::start_logged(&self.dir.path().join(format!("w{i}")), &self.env, &log)
            .expect("weft dev")
    }

    fn api(&self) -> Api {
        self.front.as_ref().expect("the front process").api()
    }

    /// Kills worker `i` with SIGKILL and starts a fresh one in its place.
    fn kill_and_restart(&mut self, i: usize) {
        self.workers[i].kill();
        let fresh = self.spawn(i);
        self.workers[i] = fresh;
    }

    /// Injected faults of `kind` logged by every process so far.
    fn faults_logged(&self, kind: &str) -> usize {
        self.logs
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|text| {
                text.lines()
                    .filter(|l| l.contains("injected fault") && l.contains(kind))
                    .count()
            })
            .sum()
    }
}

/// Sends event `release` to run `id` under id `key`, retrying what the
/// API refuses for a passing reason (its store, busy with the chaos).
async fn send_event(api: &Api, id: &str, body: &str, key: &str) {
    let path = format!("/v1/runs/{id}/events/release");
    for _ in 0..50 {
        match api
            .post_with(&path, body.to_string(), &[("idempotency-key", key)])
            .await
        {
            Ok((202, _)) => return,
            Ok((status, reply)) if status < 500 => panic!("sending {key}: {status} {reply}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    panic!("sending {key} to {id} kept failing");
}

async fn one_round(round: usize) {
    let runs = env_usize("FAULT_RUNS", 100);
    let started = Instant::now();
    let aws = AwsEnv::provision(QueueOptions {
        visibility_timeout: Duration::from_secs(3),
        // As deployed (the template's MaxReceiveCount): a killed worker's
        // messages must not come near dead-lettering.
        max_receives: 5,
    })
    .await;
    let (counter, calls) = counter_server().await;
    let mut env = aws.env();
    for (k, v) in [
        ("WEFT_RPC_TIMEOUT_SECS", "5"),
        ("WEFT_ACTIVATION_TIMEOUT_SECS", "5"),
        ("WEFT_SWEEP_INTERVAL_SECS", "5"),
        ("WEFT_REPAIR_AFTER_SECS", "10"),
        ("WEFT_WORKER_CONCURRENCY", "8"),
        ("WEFT_FAULT_DUPLICATE_RATE", "0.1"),
        ("WEFT_FAULT_DELAY_RATE", "0.1"),
        ("WEFT_FAULT_DELAY_MAX_MS", "1500"),
    ] {
        env.push((k.to_string(), v.to_string()));
    }
    let mut fleet = Fleet {
        env,
        front: None,
        workers: Vec::new(),
        dir: tempfile::tempdir().unwrap(),
        logs: Vec::new(),
    };
    fleet.front = Some(fleet.spawn(WORKERS));
    for i in 0..WORKERS {
        let w = fleet.spawn(i);
        fleet.workers.push(w);
    }
    let api = fleet.api();
    api.deploy("chaos-saga", &test_guest("chaos-saga"))
        .await
        .unwrap();
    let (status, body) = api
        .put(
            &format!("/v1/modules/chaos-rpc?allowHosts={counter}"),
            weft_tests::bytes(&test_guest("chaos-rpc")),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");

    let front = fleet.front.as_ref().expect("the front process").url.clone();
    // Chaos from the first run on: kill and restart a random worker every
    // few seconds until told to stop.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let chaos = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut kills = 0usize;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(KILL_EVERY).await;
                let victim = rand::rng().random_range(0..WORKERS);
                fleet.kill_and_restart(victim);
                kills += 1;
            }
            (fleet, kills)
        })
    };

    let mut ids = Vec::new();
    for i in 0..runs {
        let input = json!({
            "orderId": format!("o-{round}-{i}"),
            "counterUrl": format!("http://{counter}/"),
            "failPct": 15,
            "hangPct": 5,
        });
        ids.push(api.start("chaos-saga", &input).await.unwrap());
    }
    // Each run's `release` event, at a random moment (before or during its
    // wait) while workers die, sent twice under one id.
    let sender = {
        let ids = ids.clone();
        tokio::spawn(async move {
            let api = Api::new(&front);
            for (i, id) in ids.iter().enumerate() {
                let pause = rand::rng().random_range(0..150);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                let body = json!({ "order": format!("o-{round}-{i}") }).to_string();
                let key = format!("release-{i}");
                for _ in 0..2 {
                    send_event(&api, id, &body, &key).await;
                }
            }
        })
    };
    // Completion is read run by run (a consistent GetItem), not from the
    // eventually consistent status index.
    //
    // How long a round takes depends on the machine and on how often a
    // killed worker's run lease must expire first; what must not happen is
    // that the runs stop moving. So the round fails when no run has
    // finished and no running run has reached a new step for `STALL`
    // (a run that loops on a conflict it cannot win, say), or past `CAP`.
    let mut pending: Vec<&String> = ids.iter().collect();
    let mut progress = (0, 0);
    let mut last_move = Instant::now();
    while !pending.is_empty() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut still = Vec::new();
        let mut steps_reached = 0;
        for id in pending {
            let (_, run) = api.get(&format!("/v1/runs/{id}")).await.unwrap();
            if run["status"] == "running" {
                steps_reached += run["steps"].as_u64().unwrap_or(0);
                still.push(id);
            }
        }
        pending = still;
        let now = (ids.len() - pending.len(), steps_reached);
        if now != progress {
            progress = now;
            last_move = Instant::now();
        }
        let stalled = last_move.elapsed() >= STALL;
        if (stalled || started.elapsed() >= CAP) && !pending.is_empty() {
            let id = pending[0];
            let (_, run) = api.get(&format!("/v1/runs/{id}")).await.unwrap();
            let (_, steps) = api.get(&format!("/v1/runs/{id}/steps")).await.unwrap();
            panic!(
                "{} runs still running after {:?} ({}); the first: {run}\nits steps: {steps}",
                pending.len(),
                started.elapsed(),
                if stalled {
                    format!("none moved for {STALL:?}")
                } else {
                    format!("past the {CAP:?} cap")
                }
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (fleet, kills) = chaos.await.unwrap();
    sender.await.unwrap();

    // Verify.
    let api = fleet.api();
    let mut attempts_total = 0u64;
    let mut rpc_steps = 0u64;
    let mut lost = 0u64;
    let mut timeouts = 0u64;
    let mut recorded: BTreeMap<(String, u32), (bool, String)> = BTreeMap::new();
    let mut children = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let run = api.wait(id, Duration::from_secs(60)).await.unwrap();
        assert_eq!(run["status"], "completed", "{run}");
        let order = format!("o-{round}-{i}");
        assert_eq!(run["output"]["charge"]["chargeId"], format!("ch-{order}"));
        assert_eq!(
            run["output"]["shipment"]["trackingNumber"],
            format!("trk-{order}")
        );
        assert_eq!(run["output"]["release"], json!({ "order": order }), "{run}");
        let (_, listed) = api.get(&format!("/v1/runs/{id}/children")).await.unwrap();
        let listed = listed["children"].as_array().unwrap().clone();
        assert_eq!(listed.len(), 1, "one child: {listed:?}");
        assert_eq!(listed[0]["status"], "completed", "{listed:?}");
        children.push(listed[0]["runId"].as_str().unwrap().to_string());
    }
    for id in ids.iter().chain(&children) {
        let (_, steps) = api.get(&format!("/v1/runs/{id}/steps")).await.unwrap();
        for step in steps["steps"].as_array().unwrap() {
            assert_eq!(step["status"], "succeeded", "{step}");
            let history = step["history"].as_array().unwrap();
            assert_eq!(
                history.len() as u64,
                step["attempts"].as_u64().unwrap(),
                "{step}"
            );
            if step["kind"] != "rpc" {
                continue;
            }
            rpc_steps += 1;
            assert_eq!(
                history
                    .iter()
                    .filter(|h| h["status"] == "succeeded")
                    .count(),
                1,
                "one outcome: {step}"
            );
            let key = format!("{id}/{}", step["name"].as_str().unwrap());
            for h in history {
                attempts_total += 1;
                let attempt = h["attempt"].as_u64().unwrap() as u32;
                let was_lost = h["error"]["code"] == "worker_lost";
                lost += u64::from(was_lost);
                timeouts += u64::from(h["error"]["code"] == "timeout");
                recorded.insert((key.clone(), attempt), (was_lost, h["error"].to_string()));
            }
        }
    }
    let calls = calls.lock().unwrap().clone();
    for ((key, attempt), count) in &calls {
        assert_eq!(
            *count, 1,
            "attempt {attempt} of {key} executed {count} times"
        );
        assert!(
            recorded.contains_key(&(key.clone(), *attempt)),
            "attempt {attempt} of {key} ran but is not in the history"
        );
    }
    for ((key, attempt), (was_lost, error)) in &recorded {
        if !was_lost {
            assert!(
                calls.contains_key(&(key.clone(), *attempt)),
                "attempt {attempt} of {key} is recorded (error: {error}) but never ran"
            );
        }
    }
    // Nothing left in flight: every step succeeded (checked above) and no
    // run is still held by a worker (read by key, consistently).
    for id in ids.iter().chain(&children) {
        let (_, run) = api.get(&format!("/v1/runs/{id}")).await.unwrap();
        assert!(run.get("activeOn").is_none_or(Value::is_null), "{run}");
    }

    println!(
        "fault injection round {round}: {runs} runs, {WORKERS} workers, {kills} kills, {} duplicated and {} delayed \
         messages, {rpc_steps} RPC steps, {attempts_total} attempts ({} retries: {timeouts} timeouts, {lost} lost \
         with a killed worker), {} RPC executions counted, all completed in {:.1} s",
        fleet.faults_logged("duplicate"),
        fleet.faults_logged("delay"),
        attempts_total - rpc_steps,
        calls.len(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sagas_survive_killed_workers_duplicates_delays_failures_and_hangs() {
    for round in 0..env_usize("FAULT_ROUNDS", 1) {
        one_round(round).await;
    }
}
