// The order saga's RPC module in JavaScript: inventory, payments, shipping.
// A port of example-workflows/rust/order-rpc, answering exactly as it does,
// so any workflow language can call any RPC language and get the same run.
// `failures` makes the charge fail transiently on its first N attempts,
// `hangs` makes its first N attempts hang (until the host's timeout), and
// `decline` makes it fail for good; `slowMs` makes a call take that long.
import { rpcFunctions, WeftError } from '@weft/sdk/rpc';

// StarlingMonkey has no blocking sleep; a call that must take a while spins
// on the clock (the host's fuel and timeout still bound it).
function slow(ms = 0) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // waiting
  }
}

export const handle = rpcFunctions({
  'reserve-inventory'(call, { orderId, items, slowMs }) {
    slow(slowMs);
    if (!items || items.length === 0) {
      throw new WeftError('empty_order', 'nothing to reserve').permanent();
    }
    return { reservationId: `res-${orderId}`, lines: items.length };
  },

  'charge-payment'(call, { orderId, customer, amountCents, failures = 0, hangs = 0, decline = false, slowMs }) {
    slow(slowMs);
    if (decline) {
      throw new WeftError('payment_declined', `card of ${customer} was declined`).permanent();
    }
    if (call.attempt <= hangs) {
      slow(600_000);
    }
    if (call.attempt <= failures) {
      throw new WeftError('card_processor_unavailable', `attempt ${call.attempt} of the charge failed transiently`);
    }
    return { chargeId: `ch-${orderId}`, amountCents };
  },

  'release-inventory'(call, { reservationId }) {
    return { released: reservationId };
  },

  'ship-order'(call, { orderId, slowMs }) {
    slow(slowMs);
    return { trackingNumber: `trk-${orderId}` };
  },
});
