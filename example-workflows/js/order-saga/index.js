// The order saga in JavaScript: the same steps, RPCs and output as the Rust
// example (example-workflows/rust/order-saga), served by the same
// `order-rpc` module. Price the order, reserve stock, charge (releasing the
// reservation if the charge fails for good), wait out a cool-off, ship.

import { workflow, WeftError } from '@weft/sdk';

const chargeOptions = { retry: { maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 500 } };

export const run = workflow((ctx, order) => {
  const items = order.items;
  const totalCents = ctx.step('price', () => {
    if (!items || items.length === 0) {
      throw new WeftError('empty_order', 'an order needs at least one item').permanent();
    }
    return items.reduce((sum, item) => sum + item.qty * item.priceCents, 0);
  });
  ctx.info(`order ${order.orderId} totals ${totalCents} cents`);

  const slowMs = order.slowMs ?? 0;
  const reservation = ctx.rpc('reserve', 'order-rpc/reserve-inventory', {
    orderId: order.orderId,
    items: order.items,
    slowMs,
  });

  let charge;
  try {
    charge = ctx.rpc(
      'charge',
      'order-rpc/charge-payment',
      {
        orderId: order.orderId,
        customer: order.customer,
        amountCents: totalCents,
        failures: order.paymentFailures ?? 0,
        hangs: order.paymentHangs ?? 0,
        decline: order.declinePayment ?? false,
        slowMs,
      },
      chargeOptions,
    );
  } catch (e) {
    if (!(e instanceof WeftError)) throw e;
    ctx.warn(`charge failed (${e.code}: ${e.message}); releasing the reservation`);
    ctx.rpc('release', 'order-rpc/release-inventory', { reservationId: reservation.reservationId });
    return {
      orderId: order.orderId,
      status: 'cancelled',
      totalCents,
      reservationId: reservation.reservationId,
      reason: e.code,
    };
  }

  ctx.sleep('cool-off', order.coolOffMs ?? 1000);

  const shipment = ctx.rpc('ship', 'order-rpc/ship-order', {
    orderId: order.orderId,
    reservationId: reservation.reservationId,
    slowMs,
  });
  ctx.info(`order ${order.orderId} shipped as ${shipment.trackingNumber}`);

  return {
    orderId: order.orderId,
    status: 'completed',
    totalCents,
    reservationId: reservation.reservationId,
    chargeId: charge.chargeId,
    trackingNumber: shipment.trackingNumber,
  };
});
