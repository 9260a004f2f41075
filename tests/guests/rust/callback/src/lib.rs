//! Creates a callback, logs its token (the tests read it from the logs, as
//! another system would get it from an email), waits for it, and returns
//! what the wait got.
//!
//! Input `{"timeoutMs": <u64>?}`; output `{"result": <json>}` or
//! `{"error": "<code>"}`.

use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use weft_sdk::{Context, Error};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    timeout_ms: Option<u64>,
}

fn callback(ctx: &mut Context, input: Input) -> Result<Value, Error> {
    let token = ctx.create_callback("approval-link", input.timeout_ms.map(Duration::from_millis));
    ctx.info(&format!("callback token: {token}"));
    Ok(
        match ctx.await_callback::<Value>("await-approval", &token) {
            Ok(result) => json!({ "result": result }),
            Err(e) => json!({ "error": e.code }),
        },
    )
}

weft_sdk::workflow!(callback);
