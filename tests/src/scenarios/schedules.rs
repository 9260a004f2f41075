//! Scenarios for schedules: each time fires one run whoever fires it,
//! overlap policies, pause and resume, and missed times after an outage.
//! The clock is driven by hand, so a cron minute takes no real minute.

use crate::Service;
use crate::conformance::Backend;
use crate::test_guest;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use weft::backend::RunQuery;
use weft::config::RpcMode;
use weft::model::{Clock, Envelope, ManualClock, Millis, Overlap, RunStatus, WorkMessage};
use weft::service::{ScheduleSpec, ServiceError};

const TEN_MINUTES: Millis = 600_000;

fn advance_to(clock: &ManualClock, at: Millis) {
    let now = clock.now_millis();
    if at > now {
        clock.advance(Duration::from_millis(at - now));
    }
}

fn spec(overlap: Overlap) -> ScheduleSpec {
    ScheduleSpec {
        workflow: "fanout".into(),
        cron: "*/10 * * * *".into(),
        // Each run waits (for an event nobody sends), so it is still
        // running when the next time comes.
        input: json!({ "raceMs": 3_600_000 }).to_string(),
        overlap,
    }
}

async fn runs_of(s: &Service) -> Vec<weft::model::RunRecord> {
    let query = RunQuery {
        workflow: Some("fanout".into()),
        ..RunQuery::default()
    };
    s.svc.list_runs(&query).await.unwrap()
}

/// Fired by two workers at once (and by its own message), a time starts
/// one run, whose id names the schedule and the time; then the schedule
/// moves to its next time. While that run still runs, the next time is
/// skipped (`skip`), or starts another run (`allow`). Paused, it fires
/// nothing; resumed, it goes on from the next time after the resume.
/// After an outage it starts one run, for the latest time it missed.
pub async fn a_schedule_fires_each_time_once(b: Backend) {
    let clock = Arc::new(ManualClock::default());
    let shared = clock.clone();
    let s = Service::on(b, RpcMode::Queued, move |settings, _| {
        settings.clock = shared
    });
    s.deploy("fanout", &test_guest("fanout")).await;
    s.deploy("fanout-rpc", &test_guest("fanout-rpc")).await;

    let put = s
        .svc
        .put_schedule("tick", spec(Overlap::Skip))
        .await
        .unwrap();
    let t1 = put.next_fire_at.expect("a next time");
    assert!(t1 > clock.now_millis() && t1 % TEN_MINUTES == 0, "{put:?}");
    assert_eq!(s.svc.fire_due_schedules().await.unwrap(), 0, "not due yet");

    advance_to(&clock, t1 + 5_000);
    let (a, b2) = tokio::join!(s.svc.fire_due_schedules(), s.svc.fire_due_schedules());
    assert_eq!(a.unwrap() + b2.unwrap(), 1, "one of the two moved it on");
    // The message armed for that time comes too, and changes nothing.
    let late = Envelope::now(WorkMessage::FireSchedule {
        name: "tick".into(),
        at: t1,
    });
    s.svc.handle(&late).await.unwrap();
    let runs = runs_of(&s).await;
    let schedule = s.svc.get_schedule("tick").await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].id, schedule.run_id(t1));
    assert_eq!(schedule.last_run_id.as_ref(), Some(&runs[0].id));
    assert_eq!(schedule.next_fire_at, Some(t1 + TEN_MINUTES));

    // The run of t1 still runs: with `skip`, t2 starts nothing.
    advance_to(&clock, t1 + TEN_MINUTES + 1_000);
    s.svc.fire_due_schedules().await.unwrap();
    let schedule = s.svc.get_schedule("tick").await.unwrap();
    assert_eq!((runs_of(&s).await.len(), schedule.skipped), (1, 1));
    assert_eq!(schedule.next_fire_at, Some(t1 + 2 * TEN_MINUTES));

    // With `allow`, t3 starts another beside it.
    s.svc
        .put_schedule("tick", spec(Overlap::Allow))
        .await
        .unwrap();
    advance_to(&clock, t1 + 2 * TEN_MINUTES + 1_000);
    s.svc.fire_due_schedules().await.unwrap();
    assert_eq!(runs_of(&s).await.len(), 2);

    // Paused: t4 passes with nothing; resumed, the next time is after now.
    let paused = s.svc.pause_schedule("tick").await.unwrap();
    assert_eq!(paused.next_fire_at, None);
    advance_to(&clock, t1 + 3 * TEN_MINUTES + 1_000);
    assert_eq!(s.svc.fire_due_schedules().await.unwrap(), 0);
    let resumed = s.svc.resume_schedule("tick").await.unwrap();
    assert_eq!(resumed.next_fire_at, Some(t1 + 4 * TEN_MINUTES));
    assert_eq!(runs_of(&s).await.len(), 2);

    // Down for an hour: one run, for the latest time missed.
    advance_to(&clock, t1 + 10 * TEN_MINUTES + 1_000);
    s.svc.fire_due_schedules().await.unwrap();
    let schedule = s.svc.get_schedule("tick").await.unwrap();
    let runs = runs_of(&s).await;
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert_eq!(schedule.last_fire_at, Some(t1 + 10 * TEN_MINUTES));
    assert!(
        runs.iter()
            .any(|r| r.id == schedule.run_id(t1 + 10 * TEN_MINUTES))
    );
    assert!(runs.iter().all(|r| r.status == RunStatus::Running));

    // Bad requests change nothing.
    let bad_cron = ScheduleSpec {
        cron: "61 * * * *".into(),
        ..spec(Overlap::Skip)
    };
    let refused = s.svc.put_schedule("tick", bad_cron).await;
    assert!(
        matches!(refused, Err(ServiceError::InvalidSchedule(_))),
        "{refused:?}"
    );
    let unknown = ScheduleSpec {
        workflow: "nope".into(),
        ..spec(Overlap::Skip)
    };
    let refused = s.svc.put_schedule("tick", unknown).await;
    assert!(
        matches!(refused, Err(ServiceError::UnknownWorkflow(_))),
        "{refused:?}"
    );
    assert_eq!(
        s.svc.get_schedule("tick").await.unwrap().cron,
        "*/10 * * * *"
    );
    s.svc.delete_schedule("tick").await.unwrap();
    let gone = s.svc.pause_schedule("tick").await;
    assert!(
        matches!(gone, Err(ServiceError::UnknownSchedule(_))),
        "{gone:?}"
    );
    for run in runs_of(&s).await {
        let _ = s.svc.cancel(&run.id, "test over").await;
    }
}
