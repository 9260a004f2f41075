//! Cold starts of the Lambda functions: how long the release binaries take
//! to initialise (process start to the first `invocation/next` poll) and
//! how long the worker's first activation of the order saga takes, when the
//! saga must be compiled, when its precompiled artifact comes from the
//! bucket (a new container: empty `/tmp`), and when it is on local disk.
//!
//! The functions poll a minimal Lambda Runtime API served here, so the
//! figures hold no emulator overhead beyond one loopback HTTP exchange; the
//! AWS side is moto. Run with `make bench-lambda`.

use aws_sdk_sqs::types::MessageSystemAttributeName;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex as AsyncMutex, mpsc};
use weft::backend::aws::init::QueueOptions;
use weft::config::RpcMode;
use weft_tests::aws::AwsEnv;
use weft_tests::lambda::{queue_arn, sqs_record};
use weft_tests::{Service, example, saga_input};

const ROUNDS: usize = 5;

/// What the Runtime API saw of one function process.
struct RuntimeApi {
    events: AsyncMutex<mpsc::UnboundedReceiver<Value>>,
    first_poll: Mutex<Option<Instant>>,
    polled: tokio::sync::Notify,
    answers: mpsc::UnboundedSender<(Result<Value, Value>, Instant)>,
}

async fn next(State(api): State<Arc<RuntimeApi>>) -> (HeaderMap, String) {
    {
        let mut first = api.first_poll.lock().unwrap();
        if first.is_none() {
            *first = Some(Instant::now());
            api.polled.notify_one();
        }
    }
    let event = api.events.lock().await.recv().await.unwrap_or(Value::Null);
    let mut headers = HeaderMap::new();
    let id = format!("req-{}", rand::random::<u64>());
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 900_000;
    headers.insert(
        "lambda-runtime-aws-request-id",
        HeaderValue::from_str(&id).unwrap(),
    );
    headers.insert(
        "lambda-runtime-deadline-ms",
        HeaderValue::from_str(&deadline.to_string()).unwrap(),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:weft-worker"),
    );
    (headers, event.to_string())
}

async fn respond(
    State(api): State<Arc<RuntimeApi>>,
    Path(_id): Path<String>,
    body: String,
) -> StatusCode {
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    let _ = api.answers.send((Ok(value), Instant::now()));
    StatusCode::ACCEPTED
}

async fn fail(State(api): State<Arc<RuntimeApi>>, body: String) -> StatusCode {
    let _ = api.answers.send((Err(Value::String(body)), Instant::now()));
    StatusCode::ACCEPTED
}

async fn fail_invocation(
    State(api): State<Arc<RuntimeApi>>,
    Path(_id): Path<String>,
    body: String,
) -> StatusCode {
    fail(State(api), body).await
}

/// One function process under the Runtime API above.
struct Function {
    child: Child,
    api: Arc<RuntimeApi>,
    events: mpsc::UnboundedSender<Value>,
    answers: mpsc::UnboundedReceiver<(Result<Value, Value>, Instant)>,
    server: tokio::task::JoinHandle<()>,
    spawned: Instant,
}

impl Function {
    async fn spawn(binary: &str, env: &[(String, String)], cache: &std::path::Path) -> Self {
        let (events, event_rx) = mpsc::unbounded_channel();
        let (answer_tx, answers) = mpsc::unbounded_channel();
        let api = Arc::new(RuntimeApi {
            events: AsyncMutex::new(event_rx),
            first_poll: Mutex::new(None),
            polled: tokio::sync::Notify::new(),
            answers: answer_tx,
        });
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(fail_invocation),
            )
            .route("/2018-06-01/runtime/init/error", post(fail))
            .with_state(Arc::clone(&api));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let spawned = Instant::now();
        let child = Command::new(release_bin(binary))
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", binary)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("WEFT_CACHE_DIR", cache)
            .env("WEFT_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary}: {e} (run `make bench-lambda`)"));
        Self {
            child,
            api,
            events,
            answers,
            server,
            spawned,
        }
    }

    /// Process start to the first poll for work.
    async fn init_time(&self) -> Duration {
        loop {
            if let Some(at) = *self.api.first_poll.lock().unwrap() {
                return at - self.spawned;
            }
            let polled = self.api.polled.notified();
            if self.api.first_poll.lock().unwrap().is_some() {
                continue;
            }
            tokio::time::timeout(Duration::from_secs(60), polled)
                .await
                .expect("the function never asked for work");
        }
    }

    /// Hands `event` over and waits for the answer.
    async fn invoke(&mut self, event: Value) -> (Value, Duration) {
        let sent = Instant::now();
        self.events.send(event).unwrap();
        let (answer, at) = tokio::time::timeout(Duration::from_secs(120), self.answers.recv())
            .await
            .expect("no answer within 2 minutes")
            .expect("the runtime API stopped");
        let answer = answer.unwrap_or_else(|e| panic!("the invocation failed: {e}"));
        (answer, at - sent)
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.server.abort();
    }
}

fn release_bin(name: &str) -> PathBuf {
    // target/release/deps/<bench> → target/release/<name>
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join(name))
        .unwrap()
}

/// Starts a saga run and returns the SQS event Lambda would deliver for its
/// first message.
async fn start_event(env: &AwsEnv, service: &Service, workflow: &str) -> Value {
    let url = format!(
        "{}{}",
        env.settings.queue_url_prefix.as_deref().unwrap_or_default(),
        env.settings.queue_name
    );
    let _ = env.clients.sqs.purge_queue().queue_url(&url).send().await;
    service
        .svc
        .start_run(
            workflow,
            &saga_input(&format!("o-{}", rand::random::<u32>())).to_string(),
        )
        .await
        .unwrap();
    let out = env
        .clients
        .sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(1)
        .wait_time_seconds(5)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .unwrap();
    let m = out.messages().first().expect("the start message").clone();
    json!({ "Records": [sqs_record(m.message_id().unwrap(), m.body().unwrap(), 1, &queue_arn(env))] })
}

async fn forget_shared_artifacts(env: &AwsEnv) {
    let s3 = &env.clients.s3;
    let listed = s3
        .list_objects_v2()
        .bucket(&env.settings.modules_bucket)
        .prefix("artifacts/")
        .send()
        .await
        .unwrap();
    for object in listed.contents() {
        s3.delete_object()
            .bucket(&env.settings.modules_bucket)
            .key(object.key().unwrap())
            .send()
            .await
            .unwrap();
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Cache {
    /// Nothing precompiled anywhere: the first activation compiles.
    None,
    /// A new container (empty `/tmp`); the artifact is in the bucket.
    Bucket,
    /// The artifact is already in `/tmp`.
    LocalDisk,
}

impl Cache {
    fn label(self) -> &'static str {
        match self {
            Cache::None => "no precompiled artifact (compile)",
            Cache::Bucket => "artifact from S3, empty /tmp",
            Cache::LocalDisk => "artifact in /tmp",
        }
    }
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and friends: nothing to list
    }
    let env = AwsEnv::provision(QueueOptions {
        visibility_timeout: Duration::from_secs(30),
        max_receives: 5,
    })
    .await;
    let backend = env.backend(Duration::from_secs(30), 5).await;
    let service = Service::on(backend, RpcMode::Queued, |_, _| {});
    service.deploy("order-rpc", &example("order-rpc")).await;
    let workflows = [("order-saga", "Rust"), ("order-saga-js", "JavaScript")];
    for (name, _) in workflows {
        service.deploy(name, &example(name)).await;
    }

    let mut http_inits = Vec::new();
    for _ in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let f = Function::spawn("weft-http", &env.env(), dir.path()).await;
        http_inits.push(f.init_time().await);
    }
    println!(
        "weft-http init: median {} over {ROUNDS}",
        ms(median(http_inits))
    );

    println!("\n| workflow | cache | worker init | first activation | second activation |");
    println!("|---|---|---|---|---|");
    for (name, language) in workflows {
        // Compiling JavaScript takes seconds; fewer rounds say enough.
        let rounds = if language == "Rust" { ROUNDS } else { 2 };
        let local = tempfile::tempdir().unwrap();
        for cache in [Cache::None, Cache::Bucket, Cache::LocalDisk] {
            let (mut inits, mut firsts, mut seconds) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..rounds {
                let fresh = tempfile::tempdir().unwrap();
                let dir = match cache {
                    Cache::None => {
                        forget_shared_artifacts(&env).await;
                        fresh.path()
                    }
                    Cache::Bucket => fresh.path(),
                    Cache::LocalDisk => local.path(),
                };
                let first_event = start_event(&env, &service, name).await;
                let mut f = Function::spawn("weft-worker", &env.env(), dir).await;
                inits.push(f.init_time().await);
                let (answer, took) = f.invoke(first_event).await;
                assert_eq!(answer, json!({"batchItemFailures": []}), "{name}");
                firsts.push(took);
                let second_event = start_event(&env, &service, name).await;
                let (answer, took) = f.invoke(second_event).await;
                assert_eq!(answer, json!({"batchItemFailures": []}), "{name}");
                seconds.push(took);
                if cache == Cache::Bucket && local.path().read_dir().unwrap().next().is_none() {
                    // Keep one container's /tmp for the local-disk case.
                    for entry in fresh.path().read_dir().unwrap() {
                        let entry = entry.unwrap();
                        std::fs::copy(entry.path(), local.path().join(entry.file_name())).unwrap();
                    }
                }
            }
            println!(
                "| {name} ({language}) | {} | {} | {} | {} |",
                cache.label(),
                ms(median(inits)),
                ms(median(firsts)),
                ms(median(seconds)),
            );
        }
    }
    println!(
        "\nMedians. Activations include their DynamoDB and SQS requests to moto on loopback; \
         'second activation' is the same process handling a new run (component in memory)."
    );
}
