// Builds the module and calls `greet` once on the local Weft host (`weft`
// on PATH, or the binary named by WEFT): `npm test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

test('greet answers', () => {
  const out = execFileSync(process.env.WEFT ?? 'weft',
    ['build', '--run', '--function', 'greet', '--input', '{"name":"Ada"}'], { encoding: 'utf8' });
  assert.equal(JSON.parse(out).greeting, 'Hello, Ada! (RPC attempt 1)');
});
