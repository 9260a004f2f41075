//! JSON shapes of the API's responses. Payloads stored as JSON text are
//! returned as JSON values, timestamps as RFC 3339 strings.

use crate::model::{
    CallbackRecord, CallbackState, ErrorInfo, EventRecord, EventSent, LogLine, Millis,
    ModuleVersion, ParentLink, RunRecord, Schedule, StepKind, StepRecord,
};
use crate::service::{StepView, UpgradeReport};
use serde_json::{Value, json};
use std::time::{Duration, UNIX_EPOCH};

pub fn timestamp(ms: Millis) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Stored JSON text as a value (text that is somehow not JSON stays a string).
pub fn json_value(text: Option<&str>) -> Value {
    match text {
        None => Value::Null,
        Some(t) => serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.to_string())),
    }
}

/// How large a payload a response carries in line; larger ones are left
/// out and named by their size and a path to download them from (a JSON
/// answer from a serverless function must stay under 6 MB).
#[derive(Clone, Copy, Debug)]
pub struct Inline(pub usize);

impl Inline {
    /// Everything in line (the CLI printing a local run).
    pub const ALL: Self = Self(usize::MAX);
}

/// Puts payload `text` into `view` as `key`, or, when it is larger than
/// `inline`, `<key>Bytes` and `<key>Url` (`path`) in its place.
fn put_payload(view: &mut Value, key: &str, text: Option<&str>, path: String, inline: Inline) {
    match text {
        Some(t) if t.len() > inline.0 => {
            insert(view, &format!("{key}Bytes"), json!(t.len()));
            insert(view, &format!("{key}Url"), json!(path));
        }
        _ => insert(view, key, json_value(text)),
    }
}

fn error(e: Option<&ErrorInfo>) -> Value {
    e.map_or(Value::Null, |e| {
        serde_json::to_value(e).unwrap_or(Value::Null)
    })
}

/// A replay-checked deploy's report.
pub fn upgrade(r: &UpgradeReport) -> Value {
    json!({
        "module": module(&r.module),
        "published": r.published,
        "running": r.running,
        "checked": r.checked,
        "compatible": r.compatible,
        "diverging": r.diverging.iter().map(|d| json!({
            "runId": d.run,
            "error": error(Some(&d.error)),
        })).collect::<Vec<_>>(),
        "moved": r.moved,
        "finished": r.finished,
    })
}

pub fn module(v: &ModuleVersion) -> Value {
    json!({
        "name": v.name,
        "version": v.version,
        "digest": v.digest,
        "kind": v.kind,
        "size": v.size,
        "uploadedAt": timestamp(v.uploaded_at),
        "allowedHosts": v.allowed_hosts,
    })
}

/// A module version with how many runs still run on it.
pub fn module_in_use(v: &ModuleVersion, running: usize) -> Value {
    let mut view = module(v);
    insert(&mut view, "runningRuns", json!(running));
    view
}

pub fn run(r: &RunRecord, inline: Inline) -> Value {
    let mut view = json!({
        "runId": r.id,
        "workflow": r.workflow,
        "status": r.status,
        "error": error(r.error.as_ref()),
        "moduleDigest": r.module_digest,
        "steps": r.step_names.len(),
        "deadline": r.deadline.map(timestamp),
        "parent": r.parent.as_ref().map(|p| json!({
            "runId": p.run_id,
            "step": p.step,
            "detached": p.detached,
        })),
        "createdAt": timestamp(r.created_at),
        "updatedAt": timestamp(r.updated_at),
        "expiresAt": r.expires_at.map(timestamp),
    });
    let base = format!("/v1/runs/{}", r.id);
    put_payload(
        &mut view,
        "input",
        Some(&r.input),
        format!("{base}/input"),
        inline,
    );
    put_payload(
        &mut view,
        "output",
        r.output.as_deref(),
        format!("{base}/output"),
        inline,
    );
    view
}

fn insert(view: &mut Value, key: &str, value: Value) {
    if let Value::Object(map) = view {
        map.insert(key.to_string(), value);
    }
}

/// A run, with the step it waits on when it is running.
pub fn run_with_wait(r: &RunRecord, waiting: Option<&StepRecord>, inline: Inline) -> Value {
    let mut view = run(r, inline);
    if let Some(step) = waiting {
        insert(
            &mut view,
            "waitingOn",
            json!({
                "step": step.name,
                "kind": step.kind,
                "status": step.status,
                "attempts": step.attempt_count,
                "wakeAt": step.wake_at.map(timestamp),
                "leaseOwner": step.lease.as_ref().map(|l| l.owner.clone()),
                "leaseExpiresAt": step.lease.as_ref().map(|l| timestamp(l.expires_at)),
                "lastError": error(step.error.as_ref()),
            }),
        );
    }
    if let Some(lease) = &r.lease {
        insert(
            &mut view,
            "activeOn",
            json!({ "worker": lease.owner, "leaseExpiresAt": timestamp(lease.expires_at) }),
        );
    }
    view
}

/// The short answer to a run started with `?wait=`.
pub fn run_result(r: &RunRecord, inline: Inline) -> Value {
    let mut view = json!({
        "runId": r.id,
        "status": r.status,
        "error": error(r.error.as_ref()),
    });
    let path = format!("/v1/runs/{}/output", r.id);
    put_payload(&mut view, "output", r.output.as_deref(), path, inline);
    view
}

/// A step's result as the API shows it: a callback's token is a
/// capability, so it is left out (the workflow has it; the API need not).
fn shown_result(s: &StepRecord) -> Value {
    match s.kind {
        StepKind::Callback if s.result.is_some() => json!("[callback token hidden]"),
        _ => json_value(s.result.as_deref()),
    }
}

/// `text` as one path segment: unreserved characters as they are, every
/// other byte percent-encoded (step names may hold `#`).
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn step(v: &StepView, inline: Inline) -> Value {
    let s = &v.step;
    let history: Vec<Value> = v
        .attempts
        .iter()
        .map(|a| {
            json!({
                "attempt": a.attempt,
                "status": a.status,
                "error": error(a.error.as_ref()),
                "startedAt": timestamp(a.started_at),
                "endedAt": a.ended_at.map(timestamp),
            })
        })
        .collect();
    // A child step names its child run (derived, so shown before the child
    // ends); a detached one has it as its result.
    let child = match s.kind {
        StepKind::Child => json!(ParentLink::child_id(
            &s.run_id,
            &s.name,
            s.rpc_name.as_deref().unwrap_or_default()
        )),
        StepKind::DetachedChild => json_value(s.result.as_deref()),
        _ => Value::Null,
    };
    let mut view = json!({
        "name": s.name,
        "seq": s.seq,
        "kind": s.kind,
        "rpcName": s.rpc_name,
        "childRunId": child,
        "status": s.status,
        "attempts": s.attempt_count,
        "hostLosses": s.host_losses,
        "error": error(s.error.as_ref()),
        "wakeAt": s.wake_at.map(timestamp),
        "createdAt": timestamp(s.created_at),
        "completedAt": s.completed_at.map(timestamp),
        "history": history,
    });
    let base = format!("/v1/runs/{}/steps/{}", s.run_id, path_segment(&s.name));
    put_payload(
        &mut view,
        "input",
        s.input.as_deref(),
        format!("{base}/input"),
        inline,
    );
    match shown_result(s) {
        Value::String(hidden) if s.kind == StepKind::Callback => {
            insert(&mut view, "result", json!(hidden))
        }
        _ => put_payload(
            &mut view,
            "result",
            s.result.as_deref(),
            format!("{base}/result"),
            inline,
        ),
    }
    view
}

/// A child run as its parent's listing shows it: the step that started it
/// and the run's state.
pub fn child(step: &StepRecord, child: Option<&RunRecord>) -> Value {
    json!({
        "step": step.name,
        "workflow": step.rpc_name,
        "detached": step.kind == StepKind::DetachedChild,
        "stepStatus": step.status,
        "runId": child.map(|c| c.id.clone()),
        "status": child.map(|c| c.status),
        "error": error(step.error.as_ref()),
        "createdAt": child.map(|c| timestamp(c.created_at)),
    })
}

pub fn schedule(s: &Schedule) -> Value {
    json!({
        "name": s.name,
        "workflow": s.workflow,
        "cron": s.cron,
        "input": json_value(Some(&s.input)),
        "overlap": s.overlap,
        "paused": s.paused,
        "nextFireAt": s.next_fire_at.map(timestamp),
        "lastFireAt": s.last_fire_at.map(timestamp),
        "lastRunId": s.last_run_id,
        "skipped": s.skipped,
        "createdAt": timestamp(s.created_at),
        "updatedAt": timestamp(s.updated_at),
    })
}

pub fn log_line(l: &LogLine) -> Value {
    json!({
        "at": timestamp(l.at),
        "level": l.level,
        "message": l.message,
    })
}

/// The answer to sending an event: which one it is in the inbox, whether
/// it repeated an earlier send, and the wait that took it, if one did.
pub fn event_sent(sent: &EventSent) -> Value {
    let e = sent.record();
    json!({
        "runId": e.run_id,
        "event": e.name,
        "seq": e.seq,
        "eventId": e.event_id,
        "duplicate": matches!(sent, EventSent::Duplicate(_)),
        "takenBy": e.taken_by,
        "sentAt": timestamp(e.sent_at),
    })
}

/// An event in a run's inbox. A payload too large to carry in line is
/// named by its size only (the wait step that took it links it).
pub fn event(e: &EventRecord, inline: Inline) -> Value {
    let mut view = json!({
        "event": e.name,
        "seq": e.seq,
        "eventId": e.event_id,
        "sentAt": timestamp(e.sent_at),
        "takenBy": e.taken_by,
    });
    if e.payload.len() > inline.0 {
        insert(&mut view, "payloadBytes", json!(e.payload.len()));
    } else {
        insert(&mut view, "payload", json_value(Some(&e.payload)));
    }
    view
}

/// A callback after its completion (never its token).
pub fn callback(cb: &CallbackRecord) -> Value {
    let state = match cb.state {
        CallbackState::Waiting => "waiting",
        CallbackState::Completed { .. } => "completed",
        CallbackState::Expired => "expired",
    };
    json!({
        "runId": cb.run_id,
        "step": cb.step,
        "state": state,
        "expiresAt": cb.expires_at.map(timestamp),
    })
}
