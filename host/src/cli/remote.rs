//! Commands that talk to a Weft API over HTTP.

use super::{ServerArgs, print};
use anyhow::{Context as _, bail};
use serde_json::Value;
use std::path::Path;
use std::process::ExitCode;

/// An API client for one server.
struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    fn new(server: &ServerArgs) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: server.server.trim_end_matches('/').to_string(),
            token: server.token.clone(),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => request.bearer_auth(t),
            None => request,
        }
    }

    /// Sends a request and reads the JSON reply, turning API errors into
    /// messages. Returns the status with the body.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        let response = request
            .send()
            .await
            .with_context(|| format!("calling {}", self.base))?;
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
        Ok((status, value))
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self.send(self.request(reqwest::Method::GET, path)).await?.1)
    }
}

pub async fn deploy(
    server: &ServerArgs,
    file: &Path,
    name: &str,
    allow_hosts: &[String],
) -> anyhow::Result<ExitCode> {
    let client = Client::new(server);
    let bytes = tokio::fs::read(file)
        .await
        .with_context(|| format!("reading {}", file.display()))?;
    let mut path = format!("/v1/modules/{name}");
    if !allow_hosts.is_empty() {
        path.push_str(&format!("?allowHosts={}", allow_hosts.join(",")));
    }
    let request = client
        .request(reqwest::Method::PUT, &path)
        .header("content-type", "application/wasm")
        .body(bytes);
    let (status, v) = client.send(request).await?;
    println!(
        "{} {} version {} ({}, sha256 {})",
        if status == reqwest::StatusCode::CREATED {
            "deployed"
        } else {
            "unchanged:"
        },
        v["name"].as_str().unwrap_or(name),
        v["version"],
        v["kind"].as_str().unwrap_or("?"),
        v["digest"].as_str().unwrap_or("?")
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn start(
    server: &ServerArgs,
    workflow: &str,
    input: &str,
    wait: bool,
    timeout: Option<f64>,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(server);
    let mut query = Vec::new();
    if wait {
        query.push("wait=60".to_string());
    }
    if let Some(t) = timeout {
        query.push(format!("timeout={t}"));
    }
    let mut path = format!("/v1/workflows/{workflow}/runs");
    if !query.is_empty() {
        path.push_str(&format!("?{}", query.join("&")));
    }
    let request = client
        .request(reqwest::Method::POST, &path)
        .header("content-type", "application/json")
        .body(input.to_string());
    let (_, v) = client.send(request).await?;
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

pub async fn status(server: &ServerArgs, run_id: &str) -> anyhow::Result<ExitCode> {
    print::run(
        &Client::new(server)
            .get(&format!("/v1/runs/{run_id}"))
            .await?,
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn steps(server: &ServerArgs, run_id: &str) -> anyhow::Result<ExitCode> {
    let v = Client::new(server)
        .get(&format!("/v1/runs/{run_id}/steps"))
        .await?;
    print::steps(v["steps"].as_array().map(Vec::as_slice).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

pub async fn logs(server: &ServerArgs, run_id: &str) -> anyhow::Result<ExitCode> {
    let v = Client::new(server)
        .get(&format!("/v1/runs/{run_id}/logs"))
        .await?;
    print::logs(v["logs"].as_array().map(Vec::as_slice).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

pub async fn cancel(
    server: &ServerArgs,
    run_id: &str,
    reason: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(server);
    let body = serde_json::json!({ "reason": reason.unwrap_or("cancelled from the CLI") });
    let request = client
        .request(reqwest::Method::POST, &format!("/v1/runs/{run_id}/cancel"))
        .header("content-type", "application/json")
        .body(body.to_string());
    let (_, run) = client.send(request).await?;
    print::run(&run);
    Ok(ExitCode::SUCCESS)
}
