// Types for `@weft/sdk`: durable workflows. See weft.js for the semantics.
import { Json, WeftError } from './errors.js';

export { Json, WeftError };

/** How a failing step is retried; unset fields take the host's defaults. */
export interface RetryOptions {
  maxAttempts?: number;
  initialDelayMs?: number;
  backoffFactor?: number;
  maxDelayMs?: number;
  /** A fraction from 0 to 1. */
  jitter?: number;
}

export interface StepOptions {
  retry?: RetryOptions;
  /** Abandon an RPC attempt after this long and count it as failed. */
  timeoutMs?: number;
}

export interface RetryPolicy {
  maxAttempts: number;
  initialDelayMs: bigint;
  backoffFactor: number;
  maxDelayMs: bigint;
  jitter: number;
}

export function retryPolicy(options?: RetryOptions): RetryPolicy;

/** A step started without waiting (a fan-out member): its name is the handle. */
export class Started {
  constructor(name: string);
  readonly name: string;
}

/** One member's outcome, with its index in the list it was awaited from. */
export interface Settled<T = any> {
  index: number;
  ok: boolean;
  value: T | undefined;
  error: WeftError | undefined;
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** A workflow's handle on the host. Every method is a durable step or answered from the journal. */
export class Context {
  rpc<T = any>(step: string, rpcName: string, input?: Json, options?: StepOptions): T;
  step<T = any>(name: string, fn: (attempt: number) => T, options?: StepOptions): T;
  sleep(name: string, ms: number): void;
  waitEvent<T = any>(step: string, event: string, timeoutMs?: number): T;
  createCallback(step: string, timeoutMs?: number): string;
  awaitCallback<T = any>(step: string, token: string): T;

  startRpc(step: string, rpcName: string, input?: Json, options?: StepOptions): Started;
  startSleep(step: string, ms: number): Started;
  startWaitEvent(step: string, event: string, timeoutMs?: number): Started;
  startAwaitCallback(step: string, token: string): Started;
  startChild(step: string, workflow: string, input?: Json): Started;
  child<T = any>(step: string, workflow: string, input?: Json): T;
  /** Starts a detached child; returns its run id. */
  spawnChild(step: string, workflow: string, input?: Json): string;

  wait<T = any>(started: Started): T;
  allSettled(started: Started[]): Settled[];
  all(started: Started[]): any[];
  select(step: string, started: Started[]): Settled;
  race<T = any>(step: string, started: Started[]): T;
  joinUntil(
    step: string,
    started: Started[],
    rule?: { minSuccesses?: number; maxFailures?: number },
  ): { finished: Settled[]; satisfied: boolean };
  mapBounded<I>(
    step: string,
    items: I[],
    limit: number,
    start: (ctx: Context, item: I, index: number) => Started,
  ): Array<Omit<Settled, 'index'>>;

  /** The run's logical time, in milliseconds since the epoch. */
  now(): number;
  /** A random 64-bit number, identical on replay. */
  random(): bigint;
  log(level: LogLevel, message: unknown): void;
  info(message: unknown): void;
  warn(message: unknown): void;
  error(message: unknown): void;
}

/** Wraps `fn(ctx, input)` as the component's `run` export. */
export function workflow<I = any, O = any>(fn: (ctx: Context, input: I) => O): (input: string) => string;
