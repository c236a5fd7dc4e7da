/**
 * Issue #27 against real servers: a primary and a hot standby this file builds itself
 * (test/support/cluster.ts: initdb, pg_basebackup -R -c fast, pg_ctl on free ports, as the
 * postgres user), shared by every test, and removed at the end, also after a failure. The last
 * test stops the primary and promotes the standby, so it runs last. Never the shared server.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { migrate, status, MigrateError } from '../runner/index.ts';
import type { ServerRole } from '../runner/core/hosts.ts';
import { fixture, runCli, startCli } from './support/cli.ts';
import {
  caughtUp,
  type Cluster,
  clusterUnavailable,
  createCluster,
  freePort,
  pg,
  withClient,
} from './support/cluster.ts';

const DIR = fixture('basic'); // three revisions: 000001, 000002, 000003
/** CI has the binaries (.ci/run fails on any skipped test): there a missing one fails the suite. */
const MUST_RUN = process.env.CI === '1' || process.env.CI === 'true' || process.env.REQUIRE_POSTGRES_SERVER === '1';
const unavailable = MUST_RUN ? undefined : clusterUnavailable();

describe('failover-correct connections (a primary and a hot standby of its own)', {
  skip: unavailable ?? false,
}, () => {
  let cluster: Cluster;
  let n = 0;

  before(async () => {
    cluster = await createCluster();
  });
  after(async () => {
    await cluster?.remove();
  });

  /** A fresh database on the primary, replayed on the standby. */
  async function database(): Promise<string> {
    const name = `app_${++n}`;
    await withClient(cluster.primary.url(), (sql) => sql.unsafe(`CREATE DATABASE ${name}`));
    return name;
  }

  /** The record on `url`, through plain SQL; [] when there is none. */
  async function recorded(url: string): Promise<string[]> {
    return withClient(url, async (sql) => {
      const [t] = await sql`SELECT to_regclass('schema_migrations') IS NOT NULL AS found`;
      if (t?.found !== true) return [];
      const rows = await sql`SELECT revision FROM schema_migrations ORDER BY seq`;
      return rows.map((r) => r.revision as string);
    });
  }

  const cli = (args: string[]) => runCli(['--dir', DIR, ...args]);

  it('head on the standby, the record replicated, revisions pending: STANDBY, exit 3, before the lock and any step', async (t) => {
    const db = await database();
    await migrate({ url: cluster.primary.url(db), dir: DIR }, '000001');
    await caughtUp(cluster);
    const started = Date.now();
    const r = await cli(['head', '--url', cluster.standby.url(db)]);
    t.diagnostic(`refused in ${Date.now() - started} ms, process start included`);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /\[STANDBY\]/);
    assert.ok(r.stderr.includes(cluster.standby.hostPort), r.stderr);
    assert.match(r.stderr, /target_session_attrs=read-write/);
    assert.doesNotMatch(r.stdout, /^up /m);
    assert.doesNotMatch(r.stderr, /\.sql|25006|DATABASE_REFUSED/);
    assert.deepEqual(await recorded(cluster.primary.url(db)), ['000001']);
    const json = await cli(['head', '--json', '--url', cluster.standby.url(db)]);
    assert.equal(json.code, 3);
    assert.equal(JSON.parse(json.stdout).error.code, 'STANDBY');
    for (const target of ['+1', 'base', '-1', '000002']) {
      const other = await cli([target, '--yes', '--url', cluster.standby.url(db)]);
      assert.equal(other.code, 3, `${target}: ${other.stderr}`);
      assert.match(other.stderr, /\[STANDBY\]/);
    }
    // Before the lock: with the migration lock held on the standby by another session (advisory
    // locks work there), a lock-first runner would end in LOCK_TIMEOUT; this one never asks for it.
    const key = createHash('sha256').update('sql-migrate\0public\0schema_migrations').digest().readBigInt64BE(0);
    await withClient(cluster.standby.url(db), async (sql) => {
      await sql.unsafe(`SELECT pg_advisory_lock(${key})`);
      const held = await cli(['head', '--lock-timeout=3', '--url', cluster.standby.url(db)]);
      assert.equal(held.code, 3, held.stderr);
      assert.match(held.stderr, /\[STANDBY\]/);
    });
    const stamped = await cli(['stamp', '000003', '--url', cluster.standby.url(db)]);
    assert.equal(stamped.code, 3, stamped.stderr);
    assert.match(stamped.stderr, /\[STANDBY\]/);
    assert.deepEqual(await recorded(cluster.primary.url(db)), ['000001']);
  });

  it('the same on a database with no record table: STANDBY, not DATABASE_REFUSED', async () => {
    const db = await database();
    await caughtUp(cluster);
    const r = await cli(['head', '--url', cluster.standby.url(db)]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /\[STANDBY\]/);
    assert.doesNotMatch(r.stderr, /DATABASE_REFUSED|record table once/);
    assert.deepEqual(await recorded(cluster.primary.url(db)), []);
  });

  it('the library throws MigrateError STANDBY and runs nothing', async () => {
    const db = await database();
    await caughtUp(cluster);
    await assert.rejects(
      migrate({ url: cluster.standby.url(db), dir: DIR }, 'head'),
      (e: unknown) => e instanceof MigrateError && e.code === 'STANDBY' && e.exitCode === 3,
    );
  });

  for (const attrs of ['read-write', 'primary']) {
    it(`the standby listed first with target_session_attrs=${attrs}: applied on the primary, exit 0`, async () => {
      const db = await database();
      const url = `postgres://postgres@${cluster.standby.hostPort},${cluster.primary.hostPort}/${db}?target_session_attrs=${attrs}`;
      const r = await cli(['head', '--url', url]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^up {4}000003/m);
      assert.ok(r.stderr.includes(`; on ${cluster.primary.hostPort}`), r.stderr);
      assert.deepEqual(await recorded(cluster.primary.url(db)), ['000001', '000002', '000003']);
      const json = await cli(['current', '--json', '--url', url]);
      assert.equal(JSON.parse(json.stdout).host, cluster.primary.hostPort);
    });
  }

  it('history, current, sql, schema --url and drift on the standby: exit 0, the replayed revisions, the standby said', async () => {
    const db = await database();
    await migrate({ url: cluster.primary.url(db), dir: DIR }, '000002');
    await caughtUp(cluster);
    const url = cluster.standby.url(db);
    const standbySaid = new RegExp(`${cluster.standby.hostPort} is a hot standby.*replay lag`);

    const history = await cli(['history', '--url', url]);
    assert.equal(history.code, 0, history.stderr);
    assert.match(history.stdout, /000001 .* applied/);
    assert.match(history.stdout, /000002 .* applied/);
    assert.match(history.stdout, /000003 .* pending/);
    assert.match(history.stderr, standbySaid);

    const current = await cli(['current', '--url', url]);
    assert.equal(current.code, 0, current.stderr);
    assert.equal(current.stdout.trim(), '000002 (create_posts)');
    assert.match(current.stderr, standbySaid);

    const json = await cli(['current', '--json', '--url', url]);
    const parsed = JSON.parse(json.stdout);
    assert.equal(parsed.current.revision, '000002');
    assert.equal(parsed.standby.host, cluster.standby.hostPort);

    const script = await cli(['sql', 'head', '--url', url]);
    assert.equal(script.code, 0, script.stderr);
    assert.match(script.stdout, /000003/);

    const schema = await cli(['schema', '--url', url]);
    assert.equal(schema.code, 0, schema.stderr);
    assert.match(schema.stdout, /CREATE TABLE posts/);
    assert.match(schema.stderr, standbySaid);

    const drift = await cli(['drift', '--url', url]);
    assert.equal(drift.code, 0, drift.stderr);
    assert.match(drift.stdout, /drift: none/);
    // drift builds on the embedded PostgreSQL unless --scratch-url names a server (#24): nothing
    // is created on the standby, which could not hold it anyway.
    assert.match(drift.stderr, /is a hot standby, read-only/);
    assert.match(drift.stderr, /the migrations were built on the embedded PostgreSQL/);

    // The library tells its caller too.
    const roles: ServerRole[] = [];
    const s = await status({ url, dir: DIR, onServer: (r) => roles.push(r) });
    assert.equal(s.current?.revision, '000002');
    assert.equal(roles[0]?.standby, true);
    assert.equal(roles[0]?.address, cluster.standby.hostPort);
    assert.equal(typeof roles[0]?.replayLagMs, 'number');
  });

  it('prefer-standby reads the standby even when the primary is listed first; standby alone on a primary is refused', async () => {
    const db = await database();
    await caughtUp(cluster);
    const both = `postgres://postgres@${cluster.primary.hostPort},${cluster.standby.hostPort}/${db}`;
    const prefer = await cli(['history', '--url', `${both}?target_session_attrs=prefer-standby`]);
    assert.equal(prefer.code, 0, prefer.stderr);
    assert.ok(prefer.stderr.includes(`; on ${cluster.standby.hostPort}`), prefer.stderr);
    // Without a standby among the hosts, prefer-standby takes any: the primary.
    const fallback = await cli(['head', '--url', `${cluster.primary.url(db)}?target_session_attrs=prefer-standby`]);
    assert.equal(fallback.code, 0, fallback.stderr);
    const readOnly = await cli(['history', '--url', `${both}?target_session_attrs=read-only`]);
    assert.equal(readOnly.code, 0, readOnly.stderr);
    assert.ok(readOnly.stderr.includes(`; on ${cluster.standby.hostPort}`), readOnly.stderr);
    const none = await cli(['history', '--url', `${cluster.primary.url(db)}?target_session_attrs=standby`]);
    assert.equal(none.code, 3, none.stderr);
    assert.match(none.stderr, /is a primary.*\[CONNECTION_FAILED\]/);
    const bad = await cli(['history', '--url', `${cluster.primary.url(db)}?target_session_attrs=readwrite`]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /\[BAD_URL\]/);
  });

  it('default_transaction_read_only = on for the database: READ_ONLY_SESSION, exit 3; reading still works', async () => {
    const db = await database();
    await withClient(cluster.primary.url(), (sql) =>
      sql.unsafe(`ALTER DATABASE ${db} SET default_transaction_read_only = on`),
    );
    const r = await cli(['head', '--url', cluster.primary.url(db)]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /\[READ_ONLY_SESSION\]/);
    assert.match(r.stderr, /default_transaction_read_only = on for this database/);
    assert.ok(r.stderr.includes(cluster.primary.hostPort), r.stderr);
    const json = await cli(['head', '--json', '--url', cluster.primary.url(db)]);
    assert.equal(JSON.parse(json.stdout).error.code, 'READ_ONLY_SESSION');
    // A read-only role says which setting too.
    await withClient(cluster.primary.url(), async (sql) => {
      await sql.unsafe(`ALTER DATABASE ${db} RESET default_transaction_read_only`);
      await sql.unsafe('CREATE ROLE reader LOGIN');
      await sql.unsafe('ALTER ROLE reader SET default_transaction_read_only = on');
    });
    const role = await cli(['head', '--url', `postgres://reader@${cluster.primary.hostPort}/${db}`]);
    assert.equal(role.code, 3, role.stderr);
    assert.match(role.stderr, /default_transaction_read_only = on for this role.*\[READ_ONLY_SESSION\]/);
    const history = await cli(['history', '--url', `postgres://reader@${cluster.primary.hostPort}/${db}`]);
    assert.equal(history.code, 0, history.stderr);
    assert.deepEqual(await recorded(cluster.primary.url(db)), []);
  });

  it('only a standby reachable with read-write: exit 3 STANDBY at once; --wait waits with a progress line, then STANDBY', async () => {
    const db = await database();
    await caughtUp(cluster);
    const gone = `127.0.0.1:${await freePort()}`;
    const url = `postgres://postgres@${gone},${cluster.standby.hostPort}/${db}?target_session_attrs=read-write`;
    const now = await cli(['head', '--url', url]);
    assert.equal(now.code, 3, now.stderr);
    assert.match(now.stderr, /no primary among 2 hosts/);
    assert.ok(now.stderr.includes(`${cluster.standby.hostPort} is a hot standby`), now.stderr);
    assert.ok(now.stderr.includes(`${gone} cannot be reached`), now.stderr);
    assert.match(now.stderr, /\[STANDBY\]/);
    assert.doesNotMatch(now.stderr, /waiting for/);
    const waited = await cli(['head', '--wait=2', '--url', url]);
    assert.equal(waited.code, 3, waited.stderr);
    assert.match(waited.stderr, /waiting for .*no primary among 2 hosts yet/);
    assert.match(waited.stderr, /kept trying for 2 s\) \[STANDBY\]/);
  });

  // Last: it turns the pair into one primary.
  it('the primary stopped, head --wait=45 on both hosts, the standby promoted 4 s later: applied on the new primary, exit 0', async (t) => {
    const db = await database();
    await migrate({ url: cluster.primary.url(db), dir: DIR }, '000001');
    await caughtUp(cluster);
    await cluster.primary.stop('fast');
    const url = `postgres://postgres@${cluster.primary.hostPort},${cluster.standby.hostPort}/${db}?target_session_attrs=read-write`;
    const started = Date.now();
    const run = startCli(['--dir', DIR, 'head', '--wait=45', '--url', url]);
    let err = '';
    run.child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
    // Promoted once the runner is seen waiting (a loaded machine may take seconds to start it), and 4 s in at the earliest.
    while (!/no primary among 2 hosts yet/.test(err) && Date.now() - started < 40_000) await sleep(100);
    assert.match(err, /waiting for .*no primary among 2 hosts yet/);
    await sleep(Math.max(0, 4000 - (Date.now() - started)));
    const promoted = Date.now();
    await pg('pg_ctl', ['-D', cluster.standby.data, '-w', 'promote']);
    const r = await run.done;
    t.diagnostic(`exit ${r.code} ${Date.now() - promoted} ms after the promotion began`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^up {4}000002/m);
    assert.match(r.stdout, /^up {4}000003/m);
    assert.doesNotMatch(r.stdout, /000001/);
    assert.ok(r.stderr.includes(`; on ${cluster.standby.hostPort}`), r.stderr);
    assert.deepEqual(await recorded(cluster.standby.url(db)), ['000001', '000002', '000003']);
  });
});
