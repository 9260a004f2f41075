// The sandbox probe in JavaScript (see tests/guests/probe for the Rust
// one): what can a workflow see of the host, and does replay repeat it?

import { workflow } from '@weft/sdk';

export const run = workflow((ctx, input) => {
  console.log('probe starting');
  ctx.info('before any step');
  const env = typeof process !== 'undefined' && process.env ? process.env : {};
  const envVars = Object.keys(env);
  const awsKeyVisible = 'AWS_SECRET_ACCESS_KEY' in env || 'AWS_ACCESS_KEY_ID' in env;
  // StarlingMonkey has no filesystem API at all; report it as a failure.
  const files = { '/etc/passwd': 'error: no filesystem API', 'weft.db': 'error: no filesystem API' };
  // Workflows are built without wasi:http: there is no network to reach.
  // (Calling `fetch` anyway traps the run; see the hostile guest.)
  const network = 'error: no network API in workflows';
  const wallClockMs = Date.now();
  const logicalNowMs = ctx.now();
  const random = Math.floor(Math.random() * 1e9);
  // The body draws randomness (as an id generator would); replay skips the
  // body, so these draws must not shift the ones made after the step.
  const inlineValue = ctx.step('inline', () => {
    Math.random();
    crypto.getRandomValues(new Uint32Array(4));
    return random % 1000;
  });
  // Drawn after the step and sent in the RPC's input: a replay that drew a
  // different value would send another input and fail as non-deterministic.
  const nonce = Math.floor(Math.random() * 1e9);
  console.log(`after inline step: ${inlineValue}`);
  ctx.info('after inline step');
  const rpcResult = input.withRpc ? ctx.rpc('remote', 'order-rpc/ship-order', { orderId: 'probe', nonce }) : null;
  ctx.info('after rpc step');
  ctx.sleep('nap', input.sleepMs ?? 1);
  ctx.info('after sleep');
  console.log('probe done');
  return {
    envVars,
    awsKeyVisible,
    args: [],
    files,
    network,
    wallClockMs,
    logicalNowMs,
    random,
    nonce,
    inlineValue,
    rpcResult,
    wallClockAfterSleepMs: Date.now(),
    logicalAfterSleepMs: ctx.now(),
  };
});
