"""The order saga in Python: the same steps, RPCs and output as the Rust
example (example-workflows/rust/order-saga), served by the same `order-rpc`
module. Price the order, reserve stock, charge (releasing the reservation if
the charge fails for good), wait out a cool-off, ship.
"""

import weft

CHARGE_RETRY = weft.RetryPolicy(max_attempts=3, initial_delay_ms=100, max_delay_ms=500)


def order_saga(ctx: weft.Context, order: dict) -> dict:
    items = order.get("items") or []

    def price() -> int:
        if not items:
            raise weft.WeftError("empty_order", "an order needs at least one item").permanent()
        return sum(item["qty"] * item["priceCents"] for item in items)

    total_cents = ctx.step("price", price)
    ctx.info(f"order {order['orderId']} totals {total_cents} cents")

    slow_ms = order.get("slowMs", 0)
    reservation = ctx.rpc("reserve", "order-rpc/reserve-inventory", {
        "orderId": order["orderId"],
        "items": order["items"],
        "slowMs": slow_ms,
    })

    try:
        charge = ctx.rpc("charge", "order-rpc/charge-payment", {
            "orderId": order["orderId"],
            "customer": order["customer"],
            "amountCents": total_cents,
            "failures": order.get("paymentFailures", 0),
            "hangs": order.get("paymentHangs", 0),
            "decline": order.get("declinePayment", False),
            "slowMs": slow_ms,
        }, retry=CHARGE_RETRY)
    except weft.WeftError as e:
        ctx.warn(f"charge failed ({e.code}: {e.message}); releasing the reservation")
        ctx.rpc("release", "order-rpc/release-inventory", {"reservationId": reservation["reservationId"]})
        return {
            "orderId": order["orderId"],
            "status": "cancelled",
            "totalCents": total_cents,
            "reservationId": reservation["reservationId"],
            "reason": e.code,
        }

    ctx.sleep("cool-off", order.get("coolOffMs", 1000))

    shipment = ctx.rpc("ship", "order-rpc/ship-order", {
        "orderId": order["orderId"],
        "reservationId": reservation["reservationId"],
        "slowMs": slow_ms,
    })
    ctx.info(f"order {order['orderId']} shipped as {shipment['trackingNumber']}")

    return {
        "orderId": order["orderId"],
        "status": "completed",
        "totalCents": total_cents,
        "reservationId": reservation["reservationId"],
        "chargeId": charge["chargeId"],
        "trackingNumber": shipment["trackingNumber"],
    }


WitWorld = weft.workflow(order_saga)
