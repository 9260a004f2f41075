//! Human-readable rendering of runs, steps and logs. Works on the API's JSON
//! views, so `weft run` (local) and `weft status` (remote) print alike.

use crate::api::views;
use crate::model::{LogLine, RunRecord};
use crate::service::StepView;
use serde_json::Value;

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}

/// Prints a run view (`GET /v1/runs/{id}`).
pub fn run(run: &Value) {
    println!(
        "run {}  workflow {}  status {}",
        text(&run["runId"]),
        text(&run["workflow"]),
        text(&run["status"])
    );
    println!("  module  {}", text(&run["moduleDigest"]));
    println!(
        "  created {}  updated {}",
        text(&run["createdAt"]),
        text(&run["updatedAt"])
    );
    match run["inputUrl"].as_str() {
        Some(url) => println!("  input   {} bytes at {url}", run["inputBytes"]),
        None => println!("  input   {}", short(&run["input"].to_string(), 200)),
    }
    match run["outputUrl"].as_str() {
        Some(url) => println!("  output  {} bytes at {url}", run["outputBytes"]),
        None if !run["output"].is_null() => println!("  output  {}", run["output"]),
        None => {}
    }
    if let Some(expires) = run["expiresAt"].as_str() {
        println!("  expires {expires}");
    }
    if !run["error"].is_null() {
        println!(
            "  error   {}: {}",
            text(&run["error"]["code"]),
            text(&run["error"]["message"])
        );
    }
    if let Some(w) = run.get("waitingOn") {
        println!("  waiting {}", waiting(w));
    }
    if let Some(a) = run.get("activeOn") {
        println!(
            "  active  on {} (lease until {})",
            text(&a["worker"]),
            text(&a["leaseExpiresAt"])
        );
    }
}

/// Why a running run has not finished, in one line.
fn waiting(w: &Value) -> String {
    let mut why = format!(
        "{} step `{}` is {}",
        text(&w["kind"]),
        text(&w["step"]),
        text(&w["status"])
    );
    if !w["wakeAt"].is_null() {
        why.push_str(&format!(", due {}", text(&w["wakeAt"])));
    }
    if !w["leaseOwner"].is_null() {
        why.push_str(&format!(
            ", held by {} until {}",
            text(&w["leaseOwner"]),
            text(&w["leaseExpiresAt"])
        ));
    }
    if !w["lastError"].is_null() {
        why.push_str(&format!(", last error {}", text(&w["lastError"]["code"])));
    }
    why
}

/// Prints step views (`GET /v1/runs/{id}/steps`).
pub fn steps(steps: &[Value]) {
    println!("steps:");
    if steps.is_empty() {
        println!("  (none)");
    }
    for s in steps {
        println!("  {}", step_line(s));
    }
}

/// One step view on one line: position, kind, name, status, attempts, and
/// the result or error.
pub fn step_line(s: &Value) -> String {
    let target = match &s["rpcName"] {
        Value::String(rpc) => format!(" → {rpc}"),
        _ => String::new(),
    };
    let outcome = if !s["error"].is_null() {
        format!(
            "{}: {}",
            text(&s["error"]["code"]),
            text(&s["error"]["message"])
        )
    } else if let Some(bytes) = s["resultBytes"].as_u64() {
        format!("({bytes} bytes)")
    } else {
        short(&s["result"].to_string(), 120)
    };
    format!(
        "#{:<3} {:<6} {:<18} {:<9} attempts {:<2} {}{}",
        text(&s["seq"]),
        text(&s["kind"]),
        text(&s["name"]),
        text(&s["status"]),
        text(&s["attempts"]),
        outcome,
        target
    )
}

/// One log view (`GET /v1/runs/{id}/logs`) as a line.
pub fn log_line(l: &Value) -> String {
    format!(
        "{} {:<6} {}",
        text(&l["at"]),
        text(&l["level"]),
        text(&l["message"])
    )
}

/// Prints run views (`GET /v1/runs`), one per line.
pub fn runs(runs: &[Value]) {
    if runs.is_empty() {
        println!("(no runs)");
    }
    for r in runs {
        println!(
            "{}  {:<9} {:<20} {}",
            text(&r["runId"]),
            text(&r["status"]),
            text(&r["workflow"]),
            text(&r["createdAt"])
        );
    }
}

/// Prints log views (`GET /v1/runs/{id}/logs`).
pub fn logs(logs: &[Value]) {
    println!("logs:");
    if logs.is_empty() {
        println!("  (none)");
    }
    for l in logs {
        println!("  {}", log_line(l));
    }
}

/// Everything about a finished local run.
pub fn run_report(record: &RunRecord, step_views: &[StepView], log_lines: &[LogLine]) {
    run(&views::run(record, views::Inline::ALL));
    steps(
        &step_views
            .iter()
            .map(|v| views::step(v, views::Inline::ALL))
            .collect::<Vec<_>>(),
    );
    logs(&log_lines.iter().map(views::log_line).collect::<Vec<_>>());
}

/// Everything about a finished local run, as one JSON document.
pub fn run_json(
    record: &RunRecord,
    step_views: &[StepView],
    log_lines: &[LogLine],
) -> anyhow::Result<()> {
    let doc = serde_json::json!({
        "run": views::run(record, views::Inline::ALL),
        "steps": step_views.iter().map(|v| views::step(v, views::Inline::ALL)).collect::<Vec<_>>(),
        "logs": log_lines.iter().map(views::log_line).collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

/// Prints a replay-checked deploy's report (`weft deploy --check`).
pub fn upgrade(report: &Value) {
    let module = &report["module"];
    let digest: String = text(&module["digest"]).chars().take(12).collect();
    println!(
        "checked {} of {} running runs of {} against {digest}",
        report["checked"],
        report["running"],
        text(&module["name"])
    );
    let list = |key: &str| report[key].as_array().cloned().unwrap_or_default();
    let compatible = list("compatible");
    println!("  {} replay exactly", compatible.len());
    for run in &compatible {
        println!("    {}", text(run));
    }
    let diverging = list("diverging");
    println!("  {} would diverge", diverging.len());
    for d in &diverging {
        let details = &d["error"]["details"];
        match (details["position"].as_u64(), details["journal"].as_str()) {
            (Some(position), Some(journal)) => println!(
                "    {} at #{position}:\n      journal: {journal}\n      replay:  {}",
                text(&d["runId"]),
                text(&details["replay"])
            ),
            _ => println!(
                "    {}: {}: {}",
                text(&d["runId"]),
                text(&d["error"]["code"]),
                text(&d["error"]["message"])
            ),
        }
    }
    let finished = list("finished");
    if !finished.is_empty() {
        println!("  {} finished while being checked", finished.len());
    }
    if report["published"] == true {
        println!(
            "published as version {}; moved {} runs onto it, the others stay on their module",
            module["version"],
            list("moved").len()
        );
    } else {
        println!(
            "nothing published (add --upgrade to publish and move the runs that replay exactly)"
        );
    }
}
