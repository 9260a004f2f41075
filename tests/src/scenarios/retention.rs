//! Scenarios for retention: a finished run is deleted with everything it
//! stored once its retention has run out, and nothing else is.

use super::T;
use crate::conformance::Backend;
use crate::{Service, example, saga_input, test_guest};
use serde_json::json;
use std::time::Duration;
use weft::config::RpcMode;
use weft::model::{RunStatus, StepRecord};
use weft::service::ServiceError;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// With a retention of one day, a finished saga (a stored-aside input,
/// retried attempts, logs) and a finished event run (an event left in its
/// inbox) carry an expiry a day after they finished, survive a sweep just
/// before it, and are gone after one just past it: run, steps, attempts,
/// logs, events and payloads. A run still running is untouched. The time
/// is given to the sweep, not waited for.
pub async fn a_run_past_its_retention_is_deleted_with_everything_it_stored(b: Backend) {
    let raw = b.state.clone();
    let blobs = b.blobs.clone();
    let mut s = Service::on(b, RpcMode::Queued, |settings, _| {
        settings.retention = Some(DAY);
    });
    s.deploy("order-saga", &example("order-saga")).await;
    s.deploy("order-rpc", &example("order-rpc")).await;
    s.deploy("inbox", &test_guest("inbox")).await;
    s.start_worker();

    let mut input = saga_input("o-expiring");
    input["note"] = json!("n".repeat(100_000));
    let saga = s.run("order-saga", &input, T).await;
    assert_eq!(saga.status, RunStatus::Completed, "{saga:?}");
    let evented = s
        .svc
        .start_run(
            "inbox",
            &json!({ "waits": [{ "event": "go" }] }).to_string(),
        )
        .await
        .unwrap();
    for _ in 0..2 {
        s.svc.send_event(&evented, "go", "1", None).await.unwrap();
    }
    let evented = s.wait(&evented, T).await;
    assert_eq!(evented.status, RunStatus::Completed, "{evented:?}");
    let running = s
        .svc
        .start_run(
            "inbox",
            &json!({ "waits": [{ "event": "never" }] }).to_string(),
        )
        .await
        .unwrap();

    let expiry = saga.expires_at.expect("a finished run has an expiry");
    let day = DAY.as_millis() as u64;
    assert!(
        expiry >= saga.updated_at + day && expiry < saga.updated_at + day + 1_000,
        "expires {expiry}, finished {}",
        saga.updated_at
    );
    assert!(
        blobs.run_bytes(&saga.id).await.unwrap() > 0,
        "the input is stored aside"
    );
    let saga_steps: Vec<StepRecord> = raw.list_steps(&saga.id).await.unwrap();
    assert!(
        saga_steps.iter().any(|st| st.attempt_count > 1),
        "the charge was retried, so there are attempts to delete"
    );
    assert!(!raw.list_logs(&saga.id).await.unwrap().is_empty());
    assert!(raw.next_event(&evented.id, "go").await.unwrap().is_some());

    let earliest = saga.expires_at.min(evented.expires_at).unwrap();
    assert_eq!(s.svc.purge_expired(earliest - 1).await.unwrap(), 0);
    assert!(s.svc.get_run(&saga.id).await.is_ok());

    let later = saga.expires_at.max(evented.expires_at).unwrap() + 60_000;
    assert_eq!(s.svc.purge_expired(later).await.unwrap(), 2);
    for id in [&saga.id, &evented.id] {
        let gone = s.svc.get_run(id).await;
        assert!(matches!(gone, Err(ServiceError::UnknownRun(_))), "{gone:?}");
        assert!(raw.get_run(id).await.unwrap().is_none());
        assert!(raw.list_steps(id).await.unwrap().is_empty());
        assert!(raw.list_logs(id).await.unwrap().is_empty());
        assert_eq!(blobs.run_bytes(id).await.unwrap(), 0);
    }
    for step in &saga_steps {
        let key = StepRecord::key(&saga.id, &step.name);
        assert!(raw.list_attempts(&key).await.unwrap().is_empty(), "{key}");
        assert!(raw.get_step(&saga.id, &step.name).await.unwrap().is_none());
    }
    assert!(raw.next_event(&evented.id, "go").await.unwrap().is_none());

    let still = raw
        .get_run(&running)
        .await
        .unwrap()
        .expect("the running run");
    assert_eq!(still.status, RunStatus::Running);
    assert_eq!(still.expires_at, None);
    assert_eq!(s.svc.purge_expired(later + day * 365).await.unwrap(), 0);
    s.svc.cancel(&running, "done").await.unwrap();
}
