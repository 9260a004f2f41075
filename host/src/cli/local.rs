//! Commands that run the engine in this process: `weft dev`, `weft run`.

use super::{RunArgs, print};
use crate::api;
use crate::backend::Backends;
use crate::backend::aws::init::{self, QueueOptions};
use crate::backend::aws::{AwsClients, AwsSettings};
use crate::backend::faults::FaultPlan;
use crate::backend::sqlite::{EmbeddedOptions, QueueSettings};
use crate::config::RpcMode;
use crate::config::{Limits, env_num};
use crate::service::worker::{self, WorkerOptions};
use crate::service::{Settings, Weft};
use anyhow::{Context as _, bail};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Queue settings from `WEFT_VISIBILITY_TIMEOUT_SECS` / `WEFT_MAX_RECEIVES`.
fn queue_settings() -> anyhow::Result<QueueSettings> {
    let d = QueueSettings::default();
    Ok(QueueSettings {
        visibility_timeout: Duration::from_secs(env_num(
            "WEFT_VISIBILITY_TIMEOUT_SECS",
            d.visibility_timeout.as_secs(),
        )?),
        max_receives: env_num("WEFT_MAX_RECEIVES", d.max_receives as u64)? as u32,
    })
}

/// The embedded backend's options from the environment.
fn embedded_options() -> anyhow::Result<EmbeddedOptions> {
    Ok(EmbeddedOptions {
        queue: queue_settings()?,
        ..EmbeddedOptions::default()
    })
}

fn worker_options() -> anyhow::Result<WorkerOptions> {
    let d = WorkerOptions::default();
    Ok(WorkerOptions {
        concurrency: env_num("WEFT_WORKER_CONCURRENCY", d.concurrency as u64)? as usize,
        sweep_interval: Duration::from_secs(env_num(
            "WEFT_SWEEP_INTERVAL_SECS",
            d.sweep_interval.as_secs(),
        )?),
        ..d
    })
}

fn settings(mode: RpcMode, limits: &Limits) -> anyhow::Result<Settings> {
    Settings::from_env(mode, limits)
}

/// Which storage `weft dev` runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// SQLite and files in the data directory.
    Embedded,
    /// DynamoDB, SQS and S3 (or LocalStack/moto via `AWS_ENDPOINT`).
    Aws,
}

/// `weft dev`: the API and a worker over the chosen backend.
pub async fn dev(
    addr: SocketAddr,
    data_dir: PathBuf,
    inline_rpc: bool,
    backend: Option<BackendKind>,
) -> anyhow::Result<ExitCode> {
    let limits = Limits::from_env()?;
    let aws = AwsSettings::from_env();
    let kind = backend.unwrap_or(if aws.endpoint.is_some() {
        BackendKind::Aws
    } else {
        BackendKind::Embedded
    });
    let mut worker_options = worker_options()?;
    let (backends, mode, place) = match kind {
        BackendKind::Embedded => {
            let backends = Backends::embedded(&data_dir, embedded_options()?)
                .with_context(|| format!("opening the data directory {}", data_dir.display()))?;
            let mode = if inline_rpc {
                RpcMode::Inline
            } else {
                RpcMode::Queued
            };
            (backends, mode, format!("data in {}", data_dir.display()))
        }
        BackendKind::Aws => {
            let clients = AwsClients::connect(&aws, None).await;
            let backends = Backends::aws(&clients, &aws)
                .await
                .context("connecting to the AWS backend")?;
            let mode = if inline_rpc {
                RpcMode::Inline
            } else {
                aws.rpc_mode()
            };
            // Long polling: one receive request per 10 s when idle.
            worker_options.receive_wait = Duration::from_secs(10);
            worker_options.dead_letter_interval = Duration::from_secs(30);
            let at = aws.endpoint.as_deref().unwrap_or(&aws.region);
            (backends, mode, format!("AWS backend at {at}"))
        }
    };
    let backends = match FaultPlan::from_env()? {
        Some(plan) => {
            tracing::warn!(
                ?plan,
                "FAULT INJECTION ENABLED: store and queue calls will fail, messages will be duplicated and delayed"
            );
            backends.with_faults(plan).0
        }
        None => backends,
    };
    let mut settings = settings(mode, &limits)?;
    // On the embedded backend this process is the only worker: new runs
    // start here without a queue hop. A fleet sharing AWS queues spreads
    // new runs through the queue instead.
    settings.start_locally = kind == BackendKind::Embedded;
    let svc = Weft::new(backends, limits.clone(), settings)?;

    // Runs a previous process left mid-flight are re-driven at once rather
    // than after the first sweep interval.
    let resumed = worker::sweep_runs(&svc).await.unwrap_or(0);
    let worker = tokio::spawn(worker::run(Arc::clone(&svc), worker_options));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr()?;
    println!(
        "weft dev listening on http://{bound} ({place}, RPC steps {}, worker {}, {resumed} runs resumed)",
        if mode == RpcMode::Inline {
            "inline"
        } else {
            "queued"
        },
        svc.settings().worker_id
    );
    let server = axum::serve(listener, api::router(svc)).with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    server.await.context("serving the API")?;
    worker.abort();
    Ok(ExitCode::SUCCESS)
}

/// `weft aws init`: provisions the AWS resources.
pub async fn aws_init(visibility_timeout_secs: u64, max_receives: u32) -> anyhow::Result<ExitCode> {
    let settings = AwsSettings::from_env();
    let clients = AwsClients::connect(&settings, None).await;
    let options = QueueOptions {
        visibility_timeout: Duration::from_secs(visibility_timeout_secs),
        max_receives,
    };
    let done = init::init(&clients, &settings, options).await?;
    for line in &done {
        println!("{line}");
    }
    let created = done.iter().filter(|p| p.created).count();
    println!(
        "{created} created, {} already existed",
        done.len() - created
    );
    Ok(ExitCode::SUCCESS)
}

/// Splits `NAME=PATH`, or names a module after its file.
fn module_arg(arg: &str) -> anyhow::Result<(String, PathBuf)> {
    if let Some((name, path)) = arg.split_once('=') {
        return Ok((name.to_string(), PathBuf::from(path)));
    }
    let path = PathBuf::from(arg);
    Ok((file_stem(&path)?, path))
}

fn file_stem(path: &Path) -> anyhow::Result<String> {
    path.file_stem()
        .and_then(|s| s.to_str())
        .map(str::to_string)
        .with_context(|| format!("cannot name a module after {}", path.display()))
}

/// `weft run`: one workflow run, start to finish, in this process.
pub async fn run(workflow: &Path, args: RunArgs) -> anyhow::Result<ExitCode> {
    let RunArgs {
        rpcs,
        input,
        replay_every_step,
        timeout,
        json,
    } = args;
    let (svc, _scratch) = throwaway(|settings| settings.replay_every_step = replay_every_step)?;
    let name = file_stem(workflow)?;
    deploy_file(&svc, &name, workflow).await?;
    for arg in &rpcs {
        let (rpc_name, path) = module_arg(arg)?;
        deploy_file(&svc, &rpc_name, &path).await?;
    }
    let worker = tokio::spawn(worker::run(Arc::clone(&svc), WorkerOptions::default()));
    let run_id = svc.start_run(&name, &input).await?;
    let run = svc.wait_for(&run_id, Duration::from_secs(timeout)).await?;
    worker.abort();

    let steps = svc.steps(&run_id).await?;
    let logs = svc.logs(&run_id).await?;
    if json {
        print::run_json(&run, &steps, &logs)?;
    } else {
        print::run_report(&run, &steps, &logs);
    }
    if !run.status.is_terminal() {
        bail!("the run did not finish within {timeout} s");
    }
    Ok(match run.status {
        crate::model::RunStatus::Completed => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

/// `weft call`: one function of an RPC module, called once in this process
/// as a step's first attempt would be. Prints the result (JSON) on stdout,
/// or the error on stderr and fails.
pub async fn call(module: &Path, function: &str, input: &str) -> anyhow::Result<ExitCode> {
    serde_json::from_str::<serde_json::Value>(input)
        .map_err(|e| anyhow::anyhow!("--input is not JSON: {e}"))?;
    let (svc, _scratch) = throwaway(|_| {})?;
    let name = file_stem(module)?;
    deploy_file(&svc, &name, module).await?;
    match svc
        .call_function(&format!("{name}/{function}"), input)
        .await
    {
        Ok(result) => {
            let value: serde_json::Value = serde_json::from_str(&result)
                .with_context(|| format!("{name}/{function} returned something other than JSON"))?;
            println!("{}", serde_json::to_string_pretty(&value)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{name}/{function} failed: {}: {}", e.code, e.message);
            if let Some(details) = &e.details {
                eprintln!("details: {details}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// A service on an embedded store in a scratch folder, running RPC steps
/// inline: what `weft run` and `weft call` work in. The folder goes when
/// the returned guard drops.
pub(super) fn throwaway(
    adjust: impl FnOnce(&mut Settings),
) -> anyhow::Result<(Arc<Weft>, tempfile::TempDir)> {
    let limits = Limits::from_env()?;
    let dir = tempfile::tempdir().context("creating a scratch directory")?;
    let backends = Backends::embedded(dir.path(), embedded_options()?)?;
    let mut settings = settings(RpcMode::Inline, &limits)?;
    adjust(&mut settings);
    Ok((Weft::new(backends, limits, settings)?, dir))
}

async fn deploy_file(svc: &Weft, name: &str, path: &Path) -> anyhow::Result<()> {
    let bytes = tokio::fs::read(path)
        .await
        .with_context(|| format!("reading {}", path.display()))?;
    svc.deploy(name, bytes)
        .await
        .with_context(|| format!("deploying {} as {name:?}", path.display()))?;
    Ok(())
}
