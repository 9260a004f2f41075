//! Metrics in the Prometheus text format (`GET /metrics`).
//!
//! Run and step figures are counted where the facts become durable: a
//! [`MeteredStore`] wraps the service's state store and counts a run as
//! started, a run as finished, or a step as finished only when the write
//! that says so has committed. A retried or duplicated message whose write
//! loses its condition counts nothing, so the figures match the runs in the
//! store. (A write that lands but reports an error is not counted: the
//! figures can fall short by such writes, never exceed the truth.) The same
//! wrapper counts store requests and their errors by operation.
//!
//! Activations, replayed and new steps and fuel come from each activation's
//! report ([`Metrics::activation`]).

use crate::backend::{
    NewEvent, QuietCursor, QuietPage, RunQuery, ScheduleWrite, StateStore, StateWrite, StepExpect,
    StoreError,
};
use crate::model::{
    AttemptRecord, CallbackRecord, Digest, EventRecord, EventSent, LogLine, Millis, RunHead, RunId,
    RunRecord, Schedule, StepOutcome, StepRecord, StepStatus,
};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// Upper bounds of the step-duration buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

#[derive(Default)]
struct Figures {
    runs_started: BTreeMap<String, u64>,
    /// By workflow, status and error code ("" when completed).
    runs_finished: BTreeMap<(String, String, String), u64>,
    /// By kind and final status.
    steps_finished: BTreeMap<(String, String), u64>,
    /// Attempts of finished steps, by kind.
    step_attempts: BTreeMap<String, u64>,
    step_seconds: BTreeMap<String, Histogram>,
    activations: u64,
    replayed_steps: u64,
    new_steps: u64,
    fuel: u64,
    /// Client starts refused by admission control.
    starts_refused: u64,
    /// By operation.
    store_requests: BTreeMap<&'static str, u64>,
    /// By operation and error kind.
    store_errors: BTreeMap<(&'static str, &'static str), u64>,
}

/// This process's figures since it started, and since they were last
/// logged as CloudWatch metrics ([`Metrics::take_emf`]).
#[derive(Default)]
pub struct Metrics {
    figures: Mutex<Figures>,
    unlogged: Mutex<Figures>,
}

impl Metrics {
    fn with(&self, f: impl Fn(&mut Figures)) {
        // A panic elsewhere cannot leave counters half-updated in a way
        // that matters: keep counting.
        for figures in [&self.figures, &self.unlogged] {
            f(&mut figures.lock().unwrap_or_else(|p| p.into_inner()));
        }
    }

    /// One activation's report.
    pub(crate) fn activation(&self, replayed: u32, new: u32, fuel: u64) {
        self.with(|f| {
            f.activations += 1;
            f.replayed_steps += u64::from(replayed);
            f.new_steps += u64::from(new);
            f.fuel += fuel;
        });
    }

    /// A client's start refused: the queue's backlog was over its limit.
    pub(crate) fn start_refused(&self) {
        self.with(|f| f.starts_refused += 1);
    }

    fn run_started(&self, run: &RunRecord) {
        self.with(|f| *f.runs_started.entry(run.workflow.clone()).or_default() += 1);
    }

    fn run_finished(&self, run: &RunRecord) {
        let code = run
            .error
            .as_ref()
            .map(|e| e.code.clone())
            .unwrap_or_default();
        let key = (run.workflow.clone(), run.status.as_str().to_string(), code);
        self.with(|f| *f.runs_finished.entry(key.clone()).or_default() += 1);
    }

    fn step_finished(&self, step: &StepRecord) {
        let kind = step.kind.as_str().to_string();
        let seconds = step
            .completed_at
            .map(|done| done.saturating_sub(step.created_at) as f64 / 1000.0);
        self.with(|f| {
            *f.steps_finished
                .entry((kind.clone(), step.status.as_str().to_string()))
                .or_default() += 1;
            *f.step_attempts.entry(kind.clone()).or_default() += u64::from(step.attempt_count);
            if let Some(seconds) = seconds {
                f.step_seconds
                    .entry(kind.clone())
                    .or_default()
                    .observe(seconds);
            }
        });
    }

    fn request<T>(&self, op: &'static str, result: &Result<T, StoreError>) {
        self.with(|f| {
            *f.store_requests.entry(op).or_default() += 1;
            if let Err(e) = result {
                let kind = match e {
                    StoreError::NotFound(_) => "not_found",
                    StoreError::Conflict(_) => "conflict",
                    StoreError::TooLarge(_) => "too_large",
                    StoreError::Backend(_) => "backend",
                    StoreError::Corrupt(_) => "corrupt",
                };
                *f.store_errors.entry((op, kind)).or_default() += 1;
            }
        });
    }

    /// What changed since the last call, as CloudWatch Embedded Metric
    /// Format documents (one JSON line each): a Lambda function logs them
    /// after each invocation and CloudWatch turns them into metrics, with
    /// no agent. Runs by workflow, steps by kind, and the activation and
    /// store figures; nothing when nothing changed.
    pub fn take_emf(&self, now: Millis) -> Vec<String> {
        let f = std::mem::take(&mut *self.unlogged.lock().unwrap_or_else(|p| p.into_inner()));
        let mut docs = Vec::new();
        let mut workflows: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
        for (workflow, n) in &f.runs_started {
            *workflows
                .entry(workflow)
                .or_default()
                .entry("RunsStarted")
                .or_default() += n;
        }
        for ((workflow, status, _), n) in &f.runs_finished {
            let name = match status.as_str() {
                "completed" => "RunsCompleted",
                "failed" => "RunsFailed",
                _ => "RunsCancelled",
            };
            *workflows
                .entry(workflow)
                .or_default()
                .entry(name)
                .or_default() += n;
        }
        for (workflow, values) in workflows {
            docs.push(emf_doc(now, Some(("Workflow", workflow)), &values));
        }
        let mut kinds: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
        for ((kind, status), n) in &f.steps_finished {
            let name = if status == "succeeded" {
                "StepsSucceeded"
            } else {
                "StepsFailed"
            };
            *kinds.entry(kind).or_default().entry(name).or_default() += n;
        }
        for (kind, n) in &f.step_attempts {
            *kinds
                .entry(kind)
                .or_default()
                .entry("StepAttempts")
                .or_default() += n;
        }
        for (kind, values) in kinds {
            docs.push(emf_doc(now, Some(("StepKind", kind)), &values));
        }
        let global = BTreeMap::from([
            ("Activations", f.activations),
            ("ReplayedSteps", f.replayed_steps),
            ("NewSteps", f.new_steps),
            ("FuelUsed", f.fuel),
            ("StoreRequests", f.store_requests.values().sum()),
            ("StoreErrors", f.store_errors.values().sum()),
        ]);
        if global.values().any(|v| *v > 0) {
            docs.push(emf_doc(now, None, &global));
        }
        docs
    }

    /// The figures in the Prometheus text format (version 0.0.4).
    pub fn render(&self, parked: (usize, u64)) -> String {
        let f = self.figures.lock().unwrap_or_else(|p| p.into_inner());
        let mut t = Text::default();
        t.family(
            "weft_runs_started_total",
            "counter",
            "Runs started, by workflow.",
        );
        for (workflow, n) in &f.runs_started {
            t.sample(&format!("{{workflow=\"{}\"}}", escape(workflow)), n);
        }
        t.family(
            "weft_runs_finished_total",
            "counter",
            "Runs that ended, by workflow, status and error code.",
        );
        for ((workflow, status, code), n) in &f.runs_finished {
            let labels = format!(
                "{{workflow=\"{}\",status=\"{status}\",code=\"{}\"}}",
                escape(workflow),
                escape(code)
            );
            t.sample(&labels, n);
        }
        t.family(
            "weft_steps_finished_total",
            "counter",
            "Steps that got their final outcome, by kind and status.",
        );
        for ((kind, status), n) in &f.steps_finished {
            t.sample(&format!("{{kind=\"{kind}\",status=\"{status}\"}}"), n);
        }
        t.family(
            "weft_step_attempts_total",
            "counter",
            "Attempts of the steps that finished, by kind.",
        );
        for (kind, n) in &f.step_attempts {
            t.sample(&format!("{{kind=\"{kind}\"}}"), n);
        }
        t.family(
            "weft_step_duration_seconds",
            "histogram",
            "From a step's first record to its final outcome, retries and waits included.",
        );
        for (kind, h) in &f.step_seconds {
            for (bound, count) in BUCKETS.iter().zip(h.counts) {
                t.suffixed(
                    "_bucket",
                    &format!("{{kind=\"{kind}\",le=\"{bound}\"}}"),
                    count,
                );
            }
            t.suffixed(
                "_bucket",
                &format!("{{kind=\"{kind}\",le=\"+Inf\"}}"),
                h.count,
            );
            t.suffixed("_sum", &format!("{{kind=\"{kind}\"}}"), h.sum);
            t.suffixed("_count", &format!("{{kind=\"{kind}\"}}"), h.count);
        }
        for (name, help, value) in [
            (
                "weft_activations_total",
                "Workflow activations run.",
                f.activations,
            ),
            (
                "weft_replayed_steps_total",
                "Journal entries activations replayed.",
                f.replayed_steps,
            ),
            (
                "weft_new_steps_total",
                "Steps activations reached for the first time.",
                f.new_steps,
            ),
            (
                "weft_fuel_used_total",
                "Fuel workflow activations burned.",
                f.fuel,
            ),
            (
                "weft_starts_refused_total",
                "Client starts refused with 429 while the queue's backlog was over WEFT_MAX_BACKLOG.",
                f.starts_refused,
            ),
        ] {
            t.family(name, "counter", help);
            t.sample("", value);
        }
        t.family(
            "weft_parked_guests",
            "gauge",
            "Suspended guests kept in memory.",
        );
        t.sample("", parked.0);
        t.family(
            "weft_parked_bytes",
            "gauge",
            "Linear memory of the parked guests.",
        );
        t.sample("", parked.1);
        t.family(
            "weft_store_requests_total",
            "counter",
            "State store calls, by operation.",
        );
        for (op, n) in &f.store_requests {
            t.sample(&format!("{{op=\"{op}\"}}"), n);
        }
        t.family(
            "weft_store_errors_total",
            "counter",
            "State store calls that failed, by operation and kind.",
        );
        for ((op, kind), n) in &f.store_errors {
            t.sample(&format!("{{op=\"{op}\",kind=\"{kind}\"}}"), n);
        }
        t.out
    }
}

/// The text being written: families, each a header and its samples.
#[derive(Default)]
struct Text {
    out: String,
    family: &'static str,
}

impl Text {
    fn family(&mut self, name: &'static str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self.family = name;
    }

    fn sample(&mut self, labels: &str, value: impl std::fmt::Display) {
        self.suffixed("", labels, value);
    }

    fn suffixed(&mut self, suffix: &str, labels: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.out, "{}{suffix}{labels} {value}", self.family);
    }
}

/// One Embedded Metric Format document: `values` as counts in namespace
/// `Weft`, under one dimension or none.
fn emf_doc(now: Millis, dimension: Option<(&str, &str)>, values: &BTreeMap<&str, u64>) -> String {
    let metrics: Vec<serde_json::Value> = values
        .keys()
        .map(|name| serde_json::json!({ "Name": name, "Unit": "Count" }))
        .collect();
    let dimensions: Vec<&str> = dimension.iter().map(|(name, _)| *name).collect();
    let mut doc = serde_json::json!({
        "_aws": {
            "Timestamp": now,
            "CloudWatchMetrics": [{
                "Namespace": "Weft",
                "Dimensions": [dimensions],
                "Metrics": metrics,
            }],
        },
    });
    if let serde_json::Value::Object(map) = &mut doc {
        if let Some((name, value)) = dimension {
            map.insert(name.to_string(), serde_json::json!(value));
        }
        for (name, value) in values {
            map.insert(name.to_string(), serde_json::json!(value));
        }
    }
    doc.to_string()
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The service's state store, counting what commits (see the module doc).
pub(crate) struct MeteredStore {
    inner: Arc<dyn StateStore>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    pub(crate) fn new(inner: Arc<dyn StateStore>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    fn count<T>(&self, op: &'static str, result: Result<T, StoreError>) -> Result<T, StoreError> {
        self.metrics.request(op, &result);
        result
    }
}

/// Whether a step write takes the step from no outcome to its final one.
fn finishes(record: &StepRecord, expect: &StepExpect) -> bool {
    let was_final = match expect {
        StepExpect::Absent => false,
        StepExpect::State { status, .. } => status.is_final(),
    };
    record.status.is_final() && !was_final && record.status != StepStatus::Pending
}

#[async_trait]
impl StateStore for MeteredStore {
    async fn create_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let result = self.count("create_run", self.inner.create_run(run).await);
        if result.is_ok() {
            self.metrics.run_started(run);
        }
        result
    }

    async fn get_run(&self, id: &RunId) -> Result<Option<RunRecord>, StoreError> {
        self.count("get_run", self.inner.get_run(id).await)
    }

    async fn get_run_head(&self, id: &RunId) -> Result<Option<RunHead>, StoreError> {
        self.count("get_run_head", self.inner.get_run_head(id).await)
    }

    async fn list_runs(&self, query: &RunQuery) -> Result<Vec<RunRecord>, StoreError> {
        self.count("list_runs", self.inner.list_runs(query).await)
    }

    async fn list_quiet_runs(
        &self,
        quiet_before: Millis,
        after: Option<&QuietCursor>,
        limit: usize,
    ) -> Result<QuietPage, StoreError> {
        let result = self.inner.list_quiet_runs(quiet_before, after, limit).await;
        self.count("list_quiet_runs", result)
    }

    async fn acquire_run_lease(
        &self,
        id: &RunId,
        owner: &str,
        now: Millis,
        ttl_ms: u64,
    ) -> Result<RunRecord, StoreError> {
        let result = self.inner.acquire_run_lease(id, owner, now, ttl_ms).await;
        self.count("acquire_run_lease", result)
    }

    async fn acquire_run_lease_head(
        &self,
        id: &RunId,
        owner: &str,
        now: Millis,
        ttl_ms: u64,
    ) -> Result<RunHead, StoreError> {
        let result = self
            .inner
            .acquire_run_lease_head(id, owner, now, ttl_ms)
            .await;
        self.count("acquire_run_lease", result)
    }

    async fn commit(&self, write: StateWrite) -> Result<(), StoreError> {
        let finished_run = write
            .run
            .as_ref()
            .filter(|w| w.record.status.is_terminal())
            .map(|w| w.record.clone());
        let finished_steps: Vec<StepRecord> = write
            .steps
            .iter()
            .filter(|w| finishes(&w.record, &w.expect))
            .map(|w| w.record.clone())
            .collect();
        let result = self.count("commit", self.inner.commit(write).await);
        if result.is_ok() {
            // A run write is guarded by the version read before it, and a
            // finished run is never written again: one count per run.
            if let Some(run) = finished_run {
                self.metrics.run_finished(&run);
            }
            for step in &finished_steps {
                self.metrics.step_finished(step);
            }
        }
        result
    }

    async fn get_step(&self, run_id: &RunId, name: &str) -> Result<Option<StepRecord>, StoreError> {
        self.count("get_step", self.inner.get_step(run_id, name).await)
    }

    async fn get_steps(
        &self,
        run_id: &RunId,
        names: &[String],
    ) -> Result<Vec<StepRecord>, StoreError> {
        self.count("get_steps", self.inner.get_steps(run_id, names).await)
    }

    async fn list_steps(&self, run_id: &RunId) -> Result<Vec<StepRecord>, StoreError> {
        self.count("list_steps", self.inner.list_steps(run_id).await)
    }

    async fn list_attempts(&self, step_key: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        self.count("list_attempts", self.inner.list_attempts(step_key).await)
    }

    async fn list_logs(&self, run_id: &RunId) -> Result<Vec<LogLine>, StoreError> {
        self.count("list_logs", self.inner.list_logs(run_id).await)
    }

    async fn send_event(&self, event: NewEvent) -> Result<EventSent, StoreError> {
        self.count("send_event", self.inner.send_event(event).await)
    }

    async fn get_callback(&self, hash: &str) -> Result<Option<CallbackRecord>, StoreError> {
        self.count("get_callback", self.inner.get_callback(hash).await)
    }

    async fn complete_callback(
        &self,
        hash: &str,
        outcome: StepOutcome,
        now: Millis,
    ) -> Result<CallbackRecord, StoreError> {
        let result = self.inner.complete_callback(hash, outcome, now).await;
        self.count("complete_callback", result)
    }

    async fn list_events(&self, run_id: &RunId) -> Result<Vec<EventRecord>, StoreError> {
        self.count("list_events", self.inner.list_events(run_id).await)
    }

    async fn next_event(
        &self,
        run_id: &RunId,
        name: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        self.count("next_event", self.inner.next_event(run_id, name).await)
    }

    async fn put_schedule(&self, write: ScheduleWrite) -> Result<(), StoreError> {
        self.count("put_schedule", self.inner.put_schedule(write).await)
    }

    async fn get_schedule(&self, name: &str) -> Result<Option<Schedule>, StoreError> {
        self.count("get_schedule", self.inner.get_schedule(name).await)
    }

    async fn list_schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        self.count("list_schedules", self.inner.list_schedules().await)
    }

    async fn due_schedules(&self, now: Millis, limit: usize) -> Result<Vec<Schedule>, StoreError> {
        self.count("due_schedules", self.inner.due_schedules(now, limit).await)
    }

    async fn delete_schedule(&self, name: &str) -> Result<bool, StoreError> {
        self.count("delete_schedule", self.inner.delete_schedule(name).await)
    }

    async fn repin_run(
        &self,
        id: &RunId,
        expected_version: u64,
        digest: &Digest,
    ) -> Result<(), StoreError> {
        let result = self.inner.repin_run(id, expected_version, digest).await;
        self.count("repin_run", result)
    }

    async fn expired_runs(&self, now: Millis, limit: usize) -> Result<Vec<RunId>, StoreError> {
        self.count("expired_runs", self.inner.expired_runs(now, limit).await)
    }

    async fn delete_run(&self, id: &RunId) -> Result<(), StoreError> {
        self.count("delete_run", self.inner.delete_run(id).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ErrorInfo, RunStatus, StepCall, StepKind};

    #[test]
    fn emf_documents_carry_what_changed_since_the_last_ones() {
        let metrics = Metrics::default();
        let mut run = RunRecord {
            id: RunId::generate(),
            workflow: "saga".into(),
            module_digest: Digest::of(b"m"),
            status: RunStatus::Running,
            input: "1".into(),
            output: None,
            error: None,
            created_at: 0,
            updated_at: 0,
            version: 0,
            lease: None,
            step_names: Default::default(),
            wake_at: None,
            deadline: None,
            awaiting: Vec::new(),
            parent: None,
            expires_at: None,
        };
        metrics.run_started(&run);
        run.status = RunStatus::Failed;
        run.error = Some(ErrorInfo::new("boom", "it broke"));
        metrics.run_finished(&run);
        let call = StepCall {
            kind: StepKind::Rpc,
            name: "charge".into(),
            rpc_name: Some("pay/charge".into()),
            input: Some("{}".into()),
            options: Default::default(),
        };
        let mut step = StepRecord::new(&run.id, 0, &call, 0);
        step.status = StepStatus::Succeeded;
        step.attempt_count = 2;
        step.completed_at = Some(1_500);
        metrics.step_finished(&step);
        metrics.activation(3, 1, 1_000);

        let docs: Vec<serde_json::Value> = metrics
            .take_emf(42)
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let workflow = docs.iter().find(|d| d["Workflow"] == "saga").unwrap();
        assert_eq!(workflow["RunsStarted"], 1);
        assert_eq!(workflow["RunsFailed"], 1);
        assert_eq!(workflow["_aws"]["Timestamp"], 42);
        assert_eq!(
            workflow["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Workflow"]])
        );
        let rpc = docs.iter().find(|d| d["StepKind"] == "rpc").unwrap();
        assert_eq!(
            (&rpc["StepsSucceeded"], &rpc["StepAttempts"]),
            (&1.into(), &2.into())
        );
        let global = docs
            .iter()
            .find(|d| d.get("Activations").is_some())
            .unwrap();
        assert_eq!(
            (&global["FuelUsed"], &global["ReplayedSteps"]),
            (&1000.into(), &3.into())
        );
        assert!(
            metrics.take_emf(43).is_empty(),
            "nothing new, nothing logged"
        );
        assert!(
            metrics
                .render((0, 0))
                .contains("weft_runs_started_total{workflow=\"saga\"} 1")
        );
    }
}
