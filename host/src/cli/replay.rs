//! `weft replay <run id>`: replay a recorded run on this machine.
//!
//! The run and its journal come from a server (`GET /v1/runs/{id}/journal`),
//! whatever backend it runs on; the module is the one the run is pinned to
//! (`GET /v1/components/{digest}`) or a new build given with `--module`.
//! The replay records nothing: it runs the workflow in a scratch service
//! up to the first step the run has not reached, and prints each recorded
//! step as it matches, the run's logs where they were written, and, at the
//! first divergence, the journal's step next to the replay's. The exit code
//! is non-zero when the module does not replay the run as recorded.

use super::remote::Client;
use super::{ServerArgs, local};
use crate::model::{Digest, LogLine, RunRecord, StepRecord};
use crate::service::{ReplayCheck, ReplayOutcome};
use anyhow::{Context as _, bail};
use serde::Deserialize;
use std::path::Path;
use std::process::ExitCode;

#[derive(Deserialize)]
struct Recorded {
    run: RunRecord,
    steps: Vec<StepRecord>,
    #[serde(default)]
    logs: Vec<LogLine>,
}

pub async fn replay(
    server: &ServerArgs,
    run_id: &str,
    module: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(server).await?;
    let recorded: Recorded = serde_json::from_value(
        client
            .get(&format!("/v1/runs/{run_id}/journal"))
            .await
            .context("fetching the run's journal")?,
    )
    .context("reading the run's journal")?;
    let (bytes, source) = match module {
        Some(path) => (
            tokio::fs::read(path)
                .await
                .with_context(|| format!("reading {}", path.display()))?,
            path.display().to_string(),
        ),
        None => {
            let digest = &recorded.run.module_digest;
            let bytes = client
                .get_bytes(&format!("/v1/components/{digest}"))
                .await
                .context("fetching the module the run is pinned to")?;
            (bytes, format!("the pinned module {}", short(digest)))
        }
    };

    let (svc, _scratch) = local::throwaway(|_| {})?;
    let version = svc
        .deploy(&recorded.run.workflow, bytes)
        .await
        .with_context(|| format!("loading {source}"))?;
    println!(
        "replaying run {} of {} ({} recorded steps) with {source}",
        recorded.run.id,
        recorded.run.workflow,
        recorded.steps.len()
    );
    let check = svc
        .check_replay(&recorded.run, recorded.steps.clone(), &version.digest)
        .await?;
    print_check(&recorded, &check);
    Ok(if check.consistent() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn short(digest: &Digest) -> String {
    digest.as_str().chars().take(12).collect()
}

/// Each matched step with the logs written after it, then the verdict.
fn print_check(recorded: &Recorded, check: &ReplayCheck) {
    let logs_at = |position: u32| {
        recorded
            .logs
            .iter()
            .filter(move |l| l.position == position)
            .for_each(|l| println!("      {:<5} {}", l.level, l.message));
    };
    logs_at(0);
    for step in recorded.steps.iter().take(check.matched as usize) {
        println!(
            "  ok  #{:<3} {:<7} {}{}",
            step.seq,
            step.kind.as_str(),
            step.name,
            step.rpc_name
                .as_deref()
                .map(|r| format!(" → {r}"))
                .unwrap_or_default()
        );
        logs_at(step.seq + 1);
    }
    // Lines the replay wrote past its journal that the run had not.
    let recorded_at = |l: &LogLine| {
        recorded
            .logs
            .iter()
            .any(|r| (r.position, r.index) == (l.position, l.index))
    };
    for line in check.logs.iter().filter(|l| !recorded_at(l)) {
        println!("      {:<5} {} (new)", line.level, line.message);
    }
    match &check.outcome {
        ReplayOutcome::Consistent => match recorded.steps.get(check.matched as usize) {
            // The replay reached it as recorded; it has no outcome yet.
            Some(open) => println!(
                "  ok  #{:<3} {:<7} {} (no outcome yet)\nevery recorded step matches; the run would go on from #{}",
                open.seq,
                open.kind.as_str(),
                open.name,
                open.seq
            ),
            None => println!("every recorded step matches; the run would go on from here"),
        },
        ReplayOutcome::Finished { outcome, same } => {
            let shown = match outcome {
                Ok(output) => format!("output {output}"),
                Err(e) => format!("error {}: {}", e.code, e.message),
            };
            if *same {
                println!("every recorded step matches; the workflow finishes as recorded: {shown}");
            } else {
                println!("DIVERGED: the workflow finishes differently: {shown}");
                match (&recorded.run.output, &recorded.run.error) {
                    (Some(output), _) => println!("  recorded output {output}"),
                    (_, Some(e)) => println!("  recorded error {}: {}", e.code, e.message),
                    _ => {}
                }
            }
        }
        ReplayOutcome::Diverged { error } => {
            let details = error.details.clone().unwrap_or_default();
            match (
                details["position"].as_u64(),
                details["journal"].as_str(),
                details["replay"].as_str(),
            ) {
                (Some(position), Some(journal), Some(replay)) => {
                    println!("  DIVERGED at #{position}");
                    println!("    journal: {journal}");
                    println!("    replay:  {replay}");
                }
                _ => println!("  DIVERGED: {}: {}", error.code, error.message),
            }
        }
    }
}

/// Refuses a run id that is no UUID before any request.
pub fn check_run_id(run_id: &str) -> anyhow::Result<()> {
    if uuid::Uuid::parse_str(run_id).is_err() {
        bail!("{run_id:?} is not a run id (run ids are UUIDs)");
    }
    Ok(())
}
