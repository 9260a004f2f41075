//! Calls one RPC (`{"rpc": "<module>/<function>", "input": ...}`) without
//! retries and returns its result, or fails with its error: a harness for
//! testing RPC modules through a real run.

use serde::Deserialize;
use serde_json::Value;
use weft_sdk::{Context, Error, RetryPolicy, StepOptions};

#[derive(Deserialize)]
struct Input {
    rpc: String,
    input: Value,
}

fn relay(ctx: &mut Context, input: Input) -> Result<Value, Error> {
    let once = StepOptions::default().retry(RetryPolicy::none());
    ctx.rpc_with("call", &input.rpc, &input.input, &once)
}

weft_sdk::workflow!(relay);
