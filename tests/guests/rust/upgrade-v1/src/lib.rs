//! Version 1 of a workflow upgraded under its running runs: it prepares,
//! on path `b` also checks the stock, sleeps, and says which version
//! finished it. Version 2 changes only path `b`, so a replay-checked
//! upgrade moves the path-`a` runs and leaves the path-`b` ones.

use serde::Deserialize;
use std::time::Duration;
use weft_sdk::{Context, Error};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    path: String,
    sleep_ms: u64,
}

fn flow(ctx: &mut Context, input: Input) -> Result<String, Error> {
    let prepared: String = ctx.step("prepare", || {
        Ok::<_, Error>(format!("prepared {}", input.path))
    })?;
    if input.path == "b" {
        ctx.step("check-stock", || Ok::<_, Error>(true))?;
    }
    ctx.sleep("wait", Duration::from_millis(input.sleep_ms));
    Ok(format!("{prepared}, finished by v1"))
}

weft_sdk::workflow!(flow);
