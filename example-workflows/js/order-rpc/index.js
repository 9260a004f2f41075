// The order saga's RPC module in JavaScript: inventory, payments, shipping.
// A port of example-workflows/rust/order-rpc, answering exactly as it does,
// so any workflow language can call any RPC language and get the same run.
// `failures` makes the charge fail transiently on its first N attempts,
// `hangs` makes its first N attempts hang (until the host's timeout), and
// `decline` makes it fail for good; `slowMs` makes a call take that long.
import { rpcFunctions, WeftError } from '@weft/sdk/rpc';

// A call that must take a while waits on a timer: the function returns a
// promise, and componentize-js runs the event loop until it settles. A
// hanging attempt thus ends with the host's `timeout`, as in Rust.
function after(ms, answer) {
  return ms > 0 ? new Promise((resolve) => setTimeout(() => resolve(answer()), ms)) : answer();
}

export const handle = rpcFunctions({
  'reserve-inventory'(call, { orderId, items, slowMs = 0 }) {
    return after(slowMs, () => {
      if (!items || items.length === 0) {
        throw new WeftError('empty_order', 'nothing to reserve').permanent();
      }
      return { reservationId: `res-${orderId}`, lines: items.length };
    });
  },

  'charge-payment'(call, { orderId, customer, amountCents, failures = 0, hangs = 0, decline = false, slowMs = 0 }) {
    // As in Rust, a declined card answers without hanging.
    const wait = slowMs + (!decline && call.attempt <= hangs ? 600_000 : 0);
    return after(wait, () => {
      if (decline) {
        throw new WeftError('payment_declined', `card of ${customer} was declined`).permanent();
      }
      if (call.attempt <= failures) {
        throw new WeftError('card_processor_unavailable', `attempt ${call.attempt} of the charge failed transiently`);
      }
      return { chargeId: `ch-${orderId}`, amountCents };
    });
  },

  'release-inventory'(call, { reservationId }) {
    return { released: reservationId };
  },

  'ship-order'(call, { orderId, slowMs = 0 }) {
    return after(slowMs, () => ({ trackingNumber: `trk-${orderId}` }));
  },
});
