//! Version 2 of the upgraded workflow (see upgrade-v1): path `a` asks for
//! the same steps as version 1; path `b` reserves instead of checking the
//! stock, so a version-1 journal of path `b` does not replay with it.

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
        ctx.step("reserve-stock", || Ok::<_, Error>(true))?;
    }
    ctx.sleep("wait", Duration::from_millis(input.sleep_ms));
    Ok(format!("{prepared}, finished by v2"))
}

weft_sdk::workflow!(flow);
