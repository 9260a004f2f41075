//! AWS requests per workflow step, by operation, for the saga and for a
//! 100-step workflow (inline steps, and RPC steps), with RPCs executed
//! through SQS (queued) and inside the activation (inline).
//!
//! Runs against moto (`make bench-aws` starts it). Requests are counted by
//! an SDK interceptor on the service's own clients; the benchmark's polling
//! for completion uses separate, uncounted clients.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use weft::backend::StateStore;
use weft::backend::aws::AwsClients;
use weft::backend::aws::dynamo::DynamoStore;
use weft::backend::aws::init::QueueOptions;
use weft::config::RpcMode;
use weft::model::{RunId, RunStatus};
use weft::service::worker::WorkerOptions;
use weft_tests::aws::{AwsEnv, credentials};
use weft_tests::{Service, example, saga_input, test_guest};

struct Row {
    workload: &'static str,
    mode: &'static str,
    steps: u64,
    counts: BTreeMap<String, u64>,
}

fn group(counts: &BTreeMap<String, u64>, ops: &[&str]) -> u64 {
    counts
        .iter()
        .filter(|(k, _)| ops.iter().any(|op| k.ends_with(op)))
        .map(|(_, v)| v)
        .sum()
}

async fn wait(observer: &DynamoStore, id: &RunId) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let run = observer.get_run(id).await.unwrap().unwrap();
        if run.status.is_terminal() {
            assert_eq!(run.status, RunStatus::Completed, "{run:?}");
            return;
        }
        assert!(Instant::now() < deadline, "run {id} did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let env = AwsEnv::provision(QueueOptions::default()).await;
    let observer_clients = AwsClients::connect(&env.settings, Some(credentials())).await;
    let observer = DynamoStore::new(observer_clients.dynamo.clone(), &env.settings);
    let counter = env.clients.counter.clone();
    let mut rows = Vec::new();
    for (mode, mode_name) in [(RpcMode::Queued, "queued"), (RpcMode::Inline, "inline")] {
        let backend = env.backend(Duration::from_secs(60), 5).await;
        let mut s = Service::on(backend, mode, |_, _| {});
        for (name, path) in [
            ("order-saga", example("order-saga")),
            ("order-rpc", example("order-rpc")),
            ("counter", test_guest("counter")),
            ("counter-rpc", test_guest("counter-rpc")),
        ] {
            s.deploy(name, &path).await;
        }
        // The production worker configuration: 20 s long polls, rare
        // dead-letter checks, no sweeps during the measurement.
        s.start_worker_with(WorkerOptions {
            receive_wait: Duration::from_secs(20),
            dead_letter_interval: Duration::from_secs(3600),
            sweep_interval: Duration::from_secs(3600),
            ..WorkerOptions::default()
        });
        let mut saga = saga_input("o-bench");
        saga["paymentFailures"] = serde_json::json!(0);
        saga["coolOffMs"] = serde_json::json!(0);
        let workloads = [
            ("order saga", saga, 5),
            (
                "100 inline steps",
                serde_json::json!({"n": 100, "mode": "inline"}),
                100,
            ),
            (
                "100 RPC steps",
                serde_json::json!({"n": 100, "mode": "rpc"}),
                100,
            ),
        ];
        for (workload, input, steps) in workloads {
            let workflow = if workload == "order saga" {
                "order-saga"
            } else {
                "counter"
            };
            // Warm the module caches first: cold loads are not per-step costs.
            let warm = s.svc.start_run(workflow, &input.to_string()).await.unwrap();
            wait(&observer, &warm).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            counter.reset();
            let id = s.svc.start_run(workflow, &input.to_string()).await.unwrap();
            wait(&observer, &id).await;
            // Let the last acknowledgements land.
            tokio::time::sleep(Duration::from_millis(500)).await;
            rows.push(Row {
                workload,
                mode: mode_name,
                steps,
                counts: counter.snapshot(),
            });
        }
    }

    println!(
        "\n{:<18} {:<7} {:>5} | {:>8} {:>8} | {:>6} {:>8} {:>7} | {:>6} {:>9}",
        "workload",
        "RPCs",
        "steps",
        "DDB read",
        "DDB wrt",
        "send",
        "receive",
        "delete",
        "total",
        "per step",
    );
    for r in &rows {
        let reads = group(&r.counts, &["GetItem", "BatchGetItem", "Query", "Scan"]);
        let writes = group(
            &r.counts,
            &[
                "PutItem",
                "UpdateItem",
                "TransactWriteItems",
                "BatchWriteItem",
            ],
        );
        let sends = group(&r.counts, &["SendMessage"]);
        let receives = group(&r.counts, &["ReceiveMessage"]);
        let deletes = group(&r.counts, &["DeleteMessage", "ChangeMessageVisibility"]);
        let total: u64 = r.counts.values().sum();
        println!(
            "{:<18} {:<7} {:>5} | {:>8} {:>8} | {:>6} {:>8} {:>7} | {:>6} {:>9.2}",
            r.workload,
            r.mode,
            r.steps,
            reads,
            writes,
            sends,
            receives,
            deletes,
            total,
            total as f64 / r.steps as f64,
        );
    }
    println!("\nby operation:");
    for r in &rows {
        println!("  {} / {}: {:?}", r.workload, r.mode, r.counts);
    }
    run_item_size_by_length();
}

/// What one step's run update writes as the run grows: the run item's
/// size with N step names of 40 bytes (DynamoDB bills an update by the
/// item's size, 1 KB per write unit). The journal is chunked, so this
/// stays flat; before, it grew by ~43 bytes a step.
fn run_item_size_by_length() {
    use weft::backend::aws::dynamo::items::{item_size, run_item};
    println!("\nrun item written per step (40-byte step names):");
    for steps in [10, 100, 1_000, 5_000, 10_000] {
        let mut run = weft_tests::conformance::run_record("bench");
        run.step_names = (0..steps)
            .map(|i| format!("{i:0>40}"))
            .collect::<Vec<_>>()
            .into();
        println!("  step {steps:>6}: {:>6} bytes", item_size(&run_item(&run)));
    }
}
