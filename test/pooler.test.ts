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

/** A PgBouncer of our own in front of 127.0.0.1:5432, as `nobody` (it refuses to run as root). */
async function startBouncer(mode: 'transaction' | 'session'): Promise<{ port: number; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'mig-pgbouncer-'));
  chmodSync(dir, 0o755);
  const port = await freePort();
  writeFileSync(join(dir, 'userlist.txt'), '"postgres" ""\n');
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    `[databases]
* = host=127.0.0.1 port=5432

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
auth_file = ${join(dir, 'userlist.txt')}
pool_mode = ${mode}
default_pool_size = 20
max_client_conn = 200
ignore_startup_parameters = extra_float_digits,options,client_connection_check_interval
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
