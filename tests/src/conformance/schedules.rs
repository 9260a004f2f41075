//! Conformance cases for schedules: written under the version read, listed
//! by name, and found by their due time.

use super::{Backend, is_conflict};
use weft::backend::ScheduleWrite;
use weft::model::{Overlap, Schedule, now_millis};

fn schedule(name: &str, next_fire_at: Option<u64>, paused: bool) -> Schedule {
    let now = now_millis();
    Schedule {
        name: name.into(),
        workflow: "report".into(),
        cron: "*/5 * * * *".into(),
        input: r#"{"n":1}"#.into(),
        overlap: Overlap::Skip,
        paused,
        next_fire_at,
        last_fire_at: None,
        last_run_id: None,
        skipped: 0,
        created_at: now,
        updated_at: now,
        version: 0,
    }
}

async fn put(
    b: &Backend,
    record: Schedule,
    expected_version: Option<u64>,
) -> Result<(), weft::backend::StoreError> {
    b.state
        .put_schedule(ScheduleWrite {
            record,
            expected_version,
        })
        .await
}

fn names(schedules: Vec<Schedule>) -> Vec<String> {
    schedules.into_iter().map(|s| s.name).collect()
}

/// A schedule is created once, then changed only by a writer naming the
/// version it read; each write bumps the version.
pub async fn a_schedule_changes_only_from_the_version_read(b: Backend) {
    let s = schedule("nightly", Some(now_millis() + 60_000), false);
    put(&b, s.clone(), None).await.unwrap();
    assert!(is_conflict(put(&b, s.clone(), None).await), "created twice");
    let stored = b.state.get_schedule("nightly").await.unwrap().unwrap();
    assert_eq!((stored.version, &stored.cron), (0, &s.cron));

    let mut changed = stored.clone();
    changed.cron = "0 * * * *".into();
    put(&b, changed.clone(), Some(0)).await.unwrap();
    // A writer that read version 0 too loses.
    assert!(
        is_conflict(put(&b, s.clone(), Some(0)).await),
        "stale write landed"
    );
    let stored = b.state.get_schedule("nightly").await.unwrap().unwrap();
    assert_eq!((stored.version, stored.cron.as_str()), (1, "0 * * * *"));

    assert!(b.state.delete_schedule("nightly").await.unwrap());
    assert!(!b.state.delete_schedule("nightly").await.unwrap());
    assert!(b.state.get_schedule("nightly").await.unwrap().is_none());
}

/// Listing gives every schedule by name; the due ones are those unpaused
/// with a next fire at or before the time asked, earliest first.
pub async fn due_schedules_are_found_by_their_time(b: Backend) {
    let now = now_millis();
    let cases = [
        ("b-due", Some(now - 5_000), false),
        ("a-due-earlier", Some(now - 60_000), false),
        ("c-later", Some(now + 60_000), false),
        ("d-paused", None, true),
        ("e-due-but-paused", Some(now - 1_000), true),
    ];
    for (name, at, paused) in cases {
        put(&b, schedule(name, at, paused), None).await.unwrap();
    }
    assert_eq!(
        names(b.state.list_schedules().await.unwrap()),
        [
            "a-due-earlier",
            "b-due",
            "c-later",
            "d-paused",
            "e-due-but-paused"
        ]
    );
    let due = names(b.state.due_schedules(now, 10).await.unwrap());
    assert_eq!(due, ["a-due-earlier", "b-due"]);
    let first = names(b.state.due_schedules(now, 1).await.unwrap());
    assert_eq!(first, ["a-due-earlier"]);
    // Once moved on, it is no longer due.
    let mut fired = b
        .state
        .get_schedule("a-due-earlier")
        .await
        .unwrap()
        .unwrap();
    fired.next_fire_at = Some(now + 300_000);
    put(&b, fired, Some(0)).await.unwrap();
    let due = names(b.state.due_schedules(now, 10).await.unwrap());
    assert_eq!(due, ["b-due"]);
}
