//! Conformance cases for run inboxes: `send_event`, `next_event` and the
//! event takes a commit carries.

use super::{Backend, append, is_conflict, run_record, step};
use weft::backend::{EventTake, NewEvent, RunWrite, StateWrite, StepExpect, StepWrite, StoreError};
use weft::model::{EventSent, RunId, RunRecord, RunStatus, StepStatus, now_millis};

fn event(run: &RunId, name: &str, id: &str, payload: &str) -> NewEvent {
    NewEvent {
        run_id: run.clone(),
        name: name.into(),
        event_id: id.into(),
        payload: payload.into(),
        sent_at: now_millis(),
    }
}

async fn running(b: &Backend, workflow: &str) -> RunRecord {
    let run = run_record(workflow);
    b.state.create_run(&run).await.unwrap();
    run
}

/// Events of one name are numbered 0, 1, 2... in the order stored, each
/// name on its own; a re-send under a used id is the same event.
pub async fn events_are_numbered_per_name_and_deduplicated_by_id(b: Backend) {
    let run = running(&b, "wf-inbox").await;
    let first = b
        .state
        .send_event(event(&run.id, "approval", "a", r#"{"ok":true}"#))
        .await
        .unwrap();
    let second = b
        .state
        .send_event(event(&run.id, "approval", "b", "2"))
        .await
        .unwrap();
    let other = b
        .state
        .send_event(event(&run.id, "shipped", "a", "3"))
        .await
        .unwrap();
    assert!(matches!(&first, EventSent::Stored(e) if e.seq == 0 && e.payload == r#"{"ok":true}"#));
    assert!(matches!(&second, EventSent::Stored(e) if e.seq == 1));
    assert!(
        matches!(&other, EventSent::Stored(e) if e.seq == 0),
        "{other:?}"
    );

    // The same id again, even with another payload, changes nothing.
    let again = b
        .state
        .send_event(event(&run.id, "approval", "a", "99"))
        .await
        .unwrap();
    match again {
        EventSent::Duplicate(e) => {
            assert_eq!((e.seq, e.payload.as_str()), (0, r#"{"ok":true}"#));
        }
        EventSent::Stored(e) => panic!("a re-send was stored as #{}", e.seq),
    }
    let third = b
        .state
        .send_event(event(&run.id, "approval", "c", "4"))
        .await
        .unwrap();
    assert_eq!(
        third.record().seq,
        2,
        "a duplicate must not use up a number"
    );

    let next = b
        .state
        .next_event(&run.id, "approval")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (next.seq, next.event_id.as_str(), next.taken_by),
        (0, "a", None)
    );
    assert!(
        b.state
            .next_event(&run.id, "nothing-sent")
            .await
            .unwrap()
            .is_none()
    );
}

/// An unknown run is `NotFound`; a finished one takes no new events, yet
/// still answers a repeat of one it took before as the repeat.
pub async fn only_running_runs_take_events(b: Backend) {
    let unknown = RunId::generate();
    let sent = b
        .state
        .send_event(event(&unknown, "approval", "a", "1"))
        .await;
    assert!(matches!(sent, Err(StoreError::NotFound(_))), "{sent:?}");

    let run = running(&b, "wf-finished").await;
    b.state
        .send_event(event(&run.id, "approval", "early", "1"))
        .await
        .unwrap();
    let mut done = run.clone();
    done.status = RunStatus::Completed;
    done.output = Some("1".into());
    b.state
        .commit(StateWrite {
            run: Some(RunWrite::replacing(&run, done)),
            ..Default::default()
        })
        .await
        .unwrap();
    let sent = b
        .state
        .send_event(event(&run.id, "approval", "a", "1"))
        .await;
    assert!(is_conflict(sent), "a finished run must refuse events");
    let repeat = b
        .state
        .send_event(event(&run.id, "approval", "early", "1"))
        .await;
    assert!(
        matches!(repeat, Ok(EventSent::Duplicate(ref e)) if e.seq == 0),
        "{repeat:?}"
    );
}

/// A take lands with the wait's step write or not at all; each event is
/// taken once, and only the oldest untaken one can be.
pub async fn an_event_is_taken_once_oldest_first_with_its_wait(b: Backend) {
    let mut run = running(&b, "wf-take").await;
    for id in ["a", "b"] {
        b.state
            .send_event(event(&run.id, "approval", id, &format!("\"{id}\"")))
            .await
            .unwrap();
    }
    let wait = step(&run, 0, "wait");
    append(b.state.as_ref(), &mut run, &wait).await.unwrap();
    let run_id = run.id.clone();
    let take = |seq: u64, name: &str| EventTake {
        run_id: run_id.clone(),
        name: "approval".into(),
        seq,
        step: name.into(),
    };
    let finish = |expect_status: StepStatus, take: EventTake| {
        let mut done = wait.clone();
        done.finish(Ok("\"a\"".into()), now_millis());
        StateWrite {
            steps: vec![StepWrite {
                record: done,
                expect: StepExpect::State {
                    status: expect_status,
                    attempt_count: 0,
                },
            }],
            events: vec![take],
            ..Default::default()
        }
    };

    // Event #1 is not the oldest: the whole write fails, the step included.
    assert!(is_conflict(
        b.state
            .commit(finish(StepStatus::Pending, take(1, "wait")))
            .await
    ));
    let stored = b.state.get_step(&run.id, "wait").await.unwrap().unwrap();
    assert_eq!(
        stored.status,
        StepStatus::Pending,
        "the step moved without its event"
    );

    b.state
        .commit(finish(StepStatus::Pending, take(0, "wait")))
        .await
        .unwrap();
    let next = b
        .state
        .next_event(&run.id, "approval")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.seq, 1, "the taken event is no longer waiting");

    // Taking #0 again (a racing duplicate with a stale view) fails whole.
    let other = step(&run, 1, "other-wait");
    append(b.state.as_ref(), &mut run, &other).await.unwrap();
    let mut done = other.clone();
    done.finish(Ok("\"a\"".into()), now_millis());
    let twice = StateWrite {
        steps: vec![StepWrite {
            record: done,
            expect: StepExpect::State {
                status: StepStatus::Pending,
                attempt_count: 0,
            },
        }],
        events: vec![take(0, "other-wait")],
        ..Default::default()
    };
    assert!(is_conflict(b.state.commit(twice).await));
    let stored = b
        .state
        .get_step(&run.id, "other-wait")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, StepStatus::Pending);

    // A re-send of a taken event says who took it.
    let again = b
        .state
        .send_event(event(&run.id, "approval", "a", "\"a\""))
        .await
        .unwrap();
    assert_eq!(again.record().taken_by.as_deref(), Some("wait"));

    // The listing shows who took what.
    let listed = b.state.list_events(&run.id).await.unwrap();
    let takers: Vec<_> = listed.iter().map(|e| (e.seq, e.taken_by.clone())).collect();
    assert_eq!(takers, [(0, Some("wait".to_string())), (1, None)]);
}

/// A run's events are listed whole, ordered by name then number, and only
/// its own: names holding the key separator included.
pub async fn a_runs_events_are_listed_by_name_and_number(b: Backend) {
    let run = running(&b, "wf-list").await;
    let other = running(&b, "wf-list").await;
    assert!(b.state.list_events(&run.id).await.unwrap().is_empty());
    for (name, id, payload) in [
        ("shipped", "s1", "1"),
        ("approval", "a1", r#"{"by":"ada"}"#),
        ("a#b", "x", "\"hash\""),
        ("approval", "a2", "2"),
    ] {
        b.state
            .send_event(event(&run.id, name, id, payload))
            .await
            .unwrap();
    }
    b.state
        .send_event(event(&other.id, "approval", "o", "0"))
        .await
        .unwrap();
    let listed = b.state.list_events(&run.id).await.unwrap();
    let shown: Vec<_> = listed
        .iter()
        .map(|e| {
            (
                e.name.as_str(),
                e.seq,
                e.event_id.as_str(),
                e.payload.as_str(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("a#b", 0, "x", "\"hash\""),
            ("approval", 0, "a1", r#"{"by":"ada"}"#),
            ("approval", 1, "a2", "2"),
            ("shipped", 0, "s1", "1"),
        ]
    );
    assert!(listed.iter().all(|e| e.run_id == run.id && e.sent_at > 0));
}

/// Sends racing on one inbox each get their own number, and racing
/// re-sends of one id store it once.
pub async fn concurrent_sends_get_distinct_numbers(b: Backend) {
    let run = running(&b, "wf-race").await;
    let sends = (0..12).map(|i| {
        let state = b.state.clone();
        let e = event(&run.id, "tick", &format!("id-{i}"), &i.to_string());
        tokio::spawn(async move { state.send_event(e).await })
    });
    let mut seqs = Vec::new();
    for handle in sends {
        let sent = handle.await.unwrap().unwrap();
        assert!(matches!(sent, EventSent::Stored(_)));
        seqs.push(sent.record().seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (0..12).collect::<Vec<u64>>());

    let repeats = (0..6).map(|_| {
        let state = b.state.clone();
        let e = event(&run.id, "once", "same-id", "1");
        tokio::spawn(async move { state.send_event(e).await })
    });
    let mut stored = 0;
    for handle in repeats {
        if let EventSent::Stored(e) = handle.await.unwrap().unwrap() {
            assert_eq!(e.seq, 0);
            stored += 1;
        }
    }
    assert_eq!(stored, 1, "one id, one event");
}
