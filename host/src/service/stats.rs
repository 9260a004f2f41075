//! Counters of what this process's service did, for benchmarks and
//! operators: how many activations ran and how many recorded steps they
//! replayed. Replays are the cost that grows with a run's journal, so these
//! show whether a workload's cost is linear in its steps.

use std::sync::atomic::{AtomicU64, Ordering};

/// The live counters (see [`super::Weft::stats`]).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    activations: AtomicU64,
    replayed_steps: AtomicU64,
    new_steps: AtomicU64,
}

/// A reading of the counters since the service started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Activations that ran the workflow (finished, failed or suspended).
    pub activations: u64,
    /// Journal entries those activations replayed from the journal.
    pub replayed_steps: u64,
    /// Steps they reached for the first time.
    pub new_steps: u64,
    /// Activations that continued a parked guest instead of replaying.
    pub parked_resumes: u64,
    /// Guests parked now, and their linear memory.
    pub parked_now: usize,
    pub parked_bytes: u64,
}

impl Stats {
    pub(crate) fn activation(&self, replayed: u32, new: u32) {
        self.activations.fetch_add(1, Ordering::Relaxed);
        self.replayed_steps
            .fetch_add(u64::from(replayed), Ordering::Relaxed);
        self.new_steps.fetch_add(u64::from(new), Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            activations: self.activations.load(Ordering::Relaxed),
            replayed_steps: self.replayed_steps.load(Ordering::Relaxed),
            new_steps: self.new_steps.load(Ordering::Relaxed),
            ..StatsSnapshot::default()
        }
    }
}
