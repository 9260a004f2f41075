//! Workflow runs.

use super::{Digest, ErrorInfo, Millis};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A run's identifier: a UUIDv7, so ids sort by creation time.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(String);

impl RunId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// The id of the run that `key` names among the runs of `workflow`:
    /// the same pair always gives the same id, which is what makes a start
    /// under a client's idempotency key (or a child's or a schedule's
    /// derived key) idempotent. A UUIDv8 whose bits are a sha256 prefix.
    pub fn for_key(workflow: &str, key: &str) -> Self {
        use sha2::Digest as _;
        let mut hash = sha2::Sha256::new();
        hash.update(b"weft-run\0");
        hash.update(workflow.as_bytes());
        hash.update(b"\0");
        hash.update(key.as_bytes());
        let digest = hash.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(uuid::Uuid::new_v8(bytes).hyphenated().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RunId {
    type Err = uuid::Error;

    /// Accepts only canonical UUIDs, so a run id from a URL can never smuggle
    /// a `#` (the step key separator) or other surprises into a store key.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed = uuid::Uuid::parse_str(s)?;
        Ok(Self(parsed.hyphenated().to_string()))
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a run is in its life. Only `Running` can change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl RunStatus {
    /// Every status, for listings that merge one query per status.
    pub const ALL: [RunStatus; 4] = [
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => Self::Running,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        self != Self::Running
    }
}

/// Who may activate a run (or execute a step) until when.
///
/// A lease that has expired may be taken over by anyone; the previous holder
/// then loses its next conditional write (see [`RunRecord::version`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    pub expires_at: Millis,
}

impl Lease {
    pub fn is_live(&self, now: Millis) -> bool {
        self.expires_at > now
    }
}

/// A run's journal index. Copies of a run record share it: it grows by one
/// name per step, and an activation writes a copy of the record per step,
/// so copying the names each time made a run quadratic in its length.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepNames(std::sync::Arc<Vec<String>>);

impl StepNames {
    /// Appends a name (copying the list only if another record still
    /// shares it).
    pub fn push(&mut self, name: String) {
        std::sync::Arc::make_mut(&mut self.0).push(name);
    }
}

impl std::ops::Deref for StepNames {
    type Target = [String];
    fn deref(&self) -> &[String] {
        &self.0
    }
}

impl From<Vec<String>> for StepNames {
    fn from(names: Vec<String>) -> Self {
        Self(std::sync::Arc::new(names))
    }
}

impl<S: AsRef<str>> PartialEq<[S]> for StepNames {
    fn eq(&self, other: &[S]) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

impl<S: AsRef<str>, const N: usize> PartialEq<[S; N]> for StepNames {
    fn eq(&self, other: &[S; N]) -> bool {
        *self == other[..]
    }
}

impl<S: AsRef<str>> PartialEq<Vec<S>> for StepNames {
    fn eq(&self, other: &Vec<S>) -> bool {
        *self == other[..]
    }
}

/// Where a child run came from: the parent run and the step of its journal
/// that started it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentLink {
    pub run_id: RunId,
    pub step: String,
    /// Started detached: the parent does not wait for it, and its end, or
    /// its cancellation, leaves the child running.
    pub detached: bool,
}

impl ParentLink {
    /// The id of the child that step `step` of run `parent` starts: the
    /// same every time, so starting it again (a replay, a retry after a
    /// crash) finds the run the first start created.
    pub fn child_id(parent: &RunId, step: &str, workflow: &str) -> RunId {
        RunId::for_key(workflow, &Self::start_key(parent, step))
    }

    /// The idempotency key the child of step `step` of run `parent` is
    /// started under; [`ParentLink::child_id`] is the run it names.
    pub fn start_key(parent: &RunId, step: &str) -> String {
        format!("child:{parent}/{step}")
    }
}

/// A run as stored: the seed's `workflow-runs` item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: RunId,
    pub workflow: String,
    /// The sha256 of the workflow module the run started with. Only a
    /// replay-checked upgrade changes it, onto a module that replays the
    /// run's journal exactly (`service/upgrade.rs`).
    pub module_digest: Digest,
    pub status: RunStatus,
    /// JSON text.
    pub input: String,
    /// JSON text, once completed.
    pub output: Option<String>,
    pub error: Option<ErrorInfo>,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Bumped by every write. Writers name the version they read, so a
    /// stale writer (a worker whose lease was taken over) always loses: the
    /// version doubles as the fencing token.
    pub version: u64,
    pub lease: Option<Lease>,
    /// The journal index: step names in the order the workflow reached them.
    /// Replay reads step items by these keys with consistent reads instead of
    /// trusting the eventually consistent `runId` index.
    pub step_names: StepNames,
    /// When a timer (a sleep, a retry backoff) will resume the suspended run;
    /// the recovery sweep leaves the run alone until then.
    pub wake_at: Option<Millis>,
    /// The run fails with `run_timeout` if still running at this time.
    pub deadline: Option<Millis>,
    /// The started RPC or child steps the suspended run waits for, any one
    /// of them
    /// (empty: it waits for nothing in particular). A worker that records
    /// the outcome of another step leaves the run asleep, so N members
    /// finishing cost O(N) cheap checks and one replay per useful outcome,
    /// not N replays.
    pub awaiting: Vec<String>,
    /// For a child run, its parent; never changes.
    pub parent: Option<ParentLink>,
    /// When a finished run is deleted with everything it stored (its
    /// retention ran out); `None` while it runs, or if runs are kept for
    /// ever. A whole second, as DynamoDB's TTL counts.
    #[serde(default)]
    pub expires_at: Option<Millis>,
}

/// What the hot paths need to know of a run: whether it still runs, who
/// holds it and what wakes it. Read without the run's input, output or
/// journal index, which grow with the run, so checking a run before an
/// attempt or after an outcome costs the same at step 10 as at step 10,000.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunHead {
    pub id: RunId,
    pub status: RunStatus,
    pub version: u64,
    pub lease: Option<Lease>,
    pub wake_at: Option<Millis>,
    pub deadline: Option<Millis>,
    pub awaiting: Vec<String>,
}

impl From<&RunRecord> for RunHead {
    fn from(r: &RunRecord) -> Self {
        Self {
            id: r.id.clone(),
            status: r.status,
            version: r.version,
            lease: r.lease.clone(),
            wake_at: r.wake_at,
            deadline: r.deadline,
            awaiting: r.awaiting.clone(),
        }
    }
}

impl RunRecord {
    /// Marks the record as written at `now`. A run that has just finished
    /// gets its expiry: `retention` after now, rounded up to a second.
    pub fn stamp(&mut self, now: Millis, retention: Option<std::time::Duration>) {
        self.updated_at = now;
        if self.status.is_terminal() && self.expires_at.is_none() {
            self.expires_at = retention.map(|keep| {
                let at = now.saturating_add(keep.as_millis() as u64);
                at.div_ceil(1000).saturating_mul(1000)
            });
        }
    }

    /// When the run may next need the recovery sweep if nothing else
    /// happens to it: the latest of its last write, its wake time and its
    /// lease's expiry. `None` once it has ended. Stores index running runs
    /// by it, so a sweep reads the runs that have gone quiet, not every
    /// running run.
    pub fn attention_at(&self) -> Option<Millis> {
        if self.status.is_terminal() {
            return None;
        }
        let lease = self.lease.as_ref().map_or(0, |l| l.expires_at);
        Some(self.updated_at.max(self.wake_at.unwrap_or(0)).max(lease))
    }
}

/// One line a workflow logged (through `log` or its stdout/stderr).
///
/// A line is identified by where the workflow was when it wrote it: the
/// number of journal entries behind it (`position`) and its order since then
/// (`index`). Replay only emits lines past the last recorded step, and those
/// keys are deterministic, so a line is stored once however often the run is
/// replayed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub position: u32,
    pub index: u32,
    /// The run's logical time when the line was written.
    pub at: Millis,
    pub level: String,
    pub message: String,
}
