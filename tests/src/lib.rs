//! Support for Weft's end-to-end suites: where the guest components are,
//! an in-process service on the embedded backend, and `weft dev` as a real
//! child process with an HTTP client.
//!
//! Guests are built from source by `make guests` (which `make test` runs)
//! into `target/examples/` and `target/test-guests/`.

use anyhow::{Context as _, bail};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use weft::backend::Backends;
use weft::backend::sqlite::blobs::FileBlobs;
use weft::backend::sqlite::{Durability, EmbeddedOptions, QueueSettings, SqliteBackend};
use weft::config::Limits;
use weft::config::RpcMode;
use weft::model::{RunId, RunRecord};
use weft::service::worker::{self, WorkerOptions};
use weft::service::{Settings, Weft};

pub mod aws;
pub mod browser;
pub mod conformance;
pub mod lambda;
pub mod power_cut;
pub mod recorded;
pub mod scenarios;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn artifact(dir: &str, name: &str) -> PathBuf {
    let path = root().join("target").join(dir).join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `make guests` (or `make test`) to build the guest components",
        path.display()
    );
    path
}

/// An example component: `hello`, `order-saga`, `order-rpc`.
pub fn example(name: &str) -> PathBuf {
    artifact("examples", name)
}

/// A test-only component from `tests/guests/`.
pub fn test_guest(name: &str) -> PathBuf {
    artifact("test-guests", name)
}

pub fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The `weft` binary built alongside the tests.
pub fn weft_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test binary> → target/<profile>/weft
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("weft"))
        .unwrap_or_default();
    assert!(
        bin.exists(),
        "{} is missing: build the host with `cargo build -p weft-host`",
        bin.display()
    );
    bin
}

/// A saga input that completes: one transient payment failure, short sleep.
pub fn saga_input(order_id: &str) -> Value {
    serde_json::json!({
        "orderId": order_id,
        "customer": "ada",
        "items": [{"sku": "book", "qty": 2, "priceCents": 1250}, {"sku": "pen", "qty": 3, "priceCents": 199}],
        "paymentFailures": 1,
        "coolOffMs": 200,
    })
}

/// A fresh embedded backend for the conformance and scenario suites:
/// 1 s visibility, dead-lettering after 3 receives.
pub async fn sqlite_backend() -> conformance::Backend {
    embedded_backend(Durability::Fsync)
}

/// [`sqlite_backend`] with its state in memory (the benchmark's
/// non-durable configuration).
pub async fn in_memory_backend() -> conformance::Backend {
    embedded_backend(Durability::Memory)
}

fn embedded_backend(durability: Durability) -> conformance::Backend {
    // The directory outlives the test on purpose: the backend keeps files open.
    let dir = tempfile::tempdir().expect("temp dir").keep();
    let options = EmbeddedOptions {
        queue: QueueSettings {
            visibility_timeout: Duration::from_secs(1),
            max_receives: 3,
        },
        durability,
        ..EmbeddedOptions::default()
    };
    let db = Arc::new(SqliteBackend::open(&dir, options).expect("open sqlite backend"));
    conformance::Backend {
        state: db.clone(),
        queue: db.clone(),
        modules: db,
        blobs: Arc::new(FileBlobs::new(&dir)),
        visibility: Duration::from_secs(1),
        max_receives: 3,
    }
}

/// A service under test, with a worker running in this process.
pub struct Service {
    pub svc: Arc<Weft>,
    pub dir: tempfile::TempDir,
    worker: Option<tokio::task::JoinHandle<()>>,
}

/// Adjusts a service's settings and limits before it starts.
pub trait Tune: FnOnce(&mut Settings, &mut Limits) {}
impl<F: FnOnce(&mut Settings, &mut Limits)> Tune for F {}

impl Service {
    /// A service on the embedded backend in a temporary directory.
    pub fn start(mode: RpcMode, tune: impl Tune) -> Self {
        let mut e = Self::without_worker(mode, tune);
        e.start_worker();
        e
    }

    /// An embedded service whose messages are only handled when the test says so.
    pub fn without_worker(mode: RpcMode, tune: impl Tune) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let backends =
            Backends::embedded(dir.path(), EmbeddedOptions::default()).expect("embedded backend");
        Self::build(backends, dir, mode, tune)
    }

    /// A service on any backend (see [`conformance::Backend`]), without a
    /// worker yet.
    pub fn on(backend: conformance::Backend, mode: RpcMode, tune: impl Tune) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let backends = Backends {
            state: backend.state,
            queue: backend.queue,
            modules: backend.modules,
            blobs: backend.blobs,
            artifact_dir: dir.path().join("cache"),
        };
        Self::build(backends, dir, mode, tune)
    }

    /// A service on `backends` (whose files live elsewhere), without a
    /// worker yet.
    pub fn with_backends(backends: Backends, mode: RpcMode, tune: impl Tune) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::build(backends, dir, mode, tune)
    }

    fn build(backends: Backends, dir: tempfile::TempDir, mode: RpcMode, tune: impl Tune) -> Self {
        let mut limits = Limits::default();
        let mut settings = Settings::new(mode, &limits);
        tune(&mut settings, &mut limits);
        let svc = Weft::new(backends, limits, settings).expect("service");
        Self {
            svc,
            dir,
            worker: None,
        }
    }

    pub fn start_worker(&mut self) {
        self.start_worker_with(WorkerOptions {
            receive_wait: Duration::from_millis(500),
            dead_letter_interval: Duration::from_millis(500),
            ..WorkerOptions::default()
        });
    }

    pub fn start_worker_with(&mut self, options: WorkerOptions) {
        self.worker = Some(tokio::spawn(worker::run(Arc::clone(&self.svc), options)));
    }

    pub async fn deploy(&self, name: &str, path: &Path) {
        self.svc
            .deploy(name, bytes(path))
            .await
            .unwrap_or_else(|e| panic!("deploying {name}: {e}"));
    }

    /// Starts a run and waits for it to finish (panics after `timeout`).
    pub async fn run(&self, workflow: &str, input: &Value, timeout: Duration) -> RunRecord {
        let id = self
            .svc
            .start_run(workflow, &input.to_string())
            .await
            .expect("start run");
        self.wait(&id, timeout).await
    }

    pub async fn wait(&self, id: &RunId, timeout: Duration) -> RunRecord {
        let run = self.svc.wait_for(id, timeout).await.expect("read run");
        assert!(
            run.status.is_terminal(),
            "run {id} did not finish within {timeout:?}: {run:?}"
        );
        run
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(w) = self.worker.take() {
            w.abort();
        }
    }
}

/// `weft dev` running as a child process.
pub struct DevServer {
    child: Child,
    pub url: String,
    pub data_dir: PathBuf,
}

impl DevServer {
    /// Starts `weft dev` on a free loopback port over `data_dir`, with
    /// extra environment variables, and waits until it serves requests.
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let owned: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::start_with(data_dir, &owned)
    }

    /// [`DevServer::start`] with owned environment pairs.
    pub fn start_with(data_dir: &Path, env: &[(String, String)]) -> anyhow::Result<Self> {
        Self::spawn(data_dir, env, None, "127.0.0.1:0")
    }

    /// [`DevServer::start_with`], with the server's log (stderr) written to
    /// `log` instead of the test's output.
    pub fn start_logged(
        data_dir: &Path,
        env: &[(String, String)],
        log: &Path,
    ) -> anyhow::Result<Self> {
        Self::spawn(data_dir, env, Some(log), "127.0.0.1:0")
    }

    /// [`DevServer::start_logged`] on address `addr`: how a test restarts a
    /// killed server where its clients expect it.
    pub fn start_logged_at(
        data_dir: &Path,
        env: &[(String, String)],
        log: &Path,
        addr: &str,
    ) -> anyhow::Result<Self> {
        Self::spawn(data_dir, env, Some(log), addr)
    }

    fn spawn(
        data_dir: &Path,
        env: &[(String, String)],
        log: Option<&Path>,
        addr: &str,
    ) -> anyhow::Result<Self> {
        let mut cmd = Command::new(weft_bin());
        cmd.args(["dev", "--addr", addr, "--data-dir"])
            .arg(data_dir)
            .env("WEFT_LOG", "warn,weft=info")
            .stdout(Stdio::piped())
            .stderr(match log {
                Some(path) => {
                    Stdio::from(std::fs::File::create(path).context("creating the server log")?)
                }
                None => Stdio::inherit(),
            });
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("spawning weft dev")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().context("weft dev exited before listening")??;
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .map(str::to_string)
            .with_context(|| format!("unexpected first line from weft dev: {first}"))?;
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Self {
            child,
            url,
            data_dir: data_dir.to_path_buf(),
        })
    }

    pub fn api(&self) -> Api {
        Api::new(&self.url)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A small JSON client for the Weft API.
#[derive(Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str) -> Self {
        Self::with_headers(base, reqwest::header::HeaderMap::new())
    }

    /// No connection reuse: a server that answers before reading a body
    /// (a 401 or 413 on an upload) closes the connection, and a pooled
    /// request racing that close fails for reasons that are not the test's.
    fn with_headers(base: &str, headers: reqwest::header::HeaderMap) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .default_headers(headers)
                .pool_max_idle_per_host(0)
                .build()
                .unwrap_or_default(),
        }
    }

    /// A client that sends `Authorization: Bearer <token>` on every request.
    pub fn with_token(base: &str, token: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        let value = format!("Bearer {token}");
        if let Ok(v) = reqwest::header::HeaderValue::from_str(&value) {
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        Self::with_headers(base, headers)
    }

    async fn finish(response: reqwest::Response) -> anyhow::Result<(u16, Value)> {
        let status = response.status().as_u16();
        let text = response.text().await?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        Self::finish(self.http.get(format!("{}{path}", self.base)).send().await?).await
    }

    pub async fn post(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        Self::finish(response).await
    }

    /// [`Api::post`] with extra headers (an `Idempotency-Key`, say).
    pub async fn post_with(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::finish(request.send().await?).await
    }

    pub async fn put(&self, path: &str, body: Vec<u8>) -> anyhow::Result<(u16, Value)> {
        Self::finish(
            self.http
                .put(format!("{}{path}", self.base))
                .body(body)
                .send()
                .await?,
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        Self::finish(
            self.http
                .delete(format!("{}{path}", self.base))
                .send()
                .await?,
        )
        .await
    }

    /// Deploys a module and insists on success.
    pub async fn deploy(&self, name: &str, path: &Path) -> anyhow::Result<Value> {
        let (status, body) = self
            .put(&format!("/v1/modules/{name}"), bytes(path))
            .await?;
        if status != 201 && status != 200 {
            bail!("deploying {name}: {status} {body}");
        }
        Ok(body)
    }

    /// Deploys the order saga and its RPC module (`order-saga`, `order-rpc`).
    pub async fn deploy_saga(&self) -> anyhow::Result<()> {
        self.deploy("order-saga", &example("order-saga")).await?;
        self.deploy("order-rpc", &example("order-rpc")).await?;
        Ok(())
    }

    /// A run's steps as `GET /v1/runs/{id}/steps` shows them.
    pub async fn steps(&self, run_id: &str) -> anyhow::Result<Vec<Value>> {
        let (status, body) = self.get(&format!("/v1/runs/{run_id}/steps")).await?;
        if status != 200 {
            bail!("steps of {run_id}: {status} {body}");
        }
        Ok(body["steps"].as_array().cloned().unwrap_or_default())
    }

    /// Starts a run and returns its id.
    pub async fn start(&self, workflow: &str, input: &Value) -> anyhow::Result<String> {
        let (status, body) = self
            .post(&format!("/v1/workflows/{workflow}/runs"), input.to_string())
            .await?;
        if status != 202 {
            bail!("starting {workflow}: {status} {body}");
        }
        body["runId"]
            .as_str()
            .map(str::to_string)
            .context("no runId")
    }

    /// `GET path`, retried while the server answers 5xx or cannot be
    /// reached (its store faulted, its process restarting) for up to a
    /// minute, as a client of a flaky deployment would. A 4xx is an error.
    pub async fn get_ok(&self, path: &str) -> anyhow::Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let failure = match self.get(path).await {
                Ok((200, body)) => return Ok(body),
                Ok((status, body)) if status < 500 => bail!("GET {path}: {status} {body}"),
                Ok((status, body)) => format!("{status} {body}"),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                bail!("GET {path} kept failing: {failure}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts a run under idempotency key `key`, retrying the start while
    /// the server answers 5xx or cannot be reached (the key makes a retried
    /// start that did land answer the same run).
    pub async fn start_keyed(
        &self,
        workflow: &str,
        input: &Value,
        key: &str,
    ) -> anyhow::Result<String> {
        let path = format!("/v1/workflows/{workflow}/runs");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let failure = match self
                .post_with(&path, input.to_string(), &[("idempotency-key", key)])
                .await
            {
                Ok((202 | 200, body)) => {
                    return body["runId"]
                        .as_str()
                        .map(str::to_string)
                        .context("no runId");
                }
                Ok((status, body)) if status < 500 => bail!("starting {workflow}: {status} {body}"),
                Ok((status, body)) => format!("{status} {body}"),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                bail!("starting {workflow} under {key} kept failing: {failure}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls a run until it is terminal.
    pub async fn wait(&self, run_id: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, run) = self.get(&format!("/v1/runs/{run_id}")).await?;
            if status == 200 && run["status"] != "running" {
                return Ok(run);
            }
            if Instant::now() > deadline {
                bail!("run {run_id} still not finished after {timeout:?}: {run}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until `check` accepts the run's steps.
    pub async fn wait_for_steps(
        &self,
        run_id: &str,
        timeout: Duration,
        check: impl Fn(&[Value]) -> bool,
    ) -> anyhow::Result<Vec<Value>> {
        let deadline = Instant::now() + timeout;
        loop {
            let (_, body) = self.get(&format!("/v1/runs/{run_id}/steps")).await?;
            let steps = body["steps"].as_array().cloned().unwrap_or_default();
            if check(&steps) {
                return Ok(steps);
            }
            if Instant::now() > deadline {
                bail!("run {run_id}: steps never reached the expected state: {steps:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Every step (as the steps endpoint shows it) succeeded once: one history
/// row per attempt, and exactly one successful attempt for steps that have
/// attempts (sleeps have none).
pub fn assert_single_outcomes(steps: &[Value]) {
    for step in steps {
        assert_eq!(step["status"], "succeeded", "{step}");
        let history = step["history"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            history.len() as u64,
            step["attempts"].as_u64().unwrap_or_default(),
            "history rows match attempts: {step}"
        );
        if step["kind"] != "sleep" {
            let successes = history
                .iter()
                .filter(|h| h["status"] == "succeeded")
                .count();
            assert_eq!(successes, 1, "one recorded success: {step}");
        }
    }
}

/// The saga input whose charge fails transiently twice and would succeed
/// on its third and last allowed attempt, every RPC slow enough
/// (`slowMs`) for a test to kill the host while that attempt runs.
pub fn last_attempt_input(order_id: &str) -> Value {
    let mut input = saga_input(order_id);
    input["slowMs"] = serde_json::json!(1_500);
    input["paymentFailures"] = serde_json::json!(2);
    input
}

/// Whether the charge's third (last allowed) attempt is running: the
/// moment to kill the host in [`assert_survived_a_lost_last_attempt`].
pub fn charge_in_last_attempt(steps: &[Value]) -> bool {
    steps
        .iter()
        .any(|s| s["name"] == "charge" && s["status"] == "running" && s["attempts"] == 3)
}

/// A saga started with [`last_attempt_input`] whose host died during the
/// charge's last allowed attempt ended as it would have without the crash:
/// charged and shipped, the lost attempt on record as `worker_lost` and
/// retried without spending the retry policy.
pub fn assert_survived_a_lost_last_attempt(run: &Value, steps: &[Value], order_id: &str) {
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        run["output"]["status"], "completed",
        "not compensated: {run}"
    );
    assert_eq!(run["output"]["chargeId"], format!("ch-{order_id}"), "{run}");
    assert_single_outcomes(steps);
    let charge = steps
        .iter()
        .find(|s| s["name"] == "charge")
        .expect("a charge step");
    assert_eq!(charge["attempts"], 4, "{charge}");
    assert_eq!(charge["hostLosses"], 1, "{charge}");
    let codes: Vec<&str> = charge["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .map(|a| a["error"]["code"].as_str().unwrap_or("ok"))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        codes,
        [
            "card_processor_unavailable",
            "card_processor_unavailable",
            "worker_lost",
            "ok"
        ],
        "{charge}"
    );
}
