// The event-wait driver of tests/guests/rust/inbox, in JavaScript: the same
// input, the same output, so one scenario checks every language.

import { workflow } from '@weft/sdk';

export const run = workflow((ctx, input) => {
  if (input.sleepMs > 0) ctx.sleep('before', input.sleepMs);
  const got = [];
  for (const wait of input.waits) {
    try {
      const payload = ctx.waitEvent(`wait-${wait.event}`, wait.event, wait.timeoutMs);
      got.push({ event: wait.event, payload });
    } catch (e) {
      if (e.code !== 'timeout') throw e;
      got.push({ event: wait.event, timedOut: true });
    }
  }
  return got;
});
