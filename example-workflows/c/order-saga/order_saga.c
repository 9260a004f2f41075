/*
 * The order saga in C: the same steps, RPCs and output as the Rust example
 * (example-workflows/rust/order-saga), served by the same `order-rpc`
 * module. Price the order, reserve stock, charge (releasing the
 * reservation if the charge fails for good), wait out a cool-off, ship.
 */
#include "weft.h"

static const weft_retry CHARGE_RETRY = {
    .max_attempts = 3,
    .initial_delay_ms = 100,
    .backoff_factor = 2.0,
    .max_delay_ms = 500,
    .jitter = 0.1,
};

static weft_result price(uint32_t attempt, void *arg) {
    (void)attempt;
    const weft_json *items = arg;
    if (weft_len(items) == 0) {
        return weft_fail_permanent("empty_order", "an order needs at least one item");
    }
    int64_t total = 0;
    for (size_t i = 0; i < weft_len(items); i++) {
        const weft_json *item = weft_at(items, i);
        total += weft_int(weft_get(item, "qty"), 0) * weft_int(weft_get(item, "priceCents"), 0);
    }
    weft_writer w = {0};
    weft_int64(&w, total);
    return weft_ok(weft_text(&w));
}

weft_result weft_workflow(const weft_json *order) {
    const weft_json *order_id = weft_get(order, "orderId");
    const weft_json *items = weft_get(order, "items");
    int64_t slow_ms = weft_int(weft_get(order, "slowMs"), 0);

    weft_result priced = weft_step("price", price, (void *)items, NULL);
    if (!priced.ok) return priced;
    int64_t total_cents = weft_int(priced.value, 0);
    weft_log(WEFT_INFO, weft_concat("order ", weft_str(order_id, ""), " totals ",
                                    weft_itoa(total_cents), " cents", NULL));

    weft_writer req = {0};
    weft_begin_object(&req);
    weft_field_value(&req, "orderId", order_id);
    weft_field_value(&req, "items", items);
    weft_field_int64(&req, "slowMs", slow_ms);
    weft_end_object(&req);
    weft_result reservation = weft_rpc("reserve", "order-rpc/reserve-inventory", weft_text(&req), NULL);
    if (!reservation.ok) return reservation;
    const weft_json *reservation_id = weft_get(reservation.value, "reservationId");

    weft_writer charge_req = {0};
    weft_begin_object(&charge_req);
    weft_field_value(&charge_req, "orderId", order_id);
    weft_field_value(&charge_req, "customer", weft_get(order, "customer"));
    weft_field_int64(&charge_req, "amountCents", total_cents);
    weft_field_int64(&charge_req, "failures", weft_int(weft_get(order, "paymentFailures"), 0));
    weft_field_int64(&charge_req, "hangs", weft_int(weft_get(order, "paymentHangs"), 0));
    weft_field_bool(&charge_req, "decline", weft_bool(weft_get(order, "declinePayment"), false));
    weft_field_int64(&charge_req, "slowMs", slow_ms);
    weft_end_object(&charge_req);
    weft_result charge =
        weft_rpc("charge", "order-rpc/charge-payment", weft_text(&charge_req), &CHARGE_RETRY);

    if (!charge.ok) {
        weft_log(WEFT_WARN, weft_concat("charge failed (", charge.code, ": ", charge.message,
                                        "); releasing the reservation", NULL));
        weft_writer release = {0};
        weft_begin_object(&release);
        weft_field_value(&release, "reservationId", reservation_id);
        weft_end_object(&release);
        weft_result released =
            weft_rpc("release", "order-rpc/release-inventory", weft_text(&release), NULL);
        if (!released.ok) return released;

        weft_writer out = {0};
        weft_begin_object(&out);
        weft_field_value(&out, "orderId", order_id);
        weft_field_string(&out, "status", "cancelled");
        weft_field_int64(&out, "totalCents", total_cents);
        weft_field_value(&out, "reservationId", reservation_id);
        weft_field_string(&out, "reason", charge.code);
        weft_end_object(&out);
        return weft_ok(weft_text(&out));
    }

    weft_sleep("cool-off", (uint64_t)weft_int(weft_get(order, "coolOffMs"), 1000));

    weft_writer ship_req = {0};
    weft_begin_object(&ship_req);
    weft_field_value(&ship_req, "orderId", order_id);
    weft_field_value(&ship_req, "reservationId", reservation_id);
    weft_field_int64(&ship_req, "slowMs", slow_ms);
    weft_end_object(&ship_req);
    weft_result shipment = weft_rpc("ship", "order-rpc/ship-order", weft_text(&ship_req), NULL);
    if (!shipment.ok) return shipment;
    const weft_json *tracking = weft_get(shipment.value, "trackingNumber");
    weft_log(WEFT_INFO, weft_concat("order ", weft_str(order_id, ""), " shipped as ",
                                    weft_str(tracking, ""), NULL));

    weft_writer out = {0};
    weft_begin_object(&out);
    weft_field_value(&out, "orderId", order_id);
    weft_field_string(&out, "status", "completed");
    weft_field_int64(&out, "totalCents", total_cents);
    weft_field_value(&out, "reservationId", reservation_id);
    weft_field_value(&out, "chargeId", weft_get(charge.value, "chargeId"));
    weft_field_value(&out, "trackingNumber", tracking);
    weft_end_object(&out);
    return weft_ok(weft_text(&out));
}
