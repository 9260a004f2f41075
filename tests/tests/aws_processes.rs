//! The AWS backend end to end: `weft aws init` and `weft dev` as real
//! processes against the moto emulator, workers sharing tables and queues,
//! and a worker killed mid-step.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;
use weft::backend::aws::init::QueueOptions;
use weft_tests::aws::AwsEnv;
use weft_tests::{
    DevServer, assert_survived_a_lost_last_attempt, charge_in_last_attempt, last_attempt_input,
    saga_input, weft_bin,
};

const T: Duration = Duration::from_secs(180);

fn queue_options() -> QueueOptions {
    QueueOptions {
        visibility_timeout: Duration::from_secs(2),
        max_receives: 10,
    }
}

fn dev(env: &AwsEnv, extra: &[(&str, &str)]) -> (DevServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut vars = env.env();
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let server = DevServer::start_with(dir.path(), &vars).expect("weft dev on the AWS backend");
    (server, dir)
}

fn s<'a>(item: &'a HashMap<String, AttributeValue>, key: &str) -> &'a str {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no string `{key}` in {item:?}"))
}

fn num(item: &HashMap<String, AttributeValue>, key: &str) -> u64 {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number `{key}` in {item:?}"))
}

/// Every step has one final outcome and history rows matching attempts.
async fn assert_single_outcomes(api: &weft_tests::Api, run_id: &str) {
    weft_tests::assert_single_outcomes(&api.steps(run_id).await.unwrap());
}

/// The AWS twin of the embedded crash test: a worker killed during the
/// charge's last allowed attempt costs the step no retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_in_a_steps_last_attempt_does_not_spend_it() {
    let env = AwsEnv::provision(queue_options()).await;
    let fast_leases = [
        ("WEFT_RPC_TIMEOUT_SECS", "3"),
        ("WEFT_ACTIVATION_TIMEOUT_SECS", "5"),
    ];
    let (mut first, _d1) = dev(&env, &fast_leases);
    let api = first.api();
    api.deploy_saga().await.unwrap();
    let id = api
        .start("order-saga", &last_attempt_input("o-last"))
        .await
        .unwrap();
    api.wait_for_steps(&id, T, charge_in_last_attempt)
        .await
        .unwrap();
    first.kill();

    let (second, _d2) = dev(&env, &fast_leases);
    let api = second.api();
    let run = api.wait(&id, T).await.unwrap();
    let steps = api.steps(&id).await.unwrap();
    assert_survived_a_lost_last_attempt(&run, &steps, "o-last");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_init_creates_the_seed_layout_idempotently() {
    let env = AwsEnv::unprovisioned().await;
    let run_init = || {
        let out = Command::new(weft_bin())
            .args(["aws", "init"])
            .envs(env.env())
            .output()
            .expect("weft aws init");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = run_init();
    assert!(first.contains("9 created, 0 already existed"), "{first}");
    assert!(
        first.contains(&format!("created table  {}", env.settings.steps_table)),
        "{first}"
    );
    let second = run_init();
    assert!(second.contains("0 created, 9 already existed"), "{second}");

    let describe = |name: String| {
        let dynamo = env.clients.dynamo.clone();
        async move {
            dynamo
                .describe_table()
                .table_name(name)
                .send()
                .await
                .unwrap()
                .table
                .unwrap()
        }
    };
    let steps = describe(env.settings.steps_table.clone()).await;
    assert_eq!(steps.key_schema()[0].attribute_name(), "runStepKey");
    let gsi = &steps.global_secondary_indexes()[0];
    assert_eq!(gsi.index_name(), Some("runId-index"));
    assert_eq!(gsi.key_schema()[0].attribute_name(), "runId");
    let runs = describe(env.settings.runs_table.clone()).await;
    assert_eq!(runs.key_schema()[0].attribute_name(), "id");
    assert!(
        runs.global_secondary_indexes()
            .iter()
            .any(|i| i.index_name() == Some("purge-index")),
        "the retention sweep's index"
    );
    let ttl = env
        .clients
        .dynamo
        .describe_time_to_live()
        .table_name(&env.settings.runs_table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expiresAt"));
    assert!(
        first.contains(&format!(
            "created ttl    {}/expiresAt",
            env.settings.runs_table
        )),
        "{first}"
    );
    let history = describe(env.settings.history_table.clone()).await;
    let keys: Vec<&str> = history
        .key_schema()
        .iter()
        .map(|k| k.attribute_name())
        .collect();
    assert_eq!(keys, ["stepId", "attemptCount"]);

    let url = env
        .clients
        .sqs
        .get_queue_url()
        .queue_name(&env.settings.queue_name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let attrs = env
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .unwrap();
    let redrive = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy))
        .cloned()
        .unwrap_or_default();
    assert!(
        redrive.contains(&env.settings.dead_letter_queue_name()),
        "{redrive}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_saga_runs_through_weft_dev_and_sqs_into_the_seed_tables() {
    let env = AwsEnv::provision(queue_options()).await;
    let (server, _dir) = dev(&env, &[]);
    let api = server.api();
    api.deploy_saga().await.unwrap();
    let run_id = api.start("order-saga", &saga_input("o-aws")).await.unwrap();
    let run = api.wait(&run_id, T).await.unwrap();
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"]["trackingNumber"], "trk-o-aws");

    // The raw items, as the seed's tables describe them.
    let dynamo = &env.clients.dynamo;
    let item = dynamo
        .get_item()
        .table_name(&env.settings.runs_table)
        .key("id", AttributeValue::S(run_id.clone()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(s(&item, "workflow"), "order-saga");
    assert_eq!(s(&item, "status"), "completed");
    assert_eq!(s(&item, "moduleDigest").len(), 64);
    let output: Value = serde_json::from_str(s(&item, "output")).unwrap();
    assert_eq!(output["chargeId"], "ch-o-aws");
    assert!(
        num(&item, "version") > 0 && num(&item, "createdAt") > 0 && num(&item, "updatedAt") > 0
    );
    assert!(
        !item.contains_key("leaseOwner"),
        "a finished run holds no lease"
    );
    assert!(
        !item.contains_key("quietShard") && !item.contains_key("quietKey"),
        "a finished run leaves the quiet index"
    );

    let steps = dynamo
        .query()
        .table_name(&env.settings.steps_table)
        .index_name("runId-index")
        .key_condition_expression("runId = :r")
        .expression_attribute_values(":r", AttributeValue::S(run_id.clone()))
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    let mut steps: Vec<_> = steps.iter().collect();
    steps.sort_by_key(|i| num(i, "seq"));
    let summary: Vec<(String, &str, &str, u64)> = steps
        .iter()
        .map(|i| {
            (
                s(i, "runStepKey").to_string(),
                s(i, "kind"),
                s(i, "status"),
                num(i, "attemptCount"),
            )
        })
        .collect();
    let key = |name: &str| format!("{run_id}#{name}");
    assert_eq!(
        summary,
        [
            (key("price"), "inline", "succeeded", 1),
            (key("reserve"), "rpc", "succeeded", 1),
            (key("charge"), "rpc", "succeeded", 2),
            (key("cool-off"), "sleep", "succeeded", 0),
            (key("ship"), "rpc", "succeeded", 1),
        ]
    );
    let charge = steps[2];
    assert_eq!(s(charge, "rpcName"), "order-rpc/charge-payment");
    assert_eq!(s(charge, "stepName"), "charge");
    assert!(
        charge
            .get("retryPolicy")
            .and_then(|r| r.as_m().ok())
            .is_some_and(|m| m.contains_key("maxAttempts"))
    );
    let result: Value = serde_json::from_str(s(charge, "result")).unwrap();
    assert_eq!(result["chargeId"], "ch-o-aws");

    let history = dynamo
        .query()
        .table_name(&env.settings.history_table)
        .key_condition_expression("stepId = :s")
        .expression_attribute_values(":s", AttributeValue::S(key("charge")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    let rows: Vec<(u64, &str)> = history
        .iter()
        .map(|h| (num(h, "attemptCount"), s(h, "status")))
        .collect();
    assert_eq!(rows, [(1, "failed"), (2, "succeeded")]);
    let first_error = history[0].get("error").and_then(|e| e.as_m().ok()).unwrap();
    assert_eq!(s(first_error, "code"), "card_processor_unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_fifty_concurrent_runs() {
    let env = AwsEnv::provision(queue_options()).await;
    let (a, _da) = dev(&env, &[]);
    let (b, _db) = dev(&env, &[]);
    let api = a.api();
    api.deploy_saga().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..50 {
        let mut input = saga_input(&format!("o-{i}"));
        input["coolOffMs"] = json!(100);
        ids.push(api.start("order-saga", &input).await.unwrap());
    }
    let other = b.api();
    for (i, id) in ids.iter().enumerate() {
        let run = other.wait(id, T).await.unwrap();
        assert_eq!(run["status"], "completed", "{run}");
        assert_eq!(run["output"]["trackingNumber"], format!("trk-o-{i}"));
        assert_single_outcomes(&other, id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_step_is_taken_over_after_its_lease_expires() {
    let env = AwsEnv::provision(queue_options()).await;
    let fast_leases = [
        ("WEFT_RPC_TIMEOUT_SECS", "3"),
        ("WEFT_ACTIVATION_TIMEOUT_SECS", "5"),
    ];
    let (mut first, _d1) = dev(&env, &fast_leases);
    let api = first.api();
    api.deploy_saga().await.unwrap();
    let mut input = saga_input("o-killed");
    input["slowMs"] = json!(1_500);
    input["paymentFailures"] = json!(0);
    let id = api.start("order-saga", &input).await.unwrap();
    api.wait_for_steps(&id, T, |steps| {
        steps
            .iter()
            .any(|s| s["name"] == "reserve" && s["status"] == "running")
    })
    .await
    .unwrap();
    first.kill();

    let (second, _d2) = dev(&env, &fast_leases);
    let api = second.api();
    let run = api.wait(&id, T).await.unwrap();
    assert_eq!(run["status"], "completed", "{run}");
    assert_single_outcomes(&api, &id).await;
    let (_, steps) = api.get(&format!("/v1/runs/{id}/steps")).await.unwrap();
    let reserve = steps["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "reserve")
        .unwrap()
        .clone();
    assert_eq!(reserve["attempts"], 2, "{reserve}");
    assert_eq!(
        reserve["history"][0]["error"]["code"], "worker_lost",
        "{reserve}"
    );
}
