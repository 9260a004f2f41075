//! Mapping between model records and DynamoDB items (the seed's layout,
//! camelCase attribute names).

use super::journal;
use crate::backend::StoreError;
use crate::model::{
    AttemptRecord, Digest, ErrorInfo, Lease, LogLine, ParentLink, RetryPolicy, RunHead, RunId,
    RunRecord, RunStatus, StepKind, StepOptions, StepRecord, StepStatus,
};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::str::FromStr;

pub type Item = HashMap<String, AttributeValue>;

/// DynamoDB's item size limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("stored item has a missing or invalid `{what}`"))
}

pub fn get_s(item: &Item, key: &str) -> Result<String, StoreError> {
    opt_s(item, key).ok_or_else(|| corrupt(key))
}

pub fn opt_s(item: &Item, key: &str) -> Option<String> {
    item.get(key).and_then(|v| v.as_s().ok()).cloned()
}

pub fn get_n<T: FromStr>(item: &Item, key: &str) -> Result<T, StoreError> {
    opt_n(item, key)?.ok_or_else(|| corrupt(key))
}

pub fn opt_n<T: FromStr>(item: &Item, key: &str) -> Result<Option<T>, StoreError> {
    match item.get(key) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(v) => {
            let text = v.as_n().map_err(|_| corrupt(key))?;
            text.parse().map(Some).map_err(|_| corrupt(key))
        }
    }
}

fn put_opt_s(item: &mut Item, key: &str, v: Option<&str>) {
    if let Some(v) = v {
        item.insert(key.into(), s(v));
    }
}

fn put_opt_n(item: &mut Item, key: &str, v: Option<u64>) {
    if let Some(v) = v {
        item.insert(key.into(), n(v));
    }
}

pub fn error_value(e: &ErrorInfo) -> AttributeValue {
    let mut m = HashMap::from([
        ("code".to_string(), s(&e.code)),
        ("message".to_string(), s(&e.message)),
    ]);
    if let Some(d) = &e.details {
        m.insert("details".into(), s(d.to_string()));
    }
    AttributeValue::M(m)
}

pub fn opt_error(item: &Item, key: &str) -> Result<Option<ErrorInfo>, StoreError> {
    let Some(v) = item.get(key) else {
        return Ok(None);
    };
    let m = v.as_m().map_err(|_| corrupt(key))?;
    Ok(Some(ErrorInfo {
        code: get_s(m, "code")?,
        message: get_s(m, "message")?,
        details: opt_s(m, "details").and_then(|d| serde_json::from_str(&d).ok()),
    }))
}

fn lease(item: &Item) -> Result<Option<Lease>, StoreError> {
    Ok(match opt_s(item, "leaseOwner") {
        Some(owner) => Some(Lease {
            owner,
            expires_at: opt_n(item, "leaseExpiresAt")?.unwrap_or(0),
        }),
        None => None,
    })
}

pub fn run_item(r: &RunRecord) -> Item {
    let mut item = Item::from([
        ("id".into(), s(r.id.as_str())),
        ("workflow".into(), s(&r.workflow)),
        ("moduleDigest".into(), s(r.module_digest.as_str())),
        ("status".into(), s(r.status.as_str())),
        ("input".into(), s(&r.input)),
        ("createdAt".into(), n(r.created_at)),
        ("updatedAt".into(), n(r.updated_at)),
        ("version".into(), n(r.version)),
    ]);
    let (base, tail) = journal_tail(&r.step_names);
    item.insert("stepBase".into(), n(base));
    item.insert("stepNames".into(), tail);
    put_opt_s(&mut item, "output", r.output.as_deref());
    if let Some(e) = &r.error {
        item.insert("error".into(), error_value(e));
    }
    if let Some(l) = &r.lease {
        item.insert("leaseOwner".into(), s(&l.owner));
        item.insert("leaseExpiresAt".into(), n(l.expires_at));
    }
    put_opt_n(&mut item, "wakeAt", r.wake_at);
    put_opt_n(&mut item, "deadline", r.deadline);
    if !r.awaiting.is_empty() {
        item.insert("awaiting".into(), awaiting_value(&r.awaiting));
    }
    if let Some(p) = &r.parent {
        item.insert("parentRunId".into(), s(p.run_id.as_str()));
        item.insert("parentStep".into(), s(&p.step));
        item.insert("parentDetached".into(), AttributeValue::Bool(p.detached));
    }
    item.extend(super::quiet::attributes(r).into_iter().flatten());
    item.extend(super::retention::run_attributes(r).into_iter().flatten());
    item
}

/// The steps a suspended run waits for, as stored (a list of names).
pub fn awaiting_value(names: &[String]) -> AttributeValue {
    AttributeValue::L(names.iter().map(s).collect())
}

/// What the run item holds of its journal: how many names are in chunk
/// items, and the names after them (the layout is in `journal.rs`).
pub fn journal_tail(names: &[String]) -> (usize, AttributeValue) {
    let base = journal::base(names.len());
    (
        base,
        AttributeValue::L(names[base..].iter().map(s).collect()),
    )
}

/// How many of the run's step names are in chunk items rather than in its
/// `stepNames` (0 for items written before chunks existed).
pub fn step_base(item: &Item) -> Result<usize, StoreError> {
    Ok(opt_n(item, "stepBase")?.unwrap_or(0))
}

/// The run an item holds, with the names of its `stepNames` only: the
/// chunks before them are read by the store (`DynamoStore::runs_from`).
/// The attributes a [`RunHead`] is read from (a projection; `status` is a
/// reserved word, hence `#status`).
pub const RUN_HEAD_PROJECTION: &str =
    "id, #status, version, leaseOwner, leaseExpiresAt, wakeAt, deadline, awaiting";

/// A [`RunHead`] from a run item, or from its [`RUN_HEAD_PROJECTION`].
pub fn run_head_from(item: &Item) -> Result<RunHead, StoreError> {
    let id = get_s(item, "id")?;
    Ok(RunHead {
        id: RunId::from_str(&id).map_err(|_| corrupt("id"))?,
        status: RunStatus::parse(&get_s(item, "status")?).ok_or_else(|| corrupt("status"))?,
        version: get_n(item, "version")?,
        lease: lease(item)?,
        wake_at: opt_n(item, "wakeAt")?,
        deadline: opt_n(item, "deadline")?,
        awaiting: awaiting(item)?,
    })
}

/// The run item's `awaiting` list.
fn awaiting(item: &Item) -> Result<Vec<String>, StoreError> {
    match item.get("awaiting") {
        Some(v) => v
            .as_l()
            .map_err(|_| corrupt("awaiting"))?
            .iter()
            .map(|v| v.as_s().cloned().map_err(|_| corrupt("awaiting")))
            .collect(),
        None => Ok(Vec::new()),
    }
}

pub fn run_from(item: &Item) -> Result<RunRecord, StoreError> {
    let id = get_s(item, "id")?;
    let names = match item.get("stepNames") {
        Some(v) => v
            .as_l()
            .map_err(|_| corrupt("stepNames"))?
            .iter()
            .map(|v| v.as_s().cloned().map_err(|_| corrupt("stepNames")))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    Ok(RunRecord {
        id: RunId::from_str(&id).map_err(|_| corrupt("id"))?,
        workflow: get_s(item, "workflow")?,
        module_digest: Digest::parse(&get_s(item, "moduleDigest")?)
            .ok_or_else(|| corrupt("moduleDigest"))?,
        status: RunStatus::parse(&get_s(item, "status")?).ok_or_else(|| corrupt("status"))?,
        input: get_s(item, "input")?,
        output: opt_s(item, "output"),
        error: opt_error(item, "error")?,
        created_at: get_n(item, "createdAt")?,
        updated_at: get_n(item, "updatedAt")?,
        version: get_n(item, "version")?,
        lease: lease(item)?,
        step_names: names.into(),
        wake_at: opt_n(item, "wakeAt")?,
        deadline: opt_n(item, "deadline")?,
        awaiting: awaiting(item)?,
        parent: match (opt_s(item, "parentRunId"), opt_s(item, "parentStep")) {
            (Some(run_id), Some(step)) => Some(ParentLink {
                run_id: RunId::from_str(&run_id).map_err(|_| corrupt("parentRunId"))?,
                step,
                detached: item
                    .get("parentDetached")
                    .and_then(|v| v.as_bool().ok())
                    .copied()
                    .unwrap_or(false),
            }),
            _ => None,
        },
        expires_at: super::retention::expires_at(item)?,
    })
}

fn retry_value(r: &RetryPolicy) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("maxAttempts".to_string(), n(r.max_attempts)),
        ("initialDelayMs".to_string(), n(r.initial_delay_ms)),
        ("backoffFactor".to_string(), n(r.backoff_factor)),
        ("maxDelayMs".to_string(), n(r.max_delay_ms)),
        ("jitter".to_string(), n(r.jitter)),
    ]))
}

fn retry_from(item: &Item) -> Result<RetryPolicy, StoreError> {
    let Some(v) = item.get("retryPolicy") else {
        return Ok(RetryPolicy::default());
    };
    let m = v.as_m().map_err(|_| corrupt("retryPolicy"))?;
    Ok(RetryPolicy {
        max_attempts: get_n(m, "maxAttempts")?,
        initial_delay_ms: get_n(m, "initialDelayMs")?,
        backoff_factor: get_n(m, "backoffFactor")?,
        max_delay_ms: get_n(m, "maxDelayMs")?,
        jitter: get_n(m, "jitter")?,
    })
}

pub fn step_item(st: &StepRecord) -> Item {
    let mut item = Item::from([
        (
            "runStepKey".into(),
            s(StepRecord::key(&st.run_id, &st.name)),
        ),
        ("runId".into(), s(st.run_id.as_str())),
        ("stepName".into(), s(&st.name)),
        ("seq".into(), n(st.seq)),
        ("kind".into(), s(st.kind.as_str())),
        ("status".into(), s(st.status.as_str())),
        ("attemptCount".into(), n(st.attempt_count)),
        ("retryPolicy".into(), retry_value(&st.options.retry)),
        ("createdAt".into(), n(st.created_at)),
        ("updatedAt".into(), n(st.updated_at)),
    ]);
    put_opt_s(&mut item, "rpcName", st.rpc_name.as_deref());
    put_opt_s(&mut item, "input", st.input.as_deref());
    put_opt_s(&mut item, "result", st.result.as_deref());
    if let Some(e) = &st.error {
        item.insert("error".into(), error_value(e));
    }
    put_opt_n(&mut item, "timeoutMs", st.options.timeout_ms);
    put_opt_n(&mut item, "wakeAt", st.wake_at);
    put_opt_n(&mut item, "completedAt", st.completed_at);
    // Absent when zero: most steps never lose a host.
    put_opt_n(
        &mut item,
        "hostLosses",
        (st.host_losses > 0).then_some(st.host_losses as u64),
    );
    if let Some(l) = &st.lease {
        item.insert("leaseOwner".into(), s(&l.owner));
        item.insert("leaseExpiresAt".into(), n(l.expires_at));
    }
    item
}

pub fn step_from(item: &Item) -> Result<StepRecord, StoreError> {
    let run_id = get_s(item, "runId")?;
    Ok(StepRecord {
        run_id: RunId::from_str(&run_id).map_err(|_| corrupt("runId"))?,
        name: get_s(item, "stepName")?,
        seq: get_n(item, "seq")?,
        kind: StepKind::parse(&get_s(item, "kind")?).ok_or_else(|| corrupt("kind"))?,
        rpc_name: opt_s(item, "rpcName"),
        input: opt_s(item, "input"),
        status: StepStatus::parse(&get_s(item, "status")?).ok_or_else(|| corrupt("status"))?,
        result: opt_s(item, "result"),
        error: opt_error(item, "error")?,
        attempt_count: get_n(item, "attemptCount")?,
        options: StepOptions {
            retry: retry_from(item)?,
            timeout_ms: opt_n(item, "timeoutMs")?,
        },
        wake_at: opt_n(item, "wakeAt")?,
        lease: lease(item)?,
        created_at: get_n(item, "createdAt")?,
        updated_at: get_n(item, "updatedAt")?,
        completed_at: opt_n(item, "completedAt")?,
        host_losses: opt_n(item, "hostLosses")?.unwrap_or(0),
    })
}

pub fn attempt_item(a: &AttemptRecord) -> Item {
    let mut item = Item::from([
        ("stepId".into(), s(&a.step_id)),
        ("attemptCount".into(), n(a.attempt)),
        ("status".into(), s(a.status.as_str())),
        ("startedAt".into(), n(a.started_at)),
    ]);
    if let Some(e) = &a.error {
        item.insert("error".into(), error_value(e));
    }
    put_opt_n(&mut item, "endedAt", a.ended_at);
    item
}

pub fn attempt_from(item: &Item) -> Result<AttemptRecord, StoreError> {
    Ok(AttemptRecord {
        step_id: get_s(item, "stepId")?,
        attempt: get_n(item, "attemptCount")?,
        status: StepStatus::parse(&get_s(item, "status")?).ok_or_else(|| corrupt("status"))?,
        error: opt_error(item, "error")?,
        started_at: get_n(item, "startedAt")?,
        ended_at: opt_n(item, "endedAt")?,
    })
}

/// Log lines sort by `position`, then `index`, packed into one number.
pub fn log_item(run_id: &RunId, l: &LogLine) -> Item {
    Item::from([
        ("runId".into(), s(run_id.as_str())),
        (
            "seq".into(),
            n(u64::from(l.position) << 32 | u64::from(l.index)),
        ),
        ("at".into(), n(l.at)),
        ("level".into(), s(&l.level)),
        ("message".into(), s(&l.message)),
    ])
}

pub fn log_from(item: &Item) -> Result<LogLine, StoreError> {
    let seq: u64 = get_n(item, "seq")?;
    Ok(LogLine {
        position: (seq >> 32) as u32,
        index: (seq & 0xffff_ffff) as u32,
        at: get_n(item, "at")?,
        level: get_s(item, "level")?,
        message: get_s(item, "message")?,
    })
}

/// An upper bound of an item's stored size, by DynamoDB's rules (names +
/// values, with a few bytes of overhead per element).
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len() / 2 + 2,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        AttributeValue::Ss(l) => l.iter().map(String::len).sum(),
        AttributeValue::Ns(l) => l.iter().map(|n| n.len() / 2 + 2).sum(),
        AttributeValue::Bs(l) => l.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

/// Refuses an item DynamoDB would refuse, with a message that says which.
pub fn check_size(item: &Item, what: impl FnOnce() -> String) -> Result<(), StoreError> {
    let size = item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::TooLarge(format!(
            "{} would be {size} bytes; DynamoDB items are limited to 400 KB ({MAX_ITEM_BYTES} bytes)",
            what()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{StepCall, now_millis};

    #[test]
    fn steps_round_trip_through_items() {
        let call = StepCall {
            kind: StepKind::Rpc,
            name: "charge".into(),
            rpc_name: Some("pay/charge".into()),
            input: Some("{\"a\":1}".into()),
            options: StepOptions {
                retry: RetryPolicy::default(),
                timeout_ms: Some(5000),
            },
        };
        let mut step = StepRecord::new(&RunId::generate(), 3, &call, now_millis());
        step.error = Some(ErrorInfo::new("x", "y"));
        step.lease = Some(Lease {
            owner: "w".into(),
            expires_at: 9,
        });
        assert_eq!(step_from(&step_item(&step)).unwrap(), step);
    }

    #[test]
    fn log_order_is_position_then_index() {
        let run = RunId::generate();
        let line = |position, index| LogLine {
            position,
            index,
            at: 0,
            level: "info".into(),
            message: String::new(),
        };
        let a: u64 = get_n(&log_item(&run, &line(1, 0)), "seq").unwrap();
        let b: u64 = get_n(&log_item(&run, &line(0, 99)), "seq").unwrap();
        assert!(a > b);
        assert_eq!(log_from(&log_item(&run, &line(7, 3))).unwrap(), line(7, 3));
    }

    #[test]
    fn oversized_items_are_refused_clearly() {
        let item = Item::from([("result".to_string(), s("x".repeat(MAX_ITEM_BYTES + 1)))]);
        let err = check_size(&item, || "step `big`".into()).unwrap_err();
        assert!(
            err.to_string().contains("step `big`") && err.to_string().contains("400"),
            "{err}"
        );
    }
}
