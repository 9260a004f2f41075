//! Service-level scenarios that every backend must pass: the whole engine
//! (replay, steps, queue, recovery) on top of one [`Backend`].
//!
//! Like the conformance suite, each scenario is written once and
//! [`scenario_suite!`](crate::scenario_suite) instantiates it per backend.

mod callbacks;
mod events;
mod fanout;
mod parking;
mod payloads;
mod retention;
mod schedules;
pub use callbacks::*;
pub use events::*;
pub use fanout::*;
pub use parking::*;
pub use payloads::*;
pub use retention::*;
pub use schedules::*;

use crate::conformance::Backend;
use crate::{Service, example, saga_input, test_guest};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use weft::backend::faults::{FaultPlan, FaultyQueue};
use weft::backend::{QuietCursor, QuietPage, RunQuery, StateStore, StateWrite, StoreError};
use weft::config::RpcMode;
use weft::model::{
    AttemptRecord, Envelope, ErrorCode, LogLine, ManualClock, RunId, RunRecord, RunStatus,
    StepRecord, StepStatus, WorkMessage,
};
use weft::service::worker;

pub(crate) const T: Duration = Duration::from_secs(90);

pub(crate) fn output(run: &RunRecord) -> Value {
    serde_json::from_str(run.output.as_deref().unwrap_or("null")).unwrap_or(Value::Null)
}

/// Every step of a finished run has one final outcome, and its history has
/// one row per attempt with exactly one success for succeeded steps.
pub(crate) async fn assert_one_outcome_per_step(s: &Service, run: &RunRecord) {
    for view in s.svc.steps(&run.id).await.unwrap() {
        let step = &view.step;
        assert!(step.status.is_final(), "{step:?}");
        assert_eq!(
            view.attempts.len() as u32,
            step.attempt_count,
            "history rows match attempts: {view:?}"
        );
        let successes = view
            .attempts
            .iter()
            .filter(|a| a.status == StepStatus::Succeeded)
            .count();
        let expected = usize::from(step.status == StepStatus::Succeeded && step.attempt_count > 0);
        assert_eq!(
            successes, expected,
            "one recorded success for `{}`: {view:?}",
            step.name
        );
    }
}

async fn saga_service(backend: Backend, mode: RpcMode) -> Service {
    let mut s = Service::on(backend, mode, |_, _| {});
    s.deploy("order-saga", &example("order-saga")).await;
    s.deploy("order-rpc", &example("order-rpc")).await;
    s.start_worker();
    s
}

pub async fn a_saga_completes_with_one_outcome_per_step(b: Backend) {
    for (mode, order) in [(RpcMode::Queued, "o-queued"), (RpcMode::Inline, "o-inline")] {
        let s = saga_service(b.clone(), mode).await;
        let run = s.run("order-saga", &saga_input(order), T).await;
        assert_eq!(run.status, RunStatus::Completed, "{mode:?}: {run:?}");
        assert_eq!(output(&run)["trackingNumber"], format!("trk-{order}"));
        assert_one_outcome_per_step(&s, &run).await;
        let steps = s.svc.steps(&run.id).await.unwrap();
        let charge = steps.iter().find(|v| v.step.name == "charge").unwrap();
        assert_eq!(
            charge.step.attempt_count, 2,
            "one transient failure, then success"
        );
    }
}

pub async fn duplicate_delivery_of_every_message_changes_nothing(b: Backend) {
    let duplicating = Arc::new(FaultyQueue::new(
        b.queue.clone(),
        FaultPlan::always_duplicate(),
    ));
    let backend = Backend {
        queue: duplicating.clone(),
        ..b
    };
    let s = saga_service(backend, RpcMode::Queued).await;
    let mut input = saga_input("o-dup");
    input["coolOffMs"] = json!(300);
    let run = s.run("order-saga", &input, T).await;
    assert!(
        duplicating.counts().duplicate.load(Ordering::Relaxed) >= 6,
        "every message was sent twice"
    );
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(
        output(&run),
        json!({
            "orderId": "o-dup", "status": "completed", "totalCents": 3097,
            "reservationId": "res-o-dup", "chargeId": "ch-o-dup", "trackingNumber": "trk-o-dup",
        })
    );
    assert_one_outcome_per_step(&s, &run).await;
    let steps = s.svc.steps(&run.id).await.unwrap();
    let attempts: Vec<(String, u32)> = steps
        .iter()
        .map(|v| (v.step.name.clone(), v.step.attempt_count))
        .collect();
    assert_eq!(
        attempts,
        [
            ("price".to_string(), 1),
            ("reserve".into(), 1),
            ("charge".into(), 2),
            ("cool-off".into(), 0),
            ("ship".into(), 1)
        ],
        "duplicates add no attempts"
    );
}

pub async fn a_poison_message_fails_its_run(b: Backend) {
    let mut s = Service::on(b, RpcMode::Inline, |_, _| {});
    s.deploy("hello", &example("hello")).await;
    // A run whose journal index names a step that does not exist: every
    // attempt to resume it fails, so its message ends up dead-lettered.
    let mut run = crate::conformance::run_record("hello");
    run.step_names = vec!["ghost".to_string()].into();
    s.svc.state().create_run(&run).await.unwrap();
    s.svc
        .queue()
        .send(
            &Envelope::now(WorkMessage::Resume {
                run_id: run.id.clone(),
            }),
            Duration::ZERO,
        )
        .await
        .unwrap();
    s.start_worker();
    let done = s.wait(&run.id, T).await;
    assert_eq!(done.status, RunStatus::Failed);
    let error = done.error.unwrap();
    assert_eq!(error.code, ErrorCode::DeadLettered.as_str());
    assert!(
        error.message.contains("resuming the run"),
        "{}",
        error.message
    );
}

pub async fn a_timer_past_the_queue_delay_cap_is_rearmed(b: Backend) {
    let s = Service::on(b, RpcMode::Inline, |_, _| {});
    // Two runs asleep, waiting for the times the hops below are for.
    let asleep_until = |at: u64| {
        let mut run = crate::conformance::run_record("wf-asleep");
        run.wake_at = Some(at);
        run
    };
    let far_run = asleep_until(s.svc.now() + 2 * 3600 * 1000);
    s.svc.state().create_run(&far_run).await.unwrap();
    let resume = |run: &RunRecord| WorkMessage::Resume {
        run_id: run.id.clone(),
    };
    // Two hours ahead: more than any SQS delay. Handling it early re-sends
    // it with the longest delay the queue allows, and nothing else happens.
    let far = Envelope::at(resume(&far_run), far_run.wake_at.unwrap_or_default());
    assert_eq!(
        s.svc.handle(&far).await.unwrap(),
        weft::service::Handled::Settled
    );
    let early = s
        .svc
        .queue()
        .receive(10, Duration::from_millis(1500))
        .await
        .unwrap();
    assert!(
        early.is_empty(),
        "a re-armed timer stays delayed: {early:?}"
    );
    // Two seconds ahead: re-armed once, then delivered when due, intact.
    let near_run = asleep_until(s.svc.now() + 2000);
    s.svc.state().create_run(&near_run).await.unwrap();
    let near = Envelope::at(resume(&near_run), near_run.wake_at.unwrap_or_default());
    s.svc.handle(&near).await.unwrap();
    assert!(
        s.svc
            .queue()
            .receive(10, Duration::from_millis(500))
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let due = s
        .svc
        .queue()
        .receive(10, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(due.len(), 1, "the re-armed timer arrives once due");
    assert_eq!(due[0].envelope.as_ref().ok(), Some(&near));
}

pub async fn a_two_hour_sleep_completes_once_the_time_has_come(b: Backend) {
    let clock = Arc::new(ManualClock::default());
    let shared = clock.clone();
    let mut s = Service::on(b, RpcMode::Inline, move |settings, _| {
        settings.clock = shared
    });
    s.deploy("probe", &test_guest("probe")).await;
    s.start_worker();
    let two_hours = 2 * 3600 * 1000u64;
    let id = s
        .svc
        .start_run("probe", &json!({ "sleepMs": two_hours }).to_string())
        .await
        .unwrap();
    // Wait until the run sleeps.
    for _ in 0..200 {
        let run = s.svc.get_run(&id).await.unwrap();
        if run.step_names.len() == 2 && run.lease.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let nap = s.svc.state().get_step(&id, "nap").await.unwrap().unwrap();
    assert_eq!(nap.status, StepStatus::Scheduled);
    assert!(s.svc.get_run(&id).await.unwrap().status == RunStatus::Running);

    // Two hours pass (and then some: the sweep only steps in once a timer
    // is overdue by the repair threshold). The timer message, delayed by the
    // queue's cap, is not due yet in real time, so the sweep notices the run.
    clock.advance(Duration::from_millis(two_hours) + s.svc.settings().repair_after * 2);
    worker::sweep_runs(&s.svc).await.unwrap();
    let run = s.wait(&id, T).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    let out = output(&run);
    let slept =
        out["logicalAfterSleepMs"].as_u64().unwrap() - out["logicalNowMs"].as_u64().unwrap();
    assert!(
        slept >= two_hours,
        "the workflow saw two hours pass: {slept} ms"
    );
}

pub async fn an_inline_step_is_retried_and_recorded_once(b: Backend) {
    let mut s = Service::on(b, RpcMode::Inline, |_, _| {});
    s.deploy("hostile", &test_guest("hostile")).await;
    s.start_worker();
    let run = s
        .run("hostile", &json!({"mode": "flaky-step", "n": 2}), T)
        .await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(output(&run), json!(3), "the third attempt succeeded");
    let steps = s.svc.steps(&run.id).await.unwrap();
    let flaky = &steps[0];
    assert_eq!(
        (flaky.step.status, flaky.step.attempt_count),
        (StepStatus::Succeeded, 3)
    );
    let statuses: Vec<_> = flaky.attempts.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses,
        [
            StepStatus::Failed,
            StepStatus::Failed,
            StepStatus::Succeeded
        ]
    );
    assert_eq!(
        flaky.attempts[0].error.as_ref().map(|e| e.code.as_str()),
        Some("flaky")
    );
}

pub async fn a_hung_rpc_attempt_is_abandoned_and_retried(b: Backend) {
    let mut s = Service::on(b, RpcMode::Queued, |_, limits| {
        limits.default_rpc_timeout = Duration::from_millis(500);
    });
    s.deploy("order-saga", &example("order-saga")).await;
    s.deploy("order-rpc", &example("order-rpc")).await;
    s.start_worker();
    let mut input = saga_input("o-hang");
    input["paymentFailures"] = json!(0);
    input["paymentHangs"] = json!(1);
    let run = s.run("order-saga", &input, T).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(output(&run)["chargeId"], "ch-o-hang");
    let steps = s.svc.steps(&run.id).await.unwrap();
    let charge = steps.iter().find(|v| v.step.name == "charge").unwrap();
    assert_eq!(charge.step.attempt_count, 2);
    let first = &charge.attempts[0];
    assert_eq!(
        first.error.as_ref().map(|e| e.code.as_str()),
        Some("timeout"),
        "{first:?}"
    );
    let took = first.ended_at.unwrap() - first.started_at;
    assert!(
        (450..5_000).contains(&took),
        "abandoned after its 500 ms timeout, not after the hang: {took} ms"
    );
    assert_eq!(charge.attempts[1].status, StepStatus::Succeeded);
}

/// A step whose attempts keep losing their host (a fault hook drops every
/// claimed charge attempt, as a crash would) is retried past its retry
/// policy's 3 attempts until the host-loss cap (5), then fails with
/// `worker_lost`: the saga compensates, and the worker serves other runs
/// all the while.
pub async fn a_step_that_keeps_losing_its_host_fails_at_the_cap(b: Backend) {
    let mut s = Service::on(b, RpcMode::Queued, |settings, limits| {
        limits.default_rpc_timeout = Duration::from_millis(300);
        limits.max_host_losses = 5;
        settings.step_lease_grace = Duration::from_millis(100);
        settings.lose_attempt = Some(Arc::new(|step| step.name == "charge"));
    });
    s.deploy("order-saga", &example("order-saga")).await;
    s.deploy("order-rpc", &example("order-rpc")).await;
    s.deploy("hello", &example("hello")).await;
    s.start_worker();
    let mut input = saga_input("o-lost");
    input["paymentFailures"] = json!(0);
    let saga = s
        .svc
        .start_run("order-saga", &input.to_string())
        .await
        .unwrap();
    let hello = s.run("hello", &json!({"name": "ada"}), T).await;
    assert_eq!(hello.status, RunStatus::Completed, "{hello:?}");
    let run = s.svc.wait_for(&saga, T).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(output(&run)["status"], "cancelled", "{run:?}");
    assert_eq!(output(&run)["reason"], "worker_lost", "{run:?}");
    let steps = s.svc.steps(&run.id).await.unwrap();
    let charge = steps.iter().find(|v| v.step.name == "charge").unwrap();
    assert_eq!(charge.step.status, StepStatus::Failed, "{charge:?}");
    assert_eq!(
        (charge.step.attempt_count, charge.step.host_losses),
        (5, 5),
        "{charge:?}"
    );
    assert_eq!(charge.attempts.len(), 5, "{charge:?}");
    assert!(
        charge
            .attempts
            .iter()
            .all(|a| a.error.as_ref().is_some_and(|e| e.code == "worker_lost")),
        "{charge:?}"
    );
}

/// Starting again under the same idempotency key (a client retrying after
/// a timeout) gives the same run, not a second one; the key with another
/// input is refused; starts without a key stay independent.
pub async fn a_start_under_the_same_key_is_one_run(b: Backend) {
    let s = saga_service(b, RpcMode::Queued).await;
    let keyed = |key: &str| weft::service::StartOptions {
        idempotency_key: Some(key.to_string()),
        ..Default::default()
    };
    let input = saga_input("o-key").to_string();
    let key = format!("order-{}", RunId::generate());
    let first = s
        .svc
        .start_run_with("order-saga", &input, keyed(&key))
        .await
        .unwrap();
    let again = s
        .svc
        .start_run_with("order-saga", &input, keyed(&key))
        .await
        .unwrap();
    assert_eq!(first, again);
    let other = saga_input("o-key-2").to_string();
    let conflict = s
        .svc
        .start_run_with("order-saga", &other, keyed(&key))
        .await;
    assert!(
        matches!(
            conflict,
            Err(weft::service::ServiceError::IdempotencyConflict { .. })
        ),
        "{conflict:?}"
    );
    let run = s.wait(&first, T).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(output(&run)["trackingNumber"], "trk-o-key");
    // After it finished, the same start still answers the same run.
    let later = s
        .svc
        .start_run_with("order-saga", &input, keyed(&key))
        .await
        .unwrap();
    assert_eq!(later, first);
    let charges = s.svc.steps(&first).await.unwrap();
    assert_eq!(charges.len(), 5, "one run's steps, once");
    let a = s.svc.start_run("order-saga", &input).await.unwrap();
    let b = s.svc.start_run("order-saga", &input).await.unwrap();
    assert_ne!(a, b, "without a key every start is a new run");
}

/// A resume that arrives while a long sleep is not yet due (a duplicate, a
/// sweep) leaves the run's wake time as it was: the recovery sweep skips
/// runs whose wake time is ahead, so erasing it would have the sweep
/// re-drive a year-long sleep every minute.
pub async fn an_early_resume_keeps_the_sleeps_wake_time(b: Backend) {
    let s = saga_service(b, RpcMode::Queued).await;
    let mut input = saga_input("o-early");
    input["coolOffMs"] = json!(3_600_000);
    let id = s
        .svc
        .start_run("order-saga", &input.to_string())
        .await
        .unwrap();
    let sleeping = until(&s, &id, |r| r.wake_at.is_some() && r.lease.is_none()).await;
    let due = sleeping.wake_at;
    s.svc
        .process_envelope(&Envelope::now(WorkMessage::Resume { run_id: id.clone() }))
        .await
        .unwrap();
    let after = s.svc.get_run(&id).await.unwrap();
    assert!(after.version > sleeping.version, "the resume was handled");
    assert_eq!(after.wake_at, due, "{after:?}");
    assert_eq!(after.status, RunStatus::Running);
}

/// An RPC module deployed through another process (on Lambda `weft-http`
/// deploys while `weft-worker` runs the steps) is found by the next lookup,
/// even right after a lookup that found nothing: a miss is not cached.
pub async fn a_module_deployed_elsewhere_is_found_at_once(b: Backend) {
    let worker = Service::on(b.clone(), RpcMode::Queued, |_, _| {});
    let deployer = Service::on(b, RpcMode::Queued, |_, _| {});
    let name = format!("rpc-{}", RunId::generate());
    let registry = worker.svc.registry();
    assert!(registry.latest_cached(&name).await.unwrap().is_none());
    deployer.deploy(&name, &example("order-rpc")).await;
    let found = registry.latest_cached(&name).await.unwrap();
    assert_eq!(found.map(|v| v.version), Some(1));
}

/// Counts what is sent through a queue, for scenarios that must see a
/// message that is delayed (and so cannot be received yet).
struct CountingQueue {
    inner: Arc<dyn weft::backend::WorkQueue>,
    sent: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl weft::backend::WorkQueue for CountingQueue {
    async fn send(
        &self,
        envelope: &Envelope,
        delay: Duration,
    ) -> Result<(), weft::backend::QueueError> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        self.inner.send(envelope, delay).await
    }
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<weft::backend::Delivery>, weft::backend::QueueError> {
        self.inner.receive(max, wait).await
    }
    async fn ack(&self, receipt: &str) -> Result<(), weft::backend::QueueError> {
        self.inner.ack(receipt).await
    }
    async fn retry_later(
        &self,
        receipt: &str,
        delay: Duration,
    ) -> Result<(), weft::backend::QueueError> {
        self.inner.retry_later(receipt, delay).await
    }
    async fn receive_dead(
        &self,
        max: usize,
    ) -> Result<Vec<weft::backend::Delivery>, weft::backend::QueueError> {
        self.inner.receive_dead(max).await
    }
    async fn ack_dead(&self, receipt: &str) -> Result<(), weft::backend::QueueError> {
        self.inner.ack_dead(receipt).await
    }
}

/// A timer hop (a message re-armed past the queue's 900 s delay cap) is
/// re-armed only while something waits for its time: a live sleep's hop
/// goes on, the hop of a finished run's far deadline ends its chain.
pub async fn timer_hops_end_when_nothing_waits_for_them(b: Backend) {
    let s = saga_service(b.clone(), RpcMode::Queued).await;
    let finished = s
        .svc
        .start_run_with(
            "order-saga",
            &saga_input("o-hops-done").to_string(),
            weft::service::StartOptions {
                timeout: Some(Duration::from_secs(7_200)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut input = saga_input("o-hops-sleep");
    input["coolOffMs"] = json!(7_200_000);
    let sleeping = s
        .svc
        .start_run("order-saga", &input.to_string())
        .await
        .unwrap();
    let done = s.wait(&finished, T).await;
    assert_eq!(done.status, RunStatus::Completed, "{done:?}");
    let asleep = until(&s, &sleeping, |r| r.wake_at.is_some() && r.lease.is_none()).await;
    drop(s);

    let counting = Arc::new(CountingQueue {
        inner: b.queue.clone(),
        sent: Default::default(),
    });
    let quiet = Service::on(
        Backend {
            queue: counting.clone(),
            ..b
        },
        RpcMode::Queued,
        |_, _| {},
    );
    let hop = |run_id: &RunId, at| Envelope {
        not_before: at,
        ..Envelope::now(WorkMessage::Resume {
            run_id: run_id.clone(),
        })
    };
    quiet
        .svc
        .process_envelope(&hop(&asleep.id, asleep.wake_at))
        .await
        .unwrap();
    assert_eq!(
        counting.sent.load(Ordering::SeqCst),
        1,
        "a live sleep re-arms"
    );
    quiet
        .svc
        .process_envelope(&hop(&done.id, done.deadline))
        .await
        .unwrap();
    assert_eq!(
        counting.sent.load(Ordering::SeqCst),
        1,
        "a finished run's deadline hop must not re-arm"
    );
    let superseded = asleep.wake_at.map(|at| at + 60_000);
    quiet
        .svc
        .process_envelope(&hop(&asleep.id, superseded))
        .await
        .unwrap();
    assert_eq!(
        counting.sent.load(Ordering::SeqCst),
        1,
        "a hop for a time nothing waits for must not re-arm"
    );
}

/// A state store that misbehaves at the worst moments: once, the commit
/// recording a successful attempt of step `step` fails (while `armed`); the
/// next `lease_failures` attempts to take a run's lease fail; and, once, a
/// cancel lands just before the commit claiming an attempt of step
/// `cancel_before_claiming`, after the worker read the run as running; and,
/// once, the commit recording a new step waits at gate `hold_recording`.
#[derive(Default)]
pub(crate) struct FlakyStore {
    inner: Option<Arc<dyn StateStore>>,
    step: String,
    armed: std::sync::atomic::AtomicBool,
    lease_failures: std::sync::atomic::AtomicU32,
    cancel_before_claiming: std::sync::Mutex<Option<String>>,
    pub(crate) hold_recording: std::sync::Mutex<Option<Gate>>,
    /// Journal entries asked for by `get_steps`, in all.
    pub(crate) steps_read: std::sync::atomic::AtomicU64,
    /// Once, the claim of an attempt of this step lands but is reported as
    /// a conflict: what the SDK reports when it retries a conditional write
    /// whose first try succeeded.
    ambiguous_claim: std::sync::Mutex<Option<String>>,
    /// The first two claims wait here for each other before they commit,
    /// so both were built from the same read.
    claim_barrier: Option<Arc<tokio::sync::Barrier>>,
    claims_seen: std::sync::atomic::AtomicU32,
}

/// Where a store write stops until the test lets it go on.
pub(crate) struct Gate {
    /// The new step whose recording stops here.
    pub step: String,
    /// Signalled when the write reached the gate.
    pub reached: Arc<tokio::sync::Notify>,
    /// Signalled by the test to let the write go on.
    pub release: Arc<tokio::sync::Notify>,
}

/// The step whose next attempt `write` claims: written `running` from a
/// state that was not.
fn claimed_step(write: &StateWrite) -> Option<&StepRecord> {
    write
        .steps
        .iter()
        .find(|w| {
            w.record.status == StepStatus::Running
                && !matches!(
                    w.expect,
                    weft::backend::StepExpect::State {
                        status: StepStatus::Running,
                        ..
                    }
                )
        })
        .map(|w| &w.record)
}

impl FlakyStore {
    pub(crate) fn over(inner: Arc<dyn StateStore>) -> Self {
        Self {
            inner: Some(inner),
            ..Default::default()
        }
    }

    fn inner(&self) -> &Arc<dyn StateStore> {
        self.inner.as_ref().expect("a FlakyStore wraps a store")
    }

    /// Whether `write` claims an attempt of the step named in `armed`
    /// (taking that name: the fault fires once).
    fn claims(armed: &std::sync::Mutex<Option<String>>, write: &StateWrite) -> bool {
        let mut armed = armed.lock().unwrap();
        let claims = claimed_step(write).is_some_and(|step| Some(&step.name) == armed.as_ref());
        if claims {
            armed.take();
        }
        claims
    }

    /// The gate `write` must stop at, if it records the new step the gate
    /// names (taking the gate: it holds one write).
    fn gate_for(&self, write: &StateWrite) -> Option<Gate> {
        let mut gate = self.hold_recording.lock().unwrap();
        let held = write.steps.iter().any(|w| {
            w.expect == weft::backend::StepExpect::Absent
                && gate.as_ref().is_some_and(|g| g.step == w.record.name)
        });
        if held { gate.take() } else { None }
    }

    /// Cancels run `id` directly in the wrapped store.
    async fn cancel_behind_the_workers_back(&self, id: &RunId) {
        let mut run = self.inner().get_run(id).await.unwrap().unwrap();
        let (expected_version, expected_steps) = (run.version, run.step_names.len());
        run.status = RunStatus::Cancelled;
        run.lease = None;
        run.wake_at = None;
        self.inner()
            .commit(StateWrite {
                run: Some(weft::backend::RunWrite {
                    record: run,
                    expected_version,
                    expected_steps,
                }),
                ..Default::default()
            })
            .await
            .unwrap();
    }
}

#[async_trait::async_trait]
impl StateStore for FlakyStore {
    async fn create_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        self.inner().create_run(run).await
    }
    async fn get_run(&self, id: &RunId) -> Result<Option<RunRecord>, StoreError> {
        self.inner().get_run(id).await
    }
    async fn list_runs(&self, query: &RunQuery) -> Result<Vec<RunRecord>, StoreError> {
        self.inner().list_runs(query).await
    }
    async fn list_quiet_runs(
        &self,
        quiet_before: u64,
        after: Option<&QuietCursor>,
        limit: usize,
    ) -> Result<QuietPage, StoreError> {
        self.inner()
            .list_quiet_runs(quiet_before, after, limit)
            .await
    }
    async fn acquire_run_lease(
        &self,
        id: &RunId,
        owner: &str,
        now: u64,
        ttl_ms: u64,
    ) -> Result<RunRecord, StoreError> {
        let failing = self
            .lease_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(StoreError::Backend("injected: throttled".into()));
        }
        self.inner().acquire_run_lease(id, owner, now, ttl_ms).await
    }
    async fn commit(&self, write: StateWrite) -> Result<(), StoreError> {
        let records_success = write.attempts.iter().any(|a| {
            a.status == StepStatus::Succeeded && a.step_id.ends_with(&format!("#{}", self.step))
        });
        if records_success && self.armed.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Backend(
                "injected: the store is briefly unavailable".into(),
            ));
        }
        if Self::claims(&self.cancel_before_claiming, &write)
            && let Some(step) = write.steps.first()
        {
            self.cancel_behind_the_workers_back(&step.record.run_id)
                .await;
        }
        if let Some(gate) = self.gate_for(&write) {
            gate.reached.notify_one();
            gate.release.notified().await;
        }
        if let Some(barrier) = &self.claim_barrier
            && claimed_step(&write).is_some()
            && self.claims_seen.fetch_add(1, Ordering::SeqCst) < 2
        {
            barrier.wait().await;
        }
        if Self::claims(&self.ambiguous_claim, &write) {
            self.inner().commit(write).await?;
            return Err(StoreError::Conflict(
                "injected: the retry of a write whose first try landed".into(),
            ));
        }
        self.inner().commit(write).await
    }
    async fn get_step(&self, run_id: &RunId, name: &str) -> Result<Option<StepRecord>, StoreError> {
        self.inner().get_step(run_id, name).await
    }
    async fn get_steps(
        &self,
        run_id: &RunId,
        names: &[String],
    ) -> Result<Vec<StepRecord>, StoreError> {
        self.steps_read
            .fetch_add(names.len() as u64, Ordering::SeqCst);
        self.inner().get_steps(run_id, names).await
    }
    async fn list_steps(&self, run_id: &RunId) -> Result<Vec<StepRecord>, StoreError> {
        self.inner().list_steps(run_id).await
    }
    async fn list_attempts(&self, step_key: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        self.inner().list_attempts(step_key).await
    }
    async fn list_logs(&self, run_id: &RunId) -> Result<Vec<LogLine>, StoreError> {
        self.inner().list_logs(run_id).await
    }
    async fn send_event(
        &self,
        event: weft::backend::NewEvent,
    ) -> Result<weft::model::EventSent, StoreError> {
        self.inner().send_event(event).await
    }
    async fn list_events(
        &self,
        run_id: &RunId,
    ) -> Result<Vec<weft::model::EventRecord>, StoreError> {
        self.inner().list_events(run_id).await
    }
    async fn next_event(
        &self,
        run_id: &RunId,
        name: &str,
    ) -> Result<Option<weft::model::EventRecord>, StoreError> {
        self.inner().next_event(run_id, name).await
    }
    async fn get_callback(
        &self,
        hash: &str,
    ) -> Result<Option<weft::model::CallbackRecord>, StoreError> {
        self.inner().get_callback(hash).await
    }
    async fn complete_callback(
        &self,
        hash: &str,
        outcome: weft::model::StepOutcome,
        now: u64,
    ) -> Result<weft::model::CallbackRecord, StoreError> {
        self.inner().complete_callback(hash, outcome, now).await
    }
    async fn put_schedule(&self, write: weft::backend::ScheduleWrite) -> Result<(), StoreError> {
        self.inner().put_schedule(write).await
    }
    async fn get_schedule(&self, name: &str) -> Result<Option<weft::model::Schedule>, StoreError> {
        self.inner().get_schedule(name).await
    }
    async fn list_schedules(&self) -> Result<Vec<weft::model::Schedule>, StoreError> {
        self.inner().list_schedules().await
    }
    async fn due_schedules(
        &self,
        now: u64,
        limit: usize,
    ) -> Result<Vec<weft::model::Schedule>, StoreError> {
        self.inner().due_schedules(now, limit).await
    }
    async fn delete_schedule(&self, name: &str) -> Result<bool, StoreError> {
        self.inner().delete_schedule(name).await
    }

    async fn expired_runs(
        &self,
        now: weft::model::Millis,
        limit: usize,
    ) -> Result<Vec<RunId>, StoreError> {
        self.inner().expired_runs(now, limit).await
    }

    async fn delete_run(&self, id: &RunId) -> Result<(), StoreError> {
        self.inner().delete_run(id).await
    }

    async fn repin_run(
        &self,
        id: &RunId,
        expected_version: u64,
        digest: &weft::model::Digest,
    ) -> Result<(), StoreError> {
        self.inner().repin_run(id, expected_version, digest).await
    }
}

/// A successful attempt whose record hits a passing store error is recorded
/// on a retry while its lease holds, not dropped: the charge happened once
/// and is booked once, with no second attempt.
pub async fn a_result_is_recorded_through_a_passing_store_error(b: Backend) {
    let flaky = Arc::new(FlakyStore {
        step: "charge".into(),
        armed: std::sync::atomic::AtomicBool::new(true),
        ..FlakyStore::over(b.state.clone())
    });
    let backend = Backend {
        state: flaky.clone(),
        ..b
    };
    for mode in [RpcMode::Queued, RpcMode::Inline] {
        flaky.armed.store(true, Ordering::SeqCst);
        let s = saga_service(backend.clone(), mode).await;
        let mut input = saga_input(&format!("o-flaky-{mode:?}"));
        input["paymentFailures"] = json!(0);
        let run = s.run("order-saga", &input, T).await;
        assert_eq!(run.status, RunStatus::Completed, "{mode:?}: {run:?}");
        assert!(!flaky.armed.load(Ordering::SeqCst), "the fault fired");
        let steps = s.svc.steps(&run.id).await.unwrap();
        let charge = steps.iter().find(|v| v.step.name == "charge").unwrap();
        assert_eq!(charge.step.attempt_count, 1, "{mode:?}: {charge:?}");
        assert_eq!(charge.attempts.len(), 1, "{mode:?}: {charge:?}");
    }
}

/// A store that keeps failing for a while (throttling) delays a run but
/// does not dead-letter it: more failed tries than the queue's receive
/// limit, and the run still completes.
pub async fn a_throttled_store_delays_a_run_but_never_dead_letters_it(b: Backend) {
    let receive_limit = b.max_receives;
    let flaky = Arc::new(FlakyStore {
        lease_failures: std::sync::atomic::AtomicU32::new(receive_limit + 1),
        ..FlakyStore::over(b.state.clone())
    });
    let s = saga_service(
        Backend {
            state: flaky.clone(),
            ..b
        },
        RpcMode::Queued,
    )
    .await;
    let run = s.run("order-saga", &saga_input("o-throttled"), T).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(
        flaky.lease_failures.load(Ordering::SeqCst),
        0,
        "every fault fired"
    );
    assert_eq!(output(&run)["trackingNumber"], "trk-o-throttled");
}

/// The recovery sweep reaches every idle running run, however many there
/// are: it reads them page by page (here two at a time), not just the
/// newest page.
pub async fn the_sweep_reaches_every_stranded_run(b: Backend) {
    let s = Service::on(b.clone(), RpcMode::Queued, |_, _| {});
    for i in 0..5 {
        let mut run = crate::conformance::run_record("wf-stranded");
        run.created_at = 1_000 + i;
        run.updated_at = 1_000 + i;
        b.state.create_run(&run).await.unwrap();
    }
    let resumed = worker::sweep_runs_in_pages(&s.svc, 2).await.unwrap();
    assert_eq!(resumed, 5);
}

/// Inline-mode RPCs run inside the activation, but their time is the
/// host's: healthy RPCs that together outlast the activation budget do not
/// fail the run with `activation_timeout`.
pub async fn slow_inline_rpcs_are_not_charged_to_the_guest(b: Backend) {
    let mut s = Service::on(b, RpcMode::Inline, |_, limits| {
        limits.activation_timeout = Duration::from_secs(1);
    });
    s.deploy("order-saga", &example("order-saga")).await;
    s.deploy("order-rpc", &example("order-rpc")).await;
    s.start_worker();
    let mut input = saga_input("o-slow-inline");
    input["slowMs"] = json!(500);
    let run = s.run("order-saga", &input, T).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(output(&run)["trackingNumber"], "trk-o-slow-inline");
}

/// Waits until `check` holds for the run (polling the store).
pub(crate) async fn until(
    s: &Service,
    id: &RunId,
    check: impl Fn(&RunRecord) -> bool,
) -> RunRecord {
    for _ in 0..600 {
        let run = s.svc.get_run(id).await.unwrap();
        if check(&run) {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {id} never reached the expected state");
}

pub async fn a_cancelled_run_stays_cancelled(b: Backend) {
    let mut s = Service::on(b, RpcMode::Queued, |_, _| {});
    s.deploy("order-saga", &example("order-saga")).await;
    s.deploy("order-rpc", &example("order-rpc")).await;
    s.start_worker();
    // Cancelled while sleeping.
    let mut sleepy = saga_input("o-cancel-sleep");
    sleepy["coolOffMs"] = json!(1_500);
    let id = s
        .svc
        .start_run("order-saga", &sleepy.to_string())
        .await
        .unwrap();
    until(&s, &id, |r| r.step_names.len() == 4 && r.lease.is_none()).await;
    let cancelled = s.svc.cancel(&id, "changed my mind").await.unwrap();
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    assert_eq!(
        cancelled.error.as_ref().map(|e| e.message.as_str()),
        Some("changed my mind")
    );
    assert!(matches!(
        s.svc.cancel(&id, "again").await,
        Err(weft::service::ServiceError::NotRunning { .. })
    ));
    // The timer fires and is ignored: no more steps, still cancelled.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let after = s.svc.get_run(&id).await.unwrap();
    assert_eq!(
        (after.status, after.step_names.len()),
        (RunStatus::Cancelled, 4)
    );

    // Cancelled while an RPC is in flight: its result is recorded, nothing more.
    let mut slow = saga_input("o-cancel-rpc");
    slow["slowMs"] = json!(1_500);
    let id = s
        .svc
        .start_run("order-saga", &slow.to_string())
        .await
        .unwrap();
    until(&s, &id, |r| r.step_names.len() == 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.svc.cancel(&id, "stop").await.unwrap();
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let after = s.svc.get_run(&id).await.unwrap();
    assert_eq!(after.status, RunStatus::Cancelled);
    assert_eq!(
        after.step_names,
        ["price", "reserve"],
        "the run was not resumed"
    );
    let reserve = s
        .svc
        .state()
        .get_step(&id, "reserve")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        reserve.status,
        StepStatus::Succeeded,
        "the late result is recorded"
    );
    // `step_names` cannot show a new attempt of a known step: count them.
    assert_eq!(reserve.attempt_count, 1, "no attempt after the cancel");
    let key = StepRecord::key(&id, "reserve");
    assert_eq!(s.svc.state().list_attempts(&key).await.unwrap().len(), 1);
}

/// A cancel that lands after a worker read the run as running and before
/// it claimed the next attempt: the claim is conditioned on the run, so no
/// attempt starts once the cancel returned (no RPC call, no attempt count).
pub async fn no_attempt_starts_once_a_cancel_landed(b: Backend) {
    let flaky = Arc::new(FlakyStore::over(b.state.clone()));
    *flaky.cancel_before_claiming.lock().unwrap() = Some("reserve".into());
    let s = saga_service(
        Backend {
            state: flaky.clone(),
            ..b
        },
        RpcMode::Queued,
    )
    .await;
    let id = s
        .svc
        .start_run("order-saga", &saga_input("o-cancel-claim").to_string())
        .await
        .unwrap();
    let run = until(&s, &id, |r| r.status.is_terminal()).await;
    assert_eq!(run.status, RunStatus::Cancelled, "{run:?}");
    assert!(
        flaky.cancel_before_claiming.lock().unwrap().is_none(),
        "the cancel landed"
    );
    // Give a wrongly started attempt time to run and record.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let reserve = s
        .svc
        .state()
        .get_step(&id, "reserve")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reserve.attempt_count, 0, "no attempt started: {reserve:?}");
    assert_ne!(reserve.status, StepStatus::Running, "{reserve:?}");
    let key = StepRecord::key(&id, "reserve");
    assert!(s.svc.state().list_attempts(&key).await.unwrap().is_empty());
}

/// Takes messages off `s`'s queue and handles them (outside any
/// invocation) until one matches `wanted`, which is returned unhandled and
/// acknowledged.
async fn handle_until(s: &Service, wanted: impl Fn(&WorkMessage) -> bool) -> Envelope {
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < give_up {
        // Long polls of a second (SQS counts its waits in whole seconds).
        for delivery in s
            .svc
            .queue()
            .receive(1, Duration::from_secs(1))
            .await
            .unwrap()
        {
            let envelope = delivery.envelope.expect("a Weft envelope");
            s.svc.queue().ack(&delivery.receipt).await.unwrap();
            if wanted(&envelope.message) {
                return envelope;
            }
            s.svc.process_envelope(&envelope).await.unwrap();
        }
    }
    panic!("the awaited message never came");
}

/// On Lambda every deadline comes from the invocation's end. An RPC
/// attempt whose timeout would outlast the invocation is not claimed (a
/// fresh copy of its message goes to the next invocation, no retry spent),
/// and a guest still running when the invocation is about to end stops and
/// continues from a fresh message instead of failing the run.
pub async fn work_never_outlives_its_invocation(b: Backend) {
    use std::time::Instant;
    use weft::service::invocation::{WRAP_UP, within};
    let short = || Instant::now() + WRAP_UP + Duration::from_secs(1);
    let mut s = Service::on(b, RpcMode::Queued, |_, limits| {
        limits.activation_timeout = Duration::from_secs(4);
        limits.workflow_fuel = u64::MAX / 4;
    });
    s.deploy("order-saga", &example("order-saga")).await;
    s.deploy("order-rpc", &example("order-rpc")).await;
    s.deploy("hostile", &test_guest("hostile")).await;

    // A guest that computes past the invocation's end.
    let busy = s
        .svc
        .start_run("hostile", &json!({"mode": "loop"}).to_string())
        .await
        .unwrap();
    let resume = handle_until(&s, |m| m.run_id() == Some(&busy)).await;
    let started = Instant::now();
    within(short(), s.svc.process_envelope(&resume))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "cut at the invocation's end"
    );
    let run = s.svc.get_run(&busy).await.unwrap();
    assert_eq!(run.status, RunStatus::Running, "not failed: {run:?}");
    assert!(run.lease.is_none(), "the lease is given up: {run:?}");
    let next = handle_until(&s, |m| m.run_id() == Some(&busy)).await;
    assert!(
        matches!(next.message, WorkMessage::Resume { .. }),
        "{next:?}"
    );
    s.svc.cancel(&busy, "done looping").await.unwrap();

    // Out of time from the start, time after time: each activation stops
    // in the guest's own code (never half-way through a store write) and
    // the run loses nothing.
    let cut = s
        .svc
        .start_run("order-saga", &saga_input("o-cut").to_string())
        .await
        .unwrap();
    for _ in 0..6 {
        let message = handle_until(&s, |m| m.run_id() == Some(&cut)).await;
        within(Instant::now(), s.svc.process_envelope(&message))
            .await
            .unwrap();
    }

    // An attempt that would outlast the invocation.
    let id = s
        .svc
        .start_run("order-saga", &saga_input("o-invocation").to_string())
        .await
        .unwrap();
    let execute = handle_until(&s, |m| matches!(m, WorkMessage::ExecuteStep { .. })).await;
    let WorkMessage::ExecuteStep { step, .. } = &execute.message else {
        unreachable!()
    };
    within(short(), s.svc.process_envelope(&execute))
        .await
        .unwrap();
    let stored = s.svc.state().get_step(&id, step).await.unwrap().unwrap();
    assert_eq!(stored.attempt_count, 0, "not claimed: {stored:?}");
    let again = handle_until(&s, |m| matches!(m, WorkMessage::ExecuteStep { .. })).await;
    assert_eq!(again.message, execute.message, "a fresh copy of it");
    s.svc.process_envelope(&again).await.unwrap();
    s.start_worker();
    let run = s.wait(&id, T).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    let stored = s.svc.state().get_step(&id, step).await.unwrap().unwrap();
    assert_eq!(stored.attempt_count, 1, "{stored:?}");
    let run = s.wait(&cut, T).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(output(&run)["trackingNumber"], "trk-o-cut");
}

/// A run that would store more aside than a run may (here 300 KB: its
/// 200 KB input fits, its 210 KB output does not) fails with
/// `payload_too_large` naming the limit, rather than retrying for ever.
pub async fn a_run_too_large_for_its_store_fails_payload_too_large(b: Backend) {
    let mut s = Service::on(b, RpcMode::Queued, |_, limits| {
        limits.max_run_payload_bytes = 300 << 10;
    });
    s.deploy("hostile", &test_guest("hostile")).await;
    s.start_worker();
    let input = json!({ "mode": "big-output", "n": 210_000, "pad": "p".repeat(200_000) });
    let id = s
        .svc
        .start_run("hostile", &input.to_string())
        .await
        .unwrap();
    let run = s.wait(&id, Duration::from_secs(30)).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:?}");
    let error = run.error.expect("an error");
    assert_eq!(error.code, ErrorCode::PayloadTooLarge.as_str(), "{error:?}");
    assert!(
        error.message.contains("WEFT_MAX_RUN_PAYLOAD_BYTES"),
        "{}",
        error.message
    );
}

/// A claim that landed but came back as a conflict (the SDK retried a
/// write whose first try succeeded) is read back and found to be this
/// worker's own: the attempt runs at once. Read as a lost race, the step
/// would sit `running` under this worker's lease, unexecuted, until the
/// lease lapsed and a second attempt was booked.
pub async fn an_ambiguous_claim_is_read_back_not_taken_as_lost(b: Backend) {
    let flaky = Arc::new(FlakyStore::over(b.state.clone()));
    *flaky.ambiguous_claim.lock().unwrap() = Some("reserve".into());
    let s = saga_service(
        Backend {
            state: flaky.clone(),
            ..b
        },
        RpcMode::Queued,
    )
    .await;
    let run = s
        .run(
            "order-saga",
            &saga_input("o-ambiguous"),
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert!(
        flaky.ambiguous_claim.lock().unwrap().is_none(),
        "the fault fired"
    );
    let reserve = s
        .svc
        .state()
        .get_step(&run.id, "reserve")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reserve.attempt_count, 1, "{reserve:?}");
    let key = StepRecord::key(&run.id, "reserve");
    let history = s.svc.state().list_attempts(&key).await.unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].status, StepStatus::Succeeded, "{history:?}");
}

/// Two copies of one `execute-step` message handled at once by the same
/// worker, in the same millisecond, from the same read: one claim wins and
/// the other, read back after its conflict, is not taken for our own. The
/// attempt runs once. (Before claims carried a token of their own, the two
/// claims were identical and the attempt ran twice.)
pub async fn twin_copies_of_a_message_run_the_attempt_once(b: Backend) {
    struct Frozen(u64);
    impl weft::model::Clock for Frozen {
        fn now_millis(&self) -> u64 {
            self.0
        }
    }
    let flaky = Arc::new(FlakyStore {
        claim_barrier: Some(Arc::new(tokio::sync::Barrier::new(2))),
        ..FlakyStore::over(b.state.clone())
    });
    let started: Arc<std::sync::Mutex<Vec<(String, u32)>>> = Arc::default();
    let spy = started.clone();
    let s = Service::on(
        Backend {
            state: flaky.clone(),
            ..b
        },
        RpcMode::Queued,
        move |settings, _| {
            settings.clock = Arc::new(Frozen(weft::model::now_millis()));
            settings.lose_attempt = Some(Arc::new(move |step: &StepRecord| {
                spy.lock()
                    .unwrap()
                    .push((step.name.clone(), step.attempt_count));
                false
            }));
        },
    );
    s.deploy("order-saga", &example("order-saga")).await;
    s.deploy("order-rpc", &example("order-rpc")).await;
    s.svc
        .start_run("order-saga", &saga_input("o-twins").to_string())
        .await
        .unwrap();
    let execute = handle_until(&s, |m| matches!(m, WorkMessage::ExecuteStep { .. })).await;
    let (a, b) = tokio::join!(
        s.svc.process_envelope(&execute),
        s.svc.process_envelope(&execute)
    );
    a.unwrap();
    b.unwrap();
    let started = started.lock().unwrap().clone();
    assert_eq!(started.len(), 1, "the attempt ran once: {started:?}");
}

pub async fn a_run_past_its_deadline_fails_with_run_timeout(b: Backend) {
    let mut s = Service::on(b, RpcMode::Inline, |_, _| {});
    s.deploy("order-saga", &example("order-saga")).await;
    s.deploy("order-rpc", &example("order-rpc")).await;
    s.start_worker();
    let mut input = saga_input("o-deadline");
    input["coolOffMs"] = json!(600_000);
    let options = weft::service::StartOptions {
        timeout: Some(Duration::from_millis(1_500)),
        ..Default::default()
    };
    let id = s
        .svc
        .start_run_with("order-saga", &input.to_string(), options)
        .await
        .unwrap();
    let run = s.wait(&id, T).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(
        run.error.as_ref().map(|e| e.code.as_str()),
        Some("run_timeout"),
        "{run:?}"
    );
    assert!(
        run.updated_at - run.created_at < 10_000,
        "failed at its deadline, not after the sleep"
    );
}

/// Every workflow language with every RPC language: the order saga in Rust,
/// JavaScript, Python and C, each against the order RPC module in each of
/// the four, gives the Rust × Rust output and steps.
pub async fn the_saga_behaves_the_same_in_every_language(b: Backend) {
    const SAGAS: [&str; 4] = ["saga-rust", "saga-js", "saga-py", "saga-c"];
    let mut s = Service::on(b, RpcMode::Queued, |_, _| {});
    for (name, guest) in SAGAS.iter().zip([
        "order-saga",
        "order-saga-js",
        "order-saga-py",
        "order-saga-c",
    ]) {
        s.deploy(name, &example(guest)).await;
    }
    s.start_worker();
    let mut declined = saga_input("o-lang-declined");
    declined["declinePayment"] = json!(true);
    let inputs = [saga_input("o-lang"), declined];
    // Per input, the Rust × Rust run every other combination must match.
    let mut reference: Vec<Option<(Value, Vec<StepSummary>)>> = vec![None, None];
    // The sagas call `order-rpc/...`: each language's module is deployed
    // under that name in turn, and new calls take the newest version. The
    // runs of one RPC language go at once; the next deploy waits for them.
    for rpc in ["order-rpc", "order-rpc-js", "order-rpc-py", "order-rpc-c"] {
        s.deploy("order-rpc", &example(rpc)).await;
        let mut started = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            for name in SAGAS {
                let id = s.svc.start_run(name, &input.to_string()).await.unwrap();
                started.push((i, name, id));
            }
        }
        for (i, name, id) in started {
            let run = s.wait(&id, T).await;
            assert_eq!(run.status, RunStatus::Completed, "{name} × {rpc}: {run:?}");
            let steps = step_summaries(&s, &run.id).await;
            match &reference[i] {
                None => reference[i] = Some((output(&run), steps)),
                Some((out, reference_steps)) => {
                    assert_eq!(
                        &output(&run),
                        out,
                        "{name} × {rpc}: output differs from Rust × Rust"
                    );
                    assert_eq!(
                        &steps, reference_steps,
                        "{name} × {rpc}: steps differ from Rust × Rust"
                    );
                }
            }
        }
    }
}

/// The hello workflow in each language greets alike, with the same step. The
/// name has quotes, a control character and text outside ASCII and the BMP,
/// which each SDK's JSON must carry through unchanged.
pub async fn hello_greets_the_same_in_every_language(b: Backend) {
    let mut s = Service::on(b, RpcMode::Inline, |_, _| {});
    s.start_worker();
    let name = "Ada \"Lovelace\"\tK\u{f6}nig \u{1f680}";
    let greeting = format!("Hello, {name}!");
    for guest in ["hello", "hello-js", "hello-py", "hello-c"] {
        s.deploy(guest, &example(guest)).await;
        let run = s.run(guest, &json!({ "name": name }), T).await;
        assert_eq!(run.status, RunStatus::Completed, "{guest}: {run:?}");
        assert_eq!(output(&run), json!({ "greeting": greeting }), "{guest}");
        let steps = step_summaries(&s, &run.id).await;
        let expected = (
            "greet".to_string(),
            "inline".to_string(),
            None,
            "succeeded".to_string(),
            1,
            json!(greeting),
        );
        assert_eq!(steps, vec![expected], "{guest}");
    }
}

/// A step as the language comparison sees it: name, kind, RPC, status,
/// attempts and result.
type StepSummary = (String, String, Option<String>, String, u32, Value);

async fn step_summaries(s: &Service, run_id: &RunId) -> Vec<StepSummary> {
    s.svc
        .steps(run_id)
        .await
        .unwrap()
        .into_iter()
        .map(|v| {
            let result = serde_json::from_str(v.step.result.as_deref().unwrap_or("null"))
                .unwrap_or(Value::Null);
            (
                v.step.name,
                v.step.kind.as_str().to_string(),
                v.step.rpc_name,
                v.step.status.as_str().to_string(),
                v.step.attempt_count,
                result,
            )
        })
        .collect()
}

pub async fn runs_keep_the_module_version_they_started_with(b: Backend) {
    let mut s = Service::on(b, RpcMode::Inline, |_, _| {});
    s.start_worker();
    // v1: "reserved v1" after a 300 ms sleep; v2: "charged v2".
    s.deploy("pinned", &test_guest("diverge-v1")).await;
    let mut old_runs = Vec::new();
    for _ in 0..3 {
        old_runs.push(s.svc.start_run("pinned", "{}").await.unwrap());
    }
    let v2 = s
        .svc
        .deploy("pinned", crate::bytes(&test_guest("diverge-v2")))
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    let mut new_runs = Vec::new();
    for _ in 0..3 {
        new_runs.push(s.svc.start_run("pinned", "{}").await.unwrap());
    }
    for id in &old_runs {
        let run = s.wait(id, T).await;
        assert_eq!(output(&run), json!("reserved v1"), "{run:?}");
    }
    for id in &new_runs {
        let run = s.wait(id, T).await;
        assert_eq!(output(&run), json!("charged v2"), "{run:?}");
        assert_eq!(run.module_digest, v2.digest);
    }
    let versions = s.svc.registry().store().versions("pinned").await.unwrap();
    assert_eq!(versions.len(), 2, "both versions stay listed and loadable");
}

/// Expands to one `#[tokio::test]` per scenario for the backend that
/// `$provision` (a [`crate::conformance::Provision`]) creates.
#[macro_export]
macro_rules! scenario_suite {
    ($provision:expr) => {
        $crate::scenario_suite!(@cases $provision;
            a_saga_completes_with_one_outcome_per_step,
            duplicate_delivery_of_every_message_changes_nothing,
            a_poison_message_fails_its_run,
            a_timer_past_the_queue_delay_cap_is_rearmed,
            a_two_hour_sleep_completes_once_the_time_has_come,
            an_inline_step_is_retried_and_recorded_once,
            a_hung_rpc_attempt_is_abandoned_and_retried,
            a_cancelled_run_stays_cancelled,
            no_attempt_starts_once_a_cancel_landed,
            work_never_outlives_its_invocation,
            a_run_too_large_for_its_store_fails_payload_too_large,
            large_payloads_are_stored_aside_and_read_back_whole,
            a_payload_over_the_limit_is_refused_with_its_size,
            large_events_and_callback_results_are_stored_aside,
            a_run_past_its_retention_is_deleted_with_everything_it_stored,
            an_ambiguous_claim_is_read_back_not_taken_as_lost,
            twin_copies_of_a_message_run_the_attempt_once,
            a_run_past_its_deadline_fails_with_run_timeout,
            the_saga_behaves_the_same_in_every_language,
            hello_greets_the_same_in_every_language,
            runs_keep_the_module_version_they_started_with,
            a_step_that_keeps_losing_its_host_fails_at_the_cap,
            a_start_under_the_same_key_is_one_run,
            an_early_resume_keeps_the_sleeps_wake_time,
            a_module_deployed_elsewhere_is_found_at_once,
            timer_hops_end_when_nothing_waits_for_them,
            a_result_is_recorded_through_a_passing_store_error,
            a_throttled_store_delays_a_run_but_never_dead_letters_it,
            the_sweep_reaches_every_stranded_run,
            slow_inline_rpcs_are_not_charged_to_the_guest,
            events_are_kept_until_a_wait_takes_them,
            events_replay_the_same_at_every_step,
            an_expense_is_escalated_when_no_one_answers,
            a_workflow_built_for_wit_0_1_still_runs,
            a_callback_delivers_its_completion_once,
            an_expired_callback_times_out_and_refuses_completion,
            callbacks_replay_the_same_at_every_step,
            fan_out_members_run_at_the_same_time,
            fan_out_replays_the_same_at_every_step,
            fan_out_journals_are_the_same_parked,
            outcomes_the_run_does_not_await_leave_it_asleep,
            children_are_runs_whose_end_is_a_step_outcome,
            cancelling_a_parent_cancels_its_children,
            a_child_started_as_its_parent_was_cancelled_is_cancelled,
            queued_runs_continue_parked_guests,
            evicted_guests_replay_from_the_journal,
            runs_that_move_between_processes_end_right,
            a_parked_inline_step_retries_its_body,
            a_replay_reads_only_the_entries_it_has_not_kept,
            a_schedule_fires_each_time_once,
        );
    };
    (@cases $provision:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let provision: $crate::conformance::Provision = $provision;
                $crate::scenarios::$case(provision().await).await;
            }
        )+
    };
}
