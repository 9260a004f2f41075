//! The RPC side of the fan-out tests: `slow` answers after a delay, so
//! members finish in an order the test chooses and overlap in time.
//!
//! Input `{"value": <json>, "ms": 200, "fail": false}`; output `value`, or
//! a permanent error of code `refused` when `fail` is set.

use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;
use weft_rpc::{Call, Error};

#[derive(Deserialize)]
struct Slow {
    value: Value,
    #[serde(default)]
    ms: u64,
    #[serde(default)]
    fail: bool,
}

fn slow(_call: &Call, input: Slow) -> Result<Value, Error> {
    std::thread::sleep(Duration::from_millis(input.ms));
    if input.fail {
        return Err(Error::new("refused", format!("member {} refuses", input.value)).permanent());
    }
    Ok(input.value)
}

weft_rpc::rpc_functions! {
    "slow" => slow,
}
