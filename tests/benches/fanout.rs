//! Fan-out cost: one run starting N queued RPC members and joining them
//! all (`join_all`), on the embedded backend and on DynamoDB + SQS (moto).
//!
//! - wall time of 100 members taking 200 ms each, by worker concurrency:
//!   what the issue compares with 100 × 200 ms run one after another;
//! - activations and replayed journal entries per member at N = 10, 100,
//!   1000 (members answering at once): linear cost shows as flat figures;
//! - on moto, AWS requests per member by operation (`WEFT_TEST_AWS_ENDPOINT`
//!   set, as `make bench-fanout` does; skipped otherwise).
//!
//! Run with `make bench-fanout`. Not part of `make test`.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use weft::backend::aws::init::QueueOptions;
use weft::config::RpcMode;
use weft::model::RunStatus;
use weft::service::worker::WorkerOptions;
use weft_tests::aws::AwsEnv;
use weft_tests::conformance::Backend;
use weft_tests::{Service, test_guest};

const T: Duration = Duration::from_secs(1800);

fn members(n: usize, ms: u64) -> Value {
    json!({ "all": (0..n).map(|_| json!({ "ms": ms })).collect::<Vec<_>>() })
}

async fn service(backend: Option<Backend>, concurrency: usize) -> Service {
    let tune = |_: &mut weft::service::Settings, limits: &mut weft::config::Limits| {
        limits.max_steps_per_run = 100_000;
    };
    let mut s = match backend {
        Some(b) => Service::on(b, RpcMode::Queued, tune),
        None => Service::without_worker(RpcMode::Queued, tune),
    };
    s.deploy("fanout", &test_guest("fanout")).await;
    s.deploy("fanout-rpc", &test_guest("fanout-rpc")).await;
    s.start_worker_with(WorkerOptions {
        concurrency,
        receive_wait: Duration::from_millis(500),
        dead_letter_interval: Duration::from_secs(3600),
        sweep_interval: Duration::from_secs(3600),
    });
    s
}

/// Runs the fan-out and returns its wall time, with the service's
/// activation counters for that run alone.
async fn measure(s: &Service, input: &Value) -> (Duration, u64, u64) {
    let before = s.svc.stats();
    let started = Instant::now();
    let run = s.run("fanout", input, T).await;
    let elapsed = started.elapsed();
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    let after = s.svc.stats();
    (
        elapsed,
        after.activations - before.activations,
        after.replayed_steps - before.replayed_steps,
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("100 members of 200 ms each, embedded backend (sequential: 20 s):");
    for concurrency in [16, 32, 64] {
        let s = service(None, concurrency).await;
        measure(&s, &members(2, 0)).await; // warm the module caches
        let (wall, activations, _) = measure(&s, &members(100, 200)).await;
        println!(
            "  worker concurrency {concurrency:>3}: {:>6.2} s, {activations} activations",
            wall.as_secs_f64()
        );
    }

    println!("\nN members answering at once, embedded backend, concurrency 16:");
    println!(
        "  {:>5} | {:>8} {:>10} | {:>11} {:>12} | {:>9}",
        "N", "wall s", "per member", "activations", "replayed/N", "ms/member"
    );
    let s = service(None, 16).await;
    measure(&s, &members(2, 0)).await;
    for n in [10usize, 100, 1000] {
        let (wall, activations, replayed) = measure(&s, &members(n, 0)).await;
        println!(
            "  {n:>5} | {:>8.2} {:>10.3} | {activations:>11} {:>12.2} | {:>9.2}",
            wall.as_secs_f64(),
            activations as f64 / n as f64,
            replayed as f64 / n as f64,
            wall.as_secs_f64() * 1000.0 / n as f64,
        );
    }

    if std::env::var("WEFT_TEST_AWS_ENDPOINT").is_err() {
        println!(
            "\n(WEFT_TEST_AWS_ENDPOINT unset: the DynamoDB figures need moto; `make bench-fanout` starts it)"
        );
        return;
    }
    println!("\nN members answering at once, DynamoDB + SQS on moto, concurrency 16:");
    println!(
        "  {:>5} | {:>8} | {:>11} {:>12} | {:>9} | by operation, per member",
        "N", "wall s", "activations", "replayed/N", "req/member"
    );
    let env = AwsEnv::provision(QueueOptions::default()).await;
    let counter = env.clients.counter.clone();
    let s = service(Some(env.backend(Duration::from_secs(60), 5).await), 16).await;
    measure(&s, &members(2, 0)).await;
    let sizes: Vec<usize> = std::env::var("FANOUT_AWS_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 100, 1000]);
    for n in sizes {
        tokio::time::sleep(Duration::from_millis(500)).await;
        counter.reset();
        let (wall, activations, replayed) = measure(&s, &members(n, 0)).await;
        // Let the last acknowledgements land.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let counts: BTreeMap<String, u64> = counter.snapshot();
        let total: u64 = counts.values().sum();
        let per: Vec<String> = counts
            .iter()
            .map(|(op, c)| format!("{op} {:.2}", *c as f64 / n as f64))
            .collect();
        println!(
            "  {n:>5} | {:>8.2} | {activations:>11} {:>12.2} | {:>9.2} | {}",
            wall.as_secs_f64(),
            replayed as f64 / n as f64,
            total as f64 / n as f64,
            per.join(", ")
        );
    }
}
