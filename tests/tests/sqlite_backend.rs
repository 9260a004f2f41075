//! The conformance and scenario suites on the embedded SQLite backend,
//! durable (group commit, fsync per commit) and in memory.

fn provision()
-> std::pin::Pin<Box<dyn std::future::Future<Output = weft_tests::conformance::Backend> + Send>> {
    Box::pin(weft_tests::sqlite_backend())
}

mod conformance {
    use super::provision;
    weft_tests::conformance_suite!(provision);
}

mod scenarios {
    use super::provision;
    weft_tests::scenario_suite!(provision);
}

fn provision_in_memory()
-> std::pin::Pin<Box<dyn std::future::Future<Output = weft_tests::conformance::Backend> + Send>> {
    Box::pin(weft_tests::in_memory_backend())
}

mod in_memory_conformance {
    use super::provision_in_memory as provision;
    weft_tests::conformance_suite!(provision);
}

/// Group commit under contention: writes that land in one shared
/// transaction still commit or fail one by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits_but_not_their_fate() {
    use weft::backend::{RunWrite, StateWrite, StoreError};
    let b = weft_tests::sqlite_backend().await;
    let mut runs = Vec::new();
    for _ in 0..40 {
        let run = weft_tests::conformance::run_record("wf-group");
        b.state.create_run(&run).await.unwrap();
        runs.push(run);
    }
    // Every run written at once, half of them with a stale version.
    let writes = runs.iter().enumerate().map(|(i, run)| {
        let state = b.state.clone();
        let mut next = run.clone();
        next.output = Some(format!("{i}"));
        let expected_steps = run.step_names.len();
        let expected_version = if i % 2 == 0 {
            run.version
        } else {
            run.version + 7
        };
        tokio::spawn(async move {
            state
                .commit(StateWrite {
                    run: Some(RunWrite {
                        record: next,
                        expected_version,
                        expected_steps,
                    }),
                    ..Default::default()
                })
                .await
        })
    });
    let results = futures_join(writes.collect()).await;
    for (i, (run, result)) in runs.iter().zip(results).enumerate() {
        let stored = b.state.get_run(&run.id).await.unwrap().unwrap();
        if i % 2 == 0 {
            assert!(result.is_ok(), "write {i}: {result:?}");
            assert_eq!(stored.output.as_deref(), Some(format!("{i}").as_str()));
            assert_eq!(stored.version, run.version + 1);
        } else {
            assert!(
                matches!(result, Err(StoreError::Conflict(_))),
                "write {i}: {result:?}"
            );
            assert_eq!(stored.output, None);
            assert_eq!(stored.version, run.version);
        }
    }
}

async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
