// Write Weft RPC step functions in JavaScript.
//
// An RPC module is a component of world `weft:workflow/rpc` holding named
// functions; workflows call them as `<module>/<function>`. Each function
// takes the call (who is calling, which attempt) and the decoded JSON
// input, and returns a JSON-encodable result or throws a WeftError.
//
// Unlike workflow code, a function runs once per attempt and is never
// replayed; make side effects idempotent with `call.idempotencyKey`, the
// same for every attempt of one step.
//
//   import { rpcFunctions, WeftError } from '@weft/sdk/rpc';
//
//   export const handle = rpcFunctions({
//     charge(call, { cents }) {
//       if (cents <= 0) throw new WeftError('invalid_amount', 'nothing to charge').permanent();
//       return { chargeId: `ch_${call.idempotencyKey}` };
//     },
//   });
//
// A function may be async: `fetch` reaches the hosts the module was
// deployed with (`weft deploy --allow-host`) and no others.
//
// A WeftError thrown without `.permanent()` is retried by the host under the
// step's retry policy; any other thrown value counts as a retryable `error`.

import { WeftError, asWeftError } from './errors.js';

export { WeftError };

/**
 * The component's `handle` export, dispatching each call to `functions[name]`.
 * An unknown name fails with the permanent error `unknown_function`, an input
 * that is not JSON with `invalid_input`.
 */
export function rpcFunctions(functions) {
  return function handle(name, input, call) {
    const fn = Object.hasOwn(functions, name) ? functions[name] : undefined;
    if (typeof fn !== 'function') {
      const known = Object.keys(functions).sort().join(', ') || 'none';
      throw new WeftError('unknown_function', `this module has no function ${JSON.stringify(name)}; it has ${known}`)
        .permanent().toWire();
    }
    let parsed;
    try {
      parsed = JSON.parse(input);
    } catch (e) {
      throw new WeftError('invalid_input', `the RPC input is not JSON: ${e.message}`).permanent().toWire();
    }
    const info = {
      idempotencyKey: call.idempotencyKey,
      runId: call.runId,
      stepName: call.stepName,
      attempt: call.attempt,
    };
    // A result JSON cannot carry (a BigInt, a cycle) is the module's bug,
    // not a passing failure: permanent `invalid_output`, as in Rust.
    const encode = (value) => {
      try {
        return JSON.stringify(value ?? null);
      } catch (e) {
        throw new WeftError('invalid_output', `the RPC result cannot be serialised: ${e.message}`)
          .permanent().toWire();
      }
    };
    const fail = (e) => {
      throw asWeftError(e).toWire();
    };
    let result;
    try {
      result = fn(info, parsed);
    } catch (e) {
      fail(e);
    }
    // An async function (one that awaits `fetch`) returns a promise;
    // componentize-js runs the event loop until it settles.
    return typeof result?.then === 'function' ? result.then(encode, fail) : encode(result);
  };
}
