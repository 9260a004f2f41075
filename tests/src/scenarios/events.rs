//! Scenarios for events: waits that take what was sent before, during and
//! after them, at-most-once under re-sends, timeouts, replay, and the
//! expense-approval example; and a 0.1.0 guest running beside them.

use super::{T, assert_one_outcome_per_step, output};
use crate::conformance::Backend;
use crate::{Service, example, test_guest};
use serde_json::{Value, json};
use std::time::Duration;
use weft::config::RpcMode;
use weft::model::{EventSent, RunId, StepRecord, StepStatus};
use weft::service::ServiceError;

/// Waits until the run has step `name` in a state `check` accepts.
async fn until_step(s: &Service, id: &RunId, name: &str, check: impl Fn(&StepRecord) -> bool) {
    for _ in 0..1200 {
        let steps = s.svc.steps(id).await.unwrap();
        if steps.iter().any(|v| v.step.name == name && check(&v.step)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {id} never had step `{name}` in the expected state");
}

/// The event-wait driver in each language, by module name.
const INBOXES: [&str; 3] = ["inbox", "inbox-js", "inbox-py"];

async fn inbox_service(b: Backend, replay_every_step: bool, inboxes: &[&str]) -> Service {
    let mut s = Service::on(b, RpcMode::Queued, |settings, _| {
        settings.replay_every_step = replay_every_step;
    });
    for &name in inboxes {
        s.deploy(name, &test_guest(name)).await;
    }
    s.start_worker();
    s
}

async fn send(
    s: &Service,
    id: &RunId,
    name: &str,
    payload: &str,
    event_id: Option<&str>,
) -> EventSent {
    s.svc
        .send_event(id, name, payload, event_id)
        .await
        .unwrap_or_else(|e| panic!("sending {name}: {e}"))
}

/// An event sent before its wait exists is kept and taken when the wait
/// comes; one sent during a wait wakes it; a re-send under the same id is
/// not a second event; one sent after a wait timed out is kept for the next
/// wait of its name; a finished run refuses events.
pub async fn events_are_kept_until_a_wait_takes_them(b: Backend) {
    let state = b.state.clone();
    let s = inbox_service(b, false, &["inbox"]).await;
    let input = json!({
        "sleepMs": 2000,
        "waits": [
            {"event": "a"},
            {"event": "b", "timeoutMs": 60000},
            {"event": "c", "timeoutMs": 300},
            {"event": "c", "timeoutMs": 60000},
            {"event": "a", "timeoutMs": 300}
        ]
    });
    let id = s.svc.start_run("inbox", &input.to_string()).await.unwrap();

    // Before: the run sleeps first, so no wait exists yet.
    assert!(matches!(
        send(&s, &id, "a", "1", Some("a-1")).await,
        EventSent::Stored(_)
    ));
    assert!(matches!(
        send(&s, &id, "a", "1", Some("a-1")).await,
        EventSent::Duplicate(_)
    ));
    let steps = s.svc.steps(&id).await.unwrap();
    assert!(
        steps.iter().all(|v| !v.step.name.starts_with("wait-")),
        "the events were to be sent before any wait: {steps:?}"
    );

    // During: once the wait for `b` has suspended the run.
    until_step(&s, &id, "wait-b", |st| st.status == StepStatus::Scheduled).await;
    send(&s, &id, "b", "2", None).await;

    // After: the first wait for `c` has timed out; the second takes it.
    until_step(&s, &id, "wait-c", |st| st.status == StepStatus::Failed).await;
    send(&s, &id, "c", "3", None).await;

    let run = s.wait(&id, T).await;
    assert_eq!(
        output(&run),
        json!([
            {"event": "a", "payload": 1},
            {"event": "b", "payload": 2},
            {"event": "c", "timedOut": true},
            {"event": "c", "payload": 3},
            // The re-send of `a-1` was not a second event for this wait.
            {"event": "a", "timedOut": true}
        ]),
        "{run:?}"
    );
    assert!(state.next_event(&id, "a").await.unwrap().is_none());
    assert_one_outcome_per_step(&s, &run).await;

    let late = s.svc.send_event(&id, "a", "4", None).await;
    assert!(
        matches!(late, Err(ServiceError::NotRunning { .. })),
        "{late:?}"
    );
    let unknown = s.svc.send_event(&RunId::generate(), "a", "4", None).await;
    assert!(
        matches!(unknown, Err(ServiceError::UnknownRun(_))),
        "{unknown:?}"
    );
}

/// Replayed from the journal after every step, a run with event waits and
/// timeouts gives the output and journal of the first execution, in Rust,
/// JavaScript and Python alike.
pub async fn events_replay_the_same_at_every_step(b: Backend) {
    let s = inbox_service(b, true, &INBOXES).await;
    let input = json!({
        "sleepMs": 1500,
        "waits": [{"event": "a"}, {"event": "b", "timeoutMs": 200}, {"event": "a"}]
    });
    let mut runs = Vec::new();
    for workflow in INBOXES {
        let id = s.svc.start_run(workflow, &input.to_string()).await.unwrap();
        send(&s, &id, "a", r#"{"n":1}"#, None).await;
        send(&s, &id, "a", r#"{"n":2}"#, None).await;
        runs.push((workflow, id));
    }
    for (workflow, id) in runs {
        replayed_the_same(&s, workflow, &id).await;
    }
}

async fn replayed_the_same(s: &Service, workflow: &str, id: &RunId) {
    let run = s.wait(id, T).await;
    assert_eq!(
        output(&run),
        json!([
            {"event": "a", "payload": {"n": 1}},
            {"event": "b", "timedOut": true},
            {"event": "a", "payload": {"n": 2}}
        ]),
        "{workflow}: {run:?}"
    );
    let journal: Vec<(String, StepStatus, Option<String>)> = s
        .svc
        .steps(id)
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.step.name, v.step.status, v.step.result))
        .collect();
    let expected = vec![
        (
            "before".to_string(),
            StepStatus::Succeeded,
            Some("null".to_string()),
        ),
        (
            "wait-a".into(),
            StepStatus::Succeeded,
            Some(r#"{"n":1}"#.into()),
        ),
        ("wait-b".into(), StepStatus::Failed, None),
        (
            "wait-a#2".into(),
            StepStatus::Succeeded,
            Some(r#"{"n":2}"#.into()),
        ),
    ];
    assert_eq!(journal, expected, "{workflow}");
}

/// The worked example: no answer within the first timeout escalates the
/// expense, and the director's answer decides it; an answer in time
/// decides it without escalation.
pub async fn an_expense_is_escalated_when_no_one_answers(b: Backend) {
    let mut s = Service::on(b, RpcMode::Queued, |_, _| {});
    s.deploy("expense-approval", &example("expense-approval"))
        .await;
    s.start_worker();
    let expense = |id: &str, first_ms: u64| {
        json!({
            "expenseId": id, "amountCents": 125000, "submitter": "ada",
            "approvalTimeoutMs": first_ms, "escalationTimeoutMs": 60000
        })
        .to_string()
    };

    let late = s
        .svc
        .start_run("expense-approval", &expense("e-late", 300))
        .await
        .unwrap();
    until_step(&s, &late, "await-director", |st| {
        st.status == StepStatus::Scheduled
    })
    .await;
    send(
        &s,
        &late,
        "approval",
        r#"{"approved": true, "by": "director"}"#,
        None,
    )
    .await;
    let run = s.wait(&late, T).await;
    assert_eq!(
        output(&run),
        json!({"expenseId": "e-late", "status": "approved", "decidedBy": "director", "note": null, "escalated": true})
    );
    let kinds: Vec<Value> = s
        .svc
        .steps(&late)
        .await
        .unwrap()
        .iter()
        .map(|v| json!([v.step.name, v.step.kind.as_str(), v.step.status.as_str()]))
        .collect();
    assert_eq!(
        kinds,
        vec![
            json!(["await-manager", "event", "failed"]),
            json!(["escalate", "inline", "succeeded"]),
            json!(["await-director", "event", "succeeded"]),
        ]
    );

    let prompt = s
        .svc
        .start_run("expense-approval", &expense("e-now", 60000))
        .await
        .unwrap();
    send(
        &s,
        &prompt,
        "approval",
        r#"{"approved": false, "by": "grace", "note": "over budget"}"#,
        None,
    )
    .await;
    let run = s.wait(&prompt, T).await;
    assert_eq!(
        output(&run),
        json!({"expenseId": "e-now", "status": "rejected", "decidedBy": "grace", "note": "over budget", "escalated": false})
    );
}

/// A component built against `weft:workflow@0.1.0` (before `wait-event`
/// existed) deploys and runs on this host, every 0.1.0 import answered.
pub async fn a_workflow_built_for_wit_0_1_still_runs(b: Backend) {
    let mut s = Service::on(b, RpcMode::Queued, |_, _| {});
    s.deploy("compat", &test_guest("compat-v0-1")).await;
    s.deploy("counter-rpc", &test_guest("counter-rpc")).await;
    s.start_worker();
    let run = s.run("compat", &json!({"n": 5}), T).await;
    assert_eq!(output(&run), json!({"x": 7, "slept": true}), "{run:?}");
    let kinds: Vec<&str> = s
        .svc
        .steps(&run.id)
        .await
        .unwrap()
        .iter()
        .map(|v| v.step.kind.as_str())
        .collect();
    assert_eq!(kinds, ["inline", "rpc", "sleep"]);
    let logs = s.svc.logs(&run.id).await.unwrap();
    assert!(
        logs.iter().any(|l| l.message == "0.1.0 guest reached 7"),
        "{logs:?}"
    );
}
