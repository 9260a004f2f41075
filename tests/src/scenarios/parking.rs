//! Scenarios for parked guests: a queued run continues its suspended guest
//! in memory instead of replaying its journal, writes the journal a replay
//! writes, and survives its guests being let go at any moment.

use super::{T, output};
use crate::conformance::Backend;
use crate::{Service, test_guest};
use serde_json::json;
use weft::config::RpcMode;
use weft::model::{RunId, RunStatus, StepKind, StepStatus};

/// A service running the queued `counter` workflow on one worker, with
/// `tune` applied to its settings.
async fn counter_service(b: Backend, tune: impl Fn(&mut weft::service::Settings)) -> Service {
    let mut s = Service::on(b, RpcMode::Queued, |settings, _| tune(settings));
    s.deploy("counter", &test_guest("counter")).await;
    s.deploy("counter-rpc", &test_guest("counter-rpc")).await;
    s.start_worker();
    s
}

/// Checks that run `id` counted to `n` through `n` RPC steps, each
/// recorded once with its result, in order.
async fn counted(s: &Service, id: &RunId, n: u64) {
    let run = s.wait(id, T).await;
    assert_eq!(output(&run), json!({ "x": n }), "{run:?}");
    let steps = s.svc.steps(id).await.unwrap();
    let journal: Vec<(String, StepKind, StepStatus, Option<String>)> = steps
        .into_iter()
        .map(|v| (v.step.name, v.step.kind, v.step.status, v.step.result))
        .collect();
    let expected: Vec<_> = (0..n)
        .map(|i| {
            let name = if i == 0 {
                "inc".to_string()
            } else {
                format!("inc#{}", i + 1)
            };
            let result = Some((i + 1).to_string());
            (name, StepKind::Rpc, StepStatus::Succeeded, result)
        })
        .collect();
    assert_eq!(journal, expected);
}

/// One worker handles a queued run of 40 RPC steps: after the first
/// activation, each resume continues the parked guest, replaying nothing,
/// and the journal is the one a replay after every step writes.
pub async fn queued_runs_continue_parked_guests(b: Backend) {
    const N: u64 = 40;
    let s = counter_service(b.clone(), |_| {}).await;
    let input = json!({ "n": N, "mode": "rpc" }).to_string();
    let id = s.svc.start_run("counter", &input).await.unwrap();
    counted(&s, &id, N).await;
    let stats = s.svc.stats();
    assert!(
        stats.parked_resumes >= N - 1,
        "every resume but the first continues the parked guest: {stats:?}"
    );
    // Each leg is handed the outcome it waited for from the journal; a
    // replay from the top would take N (N - 1) / 2 in all.
    assert!(
        stats.replayed_steps <= N,
        "only the awaited outcome is replayed, once per resume: {stats:?}"
    );

    drop(s);
    let replaying = counter_service(b, |settings| settings.replay_every_step = true).await;
    let id = replaying.svc.start_run("counter", &input).await.unwrap();
    counted(&replaying, &id, N).await;
    assert_eq!(replaying.svc.stats().parked_resumes, 0);
}

/// With room for one parked guest, four runs at once keep letting each
/// other's guests go: every run still ends with the right journal, its
/// resumes continuing a parked guest where one is left and replaying
/// where not.
pub async fn evicted_guests_replay_from_the_journal(b: Backend) {
    const N: u64 = 15;
    let s = counter_service(b, |settings| settings.parking.max_runs = 1).await;
    let input = json!({ "n": N, "mode": "rpc" }).to_string();
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(s.svc.start_run("counter", &input).await.unwrap());
    }
    for id in &ids {
        counted(&s, id, N).await;
    }
    // Guests that always went on would replay one entry per resume,
    // N per run; a guest let go costs a replay of its journal.
    let stats = s.svc.stats();
    assert!(
        stats.replayed_steps > 4 * N,
        "some resumes found their guest let go and replayed: {stats:?}"
    );
    assert!(stats.parked_resumes > 0, "{stats:?}");
}

/// Two services on one backend take turns with runs: a guest one of them
/// parked is stale once the other moved its run, and is let go; every run
/// ends with the journal of one execution.
pub async fn runs_that_move_between_processes_end_right(b: Backend) {
    const N: u64 = 12;
    let first = counter_service(b.clone(), |_| {}).await;
    let second = counter_service(b, |_| {}).await;
    let input = json!({ "n": N, "mode": "rpc" }).to_string();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(first.svc.start_run("counter", &input).await.unwrap());
    }
    for id in &ids {
        counted(&first, id, N).await;
    }
    let run = first.svc.get_run(&ids[0]).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    let (a, b) = (first.svc.stats(), second.svc.stats());
    assert!(
        a.activations > 0 && b.activations > 0,
        "both services took part: {a:?} {b:?}"
    );
}

/// An inline step whose retry is due later suspends the run from inside
/// the step's completion: the parked guest, woken when the retry is due,
/// runs the step's body again as a replay would, and the step is recorded
/// once, with every attempt in its history.
pub async fn a_parked_inline_step_retries_its_body(b: Backend) {
    let mut s = Service::on(b, RpcMode::Inline, |settings, _| {
        settings.inline_retry_max_wait = std::time::Duration::ZERO;
    });
    s.deploy("hostile", &test_guest("hostile")).await;
    s.start_worker();
    let run = s
        .run("hostile", &json!({"mode": "flaky-step", "n": 2}), T)
        .await;
    assert_eq!(
        output(&run),
        json!(3),
        "the third attempt succeeded: {run:?}"
    );
    let steps = s.svc.steps(&run.id).await.unwrap();
    let statuses: Vec<_> = steps[0].attempts.iter().map(|a| a.status).collect();
    use StepStatus::{Failed, Succeeded};
    assert_eq!(statuses, [Failed, Failed, Succeeded]);
    assert_eq!(steps.len(), 1);
    let stats = s.svc.stats();
    assert!(stats.parked_resumes >= 2, "{stats:?}");
}

/// With parking off, every resume replays; the journal entries this
/// process read before (an outcome never changes) are kept, so each replay
/// reads only what it has not seen: O(N) entries for the run, not
/// N (N - 1) / 2.
pub async fn a_replay_reads_only_the_entries_it_has_not_kept(b: Backend) {
    const N: u64 = 30;
    let counting = std::sync::Arc::new(super::FlakyStore::over(b.state.clone()));
    let b = Backend {
        state: counting.clone(),
        ..b
    };
    let s = counter_service(b, |settings| settings.parking.max_runs = 0).await;
    let input = json!({ "n": N, "mode": "rpc" }).to_string();
    let id = s.svc.start_run("counter", &input).await.unwrap();
    counted(&s, &id, N).await;
    let stats = s.svc.stats();
    assert!(stats.replayed_steps >= N * (N - 1) / 2, "{stats:?}");
    let read = counting
        .steps_read
        .load(std::sync::atomic::Ordering::SeqCst);
    // Each step is read when it is new to a replay and once more by the
    // listing above.
    assert!(read <= 3 * N, "{read} journal entries read for {N} steps");
}
