//! The chaos suite: many concurrent runs through faults everywhere, on both
//! backends.
//!
//! - **Workload.** Sagas that fan out two RPCs, wait for an event the
//!   harness sends (twice under one id, at a random moment, and once more
//!   after the run ended, which must be refused), sleep and ship through a
//!   child run; one saga in four also waits for a callback, which the
//!   harness completes through the API (again with the same outcome, which
//!   must be answered as a success, and once with another, which must be
//!   refused); one run in five instead fans out `FAULT_FANOUT` (20) RPCs
//!   and joins them; and a schedule fires a run every minute.
//! - **Processes.** On AWS (moto), three `weft dev` workers and a front
//!   process that serves the harness's API calls (and works too); a random
//!   worker is SIGKILLed and restarted every few seconds. On the embedded
//!   backend, the one `weft dev` process over the data directory is
//!   SIGKILLed and restarted on the same address every few seconds, at
//!   whatever point it is (mid-commit included), API and all.
//! - **Queue.** Messages duplicated and delayed (reordered).
//! - **Store and queue calls** ([`weft::backend::faults`]): throttled,
//!   timed out (applied or not), and applied but reported failed.
//! - **RPCs.** The RPC module fails or hangs a share of first attempts and
//!   reports every call it receives to a counter outside Weft.
//!
//! Every step gets just the two attempts a crash-free run needs (a first
//! attempt may fail or hang on purpose), so a killed worker or a failed
//! store call that cost a step an attempt would show as a failed run.
//!
//! The verdict, read back through the API with retries: every run completed
//! with its crash-free output; every step succeeded with exactly one
//! success in its history; every executed RPC attempt is in the history
//! exactly once, and every attempt in the history that a worker did not
//! lose and that did not time out executed exactly once (by the counter's
//! record; a timed-out attempt may be abandoned before its first effect,
//! so it executed at most once); no event was
//! taken twice or late; no run is left held by a worker.
//!
//! Sized for `make test`; `FAULT_RUNS` and `FAULT_ROUNDS` scale it up
//! (`make chaos`: 1,000 runs, three rounds in a row, on each backend).

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

/// Worker processes on AWS (the embedded backend has one).
const AWS_WORKERS: usize = 3;
const KILL_EVERY: Duration = Duration::from_secs(3);
/// A round fails once no run has finished or reached a new step for this
/// long: longer than the slowest single step here (a lost attempt's lease
/// expiring, then its retry's backoff).
const STALL: Duration = Duration::from_secs(120);
/// Runs whose progress the harness reads per second (rotating), so its
/// own polling stays light at a thousand runs.
const POLL_BATCH: usize = 50;
/// The workflow name the schedule fires (the chaos saga's module again).
const SCHEDULED: &str = "chaos-scheduled";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Backend {
    Aws,
    Embedded,
}

/// The RPC module's own record: how often each (idempotency key, attempt)
/// was executed.
type Calls = Arc<Mutex<HashMap<(String, u32), u32>>>;

/// The counter runs on a thread and runtime of its own, so nothing the
/// harness does (starting a worker process, reading logs) can delay an RPC's
/// report past its timeout.
fn counter_server() -> (String, Calls) {
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
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
    });
    (format!("127.0.0.1:{port}"), calls)
}

/// The `weft dev` processes of one round: the workers the chaos kills,
/// and on AWS a front process that serves the test's API calls (and works
/// too) and is left alone. On the embedded backend the one worker serves
/// the API, from a fixed address across restarts.
struct Fleet {
    env: Vec<(String, String)>,
    front: Option<DevServer>,
    workers: Vec<DevServer>,
    /// Where each worker listens; `None`: any free port.
    addrs: Vec<Option<String>>,
    dir: tempfile::TempDir,
    logs: Vec<PathBuf>,
}

impl Fleet {
    fn start(backend: Backend, env: Vec<(String, String)>) -> Self {
        let mut fleet = Fleet {
            env,
            front: None,
            workers: Vec::new(),
            addrs: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
            logs: Vec::new(),
        };
        match backend {
            Backend::Aws => {
                fleet.front = Some(fleet.spawn(AWS_WORKERS, None));
                for i in 0..AWS_WORKERS {
                    let w = fleet.spawn(i, None);
                    fleet.workers.push(w);
                    fleet.addrs.push(None);
                }
            }
            Backend::Embedded => {
                let w = fleet.spawn(0, None);
                let addr = w.url.trim_start_matches("http://").to_string();
                fleet.workers.push(w);
                fleet.addrs.push(Some(addr));
            }
        }
        fleet
    }

    fn spawn(&mut self, i: usize, addr: Option<&str>) -> DevServer {
        let log = self
            .dir
            .path()
            .join(format!("worker-{i}-{}.log", self.logs.len()));
        self.logs.push(log.clone());
        let data = self.dir.path().join(format!("w{i}"));
        DevServer::start_logged_at(&data, &self.env, &log, addr.unwrap_or("127.0.0.1:0"))
            .expect("weft dev")
    }

    fn url(&self) -> String {
        match &self.front {
            Some(front) => front.url.clone(),
            None => self.workers[0].url.clone(),
        }
    }

    /// Kills worker `i` with SIGKILL and starts a fresh one in its place.
    fn kill_and_restart(&mut self, i: usize) {
        self.workers[i].kill();
        let addr = self.addrs[i].clone();
        let fresh = self.spawn(i, addr.as_deref());
        self.workers[i] = fresh;
    }

    /// Injected faults of `kind` logged by every process so far.
    fn faults_logged(&self, kind: &str) -> usize {
        self.logs
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|text| {
                let tags = [format!("fault={kind}"), format!("fault=\"{kind}\"")];
                text.lines()
                    .filter(|l| {
                        l.contains("injected fault") && tags.iter().any(|t| l.contains(t.as_str()))
                    })
                    .count()
            })
            .sum()
    }
}

/// Makes the API call `call` until it gives an answer that is not a
/// passing failure (a 5xx from a faulty store, a refused connection while
/// the process restarts); evaluates to that answer, `(status, body)`.
macro_rules! settled {
    ($what:expr, $call:expr) => {{
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let failure = match $call.await {
                Ok((status, reply)) if status < 500 => break (status, reply),
                Ok((status, reply)) => format!("{status} {reply}"),
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "{} kept failing: {failure}",
                $what
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }};
}

/// Deploys a module, retrying passing failures.
async fn deploy(api: &Api, path: &str, module: &std::path::Path) {
    let (status, reply) = settled!(path, api.put(path, weft_tests::bytes(module)));
    assert!(
        status == 200 || status == 201,
        "deploying {path}: {status} {reply}"
    );
}

/// Sends event `release` to run `id` under id `key`; the answer's status.
async fn send_event(api: &Api, id: &str, body: &str, key: &str) -> u16 {
    let path = format!("/v1/runs/{id}/events/release");
    let what = format!("sending {key} to {id}");
    settled!(
        what,
        api.post_with(&path, body.to_string(), &[("idempotency-key", key)])
    )
    .0
}

/// Completes the callback of saga `id` once its token is in the run's
/// logs: twice with the same outcome (both answered 200, the second as a
/// client's retry would be) and once with another (refused, 409).
async fn complete_callback(api: &Api, id: &str, order: &str) {
    let deadline = Instant::now() + Duration::from_secs(600);
    let token = loop {
        let logs = api.get_ok(&format!("/v1/runs/{id}/logs")).await.unwrap();
        let token = logs["logs"].as_array().unwrap().iter().find_map(|l| {
            l["message"]
                .as_str()?
                .strip_prefix("callback token: ")
                .map(str::to_string)
        });
        if let Some(token) = token {
            break token;
        }
        assert!(Instant::now() < deadline, "{id} never logged its token");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let path = format!("/v1/callbacks/{token}");
    let approval = json!({ "result": { "approved": order } }).to_string();
    for _ in 0..2 {
        let (status, reply) = settled!(
            format!("completing the callback of {id}"),
            api.post(&path, approval.clone())
        );
        assert_eq!(status, 200, "completing the callback of {id}: {reply}");
    }
    let other = json!({ "result": { "approved": "someone else" } }).to_string();
    let (status, reply) = settled!(
        format!("completing the callback of {id} otherwise"),
        api.post(&path, other.clone())
    );
    assert_eq!(status, 409, "another outcome for {id}: {reply}");
}

/// What the harness started, and what each run must end with.
struct Started {
    id: String,
    order: String,
    /// Members of a fan-out run; 0 for a saga.
    fan_out: usize,
    /// A saga that also waits for a callback.
    callback: bool,
}

impl Started {
    fn check_output(&self, run: &Value) {
        assert_eq!(run["status"], "completed", "{run}");
        let order = &self.order;
        let output = &run["output"];
        if self.fan_out > 0 {
            let parts = output["parts"].as_array().expect("parts");
            assert_eq!(parts.len(), self.fan_out, "{run}");
            for (i, part) in parts.iter().enumerate() {
                assert_eq!(part["reservationId"], format!("res-{order}-{i}"), "{run}");
            }
            return;
        }
        assert_eq!(output["charge"]["chargeId"], format!("ch-{order}"));
        assert_eq!(output["shipment"]["trackingNumber"], format!("trk-{order}"));
        assert_eq!(output["release"], json!({ "order": order }), "{run}");
        let approval = if self.callback {
            json!({ "approved": order })
        } else {
            Value::Null
        };
        assert_eq!(output["approval"], approval, "{run}");
    }
}

async fn one_round(backend: Backend, round: usize) {
    let runs = env_usize("FAULT_RUNS", 100);
    let fan_out = env_usize("FAULT_FANOUT", 20);
    let started = Instant::now();
    let (counter, calls) = counter_server();
    let mut env = Vec::new();
    let aws = match backend {
        Backend::Aws => {
            let aws = AwsEnv::provision(QueueOptions {
                visibility_timeout: Duration::from_secs(3),
                // As deployed (the template's MaxReceiveCount): a killed
                // worker's messages must not come near dead-lettering.
                max_receives: 5,
            })
            .await;
            env.extend(aws.env());
            Some(aws)
        }
        Backend::Embedded => {
            for (k, v) in [
                ("WEFT_VISIBILITY_TIMEOUT_SECS", "3"),
                ("WEFT_MAX_RECEIVES", "5"),
            ] {
                env.push((k.to_string(), v.to_string()));
            }
            None
        }
    };
    for (k, v) in [
        // Long enough that a healthy attempt on a loaded 2-core machine
        // (moto alone takes a core) never times out; a hung one still does.
        ("WEFT_RPC_TIMEOUT_SECS", "10"),
        ("WEFT_ACTIVATION_TIMEOUT_SECS", "5"),
        ("WEFT_SWEEP_INTERVAL_SECS", "5"),
        ("WEFT_REPAIR_AFTER_SECS", "10"),
        ("WEFT_WORKER_CONCURRENCY", "8"),
        ("WEFT_FAULT_DUPLICATE_RATE", "0.1"),
        ("WEFT_FAULT_DELAY_RATE", "0.1"),
        ("WEFT_FAULT_DELAY_MAX_MS", "1500"),
        // The store and the queue themselves: calls throttled, timed out
        // (applied or not), and writes applied but reported failed.
        ("WEFT_FAULT_THROTTLE_RATE", "0.02"),
        ("WEFT_FAULT_TIMEOUT_RATE", "0.01"),
        ("WEFT_FAULT_TIMEOUT_MS", "300"),
        ("WEFT_FAULT_AMBIGUOUS_RATE", "0.02"),
    ] {
        env.push((k.to_string(), v.to_string()));
    }
    let fleet = Fleet::start(backend, env);
    let url = fleet.url();
    let api = Api::new(&url);
    let saga = test_guest("chaos-saga");
    deploy(&api, "/v1/modules/chaos-saga", &saga).await;
    deploy(&api, &format!("/v1/modules/{SCHEDULED}"), &saga).await;
    deploy(
        &api,
        &format!("/v1/modules/chaos-rpc?allowHosts={counter}"),
        &test_guest("chaos-rpc"),
    )
    .await;
    let request = |order: &str| {
        json!({
            "orderId": order,
            "counterUrl": format!("http://{counter}/"),
            "failPct": 15,
            "hangPct": 5,
        })
    };
    // A run every minute, shipping only.
    let mut scheduled_input = request(&format!("sched-{round}"));
    scheduled_input["shipOnly"] = json!(true);
    let schedule = json!({ "workflow": SCHEDULED, "cron": "* * * * *", "input": scheduled_input });
    let (status, reply) = settled!(
        "creating the schedule",
        api.put("/v1/schedules/chaos", schedule.to_string().into_bytes())
    );
    assert!(status == 200 || status == 201, "{status} {reply}");

    // Chaos from the first run on: kill and restart a random worker every
    // few seconds until told to stop.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let chaos = {
        let stop = stop.clone();
        let mut fleet = fleet;
        tokio::spawn(async move {
            let mut kills = 0usize;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(KILL_EVERY).await;
                let victim = rand::rng().random_range(0..fleet.workers.len());
                // Starting a process blocks until it listens: off the
                // runtime's threads, which serve the harness meanwhile.
                fleet = tokio::task::spawn_blocking(move || {
                    fleet.kill_and_restart(victim);
                    fleet
                })
                .await
                .unwrap();
                kills += 1;
            }
            (fleet, kills)
        })
    };

    let mut launched = Vec::new();
    for i in 0..runs {
        let order = format!("o-{round}-{i}");
        let fans = if i % 5 == 4 { fan_out } else { 0 };
        let callback = i % 5 == 2;
        let mut input = request(&order);
        if fans > 0 {
            input["fanOut"] = json!(fans);
        }
        if callback {
            input["callback"] = json!(true);
        }
        let key = format!("start-{round}-{i}");
        let id = api.start_keyed("chaos-saga", &input, &key).await.unwrap();
        launched.push(Started {
            id,
            order,
            fan_out: fans,
            callback,
        });
    }
    let sagas: Vec<(String, String)> = launched
        .iter()
        .filter(|s| s.fan_out == 0)
        .map(|s| (s.id.clone(), s.order.clone()))
        .collect();
    // Each saga's `release` event, at a random moment (before or during its
    // wait) while workers die, sent twice under one id.
    let sender = {
        let url = url.clone();
        let sagas = sagas.clone();
        tokio::spawn(async move {
            let api = Api::new(&url);
            for (id, order) in &sagas {
                let pause = rand::rng().random_range(0..150);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                let body = json!({ "order": order }).to_string();
                let key = format!("release-{order}");
                for _ in 0..2 {
                    let status = send_event(&api, id, &body, &key).await;
                    assert_eq!(status, 202, "sending {key}");
                }
            }
        })
    };
    // Each callback saga's callback, completed once its token is logged.
    let completer = {
        let url = url.clone();
        let waiting: Vec<(String, String)> = launched
            .iter()
            .filter(|s| s.callback)
            .map(|s| (s.id.clone(), s.order.clone()))
            .collect();
        tokio::spawn(async move {
            let api = Api::new(&url);
            for (id, order) in &waiting {
                complete_callback(&api, id, order).await;
            }
            waiting.len()
        })
    };
    // Completion is read run by run (a consistent GetItem), not from the
    // eventually consistent status index, a batch at a time.
    //
    // How long a round takes depends on the machine and on how often a
    // killed worker's run lease must expire first; what must not happen is
    // that the runs stop moving. So the round fails when no run has
    // finished and no running run has reached a new step for `STALL` (a
    // run that loops on a conflict it cannot win, say).
    let mut pending: Vec<&Started> = launched.iter().collect();
    let mut steps_seen: HashMap<String, u64> = HashMap::new();
    let mut last_move = Instant::now();
    let mut late_refused = 0;
    while !pending.is_empty() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let batch: Vec<&Started> = pending.drain(..pending.len().min(POLL_BATCH)).collect();
        for run in batch {
            let seen = api.get_ok(&format!("/v1/runs/{}", run.id)).await.unwrap();
            if seen["status"] == "running" {
                let steps = seen["steps"].as_u64().unwrap_or(0);
                if steps_seen.insert(run.id.clone(), steps) != Some(steps) {
                    last_move = Instant::now();
                }
                pending.push(run);
                continue;
            }
            last_move = Instant::now();
            // An event that arrives after the run ended is refused, and
            // changes nothing.
            if run.fan_out == 0 {
                let body = json!({ "order": "too late" }).to_string();
                let key = format!("late-{}", run.order);
                let status = send_event(&api, &run.id, &body, &key).await;
                assert_eq!(status, 409, "a late event to {}", run.id);
                late_refused += 1;
            }
        }
        if last_move.elapsed() >= STALL {
            let id = &pending[0].id;
            let run = api.get_ok(&format!("/v1/runs/{id}")).await.unwrap();
            let steps = api.get_ok(&format!("/v1/runs/{id}/steps")).await.unwrap();
            panic!(
                "{} runs still running after {:?}, none moved for {STALL:?}; the first: {run}\nits steps: {steps}",
                pending.len(),
                started.elapsed(),
            );
        }
    }
    sender.await.unwrap();
    let callbacks = completer.await.unwrap();
    // No more fires; then the scheduled runs finish like the others.
    let (status, reply) = settled!("deleting the schedule", api.delete("/v1/schedules/chaos"));
    assert_eq!(status, 200, "{reply}");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (fleet, kills) = chaos.await.unwrap();

    // Verify.
    let api = Api::new(&fleet.url());
    let mut attempts_total = 0u64;
    let mut rpc_steps = 0u64;
    let mut lost = 0u64;
    let mut timeouts = 0u64;
    // Per recorded attempt: whether it may never have executed (lost with a
    // killed worker, or timed out, perhaps before its first effect), and its
    // error.
    let mut recorded: BTreeMap<(String, u32), (bool, String)> = BTreeMap::new();
    let mut every_run = Vec::new();
    for run in &launched {
        let seen = api.wait(&run.id, Duration::from_secs(60)).await.unwrap();
        run.check_output(&seen);
        every_run.push(run.id.clone());
        if run.fan_out > 0 {
            continue;
        }
        let listed = api
            .get_ok(&format!("/v1/runs/{}/children", run.id))
            .await
            .unwrap();
        let listed = listed["children"].as_array().unwrap().clone();
        assert_eq!(listed.len(), 1, "one child: {listed:?}");
        assert_eq!(listed[0]["status"], "completed", "{listed:?}");
        every_run.push(listed[0]["runId"].as_str().unwrap().to_string());
        // The event was taken once, by the wait: the two sends under one id
        // are one event, and the late one was refused.
        let events = api
            .get_ok(&format!("/v1/runs/{}/events", run.id))
            .await
            .unwrap();
        let events = events["events"].as_array().unwrap();
        if backend == Backend::Embedded {
            // (DynamoDB lists events through an eventually consistent
            // index, so only the embedded backend's list is exact.)
            assert_eq!(events.len(), 1, "one event: {events:?}");
        }
        assert!(events.len() <= 1, "one event at most: {events:?}");
    }
    let scheduled = scheduled_runs(&api).await;
    for id in &scheduled {
        let run = api.wait(id, Duration::from_secs(120)).await.unwrap();
        assert_eq!(run["status"], "completed", "{run}");
        assert_eq!(
            run["output"]["trackingNumber"],
            format!("trk-sched-{round}"),
            "{run}"
        );
        every_run.push(id.clone());
    }
    let minutes = started.elapsed().as_secs() / 60;
    assert!(
        scheduled.len() as u64 <= minutes + 1,
        "{} scheduled runs in {minutes} minutes: a fire ran twice",
        scheduled.len()
    );
    for id in &every_run {
        let steps = api.get_ok(&format!("/v1/runs/{id}/steps")).await.unwrap();
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
                let timed_out = h["error"]["code"] == "timeout";
                lost += u64::from(was_lost);
                timeouts += u64::from(timed_out);
                recorded.insert(
                    (key.clone(), attempt),
                    (was_lost || timed_out, h["error"].to_string()),
                );
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
    let mut never_reached = 0u64;
    for ((key, attempt), (may_not_have_run, error)) in &recorded {
        let ran = calls.contains_key(&(key.clone(), *attempt));
        assert!(
            ran || *may_not_have_run,
            "attempt {attempt} of {key} is recorded (error: {error}) but never ran"
        );
        never_reached += u64::from(!ran);
    }
    // Nothing left in flight: every step succeeded (checked above) and no
    // run is still held by a worker (read by key, consistently).
    for id in &every_run {
        let run = api.get_ok(&format!("/v1/runs/{id}")).await.unwrap();
        assert!(run.get("activeOn").is_none_or(Value::is_null), "{run}");
    }

    println!(
        "chaos round {round} on {backend:?}: {runs} runs ({} fan-outs of {fan_out}, {} sagas with a child each, \
         {} scheduled, {callbacks} callbacks), {} worker processes, {kills} kills; queue: {} duplicated and {} delayed messages; \
         store and queue calls failed: {} throttled, {} timed out, {} ambiguous; {late_refused} late events \
         refused; {rpc_steps} RPC steps, {attempts_total} attempts ({} retries: {timeouts} timeouts, {lost} lost \
         with a killed worker; {never_reached} of those never reached the RPC's first effect), {} RPC executions counted, \
         all completed in {:.1} s",
        launched.len() - sagas.len(),
        sagas.len(),
        scheduled.len(),
        fleet.workers.len(),
        fleet.faults_logged("duplicate"),
        fleet.faults_logged("delay"),
        fleet.faults_logged("throttle"),
        fleet.faults_logged("timeout"),
        fleet.faults_logged("ambiguous"),
        attempts_total - rpc_steps,
        calls.len(),
        started.elapsed().as_secs_f64()
    );
    drop(aws);
}

/// Ids of the runs the schedule fired, every page of the listing.
async fn scheduled_runs(api: &Api) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(cursor) => format!("/v1/runs?workflow={SCHEDULED}&after={cursor}"),
            None => format!("/v1/runs?workflow={SCHEDULED}"),
        };
        let page = api.get_ok(&path).await.unwrap();
        for run in page["runs"].as_array().unwrap() {
            ids.push(run["runId"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => return ids,
        }
    }
}

/// One chaos test at a time: each loads both cores on its own.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn rounds(backend: Backend) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            for round in 0..env_usize("FAULT_ROUNDS", 1) {
                one_round(backend, round).await;
            }
        });
}

#[test]
fn runs_survive_chaos_on_aws() {
    rounds(Backend::Aws);
}

#[test]
fn runs_survive_chaos_embedded() {
    rounds(Backend::Embedded);
}
