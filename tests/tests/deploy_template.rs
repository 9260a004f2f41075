//! The deployment template's timeouts agree with the engine: the queue's
//! visibility timeout is at least six times the worker's (AWS's advice for
//! SQS event sources), the default RPC attempt fits in one worker
//! invocation with room to record its outcome, and each function is told
//! its own timeout (`WEFT_INVOCATION_TIMEOUT_SECS`), from which the engine
//! derives every in-invocation deadline.

use weft::config::Limits;
use weft::service::invocation;

fn template() -> String {
    std::fs::read_to_string(weft_tests::root().join("deploy/template.yaml")).expect("template")
}

/// The `Default:` of parameter `name`.
fn default_of(template: &str, name: &str) -> u64 {
    let start = template
        .find(&format!("  {name}:\n"))
        .unwrap_or_else(|| panic!("parameter {name} is missing"));
    template[start..]
        .lines()
        .find_map(|l| l.trim().strip_prefix("Default: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("parameter {name} has no numeric default"))
}

/// The lines of resource `name`, up to the next resource.
fn resource(template: &str, name: &str) -> String {
    let header = format!("  {name}:");
    let mut lines = template.lines().skip_while(|l| *l != header);
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("resource {name} is missing"));
    let body = lines.take_while(|l| l.is_empty() || l.starts_with("   "));
    std::iter::once(first)
        .chain(body)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_queue_outlasts_six_worker_invocations() {
    let t = template();
    let worker = default_of(&t, "WorkerTimeoutSeconds");
    let visibility = default_of(&t, "VisibilityTimeoutSeconds");
    assert!(
        visibility >= 6 * worker,
        "visibility {visibility} s < 6 x worker timeout {worker} s"
    );
    assert!(t.contains("VisibilityTimeout: !Ref VisibilityTimeoutSeconds"));
}

#[test]
fn an_rpc_attempt_fits_in_one_worker_invocation() {
    let t = template();
    let worker = std::time::Duration::from_secs(default_of(&t, "WorkerTimeoutSeconds"));
    let rpc = Limits::default().default_rpc_timeout;
    assert!(
        rpc <= invocation::usable_span(worker),
        "default RPC timeout {rpc:?} does not fit a {worker:?} invocation"
    );
}

#[test]
fn each_function_knows_its_own_timeout() {
    let t = template();
    let worker = resource(&t, "WorkerFunction");
    assert!(
        worker.contains("Timeout: !Ref WorkerTimeoutSeconds"),
        "{worker}"
    );
    assert!(
        worker.contains("WEFT_INVOCATION_TIMEOUT_SECS: !Ref WorkerTimeoutSeconds"),
        "{worker}"
    );
    // The API function takes the global timeout and environment.
    let globals =
        &t[t.find("Globals:").expect("Globals")..t.find("Resources:").expect("Resources")];
    assert!(
        globals.contains("Timeout: !Ref HttpTimeoutSeconds"),
        "{globals}"
    );
    assert!(
        globals.contains("WEFT_INVOCATION_TIMEOUT_SECS: !Ref HttpTimeoutSeconds"),
        "{globals}"
    );
}

/// The run listing index holds keys and the workflow only: a step's write
/// to the run item (its journal index, lease, status) then costs no index
/// write, whatever the run's size, and listings read runs by key.
#[test]
fn the_status_index_copies_no_run_payloads() {
    let t = template();
    let runs = resource(&t, "RunsTable");
    assert!(
        runs.contains("Projection: { ProjectionType: INCLUDE, NonKeyAttributes: [workflow] }"),
        "{runs}"
    );
}

/// The worker may do every write its store makes to the runs table: the
/// journal chunks a run fills are puts inside its transaction (IAM checks
/// each action of a transaction), older items are rewritten in batches, and
/// the sweep queries the quiet index. Without these a run on AWS would fail
/// at its hundredth step and stranded runs would never be found.
#[test]
fn the_worker_may_write_journal_chunks_and_read_the_quiet_index() {
    let t = template();
    let worker = resource(&t, "WorkerFunction");
    let runs = worker
        .split("- Sid: ")
        .find(|s| s.starts_with("Runs\n"))
        .expect("the worker's Runs statement");
    for action in [
        "dynamodb:PutItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:UpdateItem",
    ] {
        assert!(runs.contains(action), "{action} missing: {runs}");
    }
    assert!(runs.contains("/index/quiet-index"), "{runs}");
    let table = resource(&t, "RunsTable");
    assert!(table.contains("IndexName: quiet-index"), "{table}");
    assert!(
        table.contains("Projection: { ProjectionType: KEYS_ONLY }"),
        "{table}"
    );
}

/// Sending an event is one transaction on the runs table from the HTTP
/// function: a condition on the run, the inbox's count, the event and its
/// id. IAM checks each action of a transaction, so without
/// `ConditionCheckItem` every send would be refused on AWS.
#[test]
fn the_http_function_may_store_events() {
    let t = template();
    let http = resource(&t, "HttpFunction");
    let runs = http
        .split("- Sid: ")
        .find(|s| s.starts_with("ReadAndStartRuns\n"))
        .expect("the HTTP function's runs statement");
    for action in [
        "dynamodb:ConditionCheckItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:GetItem",
    ] {
        assert!(runs.contains(action), "{action} missing: {runs}");
    }
}

/// Schedules live in the runs table: the HTTP function writes, lists and
/// deletes them (through `schedule-index`), and the worker's tick finds the
/// due ones through the same index. moto does not enforce IAM, so only
/// this test would catch a missing grant.
#[test]
fn both_functions_may_use_the_schedule_index() {
    let t = template();
    let http = resource(&t, "HttpFunction");
    assert!(http.contains("/index/schedule-index"), "{http}");
    assert!(http.contains("dynamodb:DeleteItem"), "{http}");
    let worker = resource(&t, "WorkerFunction");
    let runs = worker
        .split("- Sid: ")
        .find(|s| s.starts_with("Runs\n"))
        .expect("the worker's Runs statement");
    assert!(runs.contains("/index/schedule-index"), "{runs}");
    let table = resource(&t, "RunsTable");
    assert!(table.contains("IndexName: schedule-index"), "{table}");
}

/// Retention on AWS: the runs table expires finished runs' items by the
/// attribute the store writes (TTL, in seconds) and has the index the
/// retention sweep reads, and the worker, which runs the sweep, may find
/// and delete everything an expired run stored: its items in all four
/// tables (queries, batch deletes, the run item's conditional delete) and
/// its payloads in S3. moto does not enforce IAM, so only this test would
/// catch a missing grant.
#[test]
fn the_worker_may_delete_expired_runs_and_the_table_expires_them() {
    use weft::backend::aws::dynamo::retention::{INDEX, TTL_ATTRIBUTE};
    let t = template();
    let table = resource(&t, "RunsTable");
    assert!(table.contains(&format!("IndexName: {INDEX}")), "{table}");
    assert!(
        table.contains(&format!(
            "TimeToLiveSpecification: {{ AttributeName: {TTL_ATTRIBUTE}, Enabled: true }}"
        )),
        "{table}"
    );
    let worker = resource(&t, "WorkerFunction");
    let statement = |sid: &str| {
        worker
            .split("- Sid: ")
            .find(|s| s.starts_with(&format!("{sid}\n")))
            .unwrap_or_else(|| panic!("the worker's {sid} statement"))
            .to_string()
    };
    let runs = statement("Runs");
    for grant in [
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:Query",
        &format!("/index/{INDEX}"),
    ] {
        assert!(runs.contains(grant), "{grant} missing: {runs}");
    }
    let steps = statement("Steps");
    for grant in [
        "dynamodb:BatchWriteItem",
        "dynamodb:Query",
        "/index/runId-index",
    ] {
        assert!(steps.contains(grant), "{grant} missing: {steps}");
    }
    let history = statement("HistoryAndLogs");
    for grant in ["dynamodb:BatchWriteItem", "dynamodb:Query"] {
        assert!(history.contains(grant), "{grant} missing: {history}");
    }
    let payloads = statement("Payloads");
    assert!(payloads.contains("s3:DeleteObject"), "{payloads}");
    assert!(payloads.contains("/payloads/*"), "{payloads}");
    assert!(
        statement("ListPayloads").contains("s3:ListBucket"),
        "{worker}"
    );
}
