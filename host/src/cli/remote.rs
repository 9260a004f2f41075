//! Commands that talk to a Weft API over HTTP.

use super::print;
use anyhow::{Context as _, bail};
use serde_json::Value;
use std::path::Path;
use std::process::ExitCode;

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

fn url(server: &str, path: &str) -> String {
    format!("{}{path}", server.trim_end_matches('/'))
}

/// Reads a response body as JSON and turns API errors into messages.
async fn body(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let text = response.text().await.context("reading the response")?;
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        let message = value["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string());
        bail!("{status}: {message}");
    }
    Ok(value)
}

async fn get(server: &str, path: &str) -> anyhow::Result<Value> {
    let response = client()
        .get(url(server, path))
        .send()
        .await
        .with_context(|| format!("calling {server}"))?;
    body(response).await
}

pub async fn deploy(server: &str, file: &Path, name: &str) -> anyhow::Result<ExitCode> {
    let bytes = tokio::fs::read(file)
        .await
        .with_context(|| format!("reading {}", file.display()))?;
    let response = client()
        .put(url(server, &format!("/v1/modules/{name}")))
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .with_context(|| format!("calling {server}"))?;
    let created = response.status() == reqwest::StatusCode::CREATED;
    let v = body(response).await?;
    println!(
        "{} {} version {} ({}, sha256 {})",
        if created { "deployed" } else { "unchanged:" },
        v["name"].as_str().unwrap_or(name),
        v["version"],
        v["kind"].as_str().unwrap_or("?"),
        v["digest"].as_str().unwrap_or("?")
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn start(
    server: &str,
    workflow: &str,
    input: &str,
    wait: bool,
) -> anyhow::Result<ExitCode> {
    let mut path = format!("/v1/workflows/{workflow}/runs");
    if wait {
        path.push_str("?wait=60");
    }
    let response = client()
        .post(url(server, &path))
        .header("content-type", "application/json")
        .body(input.to_string())
        .send()
        .await
        .with_context(|| format!("calling {server}"))?;
    let v = body(response).await?;
    if !wait {
        println!("{}", v["runId"].as_str().unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(match v["status"].as_str() {
        Some("completed") => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

pub async fn status(server: &str, run_id: &str) -> anyhow::Result<ExitCode> {
    print::run(&get(server, &format!("/v1/runs/{run_id}")).await?);
    Ok(ExitCode::SUCCESS)
}

pub async fn steps(server: &str, run_id: &str) -> anyhow::Result<ExitCode> {
    let v = get(server, &format!("/v1/runs/{run_id}/steps")).await?;
    print::steps(v["steps"].as_array().map(Vec::as_slice).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

pub async fn logs(server: &str, run_id: &str) -> anyhow::Result<ExitCode> {
    let v = get(server, &format!("/v1/runs/{run_id}/logs")).await?;
    print::logs(v["logs"].as_array().map(Vec::as_slice).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}
