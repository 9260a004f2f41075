//! An order saga: price the order, reserve stock, charge the customer, wait
//! out a cool-off period, ship. If the charge fails for good (after its
//! retries), the reservation is released (the compensating step) and the
//! order ends `cancelled` instead.
//!
//! The RPC steps call the `order-rpc` module. Test knobs in the input:
//! `paymentFailures` (transient failures before the charge succeeds),
//! `paymentHangs` (charge attempts that hang until the host abandons them),
//! `declinePayment` (a permanent failure), `coolOffMs`, and `slowMs` (how
//! long each RPC takes).

use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;
use weft_sdk::{Context, Error, RetryPolicy, StepOptions};

#[derive(Deserialize, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Item {
    sku: String,
    qty: u32,
    price_cents: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Order {
    order_id: String,
    customer: String,
    items: Vec<Item>,
    #[serde(default)]
    payment_failures: u32,
    #[serde(default)]
    payment_hangs: u32,
    #[serde(default)]
    decline_payment: bool,
    #[serde(default = "default_cool_off")]
    cool_off_ms: u64,
    #[serde(default)]
    slow_ms: u64,
    /// Asks the shipper for a label this long (a large RPC result).
    #[serde(default)]
    label_bytes: u64,
}

fn default_cool_off() -> u64 {
    1_000
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reservation {
    reservation_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Charge {
    charge_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shipment {
    tracking_number: String,
    #[serde(default)]
    label: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Outcome {
    order_id: String,
    status: &'static str,
    total_cents: u64,
    reservation_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    charge_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracking_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<String>,
}

fn order_saga(ctx: &mut Context, order: Order) -> Result<Outcome, Error> {
    let items = order.items.clone();
    let total_cents: u64 = ctx.step("price", || {
        if items.is_empty() {
            return Err(Error::new("empty_order", "an order needs at least one item").permanent());
        }
        Ok(items.iter().map(|i| u64::from(i.qty) * i.price_cents).sum())
    })?;
    ctx.info(&format!(
        "order {} totals {} cents",
        order.order_id, total_cents
    ));

    let reservation: Reservation = ctx.rpc(
        "reserve",
        "order-rpc/reserve-inventory",
        &json!({ "orderId": order.order_id, "items": order.items, "slowMs": order.slow_ms }),
    )?;

    let charge_options = StepOptions::default().retry(
        RetryPolicy::attempts(3)
            .initial_delay(Duration::from_millis(100))
            .max_delay(Duration::from_millis(500)),
    );
    let charged: Result<Charge, Error> = ctx.rpc_with(
        "charge",
        "order-rpc/charge-payment",
        &json!({
            "orderId": order.order_id,
            "customer": order.customer,
            "amountCents": total_cents,
            "failures": order.payment_failures,
            "hangs": order.payment_hangs,
            "decline": order.decline_payment,
            "slowMs": order.slow_ms,
        }),
        &charge_options,
    );
    let charge = match charged {
        Ok(charge) => charge,
        Err(e) => {
            ctx.warn(&format!("charge failed ({e}); releasing the reservation"));
            let _: serde_json::Value = ctx.rpc(
                "release",
                "order-rpc/release-inventory",
                &json!({ "reservationId": reservation.reservation_id }),
            )?;
            return Ok(Outcome {
                order_id: order.order_id,
                status: "cancelled",
                total_cents,
                reservation_id: reservation.reservation_id,
                charge_id: None,
                tracking_number: None,
                reason: Some(e.code),
                label: None,
            });
        }
    };

    ctx.sleep("cool-off", Duration::from_millis(order.cool_off_ms));

    let mut ship = json!({ "orderId": order.order_id, "reservationId": reservation.reservation_id, "slowMs": order.slow_ms });
    if order.label_bytes > 0 {
        ship["labelBytes"] = json!(order.label_bytes);
    }
    let shipment: Shipment = ctx.rpc("ship", "order-rpc/ship-order", &ship)?;
    ctx.info(&format!(
        "order {} shipped as {}",
        order.order_id, shipment.tracking_number
    ));

    Ok(Outcome {
        order_id: order.order_id,
        status: "completed",
        total_cents,
        reservation_id: reservation.reservation_id,
        charge_id: Some(charge.charge_id),
        tracking_number: Some(shipment.tracking_number),
        reason: None,
        label: shipment.label,
    })
}

weft_sdk::workflow!(order_saga);
