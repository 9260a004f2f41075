//! Orchestration: starting runs, handling work messages, executing steps.
//!
//! [`Weft`] is the one object the HTTP API, the worker loop, the CLI and the
//! Lambda handlers talk to. It owns the backends (behind the `StateStore`,
//! `WorkQueue` and `ModuleStore` seams), the module registry and the
//! settings, and turns each work message into store writes and new messages.

mod activation;
mod handler;
mod steps;
pub mod worker;

pub use handler::Handled;

use crate::config::Limits;
use crate::engine::WeftEngine;
use crate::engine::loader::ComponentLoader;
use crate::model::{
    AttemptRecord, Clock, Envelope, ErrorInfo, Lease, LogLine, Millis, ModuleKind, ModuleVersion,
    RunId, RunRecord, RunStatus, StepRecord, SystemClock, WorkMessage,
};
use crate::modules::ModuleStore;
use crate::modules::registry::{DeployError, Registry};
use crate::queue::{QueueError, WorkQueue};
use crate::replay::WorkflowRuntime;
use crate::rpc::RpcRuntime;
use crate::store::sqlite::{Durability, QueueSettings, SqliteBackend};
use crate::store::{RunQuery, StateStore, StoreError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Where RPC steps execute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpcMode {
    /// In the process that replays the workflow, inside the activation:
    /// no queue round trip per step. Used when no worker fleet is configured.
    Inline,
    /// On whichever worker receives the step's message from the queue.
    Queued,
}

/// How the service behaves; see the README's configuration table.
#[derive(Clone)]
pub struct Settings {
    pub rpc_mode: RpcMode,
    /// Identifies this process in leases.
    pub worker_id: String,
    /// How long a run lease lasts past each write of its holder.
    pub run_lease: Duration,
    /// Added to an RPC attempt's timeout to form its step lease.
    pub step_lease_grace: Duration,
    /// Suspend and replay from the top after every step. Slow, but proves
    /// a workflow replays deterministically (`weft run --replay-every-step`).
    pub replay_every_step: bool,
    /// Retry backoffs up to this long are waited out in-process; longer ones
    /// suspend the run and arm a durable timer.
    pub inline_retry_max_wait: Duration,
    /// An unfinished step untouched this long gets its message re-sent when
    /// a replay reaches it (a crash may have lost the message).
    pub repair_after: Duration,
    /// Start new runs in this process at once (its worker would receive
    /// their first message anyway) instead of through the queue: a run
    /// begins without a queue round trip. Only for processes that run a
    /// worker; a crash before the first write is repaired by the recovery
    /// sweep, as a lost message would be.
    pub start_locally: bool,
    /// Where the service reads the time.
    pub clock: Arc<dyn Clock>,
}

impl Settings {
    pub fn new(rpc_mode: RpcMode, limits: &Limits) -> Self {
        Self {
            rpc_mode,
            worker_id: format!(
                "{}-{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "weft".into()),
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            run_lease: limits.activation_timeout + Duration::from_secs(15),
            step_lease_grace: Duration::from_secs(5),
            replay_every_step: false,
            inline_retry_max_wait: Duration::from_secs(2),
            repair_after: Duration::from_secs(60),
            start_locally: false,
            clock: Arc::new(SystemClock),
        }
    }
}

/// The storage a service runs on.
#[derive(Clone)]
pub struct Backends {
    pub state: Arc<dyn StateStore>,
    pub queue: Arc<dyn WorkQueue>,
    pub modules: Arc<dyn ModuleStore>,
    /// Where precompiled artifacts are cached on local disk.
    pub artifact_dir: PathBuf,
}

impl Backends {
    /// The embedded backend in `data_dir`.
    pub fn embedded(data_dir: &std::path::Path, queue: QueueSettings) -> Result<Self, StoreError> {
        Self::embedded_with(data_dir, queue, Durability::Fsync)
    }

    /// The embedded backend with a choice of [`Durability`].
    pub fn embedded_with(
        data_dir: &std::path::Path,
        queue: QueueSettings,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        let db = Arc::new(SqliteBackend::open_with(data_dir, queue, durability)?);
        Ok(Self {
            state: db.clone(),
            queue: db.clone(),
            modules: db,
            artifact_dir: data_dir.join("cache"),
        })
    }
}

impl Backends {
    /// The AWS backend: DynamoDB, SQS and S3 as `settings` name them.
    pub async fn aws(
        clients: &crate::aws::AwsClients,
        settings: &crate::aws::AwsSettings,
    ) -> Result<Self, QueueError> {
        let queue = crate::queue::sqs::SqsQueue::connect(clients.sqs.clone(), settings).await?;
        let cache = std::env::var("WEFT_CACHE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| std::env::temp_dir().join("weft-cache"));
        Ok(Self {
            state: Arc::new(crate::store::dynamo::DynamoStore::new(
                clients.dynamo.clone(),
                settings,
            )),
            queue: Arc::new(queue),
            modules: Arc::new(crate::modules::aws::AwsModuleStore::new(
                clients.dynamo.clone(),
                clients.s3.clone(),
                settings,
            )),
            artifact_dir: cache,
        })
    }
}

/// Why a service call failed, in terms an API can map to a status code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("no workflow named {0:?} is deployed")]
    UnknownWorkflow(String),
    #[error("module {0:?} is an RPC module, not a workflow")]
    NotAWorkflow(String),
    #[error("no run with id {0:?}")]
    UnknownRun(String),
    #[error("no module named {0:?} is deployed")]
    UnknownModule(String),
    #[error("run {id} is already {}", status.as_str())]
    NotRunning { id: String, status: RunStatus },
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error(transparent)]
    Deploy(#[from] DeployError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Options of a new run.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// Fail the run with `run_timeout` if it has not finished after this long.
    pub timeout: Option<Duration>,
}

/// A step with its attempts, for display.
#[derive(Clone, Debug)]
pub struct StepView {
    pub step: StepRecord,
    pub attempts: Vec<AttemptRecord>,
}

/// The Weft service.
pub struct Weft {
    pub(crate) state: Arc<dyn StateStore>,
    pub(crate) queue: Arc<dyn WorkQueue>,
    pub(crate) registry: Registry,
    pub(crate) limits: Limits,
    pub(crate) settings: Settings,
    /// Signalled whenever this process finishes a run, so waiters wake at once.
    pub(crate) finished: Notify,
}

impl Weft {
    pub fn new(
        backends: Backends,
        limits: Limits,
        settings: Settings,
    ) -> anyhow::Result<Arc<Self>> {
        let engine = WeftEngine::new(limits.clone()).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let loader = ComponentLoader::new(
            engine.engine.clone(),
            engine.engine_hash.clone(),
            backends.modules.clone(),
            backends.artifact_dir.clone(),
        );
        let workflows =
            WorkflowRuntime::new(&engine.engine).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let rpcs = RpcRuntime::new(&engine.engine).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let registry = Registry::new(
            backends.modules,
            loader,
            workflows,
            rpcs,
            limits.max_module_bytes,
        );
        Ok(Arc::new(Self {
            state: backends.state,
            queue: backends.queue,
            registry,
            limits,
            settings,
            finished: Notify::new(),
        }))
    }

    /// The current time, by the service's clock.
    pub fn now(&self) -> Millis {
        self.settings.clock.now_millis()
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn state(&self) -> &Arc<dyn StateStore> {
        &self.state
    }

    pub fn queue(&self) -> &Arc<dyn WorkQueue> {
        &self.queue
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Validates and stores a module as the newest version of `name`.
    pub async fn deploy(&self, name: &str, bytes: Vec<u8>) -> Result<ModuleVersion, ServiceError> {
        self.deploy_with_hosts(name, bytes, &[]).await
    }

    /// [`Weft::deploy`] for an RPC module allowed to reach `allowed_hosts`.
    pub async fn deploy_with_hosts(
        &self,
        name: &str,
        bytes: Vec<u8>,
        allowed_hosts: &[String],
    ) -> Result<ModuleVersion, ServiceError> {
        Ok(self.registry.deploy(name, bytes, allowed_hosts).await?)
    }

    /// Starts a run of the newest version of `workflow`, pinned to that
    /// version's digest for its whole life.
    pub async fn start_run(
        self: &Arc<Self>,
        workflow: &str,
        input: &str,
    ) -> Result<RunId, ServiceError> {
        self.start_run_with(workflow, input, StartOptions::default())
            .await
    }

    /// [`Weft::start_run`] with options.
    pub async fn start_run_with(
        self: &Arc<Self>,
        workflow: &str,
        input: &str,
        options: StartOptions,
    ) -> Result<RunId, ServiceError> {
        if let Err(e) = crate::replay::check_payload(&self.limits, "the run input", input) {
            return Err(if e.code == "payload_too_large" {
                ServiceError::PayloadTooLarge(e.message)
            } else {
                ServiceError::InvalidInput(e.message)
            });
        }
        let version = self
            .registry
            .store()
            .latest(workflow)
            .await?
            .ok_or_else(|| ServiceError::UnknownWorkflow(workflow.to_string()))?;
        if version.kind != ModuleKind::Workflow {
            return Err(ServiceError::NotAWorkflow(workflow.to_string()));
        }
        let now = self.now();
        let run = RunRecord {
            id: RunId::generate(),
            workflow: workflow.to_string(),
            module_digest: version.digest,
            status: RunStatus::Running,
            input: input.to_string(),
            output: None,
            error: None,
            created_at: now,
            updated_at: now,
            version: 0,
            lease: self.settings.start_locally.then(|| Lease {
                owner: self.settings.worker_id.clone(),
                expires_at: now + self.settings.run_lease.as_millis() as u64,
            }),
            step_names: Default::default(),
            wake_at: None,
            deadline: options.timeout.map(|t| now + t.as_millis() as u64),
        };
        self.state.create_run(&run).await?;
        let resume = WorkMessage::Resume {
            run_id: run.id.clone(),
        };
        if self.settings.start_locally {
            self.spawn_first_activation(run.clone());
        } else {
            self.send(resume.clone(), None).await?;
        }
        if let Some(deadline) = run.deadline {
            // Wakes the run at its deadline even if it is waiting on
            // something slower, so it fails on time.
            self.send(resume, Some(deadline)).await?;
        }
        Ok(run.id)
    }

    /// Activates a run created already leased to this process. If that
    /// cannot finish, the run goes back to the queue like any other.
    fn spawn_first_activation(self: &Arc<Self>, run: RunRecord) {
        let svc = Arc::clone(self);
        tokio::spawn(async move {
            let id = run.id.clone();
            let delay = match svc.activate_leased(run).await {
                Ok(Handled::Done) => return,
                Ok(Handled::Requeue(delay)) => delay,
                Err(e) => {
                    tracing::warn!(run = %id, "first activation failed, queueing the run: {e}");
                    svc.release_lease(&id).await;
                    Duration::ZERO
                }
            };
            let at = (!delay.is_zero()).then(|| svc.now() + delay.as_millis() as u64);
            if let Err(e) = svc
                .send(WorkMessage::Resume { run_id: id.clone() }, at)
                .await
            {
                // The recovery sweep re-drives it.
                tracing::warn!(run = %id, "cannot queue the run: {e}");
            }
        });
    }

    /// Cancels a running run: it ends `cancelled` at once, whatever it is
    /// waiting on. Step results that arrive later are recorded but do not
    /// resume it. Fails with [`ServiceError::NotRunning`] if it already ended.
    pub async fn cancel(&self, id: &RunId, reason: &str) -> Result<RunRecord, ServiceError> {
        let error = ErrorInfo::new("cancelled", reason);
        for _ in 0..10 {
            let mut run = self.run(id).await?;
            if run.status.is_terminal() {
                return Err(ServiceError::NotRunning {
                    id: id.to_string(),
                    status: run.status,
                });
            }
            let expected = run.version;
            run.status = RunStatus::Cancelled;
            run.error = Some(error.clone());
            run.lease = None;
            run.wake_at = None;
            run.updated_at = self.now();
            let write = crate::store::StateWrite {
                run: Some(crate::store::RunWrite {
                    record: run.clone(),
                    expected_version: expected,
                }),
                ..Default::default()
            };
            match self.state.commit(write).await {
                Ok(()) => {
                    self.finished.notify_waiters();
                    run.version = expected + 1;
                    return Ok(run);
                }
                // An activation wrote first; look again. (It will lose its
                // next write once we are through.)
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict(format!("run {id} kept changing while being cancelled")).into())
    }

    /// The step a running run is waiting on (its last, unfinished step), so
    /// an operator can see why it has not finished.
    pub async fn waiting_on(&self, run: &RunRecord) -> Result<Option<StepRecord>, ServiceError> {
        let Some(last) = run
            .step_names
            .last()
            .filter(|_| run.status == RunStatus::Running)
        else {
            return Ok(None);
        };
        let step = self.state.get_step(&run.id, last).await?;
        Ok(step.filter(|s| !s.status.is_final()))
    }

    pub async fn run(&self, id: &RunId) -> Result<RunRecord, ServiceError> {
        self.state
            .get_run(id)
            .await?
            .ok_or_else(|| ServiceError::UnknownRun(id.to_string()))
    }

    pub async fn list_runs(&self, query: &RunQuery) -> Result<Vec<RunRecord>, ServiceError> {
        Ok(self.state.list_runs(query).await?)
    }

    /// A run's steps in journal order, each with its attempts.
    pub async fn steps(&self, id: &RunId) -> Result<Vec<StepView>, ServiceError> {
        let run = self.run(id).await?;
        let steps = self.state.get_steps(&run.id, &run.step_names).await?;
        let mut out = Vec::with_capacity(steps.len());
        for step in steps {
            let attempts = self
                .state
                .list_attempts(&StepRecord::key(&step.run_id, &step.name))
                .await?;
            out.push(StepView { step, attempts });
        }
        Ok(out)
    }

    pub async fn logs(&self, id: &RunId) -> Result<Vec<LogLine>, ServiceError> {
        self.run(id).await?;
        Ok(self.state.list_logs(id).await?)
    }

    /// Waits up to `timeout` for the run to finish; returns it either way.
    pub async fn wait_for(&self, id: &RunId, timeout: Duration) -> Result<RunRecord, ServiceError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut poll = Duration::from_millis(20);
        loop {
            let notified = self.finished.notified();
            let run = self.run(id).await?;
            let now = tokio::time::Instant::now();
            if run.status.is_terminal() || now >= deadline {
                return Ok(run);
            }
            // Runs finished by another process are only seen by polling.
            let nap = poll.min(deadline - now);
            let _ = tokio::time::timeout(nap, notified).await;
            poll = (poll * 2).min(Duration::from_millis(500));
        }
    }

    /// Sends a work message, to be handled no sooner than `at` (epoch ms).
    pub(crate) async fn send(
        &self,
        message: WorkMessage,
        at: Option<u64>,
    ) -> Result<(), QueueError> {
        let now = self.now();
        let delay = at.map_or(Duration::ZERO, |at| {
            Duration::from_millis(at.saturating_sub(now))
        });
        let envelope = Envelope {
            message,
            not_before: at.filter(|at| *at > now),
        };
        self.queue.send(&envelope, delay).await
    }

    /// Fails a run that cannot make progress, unless it already finished.
    pub(crate) async fn fail_run(&self, id: &RunId, error: ErrorInfo) -> Result<(), ServiceError> {
        for _ in 0..5 {
            let Some(mut run) = self.state.get_run(id).await? else {
                return Ok(());
            };
            if run.status.is_terminal() {
                return Ok(());
            }
            let expected = run.version;
            run.status = RunStatus::Failed;
            run.error = Some(error.clone());
            run.lease = None;
            run.updated_at = self.now();
            let write = crate::store::StateWrite {
                run: Some(crate::store::RunWrite {
                    record: run,
                    expected_version: expected,
                }),
                ..Default::default()
            };
            match self.state.commit(write).await {
                Ok(()) => {
                    self.finished.notify_waiters();
                    return Ok(());
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict(format!("run {id} kept changing while being failed")).into())
    }
}
