//! `weft schedule …`: schedules through the HTTP API.

use super::ServerArgs;
use super::remote::Client;
use serde_json::{Value, json};
use std::process::ExitCode;

/// The schedule subcommands.
#[derive(clap::Subcommand)]
pub(super) enum ScheduleCommand {
    /// Create or replace a schedule: start `workflow` at each time of `cron`
    /// (five fields, UTC).
    Put {
        name: String,
        #[arg(long)]
        workflow: String,
        /// `minute hour day-of-month month day-of-week`, e.g. `*/5 * * * *`.
        #[arg(long)]
        cron: String,
        /// The input of every run it starts (JSON).
        #[arg(long, default_value = "null")]
        input: String,
        /// While the previous run still runs: `skip` this time, or `allow`.
        #[arg(long, default_value = "skip")]
        overlap: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List the schedules.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show a schedule.
    Get {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Stop a schedule's fires until it is resumed.
    Pause {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Restart a paused schedule from its next time after now.
    Resume {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Delete a schedule (the runs it started are left as they are).
    Delete {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

pub(super) async fn run(command: ScheduleCommand) -> anyhow::Result<ExitCode> {
    use reqwest::Method;
    let (server, method, path, body) = match command {
        ScheduleCommand::Put {
            name,
            workflow,
            cron,
            input,
            overlap,
            server,
        } => {
            let input: Value = serde_json::from_str(&input)
                .map_err(|e| anyhow::anyhow!("--input is not JSON: {e}"))?;
            let body =
                json!({ "workflow": workflow, "cron": cron, "input": input, "overlap": overlap });
            (
                server,
                Method::PUT,
                format!("/v1/schedules/{name}"),
                Some(body),
            )
        }
        ScheduleCommand::List { server } => (server, Method::GET, "/v1/schedules".into(), None),
        ScheduleCommand::Get { name, server } => {
            (server, Method::GET, format!("/v1/schedules/{name}"), None)
        }
        ScheduleCommand::Pause { name, server } => (
            server,
            Method::POST,
            format!("/v1/schedules/{name}/pause"),
            None,
        ),
        ScheduleCommand::Resume { name, server } => (
            server,
            Method::POST,
            format!("/v1/schedules/{name}/resume"),
            None,
        ),
        ScheduleCommand::Delete { name, server } => (
            server,
            Method::DELETE,
            format!("/v1/schedules/{name}"),
            None,
        ),
    };
    let client = Client::new(&server).await?;
    let mut request = client.request(method, &path);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let (_, answer) = client.send(request).await?;
    match (answer.get("schedules"), answer.get("deleted")) {
        (Some(Value::Array(list)), _) => list.iter().for_each(line),
        (_, Some(name)) => println!("schedule {} deleted", name.as_str().unwrap_or("?")),
        _ => line(&answer),
    }
    Ok(ExitCode::SUCCESS)
}

/// One schedule on one line.
fn line(s: &Value) {
    let text = |key: &str| s[key].as_str().unwrap_or("-").to_string();
    println!(
        "{:<24} {:<20} {:<16} overlap {:<5} {} next {} last run {}",
        text("name"),
        text("workflow"),
        text("cron"),
        text("overlap"),
        if s["paused"].as_bool() == Some(true) {
            "paused "
        } else {
            "active "
        },
        text("nextFireAt"),
        text("lastRunId"),
    );
}
