/**
 * The layout of runner/ is a rule (docs/architecture.md): index.ts and four folders, imports only
 * downward (core ← scratch ← catalog ← check), no cycle, no file over 400 lines.
 */
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { layoutProblems } from './support/layout.ts';

const runner = fileURLToPath(new URL('../runner', import.meta.url));

test('runner/ keeps its layout: four folders, imports only downward, no cycle, no long file', () => {
  const problems = layoutProblems(runner).map((p) => `${p.file}: ${p.message}`);
  assert.deepEqual(problems, []);
});

test('the layout check names the file of a planted wrong-way import, a cycle and a stray top-level file', () => {
  const copy = mkdtempSync(join(tmpdir(), 'layout-'));
  try {
    cpSync(runner, copy, { recursive: true });
    appendFileSync(join(copy, 'core', 'plan.ts'), "\nimport type { CheckResult } from '../check/check.ts';\n");
    appendFileSync(join(copy, 'scratch', 'scratch.ts'), "\nexport { introspect } from '../catalog/introspect.ts';\n");
    appendFileSync(join(copy, 'core', 'errors.ts'), "\nimport type { Plan } from './plan.ts';\n");
    appendFileSync(join(copy, 'stray.ts'), 'export const x = 1;\n');
    const problems = layoutProblems(copy);
    const about = (file: string, text: string) => problems.some((p) => p.file === file && p.message.includes(text));
    assert.ok(about('core/plan.ts', 'imports check/check.ts: core/ may import only core'), JSON.stringify(problems));
    assert.ok(about('scratch/scratch.ts', 'imports catalog/introspect.ts'), JSON.stringify(problems));
    assert.ok(
      problems.some((p) => p.message.startsWith('import cycle') && p.message.includes('core/errors.ts')),
      JSON.stringify(problems),
    );
    assert.ok(about('stray.ts', 'only index.ts may sit at the top'), JSON.stringify(problems));
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});
