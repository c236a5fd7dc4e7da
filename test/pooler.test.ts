/**
 * Through PgBouncer (Debian's, started by the test on a free port). Behind a pooler the runner
 * holds no session lock: each step takes its exclusion in its own transaction and checks the
 * record there, so a transaction-mode pool migrates as safely as a direct URL, busy or idle,
 * with several runners at once or one killed mid-step, and no advisory lock outlives a run
 * (issue #25). A no-transaction file cannot run through a transaction-mode pool: refused before
 * any step. Session mode and direct: as ever.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { ROOT, runCli, startCli } from './support/cli.ts';
import { createPostgresDatabase, hasPostgresServer, type TestDatabase } from './support/postgres.ts';
import { PGBOUNCER, startBouncer as start } from './support/pgbouncer.ts';

const SERVER = process.env.TEST_POSTGRES_URL;

/** A bouncer in front of the test server, and the test database's URL through it. */
async function startBouncer(db: TestDatabase, mode: 'transaction' | 'session', settings: Record<string, number> = {}) {
  const bouncer = await start(SERVER as string, mode, settings);
  return { ...bouncer, url: bouncer.through(db.url) };
}

describe('poolers', { skip: (!hasPostgresServer || !PGBOUNCER) && 'needs a PostgreSQL server and pgbouncer' }, () => {
  let db: TestDatabase;
  let admin: postgres.Sql;
  before(async () => {
    db = await createPostgresDatabase();
    admin = postgres(db.url, { max: 1, onnotice: () => {} });
    await admin`CREATE TABLE applied_log (revision text)`;
  });
  after(async () => {
    await admin.end();
    await db.drop();
  });

  /** Advisory locks held on the test database now, read on the server itself. */
  async function advisoryLocks(): Promise<number> {
    const [row] = await admin`
      SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`;
    return row?.n ?? 0;
  }

  /** Revision `r` of a growing folder: it logs itself, so a revision run twice shows. */
  function addRevision(dir: string, r: number, up = ''): string {
    const rev = `2025010100${String(r).padStart(4, '0')}`;
    writeFileSync(join(dir, `${rev}_r.up.sql`), `${up}INSERT INTO applied_log VALUES ('${rev}');`);
    writeFileSync(join(dir, `${rev}_r.down.sql`), `DELETE FROM applied_log WHERE revision = '${rev}';`);
    return rev;
  }

  async function recorded(): Promise<string[]> {
    const rows = await admin`SELECT revision FROM schema_migrations ORDER BY revision`.catch(() => []);
    return rows.map((r) => String(r.revision));
  }

  async function reset(): Promise<void> {
    await admin`TRUNCATE applied_log`;
    await admin`DROP TABLE IF EXISTS schema_migrations, lone_tx, lone_cic, killed`;
  }

  /** 4 runners at once, `rounds` times, each round adding one migration; what they did. */
  async function rounds(url: string, count: number) {
    const dir = mkdtempSync(join(tmpdir(), 'mig-pool-'));
    await reset();
    const codes: number[] = [];
    const outputs: string[] = [];
    let locksLeft = 0;
    try {
      for (let r = 1; r <= count; r++) {
        addRevision(dir, r);
        const results = await Promise.all(
          Array.from({ length: 4 }, () => runCli(['head', '--url', url, '--dir', dir, '--lock-timeout=20'])),
        );
        for (const x of results) {
          codes.push(x.code);
          outputs.push(x.stderr);
        }
        locksLeft += await advisoryLocks();
      }
      const doubles = await ranTwice();
      const logged = await admin`SELECT count(DISTINCT revision)::int AS n FROM applied_log`;
      return { codes, outputs, locksLeft, doubles, logged: logged[0]?.n, recorded: await recorded() };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** A folder of one migration, written once per test. */
  function folder(name: string, up: string): string {
    const d = mkdtempSync(join(tmpdir(), 'mig-pool-'));
    writeFileSync(join(d, `20250101_000000_${name}.up.sql`), up);
    writeFileSync(join(d, `20250101_000000_${name}.down.sql`), '-- nothing');
    return d;
  }

  /**
   * The pool holds several idle server sessions: `count` clients each hold one at once (a
   * transaction-mode pool would otherwise hand one client the same session every time), then go.
   * Returns how many server sessions of this database are left open, idle.
   */
  async function prewarm(url: string, count: number): Promise<number> {
    const clients = Array.from({ length: count }, () => postgres(url, { max: 1, prepare: false, fetch_types: false }));
    await Promise.all(clients.map((c) => c`SELECT pg_sleep(0.3)`));
    await Promise.all(clients.map((c) => c.end({ timeout: 1 })));
    const [row] = await admin`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()`;
    return row?.n ?? 0;
  }

  const CIC =
    '-- migrate:no-transaction\nCREATE TABLE lone_cic (id int);\nCREATE INDEX CONCURRENTLY lone_cic_id ON lone_cic (id);\n';

  /**
   * One runner at a time, `runs` times, alternating a transactional folder and a no-transaction
   * one (CREATE INDEX CONCURRENTLY): each run's exit, whether anything of either was applied or
   * recorded, and the advisory locks on this database read on the server itself.
   */
  async function lone(url: string, runs: number) {
    const folders = [folder('tx', 'CREATE TABLE lone_tx (id int);'), folder('cic', CIC)];
    const results: Array<{
      cic: boolean;
      code: number;
      stderr: string;
      made: boolean;
      recorded: boolean;
      locks: number;
    }> = [];
    try {
      for (let i = 0; i < runs; i++) {
        await reset();
        const r = await runCli(['head', '--url', url, '--dir', folders[i % 2] as string, '--lock-timeout=20']);
        const [row] = await admin`
          SELECT to_regclass('lone_tx') IS NOT NULL OR to_regclass('lone_cic') IS NOT NULL AS made`;
        const rows = await recorded();
        results.push({
          cic: i % 2 === 1,
          code: r.code,
          stderr: r.stderr,
          made: row?.made,
          recorded: rows.length > 0,
          locks: await advisoryLocks(),
        });
      }
    } finally {
      for (const d of folders) rmSync(d, { recursive: true, force: true });
    }
    return results;
  }

  /** Other clients of the pool (the bot) each querying every few ms, until stopped. */
  function traffic(url: string, count: number) {
    let stop = false;
    const clients = Array.from({ length: count }, () => postgres(url, { max: 1, prepare: false, fetch_types: false }));
    const loops = clients.map(async (c) => {
      while (!stop) {
        await c`SELECT pg_sleep(0.002)`;
        await new Promise((r) => setTimeout(r, 5));
      }
    });
    return async () => {
      stop = true;
      await Promise.all(loops);
      await Promise.all(clients.map((c) => c.end({ timeout: 1 })));
    };
  }

  const pool = { default_pool_size: 4, min_pool_size: 4 };

  /** A transaction-mode bouncer (`settings`: its pool) and an empty folder, the logs reset: one test's, removed after it. */
  async function withPool(
    settings: Record<string, number>,
    fn: (url: string, dir: string) => Promise<void>,
  ): Promise<void> {
    const bouncer = await startBouncer(db, 'transaction', settings);
    const dir = mkdtempSync(join(tmpdir(), 'mig-pool-'));
    try {
      await reset();
      await fn(bouncer.url, dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await bouncer.stop();
    }
  }

  /** Revision `r` of the folder as a no-transaction file (CREATE INDEX CONCURRENTLY). */
  function addNoTransaction(dir: string, r: number): void {
    const stem = `2025010100${String(r).padStart(4, '0')}_cic`;
    writeFileSync(join(dir, `${stem}.up.sql`), CIC);
    writeFileSync(join(dir, `${stem}.down.sql`), 'DROP TABLE lone_cic;');
  }

  /** How many revisions logged themselves more than once. */
  async function ranTwice(): Promise<number> {
    return (await admin`SELECT revision FROM applied_log GROUP BY revision HAVING count(*) > 1`).length;
  }

  // check used to hang here: PgBouncer 1.18 stopped answering its nine catalog queries sent at once.
  it(
    'transaction mode that discards prepared statements after every transaction: check --url through it proves the folder (its catalog reads one by one, prepared again where dropped)',
    {
      timeout: 120_000,
    },
    () =>
      withPool({ server_reset_query_always: 1 }, async (url, dir) => {
        for (const r of [1, 2, 3]) {
          const stem = `2025010100000${r}_t${r}`;
          writeFileSync(join(dir, `${stem}.up.sql`), `CREATE TABLE t${r} (id int PRIMARY KEY, note text);`);
          writeFileSync(join(dir, `${stem}.down.sql`), `DROP TABLE t${r};`);
        }
        const checked = await runCli(['check', '--url', url, '--dir', dir, '--no-data']);
        assert.equal(checked.code, 0, checked.stdout + checked.stderr);
        assert.match(checked.stdout, /round trips: postgres 3\/3/);
      }),
  );

  it('transaction mode, an idle pool of 4: head applies 3 revisions (exit 0, with a note); 4 runners at once record each revision once, all exit 0; no advisory lock left', () =>
    withPool(pool, async (url, dir) => {
      assert.ok((await prewarm(url, 4)) >= 4, 'the pool should hold 4 server sessions');
      await reset();
      for (const r of [1, 2, 3]) addRevision(dir, r);
      const one = await runCli(['head', '--url', url, '--dir', dir]);
      assert.equal(one.code, 0, one.stderr);
      assert.match(one.stderr, /is a pooler \(transaction mode, as far as the runner can tell\).*\[POOLER\]/);
      assert.deepEqual(await recorded(), ['20250101000001', '20250101000002', '20250101000003']);
      assert.equal(await advisoryLocks(), 0);

      const r = await rounds(url, 4);
      assert.deepEqual(r.codes, Array(16).fill(0), r.outputs.join('\n'));
      assert.equal(r.doubles, 0, 'a revision ran twice');
      assert.equal(r.logged, 4);
      assert.deepEqual(r.recorded, ['20250101000001', '20250101000002', '20250101000003', '20250101000004']);
      assert.equal(r.locksLeft, 0);
    }));

  it('transaction mode, a busy pool (one server session, 4 clients querying every 5 ms), 8 runs: each applies all its pending revisions or none, exit 0 exactly when it did; no lock outlives a run; a direct head --lock-timeout=5 then finishes', () =>
    withPool({ default_pool_size: 1, query_wait_timeout: 60 }, async (url, dir) => {
      const stop = traffic(url, 4);
      try {
        let n = 0;
        for (let run = 0; run < 8; run++) {
          const added = [addRevision(dir, ++n), addRevision(dir, ++n)];
          const r = await runCli(['head', '--url', url, '--dir', dir]);
          const rows = await recorded();
          const applied = added.filter((x) => rows.includes(x));
          assert.ok(
            applied.length === 0 || applied.length === 2,
            `run ${run}: ${applied.length} of 2 applied\n${r.stderr}`,
          );
          assert.equal(r.code === 0, applied.length === 2, `run ${run}: exit ${r.code}\n${r.stderr}`);
          assert.equal(await advisoryLocks(), 0, `run ${run} left an advisory lock`);
        }
        addRevision(dir, ++n);
        const direct = await runCli(['head', '--url', db.url, '--dir', dir, '--lock-timeout=5']);
        assert.equal(direct.code, 0, direct.stderr);
        assert.equal((await recorded()).length, n);
        assert.equal(await ranTwice(), 0);
      } finally {
        await stop();
      }
    }));

  it('a runner killed with kill -9 in the middle of a step through the pool: the next runner, pooled then direct, finishes within 10 s; the killed step is whole or absent', () =>
    withPool(pool, async (url, dir) => {
      addRevision(dir, 1);
      // Slow only while slow_marker says so: the runs after the kill are quick.
      await admin`DROP TABLE IF EXISTS slow_marker`;
      await admin`CREATE TABLE slow_marker (n int)`;
      await admin`INSERT INTO slow_marker VALUES (30)`;
      addRevision(
        dir,
        2,
        'CREATE TABLE killed (id int);\nINSERT INTO killed VALUES (1);\nSELECT pg_sleep((SELECT coalesce(max(n), 0) FROM slow_marker));\n',
      );
      addRevision(dir, 3);
      const runner = startCli(['head', '--url', url, '--dir', dir]);
      // Inside revision 2's sleep: its session is seen running it.
      for (let i = 0; ; i++) {
        const [row] = await admin`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND state = 'active' AND query LIKE '%pg_sleep((SELECT%' AND pid <> pg_backend_pid()`;
        if ((row?.n ?? 0) > 0) break;
        assert.ok(i < 300, 'the runner never reached revision 2');
        await new Promise((r) => setTimeout(r, 50));
      }
      runner.child.kill('SIGKILL');
      await runner.done;
      await admin`UPDATE slow_marker SET n = 0`;

      for (const to of [url, db.url]) {
        const next = startCli(['head', '--url', to, '--dir', dir]);
        const timer = setTimeout(() => next.child.kill('SIGKILL'), 10_000);
        const r = await next.done;
        clearTimeout(timer);
        assert.equal(r.code, 0, `did not finish within 10 s, or failed:\n${r.stderr}`);
      }
      assert.deepEqual(await recorded(), ['20250101000001', '20250101000002', '20250101000003']);
      // Revision 2 ran once, whole: its table holds its one row, and it logged itself once.
      assert.deepEqual(
        (await admin`SELECT id FROM killed`).map((r) => r.id),
        [1],
      );
      assert.equal(await ranTwice(), 0);
      assert.equal(await advisoryLocks(), 0);
    }));

  it('a pending no-transaction file through the transaction pool: exit 2 before any step, naming the file and MIGRATE_DATABASE_URL', () =>
    withPool(pool, async (url, dir) => {
      assert.ok((await prewarm(url, 4)) >= 4, 'the pool should hold 4 server sessions');
      addRevision(dir, 1);
      addNoTransaction(dir, 2);
      const r = await runCli(['head', '--url', url, '--dir', dir]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /20250101000002_cic\.up\.sql runs outside a transaction/);
      assert.match(r.stderr, /MIGRATE_DATABASE_URL/);
      assert.match(r.stderr, /\[TRANSACTION_POOLER\]/);
      assert.deepEqual(await recorded(), [], 'nothing was applied, not even the revision before it');
      assert.equal(await advisoryLocks(), 0);
    }));

  it('the entrypoint with DATABASE_URL at the transaction pool and MIGRATE_DATABASE_URL at the server: migrates through the server, then runs the command with DATABASE_URL', () =>
    withPool(pool, async (url, dir) => {
      addRevision(dir, 1);
      // A no-transaction file: the pool would refuse it, so this applies only through the server.
      addNoTransaction(dir, 2);
      const env: Record<string, string | undefined> = {
        ...process.env,
        DATABASE_URL: url,
        MIGRATE_DATABASE_URL: db.url,
        MIGRATIONS_DIR: dir,
        MIGRATIONS_TABLE: undefined,
      };
      for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
      const child = spawn(
        join(ROOT, 'scripts', 'docker-entrypoint.sh'),
        ['sh', '-c', 'echo "the bot starts with $DATABASE_URL"'],
        { env: env as NodeJS.ProcessEnv },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      const code = await new Promise((r) => child.on('close', r));
      assert.equal(code, 0, err);
      assert.match(err, /\(from MIGRATE_DATABASE_URL\)/);
      assert.doesNotMatch(err, /is a pooler/);
      assert.equal(out.trim().split('\n').at(-1), `the bot starts with ${url}`);
      assert.deepEqual(await recorded(), ['20250101000001', '20250101000002']);
    }));

  const cases: Array<{ how: string; settings: Record<string, number>; runs: number; busy: number }> = [
    { how: 'most recent first (the default)', settings: {}, runs: 6, busy: 0 },
    { how: 'rotated (server_round_robin)', settings: { server_round_robin: 1 }, runs: 4, busy: 0 },
    { how: 'most recent first, 2 other clients busy on it', settings: {}, runs: 4, busy: 2 },
  ];
  for (const c of cases) {
    it(`transaction mode, a lone runner, a pool of 4 server sessions handed out ${c.how}: the transactional folder applies, the no-transaction one is refused with nothing applied, no lock left`, async () => {
      const bouncer = await startBouncer(db, 'transaction', { ...pool, ...c.settings });
      try {
        assert.ok((await prewarm(bouncer.url, 4)) >= 4, 'the pool should hold 4 server sessions');
        const stop = traffic(bouncer.url, c.busy);
        const results = await lone(bouncer.url, c.runs).finally(stop);
        for (const r of results) {
          if (r.cic) {
            assert.equal(r.code, 2, r.stderr);
            assert.match(r.stderr, /\[TRANSACTION_POOLER\]/);
            assert.deepEqual({ made: r.made, recorded: r.recorded }, { made: false, recorded: false });
          } else {
            assert.equal(r.code, 0, r.stderr);
            assert.deepEqual({ made: r.made, recorded: r.recorded }, { made: true, recorded: true });
          }
          assert.equal(r.locks, 0);
        }
        assert.ok((await prewarm(bouncer.url, 4)) >= 4, 'the pool should still hold 4 server sessions');
      } finally {
        await bouncer.stop();
      }
    });
  }

  it('session mode, the same pool of 4: a lone runner is never refused, each folder applies, no lock left', async () => {
    const bouncer = await startBouncer(db, 'session', pool);
    try {
      assert.ok((await prewarm(bouncer.url, 4)) >= 4, 'the pool should hold 4 server sessions');
      for (const r of await lone(bouncer.url, 10)) {
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(
          { made: r.made, recorded: r.recorded, locks: r.locks },
          { made: true, recorded: true, locks: 0 },
        );
      }
    } finally {
      await bouncer.stop();
    }
  });

  it('session mode, a pool of one server session (ours holds it, the probe can never get one): each folder applies, no lock left', async () => {
    const bouncer = await startBouncer(db, 'session', { default_pool_size: 1, query_wait_timeout: 60 });
    try {
      for (const r of await lone(bouncer.url, 2)) {
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(
          { made: r.made, recorded: r.recorded, locks: r.locks },
          { made: true, recorded: true, locks: 0 },
        );
      }
    } finally {
      await bouncer.stop();
    }
  });

  it('session mode and direct: 4 runners at once, no refusal, each revision once', async () => {
    const bouncer = await startBouncer(db, 'session');
    try {
      for (const url of [bouncer.url, db.url]) {
        const r = await rounds(url, 3);
        assert.deepEqual(r.codes, Array(12).fill(0), r.outputs.join('\n'));
        assert.equal(r.doubles, 0);
        assert.equal(r.locksLeft, 0);
      }
    } finally {
      await bouncer.stop();
    }
  });
});
