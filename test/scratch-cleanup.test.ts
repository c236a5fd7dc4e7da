/**
 * What `schema` and `drift` leave behind on the --scratch-url server: nothing, even when
 * interrupted (Ctrl-C stops the build after its current step and drops its scratch database,
 * exit 130); a scratch database an earlier run could not drop (killed outright) is swept by the
 * next one made once it is an hour old and nobody is connected to it. And `--scratch-url`:
 * `schema` builds there, every command that does not take it refuses it.
 *
 * Needs TEST_POSTGRES_URL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import postgres from 'postgres';
import { runCli, startCli } from './support/cli.ts';
import { postgresFolder as folder } from './support/folder.ts';
import { createPostgresDatabase, hasPostgresServer, type TestDatabase } from './support/postgres.ts';
import { migrate } from '../runner/core/migrator.ts';

const SERVER = process.env.TEST_POSTGRES_URL || undefined;
const NEEDS_SERVER = hasPostgresServer ? false : 'needs TEST_POSTGRES_URL: the scratches are made on a server';

/** Poll `query` until it returns a row (its first column), or fail after `seconds`. */
async function waitFor(sql: postgres.Sql, query: string, seconds = 60): Promise<string> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    const [row] = await sql.unsafe(query);
    if (row) return String(Object.values(row)[0]);
    await sleep(50);
  }
  throw new Error(`nothing came of ${query} in ${seconds} s`);
}

/** A step that takes about five seconds, marked so that pg_stat_activity finds it. */
const slow = (marker: string) => `CREATE TABLE t (id int primary key);\nSELECT pg_sleep(5) AS ${marker};`;

describe('schema and drift leave no scratch behind (postgres server)', { skip: NEEDS_SERVER }, () => {
  let db: TestDatabase;
  let sql: postgres.Sql;
  let admin: postgres.Sql;
  before(async () => {
    db = await createPostgresDatabase();
    sql = postgres(db.url, { max: 1, onnotice: () => {}, fetch_types: false });
    admin = postgres(SERVER as string, { max: 1, onnotice: () => {}, fetch_types: false });
  });
  after(async () => {
    await sql?.end({ timeout: 5 });
    await admin?.end({ timeout: 5 });
    await db?.drop();
  });
  /** The scratch database running the step marked `marker`, once it runs. */
  const scratchRunning = (marker: string) =>
    waitFor(
      admin,
      `SELECT datname FROM pg_stat_activity WHERE query LIKE '%${marker}%' AND datname LIKE 'migrate_check_%' AND pid <> pg_backend_pid()`,
    );

  it('Ctrl-C during schema drops its scratch database and exits 130', async () => {
    const marker = `marker_${randomBytes(4).toString('hex')}`;
    const f = folder(slow(marker));
    try {
      const run = startCli(['schema', '--dir', f.dir, '--scratch-url', db.url], { env: { DATABASE_URL: db.url } });
      const scratch = await scratchRunning(marker);
      run.child.kill('SIGINT');
      const r = await run.done;
      assert.equal(r.code, 130, r.stderr);
      assert.match(r.stderr, /schema: interrupted; its scratch databases were removed/);
      const left = await admin.unsafe('SELECT 1 FROM pg_database WHERE datname = $1', [scratch]);
      assert.equal(left.length, 0, `${scratch} was left behind`);
    } finally {
      f.cleanup();
    }
  });

  it('Ctrl-C during drift drops its scratch database and exits 130', async () => {
    const marker = `marker_${randomBytes(4).toString('hex')}`;
    const f = folder(`CREATE TABLE d (id int primary key); SELECT pg_sleep(4) AS ${marker};`);
    try {
      await migrate({ url: db.url, dir: f.dir }, 'head');
      const run = startCli(['drift', '--dir', f.dir, '--scratch-url', db.url], { env: { DATABASE_URL: db.url } });
      const scratch = await scratchRunning(marker);
      run.child.kill('SIGINT');
      const r = await run.done;
      assert.equal(r.code, 130, r.stderr);
      assert.match(r.stderr, /drift: interrupted/);
      const left = await admin.unsafe('SELECT 1 FROM pg_database WHERE datname = $1', [scratch]);
      assert.equal(left.length, 0, `${scratch} was left behind`);
    } finally {
      f.cleanup();
      await sql.unsafe('DROP TABLE IF EXISTS d, schema_migrations');
    }
  });

  /** `schema` on the folder builds table t and says it dropped `old`, and only that. */
  const schemaSweeps = async (dir: string, old: string) => {
    const r = await runCli(['schema', '--dir', dir, '--scratch-url', db.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /CREATE TABLE t /);
    assert.match(r.stderr, new RegExp(`dropped 1 scratch database\\(s\\) of this role .*: ${old}$`, 'm'));
  };

  it('the next scratch database drops this role’s scratch databases over an hour old that nobody uses, and says so', async () => {
    const [{ now }] = (await admin.unsafe('SELECT floor(extract(epoch FROM now()))::bigint AS now')) as never as [
      { now: number },
    ];
    const tag = randomBytes(3).toString('hex');
    const old = `migrate_check_${(Number(now) - 7200).toString(16)}_${tag}01`;
    const busy = `migrate_check_${(Number(now) - 7200).toString(16)}_${tag}02`;
    const young = `migrate_check_${Number(now).toString(16)}_${tag}03`;
    for (const name of [old, busy, young]) await admin.unsafe(`CREATE DATABASE ${name}`);
    const inUse = new URL(SERVER as string);
    inUse.pathname = `/${busy}`;
    const user = postgres(inUse.toString(), { max: 1, onnotice: () => {}, fetch_types: false });
    await user.unsafe('SELECT 1');
    const f = folder('CREATE TABLE t (id int primary key);');
    try {
      await schemaSweeps(f.dir, old);
      const left = await admin.unsafe('SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY 1', [
        `migrate_check_%_${tag}%`,
      ]);
      // A young one may be another run's, still building; one somebody is connected to is in use.
      assert.deepEqual(
        left.map((row) => row.datname),
        [busy, young],
      );
    } finally {
      f.cleanup();
      await user.end({ timeout: 5 });
      for (const name of [old, busy, young]) await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  });

  it('schema --scratch-url builds there, not in the database DATABASE_URL names', async () => {
    const f = folder('CREATE TABLE t (id int primary key);');
    try {
      const nowhere = new URL(db.url);
      nowhere.pathname = `/no_such_db_${randomBytes(4).toString('hex')}`;
      const r = await runCli(['schema', '--dir', f.dir, '--scratch-url', db.url], {
        env: { DATABASE_URL: nowhere.toString() },
      });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /CREATE TABLE t /);
    } finally {
      f.cleanup();
    }
  });
});

describe('options a command does not take are refused', () => {
  it('--scratch-url, --write, --no-data, --seed elsewhere: exit 2, naming the commands that take them', async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ['history', '--scratch-url', 'postgres://x@h/db'],
        /--scratch-url does not apply to history; only schema and drift take it/,
      ],
      [['check', '--scratch-url', 'postgres://x@h/db'], /--scratch-url does not apply to check/],
      [['head', '--write'], /--write does not apply to migrate; only schema takes it/],
      [['drift', '--no-data'], /--no-data does not apply to drift; only check takes it/],
      [['schema', '--seed=1'], /--seed does not apply to schema; only check takes it/],
      [['schema', '--url', 'sqlite::memory:', '--scratch-url', 'postgres://x@h/db'], /drop --scratch-url/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args, { env: { DATABASE_URL: 'sqlite::memory:' } });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    }
  });
});
