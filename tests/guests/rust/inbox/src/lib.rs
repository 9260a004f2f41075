//! Waits for events in the order its input lists them, and returns what
//! each wait got: the event tests drive it.
//!
//! Input `{"waits": [{"event": "e", "timeoutMs": 500}, ...], "sleepMs": 0}`
//! (an optional durable sleep first, so events can be sent before any wait
//! exists); output `[{"event": "e", "payload": <json>} | {"event": "e",
//! "timedOut": true}, ...]`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use weft_sdk::{Context, Error};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wait {
    event: String,
    timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    waits: Vec<Wait>,
    #[serde(default)]
    sleep_ms: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Got {
    event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    timed_out: bool,
}

fn waits(ctx: &mut Context, input: Input) -> Result<Vec<Got>, Error> {
    if input.sleep_ms > 0 {
        ctx.sleep("before", Duration::from_millis(input.sleep_ms));
    }
    let mut got = Vec::new();
    for wait in input.waits {
        let timeout = wait.timeout_ms.map(Duration::from_millis);
        let step = format!("wait-{}", wait.event);
        match ctx.wait_event::<Value>(&step, &wait.event, timeout) {
            Ok(payload) => got.push(Got {
                event: wait.event,
                payload: Some(payload),
                timed_out: false,
            }),
            Err(e) if e.code == "timeout" => got.push(Got {
                event: wait.event,
                payload: None,
                timed_out: true,
            }),
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

weft_sdk::workflow!(waits);
