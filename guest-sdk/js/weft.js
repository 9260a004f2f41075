// Write durable Weft workflows in JavaScript.
//
// The same shape as the Rust SDK: a workflow is a function of a context and
// a JSON input; every effect is a step (an RPC, an inline block, a durable
// sleep, a wait for an event), started at once or fanned out and joined, whose outcome the host records and hands back on replay. Between
// steps the code must be deterministic; `Date.now()`, `Math.random()` and
// friends already read the run's logical clock and seeded randomness. The
// runtime asks the host for every `Math.random()` and `crypto` draw, and the
// host keys its streams by journal position, so a draw inside a step body
// that replay skips shifts nothing after it.
//
//   import { workflow, WeftError } from '@weft/sdk';
//
//   export const run = workflow((ctx, order) => {
//     const total = ctx.step('total', () => order.cents + 499);
//     const receipt = ctx.rpc('charge', 'payments/charge', { order: order.id, cents: total });
//     ctx.sleep('cool-off', 5000);
//     ctx.info(`charged ${receipt.chargeId}`);
//     return receipt;
//   });
//
// Build: `weft build` in a project made by `weft new <name> --lang js`
// (esbuild bundles it, keeping `weft:*` imports external; componentize-js
// makes the component). RPC step functions use `@weft/sdk/rpc`.

import * as steps from 'weft:workflow/steps@0.2.0';
import { WeftError, asWeftError } from './errors.js';

export { WeftError };

/** A step started without waiting (a fan-out member): its name is the handle. */
export class Started {
  constructor(name) {
    this.name = name;
  }
}

function settle(fn) {
  try {
    return { ok: true, value: fn(), error: undefined };
  } catch (e) {
    return { ok: false, value: undefined, error: asWeftError(e) };
  }
}

/** A retry policy: `{ maxAttempts, initialDelayMs, backoffFactor, maxDelayMs, jitter }`. */
export function retryPolicy({ maxAttempts = 3, initialDelayMs = 1000, backoffFactor = 2, maxDelayMs = 60000, jitter = 0.1 } = {}) {
  return { maxAttempts, initialDelayMs: BigInt(initialDelayMs), backoffFactor, maxDelayMs: BigInt(maxDelayMs), jitter };
}

function toWireOptions(options = {}) {
  return {
    retry: options.retry ? retryPolicy(options.retry) : undefined,
    timeoutMs: options.timeoutMs === undefined ? undefined : BigInt(options.timeoutMs),
  };
}

/** A workflow's handle on the host. */
export class Context {
  constructor() {
    this.used = new Map();
  }

  /** Step names must be unique in a run: repeats get `#2`, `#3`... */
  unique(name) {
    const n = (this.used.get(name) || 0) + 1;
    this.used.set(name, n);
    return n === 1 ? name : `${name}#${n}`;
  }

  /** Calls RPC `module/function` with `input`; returns its result or throws its WeftError. */
  rpc(step, rpcName, input, options) {
    const name = this.unique(step);
    let result;
    try {
      result = steps.callRpc(name, rpcName, JSON.stringify(input ?? null), toWireOptions(options));
    } catch (e) {
      throw e && e.payload ? WeftError.fromWire(e.payload) : e;
    }
    return JSON.parse(result);
  }

  /**
   * Runs `fn(attempt)` once as an inline step; its result is recorded and
   * returned on replay without calling `fn`. Throwing retries it.
   */
  step(name, fn, options) {
    const stepName = this.unique(name);
    let answer = steps.beginStep(stepName, toWireOptions(options));
    for (;;) {
      if (answer.tag === 'recorded') {
        if (answer.val.tag === 'ok') return JSON.parse(answer.val.val);
        throw WeftError.fromWire(answer.val.val);
      }
      let outcome;
      try {
        outcome = { tag: 'ok', val: JSON.stringify(fn(answer.val) ?? null) };
      } catch (e) {
        outcome = { tag: 'err', val: asWeftError(e).toWire() };
      }
      answer = steps.completeStep(stepName, outcome);
    }
  }

  /** Sleeps durably for `ms` milliseconds. */
  sleep(name, ms) {
    steps.sleep(this.unique(name), BigInt(Math.max(0, Math.floor(ms))));
  }

  /**
   * Waits for the next event `event` sent to this run and returns its
   * payload. Events wait in the run's inbox until a wait takes them, oldest
   * first and one per wait. With `timeoutMs`, throws a WeftError with code
   * `timeout` if none came within that long of this step being first
   * reached; a later event stays for the next wait of its name.
   */
  waitEvent(step, event, timeoutMs) {
    const name = this.unique(step);
    const timeout = timeoutMs == null ? undefined : BigInt(Math.max(0, Math.floor(timeoutMs)));
    let payload;
    try {
      payload = steps.waitEvent(name, event, timeout);
    } catch (e) {
      throw e && e.payload ? WeftError.fromWire(e.payload) : e;
    }
    return JSON.parse(payload);
  }

  /**
   * Creates a callback and returns its token, for another system to
   * complete once with `POST /v1/callbacks/{token}`. With `timeoutMs` it
   * expires that long after this step. Replays return the same token.
   */
  createCallback(step, timeoutMs) {
    const timeout = timeoutMs == null ? undefined : BigInt(Math.max(0, Math.floor(timeoutMs)));
    return steps.createCallback(this.unique(step), timeout);
  }

  /**
   * Waits until the callback with `token` is completed; returns its result
   * or throws the WeftError it was completed with (`timeout` if it expired).
   */
  awaitCallback(step, token) {
    const name = this.unique(step);
    let result;
    try {
      result = steps.awaitCallback(name, token);
    } catch (e) {
      throw e && e.payload ? WeftError.fromWire(e.payload) : e;
    }
    return JSON.parse(result);
  }

  // Fan-out. A start* call records a step and sets it going without
  // waiting (the RPC goes to a worker, the timer runs); it returns a
  // `Started` handle to await later. Host calls are synchronous in a
  // componentized runtime, so instead of promises these helpers play the
  // parts of Promise.all / Promise.race: an await whose step has not
  // finished suspends the workflow, and the host replays it once it has.

  /** Starts RPC `module/function` like `rpc`, without waiting. */
  startRpc(step, rpcName, input, options) {
    const name = this.unique(step);
    steps.startRpc(name, rpcName, JSON.stringify(input ?? null), toWireOptions(options));
    return new Started(name);
  }

  /** Starts a durable timer of `ms` milliseconds (its outcome is null). */
  startSleep(step, ms) {
    const name = this.unique(step);
    steps.startSleep(name, BigInt(Math.max(0, Math.floor(ms))));
    return new Started(name);
  }

  /** Starts a wait for event `event`, like `waitEvent`, without waiting. */
  startWaitEvent(step, event, timeoutMs) {
    const name = this.unique(step);
    const timeout = timeoutMs == null ? undefined : BigInt(Math.max(0, Math.floor(timeoutMs)));
    steps.startEventWait(name, event, timeout);
    return new Started(name);
  }

  /** Starts a wait for the callback with `token`, without waiting. */
  startAwaitCallback(step, token) {
    const name = this.unique(step);
    steps.startCallbackWait(name, token);
    return new Started(name);
  }

  /**
   * Starts a run of deployed workflow `workflow` as a child of this run;
   * `wait` gives its output or throws its error. It is cancelled if this
   * run is cancelled or ends first.
   */
  startChild(step, workflow, input) {
    const name = this.unique(step);
    steps.startChild(name, workflow, JSON.stringify(input ?? null));
    return new Started(name);
  }

  /** Runs workflow `workflow` as a child and returns its output. */
  child(step, workflow, input) {
    return this.wait(this.startChild(step, workflow, input));
  }

  /** Starts a detached child (not awaited, not cancelled with this run); returns its run id. */
  spawnChild(step, workflow, input) {
    try {
      return steps.spawnChild(this.unique(step), workflow, JSON.stringify(input ?? null));
    } catch (e) {
      throw e && e.payload ? WeftError.fromWire(e.payload) : e;
    }
  }

  /** Waits for a started step; returns its result or throws its WeftError. */
  wait(started) {
    let result;
    try {
      result = steps.awaitStep(started.name);
    } catch (e) {
      throw e && e.payload ? WeftError.fromWire(e.payload) : e;
    }
    return JSON.parse(result);
  }

  /** Like Promise.allSettled: every outcome, in the order given. */
  allSettled(started) {
    return started.map((s) => settle(() => this.wait(s)));
  }

  /** Like Promise.all: every result in order, or the first failure in order thrown. */
  all(started) {
    return started.map((s) => this.wait(s));
  }

  /**
   * Waits for the first of `started` to finish: `{ index, ok, value, error }`.
   * Which one it was is recorded as join step `step`, so a replay gets the
   * same answer; the others keep running.
   */
  select(step, started) {
    const names = started.map((s) => s.name);
    const first = steps.awaitAny(this.unique(step), names);
    const index = Math.max(0, names.indexOf(first));
    return { index, ...settle(() => this.wait(started[index])) };
  }

  /** Like Promise.race: the first to finish's result, or its error thrown. */
  race(step, started) {
    const first = this.select(step, started);
    if (!first.ok) throw first.error;
    return first.value;
  }

  /**
   * Waits for members in the order they finish until `minSuccesses`
   * succeeded (default: all) or more than `maxFailures` failed:
   * `{ finished: [{ index, ok, value, error }], satisfied }`.
   */
  joinUntil(step, started, { minSuccesses, maxFailures } = {}) {
    const wanted = minSuccesses ?? started.length;
    const open = started.map((_, i) => i);
    const finished = [];
    let ok = 0;
    let failed = 0;
    let satisfied = ok >= wanted;
    while (!satisfied && open.length > 0) {
      const first = this.select(step, open.map((i) => started[i]));
      const [index] = open.splice(first.index, 1);
      finished.push({ ...first, index });
      if (first.ok) ok += 1;
      else failed += 1;
      if (maxFailures != null && failed > maxFailures) break;
      satisfied = ok >= wanted;
    }
    if (open.length === 0 && (maxFailures == null || failed <= maxFailures)) {
      satisfied = satisfied || minSuccesses == null;
    }
    return { finished, satisfied };
  }

  /**
   * Starts `start(ctx, item, index)` for every item with at most `limit`
   * in flight; returns the settled outcomes in the items' order.
   */
  mapBounded(step, items, limit, start) {
    const cap = Math.max(1, limit | 0);
    const results = new Array(items.length);
    const flying = [];
    let next = 0;
    for (;;) {
      while (flying.length < cap && next < items.length) {
        flying.push({ index: next, started: start(this, items[next], next) });
        next += 1;
      }
      if (flying.length === 0) break;
      const first = this.select(step, flying.map((f) => f.started));
      const [done] = flying.splice(first.index, 1);
      results[done.index] = { ok: first.ok, value: first.value, error: first.error };
    }
    return results;
  }

  /** The run's logical time, in milliseconds since the epoch. */
  now() {
    return Number(steps.now());
  }

  /** A random 64-bit number (as a BigInt), identical on replay. */
  random() {
    return steps.random();
  }

  log(level, message) {
    steps.log(level, String(message));
  }

  info(message) {
    this.log('info', message);
  }

  warn(message) {
    this.log('warn', message);
  }

  error(message) {
    this.log('error', message);
  }
}

/**
 * Wraps `fn(ctx, input)` as the component's `run` export: decodes the JSON
 * input, encodes the output, and turns a thrown error into the run's error.
 */
export function workflow(fn) {
  return function run(input) {
    let parsed;
    try {
      parsed = JSON.parse(input);
    } catch (e) {
      throw new WeftError('invalid_input', `the workflow input is not JSON: ${e.message}`).permanent().toWire();
    }
    try {
      return JSON.stringify(fn(new Context(), parsed) ?? null);
    } catch (e) {
      throw asWeftError(e).toWire();
    }
  };
}
