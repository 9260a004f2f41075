//! Weft's side of `make bench`: one workflow of N sequential trivial steps
//! (`tests/guests/rust/counter`: x → x + 1, each a recorded step), as inline
//! steps and as RPC steps to `counter-rpc`, on the embedded backend with
//! every step fsynced before the next starts, and in memory.
//!
//! Prints one JSON object per (durability, step kind, N) on stdout, in the
//! same shape as the peers' harnesses (`bench/peers/*/run`); `bench/report`
//! turns them into the table and chart.

use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weft::backend::Backends;
use weft::backend::sqlite::{Durability, EmbeddedOptions};
use weft::config::RpcMode;
use weft::model::RunStatus;
use weft::service::Weft;
use weft::service::worker::WorkerOptions;
use weft_tests::{Service, bytes, test_guest};

/// Durability configurations, as the table names them.
const DURABILITIES: [(&str, Durability); 2] = [
    ("fsync-per-step", Durability::Fsync),
    ("in-memory", Durability::Memory),
];

fn ns() -> Vec<u64> {
    std::env::var("BENCH_NS")
        .unwrap_or_else(|_| "1,10,100,1000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn quick() -> bool {
    std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1")
}

async fn one_run(svc: &Arc<Weft>, input: &str, n: u64) -> Duration {
    let started = Instant::now();
    let id = svc.start_run("counter", input).await.expect("start");
    let run = svc
        .wait_for(&id, Duration::from_secs(120))
        .await
        .expect("wait");
    let took = started.elapsed();
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    let output: serde_json::Value =
        serde_json::from_str(run.output.as_deref().unwrap_or("null")).unwrap();
    assert_eq!(output["x"], n, "the run computed the wrong value");
    took
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn service(dir: &std::path::Path, durability: Durability) -> Service {
    let backends = Backends::embedded(
        dir,
        EmbeddedOptions {
            durability,
            ..EmbeddedOptions::default()
        },
    )
    .expect("embedded backend");
    // As `weft dev` runs: new runs start in this process.
    let mut service = Service::with_backends(backends, RpcMode::Inline, |settings, _| {
        settings.start_locally = true;
    });
    service.start_worker_with(WorkerOptions {
        concurrency: 64,
        ..WorkerOptions::default()
    });
    service
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let concurrency = env_number("BENCH_CONCURRENCY", 50);
    let root = weft_tests::root().join("target/bench");
    std::fs::create_dir_all(&root).unwrap();
    let only = |var: &str, value: &str| std::env::var(var).map_or(true, |v| v == value);
    for (label, durability) in DURABILITIES {
        if !only("BENCH_DURABILITY", label) {
            continue;
        }
        // On the real disk (not a tmpfs), so fsync means what it says.
        let dir = tempfile::tempdir_in(&root).unwrap();
        let s = service(dir.path(), durability);
        s.svc
            .deploy("counter", bytes(&test_guest("counter")))
            .await
            .unwrap();
        s.svc
            .deploy("counter-rpc", bytes(&test_guest("counter-rpc")))
            .await
            .unwrap();
        for mode in ["inline", "rpc"] {
            if !only("BENCH_STEPS", mode) {
                continue;
            }
            for n in ns() {
                let input = json!({"n": n, "mode": mode}).to_string();
                for _ in 0..3 {
                    one_run(&s.svc, &input, n).await;
                }
                // Sequential: as many runs as fit in ~4 s (at least 10).
                let budget = Duration::from_secs(if quick() { 1 } else { 4 });
                let mut latencies = Vec::new();
                let began = Instant::now();
                while latencies.len() < 10 || (began.elapsed() < budget && latencies.len() < 2000) {
                    latencies.push(one_run(&s.svc, &input, n).await);
                }
                latencies.sort();
                // Concurrent: `concurrency` runs in flight for ~4 s.
                let total = {
                    let per_run = latencies[latencies.len() / 2].as_secs_f64();
                    let guess =
                        (budget.as_secs_f64() * concurrency as f64 / per_run / 4.0) as usize;
                    guess.clamp(concurrency * 2, 20_000)
                };
                let began = Instant::now();
                let gate = Arc::new(tokio::sync::Semaphore::new(concurrency));
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..total {
                    let permit = Arc::clone(&gate).acquire_owned().await.unwrap();
                    let svc = Arc::clone(&s.svc);
                    let input = input.clone();
                    tasks.spawn(async move {
                        one_run(&svc, &input, n).await;
                        drop(permit);
                    });
                }
                while let Some(done) = tasks.join_next().await {
                    done.expect("a concurrent run failed");
                }
                let runs_per_s = total as f64 / began.elapsed().as_secs_f64();
                println!(
                    "{}",
                    json!({
                        "engine": "weft",
                        "durability": label,
                        "steps": mode,
                        "n": n,
                        "seq_runs": latencies.len(),
                        "median_ms": percentile(&latencies, 0.5),
                        "p90_ms": percentile(&latencies, 0.9),
                        "concurrency": concurrency,
                        "conc_runs": total,
                        "runs_per_s": runs_per_s,
                        "steps_per_s": runs_per_s * n as f64,
                        "version": env!("CARGO_PKG_VERSION"),
                    })
                );
            }
        }
    }
}
