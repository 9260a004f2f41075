//! The determinism sandbox: a workflow sees no environment, no files, no
//! network, and clocks at the run's logical time, even when the host
//! process holds AWS credentials. The same probe, written in Rust,
//! JavaScript and Python, must see the same closed world.

use serde_json::Value;
use std::process::Command;
use weft_tests::{example, test_guest, weft_bin};

/// The probe in every guest language.
const PROBES: [&str; 3] = ["probe", "probe-js", "probe-py"];

fn run_probe(probe: &str) -> Value {
    let out = Command::new(weft_bin())
        .args([
            "run",
            "--json",
            "--input",
            r#"{"withRpc":true,"sleepMs":120}"#,
            "--rpc",
        ])
        .arg(example("order-rpc"))
        .arg(test_guest(probe))
        .env("AWS_ACCESS_KEY_ID", "AKIAHOSTSECRET")
        .env("AWS_SECRET_ACCESS_KEY", "host-secret-value")
        .env("WEFT_PROBE_MARKER", "visible-to-host-only")
        .output()
        .expect("running weft");
    assert!(
        out.status.success(),
        "weft run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("weft run --json prints JSON")
}

fn ms(rfc3339: &Value) -> u64 {
    let t = humantime::parse_rfc3339(rfc3339.as_str().unwrap()).unwrap();
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[test]
fn a_workflow_cannot_see_the_host() {
    for probe in PROBES {
        cannot_see_the_host(probe);
    }
}

fn cannot_see_the_host(probe: &str) {
    let doc = run_probe(probe);
    let report = &doc["run"]["output"];
    assert_eq!(doc["run"]["status"], "completed", "{probe}: {doc:#}");
    assert_eq!(
        report["envVars"],
        serde_json::json!([]),
        "no environment variables at all"
    );
    assert_eq!(report["awsKeyVisible"], false);
    assert_eq!(report["args"], serde_json::json!([]));
    for (what, result) in report["files"].as_object().unwrap() {
        assert!(
            result.as_str().unwrap().starts_with("error"),
            "{what} must fail: {result}"
        );
    }
    assert!(
        report["network"].as_str().unwrap().starts_with("error"),
        "{}",
        report["network"]
    );
    let text = doc.to_string();
    assert!(!text.contains("host-secret-value") && !text.contains("visible-to-host-only"));
}

#[test]
fn clocks_read_the_runs_logical_time() {
    for probe in PROBES {
        clocks_are_logical(probe);
    }
}

fn clocks_are_logical(probe: &str) {
    let doc = run_probe(probe);
    let report = &doc["run"]["output"];
    let created = ms(&doc["run"]["createdAt"]);
    // Before any step, every clock reads the run's creation time.
    assert_eq!(report["wallClockMs"].as_u64().unwrap(), created, "{probe}");
    assert_eq!(report["logicalNowMs"].as_u64().unwrap(), created, "{probe}");
    // After the sleep, logical time is when the sleep completed, and the
    // WASI wall clock agrees with it.
    let nap = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "nap")
        .unwrap();
    let slept = ms(&nap["completedAt"]);
    assert_eq!(
        report["logicalAfterSleepMs"].as_u64().unwrap(),
        slept,
        "{probe}"
    );
    assert_eq!(
        report["wallClockAfterSleepMs"].as_u64().unwrap(),
        slept,
        "{probe}"
    );
    assert!(
        slept >= created + 120,
        "the sleep lasted at least 120 ms of real time"
    );
    // The monotonic clock measures logical time too (the JavaScript probe
    // has no monotonic clock to read).
    if let Some(elapsed) = report["monotonicElapsedMs"].as_u64() {
        assert_eq!(elapsed, slept - created, "{probe}");
    }
}
