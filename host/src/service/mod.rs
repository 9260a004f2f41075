//! Orchestration: starting runs, handling work messages, executing steps.
//!
//! [`Weft`] is the one object the HTTP API, the worker loop, the CLI and the
//! Lambda handlers talk to. It owns the backends (behind the `StateStore`,
//! `WorkQueue` and `ModuleStore` seams), the module registry and the
//! settings, and turns each work message into store writes and new messages.

mod admission;
mod callbacks;
mod children;
mod driver;
mod events;
mod handler;
pub mod invocation;
mod journal_cache;
mod metrics;
mod modules;
pub mod parking;
mod payloads;
mod queries;
mod replay_check;
mod resume;
mod retention;
mod runs;
mod schedules;
mod stats;
pub use schedules::ScheduleSpec;
mod steps;
mod upgrade;
pub use stats::StatsSnapshot;
pub mod worker;

pub use handler::Handled;
pub use modules::StagedUpload;
pub use replay_check::{ReplayCheck, ReplayOutcome};
pub use upgrade::{Diverging, UpgradeOptions, UpgradeReport};

use crate::backend::{Backends, OffloadingStore, PayloadLimits};
use crate::backend::{QueueError, WorkQueue};
use crate::backend::{StateStore, StoreError};
use crate::config::{Limits, RpcMode, env_num};
use crate::engine::WeftEngine;
use crate::engine::prepared::Prepared;
use crate::model::{
    AttemptRecord, Clock, Envelope, Millis, ParentLink, RunStatus, StepRecord, SystemClock,
    WorkMessage,
};
use crate::registry::loader::ComponentLoader;
use crate::registry::{DeployError, Registry};
pub use parking::ParkingLimits;
use parking::ParkingLot;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How the service behaves; see the README's configuration table.
#[derive(Clone)]
pub struct Settings {
    pub rpc_mode: RpcMode,
    /// Identifies this process in leases.
    pub worker_id: String,
    /// How long a run lease lasts past each write of its holder.
    pub run_lease: Duration,
    /// Added to an RPC attempt's timeout to form its step lease: the slack
    /// that absorbs clock skew between workers (a worker whose clock runs
    /// ahead of the holder's by more than this declares a live attempt
    /// lost) and the time to record an outcome. `WEFT_STEP_LEASE_SLACK_SECS`.
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
    /// How long one invocation of the process may run (a Lambda function's
    /// timeout, `WEFT_INVOCATION_TIMEOUT_SECS`): RPC attempt timeouts are
    /// capped to fit in one, see [`invocation`]. `None`: no such limit.
    pub invocation_limit: Option<Duration>,
    /// Test-only: when it returns true for a claimed attempt, the attempt
    /// is dropped exactly as a crash would drop it (claimed, never run,
    /// never recorded, its message not acknowledged). `None` in production.
    pub lose_attempt: Option<LoseAttempt>,
    /// How many suspended guests this process keeps in memory, so a run's
    /// next activation here continues its guest instead of replaying the
    /// journal ([`parking`]). Off with `replay_every_step`.
    pub parking: ParkingLimits,
    /// Bytes of journal entries (those with an outcome, which never
    /// change) kept for runs' next replays in this process
    /// (`WEFT_JOURNAL_CACHE_MB`); 0 turns the cache off.
    pub journal_cache_bytes: u64,
    /// How long a finished run is kept, with everything it stored, before
    /// the retention sweep deletes it; `None` keeps runs for ever.
    /// `WEFT_RETENTION_DAYS` (0: for ever; default 30), or
    /// `WEFT_RETENTION_SECS` when set.
    pub retention: Option<Duration>,
    /// Client starts are refused (`429`) while this many messages wait
    /// ready in the queue; 0 never refuses. `WEFT_MAX_BACKLOG`.
    pub max_backlog: u64,
    /// Most first activations run in-process at once with
    /// `start_locally`; the rest go through the queue.
    /// `WEFT_LOCAL_STARTS`.
    pub local_starts: usize,
}

const DAY: Duration = Duration::from_secs(24 * 3600);

/// A predicate over a claimed step, for [`Settings::lose_attempt`].
pub type LoseAttempt = Arc<dyn Fn(&StepRecord) -> bool + Send + Sync>;

impl Settings {
    /// [`Settings::new`] with the `WEFT_*` overrides every process reads
    /// (`weft dev`, `weft run`, the Lambda functions).
    pub fn from_env(rpc_mode: RpcMode, limits: &Limits) -> anyhow::Result<Self> {
        let mut s = Self::new(rpc_mode, limits);
        s.repair_after =
            Duration::from_secs(env_num("WEFT_REPAIR_AFTER_SECS", s.repair_after.as_secs())?);
        s.parking = ParkingLimits {
            max_runs: env_num("WEFT_PARK_MAX_RUNS", s.parking.max_runs as u64)? as usize,
            max_bytes: env_num("WEFT_PARK_MAX_MB", s.parking.max_bytes >> 20)? << 20,
            max_idle: Duration::from_secs(env_num(
                "WEFT_PARK_IDLE_SECS",
                s.parking.max_idle.as_secs(),
            )?),
        };
        s.journal_cache_bytes =
            env_num("WEFT_JOURNAL_CACHE_MB", s.journal_cache_bytes >> 20)? << 20;
        let default_days = s.retention.map_or(0, |d| d.as_secs() / DAY.as_secs());
        s.retention = match env_num("WEFT_RETENTION_DAYS", default_days)? {
            0 => None,
            days => Some(DAY * days as u32),
        };
        // Finer than days, for short-lived data and soak tests.
        if std::env::var_os("WEFT_RETENTION_SECS").is_some() {
            s.retention = match env_num("WEFT_RETENTION_SECS", 0)? {
                0 => None,
                secs => Some(Duration::from_secs(secs)),
            };
        }
        s.max_backlog = env_num("WEFT_MAX_BACKLOG", s.max_backlog)?;
        s.local_starts = env_num("WEFT_LOCAL_STARTS", s.local_starts as u64)?.max(1) as usize;
        s.step_lease_grace = Duration::from_secs(env_num(
            "WEFT_STEP_LEASE_SLACK_SECS",
            s.step_lease_grace.as_secs(),
        )?);
        if let Ok(v) = std::env::var("WEFT_INVOCATION_TIMEOUT_SECS") {
            let limit = v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|secs| *secs > 0)
                .map(Duration::from_secs)
                .ok_or_else(|| {
                    anyhow::anyhow!("WEFT_INVOCATION_TIMEOUT_SECS={v:?} is not a number of seconds")
                })?;
            let longest = invocation::usable_span(limit);
            anyhow::ensure!(
                limits.default_rpc_timeout <= longest,
                "WEFT_RPC_TIMEOUT_SECS ({} s) must fit in one invocation: at most {} s for WEFT_INVOCATION_TIMEOUT_SECS={} (the function's timeout less {} s to start and wrap up)",
                limits.default_rpc_timeout.as_secs(),
                longest.as_secs(),
                limit.as_secs(),
                (limit - longest).as_secs()
            );
            s.invocation_limit = Some(limit);
        }
        Ok(s)
    }

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
            invocation_limit: None,
            lose_attempt: None,
            parking: ParkingLimits::default(),
            journal_cache_bytes: 64 << 20,
            retention: Some(DAY * 30),
            max_backlog: 10_000,
            local_starts: 256,
        }
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
    #[error("idempotency key {key:?} already started run {run} of {workflow:?} with another input")]
    IdempotencyConflict {
        key: String,
        workflow: String,
        run: String,
    },
    #[error("run {id} is already {}", status.as_str())]
    NotRunning { id: String, status: RunStatus },
    #[error("{0}")]
    InvalidInput(String),
    /// An event name or id that cannot be used.
    #[error("{0}")]
    InvalidEvent(String),
    /// No callback has this token (or the token is malformed).
    #[error("no callback has this token")]
    UnknownCallback,
    /// The callback was completed before, or has expired.
    #[error("{0}")]
    CallbackClosed(String),
    #[error("no schedule named {0:?}")]
    UnknownSchedule(String),
    /// A schedule name or cron expression that cannot be used.
    #[error("{0}")]
    InvalidSchedule(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error(transparent)]
    Deploy(#[from] DeployError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// More work waits than the workers can take: the start was refused
    /// and nothing was written; try again after `retry_after`.
    #[error("{backlog} messages wait for a worker (the limit is {limit}): try again in {} s", retry_after.as_secs())]
    Overloaded {
        backlog: u64,
        limit: u64,
        retry_after: Duration,
    },
}

impl Weft {
    /// Checks a payload a client sent (JSON, within `WEFT_MAX_PAYLOAD_BYTES`),
    /// as the service's error: too large, or not JSON.
    pub(crate) fn check_client_payload(&self, what: &str, json: &str) -> Result<(), ServiceError> {
        crate::engine::convert::check_payload(&self.limits, what, json).map_err(|e| {
            if e.code == crate::model::ErrorCode::PayloadTooLarge.as_str() {
                ServiceError::PayloadTooLarge(e.message)
            } else {
                ServiceError::InvalidInput(e.message)
            }
        })
    }
}

impl ServiceError {
    /// Whether trying again later may succeed: the store or the queue
    /// failed (throttling, a timeout, a network error) or kept losing races.
    /// Everything else is about the request itself.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store(e) => e.is_transient(),
            Self::Queue(e) => e.is_transient(),
            Self::Deploy(DeployError::Store(e)) => e.is_transient(),
            _ => false,
        }
    }
}

/// Options of a new run.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// Fail the run with `run_timeout` if it has not finished after this long.
    pub timeout: Option<Duration>,
    /// A client's name for this start: starting again under the same key
    /// with the same input returns the run the first start created; with
    /// another input it fails with [`ServiceError::IdempotencyConflict`].
    pub idempotency_key: Option<String>,
    /// The run that starts this one as its child.
    pub parent: Option<ParentLink>,
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
    /// The payload layer under `state`, by its type: for download links
    /// to stored-aside payloads.
    pub(crate) payloads: Arc<OffloadingStore>,
    /// What `state` counted, and activations: `GET /metrics`.
    pub(crate) metrics: Arc<metrics::Metrics>,
    pub(crate) queue: Arc<dyn WorkQueue>,
    pub(crate) registry: Registry,
    pub(crate) limits: Limits,
    pub(crate) settings: Settings,
    /// Signalled whenever this process finishes a run, so waiters wake at once.
    pub(crate) finished: Notify,
    pub(crate) stats: stats::Stats,
    /// Suspended guests kept for their run's next activation here; `None`
    /// when parking is off.
    pub(crate) parking: Option<Arc<ParkingLot>>,
    /// Journal entries kept for replays in this process.
    pub(crate) journal: journal_cache::JournalCache,
    /// How far new work is let in ([`admission`]).
    pub(crate) admission: admission::Admission,
}
impl Weft {
    /// What this process's service has done since it started.
    pub fn stats(&self) -> StatsSnapshot {
        let mut stats = self.stats.snapshot();
        if let Some(lot) = &self.parking {
            stats.parked_resumes = lot.woken.load(std::sync::atomic::Ordering::Relaxed);
            (stats.parked_now, stats.parked_bytes) = lot.usage();
        }
        stats
    }

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
        let workflows = Prepared::new(&engine.engine).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let rpcs = Prepared::new(&engine.engine).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let registry = Registry::new(
            backends.modules,
            loader,
            workflows,
            rpcs,
            limits.max_module_bytes,
            settings.clock.clone(),
        );
        let parking_limits = ParkingLimits {
            max_runs: engine.pool.parking_room(settings.parking.max_runs),
            ..settings.parking
        };
        let parking = (parking_limits.max_runs > 0 && !settings.replay_every_step)
            .then(|| Arc::new(ParkingLot::new(parking_limits)));
        let journal = journal_cache::JournalCache::new(
            usize::try_from(settings.journal_cache_bytes).unwrap_or(usize::MAX),
            settings.parking.max_idle,
        );
        // Every state read and write goes through the payload layer, so
        // nothing above it sees a stored-aside reference.
        let payloads = PayloadLimits {
            inline: limits.inline_payload_bytes,
            max_payload: limits.max_payload_bytes,
            max_run: limits.max_run_payload_bytes,
            ..PayloadLimits::default()
        };
        let payloads = Arc::new(OffloadingStore::new(
            backends.state,
            backends.blobs,
            payloads,
        ));
        let metrics = Arc::new(metrics::Metrics::default());
        let state = Arc::new(metrics::MeteredStore::new(
            payloads.clone(),
            Arc::clone(&metrics),
        ));
        Ok(Arc::new(Self {
            state,
            payloads,
            metrics,
            queue: backends.queue,
            registry,
            limits,
            admission: admission::Admission::new(settings.max_backlog, settings.local_starts),
            settings,
            finished: Notify::new(),
            stats: stats::Stats::default(),
            parking,
            journal,
        }))
    }

    /// This process's metrics in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let parked = self.parking.as_ref().map_or((0, 0), |lot| lot.usage());
        self.metrics.render(parked)
    }

    /// What changed since the last call, as CloudWatch Embedded Metric
    /// Format lines (`service/metrics.rs`).
    pub fn take_emf(&self) -> Vec<String> {
        self.metrics.take_emf(self.now())
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
            retries: 0,
        };
        self.queue.send(&envelope, delay).await
    }
}
