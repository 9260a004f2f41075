//! The fault-injection workload: reserve and charge at once (a fan-out of
//! two, joined), wait for the `release` event the harness sends, sleep,
//! and ship through a child run of this same workflow (`shipOnly`). With
//! `fanOut: N` a run instead reserves N parts at once and joins them. With
//! `callback: true` a saga also waits, after the event, for a callback whose
//! token it logs (`callback token: …`). Each RPC
//! may fail or hang on its first attempt (never on its second), so two
//! attempts are all a crash-free run needs, and all it is given: workers
//! killed mid-attempt must not spend them. The output depends only on the
//! order id.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;
use weft_sdk::{Context, Error, RetryPolicy, StepOptions};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    order_id: String,
    /// Where the RPC module reports each call it receives.
    counter_url: String,
    /// Percent of first attempts that fail.
    fail_pct: u32,
    /// Percent of first attempts that hang.
    hang_pct: u32,
    /// Only ship: the child run the saga ships through.
    #[serde(default)]
    ship_only: bool,
    /// Only reserve this many parts at once (a fan-out), nothing else.
    #[serde(default)]
    fan_out: usize,
    /// Also wait for a callback after the event.
    #[serde(default)]
    callback: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Output {
    order_id: String,
    reservation: Value,
    charge: Value,
    shipment: Value,
    release: Value,
    /// The callback's completion, or `null` without one.
    approval: Value,
}

fn chaos_saga(ctx: &mut Context, input: Input) -> Result<Value, Error> {
    let patient = StepOptions::default().retry(
        RetryPolicy::attempts(2)
            .initial_delay(Duration::from_millis(200))
            .max_delay(Duration::from_secs(1)),
    );
    let request = json!({
        "orderId": input.order_id,
        "counterUrl": input.counter_url,
        "failPct": input.fail_pct,
        "hangPct": input.hang_pct,
    });
    let rpc = |function: &str| format!("chaos-rpc/{function}");
    if input.ship_only {
        return ctx.rpc_with("ship", &rpc("ship"), &request, &patient);
    }
    if input.fan_out > 0 {
        let mut parts = Vec::with_capacity(input.fan_out);
        for i in 0..input.fan_out {
            let mut part = request.clone();
            part["orderId"] = json!(format!("{}-{i}", input.order_id));
            let name = format!("reserve-{i}");
            parts.push(ctx.start_rpc_with::<_, Value>(&name, &rpc("reserve"), &part, &patient)?);
        }
        let reserved = ctx
            .join_all(&parts)
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(json!({ "orderId": input.order_id, "parts": reserved }));
    }
    let reserving =
        ctx.start_rpc_with::<_, Value>("reserve", &rpc("reserve"), &request, &patient)?;
    let charging = ctx.start_rpc_with::<_, Value>("charge", &rpc("charge"), &request, &patient)?;
    let reservation = ctx.wait(&reserving)?;
    let charge = ctx.wait(&charging)?;
    let release: Value = ctx.wait_event("release", "release", None)?;
    let approval = if input.callback {
        let token = ctx.create_callback("approval-link", None);
        ctx.info(&format!("callback token: {token}"));
        ctx.await_callback::<Value>("await-approval", &token)?
    } else {
        Value::Null
    };
    ctx.sleep("cool-off", Duration::from_secs(2));
    let mut shipping = request.clone();
    shipping["shipOnly"] = json!(true);
    let shipment: Value = ctx.child("ship", "chaos-saga", &shipping)?;
    let output = Output {
        order_id: input.order_id,
        reservation,
        charge,
        shipment,
        release,
        approval,
    };
    Ok(serde_json::to_value(output)?)
}

weft_sdk::workflow!(chaos_saga);
