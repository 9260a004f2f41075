//! Schedules: a workflow started on a cron expression (UTC).
//!
//! A schedule fires at each time its expression names; a fire at time `T`
//! starts the run [`Schedule::run_id`]`(T)` through the idempotent start,
//! so two workers (or a retried Lambda) firing the same `T` make one run.

use super::{Millis, RunId};
use serde::{Deserialize, Serialize};

/// What a fire does while the schedule's previous run is still running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// Start no run for this time (the default).
    #[default]
    Skip,
    /// Start it anyway.
    Allow,
}

impl Overlap {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Allow => "allow",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "skip" => Some(Self::Skip),
            "allow" => Some(Self::Allow),
            _ => None,
        }
    }
}

/// A schedule as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// 1-128 of `A-Z a-z 0-9 _ - .`.
    pub name: String,
    pub workflow: String,
    /// Five-field cron, UTC (see [`super::cron::Cron`]).
    pub cron: String,
    /// JSON text, the input of every run it starts.
    pub input: String,
    pub overlap: Overlap,
    pub paused: bool,
    /// When it fires next; `None` while paused (or if the expression
    /// matches no time ahead).
    pub next_fire_at: Option<Millis>,
    /// The last time it fired, and the run that fire started (or found
    /// still running, when it skipped).
    pub last_fire_at: Option<Millis>,
    pub last_run_id: Option<RunId>,
    /// Fires that started no run because the previous one still ran.
    pub skipped: u64,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Bumped by every write; writers name the version they read.
    pub version: u64,
}

impl Schedule {
    /// The run a fire at `at` starts: the same for every worker that fires
    /// this schedule at this time.
    pub fn run_id(&self, at: Millis) -> RunId {
        RunId::for_key(&self.workflow, &self.start_key(at))
    }

    /// The idempotency key a fire at `at` starts its run under;
    /// [`Schedule::run_id`] is the run it names.
    pub fn start_key(&self, at: Millis) -> String {
        format!("schedule:{}@{at}", self.name)
    }
}

/// Whether `name` can name a schedule: it forms part of storage keys.
pub fn valid_schedule_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}
