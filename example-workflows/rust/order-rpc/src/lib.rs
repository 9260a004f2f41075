//! The RPC module behind the order saga: inventory, payments, shipping.
//!
//! Results are derived from the order id so that the same saga input gives
//! the same output in every language. `failures` makes the charge fail
//! transiently on its first N attempts; `hangs` makes its first N attempts
//! hang (until the host's timeout abandons them); `decline` makes it fail
//! for good; `slowMs` makes a call take that long (to test crashes mid-step);
//! `labelBytes` makes the shipment carry a label that long (a large result;
//! this module only, for the payload tests).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use weft_rpc::{Call, Error};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reserve {
    order_id: String,
    items: Vec<Value>,
    #[serde(default)]
    slow_ms: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Reserved {
    reservation_id: String,
    lines: usize,
}

fn slow(ms: u64) {
    if ms > 0 {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

fn reserve_inventory(_call: &Call, req: Reserve) -> Result<Reserved, Error> {
    slow(req.slow_ms);
    if req.items.is_empty() {
        return Err(Error::new("empty_order", "nothing to reserve").permanent());
    }
    Ok(Reserved {
        reservation_id: format!("res-{}", req.order_id),
        lines: req.items.len(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChargeRequest {
    order_id: String,
    customer: String,
    amount_cents: u64,
    #[serde(default)]
    failures: u32,
    #[serde(default)]
    hangs: u32,
    #[serde(default)]
    decline: bool,
    #[serde(default)]
    slow_ms: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Charged {
    charge_id: String,
    amount_cents: u64,
}

fn charge_payment(call: &Call, req: ChargeRequest) -> Result<Charged, Error> {
    slow(req.slow_ms);
    if req.decline {
        return Err(Error::new(
            "payment_declined",
            format!("card of {} was declined", req.customer),
        )
        .permanent());
    }
    if call.attempt <= req.hangs {
        slow(600_000);
    }
    if call.attempt <= req.failures {
        return Err(Error::new(
            "card_processor_unavailable",
            format!("attempt {} of the charge failed transiently", call.attempt),
        ));
    }
    Ok(Charged {
        charge_id: format!("ch-{}", req.order_id),
        amount_cents: req.amount_cents,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Release {
    reservation_id: String,
}

fn release_inventory(_call: &Call, req: Release) -> Result<Value, Error> {
    Ok(serde_json::json!({ "released": req.reservation_id }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ship {
    order_id: String,
    #[serde(default)]
    slow_ms: u64,
    /// A shipping label of this many bytes comes back with the tracking
    /// number: a large RPC result, for the payload tests.
    #[serde(default)]
    label_bytes: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Shipped {
    tracking_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<String>,
}

fn ship_order(_call: &Call, req: Ship) -> Result<Shipped, Error> {
    slow(req.slow_ms);
    let label = (req.label_bytes > 0).then(|| {
        let head = format!("label:trk-{}:", req.order_id);
        head.chars()
            .chain("0123456789abcdef".chars().cycle())
            .take(req.label_bytes)
            .collect()
    });
    Ok(Shipped {
        tracking_number: format!("trk-{}", req.order_id),
        label,
    })
}

weft_rpc::rpc_functions! {
    "reserve-inventory" => reserve_inventory,
    "charge-payment" => charge_payment,
    "release-inventory" => release_inventory,
    "ship-order" => ship_order,
}
