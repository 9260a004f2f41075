// A Weft RPC module: functions that workflows call as `<module>/<function>`.
// `greet` takes {"name": "Ada"} and gives
// {"greeting": "Hello, Ada! (RPC attempt 1)"}.
//
// A function runs once per attempt and may be retried: make side effects
// idempotent with `call.idempotencyKey`, the same for every attempt.
import { rpcFunctions, WeftError } from '@weft/sdk/rpc';

export const handle = rpcFunctions({
  greet(call, { name }) {
    if (!name) {
      throw new WeftError('invalid_name', 'a name is needed').permanent();
    }
    return { greeting: `Hello, ${name}! (RPC attempt ${call.attempt})` };
  },
});
