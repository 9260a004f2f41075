//! Conformance case for retention at the store: finished runs are found by
//! expiry, and a deleted run takes everything it stored with it.

use super::{Backend, append, is_conflict, run_record, step};
use weft::backend::{CallbackWrite, NewEvent, RunWrite, StateWrite, StepExpect, StepWrite};
use weft::model::{
    AttemptRecord, CallbackRecord, CallbackState, LogLine, Millis, RunId, RunRecord, RunStatus,
    StepRecord, StepStatus, now_millis, token_hash,
};

/// A whole second in 2001: earlier than any expiry another case could set.
const BASE: Millis = 1_000_000_000_000;
const SECOND: Millis = 1_000;

/// A run created already finished, expiring at `expires_at`.
async fn finished(b: &Backend, expires_at: Millis) -> RunRecord {
    let mut run = run_record("wf-expiring");
    run.status = RunStatus::Completed;
    run.output = Some("1".into());
    run.expires_at = Some(expires_at);
    b.state.create_run(&run).await.unwrap();
    run
}

/// Every kind of item a run stores besides itself: a step with two
/// attempts, a log line, an event (sent while it runs) and a callback.
async fn fill(b: &Backend, run: &mut RunRecord, token: &str) -> StepRecord {
    let charge = step(run, 0, "charge");
    append(b.state.as_ref(), run, &charge).await.unwrap();
    let key = StepRecord::key(&run.id, &charge.name);
    let attempts = [(1, StepStatus::Failed), (2, StepStatus::Succeeded)]
        .map(|(attempt, status)| AttemptRecord {
            step_id: key.clone(),
            attempt,
            status,
            error: None,
            started_at: attempt as Millis,
            ended_at: Some(attempt as Millis + 1),
        })
        .to_vec();
    let line = LogLine {
        position: 0,
        index: 0,
        at: 1,
        level: "info".into(),
        message: "charged".into(),
    };
    let callback = CallbackRecord {
        hash: token_hash(token),
        run_id: run.id.clone(),
        step: "link".into(),
        created_at: now_millis(),
        expires_at: None,
        state: CallbackState::Waiting,
    };
    b.state
        .commit(StateWrite {
            attempts,
            logs: vec![(run.id.clone(), line)],
            callbacks: vec![CallbackWrite::Create(callback)],
            ..Default::default()
        })
        .await
        .unwrap();
    b.state
        .send_event(NewEvent {
            run_id: run.id.clone(),
            name: "go".into(),
            event_id: "e1".into(),
            payload: "1".into(),
            sent_at: now_millis(),
        })
        .await
        .unwrap();
    charge
}

async fn due(b: &Backend, now: Millis, limit: usize) -> Vec<RunId> {
    b.state.expired_runs(now, limit).await.unwrap()
}

/// Finished runs are listed by expiry, earliest first, from the instant
/// they expire and up to the limit; a run that finishes through a commit
/// gets its expiry the same way. Deleting one removes its steps, attempts,
/// logs, events and callbacks and nothing of another run; a gone run is a
/// no-op, and a running run is refused and kept.
pub async fn expired_runs_are_found_by_expiry_and_deleted_with_their_items(b: Backend) {
    let third = finished(&b, BASE + 3 * SECOND).await;
    let first = finished(&b, BASE + SECOND).await;
    let second = finished(&b, BASE + 2 * SECOND).await;
    assert_eq!(
        b.state.get_run(&first.id).await.unwrap().as_ref(),
        Some(&first),
        "the expiry round-trips"
    );

    let mut rich = run_record("wf-expiring");
    b.state.create_run(&rich).await.unwrap();
    let charge = fill(&b, &mut rich, "wcb_rich").await;
    let mut keep = run_record("wf-kept");
    b.state.create_run(&keep).await.unwrap();
    let kept = fill(&b, &mut keep, "wcb_kept").await;
    // `rich` finishes through a commit, as the service finishes runs.
    let mut ended = rich.clone();
    ended.status = RunStatus::Failed;
    ended.expires_at = Some(BASE + 4 * SECOND);
    let mut done = charge.clone();
    done.status = StepStatus::Succeeded;
    done.result = Some("true".into());
    b.state
        .commit(StateWrite {
            run: Some(RunWrite::replacing(&rich, ended.clone())),
            steps: vec![StepWrite {
                record: done,
                expect: StepExpect::State {
                    status: charge.status,
                    attempt_count: charge.attempt_count,
                },
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let stored = b.state.get_run(&rich.id).await.unwrap().unwrap();
    assert_eq!(stored.expires_at, Some(BASE + 4 * SECOND));

    assert_eq!(due(&b, BASE, 10).await, Vec::<RunId>::new());
    assert_eq!(
        due(&b, BASE + 2 * SECOND, 10).await,
        [first.id.clone(), second.id.clone()],
        "due from the instant of expiry, earliest first"
    );
    assert_eq!(
        due(&b, BASE + 3 * SECOND - 1, 10).await,
        [first.id.clone(), second.id.clone()]
    );
    assert_eq!(
        due(&b, BASE + 60 * SECOND, 2).await,
        [first.id.clone(), second.id.clone()],
        "the limit keeps the earliest"
    );
    let all = [
        first.id.clone(),
        second.id.clone(),
        third.id.clone(),
        rich.id.clone(),
    ];
    assert_eq!(due(&b, BASE + 60 * SECOND, 10).await, all);
    assert_eq!(
        due(&b, now_millis() + 3_650 * 86_400_000, 10).await,
        all,
        "a running run never expires"
    );

    assert!(is_conflict(b.state.delete_run(&keep.id).await));
    b.state.delete_run(&rich.id).await.unwrap();
    assert!(b.state.get_run(&rich.id).await.unwrap().is_none());
    assert!(b.state.list_steps(&rich.id).await.unwrap().is_empty());
    assert!(
        b.state
            .get_step(&rich.id, &charge.name)
            .await
            .unwrap()
            .is_none()
    );
    let key = StepRecord::key(&rich.id, &charge.name);
    assert!(b.state.list_attempts(&key).await.unwrap().is_empty());
    assert!(b.state.list_logs(&rich.id).await.unwrap().is_empty());
    assert!(b.state.next_event(&rich.id, "go").await.unwrap().is_none());
    assert!(
        b.state
            .get_callback(&token_hash("wcb_rich"))
            .await
            .unwrap()
            .is_none()
    );
    b.state.delete_run(&rich.id).await.unwrap();
    b.state.delete_run(&RunId::generate()).await.unwrap();
    assert_eq!(
        due(&b, BASE + 60 * SECOND, 10).await,
        [first.id.clone(), second.id.clone(), third.id.clone()]
    );

    // The running run and the other finished runs keep everything.
    assert_eq!(
        b.state.get_run(&keep.id).await.unwrap().map(|r| r.status),
        Some(RunStatus::Running)
    );
    assert_eq!(b.state.list_steps(&keep.id).await.unwrap().len(), 1);
    let key = StepRecord::key(&keep.id, &kept.name);
    assert_eq!(b.state.list_attempts(&key).await.unwrap().len(), 2);
    assert_eq!(b.state.list_logs(&keep.id).await.unwrap().len(), 1);
    assert!(b.state.next_event(&keep.id, "go").await.unwrap().is_some());
    assert!(
        b.state
            .get_callback(&token_hash("wcb_kept"))
            .await
            .unwrap()
            .is_some()
    );
    for run in [&first, &second, &third] {
        assert!(b.state.get_run(&run.id).await.unwrap().is_some());
    }
}
