//! A workflow that tries to use the network directly. Workflows have no
//! `wasi:http`, so the registry must refuse this component at upload.

use serde_json::Value;
use weft_sdk::{Context, Error};

fn fetch(_ctx: &mut Context, _input: Value) -> Result<u16, Error> {
    let response = waki::Client::new()
        .get("http://127.0.0.1:1/")
        .send()
        .map_err(|e| Error::new("http_failed", e.to_string()))?;
    Ok(response.status_code())
}

weft_sdk::workflow!(fetch);
