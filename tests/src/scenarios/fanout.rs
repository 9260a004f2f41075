//! Scenarios for fan-out and join: members that run at the same time, all /
//! first / enough of them awaited, a concurrency cap, a race against a
//! timer, child runs, and replay after every step in Rust, JavaScript and
//! Python.

use super::{T, output};
use crate::conformance::Backend;
use crate::{Service, test_guest};
use serde_json::{Value, json};
use weft::config::RpcMode;
use weft::model::{Millis, RunId, RunStatus, StepKind, StepStatus};
use weft::service::ServiceError;

/// The fan-out driver in each language, by module name.
const FANOUTS: [&str; 3] = ["fanout", "fanout-js", "fanout-py"];

async fn fanout_service(b: Backend, replay_every_step: bool, workflows: &[&str]) -> Service {
    let mut s = Service::on(b, RpcMode::Queued, |settings, _| {
        settings.replay_every_step = replay_every_step;
    });
    s.deploy("fanout-rpc", &test_guest("fanout-rpc")).await;
    for &name in workflows {
        s.deploy(name, &test_guest(name)).await;
    }
    s.start_worker();
    s
}

/// Twelve queued members of 300 ms each run side by side on the worker
/// pool (16 at a time by default), and `join_all` gives every outcome in
/// the order the members were started, a member's failure as a value.
pub async fn fan_out_members_run_at_the_same_time(b: Backend) {
    let s = fanout_service(b, false, &["fanout"]).await;
    let members: Vec<Value> = (0..12)
        .map(|i| json!({ "ms": 300, "fail": i == 5 }))
        .collect();
    let run = s.run("fanout", &json!({ "all": members }), T).await;
    let mut expected: Vec<Value> = (0..12).map(|i| json!(i)).collect();
    expected[5] = json!({ "error": "refused" });
    assert_eq!(output(&run), json!({ "all": expected }), "{run:?}");

    // The attempts' history shows them overlapping in time.
    let spans: Vec<(Millis, Millis)> = s
        .svc
        .steps(&run.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|v| v.step.kind == StepKind::Rpc)
        .flat_map(|v| v.attempts)
        .map(|a| (a.started_at, a.ended_at.unwrap_or(a.started_at)))
        .collect();
    assert_eq!(spans.len(), 12, "one attempt per member: {spans:?}");
    let most_at_once = spans
        .iter()
        .map(|(start, _)| {
            spans
                .iter()
                .filter(|(s, e)| s <= start && start < e)
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(
        most_at_once >= 4,
        "members ran one after another (at most {most_at_once} at once): {spans:?}"
    );
}

/// The input the replay scenario gives every language: members that fail,
/// a quorum whose members finish in the order 1, 2, 0, a timer racing an
/// event the test sends, and four members two at a time.
fn replay_input() -> Value {
    json!({
        "all": [{"ms": 100}, {"ms": 100, "fail": true}, {"ms": 100}],
        "quorum": [{"ms": 5000}, {"ms": 50}, {"ms": 500}],
        "raceMs": 600000,
        "bounded": {"items": 4, "limit": 2, "ms": 150},
        "children": [
            {"workflow": "fanout", "input": {"all": [{"ms": 10}]}},
            {"workflow": "fanout", "input": {"failWith": "boom"}}
        ]
    })
}

/// Replayed from the journal after every step, a run using every form of
/// fan-out gives the first execution's output and journal, the order in
/// which members finished included, in Rust, JavaScript and Python alike;
/// the members it never awaited are left where they were.
pub async fn fan_out_replays_the_same_at_every_step(b: Backend) {
    let s = fanout_service(b, true, &FANOUTS).await;
    runs_the_replay_input(&s).await;
}

/// The same runs with their guests parked between activations (the
/// default) write the journal a replay after every step writes.
pub async fn fan_out_journals_are_the_same_parked(b: Backend) {
    let s = fanout_service(b, false, &FANOUTS).await;
    runs_the_replay_input(&s).await;
    let stats = s.svc.stats();
    assert!(stats.parked_resumes > 0, "{stats:?}");
}

/// Runs [`replay_input`] in each language at once (sending the event it
/// races for) and checks each run's output and journal.
async fn runs_the_replay_input(s: &Service) {
    let mut runs = Vec::new();
    for workflow in FANOUTS {
        let input = replay_input().to_string();
        let id = s.svc.start_run(workflow, &input).await.unwrap();
        s.svc
            .send_event(&id, "go", r#"{"go":1}"#, None)
            .await
            .unwrap();
        runs.push((workflow, id));
    }
    for (workflow, id) in runs {
        replayed_the_same(s, workflow, &id).await;
    }
}

/// How long a fan-out run gets. Replayed after every step in three
/// languages at once, on moto, while the rest of the suite runs on two
/// cores, a run has taken over 90 s while still progressing; a stuck one
/// fails here all the same.
const FANOUT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(240);

async fn replayed_the_same(s: &Service, workflow: &str, id: &RunId) {
    let run = s.wait(id, FANOUT_PATIENCE).await;
    assert_eq!(
        output(&run),
        json!({
            "all": [0, {"error": "refused"}, 2],
            "quorum": {"order": [1, 2], "satisfied": true},
            "race": {"winner": "event", "value": {"go": 1}},
            "bounded": [0, 10, 20, 30],
            "children": [{"all": [0]}, {"error": "boom"}]
        }),
        "{workflow}: {run:?}"
    );
    use StepKind::{Child, Event, Join, Rpc, Sleep};
    use StepStatus::{Failed, Scheduled, Succeeded};
    let chose = |m: &str| Some(Value::String(m.into()).to_string());
    // (name, kind, status, result); `None` status: an abandoned member,
    // in whatever state the run's end found it.
    let expected: Vec<(&str, StepKind, Option<StepStatus>, Option<String>)> = vec![
        ("fan", Rpc, Some(Succeeded), Some("0".into())),
        ("fan#2", Rpc, Some(Failed), None),
        ("fan#3", Rpc, Some(Succeeded), Some("2".into())),
        ("quorum", Rpc, None, None),
        ("quorum#2", Rpc, Some(Succeeded), Some("1".into())),
        ("quorum#3", Rpc, Some(Succeeded), Some("2".into())),
        ("quorum-first", Join, Some(Succeeded), chose("quorum#2")),
        ("quorum-first#2", Join, Some(Succeeded), chose("quorum#3")),
        ("race-timer", Sleep, Some(Scheduled), None),
        (
            "race-event",
            Event,
            Some(Succeeded),
            Some(r#"{"go":1}"#.into()),
        ),
        ("race", Join, Some(Succeeded), chose("race-event")),
        ("bounded", Rpc, Some(Succeeded), Some("0".into())),
        ("bounded#2", Rpc, Some(Succeeded), Some("10".into())),
        ("bounded-next", Join, Some(Succeeded), chose("bounded")),
        ("bounded#3", Rpc, Some(Succeeded), Some("20".into())),
        ("bounded-next#2", Join, Some(Succeeded), chose("bounded#2")),
        ("bounded#4", Rpc, Some(Succeeded), Some("30".into())),
        ("bounded-next#3", Join, Some(Succeeded), chose("bounded#3")),
        ("bounded-next#4", Join, Some(Succeeded), chose("bounded#4")),
        ("kid", Child, Some(Succeeded), Some(r#"{"all":[0]}"#.into())),
        ("kid#2", Child, Some(Failed), None),
    ];
    let journal = s.svc.steps(id).await.unwrap();
    assert_eq!(journal.len(), expected.len(), "{workflow}: {journal:?}");
    for (view, (name, kind, status, result)) in journal.iter().zip(&expected) {
        let step = &view.step;
        assert_eq!(
            (step.name.as_str(), step.kind),
            (*name, *kind),
            "{workflow}: {journal:?}"
        );
        if let Some(status) = status {
            assert_eq!(step.status, *status, "{workflow}: {step:?}");
            assert_eq!(&step.result, result, "{workflow}: {step:?}");
        }
    }
    // The abandoned timer never wakes the finished run, and its event
    // wait's inbox is closed.
    let late = s.svc.send_event(id, "go", "2", None).await;
    assert!(
        matches!(late, Err(ServiceError::NotRunning { .. })),
        "{workflow}: {late:?}"
    );
}

/// Outcomes the run is not waiting for do not replay it: `join_all`
/// waits for member 0 first, and while it runs the eleven others finish;
/// their workers find the run asleep on member 0 and leave it. When member
/// 0 finishes, one replay takes all twelve outcomes. (Replaying on every
/// outcome would take a dozen activations, each re-reading the journal.)
pub async fn outcomes_the_run_does_not_await_leave_it_asleep(b: Backend) {
    let s = fanout_service(b, false, &["fanout"]).await;
    let mut members = vec![json!({ "ms": 2500 })];
    members.extend((1..12).map(|_| json!({ "ms": 50 })));
    let before = s.svc.stats();
    let run = s.run("fanout", &json!({ "all": members }), T).await;
    let expected: Vec<Value> = (0..12).map(|i| json!(i)).collect();
    assert_eq!(output(&run), json!({ "all": expected }), "{run:?}");
    let activations = s.svc.stats().activations - before.activations;
    // The first activation starts the members and suspends; one more
    // finishes the run; a completion that lands while an activation holds
    // the run may add one.
    assert!(
        activations <= 4,
        "{activations} activations for one awaited outcome and eleven others"
    );
}

/// Child runs: each is an ordinary run linked to its parent's step, pinned
/// to its workflow's digest; one that succeeds gives its output, one that
/// fails or cannot start is an error value in the parent; a detached child
/// is linked but not awaited.
pub async fn children_are_runs_whose_end_is_a_step_outcome(b: Backend) {
    let s = fanout_service(b, false, &["fanout"]).await;
    let input = json!({
        "spawn": {"workflow": "fanout", "input": {"all": [{"ms": 10}]}},
        "children": [
            {"workflow": "fanout", "input": {"all": [{"ms": 10}, {"ms": 10}]}},
            {"workflow": "fanout", "input": {"failWith": "boom"}},
            {"workflow": "no-such-workflow", "input": {}}
        ]
    });
    let run = s.run("fanout", &input, T).await;
    let out = output(&run);
    assert_eq!(
        out["children"],
        json!([{"all": [0, 1]}, {"error": "boom"}, {"error": "unknown_workflow"}]),
        "{run:?}"
    );
    let steps = s.svc.steps(&run.id).await.unwrap();
    let kid = &steps.iter().find(|v| v.step.name == "kid").unwrap().step;
    let child_id = weft::model::ParentLink::child_id(&run.id, "kid", "fanout");
    let child = s.svc.get_run(&child_id).await.unwrap();
    assert_eq!(child.status, RunStatus::Completed, "{child:?}");
    assert_eq!(child.module_digest, run.module_digest);
    let link = child.parent.clone().expect("a parent link");
    assert_eq!(
        (link.run_id, link.step.as_str(), link.detached),
        (run.id.clone(), "kid", false)
    );
    assert_eq!(
        kid.result, child.output,
        "the parent recorded the child's output"
    );
    let failed = steps.iter().find(|v| v.step.name == "kid#2").unwrap();
    let error = failed.step.error.clone().unwrap();
    assert_eq!(error.code, "boom");
    assert!(error.details.unwrap()["childRunId"].is_string());

    let spawned: RunId = out["spawned"].as_str().unwrap().parse().unwrap();
    let detached = s.wait(&spawned, T).await;
    assert_eq!(detached.status, RunStatus::Completed);
    assert!(
        detached
            .parent
            .is_some_and(|p| p.detached && p.run_id == run.id)
    );
}

/// Cancelling a parent cancels its attached children (and the cancel, if
/// repeated, answers `not_running` having checked them again); a detached
/// child runs on.
pub async fn cancelling_a_parent_cancels_its_children(b: Backend) {
    let s = fanout_service(b, false, &["fanout"]).await;
    // Each child waits for an event nobody sends, or ten minutes.
    let waits = json!({"workflow": "fanout", "input": {"raceMs": 600000}});
    let input = json!({"spawn": waits, "children": [waits, waits]});
    let id = s.svc.start_run("fanout", &input.to_string()).await.unwrap();
    let kids: Vec<RunId> = ["kid", "kid#2"]
        .iter()
        .map(|step| weft::model::ParentLink::child_id(&id, step, "fanout"))
        .collect();
    for kid in &kids {
        until_run(&s, kid, |r| r.status == RunStatus::Running).await;
    }
    // The cancel reaches the children the parent's journal names (one it
    // is starting as the cancel lands is the case below).
    until_run(&s, &id, |r| r.step_names.iter().any(|n| n == "kid#2")).await;
    let spawned_id = {
        let steps = s.svc.steps(&id).await.unwrap();
        let step = steps.iter().find(|v| v.step.name == "spawned").unwrap();
        serde_json::from_str::<String>(step.step.result.as_deref().unwrap()).unwrap()
    };
    let spawned: RunId = spawned_id.parse().unwrap();

    s.svc.cancel(&id, "test").await.unwrap();
    for kid in &kids {
        let run = s.svc.get_run(kid).await.unwrap();
        assert_eq!(run.status, RunStatus::Cancelled, "{run:?}");
    }
    let again = s.svc.cancel(&id, "test").await;
    assert!(
        matches!(again, Err(ServiceError::NotRunning { .. })),
        "{again:?}"
    );
    let detached = s.svc.get_run(&spawned).await.unwrap();
    assert_eq!(detached.status, RunStatus::Running, "{detached:?}");
    s.svc.cancel(&spawned, "cleanup").await.unwrap();
}

/// A cancel that overtakes the parent between starting a child and
/// recording the step cannot see that child in the journal, and the child,
/// already past its own check of the parent, waits for its event: the
/// activation whose record failed cancels it, rather than leaving it to
/// wait out its ten minutes.
pub async fn a_child_started_as_its_parent_was_cancelled_is_cancelled(b: Backend) {
    use std::sync::Arc;
    use tokio::sync::Notify;
    let flaky = Arc::new(super::FlakyStore::over(b.state.clone()));
    let (reached, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    *flaky.hold_recording.lock().unwrap() = Some(super::Gate {
        step: "kid".into(),
        reached: reached.clone(),
        release: release.clone(),
    });
    let b = Backend {
        state: flaky.clone(),
        ..b
    };
    let s = fanout_service(b, false, &["fanout"]).await;
    let waits = json!({"workflow": "fanout", "input": {"raceMs": 600000}});
    let input = json!({ "children": [waits] });
    let id = s.svc.start_run("fanout", &input.to_string()).await.unwrap();
    let kid = weft::model::ParentLink::child_id(&id, "kid", "fanout");

    // The parent started the child and is about to record the step; the
    // child gets going, and settles into its wait.
    reached.notified().await;
    until_run(&s, &kid, |r| r.lease.is_none() && !r.step_names.is_empty()).await;
    s.svc.cancel(&id, "test").await.unwrap();
    release.notify_one();

    let kid = until_run(&s, &kid, |r| r.status.is_terminal()).await;
    assert_eq!(kid.status, RunStatus::Cancelled, "{kid:?}");
    let parent = s.svc.get_run(&id).await.unwrap();
    assert!(parent.step_names.is_empty(), "{parent:?}");
}

/// Waits until run `id` is in a state `check` accepts.
async fn until_run(
    s: &Service,
    id: &RunId,
    check: impl Fn(&weft::model::RunRecord) -> bool,
) -> weft::model::RunRecord {
    for _ in 0..1200 {
        if let Ok(run) = s.svc.get_run(id).await
            && check(&run)
        {
            return run;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("run {id} never reached the expected state");
}
