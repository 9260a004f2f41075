//! Commands that talk to a Weft API over HTTP.

use super::sigv4::Signer;
use super::{ServerArgs, print};
use anyhow::{Context as _, bail};
use serde_json::Value;
use std::path::Path;
use std::process::ExitCode;

/// An API client for one server.
pub(super) struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    signer: Option<Signer>,
}

impl Client {
    pub(super) async fn new(server: &ServerArgs) -> anyhow::Result<Self> {
        let base = server.server.trim_end_matches('/').to_string();
        let signer = if server.sigv4 {
            Some(Signer::from_env(&base).await?)
        } else {
            None
        };
        // Redirects are followed by hand: the only ones are payload links
        // to presigned URLs, which must not get the API's credentials.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            base,
            token: server.token.clone(),
            signer,
        })
    }

    pub(super) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => request.bearer_auth(t),
            None => request,
        }
    }

    /// Sends a request (signed if need be) and returns the raw response,
    /// whatever its status.
    pub(super) async fn execute(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = request.build().context("building the request")?;
        if let Some(signer) = &self.signer {
            signer.sign(&mut request)?;
        }
        self.http
            .execute(request)
            .await
            .with_context(|| format!("calling {}", self.base))
    }

    /// Sends a request and reads the JSON reply, whatever its status.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        let response = self.execute(request).await?;
        let status = response.status();
        let text = response.text().await.context("reading the response")?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    /// Sends a request and reads the JSON reply, turning API errors into
    /// messages. Returns the status with the body.
    pub(super) async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        let (status, value) = self.exchange(request).await?;
        if !status.is_success() {
            let message = value["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            bail!("{status}: {message}");
        }
        Ok((status, value))
    }

    pub(super) async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self.send(self.request(reqwest::Method::GET, path)).await?.1)
    }

    /// `GET path`, signed if need be, as the raw response.
    async fn get_response(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        self.execute(self.request(reqwest::Method::GET, path)).await
    }

    /// A binary resource (a module's component), as bytes.
    pub(super) async fn get_bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let response = self.get_response(path).await?;
        let status = response.status();
        let bytes = response.bytes().await.context("reading the response")?;
        if !status.is_success() {
            let value: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            bail!(
                "{status}: {}",
                value["error"]["message"].as_str().unwrap_or("no message")
            );
        }
        Ok(bytes.to_vec())
    }

    /// A payload a view linked instead of carrying (its `…Url`): the JSON,
    /// from the API, or from the presigned link it redirects to (on AWS),
    /// fetched without the API's credentials.
    async fn linked(&self, path: &str) -> anyhow::Result<Value> {
        let response = self.get_response(path).await?;
        let response = if response.status() == reqwest::StatusCode::SEE_OTHER {
            let link = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .context("a redirect without a location")?
                .to_string();
            reqwest::get(&link)
                .await
                .context("downloading the payload")?
        } else {
            response
        };
        let status = response.status();
        let text = response.text().await.context("reading the payload")?;
        if !status.is_success() {
            bail!("{status}: {text:.300}");
        }
        serde_json::from_str(&text).context("the payload is not JSON")
    }
}

/// Modules larger than this go through a staged upload when the server
/// offers one (a Lambda request is capped at 6 MB).
const DIRECT_UPLOAD_LIMIT: usize = 5 << 20;

pub async fn deploy(
    server: &ServerArgs,
    file: &Path,
    name: &str,
    allow_hosts: &[String],
) -> anyhow::Result<ExitCode> {
    let client = Client::new(server).await?;
    let bytes = tokio::fs::read(file)
        .await
        .with_context(|| format!("reading {}", file.display()))?;
    let query = if allow_hosts.is_empty() {
        String::new()
    } else {
        format!("?allowHosts={}", allow_hosts.join(","))
    };
    let staged = if bytes.len() > DIRECT_UPLOAD_LIMIT {
        staged_upload(&client, name, &query, &bytes).await?
    } else {
        None
    };
    let route = if staged.is_some() {
        " through a staged upload"
    } else {
        ""
    };
    let (status, v) = match staged {
        Some(done) => done,
        None => {
            let request = client
                .request(reqwest::Method::PUT, &format!("/v1/modules/{name}{query}"))
                .header("content-type", "application/wasm")
                .body(bytes);
            client.send(request).await?
        }
    };
    println!(
        "{} {} version {} ({}, sha256 {}){route}",
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

/// `weft deploy --check [--upgrade]`: a replay-checked deploy of a
/// workflow, and its report.
pub async fn deploy_checked(
    server: &ServerArgs,
    file: &Path,
    name: &str,
    options: crate::service::UpgradeOptions,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(server).await?;
    let bytes = tokio::fs::read(file)
        .await
        .with_context(|| format!("reading {}", file.display()))?;
    let mut query = format!("?check=true&upgrade={}", options.upgrade);
    if let Some(n) = options.sample {
        query.push_str(&format!("&sample={n}"));
    }
    let staged = if bytes.len() > DIRECT_UPLOAD_LIMIT {
        staged_upload(&client, name, &query, &bytes).await?
    } else {
        None
    };
    let (_, report) = match staged {
        Some(done) => done,
        None => {
            let request = client
                .request(reqwest::Method::PUT, &format!("/v1/modules/{name}{query}"))
                .header("content-type", "application/wasm")
                .body(bytes);
            client.send(request).await?
        }
    };
    print::upgrade(&report);
    let diverging = report["diverging"]
        .as_array()
        .is_some_and(|d| !d.is_empty());
    Ok(if diverging && !options.upgrade {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Asks the server for a staged upload at `offer_path` and uploads `bytes`
/// to the presigned URL it offers. Returns the offer, or `None` when the
/// server takes the bytes in the request instead (the embedded backend).
async fn upload_to_offer(
    client: &Client,
    offer_path: &str,
    bytes: Vec<u8>,
    what: &str,
) -> anyhow::Result<Option<Value>> {
    let request = client.request(reqwest::Method::POST, offer_path);
    let (status, offer) = client.exchange(request).await?;
    if status == reqwest::StatusCode::NOT_IMPLEMENTED || status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        bail!(
            "{status}: {}",
            offer["error"]["message"].as_str().unwrap_or_default()
        );
    }
    let url = offer["uploadUrl"]
        .as_str()
        .context("the server offered an upload without a URL")?;
    // The URL is presigned: no API credentials go to it.
    let put = reqwest::Client::new()
        .put(url)
        .body(bytes)
        .send()
        .await
        .with_context(|| format!("uploading the {what}"))?;
    if !put.status().is_success() {
        bail!("uploading the {what} failed: {}", put.status());
    }
    Ok(Some(offer))
}

/// Stages a large run input; the upload's id to start the run from, or
/// `None` when the server takes inputs directly.
async fn staged_input(
    client: &Client,
    workflow: &str,
    input: &str,
) -> anyhow::Result<Option<String>> {
    let path = format!("/v1/workflows/{workflow}/uploads");
    let Some(offer) = upload_to_offer(client, &path, input.as_bytes().to_vec(), "input").await?
    else {
        return Ok(None);
    };
    let id = offer["uploadId"]
        .as_str()
        .context("the server offered an upload without an id")?;
    Ok(Some(id.to_string()))
}

/// Stages a large module and registers it; `None` when the server takes
/// modules directly.
async fn staged_upload(
    client: &Client,
    name: &str,
    query: &str,
    bytes: &[u8],
) -> anyhow::Result<Option<(reqwest::StatusCode, Value)>> {
    let path = format!("/v1/modules/{name}/uploads");
    let Some(offer) = upload_to_offer(client, &path, bytes.to_vec(), "module").await? else {
        return Ok(None);
    };
    let register = offer["register"]
        .as_str()
        .context("the server offered an upload without a register path")?;
    let request = client.request(reqwest::Method::POST, &format!("{register}{query}"));
    Ok(Some(client.send(request).await?))
}

pub async fn start(
    server: &ServerArgs,
    workflow: &str,
    input: &str,
    wait: bool,
    timeout: Option<f64>,
    idempotency_key: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(server).await?;
    let mut query = Vec::new();
    if let Some(t) = timeout {
        query.push(format!("timeout={t}"));
    }
    let staged = if input.len() > DIRECT_UPLOAD_LIMIT {
        staged_input(&client, workflow, input).await?
    } else {
        None
    };
    if let Some(upload) = &staged {
        query.push(format!("upload={upload}"));
    }
    let mut path = format!("/v1/workflows/{workflow}/runs");
    if !query.is_empty() {
        path.push_str(&format!("?{}", query.join("&")));
    }
    let body = if staged.is_some() {
        String::new()
    } else {
        input.to_string()
    };
    let mut request = client
        .request(reqwest::Method::POST, &path)
        .header("content-type", "application/json")
        .body(body);
    if let Some(key) = idempotency_key {
        request = request.header("idempotency-key", key);
    }
    let (_, started) = client.send(request).await?;
    let run_id = started["runId"].as_str().unwrap_or_default().to_string();
    if !wait {
        println!("{run_id}");
        return Ok(ExitCode::SUCCESS);
    }
    // Steps as they finish on stderr; the result, as JSON, on stdout.
    let run = super::progress::follow_steps(&client, &run_id).await?;
    let mut v = serde_json::json!({
        "runId": run["runId"],
        "status": run["status"],
        "output": run["output"],
        "error": run["error"],
    });
    // A large output is linked from the run; the CLI shows it whole.
    if let Some(url) = run["outputUrl"].as_str().map(str::to_string) {
        let output = client.linked(&url).await?;
        if let Value::Object(answer) = &mut v {
            answer.remove("outputUrl");
            answer.remove("outputBytes");
            answer.insert("output".into(), output);
        }
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
            .await?
            .get(&format!("/v1/runs/{run_id}"))
            .await?,
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn steps(server: &ServerArgs, run_id: &str) -> anyhow::Result<ExitCode> {
    let v = Client::new(server)
        .await?
        .get(&format!("/v1/runs/{run_id}/steps"))
        .await?;
    print::steps(v["steps"].as_array().map(Vec::as_slice).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

pub async fn logs(server: &ServerArgs, run_id: &str, follow: bool) -> anyhow::Result<ExitCode> {
    let client = Client::new(server).await?;
    if follow {
        super::progress::follow_logs(&client, run_id).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let v = client.get(&format!("/v1/runs/{run_id}/logs")).await?;
    print::logs(v["logs"].as_array().map(Vec::as_slice).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

/// `weft runs`: runs, newest first, filtered by status and workflow.
pub async fn runs(
    server: &ServerArgs,
    status: Option<&str>,
    workflow: Option<&str>,
    limit: usize,
) -> anyhow::Result<ExitCode> {
    let mut query = vec![format!("limit={limit}")];
    if let Some(s) = status {
        query.push(format!("status={s}"));
    }
    if let Some(w) = workflow {
        query.push(format!("workflow={w}"));
    }
    let v = Client::new(server)
        .await?
        .get(&format!("/v1/runs?{}", query.join("&")))
        .await?;
    print::runs(v["runs"].as_array().map(Vec::as_slice).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

pub async fn cancel(
    server: &ServerArgs,
    run_id: &str,
    reason: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(server).await?;
    let body = serde_json::json!({ "reason": reason.unwrap_or("cancelled from the CLI") });
    let request = client
        .request(reqwest::Method::POST, &format!("/v1/runs/{run_id}/cancel"))
        .header("content-type", "application/json")
        .body(body.to_string());
    let (_, run) = client.send(request).await?;
    print::run(&run);
    Ok(ExitCode::SUCCESS)
}

pub async fn send_event(
    server: &ServerArgs,
    run_id: &str,
    name: &str,
    data: &str,
    event_id: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(server).await?;
    let mut request = client
        .request(
            reqwest::Method::POST,
            &format!("/v1/runs/{run_id}/events/{name}"),
        )
        .header("content-type", "application/json")
        .body(data.to_string());
    if let Some(id) = event_id {
        request = request.header("idempotency-key", id);
    }
    let (_, sent) = client.send(request).await?;
    let repeat = if sent["duplicate"].as_bool() == Some(true) {
        " (a repeat of an earlier send; nothing changed)"
    } else {
        ""
    };
    println!(
        "event {} #{} (id {}) sent to run {}{repeat}",
        sent["event"].as_str().unwrap_or(name),
        sent["seq"],
        sent["eventId"].as_str().unwrap_or("?"),
        run_id
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn complete_callback(
    server: &ServerArgs,
    token: &str,
    body: &Value,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(server).await?;
    let request = client
        .request(reqwest::Method::POST, &format!("/v1/callbacks/{token}"))
        .header("content-type", "application/json")
        .body(body.to_string());
    let (_, done) = client.send(request).await?;
    println!(
        "callback of step `{}` of run {} completed",
        done["step"].as_str().unwrap_or("?"),
        done["runId"].as_str().unwrap_or("?")
    );
    Ok(ExitCode::SUCCESS)
}
