//! Scenarios for large payloads: stored aside under the store's items,
//! read back whole, refused over the limit.

use super::{T, output};
use crate::conformance::Backend;
use crate::{Service, example, saga_input, test_guest};
use serde_json::json;
use weft::backend::RunQuery;
use weft::config::RpcMode;
use weft::model::RunStatus;
use weft::service::ServiceError;

/// What a DynamoDB item may hold; the raw records must stay well below.
const ITEM_LIMIT: usize = 400 * 1024;

/// A 20 MB run input and a 5 MB RPC result go through the order saga: the
/// run completes with the output a client expects, byte for byte, and the
/// input reads back unchanged, while the records the backend stores (read
/// beneath the payload layer) hold only references.
pub async fn large_payloads_are_stored_aside_and_read_back_whole(b: Backend) {
    let raw = b.state.clone();
    let mut s = Service::on(b, RpcMode::Queued, |_, _| {});
    s.deploy("order-saga", &example("order-saga")).await;
    s.deploy("order-rpc", &example("order-rpc")).await;
    s.start_worker();

    const LABEL: usize = 5 << 20;
    let mut input = saga_input("o-large");
    input["labelBytes"] = json!(LABEL);
    input["note"] = json!("n".repeat(20 << 20));
    let input_text = input.to_string();
    let id = s.svc.start_run("order-saga", &input_text).await.unwrap();
    let run = s.wait(&id, T).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);

    let label: String = "label:trk-o-large:"
        .chars()
        .chain("0123456789abcdef".chars().cycle())
        .take(LABEL)
        .collect();
    let expected = json!({
        "orderId": "o-large",
        "status": "completed",
        "totalCents": 3097,
        "reservationId": "res-o-large",
        "chargeId": "ch-o-large",
        "trackingNumber": "trk-o-large",
        "label": label,
    });
    assert_eq!(output(&run), expected);
    assert_eq!(run.input, input_text, "the input reads back byte for byte");
    let ship = s.svc.steps(&id).await.unwrap();
    let ship = ship
        .iter()
        .find(|v| v.step.name == "ship")
        .expect("ship step");
    let result: serde_json::Value =
        serde_json::from_str(ship.step.result.as_deref().unwrap()).unwrap();
    assert_eq!(result["label"].as_str().map(str::len), Some(LABEL));

    // Beneath the payload layer: references, not payloads.
    let stored = raw.get_run(&id).await.unwrap().expect("the stored run");
    assert!(
        stored.input.starts_with("@payload:"),
        "{:.80}",
        stored.input
    );
    let stored_output = stored.output.as_deref().unwrap_or_default();
    assert!(
        stored_output.starts_with("@payload:"),
        "{stored_output:.80}"
    );
    let record_bytes = serde_json::to_string(&stored).unwrap().len();
    assert!(
        record_bytes < ITEM_LIMIT / 4,
        "the run record is {record_bytes} bytes"
    );
    for step in raw.list_steps(&id).await.unwrap() {
        let bytes = serde_json::to_string(&step).unwrap().len();
        assert!(
            bytes < ITEM_LIMIT / 4,
            "step {} is {bytes} bytes",
            step.name
        );
    }
}

/// Over the payload limit (32 MB by default), a run input is refused with
/// `payload_too_large`, naming both sizes, and nothing is stored.
pub async fn a_payload_over_the_limit_is_refused_with_its_size(b: Backend) {
    let s = Service::on(b, RpcMode::Queued, |_, _| {});
    s.deploy("order-saga", &example("order-saga")).await;
    let mut input = saga_input("o-huge");
    input["note"] = json!("n".repeat(40 << 20));
    let input_text = input.to_string();
    let err = s
        .svc
        .start_run("order-saga", &input_text)
        .await
        .expect_err("a 40 MB input is refused");
    let ServiceError::PayloadTooLarge(message) = &err else {
        panic!("expected payload_too_large, got {err:?}");
    };
    assert!(message.contains(&input_text.len().to_string()), "{message}");
    assert!(message.contains(&(32 << 20).to_string()), "{message}");
    let query = RunQuery {
        limit: 10,
        ..Default::default()
    };
    let runs = s.svc.list_runs(&query).await.unwrap();
    assert!(runs.is_empty(), "nothing was stored: {runs:?}");
}

/// A 2 MB event payload and a 2 MB callback result reach their workflows
/// whole, and the steps that took them store references.
pub async fn large_events_and_callback_results_are_stored_aside(b: Backend) {
    let raw = b.state.clone();
    let mut s = Service::on(b, RpcMode::Queued, |_, _| {});
    s.deploy("inbox", &test_guest("inbox")).await;
    s.deploy("callback", &test_guest("callback")).await;
    s.start_worker();
    let big = json!({ "blob": "b".repeat(2 << 20) });

    let inbox = json!({ "waits": [{ "event": "big" }] }).to_string();
    let waiting = s.svc.start_run("inbox", &inbox).await.unwrap();
    s.svc
        .send_event(&waiting, "big", &big.to_string(), None)
        .await
        .unwrap();
    let run = s.wait(&waiting, T).await;
    assert_eq!(output(&run), json!([{ "event": "big", "payload": big }]));

    let called = s.svc.start_run("callback", "{}").await.unwrap();
    let token = super::callbacks::token_of(&s, &called).await;
    s.svc
        .complete_callback(&token, Ok(big.to_string()))
        .await
        .unwrap();
    let run = s.wait(&called, T).await;
    assert_eq!(output(&run), json!({ "result": big }));

    for id in [&waiting, &called] {
        let steps = raw.list_steps(id).await.unwrap();
        let took = steps
            .iter()
            .filter_map(|st| st.result.as_deref())
            .filter(|r| r.starts_with("@payload:"))
            .count();
        assert_eq!(took, 1, "one step result stored aside: {steps:?}");
    }
}
