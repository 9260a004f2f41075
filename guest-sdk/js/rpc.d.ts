// Types for `@weft/sdk/rpc`: RPC step functions. See rpc.js for the semantics.
import { Json, WeftError } from './errors.js';

export { Json, WeftError };

/** What the host tells a function about the call it serves. */
export interface Call {
  /** `<run id>/<step name>`: identical for every attempt of one step. */
  idempotencyKey: string;
  runId: string;
  stepName: string;
  /** 1 for the first attempt. */
  attempt: number;
}

export type RpcFunction<I = any, O = any> = (call: Call, input: I) => O | Promise<O>;

/** The component's `handle` export, dispatching each call by name. */
export function rpcFunctions(
  functions: Record<string, RpcFunction>,
): (name: string, input: string, call: Call) => string | Promise<string>;
