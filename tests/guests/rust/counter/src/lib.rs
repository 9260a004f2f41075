//! N sequential trivial steps, each `x → x + 1`: the workload for measuring
//! what one step costs (time, and requests on AWS).
//!
//! `{"n": 100, "mode": "inline"}` records 100 inline steps;
//! `{"n": 100, "mode": "rpc"}` calls `counter-rpc/incr` 100 times.

use serde::{Deserialize, Serialize};
use weft_sdk::{Context, Error};

#[derive(Deserialize)]
struct Input {
    n: u64,
    #[serde(default = "inline")]
    mode: String,
}

fn inline() -> String {
    "inline".into()
}

#[derive(Serialize)]
struct Output {
    x: u64,
}

fn count(ctx: &mut Context, input: Input) -> Result<Output, Error> {
    let mut x = 0u64;
    for _ in 0..input.n {
        x = match input.mode.as_str() {
            "inline" => ctx.step("inc", || Ok::<_, Error>(x + 1))?,
            "rpc" => ctx.rpc("inc", "counter-rpc/incr", &x)?,
            other => {
                return Err(
                    Error::new("invalid_input", format!("unknown mode {other:?}")).permanent(),
                );
            }
        };
    }
    Ok(Output { x })
}

weft_sdk::workflow!(count);
