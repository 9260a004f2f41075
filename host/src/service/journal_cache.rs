//! Journal entries this process has read, kept for the run's next replay
//! here. A step's record never changes once it has its outcome, so a kept
//! copy is good for as long as it is kept: a replay reads from the store
//! only the entries without an outcome and those it has not seen (when
//! another process handled the run's last activations, the steps it
//! recorded since). A run whose guest stays parked here needs none of
//! this; a run that moves between processes, or whose guest was let go,
//! reads what changed instead of its whole journal.
//!
//! Bounded by the bytes of the kept records (`WEFT_JOURNAL_CACHE_MB`) and
//! by age (a run kept longer than `WEFT_PARK_IDLE_SECS` is dropped): the
//! runs cached first are dropped first, and a run's entries are dropped
//! when it ends. Dropping is always safe: the store has every entry.

use crate::backend::{StateStore, StoreError};
use crate::model::{RunId, StepRecord};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Kept journal entries with an outcome, by run and step name.
pub(crate) struct JournalCache {
    max_bytes: usize,
    max_age: Duration,
    inner: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    runs: HashMap<RunId, HashMap<String, StepRecord>>,
    /// Runs in the order they were first kept, and when: the first to go.
    order: VecDeque<(RunId, Instant)>,
    bytes: usize,
}

/// What keeping `step` costs, roughly.
fn size(step: &StepRecord) -> usize {
    let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    256 + step.name.len() + text(&step.input) + text(&step.result) + text(&step.rpc_name)
}

impl JournalCache {
    pub(crate) fn new(max_bytes: usize, max_age: Duration) -> Self {
        Self {
            max_bytes,
            max_age,
            inner: Mutex::default(),
        }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The steps of run `run` named `names`, in that order, as
    /// [`StateStore::get_steps`] returns them: kept entries from memory,
    /// the rest from `state` (and those with an outcome kept).
    pub(crate) async fn get_steps(
        &self,
        state: &dyn StateStore,
        run: &RunId,
        names: &[String],
    ) -> Result<Vec<StepRecord>, StoreError> {
        if self.max_bytes == 0 {
            return state.get_steps(run, names).await;
        }
        let mut found: HashMap<String, StepRecord> = HashMap::new();
        let missing: Vec<String> = {
            let kept = self.kept();
            let of_run = kept.runs.get(run);
            names
                .iter()
                .filter(|name| match of_run.and_then(|r| r.get(*name)) {
                    Some(step) => {
                        found.insert(step.name.clone(), step.clone());
                        false
                    }
                    None => true,
                })
                .cloned()
                .collect()
        };
        if !missing.is_empty() {
            let read = state.get_steps(run, &missing).await?;
            self.keep(run, read.iter().filter(|s| s.status.is_final()));
            found.extend(read.into_iter().map(|s| (s.name.clone(), s)));
        }
        Ok(names.iter().filter_map(|n| found.remove(n)).collect())
    }

    /// Keeps `steps` of run `run`, then drops the oldest runs over budget.
    fn keep<'a>(&self, run: &RunId, steps: impl Iterator<Item = &'a StepRecord>) {
        let mut kept = self.kept();
        let Kept { runs, order, bytes } = &mut *kept;
        let now = Instant::now();
        let of_run = runs.entry(run.clone()).or_insert_with(|| {
            order.push_back((run.clone(), now));
            HashMap::new()
        });
        for step in steps {
            if of_run.insert(step.name.clone(), step.clone()).is_none() {
                *bytes += size(step);
            }
        }
        while let Some((oldest, since)) = order.front().cloned() {
            if *bytes <= self.max_bytes && now.duration_since(since) <= self.max_age {
                break;
            }
            order.pop_front();
            if let Some(dropped) = runs.remove(&oldest) {
                *bytes = bytes.saturating_sub(dropped.values().map(size).sum::<usize>());
            }
        }
    }

    /// Drops what is kept of run `run` (it ended).
    pub(crate) fn forget(&self, run: &RunId) {
        let mut kept = self.kept();
        if let Some(dropped) = kept.runs.remove(run) {
            kept.bytes = kept
                .bytes
                .saturating_sub(dropped.values().map(size).sum::<usize>());
            kept.order.retain(|(r, _)| r != run);
        }
    }
}
