//! Fan-out and join in every form the SDK offers; the fan-out scenarios
//! drive it, and its JavaScript and Python twins take the same input and
//! give the same output.
//!
//! Input (each part optional):
//! `{"all": [{"ms": 200, "fail": false}, ...], "quorum": [{"ms": 600}, ...],
//!   "raceMs": 60000, "bounded": {"items": 4, "limit": 2, "ms": 100}}`
//! - `all`: member `i` (RPC `fanout-rpc/slow`, answering `i`) for each
//!   entry, joined with `join_all`: `[i | {"error": code}]`;
//! - `quorum`: members joined until two succeeded: the indices in the
//!   order they finished, and whether two did;
//! - `raceMs`: a timer of that length against a wait for event `go`:
//!   which won and with what;
//! - `bounded`: `items` members at most `limit` at a time, member `i`
//!   taking `(i + 1) * ms` and answering `10 * i`;
//! - `spawn`: `{"workflow": w, "input": i}` started detached: its run id;
//! - `children`: `[{"workflow": w, "input": i}]` started as child runs and
//!   joined: `[output | {"error": code}]`;
//! - `failWith`: the workflow fails at once with this error code.

use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use weft_sdk::{Completion, Context, Error, RetryPolicy, StepOptions};

#[derive(Deserialize)]
struct Member {
    #[serde(default)]
    ms: u64,
    #[serde(default)]
    fail: bool,
}

#[derive(Deserialize)]
struct Bounded {
    items: u64,
    limit: usize,
    ms: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    #[serde(default)]
    all: Vec<Member>,
    #[serde(default)]
    quorum: Vec<Member>,
    race_ms: Option<u64>,
    bounded: Option<Bounded>,
    #[serde(default)]
    children: Vec<Child>,
    spawn: Option<Child>,
    fail_with: Option<String>,
}

#[derive(Deserialize)]
struct Child {
    workflow: String,
    input: Value,
}

const SLOW: &str = "fanout-rpc/slow";

fn once() -> StepOptions {
    StepOptions::default().retry(RetryPolicy::none())
}

fn shown(outcome: Result<Value, Error>) -> Value {
    outcome.unwrap_or_else(|e| json!({ "error": e.code }))
}

fn fanout(ctx: &mut Context, input: Input) -> Result<Value, Error> {
    if let Some(code) = input.fail_with {
        return Err(Error::new(code, "asked to fail"));
    }
    let mut out = serde_json::Map::new();
    if !input.all.is_empty() {
        let mut started = Vec::new();
        for (i, m) in input.all.iter().enumerate() {
            let args = json!({ "value": i, "ms": m.ms, "fail": m.fail });
            started.push(ctx.start_rpc_with::<_, Value>("fan", SLOW, &args, &once())?);
        }
        let results: Vec<Value> = ctx.join_all(&started).into_iter().map(shown).collect();
        out.insert("all".into(), json!(results));
    }
    if !input.quorum.is_empty() {
        let mut started = Vec::new();
        for (i, m) in input.quorum.iter().enumerate() {
            let args = json!({ "value": i, "ms": m.ms, "fail": m.fail });
            started.push(ctx.start_rpc_with::<_, Value>("quorum", SLOW, &args, &once())?);
        }
        let joined = ctx.join_until("quorum-first", &started, Completion::successes(2));
        let order: Vec<usize> = joined.finished.iter().map(|(i, _)| *i).collect();
        out.insert(
            "quorum".into(),
            json!({ "order": order, "satisfied": joined.satisfied }),
        );
    }
    if let Some(ms) = input.race_ms {
        let timer = ctx.start_sleep("race-timer", Duration::from_millis(ms));
        let event = ctx.start_wait_event::<Value>("race-event", "go", None);
        let (winner, value) = match ctx.select("race", &[event, timer_as_value(timer)]) {
            (0, outcome) => ("event", shown(outcome)),
            (_, _) => ("timer", Value::Null),
        };
        out.insert("race".into(), json!({ "winner": winner, "value": value }));
    }
    if let Some(b) = input.bounded {
        let items: Vec<u64> = (0..b.items).collect();
        let results = ctx.map_bounded("bounded-next", items, b.limit, |ctx, _, item| {
            let args = json!({ "value": item * 10, "ms": (item + 1) * b.ms });
            ctx.start_rpc_with::<_, Value>("bounded", SLOW, &args, &once())
        })?;
        out.insert(
            "bounded".into(),
            json!(results.into_iter().map(shown).collect::<Vec<_>>()),
        );
    }
    if let Some(child) = input.spawn {
        let id = ctx.spawn_child("spawned", &child.workflow, &child.input)?;
        out.insert("spawned".into(), json!(id));
    }
    if !input.children.is_empty() {
        let mut started = Vec::new();
        for child in &input.children {
            started.push(ctx.start_child::<_, Value>("kid", &child.workflow, &child.input)?);
        }
        let results: Vec<Value> = ctx.join_all(&started).into_iter().map(shown).collect();
        out.insert("children".into(), json!(results));
    }
    Ok(Value::Object(out))
}

/// A timer's handle, joined with handles of JSON outcomes (it gives `null`).
fn timer_as_value(timer: weft_sdk::Started<()>) -> weft_sdk::Started<Value> {
    timer.retype()
}

weft_sdk::workflow!(fanout);
