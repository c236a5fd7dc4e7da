/**
 * The lock and the rights a run needs, tried as another user would meet them: a runner reaching
 * the SQLite database through a symlink, a lock file it cannot write, a read-only database file,
 * a PostgreSQL role that may read the record but not write it. In each case the runner either
 * excludes the others or refuses before any migration runs (exit 3, DATABASE_REFUSED).
 *
 * Tests run as root, and root ignores file modes: the cases about another user's files spawn
 * the CLI as `nobody` (setpriv), in a world-writable temp folder.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import postgres from 'postgres';
import { CLI, fixture, ROOT, runCli, startCli, type CliResult } from './support/cli.ts';
import { hasPostgresServer } from './support/postgres.ts';
import { TEST_DIALECTS, withTestDb } from './support/db.ts';

const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs');
const isRoot = process.getuid?.() === 0;

/** The CLI as the unprivileged user `nobody`, so that file modes apply. */
function runAsNobody(args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(
      'setpriv',
      ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, '--import', TSX, CLI, ...args],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** A temp folder every user may write in, removed afterwards. */
async function inSharedDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mig-harden-'));
  chmodSync(dir, 0o777);
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function sqliteRows(path: string, sql: string): unknown[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(sql).all();
  } finally {
    db.close();
  }
}

const asNobody = !isRoot && 'needs root, to run the CLI as another user';

describe('the SQLite lock', () => {
  it('8 runners at once, half through a symlink: one applies, all exit 0, each revision once (5 rounds)', async () => {
    for (let round = 1; round <= 5; round++) {
      await inSharedDir(async (dir) => {
        const path = join(dir, 'real.db');
        const link = join(dir, 'link.db');
        symlinkSync(path, link);
        const runners = Array.from({ length: 8 }, (_, i) =>
          startCli(['head', '--url', `sqlite:${i % 2 ? link : path}`, '--dir', fixture('basic')]),
        );
        const results = await Promise.all(runners.map((r) => r.done));
        for (const r of results) assert.equal(r.code, 0, `round ${round}: ${r.stderr}`);
        const appliers = results.filter((r) => /^up /m.test(r.stdout));
        assert.equal(appliers.length, 1, `round ${round}: one runner applies`);
        const rows = sqliteRows(path, 'SELECT revision FROM schema_migrations ORDER BY seq') as Array<{
          revision: string;
        }>;
        assert.deepEqual(
          rows.map((r) => r.revision),
          ['000001', '000002', '000003'],
        );
      });
    }
  });

  it(
    'a lock file another user owns (mode 644): exit 3 naming the lock file and the fix, nothing applied',
    {
      skip: asNobody,
    },
    () =>
      inSharedDir(async (dir) => {
        const path = join(dir, 'test.db');
        new Database(path).close();
        chmodSync(path, 0o666);
        const lock = `${path}.migrate-lock`;
        new Database(lock).close();
        chmodSync(lock, 0o644);
        const r = await runAsNobody(['head', '--url', `sqlite:${path}`, '--dir', fixture('basic')]);
        assert.equal(r.code, 3, r.stderr);
        assert.match(r.stderr, /DATABASE_REFUSED|refused|cannot/i);
        assert.ok(r.stderr.includes(lock), r.stderr);
        assert.match(r.stderr, /chmod|chown|owner/);
        assert.deepEqual(sqliteRows(path, `SELECT name FROM sqlite_master WHERE type = 'table'`), []);
      }),
  );

  it('a folder where the lock file cannot be created: exit 3, nothing applied', { skip: asNobody }, () =>
    inSharedDir(async (dir) => {
      const path = join(dir, 'test.db');
      new Database(path).close();
      chmodSync(path, 0o666);
      chmodSync(dir, 0o755);
      const r = await runAsNobody(['head', '--url', `sqlite:${path}`, '--dir', fixture('basic')]);
      assert.equal(r.code, 3, r.stderr);
      assert.ok(r.stderr.includes(`${path}.migrate-lock`), r.stderr);
      assert.deepEqual(sqliteRows(path, `SELECT name FROM sqlite_master WHERE type = 'table'`), []);
    }),
  );
});

describe('rights checked before any migration runs', () => {
  it(
    'sqlite: a read-only database file that has a record: exit 3 DATABASE_REFUSED naming the file',
    {
      skip: asNobody,
    },
    () =>
      inSharedDir(async (dir) => {
        const path = join(dir, 'test.db');
        const first = await runCli(['+1', '--url', `sqlite:${path}`, '--dir', fixture('basic')]);
        assert.equal(first.code, 0, first.stderr);
        chmodSync(path, 0o444);
        const r = await runAsNobody(['head', '--url', `sqlite:${path}`, '--dir', fixture('basic')]);
        assert.equal(r.code, 3, r.stderr);
        assert.match(r.stderr, /DATABASE_REFUSED/);
        assert.ok(r.stderr.includes(path), r.stderr);
        assert.doesNotMatch(r.stderr, /up\.sql:/);
        assert.equal((sqliteRows(path, 'SELECT revision FROM schema_migrations') as unknown[]).length, 1);
      }),
  );

  if (!TEST_DIALECTS.includes('postgres')) return;
  const noServer = !hasPostgresServer && 'needs a PostgreSQL server (TEST_POSTGRES_URL): PGlite has one role';

  /** A login role with the given grants on the record table, dropped afterwards. */
  async function withRole(
    url: string,
    grants: (role: string) => string,
    fn: (roleUrl: string, role: string) => Promise<void>,
  ): Promise<void> {
    const role = `mig_r_${randomBytes(5).toString('hex')}`;
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(`CREATE ROLE ${role} LOGIN; ${grants(role)}`);
      const u = new URL(url);
      u.username = role;
      await fn(u.toString(), role);
    } finally {
      await admin.unsafe(`DROP OWNED BY ${role}; DROP ROLE ${role}`).catch(() => {});
      await admin.end({ timeout: 5 });
    }
  }

  const cases: Array<{ what: string; grants: (role: string) => string; right: RegExp; fixtureName: string }> = [
    {
      what: 'SELECT only on the record table',
      grants: (r) => `GRANT USAGE, CREATE ON SCHEMA public TO ${r}; GRANT SELECT ON schema_migrations TO ${r}`,
      right: /INSERT/,
      fixtureName: 'basic',
    },
    {
      what: 'no UPDATE, with a no-transaction file next',
      grants: (r) =>
        `GRANT USAGE, CREATE ON SCHEMA public TO ${r}; GRANT SELECT, INSERT, DELETE ON schema_migrations TO ${r}; ALTER TABLE items OWNER TO ${r}`,
      right: /UPDATE/,
      fixtureName: 'no-transaction',
    },
    {
      what: 'no DELETE',
      grants: (r) =>
        `GRANT USAGE, CREATE ON SCHEMA public TO ${r}; GRANT SELECT, INSERT, UPDATE ON schema_migrations TO ${r}`,
      right: /DELETE/,
      fixtureName: 'basic',
    },
  ];
  for (const c of cases) {
    it(`postgres: ${c.what}: exit 3 DATABASE_REFUSED naming the right, nothing run`, { skip: noServer }, () =>
      withTestDb('postgres', async (db) => {
        const first = await runCli(['+1', '--url', db.url, '--dir', fixture(c.fixtureName)]);
        assert.equal(first.code, 0, first.stderr);
        const before = await db.records();
        await withRole(db.url, c.grants, async (roleUrl) => {
          const r = await runCli(['head', '--url', roleUrl, '--dir', fixture(c.fixtureName)]);
          assert.equal(r.code, 3, r.stderr);
          assert.match(r.stderr, /DATABASE_REFUSED/);
          assert.match(r.stderr, c.right);
          assert.doesNotMatch(r.stderr, /\.sql:\d/);
          assert.deepEqual(await db.records(), before, 'nothing recorded');
          const [index] = await db.query(`SELECT to_regclass('items_label') AS i, to_regclass('posts') AS p`);
          assert.deepEqual(index, { i: null, p: null }, 'no migration ran');
        });
      }),
    );
  }

  it(
    'postgres: no record table and no CREATE on the schema: exit 3 naming CREATE, nothing run',
    {
      skip: noServer,
    },
    () =>
      withTestDb('postgres', async (db) => {
        await withRole(
          db.url,
          (r) => `REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT USAGE ON SCHEMA public TO ${r}`,
          async (roleUrl) => {
            const r = await runCli(['head', '--url', roleUrl, '--dir', fixture('basic')]);
            assert.equal(r.code, 3, r.stderr);
            assert.match(r.stderr, /DATABASE_REFUSED/);
            assert.match(r.stderr, /CREATE/);
          },
        );
        assert.deepEqual(await db.tables(), []);
      }),
  );
});
