//! The `weft` command line.

mod console;
mod local;
mod print;
mod progress;
mod project;
mod remote;
mod replay;
mod schedules;
mod sigv4;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "weft",
    version,
    about = "Durable, WebAssembly-sandboxed workflows"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where client commands find the API.
#[derive(clap::Args, Clone)]
pub struct ServerArgs {
    /// Base URL of a Weft API (`weft dev`, or the Lambda HTTP endpoint).
    #[arg(long, env = "WEFT_URL", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Bearer token for an API protected with `WEFT_API_TOKEN`.
    #[arg(long, env = "WEFT_API_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Sign requests with AWS SigV4 (service `execute-api`), for the Lambda
    /// endpoint behind API Gateway IAM authorization.
    #[arg(long, env = "WEFT_AWS_SIGV4")]
    sigv4: bool,
}

/// How `weft run` (and `weft build --run`) runs a workflow.
#[derive(clap::Args)]
pub struct RunArgs {
    /// An RPC module, as `NAME=PATH` or `PATH` (named after the file).
    #[arg(long = "rpc", value_name = "[NAME=]PATH")]
    rpcs: Vec<String>,
    /// The input (JSON).
    #[arg(long, default_value = "null")]
    input: String,
    /// Suspend and replay from the top after every step, to check that
    /// the workflow replays deterministically.
    #[arg(long)]
    replay_every_step: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Print the run, its steps and logs as one JSON document.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and a worker in one process, on the embedded backend.
    Dev {
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Where the embedded backend keeps its database and modules.
        #[arg(long, env = "WEFT_DATA_DIR", default_value = ".weft")]
        data_dir: PathBuf,
        /// Run RPC steps inside the orchestrating activation instead of
        /// through the queue.
        #[arg(long)]
        inline_rpc: bool,
        /// Storage backend; default `aws` when `AWS_ENDPOINT` is set, else
        /// `embedded`.
        #[arg(long, value_enum)]
        backend: Option<local::BackendKind>,
    },
    /// AWS resources.
    Aws {
        #[command(subcommand)]
        command: AwsCommand,
    },
    /// Run a workflow to completion in-process on a throwaway store, then
    /// print its output, steps and logs.
    Run {
        /// The workflow component.
        workflow: PathBuf,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Call one function of an RPC module once, in-process, and print its
    /// result.
    Call {
        /// The RPC module's component.
        module: PathBuf,
        function: String,
        /// The function's input (JSON).
        #[arg(long, default_value = "null")]
        input: String,
    },
    /// Replay a recorded run here, from its journal on a server, with the
    /// module it is pinned to or a new build: prints each step as it
    /// matches, and fails with the difference at the first divergence.
    Replay {
        run_id: String,
        /// Replay with this component instead of the pinned module.
        #[arg(long, value_name = "FILE")]
        module: Option<PathBuf>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Create a workflow or RPC module project in a new folder, named after
    /// the folder.
    New {
        /// The folder to create.
        path: PathBuf,
        #[arg(long, value_enum)]
        lang: project::Lang,
        #[arg(long, value_enum, default_value = "workflow")]
        kind: project::Kind,
    },
    /// Build the project in a folder into a component with its language's
    /// toolchain, installing the JavaScript or Python tools into the project
    /// when they are missing.
    Build {
        /// The project folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Then run it once: a workflow as `weft run` does, an RPC module's
        /// `--function` as `weft call` does.
        #[arg(long)]
        run: bool,
        /// With `--run` in an RPC module project: the function to call.
        #[arg(long, requires = "run", conflicts_with_all = ["rpcs", "replay_every_step", "json"])]
        function: Option<String>,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Upload a module (a workflow or RPC component).
    Deploy {
        /// A component file, or a project folder (built first).
        file: PathBuf,
        /// The module's name; for a project folder, the project's name by
        /// default.
        #[arg(long)]
        name: Option<String>,
        /// RPC modules: a host (`name` or `name:port`) its outbound HTTP
        /// requests may reach. Repeat for several.
        #[arg(long = "allow-host", value_name = "HOST")]
        allow_hosts: Vec<String>,
        /// Workflows: replay the running runs' journals with the module and
        /// report which would diverge, and where; publish nothing. Exits
        /// non-zero if any run would diverge.
        #[arg(long)]
        check: bool,
        /// With --check: publish the module, and move every run that
        /// replays exactly onto it (the others stay on their module).
        #[arg(long, requires = "check")]
        upgrade: bool,
        /// With --check: check at most this many running runs.
        #[arg(long, value_name = "N", requires = "check")]
        sample: Option<usize>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Start a run of a deployed workflow.
    Start {
        workflow: String,
        #[arg(long, default_value = "null")]
        input: String,
        /// Read the input from this file instead (an input of any size up
        /// to the payload limit; large ones go through a staged upload).
        #[arg(long, value_name = "PATH", conflicts_with = "input")]
        input_file: Option<std::path::PathBuf>,
        /// Wait for the run to finish, showing its steps as they finish (on
        /// stderr), then print its result (on stdout, as JSON).
        #[arg(long)]
        wait: bool,
        /// Fail the run with `run_timeout` if it has not finished after
        /// this many seconds.
        #[arg(long, value_name = "SECS")]
        timeout: Option<f64>,
        /// Start at most one run under this key: retrying the same command
        /// (after a timeout or a 5xx) returns the run the first one started.
        #[arg(long = "id", visible_alias = "idempotency-key", value_name = "KEY")]
        idempotency_key: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show a run.
    Status {
        run_id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show a run's steps and their attempts.
    Steps {
        run_id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Cancel a running run.
    Cancel {
        run_id: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Send an event to a run: a wait for `name` takes it (now, or when
    /// the run gets there).
    SendEvent {
        run_id: String,
        name: String,
        /// The event's JSON payload.
        #[arg(long, default_value = "null")]
        data: String,
        /// An id for the event: sending again with the same id is harmless.
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Complete a callback with a result (or, with `--error`, an error).
    CompleteCallback {
        /// The callback's token (`wcb_…`), as the workflow handed it out.
        #[arg(value_name = "TOKEN")]
        callback: String,
        /// The result, as JSON.
        #[arg(long, default_value = "null", conflicts_with = "error")]
        result: String,
        /// Complete with an error of this code instead.
        #[arg(long)]
        error: Option<String>,
        /// The error's message.
        #[arg(long, default_value = "", requires = "error")]
        message: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Schedules: start a workflow on a cron expression (UTC).
    Schedule {
        #[command(subcommand)]
        command: schedules::ScheduleCommand,
    },
    /// Show a run's log lines.
    Logs {
        run_id: String,
        /// Keep printing lines as the run writes them, until it ends.
        #[arg(long, short)]
        follow: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Serve the web console on this machine for a server, forwarding its
    /// API calls with this command's credentials (a bearer token, or SigV4
    /// for the HTTP function behind IAM authorization).
    Console {
        /// Where to serve it; anyone who can reach this address acts with
        /// the command's credentials.
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: SocketAddr,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List runs, newest first.
    Runs {
        /// Only runs in this status: running, completed, failed, cancelled.
        #[arg(long)]
        status: Option<String>,
        /// Only runs of this workflow.
        #[arg(long)]
        workflow: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Subcommand)]
enum AwsCommand {
    /// Create (idempotently) the tables, queues and bucket on whatever
    /// `AWS_ENDPOINT` points at, and print what was created.
    Init {
        /// Visibility timeout of the work queue.
        #[arg(long, default_value_t = 60)]
        visibility_timeout_secs: u64,
        /// Receives before a message moves to the dead-letter queue.
        #[arg(long, default_value_t = 5)]
        max_receives: u32,
    },
}

/// Parses the command line and runs the command.
pub async fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Dev {
            addr,
            data_dir,
            inline_rpc,
            backend,
        } => local::dev(addr, data_dir, inline_rpc, backend).await,
        Command::Aws {
            command:
                AwsCommand::Init {
                    visibility_timeout_secs,
                    max_receives,
                },
        } => local::aws_init(visibility_timeout_secs, max_receives).await,
        Command::Run { workflow, args } => local::run(&workflow, args).await,
        Command::Call {
            module,
            function,
            input,
        } => local::call(&module, &function, &input).await,
        Command::Replay {
            run_id,
            module,
            server,
        } => {
            replay::check_run_id(&run_id)?;
            replay::replay(&server, &run_id, module.as_deref()).await
        }
        Command::New { path, lang, kind } => project::new(&path, lang, kind),
        Command::Build {
            dir,
            run,
            function,
            args,
        } => {
            let built = project::build(&dir)?;
            if !run {
                return Ok(std::process::ExitCode::SUCCESS);
            }
            match (built.project.kind, function) {
                (project::Kind::Workflow, None) => local::run(&built.wasm, args).await,
                (project::Kind::Rpc, Some(function)) => {
                    local::call(&built.wasm, &function, &args.input).await
                }
                (project::Kind::Workflow, Some(_)) => {
                    anyhow::bail!("--function is for RPC module projects; this one is a workflow")
                }
                (project::Kind::Rpc, None) => {
                    anyhow::bail!("an RPC module project runs with `--function NAME`")
                }
            }
        }
        Command::Deploy {
            file,
            name,
            allow_hosts,
            check,
            upgrade,
            sample,
            server,
        } => {
            if !file.exists() {
                anyhow::bail!(
                    "{} does not exist: give a component file or a project folder",
                    file.display()
                );
            }
            let (file, name) = if file.is_dir() {
                let built = project::build(&file)?;
                (built.wasm, name.unwrap_or(built.project.name))
            } else {
                let name = name.context("--name is needed to deploy a component file")?;
                (file, name)
            };
            if check {
                let options = crate::service::UpgradeOptions { upgrade, sample };
                return remote::deploy_checked(&server, &file, &name, options).await;
            }
            remote::deploy(&server, &file, &name, &allow_hosts).await
        }
        Command::Start {
            workflow,
            input,
            input_file,
            wait,
            timeout,
            idempotency_key,
            server,
        } => {
            let input = match input_file {
                Some(path) => std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?,
                None => input,
            };
            remote::start(
                &server,
                &workflow,
                &input,
                wait,
                timeout,
                idempotency_key.as_deref(),
            )
            .await
        }
        Command::Status { run_id, server } => remote::status(&server, &run_id).await,
        Command::Steps { run_id, server } => remote::steps(&server, &run_id).await,
        Command::Logs {
            run_id,
            follow,
            server,
        } => remote::logs(&server, &run_id, follow).await,
        Command::Runs {
            status,
            workflow,
            limit,
            server,
        } => remote::runs(&server, status.as_deref(), workflow.as_deref(), limit).await,
        Command::Console { listen, server } => console::run(listen, &server).await,
        Command::Schedule { command } => schedules::run(command).await,
        Command::Cancel {
            run_id,
            reason,
            server,
        } => remote::cancel(&server, &run_id, reason.as_deref()).await,
        Command::SendEvent {
            run_id,
            name,
            data,
            id,
            server,
        } => remote::send_event(&server, &run_id, &name, &data, id.as_deref()).await,
        Command::CompleteCallback {
            callback,
            result,
            error,
            message,
            server,
        } => {
            let body = match error {
                Some(code) => serde_json::json!({ "error": { "code": code, "message": message } }),
                None => {
                    let result: serde_json::Value = serde_json::from_str(&result)
                        .map_err(|e| anyhow::anyhow!("--result is not JSON: {e}"))?;
                    serde_json::json!({ "result": result })
                }
            };
            remote::complete_callback(&server, &callback, &body).await
        }
    }
}

#[cfg(test)]
mod tests {
    /// clap checks a command's definition (unique argument names, valid
    /// relations) only when it is built: a clash would otherwise surface
    /// as a panic the first time someone runs that subcommand.
    #[test]
    fn every_subcommand_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
