//! Hot paths of the engine (criterion):
//! - `replay`: an activation replaying N recorded inline steps (the cost per
//!   recorded step is the slope between N = 100 and N = 1000);
//! - `instantiate`: a fresh store plus instantiation from a cached `InstancePre`;
//! - `cold_load`: loading a component from its verified precompiled artifact
//!   in a fresh loader (what a new process or Lambda container pays), next to
//!   compiling it from its bytes.
//!
//! Run with `make bench` (it builds the guests first).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use weft::backend::ModuleStore;
use weft::backend::sqlite::{EmbeddedOptions, SqliteBackend};
use weft::config::Limits;
use weft::config::RpcMode;
use weft::engine::WeftEngine;
use weft::model::{Digest, RunId};
use weft::registry::loader::ComponentLoader;
use weft::replay::{self, ActivationEnd, ActivationInput};
use weft_tests::recorded::RecordedOnly;
use weft_tests::{Service, bytes, example, test_guest};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn replay(c: &mut Criterion) {
    let rt = runtime();
    let _context = rt.enter();
    let e = Service::start(RpcMode::Inline, |_, limits| {
        limits.max_steps_per_run = 100_000
    });
    rt.block_on(e.deploy("steps", &test_guest("hostile")));
    let mut group = c.benchmark_group("replay");
    group.measurement_time(Duration::from_secs(8));
    for n in [10u64, 100, 1000] {
        let input = json!({"mode": "many-steps", "n": n}).to_string();
        let (run, journal) = rt.block_on(async {
            let run = e
                .run(
                    "steps",
                    &serde_json::from_str(&input).unwrap(),
                    Duration::from_secs(120),
                )
                .await;
            let journal = e
                .svc
                .state()
                .get_steps(&run.id, &run.step_names)
                .await
                .unwrap();
            (run, journal)
        });
        assert_eq!(journal.len() as u64, n);
        let pre = rt
            .block_on(e.svc.registry().workflow(&run.module_digest))
            .unwrap();
        let limits = e.svc.limits().clone();
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::new("recorded_inline_steps", n), &n, |b, _| {
            b.to_async(&rt).iter(|| async {
                let input = ActivationInput {
                    run_id: run.id.clone(),
                    input: input.clone(),
                    started_at: run.created_at,
                    journal: journal.clone(),
                    ends_by: None,
                    parking: None,
                };
                let report =
                    replay::activate(&pre, &limits, input, Box::new(RecordedOnly::default()))
                        .await
                        .unwrap();
                assert!(
                    matches!(report.outcome, ActivationEnd::Completed(_)),
                    "{:?}",
                    report.outcome
                );
                assert_eq!(report.replayed_steps as u64, n);
            })
        });
    }
    group.finish();
}

fn instantiate(c: &mut Criterion) {
    let rt = runtime();
    let _context = rt.enter();
    let e = Service::start(RpcMode::Inline, |_, _| {});
    let mut group = c.benchmark_group("instantiate");
    for name in ["hello", "order-saga"] {
        rt.block_on(e.deploy(name, &example(name)));
        let digest = Digest::of(&bytes(&example(name)));
        let pre = rt.block_on(e.svc.registry().workflow(&digest)).unwrap();
        let limits = e.svc.limits().clone();
        let run_id = RunId::generate();
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                replay::instantiate_only(&pre, &limits, &run_id, Box::new(RecordedOnly::default()))
                    .await
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn cold_load(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(SqliteBackend::open(dir.path(), EmbeddedOptions::default()).unwrap());
    let modules: Arc<dyn ModuleStore> = db;
    let engine = WeftEngine::new(Limits::default()).unwrap();
    let loader = || {
        ComponentLoader::new(
            engine.engine.clone(),
            engine.engine_hash.clone(),
            Arc::clone(&modules),
            dir.path().join("cache"),
        )
    };
    let mut group = c.benchmark_group("cold_load");
    for name in [
        "hello",
        "order-saga",
        "order-rpc",
        "hello-js",
        "hello-py",
        "order-rpc-js",
        "order-rpc-py",
        "hello-c",
        "order-saga-c",
        "order-rpc-c",
    ] {
        let wasm = bytes(&example(name));
        let digest = Digest::of(&wasm);
        let compile_time = rt.block_on(async {
            modules.put_blob(&digest, &wasm).await.unwrap();
            let started = std::time::Instant::now();
            let compiled = loader().compile_fresh(&digest, wasm.clone()).await.unwrap();
            let took = started.elapsed();
            loader().store_artifact(&digest, &compiled).await.unwrap();
            took
        });
        eprintln!(
            "{name}: {} KB component, compiled once in {:.2} s",
            wasm.len() / 1024,
            compile_time.as_secs_f64()
        );
        group.bench_function(BenchmarkId::new("precompiled", name), |b| {
            b.to_async(&rt)
                .iter(|| async { loader().load_artifact(&digest).await.unwrap().unwrap() })
        });
        if name.ends_with("-js") || name.ends_with("-py") {
            continue; // compiling takes seconds: measured once above
        }
        group.sample_size(10);
        group.bench_function(BenchmarkId::new("compile", name), |b| {
            b.to_async(&rt)
                .iter(|| async { loader().compile_fresh(&digest, wasm.clone()).await.unwrap() })
        });
        group.sample_size(100);
    }
    group.finish();
}

criterion_group!(benches, replay, instantiate, cold_load);
criterion_main!(benches);
