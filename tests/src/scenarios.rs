//! Service-level scenarios that every backend must pass: the whole engine
//! (replay, steps, queue, recovery) on top of one [`Backend`].
//!
//! Like the conformance suite, each scenario is written once and
//! [`scenario_suite!`](crate::scenario_suite) instantiates it per backend.

use crate::conformance::Backend;
use crate::{Service, example, saga_input, test_guest};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use weft::backend::faults::{FaultPlan, FaultyQueue};
use weft::config::RpcMode;
use weft::model::{
    Envelope, ErrorCode, ManualClock, RunId, RunRecord, RunStatus, StepStatus, WorkMessage,
};
use weft::service::worker;

const T: Duration = Duration::from_secs(90);

fn output(run: &RunRecord) -> Value {
    serde_json::from_str(run.output.as_deref().unwrap_or("null")).unwrap_or(Value::Null)
}

/// Every step of a finished run has one final outcome, and its history has
/// one row per attempt with exactly one success for succeeded steps.
async fn assert_one_outcome_per_step(s: &Service, run: &RunRecord) {
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
        duplicating.duplicates.load(Ordering::Relaxed) >= 6,
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
    let run_id = RunId::generate();
    let message = WorkMessage::Resume {
        run_id: run_id.clone(),
    };
    // Two hours ahead: more than any SQS delay. Handling it early re-sends
    // it with the longest delay the queue allows, and nothing else happens.
    let far = Envelope::at(message.clone(), s.svc.now() + 2 * 3600 * 1000);
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
    let near = Envelope::at(message, s.svc.now() + 2000);
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

/// Waits until `check` holds for the run (polling the store).
async fn until(s: &Service, id: &RunId, check: impl Fn(&RunRecord) -> bool) -> RunRecord {
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

pub async fn the_saga_behaves_the_same_in_every_language(b: Backend) {
    let mut s = Service::on(b, RpcMode::Queued, |_, _| {});
    for (name, guest) in [
        ("saga-rust", "order-saga"),
        ("saga-js", "order-saga-js"),
        ("saga-py", "order-saga-py"),
    ] {
        s.deploy(name, &example(guest)).await;
    }
    s.deploy("order-rpc", &example("order-rpc")).await;
    s.start_worker();
    let mut declined = saga_input("o-lang-declined");
    declined["declinePayment"] = json!(true);
    for input in [saga_input("o-lang"), declined] {
        let mut results = Vec::new();
        for name in ["saga-rust", "saga-js", "saga-py"] {
            let run = s.run(name, &input, T).await;
            assert_eq!(run.status, RunStatus::Completed, "{name}: {run:?}");
            let steps: Vec<(String, String, Option<String>, String, u32, Value)> = s
                .svc
                .steps(&run.id)
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
                .collect();
            results.push((name, output(&run), steps));
        }
        let (_, rust_output, rust_steps) = &results[0];
        for (name, out, steps) in &results[1..] {
            assert_eq!(out, rust_output, "{name} output differs from Rust's");
            assert_eq!(steps, rust_steps, "{name} steps differ from Rust's");
        }
    }
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
            a_run_past_its_deadline_fails_with_run_timeout,
            the_saga_behaves_the_same_in_every_language,
            runs_keep_the_module_version_they_started_with,
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
