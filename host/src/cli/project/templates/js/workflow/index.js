// A Weft workflow. {"name": "Ada"} gives {"greeting": "Hello, Ada!"}, built
// by an inline step; with "greeter": "<module>" the greeting comes from that
// RPC module's `greet` function instead (`weft new --kind rpc`).
//
// Between steps the code must be deterministic: the host replays it from
// the top on every resume and hands back each step's recorded outcome.
import { workflow } from '@weft/sdk';

export const run = workflow((ctx, input) => {
  const greeting = input.greeter
    ? ctx.rpc('greet', `${input.greeter}/greet`, { name: input.name }).greeting
    : ctx.step('greet', () => `Hello, ${input.name}!`);
  ctx.info(greeting);
  return { greeting };
});
