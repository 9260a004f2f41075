//! RPC functions that misbehave on purpose and keep their own count.
//!
//! Every call is first reported to `counterUrl` (an HTTP server the test
//! runs; the module is deployed with that host allow-listed), so the test
//! can compare what actually executed with the host's attempt history. A
//! first attempt then fails (`failPct`) or hangs (`hangPct`), chosen by a
//! hash of the idempotency key, so the choice is the same wherever and
//! however often the attempt runs.

use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use weft_rpc::{Call, Error};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    order_id: String,
    counter_url: String,
    fail_pct: u32,
    hang_pct: u32,
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn misbehave(call: &Call, req: &Request) -> Result<(), Error> {
    let report = json!({ "key": call.idempotency_key, "attempt": call.attempt }).to_string();
    waki::Client::new()
        .post(&req.counter_url)
        .header("content-type", "application/json")
        .body(report.into_bytes())
        .send()
        .map_err(|e| Error::new("counter_unreachable", e.to_string()))?;
    if call.attempt == 1 {
        let roll = (fnv(&call.idempotency_key) % 100) as u32;
        if roll < req.fail_pct {
            return Err(Error::new(
                "injected_failure",
                "the first attempt fails on purpose",
            ));
        }
        if roll < req.fail_pct + req.hang_pct {
            std::thread::sleep(Duration::from_secs(600));
        }
    }
    Ok(())
}

fn reserve(call: &Call, req: Request) -> Result<Value, Error> {
    misbehave(call, &req)?;
    Ok(json!({ "reservationId": format!("res-{}", req.order_id) }))
}

fn charge(call: &Call, req: Request) -> Result<Value, Error> {
    misbehave(call, &req)?;
    Ok(json!({ "chargeId": format!("ch-{}", req.order_id) }))
}

fn ship(call: &Call, req: Request) -> Result<Value, Error> {
    misbehave(call, &req)?;
    Ok(json!({ "trackingNumber": format!("trk-{}", req.order_id) }))
}

weft_rpc::rpc_functions! {
    "reserve" => reserve,
    "charge" => charge,
    "ship" => ship,
}
