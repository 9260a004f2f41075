//! The real Lambda binaries under `cargo lambda watch` (the Lambda Runtime
//! API emulator from the cargo-lambda PyPI package), invoked with
//! `cargo lambda invoke` and real API Gateway and SQS event JSON.

use crate::aws::AwsEnv;
use crate::root;
use anyhow::{Context as _, bail};
use base64::Engine as _;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn cargo_lambda() -> PathBuf {
    let bin = root().join(".venv/bin/cargo-lambda");
    assert!(
        bin.exists(),
        "{} is missing: run `make setup` (scripts/setup-python)",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One Lambda function: an emulator, and the function's binary polling it.
pub struct LambdaFunction {
    port: u16,
    emulator: Child,
    function: Child,
    events: tempfile::TempDir,
}

impl LambdaFunction {
    /// Starts the emulator and `target/debug/<binary>` against it, with
    /// `env` (the AWS settings) plus whatever `extra` overrides.
    pub fn start(
        binary: &str,
        env: &[(String, String)],
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let port = free_port();
        let mut emulator = Command::new(cargo_lambda())
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--ignore-changes",
                "--invoke-port",
            ])
            .arg(port.to_string())
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting cargo lambda watch")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || emulator.try_wait()?.is_some() {
                let _ = emulator.kill();
                bail!("cargo lambda watch did not start on port {port}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let exe = crate::weft_bin().with_file_name(binary);
        let mut cmd = Command::new(&exe);
        cmd.env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{port}/.rt"),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", binary)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("WEFT_LOG", "warn,weft=info")
        // As the template sets it: the emulator's deadline header carries
        // the timeout, not the instant, so the function counts from this.
        .env("WEFT_INVOCATION_TIMEOUT_SECS", "180")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let function = cmd
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        Ok(Self {
            port,
            emulator,
            function,
            events: tempfile::tempdir()?,
        })
    }

    /// Invokes the function with `event` through `cargo lambda invoke` and
    /// returns its JSON response.
    pub fn invoke(&self, event: &Value) -> anyhow::Result<Value> {
        let file = self
            .events
            .path()
            .join(format!("event-{}.json", rand::random::<u64>()));
        std::fs::write(&file, serde_json::to_vec(event)?)?;
        let out = Command::new(cargo_lambda())
            .args(["lambda", "invoke", "_", "--invoke-port"])
            .arg(self.port.to_string())
            .arg("--data-file")
            .arg(&file)
            .current_dir(root())
            .output()
            .context("cargo lambda invoke")?;
        if !out.status.success() {
            bail!(
                "invocation failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "the response is not JSON: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

impl Drop for LambdaFunction {
    fn drop(&mut self) {
        let _ = self.function.kill();
        let _ = self.function.wait();
        let _ = self.emulator.kill();
        let _ = self.emulator.wait();
    }
}

/// An API Gateway HTTP API (payload format 2.0) event.
pub fn http_api_event(method: &str, path: &str, query: &str, body: Option<&[u8]>) -> Value {
    let (body, base64) = match body {
        None => (Value::Null, false),
        Some(b) => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
            true,
        ),
    };
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "content-type": "application/json",
            "user-agent": "weft-tests"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "weft-tests"},
            "requestId": format!("req-{}", rand::random::<u32>()),
            "routeKey": "$default",
            "stage": "$default",
            "time": "25/Nov/2026:23:00:00 +0000",
            "timeEpoch": 1795647600000u64
        },
        "body": body,
        "isBase64Encoded": base64
    })
}

/// An API Gateway REST API (v1, proxy integration) event.
pub fn rest_api_event(method: &str, path: &str, body: Option<&str>) -> Value {
    json!({
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": {"Host": "abc123.execute-api.us-east-1.amazonaws.com", "Content-Type": "application/json"},
        "multiValueHeaders": {"Host": ["abc123.execute-api.us-east-1.amazonaws.com"], "Content-Type": ["application/json"]},
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": {"proxy": path.trim_start_matches('/')},
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "resourceId": "r1",
            "stage": "prod",
            "requestId": format!("req-{}", rand::random::<u32>()),
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "weft-tests"},
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "apiId": "abc123",
            "path": format!("/prod{path}"),
            "requestTimeEpoch": 1795647600000u64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// One SQS record as Lambda delivers it.
pub fn sqs_record(message_id: &str, body: &str, receive_count: u32, queue_arn: &str) -> Value {
    json!({
        "messageId": message_id,
        "receiptHandle": format!("handle-{message_id}"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": receive_count.to_string(),
            "SentTimestamp": "1795647600000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1795647600001"
        },
        "messageAttributes": {},
        "md5OfBody": "00000000000000000000000000000000",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1"
    })
}

/// The work queue's ARN in the emulator.
pub fn queue_arn(env: &AwsEnv) -> String {
    format!(
        "arn:aws:sqs:us-east-1:123456789012:{}",
        env.settings.queue_name
    )
}

/// Decodes an API Gateway response: status and JSON body.
pub fn response(v: &Value) -> (u16, Value) {
    let status = v["statusCode"].as_u64().unwrap_or(0) as u16;
    let raw = v["body"].as_str().unwrap_or_default();
    let text = if v["isBase64Encoded"].as_bool() == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    } else {
        raw.to_string()
    };
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
