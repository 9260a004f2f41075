//! What one queued RPC step costs as a run grows: the `counter` workflow in
//! RPC mode (N steps, each suspending the run until its RPC, executed by a
//! worker from the queue, comes back) at several N.
//!
//! - one worker, guests parked between activations (the default): each
//!   resume continues the guest in memory;
//! - one worker, parking off (`WEFT_PARK_MAX_RUNS=0`): each resume replays
//!   the journal from the top, what every resume cost before parking;
//! - two workers (two services on one backend) taking the run's messages
//!   as they come: a resume finds the guest parked in the other process
//!   about half the time, and replays.
//!
//! Per step: wall time, journal entries replayed, and on DynamoDB + SQS
//! (moto, when `WEFT_TEST_AWS_ENDPOINT` is set as `make bench-queued` does)
//! AWS requests (all, DynamoDB reads, DynamoDB writes; the rest are SQS)
//! and response bytes. Linear cost shows as flat figures.
//!
//! Run with `make bench-queued`. Not part of `make test`.
//! `QUEUED_SIZES` and `QUEUED_AWS_SIZES` (comma-separated N) override the
//! sizes.

use serde_json::json;
use std::time::{Duration, Instant};
use weft::backend::StateStore;
use weft::backend::aws::AwsClients;
use weft::backend::aws::RequestCounter;
use weft::backend::aws::dynamo::DynamoStore;
use weft::backend::aws::init::QueueOptions;
use weft::config::RpcMode;
use weft::model::{RunId, RunStatus};
use weft::service::worker::WorkerOptions;
use weft_tests::aws::{AwsEnv, credentials};
use weft_tests::conformance::Backend;
use weft_tests::{Service, test_guest};

/// How a configuration handles the run.
#[derive(Clone, Copy, PartialEq)]
enum Setup {
    Parked,
    Replayed,
    TwoWorkers,
}

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::Parked => "1 worker, parked",
            Setup::Replayed => "1 worker, replayed",
            Setup::TwoWorkers => "2 workers, parked",
        }
    }
}

async fn service(b: Backend, setup: Setup) -> Service {
    let tune = move |settings: &mut weft::service::Settings, limits: &mut weft::config::Limits| {
        limits.max_steps_per_run = 100_000;
        if setup == Setup::Replayed {
            settings.parking.max_runs = 0;
        }
    };
    let mut s = Service::on(b, RpcMode::Queued, tune);
    s.deploy("counter", &test_guest("counter")).await;
    s.deploy("counter-rpc", &test_guest("counter-rpc")).await;
    // The production worker: 20 s long polls (an idle poll is a request),
    // no dead-letter checks or sweeps during the measurement.
    s.start_worker_with(WorkerOptions {
        receive_wait: Duration::from_secs(20),
        dead_letter_interval: Duration::from_secs(3600),
        sweep_interval: Duration::from_secs(3600),
        ..WorkerOptions::default()
    });
    s
}

/// The services of `setup` on backend `b`.
async fn services(b: Backend, setup: Setup) -> Vec<Service> {
    let mut out = vec![service(b.clone(), setup).await];
    if setup == Setup::TwoWorkers {
        out.push(service(b, setup).await);
    }
    out
}

/// One row: a run of N steps, measured.
struct Row {
    steps: u64,
    wall: Duration,
    replayed: u64,
    parked_resumes: u64,
    requests: u64,
    reads: u64,
    writes: u64,
    bytes: u64,
}

/// Requests of `counts` whose operation ends with one of `ops`.
fn group(counts: &std::collections::BTreeMap<String, u64>, ops: &[&str]) -> u64 {
    counts
        .iter()
        .filter(|(k, _)| ops.iter().any(|op| k.ends_with(op)))
        .map(|(_, v)| v)
        .sum()
}

impl Row {
    fn print(&self, aws: bool) {
        let per = |x: u64| x as f64 / self.steps as f64;
        let mut line = format!(
            "  {:>6} | {:>9.2} | {:>9.1} {:>8.2}",
            self.steps,
            self.wall.as_secs_f64() * 1000.0 / self.steps as f64,
            per(self.replayed),
            per(self.parked_resumes),
        );
        if aws {
            line.push_str(&format!(
                " | {:>8.2} {:>6.2} {:>6.2} {:>8.2}",
                per(self.requests),
                per(self.reads),
                per(self.writes),
                per(self.bytes) / 1024.0
            ));
        }
        println!("{line}");
    }
}

/// Runs `counter` for `n` RPC steps on `services` (started on the first),
/// waiting through `observe` (a store whose reads are not counted).
async fn measure(
    services: &[Service],
    observe: &dyn StateStore,
    counter: Option<&RequestCounter>,
    n: u64,
) -> Row {
    let stats = |services: &[Service]| {
        services.iter().fold((0, 0), |(r, p), s| {
            let st = s.svc.stats();
            (r + st.replayed_steps, p + st.parked_resumes)
        })
    };
    let (replayed_before, parked_before) = stats(services);
    if let Some(c) = counter {
        c.reset();
    }
    let input = json!({ "n": n, "mode": "rpc" }).to_string();
    let started = Instant::now();
    let id = services[0].svc.start_run("counter", &input).await.unwrap();
    wait(observe, &id, n).await;
    let wall = started.elapsed();
    // Let the last acknowledgements land.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (replayed, parked) = stats(services);
    let counts = counter.map(|c| c.snapshot()).unwrap_or_default();
    Row {
        steps: n,
        wall,
        replayed: replayed - replayed_before,
        parked_resumes: parked - parked_before,
        requests: counts.values().sum(),
        reads: group(&counts, &["GetItem", "BatchGetItem", "Query"]),
        writes: group(
            &counts,
            &[
                "PutItem",
                "UpdateItem",
                "TransactWriteItems",
                "BatchWriteItem",
            ],
        ),
        bytes: counter.map_or(0, |c| c.bytes().values().sum()),
    }
}

async fn wait(observe: &dyn StateStore, id: &RunId, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let run = observe.get_run(id).await.unwrap().unwrap();
        if run.status.is_terminal() {
            assert_eq!(run.status, RunStatus::Completed, "{run:?}");
            assert_eq!(run.output, Some(json!({ "x": n }).to_string()));
            return;
        }
        assert!(Instant::now() < deadline, "run {id} did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sizes(var: &str, default: &[u64]) -> Vec<u64> {
    match std::env::var(var) {
        Ok(v) => v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
        Err(_) => default.to_vec(),
    }
}

fn header(aws: bool) {
    let mut line = format!(
        "  {:>6} | {:>9} | {:>9} {:>8}",
        "N", "ms/step", "replayed", "parked"
    );
    if aws {
        line.push_str(&format!(
            " | {:>8} {:>6} {:>6} {:>8}",
            "requests", "reads", "writes", "KB read"
        ));
    }
    println!("{line}\n  (per step)");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let embedded = sizes("QUEUED_SIZES", &[25, 100, 400, 1_000, 10_000]);
    for setup in [Setup::Parked, Setup::Replayed, Setup::TwoWorkers] {
        println!("\nembedded backend, {}:", setup.name());
        header(false);
        for &n in &embedded {
            // Replaying 10,000 steps from the top at each of 10,000 resumes
            // (or most of them, with two workers) is the quadratic cost
            // parking removes: skip it.
            if setup != Setup::Parked && n > 1_000 {
                continue;
            }
            let b = weft_tests::sqlite_backend().await;
            let services = services(b.clone(), setup).await;
            measure(&services, b.state.as_ref(), None, 3).await; // warm caches
            measure(&services, b.state.as_ref(), None, n)
                .await
                .print(false);
        }
    }

    if std::env::var("WEFT_TEST_AWS_ENDPOINT").is_err() {
        println!("\nWEFT_TEST_AWS_ENDPOINT is not set: skipping DynamoDB + SQS");
        return;
    }
    let aws_sizes = sizes("QUEUED_AWS_SIZES", &[25, 100, 400, 1_000]);
    for setup in [Setup::Parked, Setup::Replayed, Setup::TwoWorkers] {
        println!("\nDynamoDB + SQS (moto), {}:", setup.name());
        header(true);
        for &n in &aws_sizes {
            if setup != Setup::Parked && n > 400 {
                continue;
            }
            let env = AwsEnv::provision(QueueOptions::default()).await;
            let observer_clients = AwsClients::connect(&env.settings, Some(credentials())).await;
            let observer = DynamoStore::new(observer_clients.dynamo.clone(), &env.settings);
            let b = env.backend(Duration::from_secs(60), 5).await;
            let services = services(b, setup).await;
            measure(&services, &observer, None, 3).await; // warm caches
            measure(&services, &observer, Some(&env.clients.counter), n)
                .await
                .print(true);
        }
    }
}
