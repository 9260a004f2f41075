//! The web console in a real browser: headless Chromium through
//! chromedriver, against `weft dev` protected by an API token, after real
//! runs (a completed saga, a saga whose charge failed through its retries,
//! a fan-out with a child run, runs waiting for an approval event and for
//! a callback, a run that failed as non-deterministic).
//!
//! The tests read what the page shows and compare it with what the API
//! reports for the same run: every step with its status and attempt count,
//! every attempt, every log line. The actions are done through the page's
//! forms. Screenshots land in `target/console-screenshots/`.

use fantoccini::Locator;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use weft::backend::aws::init::QueueOptions;
use weft_tests::aws::AwsEnv;
use weft_tests::browser::Browser;
use weft_tests::{Api, DevServer, example, test_guest};

const TOKEN: &str = "console-test-token";

/// `weft dev` with the API behind a token and no parked guests (a run's
/// next activation replays, so the tampered run below diverges).
fn server_env(extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut env = vec![
        ("WEFT_API_TOKEN".to_string(), TOKEN.to_string()),
        ("WEFT_PARK_MAX_RUNS".to_string(), "0".to_string()),
    ];
    env.extend_from_slice(extra);
    env
}

fn saga_order(order: &str, payment_failures: u32) -> Value {
    json!({
        "orderId": order,
        "customer": "ada",
        "items": [{"sku": "book", "qty": 2, "priceCents": 1250}, {"sku": "pen", "qty": 3, "priceCents": 199}],
        "paymentFailures": payment_failures,
        "coolOffMs": 100,
    })
}

fn expense(id: &str) -> Value {
    json!({
        "expenseId": id,
        "amountCents": 12_000,
        "submitter": "ada",
        "approvalTimeoutMs": 600_000,
        "escalationTimeoutMs": 600_000,
    })
}

/// Polls the API until run `id` satisfies `ok`.
async fn wait_run(api: &Api, id: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (status, run) = api.get(&format!("/v1/runs/{id}")).await.unwrap();
        assert_eq!(status, 200, "{run}");
        if ok(&run) {
            return run;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "run {id} never got there: {run}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn finished(api: &Api, id: &str) -> Value {
    wait_run(api, id, |r| r["status"] != "running").await
}

/// The runs every test looks at.
struct Recorded {
    saga: String,
    retried: String,
    fanout: String,
    approval: String,
    callback: String,
}

async fn record_runs(api: &Api) -> Recorded {
    for (name, path) in [
        ("order-saga", example("order-saga")),
        ("order-rpc", example("order-rpc")),
        ("expense-approval", example("expense-approval")),
        ("hello", example("hello")),
        ("fanout", test_guest("fanout")),
        ("fanout-rpc", test_guest("fanout-rpc")),
        ("callback", test_guest("callback")),
    ] {
        api.deploy(name, &path).await.unwrap();
    }
    let saga = api
        .start("order-saga", &saga_order("o-ok", 1))
        .await
        .unwrap();
    // Five transient failures against three attempts: the charge fails for
    // good and the saga compensates.
    let retried = api
        .start("order-saga", &saga_order("o-retried", 5))
        .await
        .unwrap();
    let fanout = api
        .start(
            "fanout",
            &json!({
                "all": [{"ms": 300}, {"ms": 500}, {"ms": 400, "fail": true}],
                "children": [{"workflow": "hello", "input": {"name": "console"}}],
            }),
        )
        .await
        .unwrap();
    let approval = api
        .start("expense-approval", &expense("e-1"))
        .await
        .unwrap();
    let callback = api.start("callback", &json!({})).await.unwrap();
    for id in [&saga, &retried, &fanout] {
        let run = finished(api, id).await;
        assert_eq!(run["status"], "completed", "{run}");
    }
    // Both wait: the approval for its event, the callback for completion.
    wait_run(api, &approval, |r| r["waitingOn"]["kind"] == "event").await;
    wait_run(api, &callback, |r| {
        r["waitingOn"]["kind"] == "callback_wait"
    })
    .await;
    Recorded {
        saga,
        retried,
        fanout,
        approval,
        callback,
    }
}

/// Opens the console, which finds the API locked and asks for the token.
async fn sign_in(b: &Browser, server: &DevServer) {
    b.client.goto(&format!("{}/", server.url)).await.unwrap();
    let problem = b.text("[data-load-error]").await.unwrap();
    assert!(problem.contains("unauthorized"), "{problem}");
    b.fill("#token-input", TOKEN).await.unwrap();
    b.find("#token-form button[type=submit]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.find("tr[data-run]").await.unwrap();
}

async fn open(b: &Browser, server: &DevServer, hash: &str) {
    b.client
        .goto(&format!("{}/#{hash}", server.url))
        .await
        .unwrap();
}

/// Opens run `id`'s page, and waits until it shows that run (not the
/// page before it).
async fn open_run(b: &Browser, server: &DevServer, id: &str) {
    open(b, server, &format!("/runs/{id}")).await;
    b.wait_for_text("[data-run-id]", |t| t == id).await.unwrap();
}

/// Opens run `id`'s page and checks it shows every step, attempt and log
/// line the API reports for the run, and one timeline bar per step.
async fn page_matches_api(b: &Browser, server: &DevServer, api: &Api, id: &str, shot: &str) {
    open_run(b, server, id).await;
    let steps = api.steps(id).await.unwrap();
    let heading = format!("Steps ({})", steps.len());
    b.wait_for_text("#steps-h", |t| t == heading).await.unwrap();
    assert!(!steps.is_empty(), "run {id} has steps");
    for step in &steps {
        let name = step["name"].as_str().unwrap();
        let row = b.find(&format!("tr[data-step=\"{name}\"]")).await.unwrap();
        let status = row
            .find(Locator::Css("[data-status]"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(status, step["status"].as_str().unwrap(), "step {name}");
        let attempts = row
            .find(Locator::Css("[data-attempts]"))
            .await
            .unwrap()
            .attr("data-attempts")
            .await
            .unwrap();
        assert_eq!(
            attempts.as_deref(),
            Some(step["attempts"].to_string().as_str()),
            "step {name}"
        );
        let history = step["history"].as_array().unwrap();
        let shown = row
            .find_all(Locator::Css("li[data-attempt]"))
            .await
            .unwrap();
        assert_eq!(shown.len(), history.len(), "attempts of step {name}");
        for (li, attempt) in shown.iter().zip(history) {
            let text = li.text().await.unwrap();
            assert!(
                text.starts_with(attempt["status"].as_str().unwrap()),
                "attempt {attempt} of {name} shows {text:?}"
            );
            if let Some(code) = attempt["error"]["code"].as_str() {
                assert!(text.contains(code), "attempt {attempt} shows {text:?}");
            }
        }
    }
    let bars = b.all("[data-timeline-step]").await.unwrap();
    assert_eq!(bars.len(), steps.len(), "one timeline bar per step");

    let (_, logs) = api.get(&format!("/v1/runs/{id}/logs")).await.unwrap();
    let logs = logs["logs"].as_array().unwrap();
    let rows = b.all("tr[data-log]").await.unwrap();
    assert_eq!(rows.len(), logs.len(), "log lines of {id}");
    for (row, line) in rows.iter().zip(logs) {
        let cells = row.find_all(Locator::Css("td")).await.unwrap();
        assert_eq!(
            cells[2].text().await.unwrap(),
            line["message"].as_str().unwrap()
        );
    }
    b.full_page_screenshot(shot).await.unwrap();
}

/// The runs list pages through every run, newest first, as the API lists
/// them; the status filter shows the running ones only.
async fn list_pages_and_filters(b: &Browser, server: &DevServer, api: &Api) {
    let (_, all) = api.get("/v1/runs?limit=500").await.unwrap();
    let expected: Vec<String> = all["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["runId"].as_str().unwrap().to_string())
        .collect();
    assert!(expected.len() >= 5, "{all}");

    open(b, server, "/runs?limit=2").await;
    b.find("tr[data-run]").await.unwrap();
    let mut seen: Vec<String> = Vec::new();
    loop {
        let page = b.attrs("tr[data-run]", "data-run").await.unwrap();
        if seen.is_empty() {
            b.screenshot("runs-first-page").await.unwrap();
        }
        seen.extend(page.iter().cloned());
        assert!(seen.len() <= expected.len() + 2, "paging loops: {seen:?}");
        let Ok(next) = b.client.find(Locator::Css("[data-next-page]")).await else {
            break;
        };
        next.click().await.unwrap();
        // Wait until the next page has replaced this one.
        let started = Instant::now();
        while b.attrs("tr[data-run]", "data-run").await.unwrap() == page
            || b.all("[data-next-page], [data-empty], tr[data-run]")
                .await
                .unwrap()
                .is_empty()
        {
            assert!(started.elapsed() < Duration::from_secs(20), "no next page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(seen, expected, "every run once, newest first");

    open(b, server, "/runs").await;
    b.find("tr[data-run]").await.unwrap();
    b.find("#filter-status")
        .await
        .unwrap()
        .select_by_value("running")
        .await
        .unwrap();
    let (_, running) = api.get("/v1/runs?status=running").await.unwrap();
    let want: Vec<&str> = running["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["runId"].as_str().unwrap())
        .collect();
    let started = Instant::now();
    loop {
        let shown = b.attrs("tr[data-run]", "data-run").await.unwrap();
        if shown == want {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "filtered {shown:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.screenshot("runs-running").await.unwrap();
}

/// A running run's page follows it without a reload: the approval event
/// is sent through the API while the page is open.
async fn page_updates_live(b: &Browser, server: &DevServer, api: &Api, id: &str) {
    open_run(b, server, id).await;
    b.find("[data-live]").await.unwrap();
    b.wait_for_text("dd [data-status]", |t| t == "running")
        .await
        .unwrap();
    b.screenshot("run-waiting-for-approval").await.unwrap();
    let (status, sent) = api
        .post(
            &format!("/v1/runs/{id}/events/approval"),
            json!({"approved": true, "by": "grace"}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{sent}");
    b.wait_for_text("dd [data-status]", |t| t == "completed")
        .await
        .unwrap();
    let output = b.text("[data-payload=output]").await.unwrap();
    assert!(output.contains("\"approved\""), "{output}");
    let event = b.text("tr[data-event=\"approval#0\"]").await.unwrap();
    assert!(event.contains("await-manager"), "the wait took it: {event}");
}

/// The fan-out's members are drawn side by side and its child is linked.
async fn fanout_shows_members_and_child(b: &Browser, server: &DevServer, api: &Api, id: &str) {
    page_matches_api(b, server, api, id, "run-fanout").await;
    let group = b.find("[data-parallel]").await.unwrap();
    let members: usize = group
        .attr("data-parallel")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    assert!(members >= 3, "the three members in one group: {members}");
    let (_, children) = api.get(&format!("/v1/runs/{id}/children")).await.unwrap();
    let child = children["children"][0]["runId"].as_str().unwrap();
    let link = b
        .find(&format!("tr[data-child] a[href=\"#/runs/{child}\"]"))
        .await
        .unwrap();
    link.click().await.unwrap();
    b.wait_for_text("[data-run-id]", |t| t == child)
        .await
        .unwrap();
    let parent = b.text(".facts").await.unwrap();
    assert!(parent.contains(id), "the child links back: {parent}");
}

async fn shows_runs(server: &DevServer, group: &str) -> (Browser, Recorded) {
    let api = Api::with_token(&server.url, TOKEN);
    let runs = record_runs(&api).await;
    let b = Browser::start(group).await.unwrap();
    sign_in(&b, server).await;
    b.screenshot("runs").await.unwrap();
    list_pages_and_filters(&b, server, &api).await;
    page_matches_api(&b, server, &api, &runs.saga, "run-completed-saga").await;
    page_matches_api(&b, server, &api, &runs.retried, "run-retried-charge").await;
    fanout_shows_members_and_child(&b, server, &api, &runs.fanout).await;
    page_updates_live(&b, server, &api, &runs.approval).await;
    (b, runs)
}

/// Completes the callback run through the page: its token is read from the
/// run's log lines, as the page shows them.
async fn completes_a_callback(b: &Browser, server: &DevServer, id: &str) {
    open_run(b, server, id).await;
    let logs = b
        .wait_for_text("tr[data-log=\"0\"]", |t| t.contains("callback token:"))
        .await
        .unwrap();
    let token = logs
        .split("callback token:")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    // Bad JSON gets the API's own error, and nothing happens.
    b.fill("#callback-token", &token).await.unwrap();
    b.fill("#callback-result", "{not json").await.unwrap();
    submit(b, "callback").await;
    let problem = b
        .wait_for_text("[data-action=callback] .form-error", |t| !t.is_empty())
        .await
        .unwrap();
    assert!(problem.starts_with("invalid_json"), "{problem}");
    b.fill("#callback-result", r#"{"ok": "by the console"}"#)
        .await
        .unwrap();
    submit(b, "callback").await;
    b.wait_for_text("dd [data-status]", |t| t == "completed")
        .await
        .unwrap();
    let output = b.text("[data-payload=output]").await.unwrap();
    assert!(output.contains("by the console"), "{output}");
    b.full_page_screenshot("run-callback-completed")
        .await
        .unwrap();
}

async fn submit(b: &Browser, action: &str) {
    b.find(&format!("[data-action={action}] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Starts runs from the start page (bad JSON first), sends one an event
/// and cancels the other, all through the page.
async fn starts_sends_and_cancels(b: &Browser, server: &DevServer, api: &Api) {
    open(b, server, "/start?workflow=expense-approval").await;
    b.find("#start-workflow")
        .await
        .unwrap()
        .select_by_value("expense-approval")
        .await
        .unwrap();
    b.fill("#start-input", "{\"expenseId\": ").await.unwrap();
    submit(b, "start").await;
    let problem = b
        .wait_for_text("[data-action=start] .form-error", |t| !t.is_empty())
        .await
        .unwrap();
    assert!(problem.starts_with("invalid_json"), "{problem}");
    b.screenshot("start-bad-json").await.unwrap();

    let mut started = Vec::new();
    for expense_id in ["e-page-1", "e-page-2"] {
        open(b, server, "/start?workflow=expense-approval").await;
        b.fill("#start-input", &expense(expense_id).to_string())
            .await
            .unwrap();
        submit(b, "start").await;
        let id = b
            .wait_for_text("[data-run-id]", |t| t.len() == 36)
            .await
            .unwrap();
        let (_, run) = api.get(&format!("/v1/runs/{id}")).await.unwrap();
        assert_eq!(run["input"]["expenseId"], expense_id, "{run}");
        wait_run(api, &id, |r| r["waitingOn"]["kind"] == "event").await;
        started.push(id);
    }

    // An event through the page.
    open_run(b, server, &started[0]).await;
    b.find("[data-live]").await.unwrap();
    b.fill("#event-name", "approval").await.unwrap();
    b.fill("#event-payload", r#"{"approved": false, "by": "page"}"#)
        .await
        .unwrap();
    submit(b, "event").await;
    b.wait_for_text("dd [data-status]", |t| t == "completed")
        .await
        .unwrap();
    let (_, run) = api.get(&format!("/v1/runs/{}", started[0])).await.unwrap();
    assert_eq!(run["output"]["status"], "rejected", "{run}");
    assert_eq!(run["output"]["decidedBy"], "page", "{run}");

    // A cancel through the page, confirmed in the browser's dialog.
    open_run(b, server, &started[1]).await;
    b.find("[data-live]").await.unwrap();
    b.fill("#cancel-reason", "changed my mind").await.unwrap();
    submit(b, "cancel").await;
    let started_at = Instant::now();
    while b.client.accept_alert().await.is_err() {
        assert!(started_at.elapsed() < Duration::from_secs(10), "no dialog");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.wait_for_text("dd [data-status]", |t| t == "cancelled")
        .await
        .unwrap();
    let (_, run) = api.get(&format!("/v1/runs/{}", started[1])).await.unwrap();
    assert_eq!(run["status"], "cancelled", "{run}");
    assert!(
        run["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("changed my mind"),
        "{run}"
    );
}

/// The modules page shows every version with the runs still on it, as
/// the API counts them; the schedules page shows the next fire time.
async fn modules_and_schedules(b: &Browser, server: &DevServer, api: &Api) {
    let (status, schedule) = api
        .put(
            "/v1/schedules/nightly-hello",
            json!({"workflow": "hello", "cron": "0 3 * * *", "input": {"name": "night"}})
                .to_string()
                .into_bytes(),
        )
        .await
        .unwrap();
    assert!(status == 200 || status == 201, "{schedule}");

    open(b, server, "/modules").await;
    b.find("section[data-module=\"order-saga\"]").await.unwrap();
    let (_, modules) = api.get("/v1/modules").await.unwrap();
    let mut running_somewhere = false;
    for module in modules["modules"].as_array().unwrap() {
        let name = module["name"].as_str().unwrap();
        let (_, versions) = api.get(&format!("/v1/modules/{name}")).await.unwrap();
        for v in versions["versions"].as_array().unwrap() {
            let css = format!(
                "section[data-module=\"{name}\"] tr[data-version=\"{}\"] [data-running]",
                v["version"]
            );
            let shown = b.find(&css).await.unwrap().attr("data-running").await;
            assert_eq!(
                shown.unwrap().as_deref(),
                Some(v["runningRuns"].to_string().as_str()),
                "{name} v{}",
                v["version"]
            );
            running_somewhere |= v["runningRuns"].as_u64().unwrap_or(0) > 0;
        }
    }
    assert!(running_somewhere, "the callback run still runs: {modules}");
    b.full_page_screenshot("modules").await.unwrap();

    open(b, server, "/schedules").await;
    let cell = b
        .find("tr[data-schedule=\"nightly-hello\"] [data-next-fire]")
        .await
        .unwrap();
    let (_, schedule) = api.get("/v1/schedules/nightly-hello").await.unwrap();
    assert_eq!(
        cell.attr("data-next-fire").await.unwrap().as_deref(),
        schedule["nextFireAt"].as_str()
    );
    b.screenshot("schedules").await.unwrap();
}

/// A run that failed as non-deterministic shows the journal and the
/// replay side by side. Its module is changed under it in the database
/// (pinning exists to prevent this, so only tampering can show it).
async fn shows_a_divergence(b: &Browser, server: &DevServer, api: &Api) {
    api.deploy("orders", &test_guest("upgrade-v1"))
        .await
        .unwrap();
    let v2 = api
        .deploy("orders-next", &test_guest("upgrade-v2"))
        .await
        .unwrap();
    let id = api
        .start("orders", &json!({"path": "b", "sleepMs": 3000}))
        .await
        .unwrap();
    wait_run(api, &id, |r| r["waitingOn"]["kind"] == "sleep").await;
    let db = rusqlite::Connection::open(server.data_dir.join("weft.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let changed = db
        .execute(
            "UPDATE runs SET module_digest = ?1 WHERE id = ?2",
            [v2["digest"].as_str().unwrap(), id.as_str()],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let run = finished(api, &id).await;
    assert_eq!(run["error"]["code"], "non_deterministic", "{run}");

    open_run(b, server, &id).await;
    let journal = b.text("[data-diff-side=journal]").await.unwrap();
    let replay = b.text("[data-diff-side=replay]").await.unwrap();
    assert_eq!(
        journal,
        run["error"]["details"]["journal"].as_str().unwrap()
    );
    assert_eq!(replay, run["error"]["details"]["replay"].as_str().unwrap());
    assert!(journal.contains("check-stock") && replay.contains("reserve-stock"));
    b.full_page_screenshot("run-non-deterministic")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_and_drives_runs_on_the_embedded_backend() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start_with(dir.path(), &server_env(&[])).unwrap();
    let api = Api::with_token(&server.url, TOKEN);
    let (b, runs) = shows_runs(&server, "embedded").await;
    modules_and_schedules(&b, &server, &api).await;
    completes_a_callback(&b, &server, &runs.callback).await;
    starts_sends_and_cancels(&b, &server, &api).await;
    shows_a_divergence(&b, &server, &api).await;
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_pages_and_follows_runs_on_the_aws_backend() {
    let env = AwsEnv::provision(QueueOptions {
        visibility_timeout: Duration::from_secs(2),
        max_receives: 5,
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start_with(dir.path(), &server_env(&env.env())).unwrap();
    let (b, runs) = shows_runs(&server, "aws").await;
    completes_a_callback(&b, &server, &runs.callback).await;
    b.close().await.unwrap();
}

/// The console's files are served without the token (they hold no data)
/// with a policy that forbids inline script; the data is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_files_are_open_and_the_data_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start_with(dir.path(), &server_env(&[])).unwrap();
    let http = reqwest::Client::new();
    for (path, kind) in [
        ("/", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/style.css", "text/css"),
    ] {
        let response = http
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert!(headers["content-type"].to_str().unwrap().starts_with(kind));
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("script-src 'self'"), "{policy}");
    }
    let (status, body) = Api::new(&server.url).get("/v1/runs").await.unwrap();
    assert_eq!(status, 401, "{body}");
}

/// Spawns `weft console` with `args` and returns it with the URL it
/// serves on (from its first line).
fn weft_console(args: &[&str], env: &[(&str, &str)]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut command = std::process::Command::new(weft_tests::weft_bin());
    command
        .args(["console", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .stdout(std::process::Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut first = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut first)
        .unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("weft console said {first:?}"))
        .trim_end_matches('/')
        .to_string();
    (child, url)
}

/// `weft console` serves the console on this machine and forwards its API
/// calls with the command's token, so the browser needs none; with
/// `--sigv4` they arrive signed for API Gateway's IAM authorization.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weft_console_forwards_with_the_commands_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start_with(dir.path(), &server_env(&[])).unwrap();
    let (mut proxy, url) = weft_console(&["--server", &server.url, "--token", TOKEN], &[]);
    let anonymous = Api::new(&url);
    let (status, page) = anonymous.get("/").await.unwrap();
    assert_eq!(status, 200);
    assert!(page.as_str().unwrap_or_default().contains("Weft console"));
    anonymous.deploy("hello", &example("hello")).await.unwrap();
    let (status, started) = anonymous
        .post("/v1/workflows/hello/runs?wait=30", r#"{"name":"proxy"}"#)
        .await
        .unwrap();
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["output"]["greeting"], "Hello, proxy!");
    let (status, body) = anonymous.get("/v1/runs/nope").await.unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_run_id")),
        "the server's errors come through: {body}"
    );
    let (status, _) = anonymous.get("/elsewhere").await.unwrap();
    assert_eq!(status, 404, "only the API is forwarded");
    let _ = proxy.kill();

    // Signed: a recorder stands in for API Gateway.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let record = std::sync::Arc::clone(&seen);
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let record = std::sync::Arc::clone(&record);
        async move {
            *record.lock().unwrap() = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            axum::Json(json!({"runs": [], "next": null}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (mut proxy, url) = weft_console(
        &["--server", &format!("http://{addr}"), "--sigv4"],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDWEFTTEST"),
            ("AWS_SECRET_ACCESS_KEY", "weft-test-secret"),
            ("AWS_REGION", "eu-west-1"),
        ],
    );
    let (status, listed) = Api::new(&url).get("/v1/runs").await.unwrap();
    assert_eq!(status, 200, "{listed}");
    let sent = seen.lock().unwrap().clone().expect("a request arrived");
    assert!(
        sent.starts_with("AWS4-HMAC-SHA256 Credential=AKIDWEFTTEST/")
            && sent.contains("/execute-api/aws4_request"),
        "{sent}"
    );
    let _ = proxy.kill();
}
