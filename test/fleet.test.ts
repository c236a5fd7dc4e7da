/**
 * Fleet mode (issue #29, docs/fleet.md): one folder on many databases at once, through the CLI
 * as a user runs it. The fleet: 10 PostgreSQL databases on TEST_POSTGRES_URL's server (one
 * reached as a role with a password), 10 SQLite files, one of them blocked by a table in the way
 * of revision 000002, and a URL at a closed port. Without a server the PostgreSQL half is left
 * out (and its own checks skip, saying so); the SQLite half still runs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import postgres from 'postgres';
import { fixture, runCli, startCli } from './support/cli.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { hasPostgresServer } from './support/postgres.ts';

const FLEET = fixture('fleet');
const SLOW = fixture('fleet-slow');
const FAILS = fixture('fleet-fails');
const HEAD = ['000001', '000002', '000003'];
const PASSWORD = `Fleet-${randomBytes(6).toString('hex')}`;
const NO_SERVER = hasPostgresServer
  ? false
  : 'the PostgreSQL half (10 databases, the password, the pg_stat_activity sampler) needs TEST_POSTGRES_URL';

/**
 * Port 1 (tcpmux): nothing listens there. A port freed by listen(0) and close() is not safe
 * under a busy suite: another test's server can take it meanwhile (one that never answers would
 * stall that database's connect; a suspect for a hang seen twice in full-suite runs).
 */
const CLOSED_PORT = 1;

interface Target {
  /** The URL as the targets file lists it. */
  url: string;
  db: TestDb;
}

interface FleetSetup {
  file: string;
  /** The reachable databases, in the file's order. */
  targets: Target[];
  blocked: Target;
  closedUrl: string;
  /** The PostgreSQL databases' names, for the sampler. */
  pgNames: string[];
  drop(): Promise<void>;
}

async function admin<T>(fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(process.env.TEST_POSTGRES_URL as string, { max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function setUp(): Promise<FleetSetup> {
  const dbs: TestDb[] = [];
  const role = `fleet_pw_${randomBytes(4).toString('hex')}`;
  const drop = async () => {
    for (const db of dbs) await db.drop();
    if (hasPostgresServer) await admin((sql) => sql.unsafe(`DROP ROLE IF EXISTS ${role}`));
  };
  try {
    const targets: Target[] = [];
    const pgNames: string[] = [];
    if (hasPostgresServer) {
      await admin((sql) => sql.unsafe(`CREATE ROLE ${role} LOGIN PASSWORD '${PASSWORD}'`));
      for (let i = 0; i < 10; i++) {
        const db = await createTestDb('postgres');
        dbs.push(db);
        const u = new URL(db.url);
        pgNames.push(u.pathname.slice(1));
        if (i === 3) {
          // The server trusts every login, so any password works; what matters is that none is shown.
          await admin((sql) => sql.unsafe(`ALTER DATABASE ${u.pathname.slice(1)} OWNER TO ${role}`));
          u.username = role;
          u.password = PASSWORD;
        }
        targets.push({ url: u.toString(), db });
      }
    }
    const closedUrl = `postgres://fleet@127.0.0.1:${CLOSED_PORT}/nowhere`;
    for (let i = 0; i < 10; i++) {
      const db = await createTestDb('sqlite');
      dbs.push(db);
      targets.push({ url: db.url, db });
    }
    // A table in the way of 000002 in one database: PostgreSQL's when there is a server.
    const blocked = (hasPostgresServer ? targets[5] : targets[2]) as Target;
    if (blocked.db.dialect === 'postgres') await blocked.db.query('CREATE TABLE audit_log (id integer)');
    else new Database(blocked.db.url.slice('sqlite:'.length)).exec('CREATE TABLE audit_log (id integer)').close();
    const file = join((dbs[0] as TestDb).dir, 'targets.txt');
    const lines = targets.map((t) => t.url);
    lines.splice(hasPostgresServer ? 10 : 5, 0, '# the closed port', closedUrl, '');
    writeFileSync(file, `# the fleet of this test\n\n${lines.join('\n')}\n`);
    return { file, targets, blocked, closedUrl, pgNames, drop };
  } catch (error) {
    await drop();
    throw error;
  }
}

/** How many of `names` have a session on the server, sampled until stopped: the most seen at once. */
function sampleSessions(names: string[]): () => Promise<{ max: number; samples: number }> {
  const sql = postgres(process.env.TEST_POSTGRES_URL as string, { max: 1, onnotice: () => {} });
  let stop = false;
  let max = 0;
  let samples = 0;
  const loop = (async () => {
    while (!stop) {
      const [row] = await sql<{ n: number }[]>`
        SELECT count(DISTINCT datname)::int AS n FROM pg_stat_activity WHERE datname = ANY(${names})`;
      max = Math.max(max, row?.n ?? 0);
      samples++;
      await sleep(5);
    }
  })();
  return async () => {
    stop = true;
    await loop;
    await sql.end({ timeout: 5 });
    return { max, samples };
  };
}

interface Summary {
  command: string;
  targets: Array<{
    url: string;
    outcome: string;
    from: string | null;
    to: string | null;
    ms: number;
    error?: { code: string; message: string; file?: string; line?: number };
  }>;
  counts: Record<string, number>;
}

/** stdout holds one JSON object, and nothing else. */
function oneObject<T>(stdout: string): T {
  const lines = stdout.trim().split('\n');
  assert.equal(lines.length, 1, `stdout should be one JSON object:\n${stdout}`);
  return JSON.parse(lines[0] as string) as T;
}

const revisions = async (db: TestDb, table?: string) =>
  (await db.records(table)).filter((r) => r.status === 'applied').map((r) => r.revision);
const shownUrl = (t: Target) => t.url.replace(`:${PASSWORD}@`, ':****@');

// A hang (a CLI that never exits, a session that never ends) fails the test instead of the suite.
const LIMIT = { timeout: 600_000 };

describe(
  `fleet over ${hasPostgresServer ? '10 PostgreSQL databases, ' : ''}10 SQLite files and a closed port`,
  LIMIT,
  () => {
    let fleet: FleetSetup;
    before(async () => {
      fleet = await setUp();
    });
    after(async () => {
      await fleet?.drop();
    });

    it('fleet head --parallel 4 --json: all at head but the blocked one (failed at its file and line, 000001 kept) and the closed port; exit 1', async () => {
      const stopSampler = hasPostgresServer ? sampleSessions(fleet.pgNames) : undefined;
      const r = await runCli(['fleet', 'head', '--targets', fleet.file, '--dir', FLEET, '--parallel', '4', '--json']);
      const sessions = await stopSampler?.();
      assert.equal(r.code, 1, r.stderr);
      const summary = oneObject<Summary>(r.stdout);
      assert.equal(summary.command, 'fleet');
      const n = fleet.targets.length;
      assert.equal(summary.targets.length, n + 1);
      assert.equal(summary.counts.applied, n - 1);
      assert.equal(summary.counts.failed, 1);
      assert.equal(summary.counts.unreachable, 1);
      for (const t of fleet.targets) {
        const got = summary.targets.find((s) => s.url === shownUrl(t));
        assert.ok(got, `no summary for ${shownUrl(t)}`);
        if (t === fleet.blocked) {
          assert.equal(got.outcome, 'failed');
          assert.deepEqual([got.from, got.to], ['base', '000001']);
          assert.equal(got.error?.code, 'MIGRATION_FAILED');
          assert.match(got.error?.file ?? '', /000002_add_audit_log\.up\.sql$/);
          assert.equal(got.error?.line, 4);
          assert.match(got.error?.message ?? '', /audit_log/);
          assert.deepEqual(await revisions(t.db), ['000001'], 'its earlier revision is kept');
        } else {
          assert.deepEqual([got.outcome, got.from, got.to], ['applied', 'base', '000003']);
          assert.deepEqual(await revisions(t.db), HEAD, `${t.url}: read back from its record`);
        }
      }
      const closed = summary.targets.find((s) => s.url === fleet.closedUrl);
      assert.equal(closed?.outcome, 'unreachable');
      assert.equal(closed?.error?.code, 'CONNECTION_FAILED');
      assert.ok(!`${r.stdout}${r.stderr}`.includes(PASSWORD), 'the password appears in the output');
      if (sessions) {
        assert.ok(sessions.max <= 4, `the sampler saw ${sessions.max} target databases with sessions at once`);
        // It did see the fleet at work, several at once: a sampler that saw nothing proves nothing.
        assert.ok(sessions.max >= 2, `the sampler saw at most ${sessions.max} in ${sessions.samples} samples`);
      }
    });

    it('the blocker removed, a rerun applies only that database; the others have nothing to do; exit 3 (closed port)', async () => {
      const { db } = fleet.blocked;
      if (db.dialect === 'postgres') await db.query('DROP TABLE audit_log');
      else new Database(db.url.slice('sqlite:'.length)).exec('DROP TABLE audit_log').close();
      const r = await runCli(['fleet', 'head', '--targets', fleet.file, '--dir', FLEET, '--json']);
      assert.equal(r.code, 3, r.stderr);
      const summary = oneObject<Summary>(r.stdout);
      const n = fleet.targets.length;
      assert.deepEqual(
        [summary.counts.applied, summary.counts.unchanged, summary.counts.unreachable, summary.counts.failed],
        [1, n - 1, 1, 0],
      );
      const fixed = summary.targets.find((s) => s.url === shownUrl(fleet.blocked));
      assert.deepEqual([fixed?.outcome, fixed?.from, fixed?.to], ['applied', '000001', '000003']);
      assert.deepEqual(await revisions(db), HEAD);
    });

    it('fleet status: counts per revision equal to what the records hold, the closed port unreachable (text and --json)', async () => {
      const back = fleet.targets[fleet.targets.length - 1] as Target;
      const down = await runCli(['-1', '--url', back.url, '--dir', FLEET]);
      assert.equal(down.code, 0, down.stderr);
      const expected: Record<string, number> = {};
      for (const t of fleet.targets) {
        const last = (await revisions(t.db)).at(-1) ?? 'base';
        expected[last] = (expected[last] ?? 0) + 1;
      }
      assert.equal(Object.keys(expected).length, 2, 'two revisions in the fleet');
      const r = await runCli(['fleet', 'status', '--targets', fleet.file, '--dir', FLEET, '--json']);
      assert.equal(r.code, 3, r.stderr);
      const s = oneObject<{ revisions: Record<string, number>; base: number; unreachable: number; atHead: number }>(
        r.stdout,
      );
      assert.deepEqual(s.revisions, expected);
      assert.equal(s.base, 0);
      assert.equal(s.unreachable, 1);
      assert.equal(s.atHead, expected['000003']);
      const text = await runCli(['fleet', 'status', '--targets', fleet.file, '--dir', FLEET]);
      assert.match(
        text.stdout,
        new RegExp(
          `fleet status: ${fleet.targets.length + 1} database\\(s\\): 1 at 000002, ${expected['000003']} at 000003`,
        ),
      );
      assert.ok(!`${r.stdout}${text.stdout}${text.stderr}`.includes(PASSWORD));
    });

    it('--canary 2 with a revision that fails everywhere: exactly one database tried, no other touched; exit 1', async () => {
      const r = await runCli([
        'fleet',
        'head',
        '--targets',
        fleet.file,
        '--dir',
        FAILS,
        '--table',
        'canary_record',
        '--canary',
        '2',
        '--json',
      ]);
      assert.equal(r.code, 1, r.stderr);
      const summary = oneObject<Summary>(r.stdout);
      const tried = summary.targets.filter((t) => t.outcome !== 'skipped');
      assert.equal(tried.length, 1);
      assert.equal(tried[0]?.outcome, 'failed');
      assert.equal(summary.counts.skipped, fleet.targets.length);
      const first = fleet.targets[0] as Target;
      assert.equal(tried[0]?.url, shownUrl(first));
      for (const t of fleet.targets) {
        const tables = await t.db.tables();
        assert.ok(!tables.includes('fleet_never'), `${t.url}: half of the failed revision stayed`);
        // Only the one tried has the record table that run created (empty): the others were not touched.
        assert.equal(tables.includes('canary_record'), t === first, `${t.url}: ${tables.join(', ')}`);
      }
    });

    it('SIGINT during a slow revision at --parallel 1: exit 130, some applied, the rest untouched, none half-applied, the JSON summary printed', async () => {
      const run = startCli([
        'fleet',
        'head',
        '--targets',
        fleet.file,
        '--dir',
        SLOW,
        '--table',
        'slow_record',
        '--parallel',
        '1',
        '--json',
      ]);
      let err = '';
      run.child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
      for (const end = Date.now() + 60_000; (err.match(/"outcome":"applied"/g) ?? []).length < 2; await sleep(20))
        if (Date.now() > end) throw new Error(`two databases never finished:\n${err}`);
      run.child.kill('SIGINT');
      const r = await run.done;
      assert.equal(r.code, 130, r.stderr);
      const summary = oneObject<Summary>(r.stdout);
      assert.ok((summary.counts.applied ?? 0) >= 2, JSON.stringify(summary.counts));
      assert.ok((summary.counts.interrupted ?? 0) >= 1, JSON.stringify(summary.counts));
      assert.equal(summary.counts.failed, 0);
      for (const t of fleet.targets) {
        const got = summary.targets.find((s) => s.url === shownUrl(t));
        const done = await revisions(t.db, 'slow_record');
        const table = (await t.db.tables()).includes('fleet_slow');
        if (got?.outcome === 'applied') assert.deepEqual([done, table], [['000001'], true], t.url);
        else {
          assert.equal(got?.outcome, 'interrupted', t.url);
          assert.deepEqual([done, table], [[], false], `${t.url} was touched`);
        }
      }
    });

    it('the database reached with a password shows as ****, in every line of fleet status', {
      skip: NO_SERVER,
    }, async () => {
      const withPassword = fleet.targets.find((t) => t.url.includes(PASSWORD)) as Target;
      const r = await runCli(['fleet', 'status', '--targets', fleet.file, '--dir', FLEET]);
      assert.ok(r.stdout.includes(shownUrl(withPassword)), r.stdout);
      assert.ok(!`${r.stdout}${r.stderr}`.includes(PASSWORD));
    });
  },
);

describe('fleet on SQLite files (no server needed)', LIMIT, () => {
  const BASIC = fixture('basic');
  const made: TestDb[] = [];
  /** Fresh SQLite files for one test, removed after the suite. */
  const fresh = async (count = 4): Promise<TestDb[]> => {
    const dbs: TestDb[] = [];
    for (let i = 0; i < count; i++) dbs.push(await createTestDb('sqlite'));
    made.push(...dbs);
    return dbs;
  };
  after(async () => {
    for (const db of made) await db.drop();
  });

  it('migrateFleet: a per-database event stream; aborted, the database in work stops after its step in flight and no other starts', async () => {
    const dbs = await fresh();
    const { migrateFleet, fleetExitCode } = await import('../runner/index.ts');
    const abort = new AbortController();
    const seen: string[] = [];
    const result = await migrateFleet({ urls: dbs.map((d) => d.url), dir: BASIC }, 'head', {
      parallel: 1,
      signal: abort.signal,
      onEvent: (e) => {
        if (e.type === 'target' && e.event.type === 'step') {
          seen.push(`${e.index} ${e.event.revision}`);
          abort.abort(); // after the first step has committed
        } else seen.push(`${e.index} ${e.type}${e.type === 'done' ? ` ${e.result.outcome}` : ''}`);
      },
    });
    assert.deepEqual(seen, [
      '0 start',
      '0 000001',
      '0 done interrupted',
      '1 done interrupted',
      '2 done interrupted',
      '3 done interrupted',
    ]);
    assert.deepEqual(
      result.targets.map((t) => [t.outcome, t.from, t.to, t.steps]),
      [
        ['interrupted', 'base', '000001', 1],
        ['interrupted', null, null, 0],
        ['interrupted', null, null, 0],
        ['interrupted', null, null, 0],
      ],
    );
    assert.equal(fleetExitCode(result), 130);
    assert.deepEqual(await revisions(dbs[0] as TestDb), ['000001']);
    for (const db of dbs.slice(1)) assert.deepEqual(await db.tables(), [], `${db.url} was touched`);
  });

  it('migrateFleet with a canary of 2: those two one after the other, before any other starts; then the rest together', async () => {
    const dbs = await fresh();
    const { migrateFleet } = await import('../runner/index.ts');
    const order: string[] = [];
    const result = await migrateFleet({ urls: dbs.map((d) => d.url), dir: FLEET, table: 'canary_ok' }, '+1', {
      canary: 2,
      parallel: 4,
      onEvent: (e) => {
        if (e.type !== 'target') order.push(`${e.type} ${e.index}`);
      },
    });
    assert.deepEqual(order.slice(0, 4), ['start 0', 'done 0', 'start 1', 'done 1']);
    assert.deepEqual(order.slice(4, 6).sort(), ['start 2', 'start 3']);
    assert.deepEqual(
      result.targets.map((t) => [t.outcome, t.from, t.to]),
      dbs.map(() => ['applied', 'base', '000001']),
    );
  });

  it('--on-error=stop at --parallel 1: no database starts after the one that failed; exit 1', async () => {
    const dbs = await fresh();
    const [a, , c, d] = dbs as [TestDb, TestDb, TestDb, TestDb];
    const file = join(a.dir, 'stop.txt');
    writeFileSync(file, `${c.url}\n${d.url}\n${a.url}\n`);
    const r = await runCli([
      'fleet',
      'head',
      '--targets',
      file,
      '--dir',
      FAILS,
      '--table',
      'stop_record',
      '--on-error=stop',
      '--parallel',
      '1',
    ]);
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0] as string, new RegExp(`^failed +${c.url} +base → base +\\(`));
    assert.match(lines[1] as string, /000001_fails\.up\.sql:3:\d+: .*no_such_table_anywhere.* \[MIGRATION_FAILED\]$/);
    assert.match(lines[2] as string, new RegExp(`^skipped +${d.url} +- +\\(`));
    assert.match(lines[3] as string, new RegExp(`^skipped +${a.url} +- +\\(`));
    assert.match(lines[4] as string, /^fleet: 3 database\(s\): 1 failed, 2 skipped \(/);
    for (const db of [a, d]) assert.ok(!(await db.tables()).includes('stop_record'), `${db.url} was touched`);
  });

  it('a database that refuses (another tool owns the record table) is refused, the others go on; exit 3', async () => {
    const dbs = await fresh();
    const [, , a, b] = dbs as [TestDb, TestDb, TestDb, TestDb];
    new Database(b.url.slice('sqlite:'.length)).exec('CREATE TABLE foreign_record (version_id integer)').close();
    const file = join(a.dir, 'refused.txt');
    writeFileSync(file, `${a.url}\n${b.url}\n`);
    const r = await runCli(['fleet', 'head', '--targets', file, '--dir', FLEET, '--table', 'foreign_record', '--json']);
    assert.equal(r.code, 3, r.stderr);
    const summary = oneObject<Summary>(r.stdout);
    assert.deepEqual(
      summary.targets.map((t) => [t.outcome, t.error?.code]),
      [
        ['applied', undefined],
        ['refused', 'FOREIGN_RECORD_TABLE'],
      ],
    );
    assert.deepEqual(await revisions(a, 'foreign_record'), HEAD);
  });

  it('SIGTERM, as a supervisor stops it: the database in work finishes, no other starts, summary printed, exit 130', async () => {
    const dbs = await fresh(8); // the last must not have started when the signal comes
    const file = join((dbs[0] as TestDb).dir, 'term.txt');
    writeFileSync(file, `${dbs.map((d) => d.url).join('\n')}\n`);
    const run = startCli([
      'fleet',
      'head',
      '--targets',
      file,
      '--dir',
      SLOW,
      '--table',
      'term_record',
      '--parallel',
      '1',
    ]);
    for (const end = Date.now() + 60_000; !/^applied /m.test(run.stdout()); await sleep(20))
      if (Date.now() > end) throw new Error('the first database never finished');
    run.child.kill('SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /fleet: SIGTERM: no new database starts/);
    const outcomes = r.stdout
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith(' '))
      .map((l) => l.split(' ')[0]);
    assert.equal(outcomes.length, dbs.length + 1, r.stdout);
    assert.match(outcomes.at(-1) as string, /^fleet:$/);
    assert.ok(outcomes.includes('interrupted'), r.stdout);
    for (const [i, db] of dbs.entries()) {
      const applied = (await revisions(db, 'term_record')).length === 1;
      assert.equal(applied, (await db.tables()).includes('fleet_slow'), `${db.url}: half-applied`);
      assert.equal(applied, r.stdout.includes(`applied      ${db.url}`), `${db.url}: the summary says otherwise`);
      if (i === 0) assert.ok(applied);
    }
  });

  it('--targets - reads stdin (comments and blank lines ignored); a line that is no URL is refused at stdin:line before anything runs (exit 2)', async () => {
    const dbs = await fresh();
    const [a, b] = dbs as [TestDb, TestDb];
    const good = await runCli(
      ['fleet', 'head', '--targets', '-', '--dir', FLEET, '--table', 'stdin_record', '--json'],
      {
        input: `# tenants\n\n${a.url}   # the first\n${b.url}\n`,
      },
    );
    assert.equal(good.code, 0, good.stderr);
    const summary = oneObject<Summary>(good.stdout);
    assert.deepEqual(
      summary.targets.map((t) => [t.url, t.outcome]),
      [
        [a.url, 'applied'],
        [b.url, 'applied'],
      ],
    );
    const bad = await runCli(['fleet', 'head', '--targets', '-', '--dir', FLEET, '--table', 'bad_record'], {
      input: `${a.url}\n# next\nmysql://root:hunter22@db/app\n`,
    });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^error: stdin:3: unsupported database URL "mysql:\/\/root:\*\*\*\*@db\/app"/m);
    assert.ok(!bad.stderr.includes('hunter22'));
    assert.ok(!(await a.tables()).includes('bad_record'), 'nothing runs before the whole list is read');
  });

  it('refuses what cannot work anywhere before touching a database: no --targets, a bad target, fleet options elsewhere (exit 2)', async () => {
    const dbs = await fresh();
    const none = await runCli(['fleet', 'head', '--dir', FLEET]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /fleet needs --targets FILE/);
    const garbage = await runCli(
      ['fleet', 'sideways', '--targets', '-', '--dir', FLEET, '--table', 'sideways_record'],
      {
        input: `${dbs[0]?.url}\n`,
      },
    );
    assert.equal(garbage.code, 2);
    assert.match(garbage.stderr, /unknown revision "sideways".*\[UNKNOWN_REVISION\]/);
    assert.ok(!(await (dbs[0] as TestDb).tables()).includes('sideways_record'), 'a database was touched');
    const elsewhere = await runCli(['head', '--parallel', '2', '--url', dbs[0]?.url as string, '--dir', FLEET]);
    assert.equal(elsewhere.code, 2);
    assert.match(elsewhere.stderr, /--parallel does not apply to migrate; only fleet takes it/);
  });
});
