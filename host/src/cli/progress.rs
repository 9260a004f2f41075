//! Following a run from the command line: `weft start --wait` shows each
//! step as it finishes, `weft logs --follow` each log line as it is
//! written. Both poll the API (a Lambda endpoint has no streaming) and stop
//! when the run ends.
//!
//! On a terminal, `start --wait` also keeps one live line saying what the
//! run is doing now, rewritten in place; piped, it prints plain lines
//! only, so the output reads the same in a log file.

use super::print;
use super::remote::Client;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// How often the run is looked at.
const POLL: Duration = Duration::from_millis(250);

fn finished(status: &Value) -> bool {
    matches!(status.as_str(), Some("completed" | "failed" | "cancelled"))
}

/// Prints each step of `run_id` on stderr as it reaches its final status,
/// in journal order, until the run ends; returns the run's final view.
pub(super) async fn follow_steps(client: &Client, run_id: &str) -> anyhow::Result<Value> {
    let live = std::io::stderr().is_terminal();
    let mut shown = BTreeSet::new();
    loop {
        // The run first: a step that finishes in between is caught by the
        // next look, and the last look (after the run ended) shows them all.
        let run = client.get(&format!("/v1/runs/{run_id}")).await?;
        let steps = client.get(&format!("/v1/runs/{run_id}/steps")).await?;
        let steps = steps["steps"].as_array().cloned().unwrap_or_default();
        let mut err = std::io::stderr().lock();
        if live {
            // Clear the live line before printing under it.
            write!(err, "\r\x1b[2K")?;
        }
        for step in &steps {
            let seq = step["seq"].as_u64().unwrap_or_default();
            let done = matches!(step["status"].as_str(), Some("succeeded" | "failed"));
            if done && shown.insert(seq) {
                writeln!(err, "  {}", print::step_line(step))?;
            }
        }
        if finished(&run["status"]) {
            writeln!(
                err,
                "run {run_id} {}",
                run["status"].as_str().unwrap_or("?")
            )?;
            return Ok(run);
        }
        if live {
            let now = match run.get("waitingOn") {
                Some(w) => format!(
                    "  … {} {} ({})",
                    w["kind"].as_str().unwrap_or("step"),
                    w["step"].as_str().unwrap_or("?"),
                    w["status"].as_str().unwrap_or("?")
                ),
                None => "  … running".to_string(),
            };
            write!(err, "{now}")?;
            err.flush()?;
        }
        drop(err);
        tokio::time::sleep(POLL).await;
    }
}

/// Prints the log lines of `run_id` as they are written, until the run
/// ends and its last lines are out.
pub(super) async fn follow_logs(client: &Client, run_id: &str) -> anyhow::Result<()> {
    let mut printed = 0;
    loop {
        let run = client.get(&format!("/v1/runs/{run_id}")).await?;
        let logs = client.get(&format!("/v1/runs/{run_id}/logs")).await?;
        let lines = logs["logs"].as_array().cloned().unwrap_or_default();
        // Lines are kept in the order the run wrote them, each once.
        for line in lines.iter().skip(printed) {
            println!("{}", print::log_line(line));
        }
        printed = printed.max(lines.len());
        if finished(&run["status"]) {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}
