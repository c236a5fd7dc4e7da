/**
 * Through PgBouncer: in transaction mode the migration lock cannot hold (a client's statements
 * go to any server session), so the runner must refuse before it takes a lock, and never leave
 * one behind or apply a migration twice. In session mode and direct, no false alarm.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { runCli } from './support/cli.ts';
import { createPostgresDatabase, hasPostgresServer, type TestDatabase } from './support/postgres.ts';

const PGBOUNCER = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((p) => spawnSync(p, ['--version']).status === 0);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** The server TEST_POSTGRES_URL names: PgBouncer forwards there, whatever its host and port. */
function serverAddress(): { host: string; port: string } {
  const url = new URL(process.env.TEST_POSTGRES_URL ?? 'postgres://127.0.0.1');
  return { host: url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port: url.port || '5432' };
}

/**
 * A PgBouncer of our own in front of the server TEST_POSTGRES_URL names, as `nobody` (it refuses to run as root).
 * `settings`: more lines for its [pgbouncer] section (a smaller pool, round robin).
 */
async function startBouncer(
  mode: 'transaction' | 'session',
  settings: Record<string, string | number> = {},
): Promise<{ port: number; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'mig-pgbouncer-'));
  chmodSync(dir, 0o755);
  const port = await freePort();
  writeFileSync(join(dir, 'userlist.txt'), '"postgres" ""\n');
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    `[databases]
* = host=${serverAddress().host} port=${serverAddress().port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
auth_file = ${join(dir, 'userlist.txt')}
pool_mode = ${mode}
max_client_conn = 200
ignore_startup_parameters = extra_float_digits,options,client_connection_check_interval
${Object.entries({ default_pool_size: 20, ...settings })
  .map(([k, v]) => `${k} = ${v}`)
  .join('\n')}
`,
  );
  const child: ChildProcess = spawn(PGBOUNCER as string, ['-u', 'nobody', join(dir, 'pgbouncer.ini')], {
    stdio: 'ignore',
  });
  for (let i = 0; ; i++) {
    const probe = postgres({
      host: '127.0.0.1',
      port,
      username: 'postgres',
      database: 'postgres',
      max: 1,
      connect_timeout: 1,
    });
    try {
      await probe`SELECT 1`;
      break;
    } catch (error) {
      if (i > 50) throw error;
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      await probe.end({ timeout: 1 });
    }
  }
  return {
    port,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('poolers', { skip: (!hasPostgresServer || !PGBOUNCER) && 'needs a PostgreSQL server and pgbouncer' }, () => {
  let db: TestDatabase;
  let dir: string;
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

  /** 4 runners at once, `rounds` times, each round adding one migration; what they did. */
  async function rounds(url: string, count: number) {
    dir = mkdtempSync(join(tmpdir(), 'mig-pool-'));
    await admin`TRUNCATE applied_log`;
    await admin`DROP TABLE IF EXISTS schema_migrations`;
    const codes: number[] = [];
    const outputs: string[] = [];
    let locksLeft = 0;
    try {
      for (let r = 1; r <= count; r++) {
        const rev = `2025010100${String(r).padStart(4, '0')}`;
        writeFileSync(join(dir, `${rev}_r.up.sql`), `INSERT INTO applied_log VALUES ('${rev}');`);
        writeFileSync(join(dir, `${rev}_r.down.sql`), `DELETE FROM applied_log WHERE revision = '${rev}';`);
        const results = await Promise.all(
          Array.from({ length: 4 }, () => runCli(['head', '--url', url, '--dir', dir, '--lock-timeout=20'])),
        );
        for (const x of results) {
          codes.push(x.code);
          outputs.push(x.stderr);
        }
        const [row] =
          await admin`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`;
        locksLeft += row?.n ?? 0;
      }
      const twice = await admin`SELECT revision FROM applied_log GROUP BY revision HAVING count(*) > 1`;
      return { codes, outputs, locksLeft, doubles: twice.length };
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

  /**
   * One runner at a time, `runs` times, alternating a transactional folder and a no-transaction
   * one (CREATE INDEX CONCURRENTLY): each run's exit, whether anything of either was applied or
   * recorded, and the advisory locks on this database read on the server itself.
   */
  async function lone(url: string, runs: number) {
    const folders = [
      folder('tx', 'CREATE TABLE lone_tx (id int);'),
      folder(
        'cic',
        '-- migrate:no-transaction\nCREATE TABLE lone_cic (id int);\nCREATE INDEX CONCURRENTLY lone_cic_id ON lone_cic (id);\n',
      ),
    ];
    const results: Array<{ code: number; stderr: string; made: boolean; recorded: boolean; locks: number }> = [];
    try {
      for (let i = 0; i < runs; i++) {
        await admin`DROP TABLE IF EXISTS schema_migrations, lone_tx, lone_cic`;
        const r = await runCli(['head', '--url', url, '--dir', folders[i % 2] as string, '--lock-timeout=20']);
        const [row] = await admin`
          SELECT to_regclass('lone_tx') IS NOT NULL OR to_regclass('lone_cic') IS NOT NULL AS made,
            to_regclass('schema_migrations') IS NOT NULL AS recorded,
            (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory'
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS locks`;
        results.push({ code: r.code, stderr: r.stderr, made: row?.made, recorded: row?.recorded, locks: row?.locks });
      }
    } finally {
      for (const d of folders) rmSync(d, { recursive: true, force: true });
    }
    return results;
  }

  const pool = { default_pool_size: 4, min_pool_size: 4 };

  /** Other clients of the pool (the bot) each reading in a loop with short pauses, until stopped. */
  function traffic(url: string, count: number) {
    let stop = false;
    const clients = Array.from({ length: count }, () => postgres(url, { max: 1, prepare: false, fetch_types: false }));
    const loops = clients.map(async (c) => {
      while (!stop) {
        await c`SELECT pg_sleep(0.002)`;
        await new Promise((r) => setTimeout(r, Math.random() * 5));
      }
    });
    return async () => {
      stop = true;
      await Promise.all(loops);
      await Promise.all(clients.map((c) => c.end({ timeout: 1 })));
    };
  }

  const cases: Array<{ how: string; settings: Record<string, number>; runs: number; busy: number }> = [
    { how: 'most recent first (the default)', settings: {}, runs: 20, busy: 0 },
    { how: 'rotated (server_round_robin)', settings: { server_round_robin: 1 }, runs: 6, busy: 0 },
    { how: 'most recent first, 2 other clients busy on it', settings: {}, runs: 6, busy: 2 },
  ];
  for (const c of cases) {
    it(`transaction mode, a lone runner, a pool of 4 server sessions handed out ${c.how}: always refused, nothing applied, no lock left`, async () => {
      const bouncer = await startBouncer('transaction', { ...pool, ...c.settings });
      try {
        const url = `postgres://postgres@127.0.0.1:${bouncer.port}/${new URL(db.url).pathname.slice(1)}`;
        assert.ok((await prewarm(url, 4)) >= 4, 'the pool should hold 4 server sessions');
        const stop = traffic(url, c.busy);
        const results = await lone(url, c.runs).finally(stop);
        for (const r of results) {
          assert.equal(r.code, 2, r.stderr);
          assert.match(r.stderr, /\[TRANSACTION_POOLER\]/);
          assert.match(r.stderr, /direct URL to the server, or a session-mode pool/);
          assert.deepEqual(
            { made: r.made, recorded: r.recorded, locks: r.locks },
            { made: false, recorded: false, locks: 0 },
          );
        }
        assert.ok((await prewarm(url, 4)) >= 4, 'the pool should still hold 4 server sessions');
      } finally {
        await bouncer.stop();
      }
    });
  }

  it('session mode, the same pool of 4: a lone runner is never refused, each folder applies, no lock left', async () => {
    const bouncer = await startBouncer('session', pool);
    try {
      const url = `postgres://postgres@127.0.0.1:${bouncer.port}/${new URL(db.url).pathname.slice(1)}`;
      assert.ok((await prewarm(url, 4)) >= 4, 'the pool should hold 4 server sessions');
      for (const r of await lone(url, 20)) {
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

  /** One server session in the pool, and a wait for one far longer than a run: only ever held, never waited out. */
  const single = { default_pool_size: 1, query_wait_timeout: 60 };

  it('session mode, a pool of one server session (ours holds it, the probe can never get one): each folder applies at once, no lock left', async () => {
    const bouncer = await startBouncer('session', single);
    try {
      const url = `postgres://postgres@127.0.0.1:${bouncer.port}/${new URL(db.url).pathname.slice(1)}`;
      const started = Date.now();
      const results = await lone(url, 2);
      const seconds = (Date.now() - started) / 1000;
      for (const r of results) {
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(
          { made: r.made, recorded: r.recorded, locks: r.locks },
          { made: true, recorded: true, locks: 0 },
        );
      }
      // Both runs together, well under the one query_wait_timeout the probe would otherwise wait out.
      assert.ok(seconds < 40, `took ${seconds} s`);
    } finally {
      await bouncer.stop();
    }
  });

  it('transaction mode, a pool of one server session: the probe gets ours, refused (exit 2), nothing applied, no lock left', async () => {
    const bouncer = await startBouncer('transaction', single);
    try {
      const url = `postgres://postgres@127.0.0.1:${bouncer.port}/${new URL(db.url).pathname.slice(1)}`;
      for (const r of await lone(url, 4)) {
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /\[TRANSACTION_POOLER\]/);
        assert.deepEqual(
          { made: r.made, recorded: r.recorded, locks: r.locks },
          { made: false, recorded: false, locks: 0 },
        );
      }
    } finally {
      await bouncer.stop();
    }
  });

  it('transaction mode: refused (exit 2, TRANSACTION_POOLER), never applied twice, no lock left behind', async () => {
    const bouncer = await startBouncer('transaction');
    try {
      const r = await rounds(`postgres://postgres@127.0.0.1:${bouncer.port}/${new URL(db.url).pathname.slice(1)}`, 10);
      assert.equal(r.doubles, 0);
      assert.equal(r.locksLeft, 0);
      for (const [i, code] of r.codes.entries()) {
        assert.ok(code === 0 || code === 2, r.outputs[i]);
        if (code === 2) assert.match(r.outputs[i] as string, /\[TRANSACTION_POOLER\]/);
      }
      assert.ok(r.codes.includes(2), 'the pooler was never detected');
    } finally {
      await bouncer.stop();
    }
  });

  it('session mode and direct: no refusal', async () => {
    const bouncer = await startBouncer('session');
    try {
      const name = new URL(db.url).pathname.slice(1);
      for (const url of [`postgres://postgres@127.0.0.1:${bouncer.port}/${name}`, db.url]) {
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
