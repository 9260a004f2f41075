/*
 * The order saga's RPC module in C: inventory, payments, shipping. A port
 * of example-workflows/rust/order-rpc that answers as it does, so any
 * workflow language can call it and get the same run.
 *
 * `failures` makes the charge fail transiently on its first N attempts and
 * `decline` makes it fail for good. The Rust module's `slowMs` and `hangs`
 * need a clock, which a freestanding C module does not import: here they
 * are refused with the permanent error `unsupported` rather than ignored.
 */
#include "weft.h"

static weft_result needs_clock(const weft_json *req) {
    if (weft_int(weft_get(req, "slowMs"), 0) > 0 || weft_int(weft_get(req, "hangs"), 0) > 0) {
        return weft_fail_permanent("unsupported",
                                   "slowMs and hangs need a clock, which the C module has not");
    }
    return weft_ok("null");
}

static weft_result reserve_inventory(const weft_json *req) {
    const weft_json *items = weft_get(req, "items");
    if (weft_len(items) == 0) return weft_fail_permanent("empty_order", "nothing to reserve");
    weft_writer w = {0};
    weft_begin_object(&w);
    weft_field_string(&w, "reservationId",
                      weft_concat("res-", weft_str(weft_get(req, "orderId"), ""), NULL));
    weft_field_int64(&w, "lines", (int64_t)weft_len(items));
    weft_end_object(&w);
    return weft_ok(weft_text(&w));
}

static weft_result charge_payment(const weft_json *req, const weft_call *call) {
    if (weft_bool(weft_get(req, "decline"), false)) {
        return weft_fail_permanent(
            "payment_declined",
            weft_concat("card of ", weft_str(weft_get(req, "customer"), ""), " was declined", NULL));
    }
    if (call->attempt <= weft_int(weft_get(req, "failures"), 0)) {
        return weft_fail("card_processor_unavailable",
                         weft_concat("attempt ", weft_itoa(call->attempt),
                                     " of the charge failed transiently", NULL));
    }
    weft_writer w = {0};
    weft_begin_object(&w);
    weft_field_string(&w, "chargeId", weft_concat("ch-", weft_str(weft_get(req, "orderId"), ""), NULL));
    weft_field_value(&w, "amountCents", weft_get(req, "amountCents"));
    weft_end_object(&w);
    return weft_ok(weft_text(&w));
}

static weft_result release_inventory(const weft_json *req) {
    weft_writer w = {0};
    weft_begin_object(&w);
    weft_field_value(&w, "released", weft_get(req, "reservationId"));
    weft_end_object(&w);
    return weft_ok(weft_text(&w));
}

static weft_result ship_order(const weft_json *req) {
    weft_writer w = {0};
    weft_begin_object(&w);
    weft_field_string(&w, "trackingNumber",
                      weft_concat("trk-", weft_str(weft_get(req, "orderId"), ""), NULL));
    weft_end_object(&w);
    return weft_ok(weft_text(&w));
}

weft_result weft_handle(const char *function, const weft_json *req, const weft_call *call) {
    weft_result refused = needs_clock(req);
    if (!refused.ok) return refused;
    if (weft_streq(function, "reserve-inventory")) return reserve_inventory(req);
    if (weft_streq(function, "charge-payment")) return charge_payment(req, call);
    if (weft_streq(function, "release-inventory")) return release_inventory(req);
    if (weft_streq(function, "ship-order")) return ship_order(req);
    return weft_fail_permanent(
        "unknown_function",
        weft_concat("this module has no function '", function,
                    "'; it has charge-payment, release-inventory, reserve-inventory, ship-order",
                    NULL));
}
