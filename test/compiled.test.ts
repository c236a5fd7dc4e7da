/**
 * The compiled CLI, `npm run build`'s dist/migrate.cjs (a loader, one CommonJS bundle and V8's
 * code cache for it), is what the Docker entrypoint starts when it is there. It must behave
 * exactly as scripts/migrate.ts under tsx: same output, same errors, same exit codes, on both
 * dialects; and it must never run a code cache made from other source.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, maskDurations, onTerminal, ROOT, runCli, type CliResult } from './support/cli.ts';
import { TEST_DIALECTS, withTestDb, type TestDb } from './support/db.ts';
import { hasPostgresServer } from './support/postgres.ts';

/** An app folder as a Docker image holds it: dist/, scripts/docker-entrypoint.sh, node_modules; no scripts/migrate.ts. */
let app = '';
let bundle = '';

before(() => {
  app = mkdtempSync(join(tmpdir(), 'migrate-compiled-'));
  bundle = join(app, 'dist', 'migrate.cjs');
  symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules')); // better-sqlite3, the one dependency left outside the bundle
  // The build warms its code cache on SQLite and on PGlite (both here): it has nothing to warn about.
  const built = spawnSync('npm', ['run', 'build', '--silent', '--', `--outdir=${join(app, 'dist')}`], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  assert.equal(built.status, 0, built.stderr);
  assert.doesNotMatch(built.stderr, /^build:/m);
  mkdirSync(join(app, 'scripts'));
  copyFileSync(join(ROOT, 'scripts', 'docker-entrypoint.sh'), join(app, 'scripts', 'docker-entrypoint.sh'));
});

after(() => rmSync(app, { recursive: true, force: true }));

/** What may differ between two runs on two databases: durations, clock times, the database's own name. */
function comparable(r: CliResult, db: TestDb): CliResult {
  const mask = (text: string) =>
    maskDurations(text)
      .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?/g, '<time>')
      .replaceAll(db.url, '<url>')
      .replaceAll(db.dir, '<dir>');
  return { code: r.code, stdout: mask(r.stdout), stderr: mask(r.stderr) };
}

describe('compiled CLI (npm run build)', () => {
  for (const dialect of TEST_DIALECTS) {
    it(`${dialect}: prints and exits exactly as the tsx CLI, step by step (the suite's own bundle of it too)`, () =>
      withTestDb(dialect, (viaTsx) =>
        withTestDb(dialect, (viaBundle) =>
          // The other suites start the CLI from one file esbuild makes of scripts/migrate.ts
          // (test/support/cli.ts): it too must be the tsx CLI, output for output.
          withTestDb(dialect, async (viaTests) => {
            const sequence: Array<{ args: string[]; dir: string }> = [
              { args: ['+1'], dir: fixture('basic') },
              { args: ['sql', 'head'], dir: fixture('basic') },
              { args: ['head'], dir: fixture('basic') },
              { args: ['history'], dir: fixture('basic') },
              { args: ['base'], dir: fixture('basic') }, // refused: more than one step, no --yes
              { args: ['-2', '--yes'], dir: fixture('basic') },
              { args: ['current', '--json'], dir: fixture('basic') },
              { args: ['nowhere'], dir: fixture('basic') },
              { args: ['base', '--yes'], dir: fixture('basic') },
              { args: ['head'], dir: fixture('fail-third-statement') },
            ];
            for (const { args, dir } of sequence) {
              const tsx = await runCli([...args, '--url', viaTsx.url, '--dir', dir], { tsx: true });
              const compiled = await runCli([...args, '--url', viaBundle.url, '--dir', dir], { compiled: bundle });
              assert.deepEqual(comparable(compiled, viaBundle), comparable(tsx, viaTsx), `${args.join(' ')}`);
              const tests = await runCli([...args, '--url', viaTests.url, '--dir', dir]);
              assert.deepEqual(comparable(tests, viaTests), comparable(tsx, viaTsx), `${args.join(' ')} (test bundle)`);
            }
            // The walk really happened: the failing fixture's first two revisions are recorded.
            const revisions = (await viaTsx.records()).map((r) => r.revision);
            assert.deepEqual(
              (await viaBundle.records()).map((r) => r.revision),
              revisions,
            );
            assert.deepEqual(
              (await viaTests.records()).map((r) => r.revision),
              revisions,
            );
            assert.ok(revisions.length > 0);
          }),
        ),
      ));
  }

  it('check, new and a .env match too: the parts the bundle loads only when needed', async () => {
    const url = hasPostgresServer ? (process.env.TEST_POSTGRES_URL as string) : undefined; // check's scratch database needs a server
    const checkArgs = ['check', '--seed=7', '--dir', fixture('check-clean'), ...(url ? ['--url', url] : [])];
    assert.deepEqual(await runCli(checkArgs, { compiled: bundle }), await runCli(checkArgs, { tsx: true }));
    const scratch = mkdtempSync(join(tmpdir(), 'migrate-compiled-'));
    try {
      const run = async (name: string, options: { compiled?: string; tsx?: boolean }) => {
        const home = join(scratch, name);
        mkdirSync(join(home, 'sql', 'sqlite'), { recursive: true });
        // The real environment's settings are removed by runCli: these come from .env only.
        writeFileSync(
          join(home, '.env'),
          `DATABASE_URL=sqlite:${join(home, 'env.db')}\nMIGRATIONS_DIR=${fixture('basic')}\n`,
        );
        const head = await runCli(['head'], { cwd: home, ...options });
        const created = await runCli(['new', 'add thing', '--dir', join(home, 'sql')], { cwd: home, ...options });
        const mask = (text: string) =>
          maskDurations(text)
            .replaceAll(home, '<home>')
            .replace(/\d{8}_\d{6}/g, '<version>');
        return { head: { ...head, stdout: mask(head.stdout) }, created: { ...created, stdout: mask(created.stdout) } };
      };
      const viaBundle = await run('bundle', { compiled: bundle });
      const viaTsx = await run('tsx', { tsx: true });
      assert.deepEqual(viaBundle, viaTsx);
      assert.match(viaBundle.head.stdout, /at 000003 \(add_email\)/, 'the .env named the database and the folder');
      assert.match(viaBundle.created.stdout, /created .*<version>_add_thing\.up\.sql/);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('--help and a bad option match too', async () => {
    for (const args of [['--help'], [], ['head', '--bogus']]) {
      const tsx = await runCli(args, { tsx: true });
      const compiled = await runCli(args, { compiled: bundle });
      // The usage line names how each was started; the rest is the same text.
      const startedAs = (r: CliResult, how: string) => ({
        ...r,
        stdout: r.stdout.replace(how, '<cli>'),
        stderr: r.stderr.replace(how, '<cli>'),
      });
      assert.deepEqual(
        startedAs(compiled, 'node dist/migrate.cjs'),
        startedAs(tsx, 'npx tsx scripts/migrate.ts'),
        args.join(' '),
      );
      assert.match(compiled.stdout + compiled.stderr, /^Usage: node dist\/migrate\.cjs /m);
    }
  });

  it('asks on a terminal before a multi-step rollback, as the tsx CLI does', () =>
    withTestDb('sqlite', async (db) => {
      const args = ['base', '--url', db.url, '--dir', fixture('basic')];
      assert.equal((await runCli(['head', ...args.slice(1)], { compiled: bundle })).code, 0);
      const no = await onTerminal(args, 'n', { compiled: bundle });
      assert.match(no.out, /Roll them back\? \[y\/N\]/);
      assert.equal(no.code, 2, no.out);
      const yes = await onTerminal(args, 'y', { compiled: bundle });
      assert.equal(yes.code, 0, yes.out);
      assert.deepEqual(await db.records(), []);
    }));

  it('the Docker entrypoint starts the bundle when dist/ is there', () =>
    withTestDb('sqlite', async (db) => {
      // The app folder has no scripts/migrate.ts: only the bundle can have migrated.
      const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
        execFile(
          'sh',
          [join(app, 'scripts', 'docker-entrypoint.sh')],
          { env: { ...process.env, DATABASE_URL: db.url, MIGRATIONS_DIR: fixture('basic') } },
          (error, _out, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stderr }),
        ),
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await db.records()).length, 3);
    }));
});

describe('the code cache the build makes', () => {
  /** The CLI's result, and what its loader did with the code cache (used, none, stale, rejected). */
  it('head runs a bundle without the proof tooling; schema, drift and fleet run the full one, as under tsx', async () => {
    // The small bundle is what a container start compiles: none of check, catalog or scratch (issue #23).
    const small = readFileSync(join(app, 'dist', 'migrate-bundle.cjs'), 'utf8');
    const full = readFileSync(join(app, 'dist', 'migrate-full.cjs'), 'utf8');
    for (const folder of ['check', 'catalog', 'scratch']) {
      assert.doesNotMatch(small, new RegExp(`^// runner/${folder}/`, 'm'), `migrate-bundle.cjs holds runner/${folder}`);
      assert.match(full, new RegExp(`^// runner/${folder}/`, 'm'));
    }
    assert.match(small, /^\/\/ runner\/core\/migrator\.ts$/m);
    const scratch = mkdtempSync(join(tmpdir(), 'migrate-compiled-'));
    try {
      // Each CLI on its own databases, named alike: the two outputs must then be the same.
      const runs = (home: string): string[][] => {
        mkdirSync(home);
        const db = (name: string) => `sqlite:${join(home, `${name}.db`)}`;
        writeFileSync(join(home, 'targets.txt'), `${db('one')}\n${db('two')}\n`);
        return [
          ['head', '--url', db('one'), '--dir', fixture('basic')],
          ['schema', '--dir', fixture('basic')],
          ['drift', '--url', db('one'), '--dir', fixture('basic')],
          ['fleet', 'status', '--targets', join(home, 'targets.txt'), '--dir', fixture('basic')],
          ['--url', db('two'), 'drift', '--dir', fixture('basic')], // the command after an option
        ];
      };
      const viaTsx = runs(join(scratch, 'tsx'));
      const viaBundle = runs(join(scratch, 'bundle'));
      const mask = (r: CliResult, home: string) => {
        const text = (t: string) => maskDurations(t).replaceAll(join(scratch, home), '<home>');
        return { code: r.code, stdout: text(r.stdout), stderr: text(r.stderr) };
      };
      for (const [i, args] of viaBundle.entries()) {
        const compiled = await started(bundle, args);
        const tsx = await runCli(viaTsx[i] as string[], { tsx: true });
        assert.deepEqual(mask(compiled, 'bundle'), mask(tsx, 'tsx'), args.join(' '));
        assert.equal(compiled.codeCache, args[0] === 'head' ? 'used' : 'none', `${args.join(' ')}: which bundle ran`);
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  async function started(
    entry: string,
    args: string[],
    nodeFlags: string[] = [],
  ): Promise<CliResult & { codeCache: string }> {
    const probe = `const cli = require(process.argv[1]); process.on('exit', () => process.stderr.write('code cache: ' + cli.codeCache + '\\n'));`;
    const r = await runCli(args, { compiled: entry, node: [...nodeFlags, '-e', probe, '--'] });
    const codeCache = /code cache: (\w+)\n$/.exec(r.stderr)?.[1] ?? 'not reported';
    return { ...r, stderr: r.stderr.replace(/code cache: \w+\n$/, ''), codeCache };
  }

  /** `fn` on a copy of dist/ made elsewhere, as a Docker stage copies it; `edit` changes the copy's bundle. */
  async function withCopyOfDist(
    fn: (entry: string) => Promise<void>,
    edit?: (bundleSource: string) => string,
  ): Promise<void> {
    const home = mkdtempSync(join(tmpdir(), 'migrate-copied-'));
    try {
      cpSync(join(app, 'dist'), join(home, 'dist'), { recursive: true });
      symlinkSync(join(ROOT, 'node_modules'), join(home, 'node_modules'));
      if (edit) {
        const file = join(home, 'dist', 'migrate-bundle.cjs');
        writeFileSync(file, edit(readFileSync(file, 'utf8')));
      }
      await fn(join(home, 'dist', 'migrate.cjs'));
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  }

  for (const dialect of TEST_DIALECTS) {
    it(`${dialect}: this node accepts it, also from a copied dist/`, () =>
      withTestDb(dialect, async (db) => {
        await withCopyOfDist(async (entry) => {
          for (const cli of [bundle, entry]) {
            const r = await started(cli, ['head', '--url', db.url, '--dir', fixture('basic')]);
            assert.equal(r.code, 0, r.stderr);
            assert.equal(r.codeCache, 'used');
          }
          assert.equal((await db.records()).length, 3);
        });
      }));
  }

  it('a bundle changed after the build runs as changed: the cache is left aside, even at the same length', () =>
    withTestDb('sqlite', async (db) => {
      // V8 takes a cache for any source of the same length; the loader compares the source.
      await withCopyOfDist(
        async (entry) => {
          const args = ['head', '--url', db.url, '--dir', fixture('basic')];
          assert.equal((await started(entry, args)).code, 0);
          const again = await started(entry, args);
          assert.match(
            again.stdout,
            /^NOTHING TO DO; at 000003/,
            'run from the stale cache, it would print the old text',
          );
          assert.equal(again.codeCache, 'stale');
        },
        (source) => source.replace('nothing to do; at', 'NOTHING TO DO; at'),
      );
    }));

  it('a damaged cache is left aside, not handed to V8 (which would run or crash on it)', () =>
    withTestDb('sqlite', async (db) => {
      await withCopyOfDist(async (entry) => {
        const file = join(entry, '..', 'migrate-bundle.v8cache');
        const cache = readFileSync(file);
        const v8Data = 4 + cache.readUInt32LE(0) + 32;
        for (const offset of [40, 1000, cache.length - v8Data - 10]) {
          const damaged = Buffer.from(cache);
          damaged[v8Data + offset] = (damaged[v8Data + offset] as number) ^ 0xff;
          writeFileSync(file, damaged);
          const r = await started(entry, ['head', '--url', db.url, '--dir', fixture('basic')]);
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.codeCache, 'stale');
        }
        assert.equal((await db.records()).length, 3);
      });
    }));

  it('dist/migrate.cjs without the bundle beside it says what is missing', async () => {
    await withCopyOfDist(async (entry) => {
      rmSync(join(entry, '..', 'migrate-bundle.cjs'));
      const r = await runCli(['current', '--url', 'sqlite::memory:'], { compiled: entry });
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /^error: .*migrate-bundle\.cjs cannot be read \(ENOENT\): dist\/migrate\.cjs runs it; copy all of dist\//,
      );
    });
  });

  it('without the cache file, or under other V8 flags, the CLI starts and works the same', () =>
    withTestDb('sqlite', async (db) => {
      await withCopyOfDist(async (entry) => {
        const args = ['head', '--url', db.url, '--dir', fixture('basic')];
        const flagged = await started(bundle, args, ['--stack-size=900']);
        assert.equal(flagged.codeCache, 'rejected', 'V8 refuses a cache made under other flags');
        assert.equal(flagged.code, 0, flagged.stderr);
        rmSync(join(entry, '..', 'migrate-bundle.v8cache'));
        const without = await started(entry, args);
        assert.equal(without.codeCache, 'none');
        assert.deepEqual(comparable(without, db), comparable(await started(bundle, args), db));
        assert.match(without.stdout, /^nothing to do; at 000003/);
      });
    }));
});
