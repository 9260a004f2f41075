//! Probes what a workflow can see and how replay treats it.
//!
//! It tries to read the host's environment, files, network and clocks,
//! logs between steps (through `log` and stdout), and takes one step of each
//! kind. The output reports everything it saw, so tests can assert that the
//! sandbox hid the host and that a replayed run saw exactly what an
//! uninterrupted one did.

use serde::Serialize;
use serde_json::{Value, json};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use weft_sdk::{Context, Error};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    env_vars: Vec<String>,
    aws_key_visible: bool,
    args: Vec<String>,
    files: Value,
    network: String,
    wall_clock_ms: u64,
    logical_now_ms: u64,
    monotonic_elapsed_ms: u128,
    random: u64,
    nonce: u64,
    hash_seed: u64,
    inline_value: u64,
    rpc_result: Value,
    wall_clock_after_sleep_ms: u64,
    logical_after_sleep_ms: u64,
}

fn try_file(path: &str) -> String {
    match std::fs::read(path) {
        Ok(bytes) => format!("READ {} bytes", bytes.len()),
        Err(e) => format!("error: {e}"),
    }
}

/// A u64 from the platform's secure random source (WASI `random`).
fn native_random() -> Result<u64, Error> {
    getrandom::u64().map_err(|e| Error::new("random", e.to_string()))
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    #[serde(default)]
    with_rpc: bool,
    #[serde(default = "one")]
    sleep_ms: u64,
}

fn one() -> u64 {
    1
}

fn probe(ctx: &mut Context, input: Input) -> Result<Report, Error> {
    let started = Instant::now();
    println!("probe starting");
    ctx.info("before any step");
    let env_vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    let aws_key_visible = std::env::var("AWS_SECRET_ACCESS_KEY").is_ok()
        || std::env::var("AWS_ACCESS_KEY_ID").is_ok();
    let files = json!({
        "/etc/passwd": try_file("/etc/passwd"),
        "weft.db": try_file("weft.db"),
        "readDirRoot": match std::fs::read_dir("/") { Ok(_) => "LISTED".to_string(), Err(e) => format!("error: {e}") },
        "create": match std::fs::write("probe.txt", b"x") { Ok(()) => "WROTE".to_string(), Err(e) => format!("error: {e}") },
    });
    let network = match std::net::TcpStream::connect("127.0.0.1:22") {
        Ok(_) => "CONNECTED".to_string(),
        Err(e) => format!("error: {e}"),
    };
    let wall_clock_ms = wall_ms();
    let logical_now_ms = ctx.now_millis();
    let random = ctx.random_u64();
    let hash_seed = RandomState::new().hash_one(42u32);

    // The body draws native randomness, as `uuid::new_v4` would. Replay skips
    // the body, so these draws must not shift the ones made after the step.
    let inline_value: u64 = ctx.step("inline", || {
        let _id = native_random()?;
        Ok::<_, Error>(random % 1000)
    })?;
    // Drawn after the step and fed into the RPC's input: a replay that drew a
    // different value would send another input and fail as non-deterministic.
    let nonce = native_random()?;
    println!("after inline step: {inline_value}");
    ctx.info("after inline step");
    let rpc_result: Value = if input.with_rpc {
        ctx.rpc(
            "remote",
            "order-rpc/ship-order",
            &json!({ "orderId": "probe", "nonce": nonce }),
        )?
    } else {
        Value::Null
    };
    ctx.info("after rpc step");
    ctx.sleep("nap", Duration::from_millis(input.sleep_ms));
    ctx.info("after sleep");
    println!("probe done");
    Ok(Report {
        env_vars,
        aws_key_visible,
        args: std::env::args().collect(),
        files,
        network,
        wall_clock_ms,
        logical_now_ms,
        monotonic_elapsed_ms: started.elapsed().as_millis(),
        random,
        nonce,
        hash_seed,
        inline_value,
        rpc_result,
        wall_clock_after_sleep_ms: wall_ms(),
        logical_after_sleep_ms: ctx.now_millis(),
    })
}

weft_sdk::workflow!(probe);
