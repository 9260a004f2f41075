//! Conformance cases for callbacks: created inside a commit, completed
//! once, never after expiry, and racing an expiry with one winner.

use super::{Backend, append, is_conflict, run_record, step};
use weft::backend::{CallbackWrite, StateWrite, StepExpect, StepWrite, StoreError};
use weft::model::{
    CallbackRecord, CallbackState, ErrorInfo, RunRecord, StepStatus, now_millis, token_hash,
};

fn callback(run: &RunRecord, token: &str, expires_at: Option<u64>) -> CallbackRecord {
    CallbackRecord {
        hash: token_hash(token),
        run_id: run.id.clone(),
        step: "link".into(),
        created_at: now_millis(),
        expires_at,
        state: CallbackState::Waiting,
    }
}

async fn create(b: &Backend, cb: &CallbackRecord) -> Result<(), StoreError> {
    b.state
        .commit(StateWrite {
            callbacks: vec![CallbackWrite::Create(cb.clone())],
            ..Default::default()
        })
        .await
}

/// A callback is found by its hash only, completes once with its outcome,
/// refuses a completion once expired, and a second create of one hash fails.
pub async fn a_callback_is_completed_once_and_never_after_it_expires(b: Backend) {
    let mut run = run_record("wf-callback");
    b.state.create_run(&run).await.unwrap();
    let open = callback(&run, "wcb_open", Some(now_millis() + 60_000));
    create(&b, &open).await.unwrap();
    assert!(
        is_conflict(create(&b, &open).await),
        "one hash, one callback"
    );
    assert_eq!(
        b.state.get_callback(&open.hash).await.unwrap(),
        Some(open.clone())
    );
    assert!(
        b.state
            .get_callback(&token_hash("wcb_other"))
            .await
            .unwrap()
            .is_none()
    );
    let unknown = b
        .state
        .complete_callback(&token_hash("wcb_other"), Ok("1".into()), now_millis())
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );

    let done = b
        .state
        .complete_callback(&open.hash, Ok(r#"{"ok":true}"#.into()), now_millis())
        .await
        .unwrap();
    assert_eq!(done.outcome(), Some(Ok(r#"{"ok":true}"#.to_string())));
    let again = b
        .state
        .complete_callback(&open.hash, Ok("2".into()), now_millis())
        .await;
    assert!(is_conflict(again), "completed twice");
    let stored = b.state.get_callback(&open.hash).await.unwrap().unwrap();
    assert_eq!(stored.outcome(), Some(Ok(r#"{"ok":true}"#.to_string())));

    // An expiry after the completion fails, and takes its step write down.
    let wait = step(&run, 0, "wait");
    append(b.state.as_ref(), &mut run, &wait).await.unwrap();
    let mut timed_out = wait.clone();
    timed_out.finish(Err(ErrorInfo::new("timeout", "expired")), now_millis());
    let expire = StateWrite {
        steps: vec![StepWrite {
            record: timed_out,
            expect: StepExpect::State {
                status: StepStatus::Pending,
                attempt_count: 0,
            },
        }],
        callbacks: vec![CallbackWrite::Expire {
            hash: open.hash.clone(),
        }],
        ..Default::default()
    };
    assert!(is_conflict(b.state.commit(expire).await));
    let stored = b.state.get_step(&run.id, "wait").await.unwrap().unwrap();
    assert_eq!(stored.status, StepStatus::Pending);

    // Past its expiry a waiting callback cannot be completed.
    let late = callback(&run, "wcb_late", Some(now_millis().saturating_sub(1)));
    create(&b, &late).await.unwrap();
    let refused = b
        .state
        .complete_callback(
            &late.hash,
            Err(ErrorInfo::new("declined", "no")),
            now_millis(),
        )
        .await;
    assert!(is_conflict(refused), "completed after its expiry");
    assert_eq!(
        b.state
            .get_callback(&late.hash)
            .await
            .unwrap()
            .unwrap()
            .state,
        CallbackState::Waiting
    );
}

/// A completion and an expiry of one callback, sent at the same moment,
/// many times: each time exactly one of them lands, and the callback ends
/// in that one's state.
pub async fn a_completion_and_an_expiry_race_and_one_wins(b: Backend) {
    let run = run_record("wf-callback-race");
    b.state.create_run(&run).await.unwrap();
    for round in 0..8 {
        let cb = callback(&run, &format!("wcb_race_{round}"), None);
        create(&b, &cb).await.unwrap();
        let (state, hash) = (b.state.clone(), cb.hash.clone());
        let complete = tokio::spawn(async move {
            state
                .complete_callback(&hash, Ok("1".into()), now_millis())
                .await
        });
        let (state, hash) = (b.state.clone(), cb.hash.clone());
        let expire = tokio::spawn(async move {
            state
                .commit(StateWrite {
                    callbacks: vec![CallbackWrite::Expire { hash }],
                    ..Default::default()
                })
                .await
        });
        let completed = complete.await.unwrap();
        let expired = expire.await.unwrap();
        assert!(
            completed.is_ok() != expired.is_ok(),
            "round {round}: exactly one must win: {completed:?} / {expired:?}"
        );
        let stored = b.state.get_callback(&cb.hash).await.unwrap().unwrap();
        match stored.state {
            CallbackState::Completed { .. } => assert!(completed.is_ok()),
            CallbackState::Expired => assert!(expired.is_ok()),
            CallbackState::Waiting => panic!("round {round}: neither landed"),
        }
    }
}
