/**
 * The library as another TypeScript project uses it (issue #26): this folder as a dependency
 * (`node_modules/sql-migrate`, a symlink as `npm install ../migrations` makes one), imported by
 * its package name through package.json `exports`, run with tsx and type-checked with tsc; every
 * name the docs mention exported; durations rounded to 0.1 ms; the events typed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fixture, ROOT } from './support/cli.ts';
import { parseTarget } from '../runner/index.ts';

const run = promisify(execFile);
const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

const MAIN = `import {
  migrate,
  formatWhere,
  parseTarget,
  type LockEvent,
  type MigrateEvent,
  type RunnerConfig,
  type WaitEvent,
  type CheckProgress,
  type Where,
} from 'sql-migrate';

const config: RunnerConfig = { url: 'sqlite:app.db', dir: 'sql', tableLockTimeoutMs: 500, retryForMs: 2000 };
const events: MigrateEvent[] = [];
const onWait = (e: WaitEvent) => e.elapsedMs;
const onLock = (e: LockEvent) => (e.type === 'lock-wait' ? e.retryInMs : e.elapsedMs);
const onProgress = (e: CheckProgress) => e.done;
const where: Where = { file: 'sql/x.up.sql', line: 3, column: 7 };
void [onWait, onLock, onProgress];
const result = await migrate({ ...config, onWait }, 'head', { onEvent: (e) => events.push(e) });
console.log(JSON.stringify({
  target: parseTarget('+1'),
  where: formatWhere(where),
  durations: result.steps.map((s) => s.durationMs),
  events: events.map((e) => e.type),
}));
`;

describe('the library from another project', () => {
  it('imports sql-migrate by name (package.json exports), runs with tsx and type-checks with tsc', async () => {
    const project = mkdtempSync(join(tmpdir(), 'library-user-'));
    try {
      mkdirSync(join(project, 'node_modules'));
      symlinkSync(ROOT, join(project, 'node_modules', 'sql-migrate'), 'dir');
      cpSync(fixture('basic'), join(project, 'sql'), { recursive: true });
      writeFileSync(
        join(project, 'package.json'),
        JSON.stringify({ type: 'module', dependencies: { 'sql-migrate': 'file:..' } }),
      );
      writeFileSync(join(project, 'main.ts'), MAIN);
      writeFileSync(
        join(project, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'es2022',
            module: 'nodenext',
            moduleResolution: 'nodenext',
            strict: true,
            noEmit: true,
            allowImportingTsExtensions: true,
            skipLibCheck: true,
            types: ['node'],
            typeRoots: [join(ROOT, 'node_modules', '@types')],
          },
          files: ['main.ts'],
        }),
      );
      const { stdout } = await run(process.execPath, ['--import', TSX, 'main.ts'], { cwd: project });
      const out = JSON.parse(stdout) as { target: unknown; where: string; durations: number[]; events: string[] };
      assert.equal(out.where, 'sql/x.up.sql:3:7');
      assert.deepEqual(out.target, JSON.parse(JSON.stringify(parseTarget('+1'))));
      assert.ok(out.durations.length > 0);
      for (const d of out.durations) assert.equal(Math.round(d * 10), d * 10, `${d} is rounded to 0.1 ms`);
      assert.deepEqual([...new Set(out.events)], ['step']);
      // A type error in what the docs promise would fail here, in the consumer's own check.
      await run(process.execPath, [TSC, '-p', project], { cwd: project });
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  });

  it('package.json exports runner/index.ts, and index.ts exports every name docs/cli.md mentions', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
    assert.deepEqual(pkg.exports['.'], { types: './runner/index.ts', default: './runner/index.ts' });
    const index = readFileSync(join(ROOT, 'runner', 'index.ts'), 'utf8');
    const docs = readFileSync(join(ROOT, 'docs', 'cli.md'), 'utf8');
    const library = docs.slice(docs.indexOf('## The library'));
    const named = new Set(
      [...library.matchAll(/`(?:([A-Z][A-Za-z]+)|([a-z][A-Za-z]+)\(\))`/g)].map((m) => (m[1] ?? m[2]) as string),
    );
    assert.ok(named.size > 10, [...named].join(' '));
    for (const name of named)
      assert.match(index, new RegExp(`\\b${name}\\b`), `${name} is named in docs/cli.md but not exported`);
  });
});
