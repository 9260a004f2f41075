//! One conformance suite for every backend of the `StateStore`,
//! `WorkQueue` and `ModuleStore` seams.
//!
//! Each case is an async function over a freshly provisioned [`Backend`];
//! [`conformance_suite!`](crate::conformance_suite) turns the whole list
//! into `#[tokio::test]`s for one backend, so adding a case here runs it
//! everywhere and no backend can skip one.

mod callbacks;
mod events;
mod retention;
mod schedules;
pub use callbacks::*;
pub use events::*;
pub use retention::*;
pub use schedules::*;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use weft::backend::WorkQueue;
use weft::backend::{BlobStore, ModuleStore};
use weft::backend::{
    RunCursor, RunQuery, RunWrite, StateStore, StateWrite, StepExpect, StepWrite, StoreError,
};
use weft::model::{
    AttemptRecord, Digest, Envelope, Lease, LogLine, ModuleKind, ModuleVersion, RunId, RunRecord,
    RunStatus, StepCall, StepKind, StepOptions, StepRecord, StepStatus, WorkMessage, now_millis,
};

/// One freshly provisioned backend (empty tables, empty queues).
#[derive(Clone)]
pub struct Backend {
    pub state: Arc<dyn StateStore>,
    pub queue: Arc<dyn WorkQueue>,
    pub modules: Arc<dyn ModuleStore>,
    /// Where the service stores large payloads aside.
    pub blobs: Arc<dyn BlobStore>,
    /// The queue's visibility timeout (short, for the redelivery cases).
    pub visibility: Duration,
    /// Receives after which the queue dead-letters a message.
    pub max_receives: u32,
}

/// Provisions a fresh backend for each case.
pub type Provision = fn() -> Pin<Box<dyn Future<Output = Backend> + Send>>;

pub fn run_record(workflow: &str) -> RunRecord {
    let now = now_millis();
    RunRecord {
        id: RunId::generate(),
        workflow: workflow.into(),
        module_digest: Digest::of(workflow.as_bytes()),
        status: RunStatus::Running,
        input: r#"{"n":1}"#.into(),
        output: None,
        error: None,
        created_at: now,
        updated_at: now,
        version: 0,
        lease: None,
        step_names: Default::default(),
        wake_at: None,
        deadline: None,
        awaiting: Vec::new(),
        parent: None,
        expires_at: None,
    }
}

pub(crate) fn step(run: &RunRecord, seq: u32, name: &str) -> StepRecord {
    let call = StepCall {
        kind: StepKind::Rpc,
        name: name.into(),
        rpc_name: Some("m/f".into()),
        input: Some(r#"{"x":1}"#.into()),
        options: StepOptions::default(),
    };
    StepRecord::new(&run.id, seq, &call, now_millis())
}

/// Appends `step` to the run's journal in one fenced write.
pub(crate) async fn append(
    state: &dyn StateStore,
    run: &mut RunRecord,
    step: &StepRecord,
) -> Result<(), StoreError> {
    let mut next = run.clone();
    next.step_names.push(step.name.clone());
    state
        .commit(StateWrite {
            run: Some(RunWrite::replacing(run, next.clone())),
            steps: vec![StepWrite {
                record: step.clone(),
                expect: StepExpect::Absent,
            }],
            ..Default::default()
        })
        .await?;
    next.version = run.version + 1;
    *run = next;
    Ok(())
}

pub(crate) fn is_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}

pub async fn runs_round_trip_and_ids_are_unique(b: Backend) {
    let run = run_record("wf-a");
    b.state.create_run(&run).await.unwrap();
    assert_eq!(b.state.get_run(&run.id).await.unwrap().as_ref(), Some(&run));
    assert!(
        is_conflict(b.state.create_run(&run).await),
        "a second create must conflict"
    );
    assert!(b.state.get_run(&RunId::generate()).await.unwrap().is_none());
}

pub async fn leases_exclude_other_owners_until_they_expire(b: Backend) {
    let run = run_record("wf-lease");
    b.state.create_run(&run).await.unwrap();
    let now = now_millis();
    let held = b
        .state
        .acquire_run_lease(&run.id, "w1", now, 60_000)
        .await
        .unwrap();
    assert_eq!(
        held.version,
        run.version + 1,
        "taking a lease bumps the version (the fence)"
    );
    assert_eq!(held.lease.as_ref().map(|l| l.owner.as_str()), Some("w1"));
    assert!(is_conflict(
        b.state.acquire_run_lease(&run.id, "w2", now, 60_000).await
    ));
    assert!(
        is_conflict(b.state.acquire_run_lease(&run.id, "w1", now, 60_000).await),
        "a live lease is exclusive, even for its owner"
    );
    let again = held;
    // After expiry anyone may take it, and the old holder's fence is stale.
    let later = now + 61_000;
    let stolen = b
        .state
        .acquire_run_lease(&run.id, "w2", later, 60_000)
        .await
        .unwrap();
    assert_eq!(stolen.lease.as_ref().map(|l| l.owner.as_str()), Some("w2"));
    let mut late = again.clone();
    late.status = RunStatus::Completed;
    let write = StateWrite {
        run: Some(RunWrite::replacing(&again, late)),
        ..Default::default()
    };
    assert!(
        is_conflict(b.state.commit(write).await),
        "a fenced-out writer must lose"
    );
    let unknown = b
        .state
        .acquire_run_lease(&RunId::generate(), "w1", now, 1)
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
}

pub async fn a_runs_pinned_fields_never_change(b: Backend) {
    let run = run_record("wf-pinned");
    b.state.create_run(&run).await.unwrap();
    let mut rewritten = run.clone();
    rewritten.module_digest = Digest::of(b"another module");
    rewritten.workflow = "another".into();
    rewritten.input = "2".into();
    rewritten.created_at = 1;
    b.state
        .commit(StateWrite {
            run: Some(RunWrite::replacing(&run, rewritten)),
            ..Default::default()
        })
        .await
        .unwrap();
    let stored = b.state.get_run(&run.id).await.unwrap().unwrap();
    assert_eq!(
        (
            &stored.module_digest,
            &stored.workflow,
            &stored.input,
            stored.created_at
        ),
        (
            &run.module_digest,
            &run.workflow,
            &run.input,
            run.created_at
        ),
        "a run stays pinned to the module it started with"
    );
}

/// Only an upgrade moves a run's module: at the version it was checked at,
/// and while it runs. A stale version or a finished run is a conflict, and
/// nothing else about the run changes.
pub async fn an_upgrade_moves_a_running_run_at_its_checked_version_only(b: Backend) {
    let run = run_record("wf-upgraded");
    b.state.create_run(&run).await.unwrap();
    let v2 = Digest::of(b"version 2");
    let stale = b.state.repin_run(&run.id, run.version + 1, &v2).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    b.state.repin_run(&run.id, run.version, &v2).await.unwrap();
    let moved = b.state.get_run(&run.id).await.unwrap().unwrap();
    assert_eq!(moved.module_digest, v2);
    assert_eq!(
        moved.version,
        run.version + 1,
        "the move is a write like any other"
    );
    assert_eq!(
        (&moved.input, moved.updated_at, &moved.status),
        (&run.input, run.updated_at, &run.status)
    );
    let again = b.state.repin_run(&run.id, run.version, &v2).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    let mut ended = moved.clone();
    ended.status = RunStatus::Completed;
    b.state
        .commit(StateWrite {
            run: Some(RunWrite::replacing(&moved, ended)),
            ..Default::default()
        })
        .await
        .unwrap();
    let version = moved.version + 1;
    let finished = b
        .state
        .repin_run(&run.id, version, &run.module_digest)
        .await;
    assert!(
        matches!(finished, Err(StoreError::Conflict(_))),
        "{finished:?}"
    );
    let unknown = b.state.repin_run(&RunId::generate(), 0, &v2).await;
    assert!(
        matches!(unknown, Err(StoreError::Conflict(_))),
        "{unknown:?}"
    );
}

pub async fn finished_runs_cannot_be_leased(b: Backend) {
    let mut run = run_record("wf-done");
    b.state.create_run(&run).await.unwrap();
    let expected = run.version;
    run.status = RunStatus::Completed;
    run.output = Some("1".into());
    b.state
        .commit(StateWrite {
            run: Some(RunWrite {
                record: run.clone(),
                expected_version: expected,
                expected_steps: run.step_names.len(),
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(is_conflict(
        b.state
            .acquire_run_lease(&run.id, "w", now_millis(), 1000)
            .await
    ));
    let stored = b.state.get_run(&run.id).await.unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::Completed);
    assert_eq!(stored.version, expected + 1);
}

pub async fn a_failed_condition_applies_nothing(b: Backend) {
    let mut run = run_record("wf-atomic");
    b.state.create_run(&run).await.unwrap();
    let s0 = step(&run, 0, "first");
    append(b.state.as_ref(), &mut run, &s0).await.unwrap();
    // A stale run version together with a new step and an attempt: none of
    // it may land.
    let s1 = step(&run, 1, "second");
    let mut stale = run.clone();
    stale.step_names.push("second".into());
    let write = StateWrite {
        run: Some(RunWrite {
            record: stale,
            expected_version: run.version - 1,
            expected_steps: run.step_names.len(),
        }),
        steps: vec![StepWrite {
            record: s1.clone(),
            expect: StepExpect::Absent,
        }],
        attempts: vec![AttemptRecord {
            step_id: StepRecord::key(&run.id, "second"),
            attempt: 1,
            status: StepStatus::Succeeded,
            error: None,
            started_at: 1,
            ended_at: Some(2),
        }],
        logs: vec![],
        events: vec![],
        callbacks: vec![],
        require_running: None,
    };
    assert!(is_conflict(b.state.commit(write).await));
    assert!(b.state.get_step(&run.id, "second").await.unwrap().is_none());
    assert!(
        b.state
            .list_attempts(&StepRecord::key(&run.id, "second"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        b.state.get_run(&run.id).await.unwrap().unwrap().step_names,
        vec!["first"]
    );
}

pub async fn a_step_gets_exactly_one_outcome(b: Backend) {
    let mut run = run_record("wf-once");
    b.state.create_run(&run).await.unwrap();
    let s = step(&run, 0, "charge");
    append(b.state.as_ref(), &mut run, &s).await.unwrap();
    assert!(
        is_conflict(append(b.state.as_ref(), &mut run.clone(), &s).await),
        "inserting twice must conflict"
    );

    // Two workers race to claim attempt 1 from `pending`: one wins.
    let claim = |owner: &str| {
        let mut c = s.clone();
        c.status = StepStatus::Running;
        c.attempt_count = 1;
        c.lease = Some(Lease {
            owner: owner.into(),
            expires_at: now_millis() + 10_000,
        });
        StateWrite {
            steps: vec![StepWrite {
                record: c,
                expect: StepExpect::State {
                    status: StepStatus::Pending,
                    attempt_count: 0,
                },
            }],
            ..Default::default()
        }
    };
    b.state.commit(claim("w1")).await.unwrap();
    assert!(is_conflict(b.state.commit(claim("w2")).await));

    // Two outcomes for attempt 1: the first stands.
    let finish = |result: &str| {
        let mut f = s.clone();
        f.attempt_count = 1;
        f.finish(Ok(result.into()), now_millis());
        StateWrite {
            steps: vec![StepWrite {
                record: f,
                expect: StepExpect::State {
                    status: StepStatus::Running,
                    attempt_count: 1,
                },
            }],
            ..Default::default()
        }
    };
    b.state.commit(finish("\"first\"")).await.unwrap();
    assert!(is_conflict(b.state.commit(finish("\"second\"")).await));
    let stored = b.state.get_step(&run.id, "charge").await.unwrap().unwrap();
    assert_eq!(stored.status, StepStatus::Succeeded);
    assert_eq!(stored.result.as_deref(), Some("\"first\""));
    assert_eq!(stored.attempt_count, 1);
}

/// A claim that requires its run to be running lands while it is, and
/// conflicts, writing nothing, once the run has ended (a cancel landed).
pub async fn a_claim_requires_its_run_to_be_running(b: Backend) {
    let claim = |s: &StepRecord, run: &RunRecord| {
        let mut c = s.clone();
        c.status = StepStatus::Running;
        c.attempt_count = 1;
        StateWrite {
            require_running: Some(run.id.clone()),
            steps: vec![StepWrite {
                record: c,
                expect: StepExpect::State {
                    status: StepStatus::Pending,
                    attempt_count: 0,
                },
            }],
            ..Default::default()
        }
    };
    let mut live = run_record("wf-claim-live");
    b.state.create_run(&live).await.unwrap();
    let s = step(&live, 0, "charge");
    append(b.state.as_ref(), &mut live, &s).await.unwrap();
    b.state.commit(claim(&s, &live)).await.unwrap();

    let mut ended = run_record("wf-claim-ended");
    b.state.create_run(&ended).await.unwrap();
    let s = step(&ended, 0, "charge");
    append(b.state.as_ref(), &mut ended, &s).await.unwrap();
    let mut cancelled = ended.clone();
    cancelled.status = RunStatus::Cancelled;
    b.state
        .commit(StateWrite {
            run: Some(RunWrite::replacing(&ended, cancelled)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(is_conflict(b.state.commit(claim(&s, &ended)).await));
    let stored = b
        .state
        .get_step(&ended.id, "charge")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.status, stored.attempt_count),
        (StepStatus::Pending, 0)
    );
}

pub async fn steps_are_read_by_key_in_journal_order(b: Backend) {
    let mut run = run_record("wf-order");
    b.state.create_run(&run).await.unwrap();
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let s = step(&run, i as u32, name);
        append(b.state.as_ref(), &mut run, &s).await.unwrap();
    }
    let by_key = b.state.get_steps(&run.id, &run.step_names).await.unwrap();
    let names: Vec<_> = by_key.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let listed = b.state.list_steps(&run.id).await.unwrap();
    let seqs: Vec<_> = listed.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, [0, 1, 2]);
    let subset = b
        .state
        .get_steps(&run.id, &["c".into(), "a".into()])
        .await
        .unwrap();
    assert_eq!(
        subset.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["c", "a"]
    );
}

/// A journal index far longer than one DynamoDB item holds (10 500 names
/// of 40 bytes, over 420 KB) is written a few names at a time and in
/// commits that append a hundred and more at once, and reads back whole
/// and in order, from every read that returns the run.
pub async fn a_journal_longer_than_an_item_holds_round_trips(b: Backend) {
    const LENGTH: usize = 10_500;
    let name = |i: usize| format!("{i:0>40}");
    let mut run = run_record("wf-long-journal");
    b.state.create_run(&run).await.unwrap();
    // Single appends, then commits of 150, then odd sizes to the end.
    let mut sizes = vec![1, 1, 1];
    sizes.extend(std::iter::repeat_n(150, 40));
    let mut written = 3 + 150 * 40;
    while written < LENGTH {
        let size = 173.min(LENGTH - written);
        sizes.push(size);
        written += size;
    }
    for size in sizes {
        let mut next = run.clone();
        for _ in 0..size {
            next.step_names.push(name(next.step_names.len()));
        }
        b.state
            .commit(StateWrite {
                run: Some(RunWrite::replacing(&run, next.clone())),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("appending to {} names: {e}", run.step_names.len()));
        run = next;
        run.version += 1;
    }
    let expected: Vec<String> = (0..LENGTH).map(name).collect();
    let read = b.state.get_run(&run.id).await.unwrap().unwrap();
    assert_eq!(read.step_names.len(), LENGTH);
    assert!(
        read.step_names == expected,
        "get_run returned the journal out of order"
    );
    let leased = b
        .state
        .acquire_run_lease(&run.id, "w1", now_millis(), 30_000)
        .await
        .unwrap();
    assert!(
        leased.step_names == expected,
        "the lease returned another journal"
    );
    let listed = b
        .state
        .list_runs(&RunQuery {
            workflow: Some("wf-long-journal".into()),
            status: Some(RunStatus::Running),
            limit: 10,
            after: None,
        })
        .await
        .unwrap();
    let listed = listed.iter().find(|r| r.id == run.id).expect("listed");
    assert!(
        listed.step_names == expected,
        "the listing returned another journal"
    );
}

pub async fn attempts_and_logs_are_idempotent_and_ordered(b: Backend) {
    let run = run_record("wf-hist");
    b.state.create_run(&run).await.unwrap();
    let key = StepRecord::key(&run.id, "s");
    let attempt = |n: u32, status: StepStatus| AttemptRecord {
        step_id: key.clone(),
        attempt: n,
        status,
        error: None,
        started_at: n as u64,
        ended_at: Some(n as u64 + 1),
    };
    let line = |position: u32, index: u32, message: &str| {
        (
            run.id.clone(),
            LogLine {
                position,
                index,
                at: 1,
                level: "info".into(),
                message: message.into(),
            },
        )
    };
    let write = StateWrite {
        attempts: vec![
            attempt(2, StepStatus::Succeeded),
            attempt(1, StepStatus::Failed),
        ],
        logs: vec![line(1, 0, "b"), line(0, 1, "a2"), line(0, 0, "a1")],
        ..Default::default()
    };
    b.state.commit(write.clone()).await.unwrap();
    b.state.commit(write).await.unwrap();
    let attempts = b.state.list_attempts(&key).await.unwrap();
    assert_eq!(
        attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        [1, 2]
    );
    let logs = b.state.list_logs(&run.id).await.unwrap();
    assert_eq!(
        logs.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(),
        ["a1", "a2", "b"]
    );
}

pub async fn runs_are_listed_by_status(b: Backend) {
    let workflow = format!("wf-list-{}", uuid_suffix());
    let mut done = run_record(&workflow);
    let running = run_record(&workflow);
    b.state.create_run(&done).await.unwrap();
    b.state.create_run(&running).await.unwrap();
    let expected = done.version;
    done.status = RunStatus::Failed;
    b.state
        .commit(StateWrite {
            run: Some(RunWrite {
                record: done.clone(),
                expected_version: expected,
                expected_steps: done.step_names.len(),
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let query = |status| RunQuery {
        status: Some(status),
        workflow: Some(workflow.clone()),
        limit: 10,
        ..Default::default()
    };
    let failed = b.state.list_runs(&query(RunStatus::Failed)).await.unwrap();
    assert_eq!(failed.iter().map(|r| &r.id).collect::<Vec<_>>(), [&done.id]);
    let live = b.state.list_runs(&query(RunStatus::Running)).await.unwrap();
    assert_eq!(
        live.iter().map(|r| &r.id).collect::<Vec<_>>(),
        [&running.id]
    );
}

/// The sweep's listing holds exactly the running runs that went quiet
/// before the given time -- not one that worked since, sleeps, is held, or
/// ended (also by a later write) -- each once across pages, oldest first.
pub async fn only_quiet_runs_are_listed_for_the_sweep(b: Backend) {
    let workflow = format!("wf-quiet-{}", uuid_suffix());
    // A day ago, so that runs other cases left behind are not in the way.
    let base = now_millis() - 86_400_000;
    let quiet_before = base + 3_600_000;
    let at = |minutes: u64| base + minutes * 60_000;
    let with = |updated: u64, edit: &dyn Fn(&mut RunRecord)| {
        let mut run = run_record(&workflow);
        run.created_at = updated;
        run.updated_at = updated;
        edit(&mut run);
        run
    };
    let quiet: Vec<RunRecord> = [30, 10, 20, 10, 50]
        .into_iter()
        .map(|m| with(at(m), &|_| {}))
        .collect();
    let sleeping = with(at(5), &|r| r.wake_at = Some(at(120)));
    let held = with(at(5), &|r| {
        r.lease = Some(Lease {
            owner: "w".into(),
            expires_at: at(90),
        })
    });
    let woke = with(at(5), &|r| r.wake_at = Some(at(40)));
    let ended = with(at(5), &|r| r.status = RunStatus::Completed);
    let busy = with(now_millis(), &|_| {});
    for run in quiet.iter().chain([&sleeping, &held, &woke, &ended, &busy]) {
        b.state.create_run(run).await.unwrap();
    }
    // Two quiet runs move on: one fails, one takes a step now.
    let write = |run: &RunRecord, edit: &dyn Fn(&mut RunRecord)| {
        let mut next = run.clone();
        edit(&mut next);
        StateWrite {
            run: Some(RunWrite::replacing(run, next)),
            ..Default::default()
        }
    };
    let (failed, worked) = (with(at(1), &|_| {}), with(at(2), &|_| {}));
    for run in [&failed, &worked] {
        b.state.create_run(run).await.unwrap();
    }
    b.state
        .commit(write(&failed, &|r| r.status = RunStatus::Failed))
        .await
        .unwrap();
    b.state
        .commit(write(&worked, &|r| r.updated_at = now_millis()))
        .await
        .unwrap();

    let mut listed = Vec::new();
    let mut after = None;
    for _ in 0..1000 {
        let page = b
            .state
            .list_quiet_runs(quiet_before, after.as_ref(), 2)
            .await
            .unwrap();
        assert!(page.runs.len() <= 2);
        listed.extend(page.runs.into_iter().filter(|r| r.workflow == workflow));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut expected = quiet.clone();
    expected.push(woke.clone());
    expected.sort_by(|a, b| {
        let key = |r: &RunRecord| (r.attention_at(), r.id.as_str().to_string());
        key(a).cmp(&key(b))
    });
    let ids = |runs: &[RunRecord]| runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&listed),
        ids(&expected),
        "each quiet run once, oldest first"
    );
    assert!(listed.iter().all(|r| r.status == RunStatus::Running));
}

fn uuid_suffix() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

fn resume(run: &RunId) -> Envelope {
    Envelope::now(WorkMessage::Resume {
        run_id: run.clone(),
    })
}

pub async fn queue_delivers_until_acknowledged(b: Backend) {
    let run = RunId::generate();
    b.queue.send(&resume(&run), Duration::ZERO).await.unwrap();
    let got = b.queue.receive(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].envelope.as_ref().ok(), Some(&resume(&run)));
    assert_eq!(got[0].receive_count, 1);
    // Invisible while held...
    assert!(
        b.queue
            .receive(10, Duration::from_millis(200))
            .await
            .unwrap()
            .is_empty()
    );
    // ...and back once the visibility timeout lapses without an ack.
    tokio::time::sleep(b.visibility + Duration::from_millis(300)).await;
    let again = b.queue.receive(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(again.len(), 1, "an unacknowledged message is redelivered");
    assert_eq!(again[0].receive_count, 2);
    b.queue.ack(&again[0].receipt).await.unwrap();
    tokio::time::sleep(b.visibility + Duration::from_millis(300)).await;
    assert!(
        b.queue
            .receive(10, Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn queue_delays_and_retries_later(b: Backend) {
    let run = RunId::generate();
    b.queue
        .send(&resume(&run), Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        b.queue
            .receive(10, Duration::from_millis(500))
            .await
            .unwrap()
            .is_empty(),
        "a delayed message must not arrive early"
    );
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    let got = b.queue.receive(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.len(), 1, "the delayed message arrives once due");
    b.queue
        .retry_later(&got[0].receipt, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        b.queue
            .receive(10, Duration::from_millis(500))
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    let back = b.queue.receive(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(back.len(), 1);
    b.queue.ack(&back[0].receipt).await.unwrap();
}

/// A sub-second delay or retry is not rounded down to "now": the message
/// stays away at least as long as asked.
pub async fn queue_never_delivers_a_sub_second_delay_early(b: Backend) {
    let run = RunId::generate();
    b.queue
        .send(&resume(&run), Duration::from_millis(400))
        .await
        .unwrap();
    assert!(
        b.queue
            .receive(10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty(),
        "a 400 ms delay delivered at once"
    );
    let got = b.queue.receive(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.len(), 1);
    b.queue
        .retry_later(&got[0].receipt, Duration::from_millis(400))
        .await
        .unwrap();
    assert!(
        b.queue
            .receive(10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty(),
        "a 400 ms retry delivered at once"
    );
    let back = b.queue.receive(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(back.len(), 1);
    b.queue.ack(&back[0].receipt).await.unwrap();
}

pub async fn queue_dead_letters_poison_messages(b: Backend) {
    let run = RunId::generate();
    b.queue.send(&resume(&run), Duration::ZERO).await.unwrap();
    for _ in 0..b.max_receives {
        let got = b.queue.receive(10, Duration::from_secs(5)).await.unwrap();
        assert_eq!(got.len(), 1);
        b.queue
            .retry_later(&got[0].receipt, Duration::ZERO)
            .await
            .unwrap();
    }
    // One more receive moves it to the dead-letter queue instead.
    let mut dead = Vec::new();
    for _ in 0..20 {
        assert!(
            b.queue
                .receive(10, Duration::from_millis(200))
                .await
                .unwrap()
                .is_empty()
        );
        dead = b.queue.receive_dead(10).await.unwrap();
        if !dead.is_empty() {
            break;
        }
    }
    assert_eq!(
        dead.len(),
        1,
        "the poison message reaches the dead-letter queue"
    );
    assert_eq!(dead[0].envelope.as_ref().ok(), Some(&resume(&run)));
    b.queue.ack_dead(&dead[0].receipt).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(b.queue.receive_dead(10).await.unwrap().is_empty());
}

pub async fn modules_are_versioned_by_content(b: Backend) {
    let name = format!("mod-{}", uuid_suffix());
    let v1_bytes = b"\0asm module one".to_vec();
    let d1 = Digest::of(&v1_bytes);
    b.modules.put_blob(&d1, &v1_bytes).await.unwrap();
    b.modules.put_blob(&d1, &v1_bytes).await.unwrap();
    assert_eq!(
        b.modules.get_blob(&d1).await.unwrap(),
        Some(v1_bytes.clone())
    );
    assert_eq!(
        b.modules.get_blob(&Digest::of(b"nope")).await.unwrap(),
        None
    );

    let version = |digest: &Digest, hosts: &[&str], at: u64| ModuleVersion {
        name: name.clone(),
        version: 0,
        digest: digest.clone(),
        kind: ModuleKind::Rpc,
        size: 15,
        uploaded_at: at,
        allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
    };
    let v1 = b.modules.add_version(&version(&d1, &[], 1)).await.unwrap();
    assert_eq!(v1.version, 1);
    let same = b.modules.add_version(&version(&d1, &[], 2)).await.unwrap();
    assert_eq!(same, v1, "identical bytes are a no-op");
    let d2 = Digest::of(b"two");
    let v2 = b.modules.add_version(&version(&d2, &[], 3)).await.unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(b.modules.latest(&name).await.unwrap(), Some(v2.clone()));
    let all = b.modules.versions(&name).await.unwrap();
    assert_eq!(all.iter().map(|v| v.version).collect::<Vec<_>>(), [1, 2]);
    assert!(b.modules.list_latest().await.unwrap().contains(&v2));
    // The same bytes with other network permissions are a new version.
    let v3 = b
        .modules
        .add_version(&version(&d2, &["example.com"], 4))
        .await
        .unwrap();
    assert_eq!(
        (v3.version, v3.allowed_hosts.as_slice()),
        (3, ["example.com".to_string()].as_slice())
    );
    assert_eq!(b.modules.latest(&name).await.unwrap(), Some(v3));

    assert_eq!(
        b.modules.artifact_digest(&d1, "engine-x").await.unwrap(),
        None
    );
    let art = Digest::of(b"artifact");
    b.modules
        .put_artifact_digest(&d1, "engine-x", &art)
        .await
        .unwrap();
    assert_eq!(
        b.modules.artifact_digest(&d1, "engine-x").await.unwrap(),
        Some(art)
    );
    assert_eq!(
        b.modules.artifact_digest(&d1, "engine-y").await.unwrap(),
        None
    );
}

/// A multi-item write whose *later* part conflicts lands nothing: the run
/// write and the first step write were valid on their own.
pub async fn a_write_conflicting_in_its_last_part_applies_nothing(b: Backend) {
    let mut run = run_record("wf-atomic-late");
    b.state.create_run(&run).await.unwrap();
    let s0 = step(&run, 0, "first");
    append(b.state.as_ref(), &mut run, &s0).await.unwrap();
    let fresh = step(&run, 1, "second");
    let mut next = run.clone();
    next.step_names.push("second".into());
    next.output = Some("\"must not land\"".into());
    let mut duplicate = s0.clone();
    duplicate.result = Some("\"must not land either\"".into());
    let write = StateWrite {
        run: Some(RunWrite::replacing(&run, next)),
        steps: vec![
            StepWrite {
                record: fresh,
                expect: StepExpect::Absent,
            },
            // `first` exists: this last condition fails.
            StepWrite {
                record: duplicate,
                expect: StepExpect::Absent,
            },
        ],
        attempts: vec![],
        logs: vec![],
        events: vec![],
        callbacks: vec![],
        require_running: None,
    };
    assert!(is_conflict(b.state.commit(write).await));
    let stored = b.state.get_run(&run.id).await.unwrap().unwrap();
    assert_eq!(stored.version, run.version, "the run write landed");
    assert_eq!(stored.output, None);
    assert_eq!(stored.step_names, vec!["first"]);
    assert!(b.state.get_step(&run.id, "second").await.unwrap().is_none());
    assert_eq!(
        b.state
            .get_step(&run.id, "first")
            .await
            .unwrap()
            .unwrap()
            .result,
        None
    );
}

/// Runs come newest first, with or without a status filter; the limit
/// keeps the newest, and a cursor continues where a page ended.
pub async fn runs_are_listed_newest_first(b: Backend) {
    let workflow = format!("wf-order-{}", uuid_suffix());
    let mut ids = Vec::new();
    for (i, status) in [
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Running,
        RunStatus::Failed,
    ]
    .into_iter()
    .enumerate()
    {
        let mut run = run_record(&workflow);
        run.created_at = 1_000 + i as u64;
        b.state.create_run(&run).await.unwrap();
        if status != RunStatus::Running {
            let expected_version = run.version;
            run.status = status;
            b.state
                .commit(StateWrite {
                    run: Some(RunWrite {
                        record: run.clone(),
                        expected_version,
                        expected_steps: run.step_names.len(),
                    }),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        ids.push(run.id);
    }
    ids.reverse();
    let query = |status, limit, after| RunQuery {
        status,
        workflow: Some(workflow.clone()),
        limit,
        after,
    };
    let ids_of = |runs: &[RunRecord]| runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    let all = b.state.list_runs(&query(None, 10, None)).await.unwrap();
    assert_eq!(ids_of(&all), ids);
    // Pages of two, each after the last run of the one before.
    let first = b.state.list_runs(&query(None, 2, None)).await.unwrap();
    assert_eq!(ids_of(&first), ids[..2]);
    let cursor = first.last().map(RunCursor::after);
    let second = b.state.list_runs(&query(None, 2, cursor)).await.unwrap();
    assert_eq!(ids_of(&second), ids[2..]);
    // The same by status: the two running runs, one page each.
    let running: Vec<RunId> = vec![ids[1].clone(), ids[3].clone()];
    let one = b
        .state
        .list_runs(&query(Some(RunStatus::Running), 1, None))
        .await
        .unwrap();
    assert_eq!(ids_of(&one), running[..1]);
    let two = b
        .state
        .list_runs(&query(
            Some(RunStatus::Running),
            1,
            one.last().map(RunCursor::after),
        ))
        .await
        .unwrap();
    assert_eq!(ids_of(&two), running[1..]);
}

/// A shared artifact comes back for the same module and engine only.
pub async fn shared_artifacts_round_trip(b: Backend) {
    let module = Digest::of(format!("module-{}", uuid_suffix()).as_bytes());
    let bytes = b"precompiled machine code".to_vec();
    assert_eq!(
        b.modules
            .get_shared_artifact(&module, "engine-a")
            .await
            .unwrap(),
        None
    );
    b.modules
        .put_shared_artifact(&module, "engine-a", &bytes)
        .await
        .unwrap();
    b.modules
        .put_shared_artifact(&module, "engine-a", &bytes)
        .await
        .unwrap();
    assert_eq!(
        b.modules
            .get_shared_artifact(&module, "engine-a")
            .await
            .unwrap(),
        Some(bytes)
    );
    assert_eq!(
        b.modules
            .get_shared_artifact(&module, "engine-b")
            .await
            .unwrap(),
        None
    );
}

/// Staged uploads are optional; where a store offers them, bytes PUT to the
/// URL are taken exactly once. Nothing is ever taken for an unknown id.
pub async fn staged_uploads_are_taken_once(b: Backend) {
    let unknown = format!("upload-{}", uuid_suffix());
    assert_eq!(b.modules.take_staged_upload(&unknown).await.unwrap(), None);
    let id = format!("upload-{}", uuid_suffix());
    let Some(url) = b
        .modules
        .staged_upload_url(&id, Duration::from_secs(60))
        .await
        .unwrap()
    else {
        return;
    };
    let bytes = b"\0asm staged".to_vec();
    let response = reqwest::Client::new()
        .put(&url)
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        b.modules.take_staged_upload(&id).await.unwrap(),
        Some(bytes)
    );
    assert_eq!(b.modules.take_staged_upload(&id).await.unwrap(), None);
}

/// Expands to one `#[tokio::test]` per conformance case for the backend
/// that `$provision` (a [`Provision`]) creates. Every `pub async fn` case
/// above must be listed here: `tests/tests/suite_registration.rs` fails
/// otherwise.
#[macro_export]
macro_rules! conformance_suite {
    ($provision:expr) => {
        $crate::conformance_suite!(@cases $provision;
            runs_round_trip_and_ids_are_unique,
            leases_exclude_other_owners_until_they_expire,
            finished_runs_cannot_be_leased,
            a_runs_pinned_fields_never_change,
            an_upgrade_moves_a_running_run_at_its_checked_version_only,
            a_failed_condition_applies_nothing,
            a_step_gets_exactly_one_outcome,
            a_claim_requires_its_run_to_be_running,
            steps_are_read_by_key_in_journal_order,
            a_journal_longer_than_an_item_holds_round_trips,
            attempts_and_logs_are_idempotent_and_ordered,
            runs_are_listed_by_status,
            only_quiet_runs_are_listed_for_the_sweep,
            queue_delivers_until_acknowledged,
            queue_delays_and_retries_later,
            queue_dead_letters_poison_messages,
            queue_never_delivers_a_sub_second_delay_early,
            modules_are_versioned_by_content,
            a_write_conflicting_in_its_last_part_applies_nothing,
            runs_are_listed_newest_first,
            shared_artifacts_round_trip,
            staged_uploads_are_taken_once,
            events_are_numbered_per_name_and_deduplicated_by_id,
            only_running_runs_take_events,
            an_event_is_taken_once_oldest_first_with_its_wait,
            a_runs_events_are_listed_by_name_and_number,
            concurrent_sends_get_distinct_numbers,
            a_callback_is_completed_once_and_never_after_it_expires,
            a_completion_and_an_expiry_race_and_one_wins,
            a_schedule_changes_only_from_the_version_read,
            due_schedules_are_found_by_their_time,
            expired_runs_are_found_by_expiry_and_deleted_with_their_items,
        );
    };
    (@cases $provision:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let provision: $crate::conformance::Provision = $provision;
                $crate::conformance::$case(provision().await).await;
            }
        )+
    };
}
