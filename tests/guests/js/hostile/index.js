// A JavaScript workflow that misbehaves on request (`{"mode": ...}`).

import { workflow, WeftError } from '@weft/sdk';

export const run = workflow((ctx, input) => {
  switch (input.mode) {
    case 'loop':
      for (;;) {}
    case 'alloc': {
      const hoard = [];
      for (;;) hoard.push(new ArrayBuffer(16 << 20));
    }
    case 'fetch':
      fetch('http://127.0.0.1:22/');
      return 'reached the network';
    case 'fail':
      throw new WeftError('custom_failure', 'the workflow gave up', { n: input.n });
    case 'throw':
      throw new TypeError('not a WeftError');
    default:
      throw new WeftError('unknown_mode', `no mode ${input.mode}`);
  }
});
