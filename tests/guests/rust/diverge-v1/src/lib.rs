//! Version 1 of a workflow whose code changes under a running run: it
//! reserves, sleeps, then confirms. Version 2 charges first instead.

use serde_json::Value;
use std::time::Duration;
use weft_sdk::{Context, Error};

fn flow(ctx: &mut Context, _input: Value) -> Result<String, Error> {
    let reserved: String = ctx.step("reserve", || Ok::<_, Error>("reserved".to_string()))?;
    ctx.sleep("wait", Duration::from_millis(300));
    Ok(format!("{reserved} v1"))
}

weft_sdk::workflow!(flow);
