// Builds the workflow and runs it once on the local Weft host (`weft` on
// PATH, or the binary named by WEFT): `npm test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

test('greets by name', () => {
  const out = execFileSync(process.env.WEFT ?? 'weft',
    ['build', '--run', '--json', '--input', '{"name":"Ada"}'], { encoding: 'utf8' });
  assert.equal(JSON.parse(out).run.output.greeting, 'Hello, Ada!');
});
