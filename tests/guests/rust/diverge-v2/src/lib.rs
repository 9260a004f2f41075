//! Version 2 of the diverging workflow: its first step is a different one,
//! so replaying a version-1 journal with it must fail as non-deterministic.

use serde_json::Value;
use std::time::Duration;
use weft_sdk::{Context, Error};

fn flow(ctx: &mut Context, _input: Value) -> Result<String, Error> {
    let charged: String = ctx.step("charge", || Ok::<_, Error>("charged".to_string()))?;
    ctx.sleep("wait", Duration::from_millis(300));
    Ok(format!("{charged} v2"))
}

weft_sdk::workflow!(flow);
