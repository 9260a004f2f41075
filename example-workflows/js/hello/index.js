// The smallest useful workflow: one inline step that builds a greeting.
// {"name": "Ada"} → {"greeting": "Hello, Ada!"}

import { workflow } from '@weft/sdk';

export const run = workflow((ctx, input) => {
  const greeting = ctx.step('greet', () => `Hello, ${input.name}!`);
  ctx.info(greeting);
  return { greeting };
});
