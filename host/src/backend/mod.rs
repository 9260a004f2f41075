//! The storage seams, and one folder per technology behind them.
//!
//! - [`StateStore`] (`state.rs`): runs, steps, attempts and logs, changed
//!   only through fenced, all-or-nothing [`StateWrite`]s.
//! - [`WorkQueue`] (`queue.rs`): at-least-once delivery of work messages
//!   with SQS's semantics.
//! - [`ModuleStore`] (`modules.rs`): module bytes, versions and artifacts.
//!
//! - [`BlobStore`] (`payloads/`): payloads too large for a state item,
//!   which [`OffloadingStore`] stores aside for any state store.
//!
//! [`sqlite`] implements them on one embedded database and its data
//! directory; [`aws`] on DynamoDB, SQS and S3. [`faults`] wraps any state store and
//! queue to inject the faults they meet in production. Nothing outside this folder names a concrete backend except the
//! binaries' wiring (`cli/`, `lambda/`), which builds a [`Backends`] and
//! hands it to the service; `scripts/check-layers` enforces that.

pub mod aws;
pub mod faults;
mod modules;
pub mod payloads;
mod queue;
pub mod sqlite;
mod state;

pub use modules::ModuleStore;
pub(crate) use modules::same_version;
pub use payloads::{BlobStore, OffloadingStore, PayloadLimits};
pub use queue::{Delivery, MAX_DELAY, QueueError, WorkQueue};
pub use state::{
    CallbackWrite, EventTake, NewEvent, QuietCursor, QuietPage, RunCursor, RunQuery, RunWrite,
    ScheduleWrite, StateStore, StateWrite, StepExpect, StepWrite, StoreError,
};

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The storage a service runs on.
#[derive(Clone)]
pub struct Backends {
    pub state: Arc<dyn StateStore>,
    pub queue: Arc<dyn WorkQueue>,
    pub modules: Arc<dyn ModuleStore>,
    /// Where payloads too large for `state` are stored aside.
    pub blobs: Arc<dyn BlobStore>,
    /// Where precompiled artifacts are cached on local disk.
    pub artifact_dir: PathBuf,
}

impl Backends {
    /// The embedded backend in `data_dir`: state, queue and modules in one
    /// SQLite database, large payloads under `data_dir/payloads`, artifacts
    /// under `data_dir/cache`.
    pub fn embedded(data_dir: &Path, options: sqlite::EmbeddedOptions) -> Result<Self, StoreError> {
        let db = Arc::new(sqlite::SqliteBackend::open(data_dir, options)?);
        Ok(Self {
            state: db.clone(),
            queue: db.clone(),
            modules: db,
            blobs: Arc::new(sqlite::blobs::FileBlobs::new(data_dir)),
            artifact_dir: data_dir.join("cache"),
        })
    }

    /// The AWS backend: DynamoDB, SQS and S3 as `settings` name them (large
    /// payloads in the modules bucket under `payloads/`).
    /// Artifacts are cached under `WEFT_CACHE_DIR` (default: a folder in
    /// the system's temp dir, which is `/tmp` on Lambda).
    pub async fn aws(
        clients: &aws::AwsClients,
        settings: &aws::AwsSettings,
    ) -> Result<Self, QueueError> {
        let queue = aws::sqs::SqsQueue::connect(clients.sqs.clone(), settings).await?;
        let cache = std::env::var("WEFT_CACHE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| std::env::temp_dir().join("weft-cache"));
        Ok(Self {
            state: Arc::new(aws::dynamo::DynamoStore::new(
                clients.dynamo.clone(),
                settings,
            )),
            queue: Arc::new(queue),
            modules: Arc::new(aws::s3::AwsModuleStore::new(
                clients.dynamo.clone(),
                clients.s3.clone(),
                settings,
            )),
            blobs: Arc::new(aws::blobs::S3Blobs::new(clients.s3.clone(), settings)),
            artifact_dir: cache,
        })
    }

    /// These backends with the state store and the queue wrapped to inject
    /// `plan`'s faults, counted in the returned [`faults::FaultCounts`].
    pub fn with_faults(self, plan: faults::FaultPlan) -> (Self, Arc<faults::FaultCounts>) {
        let counts = Arc::new(faults::FaultCounts::default());
        let state = faults::FaultyStore::counting(self.state, plan.clone(), counts.clone());
        let queue = faults::FaultyQueue::counting(self.queue, plan, counts.clone());
        let backends = Self {
            state: Arc::new(state),
            queue: Arc::new(queue),
            ..self
        };
        (backends, counts)
    }
}
