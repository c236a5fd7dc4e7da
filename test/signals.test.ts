/**
 * Stopping a migration the way supervisors do: SIGTERM to the process started as documented
 * (`node --import tsx scripts/migrate.ts`, and the Docker entrypoint, which starts it that way
 * and passes the signal on). The migration must stop with it, not run on orphaned.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fixture, ROOT, runCli, startCli } from './support/cli.ts';
import { TEST_DIALECTS, withTestDb, type TestDb } from './support/db.ts';
import { hasPostgresServer } from './support/postgres.ts';

const ENTRYPOINT = join(ROOT, 'scripts', 'docker-entrypoint.sh');
const SLEEPY = fixture('sleepy');

/** The sleepy fixture's second revision runs long while slow_marker says so. */
async function setSlow(db: TestDb, slow: boolean): Promise<void> {
  const n = slow ? (db.dialect === 'postgres' ? 60 : 5_000_000_000) : 0;
  const sql = `CREATE TABLE IF NOT EXISTS slow_marker (n bigint); DELETE FROM slow_marker; INSERT INTO slow_marker VALUES (${n});`;
  if (db.dialect === 'postgres') await db.query(sql);
  else
    new (await import('better-sqlite3')).default(db.url.slice('sqlite:'.length), { timeout: 10_000 }).exec(sql).close();
}

async function until(test: () => boolean): Promise<void> {
  for (const end = Date.now() + 60_000; !test(); await new Promise((r) => setTimeout(r, 20)))
    if (Date.now() > end) throw new Error('timed out waiting for the first revision');
}

/** Start `start()`, let it get inside 000002, SIGTERM it; then prove nothing of it runs on. */
async function stopsWithSigterm(
  db: TestDb,
  start: () => { kill: () => void; out: () => string; done: Promise<number> },
) {
  await setSlow(db, true);
  const victim = start();
  await until(() => victim.out().includes('up    000001'));
  await new Promise((r) => setTimeout(r, 700)); // inside 000002 now
  victim.kill();
  assert.notEqual(await victim.done, 0);
  await setSlow(db, false);
  // Were the migration still running, it would hold the lock: the next run could not take it.
  const next = await runCli(['head', '--url', db.url, '--dir', SLEEPY, '--lock-timeout=15']);
  assert.equal(next.code, 0, next.stderr);
  assert.match(next.stdout, /^up {4}000002 {2}slow /m);
}

for (const dialect of TEST_DIALECTS) {
  describe(`SIGTERM on ${dialect}`, {
    skip: dialect === 'postgres' && !hasPostgresServer && 'an embedded server cannot end a killed session',
  }, () => {
    it('to `node --import tsx scripts/migrate.ts` stops the migration', () =>
      withTestDb(dialect, (db) =>
        stopsWithSigterm(db, () => {
          const r = startCli(['head', '--url', db.url, '--dir', SLEEPY]);
          return { kill: () => r.child.kill('SIGTERM'), out: r.stdout, done: r.done.then((x) => x.code) };
        }),
      ));

    it("to the Docker entrypoint stops the migration, and the container's command never starts", () =>
      withTestDb(dialect, (db) =>
        stopsWithSigterm(db, () => {
          let out = '';
          const child = spawn('sh', [ENTRYPOINT, 'sh', '-c', 'echo the command started'], {
            env: { ...process.env, DATABASE_URL: db.url, MIGRATIONS_DIR: SLEEPY, MIGRATE_WAIT: '5' },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
          child.stderr.resume();
          const done = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 1)));
          return {
            kill: () => child.kill('SIGTERM'),
            out: () => out,
            done: done.then((code) => {
              assert.doesNotMatch(out, /the command started/);
              return code;
            }),
          };
        }),
      ));
  });
}

describe('the Docker entrypoint', () => {
  it('refuses to start without DATABASE_URL (exit 2, naming it), running nothing', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.DATABASE_URL;
    const r = await new Promise<{ code: number; out: string; err: string }>((resolve) => {
      const child = spawn('sh', [ENTRYPOINT, 'sh', '-c', 'echo the command started'], { env });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      child.on('close', (code) => resolve({ code: code ?? 1, out, err }));
    });
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /DATABASE_URL is not set/);
    assert.equal(r.out, '');
  });
});
