//! Replay: a run suspended and replayed at every step boundary ends exactly
//! like an uninterrupted one, logs are not repeated, and a replay that
//! diverges from the journal fails the run as `non_deterministic`.

use serde_json::{Value, json};
use std::time::Duration;
use weft::config::RpcMode;
use weft::model::{Digest, RunStatus, StepStatus};
use weft::replay::{self, ActivationEnd, ActivationInput};
use weft_tests::recorded::RecordedOnly;
use weft_tests::{Service, example, saga_input, test_guest};

const T: Duration = Duration::from_secs(60);

fn output(run: &weft::model::RunRecord) -> Value {
    serde_json::from_str(run.output.as_deref().unwrap_or("null")).unwrap()
}

async fn saga_service(replay_every_step: bool, mode: RpcMode) -> Service {
    let e = Service::start(mode, |s, _| s.replay_every_step = replay_every_step);
    e.deploy("order-saga", &example("order-saga")).await;
    e.deploy("order-rpc", &example("order-rpc")).await;
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_at_every_step_gives_the_same_result_as_running_straight_through() {
    for mode in [RpcMode::Inline, RpcMode::Queued] {
        let straight = saga_service(false, mode).await;
        let replayed = saga_service(true, mode).await;
        let input = saga_input("o-replay");
        let a = straight.run("order-saga", &input, T).await;
        let b = replayed.run("order-saga", &input, T).await;
        assert_eq!(a.status, RunStatus::Completed, "{a:?}");
        assert_eq!(output(&a), output(&b), "{mode:?}");
        assert_eq!(output(&a)["trackingNumber"], "trk-o-replay");

        let steps = |e: &Service, id| {
            let svc = e.svc.clone();
            async move {
                svc.steps(&id)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|v| {
                        (
                            v.step.name,
                            v.step.kind,
                            v.step.status,
                            v.step.attempt_count,
                            v.step.result,
                        )
                    })
                    .collect::<Vec<_>>()
            }
        };
        let sa = steps(&straight, a.id.clone()).await;
        let sb = steps(&replayed, b.id.clone()).await;
        assert_eq!(sa, sb, "the same journal either way ({mode:?})");
        assert_eq!(sa.len(), 5);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_values_and_logs_are_those_of_the_first_execution() {
    for probe in ["probe", "probe-js", "probe-py"] {
        replays_first_execution(probe).await;
    }
}

/// The probe (in any language), replayed from the top after every step.
async fn replays_first_execution(probe: &str) {
    let e = Service::start(RpcMode::Inline, |s, _| s.replay_every_step = true);
    e.deploy("probe", &test_guest(probe)).await;
    e.deploy("order-rpc", &example("order-rpc")).await;
    let run = e
        .run("probe", &json!({ "withRpc": true, "sleepMs": 50 }), T)
        .await;
    assert_eq!(run.status, RunStatus::Completed, "{probe}: {run:?}");
    let out = output(&run);
    // The inline step recorded `random % 1000` in the first activation; the
    // final activation drew `random` again and must have got the same value.
    assert_eq!(
        out["inlineValue"].as_u64().unwrap(),
        out["random"].as_u64().unwrap() % 1000,
        "{probe}"
    );
    assert_eq!(out["rpcResult"]["trackingNumber"], "trk-probe");

    let logs = e.svc.logs(&run.id).await.unwrap();
    let messages: Vec<String> = logs
        .iter()
        .map(|l| format!("{}:{}", l.level, l.message))
        .collect();
    let inline = out["inlineValue"].as_u64().unwrap();
    assert_eq!(
        messages,
        [
            "stdout:probe starting".to_string(),
            "info:before any step".into(),
            format!("stdout:after inline step: {inline}"),
            "info:after inline step".into(),
            "info:after rpc step".into(),
            "info:after sleep".into(),
            "stdout:probe done".into(),
        ],
        "each line once, in order, although the run replayed four times"
    );
}

/// A probe's step body draws the language's own randomness; the draw after
/// the step goes into a queued RPC's input. The first activation runs the
/// body and enqueues the RPC; the resume skips the body. With one random
/// stream per activation the resume would draw another value after the step
/// and fail the run as `non_deterministic` at the RPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomness_drawn_inside_a_step_does_not_shift_later_draws() {
    for probe in ["probe", "probe-js", "probe-py"] {
        let e = Service::start(RpcMode::Queued, |_, _| {});
        e.deploy("probe", &test_guest(probe)).await;
        e.deploy("order-rpc", &example("order-rpc")).await;
        let run = e
            .run("probe", &json!({ "withRpc": true, "sleepMs": 1 }), T)
            .await;
        assert_eq!(run.status, RunStatus::Completed, "{probe}: {run:?}");
        let out = output(&run);
        let steps = e.svc.steps(&run.id).await.unwrap();
        let remote = steps
            .iter()
            .find(|v| v.step.name == "remote")
            .expect("the rpc step");
        let sent: Value = serde_json::from_str(remote.step.input.as_deref().unwrap()).unwrap();
        assert_eq!(sent["nonce"], out["nonce"], "{probe}");
    }
}

/// Each activation replays the whole journal before its new step. With the
/// budget charged for replay too, the run would fail `cpu_limit` once the
/// journal's replay alone cost more than one activation's fuel, although no
/// stretch of its code ever came near it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_long_journal_is_not_charged_to_the_fuel_budget() {
    const STEPS: u64 = 60;
    let e = Service::start(RpcMode::Inline, |s, limits| {
        s.replay_every_step = true;
        limits.workflow_fuel = FUEL;
    });
    e.deploy("counter", &test_guest("counter")).await;
    let run = e.run("counter", &json!({ "n": STEPS }), T).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(output(&run)["x"], STEPS);
}

/// The counter's first activation burns about 4,300 fuel and each replayed
/// step about 3,200 more: this is ten times one activation's new work and
/// less than replaying sixteen steps.
const FUEL: u64 = 50_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_that_takes_another_path_fails_as_non_deterministic() {
    // The replay is the subject: no guest parks to carry the run on.
    let e = Service::without_worker(RpcMode::Inline, |settings, _| {
        settings.parking.max_runs = 0;
    });
    e.deploy("diverge", &test_guest("diverge-v1")).await;
    let v2 = weft_tests::bytes(&test_guest("diverge-v2"));
    e.deploy("diverge-v2", &test_guest("diverge-v2")).await;
    let id = e.svc.start_run("diverge", "{}").await.unwrap();

    // First activation: records step `reserve`, then suspends on the sleep.
    let first = e
        .svc
        .queue()
        .receive(1, Duration::from_secs(5))
        .await
        .unwrap();
    weft::service::worker::process(&e.svc, first.into_iter().next().unwrap()).await;
    let run = e.svc.get_run(&id).await.unwrap();
    assert_eq!(run.step_names, ["reserve", "wait"]);

    // The code under the run changes. Pinning exists to prevent exactly
    // this (the store never rewrites a run's digest), so the test tampers
    // with the database directly: the next replay calls `charge` first.
    let db = rusqlite::Connection::open(e.dir.path().join("weft.db")).unwrap();
    let changed = db
        .execute(
            "UPDATE runs SET module_digest = ?1 WHERE id = ?2",
            [Digest::of(&v2).as_str(), id.as_str()],
        )
        .unwrap();
    assert_eq!(changed, 1);

    let mut e = e;
    e.start_worker();
    let done = e.wait(&id, T).await;
    assert_eq!(done.status, RunStatus::Failed);
    let error = done.error.unwrap();
    assert_eq!(error.code, "non_deterministic");
    assert!(
        error.message.contains("`reserve`") && error.message.contains("`charge`"),
        "the error shows both sides: {}",
        error.message
    );
    // The recorded step was not touched by the failed replay.
    let steps = e.svc.steps(&id).await.unwrap();
    assert_eq!(steps[0].step.status, StepStatus::Succeeded);
    assert_eq!(steps[0].step.result.as_deref(), Some("\"reserved\""));
}

/// Which member an `await-any` delivered is data: a replay returns the one
/// the journal's join step names, even when the members' completion times
/// say another finished first. Here the joins are rewritten to say the
/// slowest member came first, and the replay follows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_delivers_the_member_its_join_step_recorded() {
    let e = Service::start(RpcMode::Queued, |_, _| {});
    e.deploy("fanout", &test_guest("fanout")).await;
    e.deploy("fanout-rpc", &test_guest("fanout-rpc")).await;
    let input = json!({"quorum": [{"ms": 800}, {"ms": 50}, {"ms": 300}]});
    let run = e.run("fanout", &input, T).await;
    assert_eq!(
        output(&run)["quorum"],
        json!({"order": [1, 2], "satisfied": true})
    );
    // Wait for the abandoned slow member too, so every member is final.
    let mut journal = Vec::new();
    for _ in 0..100 {
        journal = e
            .svc
            .state()
            .get_steps(&run.id, &run.step_names)
            .await
            .unwrap();
        if journal.iter().all(|s| s.status.is_final()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(journal.iter().all(|s| s.status.is_final()), "{journal:?}");
    let slowest = journal
        .iter()
        .find(|s| s.name == "quorum")
        .unwrap()
        .completed_at;
    let fastest = journal
        .iter()
        .find(|s| s.name == "quorum#2")
        .unwrap()
        .completed_at;
    assert!(slowest > fastest, "{journal:?}");

    // The first join now says member 0 came first; the second, asked then
    // about members 1 and 2, says member 2.
    for step in journal.iter_mut() {
        match step.name.as_str() {
            "quorum-first" => step.result = Some(json!("quorum").to_string()),
            "quorum-first#2" => {
                step.input = Some(json!({"members": ["quorum#2", "quorum#3"]}).to_string());
                step.result = Some(json!("quorum#3").to_string());
            }
            _ => {}
        }
    }
    let pre = e.svc.registry().workflow(&run.module_digest).await.unwrap();
    let driver = RecordedOnly::default();
    let activation = ActivationInput {
        run_id: run.id.clone(),
        input: input.to_string(),
        started_at: run.created_at,
        journal,
        ends_by: None,
        parking: None,
    };
    replay::activate(&pre, e.svc.limits(), activation, Box::new(driver.clone()))
        .await
        .unwrap();
    let ended = driver.ended();
    let Some(ActivationEnd::Completed(replayed)) = ended else {
        panic!("{ended:?}")
    };
    let replayed: Value = serde_json::from_str(&replayed).unwrap();
    assert_eq!(
        replayed["quorum"],
        json!({"order": [0, 2], "satisfied": true})
    );
}
