//! [`OffloadingStore`]: any [`StateStore`], with large payloads stowed in a
//! [`BlobStore`] on the way in and fetched on the way out.

use super::cache::PayloadCache;
use super::{BlobStore, PayloadLimits, PayloadRef};
use crate::backend::{
    CallbackWrite, NewEvent, QuietCursor, QuietPage, RunQuery, StateStore, StateWrite, StoreError,
};
use crate::model::{
    AttemptRecord, CallbackRecord, CallbackState, EventRecord, EventSent, LogLine, Millis, RunHead,
    RunId, RunRecord, Schedule, StepOutcome, StepRecord,
};
use async_trait::async_trait;
use std::sync::{Arc, Mutex};

pub struct OffloadingStore {
    inner: Arc<dyn StateStore>,
    blobs: Arc<dyn BlobStore>,
    limits: PayloadLimits,
    cache: Mutex<PayloadCache>,
}

impl OffloadingStore {
    pub fn new(
        inner: Arc<dyn StateStore>,
        blobs: Arc<dyn BlobStore>,
        limits: PayloadLimits,
    ) -> Self {
        Self {
            inner,
            blobs,
            cache: Mutex::new(PayloadCache::new(limits.cache)),
            limits,
        }
    }

    /// Where a client can download `text`, a payload of `run` as this
    /// layer returned it, for `lifetime`: a presigned URL when the payload
    /// is stored aside in a store that hands them out; `None` otherwise
    /// (inline payloads, the embedded backend).
    pub async fn download_link(
        &self,
        run: &RunId,
        text: &str,
        lifetime: std::time::Duration,
    ) -> Result<Option<String>, StoreError> {
        if text.len() <= self.limits.inline {
            return Ok(None);
        }
        let cached = self.cache().find(run, text);
        let key = cached.unwrap_or_else(|| PayloadRef::of(run, text));
        self.blobs.presigned_get(&key, lifetime).await
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, PayloadCache> {
        // The cache holds no invariant a panic elsewhere could break.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces `text` by a reference if it is too large to keep inline.
    async fn stow(&self, run: &RunId, text: &mut String, what: &str) -> Result<(), StoreError> {
        if text.len() <= self.limits.inline || PayloadRef::parse(text).is_some() {
            return Ok(());
        }
        if text.len() > self.limits.max_payload {
            return Err(StoreError::TooLarge(format!(
                "{what} is {} bytes; the limit is {} (WEFT_MAX_PAYLOAD_BYTES)",
                text.len(),
                self.limits.max_payload
            )));
        }
        // Already stored: a run record written again with the same input.
        if let Some(key) = self.cache().find(run, text) {
            *text = key.to_string();
            return Ok(());
        }
        let key = PayloadRef::of(run, text);
        // Stored before, and forgotten here since (a new process, a full
        // cache): neither stored nor counted against the run again.
        if !self.blobs.contains(&key).await? {
            let stored = self.blobs.run_bytes(run).await?;
            if stored + text.len() as u64 > self.limits.max_run {
                return Err(StoreError::TooLarge(format!(
                    "{what} is {} bytes and run {run} already stores {stored}; a run may store {} \
                     (WEFT_MAX_RUN_PAYLOAD_BYTES)",
                    text.len(),
                    self.limits.max_run
                )));
            }
            self.blobs.put(&key, text.as_bytes()).await?;
        }
        let payload = std::mem::replace(text, key.to_string());
        self.cache().insert(key, Arc::from(payload));
        Ok(())
    }

    async fn stow_opt(
        &self,
        run: &RunId,
        text: &mut Option<String>,
        what: &str,
    ) -> Result<(), StoreError> {
        match text {
            Some(t) => self.stow(run, t, what).await,
            None => Ok(()),
        }
    }

    /// Replaces a reference in `text` by the payload it names.
    async fn fetch(&self, text: &mut String) -> Result<(), StoreError> {
        let Some(key) = PayloadRef::parse(text) else {
            return Ok(());
        };
        if let Some(payload) = self.cache().get(&key) {
            *text = payload.to_string();
            return Ok(());
        }
        let bytes =
            self.blobs.get(&key).await?.ok_or_else(|| {
                StoreError::Corrupt(format!("the stored payload {key} is missing"))
            })?;
        let payload = String::from_utf8(bytes)
            .map_err(|_| StoreError::Corrupt(format!("the stored payload {key} is not UTF-8")))?;
        if payload.len() != key.len {
            return Err(StoreError::Corrupt(format!(
                "the stored payload {key} has {} bytes",
                payload.len()
            )));
        }
        self.cache().insert(key, Arc::from(payload.as_str()));
        *text = payload;
        Ok(())
    }

    async fn fetch_opt(&self, text: &mut Option<String>) -> Result<(), StoreError> {
        match text {
            Some(t) => self.fetch(t).await,
            None => Ok(()),
        }
    }

    async fn stow_run(&self, run: &mut RunRecord) -> Result<(), StoreError> {
        self.stow(&run.id, &mut run.input, "the run input").await?;
        self.stow_opt(&run.id, &mut run.output, "the run output")
            .await
    }

    async fn fetch_run(&self, run: &mut RunRecord) -> Result<(), StoreError> {
        self.fetch(&mut run.input).await?;
        self.fetch_opt(&mut run.output).await
    }

    async fn stow_step(&self, step: &mut StepRecord) -> Result<(), StoreError> {
        let what = format!("the input of step {}", step.name);
        self.stow_opt(&step.run_id, &mut step.input, &what).await?;
        let what = format!("the result of step {}", step.name);
        self.stow_opt(&step.run_id, &mut step.result, &what).await
    }

    async fn fetch_step(&self, step: &mut StepRecord) -> Result<(), StoreError> {
        self.fetch_opt(&mut step.input).await?;
        self.fetch_opt(&mut step.result).await
    }

    async fn fetch_callback(&self, callback: &mut CallbackRecord) -> Result<(), StoreError> {
        if let CallbackState::Completed { result, .. } = &mut callback.state {
            self.fetch_opt(result).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl StateStore for OffloadingStore {
    async fn create_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let mut run = run.clone();
        self.stow_run(&mut run).await?;
        self.inner.create_run(&run).await
    }

    async fn get_run(&self, id: &RunId) -> Result<Option<RunRecord>, StoreError> {
        let mut run = self.inner.get_run(id).await?;
        if let Some(run) = &mut run {
            self.fetch_run(run).await?;
        }
        Ok(run)
    }

    async fn get_run_head(&self, id: &RunId) -> Result<Option<RunHead>, StoreError> {
        self.inner.get_run_head(id).await
    }

    async fn list_runs(&self, query: &RunQuery) -> Result<Vec<RunRecord>, StoreError> {
        let mut runs = self.inner.list_runs(query).await?;
        for run in &mut runs {
            self.fetch_run(run).await?;
        }
        Ok(runs)
    }

    async fn list_quiet_runs(
        &self,
        quiet_before: Millis,
        after: Option<&QuietCursor>,
        limit: usize,
    ) -> Result<QuietPage, StoreError> {
        let mut page = self
            .inner
            .list_quiet_runs(quiet_before, after, limit)
            .await?;
        for run in &mut page.runs {
            self.fetch_run(run).await?;
        }
        Ok(page)
    }

    async fn acquire_run_lease(
        &self,
        id: &RunId,
        owner: &str,
        now: Millis,
        ttl_ms: u64,
    ) -> Result<RunRecord, StoreError> {
        let mut run = self.inner.acquire_run_lease(id, owner, now, ttl_ms).await?;
        self.fetch_run(&mut run).await?;
        Ok(run)
    }

    async fn acquire_run_lease_head(
        &self,
        id: &RunId,
        owner: &str,
        now: Millis,
        ttl_ms: u64,
    ) -> Result<RunHead, StoreError> {
        self.inner
            .acquire_run_lease_head(id, owner, now, ttl_ms)
            .await
    }

    async fn commit(&self, mut write: StateWrite) -> Result<(), StoreError> {
        if let Some(run) = &mut write.run {
            self.stow_run(&mut run.record).await?;
        }
        for step in &mut write.steps {
            self.stow_step(&mut step.record).await?;
        }
        for callback in &mut write.callbacks {
            if let CallbackWrite::Create(record) = callback
                && let CallbackState::Completed { result, .. } = &mut record.state
            {
                let run = record.run_id.clone();
                self.stow_opt(&run, result, "the callback result").await?;
            }
        }
        self.inner.commit(write).await
    }

    async fn get_step(&self, run_id: &RunId, name: &str) -> Result<Option<StepRecord>, StoreError> {
        let mut step = self.inner.get_step(run_id, name).await?;
        if let Some(step) = &mut step {
            self.fetch_step(step).await?;
        }
        Ok(step)
    }

    async fn get_steps(
        &self,
        run_id: &RunId,
        names: &[String],
    ) -> Result<Vec<StepRecord>, StoreError> {
        let mut steps = self.inner.get_steps(run_id, names).await?;
        for step in &mut steps {
            self.fetch_step(step).await?;
        }
        Ok(steps)
    }

    async fn list_steps(&self, run_id: &RunId) -> Result<Vec<StepRecord>, StoreError> {
        let mut steps = self.inner.list_steps(run_id).await?;
        for step in &mut steps {
            self.fetch_step(step).await?;
        }
        Ok(steps)
    }

    async fn list_attempts(&self, step_key: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        self.inner.list_attempts(step_key).await
    }

    async fn list_logs(&self, run_id: &RunId) -> Result<Vec<LogLine>, StoreError> {
        self.inner.list_logs(run_id).await
    }

    async fn send_event(&self, mut event: NewEvent) -> Result<EventSent, StoreError> {
        let run = event.run_id.clone();
        let what = format!("the payload of event {}", event.name);
        self.stow(&run, &mut event.payload, &what).await?;
        let mut sent = self.inner.send_event(event).await?;
        let (EventSent::Stored(record) | EventSent::Duplicate(record)) = &mut sent;
        self.fetch(&mut record.payload).await?;
        Ok(sent)
    }

    async fn get_callback(&self, hash: &str) -> Result<Option<CallbackRecord>, StoreError> {
        let mut callback = self.inner.get_callback(hash).await?;
        if let Some(callback) = &mut callback {
            self.fetch_callback(callback).await?;
        }
        Ok(callback)
    }

    async fn complete_callback(
        &self,
        hash: &str,
        outcome: StepOutcome,
        now: Millis,
    ) -> Result<CallbackRecord, StoreError> {
        let outcome = match outcome {
            Ok(mut result) => {
                // The run is known only from the stored callback.
                if result.len() > self.limits.inline {
                    let callback = self
                        .inner
                        .get_callback(hash)
                        .await?
                        .ok_or_else(|| StoreError::NotFound(format!("callback {hash}")))?;
                    self.stow(&callback.run_id, &mut result, "the callback result")
                        .await?;
                }
                Ok(result)
            }
            Err(e) => Err(e),
        };
        let mut callback = self.inner.complete_callback(hash, outcome, now).await?;
        self.fetch_callback(&mut callback).await?;
        Ok(callback)
    }

    async fn list_events(&self, run_id: &RunId) -> Result<Vec<EventRecord>, StoreError> {
        let mut events = self.inner.list_events(run_id).await?;
        for event in &mut events {
            self.fetch(&mut event.payload).await?;
        }
        Ok(events)
    }

    async fn next_event(
        &self,
        run_id: &RunId,
        name: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        let mut event = self.inner.next_event(run_id, name).await?;
        if let Some(event) = &mut event {
            self.fetch(&mut event.payload).await?;
        }
        Ok(event)
    }

    async fn put_schedule(&self, write: crate::backend::ScheduleWrite) -> Result<(), StoreError> {
        self.inner.put_schedule(write).await
    }

    async fn get_schedule(&self, name: &str) -> Result<Option<Schedule>, StoreError> {
        self.inner.get_schedule(name).await
    }

    async fn list_schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        self.inner.list_schedules().await
    }

    async fn due_schedules(&self, now: Millis, limit: usize) -> Result<Vec<Schedule>, StoreError> {
        self.inner.due_schedules(now, limit).await
    }

    async fn delete_schedule(&self, name: &str) -> Result<bool, StoreError> {
        self.inner.delete_schedule(name).await
    }

    async fn repin_run(
        &self,
        id: &RunId,
        expected_version: u64,
        digest: &crate::model::Digest,
    ) -> Result<(), StoreError> {
        self.inner.repin_run(id, expected_version, digest).await
    }

    async fn expired_runs(&self, now: Millis, limit: usize) -> Result<Vec<RunId>, StoreError> {
        self.inner.expired_runs(now, limit).await
    }

    /// The payloads go first: if the process dies in between, the run is
    /// still there, still expired, and the next sweep finishes the job.
    async fn delete_run(&self, id: &RunId) -> Result<(), StoreError> {
        if let Some(run) = self.inner.get_run_head(id).await?
            && !run.status.is_terminal()
        {
            return Err(StoreError::Conflict(format!("run {id} is still running")));
        }
        self.blobs.delete_run(id).await?;
        self.inner.delete_run(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::RunWrite;
    use crate::backend::sqlite::blobs::FileBlobs;
    use crate::backend::sqlite::{EmbeddedOptions, SqliteBackend};
    use crate::model::{Digest, RunStatus};

    /// A run record written again with its large input, by a process that
    /// does not remember storing it (no cache here), neither stores it
    /// again nor counts it twice against the run's limit: with room for
    /// one copy only, the write goes through.
    #[tokio::test]
    async fn a_payload_written_again_is_not_stored_or_counted_twice() {
        let dir = std::env::temp_dir().join(format!("weft-offload-{}", uuid::Uuid::new_v4()));
        let db = SqliteBackend::open(&dir, EmbeddedOptions::default()).unwrap();
        let limits = PayloadLimits {
            inline: 1_000,
            max_payload: 1 << 20,
            max_run: 150_000,
            cache: 0,
        };
        let store = OffloadingStore::new(Arc::new(db), Arc::new(FileBlobs::new(&dir)), limits);
        let run = RunRecord {
            id: RunId::generate(),
            workflow: "w".into(),
            module_digest: Digest::of(b"m"),
            status: RunStatus::Running,
            input: format!("\"{}\"", "x".repeat(100_000)),
            output: None,
            error: None,
            created_at: 1,
            updated_at: 1,
            version: 0,
            lease: None,
            step_names: Default::default(),
            wake_at: None,
            deadline: None,
            awaiting: Vec::new(),
            parent: None,
            expires_at: None,
        };
        store.create_run(&run).await.unwrap();
        let mut next = run.clone();
        next.updated_at = 2;
        store
            .commit(StateWrite {
                run: Some(RunWrite::replacing(&run, next)),
                ..Default::default()
            })
            .await
            .unwrap();
        let read = store.get_run(&run.id).await.unwrap().unwrap();
        assert_eq!(read.input, run.input);
        assert_eq!(store.blobs.run_bytes(&run.id).await.unwrap(), 100_002);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
