//! An RPC module that makes outbound HTTP requests (`wasi:http`), to test
//! the per-module host allow-list.

use serde::{Deserialize, Serialize};
use weft_rpc::{Call, Error};

#[derive(Deserialize)]
struct Get {
    url: String,
}

#[derive(Serialize)]
struct Fetched {
    status: u16,
    body: String,
}

fn get(_call: &Call, req: Get) -> Result<Fetched, Error> {
    let response = waki::Client::new()
        .get(&req.url)
        .send()
        .map_err(|e| Error::new("http_failed", format!("GET {}: {e}", req.url)).permanent())?;
    let status = response.status_code();
    let body = response
        .body()
        .map_err(|e| Error::new("http_failed", format!("reading the body: {e}")).permanent())?;
    Ok(Fetched {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

weft_rpc::rpc_functions! {
    "get" => get,
}
