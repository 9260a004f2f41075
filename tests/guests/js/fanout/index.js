// The fan-out driver of tests/guests/rust/fanout, in JavaScript: the same
// input, the same output, so one scenario checks every language.

import { workflow, WeftError } from '@weft/sdk';

const SLOW = 'fanout-rpc/slow';
const ONCE = { retry: { maxAttempts: 1 } };

const shown = (r) => (r.ok ? r.value : { error: r.error.code });

export const run = workflow((ctx, input) => {
  if (input.failWith) throw new WeftError(input.failWith, 'asked to fail');
  const out = {};
  if (input.all && input.all.length > 0) {
    const started = input.all.map((m, i) =>
      ctx.startRpc('fan', SLOW, { value: i, ms: m.ms ?? 0, fail: !!m.fail }, ONCE));
    out.all = ctx.allSettled(started).map(shown);
  }
  if (input.quorum && input.quorum.length > 0) {
    const started = input.quorum.map((m, i) =>
      ctx.startRpc('quorum', SLOW, { value: i, ms: m.ms ?? 0, fail: !!m.fail }, ONCE));
    const joined = ctx.joinUntil('quorum-first', started, { minSuccesses: 2 });
    out.quorum = { order: joined.finished.map((f) => f.index), satisfied: joined.satisfied };
  }
  if (input.raceMs != null) {
    const timer = ctx.startSleep('race-timer', input.raceMs);
    const event = ctx.startWaitEvent('race-event', 'go');
    const first = ctx.select('race', [event, timer]);
    out.race = first.index === 0
      ? { winner: 'event', value: shown(first) }
      : { winner: 'timer', value: null };
  }
  if (input.bounded) {
    const { items, limit, ms } = input.bounded;
    const list = Array.from({ length: items }, (_, i) => i);
    out.bounded = ctx
      .mapBounded('bounded-next', list, limit, (c, item) =>
        c.startRpc('bounded', SLOW, { value: item * 10, ms: (item + 1) * ms }, ONCE))
      .map(shown);
  }
  if (input.spawn) {
    out.spawned = ctx.spawnChild('spawned', input.spawn.workflow, input.spawn.input);
  }
  if (input.children && input.children.length > 0) {
    const started = input.children.map((c) => ctx.startChild('kid', c.workflow, c.input));
    out.children = ctx.allSettled(started).map(shown);
  }
  return out;
});
