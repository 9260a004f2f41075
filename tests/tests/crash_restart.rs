//! `weft dev` killed with SIGKILL at the worst moments — while a run sleeps,
//! while an RPC is in flight — and restarted on the same data directory:
//! every run completes and no step records a second outcome.

use serde_json::{Value, json};
use std::time::Duration;
use weft_tests::{
    DevServer, assert_single_outcomes, assert_survived_a_lost_last_attempt, charge_in_last_attempt,
    last_attempt_input, saga_input,
};

const T: Duration = Duration::from_secs(90);

/// Short leases and redelivery so takeovers happen within the test.
const ENV: &[(&str, &str)] = &[
    ("WEFT_VISIBILITY_TIMEOUT_SECS", "2"),
    ("WEFT_RPC_TIMEOUT_SECS", "4"),
    ("WEFT_ACTIVATION_TIMEOUT_SECS", "5"),
];

fn step<'a>(steps: &'a [Value], name: &str) -> Option<&'a Value> {
    steps.iter().find(|s| s["name"] == name)
}

async fn deploy(server: &DevServer) {
    server.api().deploy_saga().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_a_run_sleeps_then_restarted_the_run_completes() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = DevServer::start(dir.path(), ENV).unwrap();
    deploy(&first).await;
    let api = first.api();
    let mut input = saga_input("o-sleep");
    input["coolOffMs"] = json!(2_500);
    let sleeping = api.start("order-saga", &input).await.unwrap();
    let other = api
        .start("order-saga", &saga_input("o-other"))
        .await
        .unwrap();
    api.wait_for_steps(&sleeping, T, |s| {
        step(s, "cool-off").is_some_and(|c| c["status"] == "scheduled")
    })
    .await
    .unwrap();
    first.kill();

    let second = DevServer::start(dir.path(), ENV).unwrap();
    let api = second.api();
    for (id, order) in [(&sleeping, "o-sleep"), (&other, "o-other")] {
        let run = api.wait(id, T).await.unwrap();
        assert_eq!(run["status"], "completed", "{run}");
        assert_eq!(run["output"]["trackingNumber"], format!("trk-{order}"));
        let (_, steps) = api.get(&format!("/v1/runs/{id}/steps")).await.unwrap();
        let steps = steps["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 5);
        assert_single_outcomes(steps);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_an_rpc_is_in_flight_then_restarted_the_step_is_retried_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = DevServer::start(dir.path(), ENV).unwrap();
    deploy(&first).await;
    let api = first.api();
    let mut input = saga_input("o-inflight");
    input["slowMs"] = json!(1_500);
    input["paymentFailures"] = json!(0);
    let id = api.start("order-saga", &input).await.unwrap();
    api.wait_for_steps(&id, T, |s| {
        step(s, "reserve").is_some_and(|r| r["status"] == "running")
    })
    .await
    .unwrap();
    first.kill();

    let second = DevServer::start(dir.path(), ENV).unwrap();
    let api = second.api();
    let run = api.wait(&id, T).await.unwrap();
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"]["trackingNumber"], "trk-o-inflight");
    let (_, steps) = api.get(&format!("/v1/runs/{id}/steps")).await.unwrap();
    let steps = steps["steps"].as_array().unwrap();
    assert_single_outcomes(steps);
    // The attempt the dead worker held is on record as lost, then retried.
    let reserve = step(steps, "reserve").unwrap();
    let history = reserve["history"].as_array().unwrap();
    assert_eq!(reserve["attempts"], 2, "{reserve}");
    assert_eq!(history[0]["error"]["code"], "worker_lost", "{history:?}");
    assert_eq!(history[1]["status"], "succeeded");
}

/// Killed during the charge's last allowed attempt: a host crash does not
/// spend the step's retries, so the saga charges and ships instead of
/// compensating a charge that would have succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_a_steps_last_attempt_the_step_still_gets_its_retries() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = DevServer::start(dir.path(), ENV).unwrap();
    deploy(&first).await;
    let id = first
        .api()
        .start("order-saga", &last_attempt_input("o-last"))
        .await
        .unwrap();
    first
        .api()
        .wait_for_steps(&id, T, charge_in_last_attempt)
        .await
        .unwrap();
    first.kill();

    let second = DevServer::start(dir.path(), ENV).unwrap();
    let api = second.api();
    let run = api.wait(&id, T).await.unwrap();
    let steps = api.steps(&id).await.unwrap();
    assert_survived_a_lost_last_attempt(&run, &steps, "o-last");
}
