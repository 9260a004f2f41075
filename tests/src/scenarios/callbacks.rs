//! Scenarios for callbacks: a token handed out and completed once, with a
//! result or an error; expiry and its refusal; forged tokens; replay in
//! every language.

use super::{T, assert_one_outcome_per_step, output};
use crate::Service;
use crate::conformance::Backend;
use crate::test_guest;
use serde_json::json;
use std::time::Duration;
use weft::config::RpcMode;
use weft::model::{ErrorInfo, RunId, StepStatus, TOKEN_PREFIX};
use weft::service::ServiceError;

/// The callback guest in each language, by module name.
const CALLBACKS: [&str; 3] = ["callback", "callback-js", "callback-py"];

async fn callback_service(b: Backend, replay_every_step: bool, guests: &[&str]) -> Service {
    let mut s = Service::on(b, RpcMode::Queued, |settings, _| {
        settings.replay_every_step = replay_every_step;
    });
    for &name in guests {
        s.deploy(name, &test_guest(name)).await;
    }
    s.start_worker();
    s
}

/// The token the run logged, as another system would receive it.
pub(super) async fn token_of(s: &Service, id: &RunId) -> String {
    for _ in 0..1200 {
        let logs = s.svc.logs(id).await.unwrap();
        if let Some(token) = logs
            .iter()
            .find_map(|l| l.message.strip_prefix("callback token: "))
        {
            return token.to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {id} never logged its callback token");
}

/// Completed once with a result, the wait returns it; a second completion
/// with another outcome and a forged token are refused and change nothing,
/// while the same completion again (a client's retry) answers as the
/// first did. Completed with an error, the wait fails with it.
pub async fn a_callback_delivers_its_completion_once(b: Backend) {
    let s = callback_service(b, false, &["callback"]).await;
    let id = s
        .svc
        .start_run("callback", &json!({"timeoutMs": 600000}).to_string())
        .await
        .unwrap();
    let token = token_of(&s, &id).await;
    assert!(token.starts_with(TOKEN_PREFIX) && token.len() >= TOKEN_PREFIX.len() + 32);
    let forged = format!("{}{}", TOKEN_PREFIX, "0".repeat(64));
    let refused = s.svc.complete_callback(&forged, Ok("1".into())).await;
    assert!(
        matches!(refused, Err(ServiceError::UnknownCallback)),
        "{refused:?}"
    );

    let done = s
        .svc
        .complete_callback(&token, Ok(r#"{"paid":true}"#.into()))
        .await
        .unwrap();
    assert_eq!(done.run_id, id);
    let twice = s
        .svc
        .complete_callback(&token, Ok(r#"{"paid":false}"#.into()))
        .await;
    assert!(
        matches!(twice, Err(ServiceError::CallbackClosed(_))),
        "{twice:?}"
    );
    // The same outcome again, written differently: the retry of a call
    // whose answer was lost.
    let again = s
        .svc
        .complete_callback(&token, Ok(r#"{ "paid": true }"#.into()))
        .await
        .unwrap();
    assert_eq!(again, done);
    let run = s.wait(&id, T).await;
    assert_eq!(output(&run), json!({"result": {"paid": true}}), "{run:?}");
    let after_the_end = s
        .svc
        .complete_callback(&token, Ok(r#"{"paid":true}"#.into()))
        .await
        .unwrap();
    assert_eq!(after_the_end, done);
    assert_one_outcome_per_step(&s, &run).await;

    let failing = s
        .svc
        .start_run("callback", &json!({}).to_string())
        .await
        .unwrap();
    let token = token_of(&s, &failing).await;
    s.svc
        .complete_callback(&token, Err(ErrorInfo::new("declined", "card declined")))
        .await
        .unwrap();
    let other_error = s
        .svc
        .complete_callback(&token, Err(ErrorInfo::new("declined", "expired card")))
        .await;
    assert!(
        matches!(other_error, Err(ServiceError::CallbackClosed(_))),
        "{other_error:?}"
    );
    let run = s.wait(&failing, T).await;
    assert_eq!(output(&run), json!({"error": "declined"}), "{run:?}");
}

/// A callback nobody completes in time ends its wait with `timeout`, and a
/// completion after that is refused with nothing changed.
pub async fn an_expired_callback_times_out_and_refuses_completion(b: Backend) {
    let s = callback_service(b, false, &["callback"]).await;
    let id = s
        .svc
        .start_run("callback", &json!({"timeoutMs": 300}).to_string())
        .await
        .unwrap();
    let token = token_of(&s, &id).await;
    let run = s.wait(&id, T).await;
    assert_eq!(output(&run), json!({"error": "timeout"}), "{run:?}");
    let late = s.svc.complete_callback(&token, Ok("1".into())).await;
    assert!(
        matches!(late, Err(ServiceError::CallbackClosed(_))),
        "{late:?}"
    );
    let steps = s.svc.steps(&id).await.unwrap();
    let wait = steps
        .iter()
        .find(|v| v.step.name == "await-approval")
        .unwrap();
    assert_eq!(wait.step.status, StepStatus::Failed);
}

/// Replayed after every step, a callback run gets the same token back
/// from the journal and ends as the first execution did, in every language.
pub async fn callbacks_replay_the_same_at_every_step(b: Backend) {
    let s = callback_service(b, true, &CALLBACKS).await;
    let mut runs = Vec::new();
    for workflow in CALLBACKS {
        let id = s.svc.start_run(workflow, "{}").await.unwrap();
        runs.push((workflow, id));
    }
    for (workflow, id) in &runs {
        let token = token_of(&s, id).await;
        s.svc
            .complete_callback(&token, Ok(format!("\"{workflow}\"")))
            .await
            .unwrap();
    }
    for (workflow, id) in runs {
        let run = s.wait(&id, T).await;
        assert_eq!(
            output(&run),
            json!({"result": workflow}),
            "{workflow}: {run:?}"
        );
        let journal: Vec<(String, String, StepStatus)> = s
            .svc
            .steps(&id)
            .await
            .unwrap()
            .into_iter()
            .map(|v| (v.step.name, v.step.kind.as_str().to_string(), v.step.status))
            .collect();
        assert_eq!(
            journal,
            vec![
                (
                    "approval-link".to_string(),
                    "callback".to_string(),
                    StepStatus::Succeeded
                ),
                (
                    "await-approval".into(),
                    "callback_wait".into(),
                    StepStatus::Succeeded
                ),
            ],
            "{workflow}"
        );
    }
}
