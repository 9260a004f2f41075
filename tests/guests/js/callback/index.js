// tests/guests/rust/callback in JavaScript: the same input and output.

import { workflow } from '@weft/sdk';

export const run = workflow((ctx, input) => {
  const token = ctx.createCallback('approval-link', input.timeoutMs);
  ctx.info(`callback token: ${token}`);
  try {
    return { result: ctx.awaitCallback('await-approval', token) };
  } catch (e) {
    return { error: e.code };
  }
});
