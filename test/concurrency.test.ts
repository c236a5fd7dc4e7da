/**
 * Races and crashes, for real: several runner processes at once on one database, a runner
 * killed with SIGKILL in the middle of a migration, and a waiting runner next to a holder
 * that builds an index CONCURRENTLY.
 *
 * PostgreSQL here needs several sessions at once; the embedded PGlite serves all its connections
 * from one shared session (advisory locks never exclude), so without TEST_POSTGRES_URL these are skipped (and CI, which sets it, fails on a skip).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fixture, startCli } from './support/cli.ts';
import { TEST_DIALECTS, withTestDb, type TestDb } from './support/db.ts';
import { hasPostgresServer } from './support/postgres.ts';

const needsServer = (dialect: string) => dialect === 'postgres' && !hasPostgresServer;

/** Write through the test's own connection (the runner is not involved). */
async function exec(db: TestDb, sql: string): Promise<void> {
  if (db.dialect === 'sqlite') {
    const { default: Database } = await import('better-sqlite3');
    const d = new Database(db.url.slice('sqlite:'.length), { timeout: 10_000 });
    try {
      d.exec(sql);
    } finally {
      d.close();
    }
  } else {
    const { default: postgres } = await import('postgres');
    const c = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      await c.unsafe(sql);
    } finally {
      await c.end({ timeout: 5 });
    }
  }
}

async function until(what: string, test: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const dialect of TEST_DIALECTS) {
  describe(`concurrency on ${dialect}`, {
    skip:
      needsServer(dialect) &&
      'needs a PostgreSQL server (TEST_POSTGRES_URL): PGlite serves every connection from one shared session, so advisory locks cannot exclude',
  }, () => {
    it('8 runners started at once: all exit 0, each revision recorded exactly once, schema at head', () =>
      withTestDb(dialect, async (db) => {
        const runners = Array.from({ length: 8 }, () => startCli(['head', '--url', db.url, '--dir', fixture('basic')]));
        const results = await Promise.all(runners.map((r) => r.done));
        for (const r of results) assert.equal(r.code, 0, r.stderr);
        const applied = results.flatMap((r) => r.stdout.split('\n').filter((l) => l.startsWith('up ')));
        assert.deepEqual(
          applied.map((l) => l.split(/\s+/)[1]).sort(),
          ['000001', '000002', '000003'],
          'each revision applied by exactly one runner',
        );
        assert.equal(results.filter((r) => r.stdout.startsWith('nothing to do')).length >= 1, true);
        assert.deepEqual(
          (await db.records()).map((x) => [x.revision, x.seq]),
          [
            ['000001', 1],
            ['000002', 2],
            ['000003', 3],
          ],
        );
        assert.deepEqual(await db.tables(), ['posts', 'schema_migrations', 'users']);
      }));

    it('a runner killed with SIGKILL mid-migration leaves the last recorded revision; the next run reaches head', () =>
      withTestDb(dialect, async (db) => {
        // Slow: pg_sleep seconds on PostgreSQL, rows counted on SQLite.
        await exec(
          db,
          `CREATE TABLE slow_marker (n bigint); INSERT INTO slow_marker VALUES (${dialect === 'postgres' ? 60 : 5_000_000_000});`,
        );
        const victim = startCli(['head', '--url', db.url, '--dir', fixture('sleepy')]);
        await until('the first revision to commit', () => victim.stdout().includes('up    000001'));
        await new Promise((r) => setTimeout(r, 700)); // well inside 000002 now
        victim.child.kill('SIGKILL');
        const killed = await victim.done;
        assert.notEqual(killed.code, 0);
        assert.deepEqual(
          (await db.records()).map((x) => x.revision),
          ['000001'],
          'the last recorded revision',
        );
        assert.equal((await db.tables()).includes('second'), false, 'nothing of the killed migration');
        await exec(db, 'UPDATE slow_marker SET n = 0;');
        const next = startCli(['head', '--url', db.url, '--dir', fixture('sleepy'), '--lock-timeout=30']);
        const r = await next.done;
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^up {4}000002 {2}slow .*\nup {4}000003 {2}after .*\nat 000003/);
        assert.deepEqual(
          (await db.records()).map((x) => x.revision),
          ['000001', '000002', '000003'],
        );
      }));

    it('a runner waiting for the migration lock says so, naming the holder; LOCK_TIMEOUT names it too', () =>
      withTestDb(dialect, async (db) => {
        await exec(
          db,
          `CREATE TABLE slow_marker (n bigint); INSERT INTO slow_marker VALUES (${dialect === 'postgres' ? 60 : 5_000_000_000});`,
        );
        const holder = startCli(['head', '--url', db.url, '--dir', fixture('sleepy')]);
        try {
          await until('the first revision to commit', () => holder.stdout().includes('up    000001'));
          const waiter = startCli(['head', '--url', db.url, '--dir', fixture('sleepy'), '--lock-timeout=8']);
          const r = await waiter.done;
          assert.equal(r.code, 3, r.stderr);
          const waits = r.stderr.match(/^waiting for the migration lock on .*: held by pid \d+ .*$/gm) ?? [];
          assert.ok(waits.length >= 1, r.stderr);
          assert.match(waits[0] as string, /\(\d+ s so far, --lock-timeout 8 s\)/);
          assert.match(r.stderr, /^error: pid \d+ \(.*since .* holds the migration lock .*\[LOCK_TIMEOUT\]$/m);
          if (dialect === 'sqlite')
            assert.match(waits[0] as string, new RegExp(`held by pid ${holder.child.pid} \\(host `));
          else assert.match(waits[0] as string, /held by pid \d+ \(application_name "[^"]*", user \w+, session since /);
        } finally {
          holder.child.kill('SIGKILL');
          await holder.done;
        }
      }));

    it('a runner killed inside a no-transaction file leaves it recorded as failed, counting the statements that completed', () =>
      withTestDb(dialect, async (db) => {
        await exec(
          db,
          `CREATE TABLE slow_marker (n bigint); INSERT INTO slow_marker VALUES (${dialect === 'postgres' ? 60 : 5_000_000_000});`,
        );
        const dir = fixture('sleepy-no-transaction');
        const victim = startCli(['head', '--url', db.url, '--dir', dir]);
        await until('the first revision to commit', () => victim.stdout().includes('up    000001'));
        await new Promise((r) => setTimeout(r, 700)); // inside the slow second statement of 000002 now
        victim.child.kill('SIGKILL');
        assert.notEqual((await victim.done).code, 0);
        const rows = await db.query<{
          revision: string;
          status: string;
          statements_run: unknown;
          error: string | null;
        }>('SELECT revision, status, statements_run, error FROM schema_migrations ORDER BY seq');
        assert.deepEqual(
          rows.map((r) => [r.revision, r.status, r.statements_run === null ? null : Number(r.statements_run)]),
          [
            ['000001', 'applied', null],
            ['000002', 'failed', 1],
          ],
          'the statement that completed is counted; the interrupted one is not',
        );
        assert.match(
          rows[1]?.error ?? '',
          /^applying: the runner on \S+ \(pid \d+, since [^)]+\) is running this file, or stopped before its end/,
        );
        const tables = await db.tables();
        assert.equal(tables.includes('nt_one'), true, 'the first statement took effect');
        assert.equal(tables.includes('nt_three'), false);
        await exec(db, 'UPDATE slow_marker SET n = 0;');
        const next = await startCli(['head', '--url', db.url, '--dir', dir]).done;
        assert.equal(next.code, 2, 'refuses to carry on past a half-run file');
        assert.match(
          next.stderr,
          /000002_slow\.up\.sql stopped part-way while applying \(1 statement\(s\) ran\).*\[FAILED_MIGRATION\]/s,
        );
      }));

    it('a waiting runner does not stall a holder that builds an index concurrently', () =>
      withTestDb(dialect, async (db) => {
        const holder = startCli(['head', '--url', db.url, '--dir', fixture('concurrent-index')]);
        await until('the holder to start 000002', () => holder.stdout().includes('up    000001'));
        const waiter = startCli(['head', '--url', db.url, '--dir', fixture('concurrent-index')]);
        // If the waiter held a snapshot while polling, CREATE INDEX CONCURRENTLY would wait for
        // it, and it for the lock: neither would ever finish, and this test would time out.
        const [h, w] = await Promise.all([holder.done, waiter.done]);
        assert.equal(h.code, 0, h.stderr);
        assert.equal(w.code, 0, w.stderr);
        assert.match(h.stdout, /up {4}000002 {2}label_index/);
        assert.equal(w.stdout, 'nothing to do; at 000002 (label_index)\n');
        assert.deepEqual(
          (await db.records()).map((x) => x.revision),
          ['000001', '000002'],
        );
      }));
  });
}
