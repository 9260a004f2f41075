"""The order saga's RPC module in Python: inventory, payments, shipping.

A port of example-workflows/rust/order-rpc, answering exactly as it does, so
any workflow language can call any RPC language and get the same run.
`failures` makes the charge fail transiently on its first N attempts, `hangs`
makes its first N attempts hang (until the host's timeout), and `decline`
makes it fail for good; `slowMs` makes a call take that long.
"""

import time

from weft import rpc


def _slow(ms: int) -> None:
    if ms > 0:
        time.sleep(ms / 1000)


def reserve_inventory(call: rpc.Call, req: dict) -> dict:
    _slow(req.get("slowMs", 0))
    if not req.get("items"):
        raise rpc.WeftError("empty_order", "nothing to reserve").permanent()
    return {"reservationId": f"res-{req['orderId']}", "lines": len(req["items"])}


def charge_payment(call: rpc.Call, req: dict) -> dict:
    _slow(req.get("slowMs", 0))
    if req.get("decline"):
        raise rpc.WeftError("payment_declined", f"card of {req['customer']} was declined").permanent()
    if call.attempt <= req.get("hangs", 0):
        _slow(600_000)
    if call.attempt <= req.get("failures", 0):
        raise rpc.WeftError(
            "card_processor_unavailable", f"attempt {call.attempt} of the charge failed transiently"
        )
    return {"chargeId": f"ch-{req['orderId']}", "amountCents": req["amountCents"]}


def release_inventory(call: rpc.Call, req: dict) -> dict:
    return {"released": req["reservationId"]}


def ship_order(call: rpc.Call, req: dict) -> dict:
    _slow(req.get("slowMs", 0))
    return {"trackingNumber": f"trk-{req['orderId']}"}


WitWorld = rpc.functions({
    "reserve-inventory": reserve_inventory,
    "charge-payment": charge_payment,
    "release-inventory": release_inventory,
    "ship-order": ship_order,
})
