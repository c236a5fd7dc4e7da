/**
 * What the step protocol (runner/step.ts) tells the user, beyond the driver contract: whether a
 * failed file's transaction was really rolled back, which revision a lost connection
 * interrupted, and that a rendered SQLite script stops where the runner would. And the protocol
 * itself on both dialects' drivers: a file and its record row commit together, a no-transaction
 * file's progress, writeRecord, and renderStep run by hand (test/support/drivers.ts opens the
 * databases; the driver contract itself is test/driver-contract.test.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { SqliteDriver } from '../runner/core/drivers/sqlite.ts';
import { runStep, StepFailure, toMigrationFailed, type StepWork, writeRecord } from '../runner/core/step.ts';
import { failedNote } from '../runner/core/record.ts';
import { renderScript } from '../runner/core/script.ts';
import { splitStatements } from '../runner/core/split.ts';
import type { Migration } from '../runner/core/files.ts';
import { fixture, runCli, startCli } from './support/cli.ts';
import { withTestDb, type TestDb } from './support/db.ts';
import { hasPostgresServer } from './support/postgres.ts';
import { tempSqliteUrl } from './support/sqlite.ts';
import {
  DRIVER_DIALECTS,
  dbTest,
  type Dialect,
  insert,
  rejection,
  rendered,
  stable,
  tableNames,
  work,
  ISO_UTC_MS,
} from './support/drivers.ts';

function sqliteWork(sql: string): StepWork {
  const statements = splitStatements(sql, 'sqlite');
  return {
    file: '000001_x.up.sql',
    sql,
    statements,
    transactional: true,
    empty: false,
    record: { kind: 'insert', revision: '000001', description: 'x', checksum: 'c' },
  };
}

async function stepFailure(driver: SqliteDriver, work: StepWork): Promise<StepFailure> {
  try {
    await runStep(driver, work);
  } catch (error) {
    assert.ok(error instanceof StepFailure, String(error));
    return error;
  }
  assert.fail('the step should have failed');
}

describe('step protocol: rolled back, or not', () => {
  it('a failed transactional file reports rolledBack only when its transaction was still open', async () => {
    const tmp = tempSqliteUrl();
    const driver = new SqliteDriver({ filename: tmp.path, table: 'schema_migrations', create: true });
    try {
      await driver.ensureRecordTable();
      const plain = await stepFailure(driver, sqliteWork('CREATE TABLE a (id integer);\nSELECT * FROM nope;\n'));
      assert.equal(plain.details.rolledBack, true);
      // The runner refuses COMMIT in a transactional file before it runs; a file that slips one
      // past that check (built here by hand) commits its first half itself.
      const work = sqliteWork(
        'CREATE TABLE b (id integer);\nCOMMIT;\nCREATE TABLE c (id integer);\nSELECT * FROM nope;\n',
      );
      const committed = await stepFailure(driver, work);
      assert.equal(committed.details.rolledBack, false);
      const failed = toMigrationFailed(
        committed,
        work,
        { direction: 'up', migration: { revision: '000001' } as Migration },
        [],
      );
      assert.equal(failed.info.rolledBack, false);
      const { default: Database } = await import('better-sqlite3');
      const look = new Database(tmp.path, { readonly: true });
      const tables = look
        .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
        .all()
        .map((r) => (r as { name: string }).name);
      look.close();
      assert.deepEqual(tables, ['b', 'c', 'schema_migrations'], 'what ran before and after the COMMIT stays');
      assert.deepEqual(await driver.readRecord(), []);
    } finally {
      await driver.close();
      tmp.cleanup();
    }
  });
});

function sqlite3(path: string, script: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('sqlite3', [path], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stderr }));
    child.stdin.end(script);
  });
}

describe('sql <target> on SQLite behaves as the runner does', () => {
  it('the script piped into sqlite3 stops on a foreign-key violation the migration added, and leaves older ones alone', () =>
    withTestDb('sqlite', async (db) => {
      const path = db.url.slice('sqlite:'.length);
      // As in the runner's own test: foreign keys off, an orphan written long ago, a deferred key.
      const { default: Database } = await import('better-sqlite3');
      const conn = new Database(path);
      conn.pragma('foreign_keys = OFF');
      conn.exec(
        'CREATE TABLE parent (id integer PRIMARY KEY); CREATE TABLE child (id integer PRIMARY KEY, parent_id integer REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED); INSERT INTO child VALUES (1, 99);',
      );
      conn.close();
      const dir = fixture('sqlite-old-orphans');
      const first = await runCli(['sql', '+1', '--url', db.url, '--dir', dir]);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /PRAGMA foreign_keys = ON;/);
      const ran = await sqlite3(path, first.stdout);
      assert.equal(ran.code, 0, `an older orphan does not stop the script: ${ran.stderr}`);
      const second = await runCli(['sql', 'head', '--url', db.url, '--dir', dir]);
      assert.equal(second.code, 0, second.stderr);
      const refused = await sqlite3(path, second.stdout);
      assert.notEqual(refused.code, 0, 'sqlite3 stops');
      assert.match(refused.stderr, /FOREIGN KEY constraint failed/);
      assert.deepEqual(
        (await db.records()).map((r) => r.revision),
        ['000001'],
      );
      assert.deepEqual(await db.query('SELECT id FROM child ORDER BY id'), [{ id: 1 }], 'the new orphan is not kept');
    }));
});

async function until(what: string, test: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Start `head` on a slow fixture, and end the runner's session from the server side mid-way through 000002. */
async function interrupted(db: TestDb, name: string) {
  await db.query('CREATE TABLE slow_marker (n bigint); INSERT INTO slow_marker VALUES (60)');
  const dir = fixture(name);
  const runner = startCli(['head', '--url', db.url, '--dir', dir]);
  await until('the first revision to commit', () => runner.stdout().includes('up    000001'));
  await new Promise((r) => setTimeout(r, 700)); // inside the slow statement of 000002 now
  await db.query(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sql-migrate' AND datname = current_database()`,
  );
  return runner.done;
}

describe('a connection lost during a step (PostgreSQL)', {
  skip: !hasPostgresServer && 'needs TEST_POSTGRES_URL',
}, () => {
  it('names the revision it interrupted', () =>
    withTestDb('postgres', async (db) => {
      const r = await interrupted(db, 'sleepy');
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /Applying 000002 \(\S*000002_slow\.up\.sql\) was interrupted: lost the connection/);
      assert.match(r.stderr, /\[CONNECTION_FAILED\]/);
      assert.deepEqual(
        (await db.records()).map((x) => x.revision),
        ['000001'],
      );
    }));

  it('says a no-transaction file is now recorded failed, with the statements done', () =>
    withTestDb('postgres', async (db) => {
      const r = await interrupted(db, 'sleepy-no-transaction');
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /Applying 000002 \(\S*000002_slow\.up\.sql\) was interrupted: lost the connection/);
      assert.match(r.stderr, /it is now recorded as failed, with 1 statement\(s\) done/);
      assert.deepEqual(
        (await db.records()).map((x) => [x.revision, x.status]),
        [
          ['000001', 'applied'],
          ['000002', 'failed'],
        ],
      );
    }));
});

function stepProtocol(dialect: Dialect): void {
  const d = dialect.name;
  const test = dbTest(dialect);

  describe(`step protocol on the driver contract: ${d}`, () => {
    test('transactional steps: file and row commit together, seq rises, readRecord in order of application', async (db) => {
      const driver = db.driver();
      await driver.ensureRecordTable();
      await runStep(
        driver,
        work(
          d,
          `CREATE TABLE users (id integer PRIMARY KEY, name text);\nINSERT INTO users VALUES (1, 'é🔥');\n`,
          insert('000002', 'users'),
        ),
      );
      const done = await runStep(
        driver,
        work(d, `CREATE TABLE posts (id integer PRIMARY KEY)`, insert('000001', 'posts')),
      );
      assert.ok(done.durationMs >= 0);
      assert.deepEqual(await tableNames(db, d), ['posts', 'schema_migrations', 'users']);
      assert.deepEqual(
        (await db.query(`SELECT name FROM users`)).map((r) => r.name),
        ['é🔥'],
      );
      const rows = await driver.readRecord();
      assert.deepEqual(rows.map(stable), [
        {
          revision: '000002',
          name: 'users',
          checksum: 'sum-000002',
          status: 'applied',
          seq: 1,
          statementsRun: null,
          error: null,
        },
        {
          revision: '000001',
          name: 'posts',
          checksum: 'sum-000001',
          status: 'applied',
          seq: 2,
          statementsRun: null,
          error: null,
        },
      ]);
      for (const r of rows) {
        assert.match(r.appliedAt, ISO_UTC_MS);
        assert.ok(Math.abs(Date.parse(r.appliedAt) - Date.now()) < 60_000, r.appliedAt);
        assert.ok(Number.isInteger(r.durationMs) && r.durationMs >= 0);
      }
    });

    test('a transactional step whose third statement fails leaves no trace and no row', async (db) => {
      const driver = db.driver();
      await driver.ensureRecordTable();
      const step = work(
        d,
        `CREATE TABLE t (id integer PRIMARY KEY);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);\n`,
        insert('000001'),
      );
      const error = await rejection(runStep(driver, step));
      assert.ok(error instanceof StepFailure, String(error));
      assert.equal(error.details.code, dialect.uniqueViolation);
      assert.equal(
        error.details.statementIndex,
        2,
        'found by replaying the statements, as the error carries no position',
      );
      assert.ok(error.details.cause instanceof Error);
      assert.deepEqual(await tableNames(db, d), ['schema_migrations']);
      assert.deepEqual(await driver.readRecord(), []);
      // and the driver is usable afterwards (no transaction left open)
      await runStep(driver, work(d, `CREATE TABLE ok (id integer);`, insert('000002')));
      assert.deepEqual(
        (await driver.readRecord()).map((r) => r.revision),
        ['000002'],
      );
    });

    test('a no-transaction step that fails keeps what ran and records a failed row', async (db) => {
      const driver = db.driver();
      await driver.ensureRecordTable();
      await runStep(driver, work(d, `CREATE TABLE first (id integer);`, insert('000001')));
      const sql = `-- migrate:no-transaction\nCREATE TABLE t (id integer PRIMARY KEY);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);\n`;
      const error = await rejection(runStep(driver, work(d, sql, insert('000002', 'broken'), false)));
      assert.ok(error instanceof StepFailure, String(error));
      assert.equal(error.details.statementsRun, 2);
      assert.equal(error.details.statementIndex, 2);
      assert.equal(error.details.code, dialect.uniqueViolation);
      assert.deepEqual(
        (await db.query(`SELECT id FROM t`)).map((r) => Number(r.id)),
        [1],
      );
      const rows = await driver.readRecord();
      assert.deepEqual(rows.map(stable), [
        {
          revision: '000001',
          name: 'm000001',
          checksum: 'sum-000001',
          status: 'applied',
          seq: 1,
          statementsRun: null,
          error: null,
        },
        {
          revision: '000002',
          name: 'broken',
          checksum: 'sum-000002',
          status: 'failed',
          seq: 2,
          statementsRun: 2,
          error: failedNote('up', error.message),
        },
      ]);
    });

    test('a no-transaction step that succeeds records an applied row', async (db) => {
      const driver = db.driver();
      await driver.ensureRecordTable();
      const sql = `-- migrate:no-transaction\nCREATE TABLE t (id integer);\nCREATE INDEX t_id ON t (id);\n`;
      await runStep(driver, work(d, sql, insert('000001'), false));
      assert.deepEqual((await driver.readRecord()).map(stable), [
        {
          revision: '000001',
          name: 'm000001',
          checksum: 'sum-000001',
          status: 'applied',
          seq: 1,
          statementsRun: null,
          error: null,
        },
      ]);
    });

    test('an empty step (comments only) only changes the record', async (db) => {
      const driver = db.driver();
      await driver.ensureRecordTable();
      const step = work(d, `-- nothing to undo\n/* really */\n`, insert('000001'));
      assert.equal(step.empty, true);
      await runStep(driver, step);
      assert.deepEqual(
        (await driver.readRecord()).map((r) => r.revision),
        ['000001'],
      );
      await runStep(driver, work(d, `-- nothing\n`, { kind: 'delete', revision: '000001' }));
      assert.deepEqual(await driver.readRecord(), []);
      assert.deepEqual(await tableNames(db, d), ['schema_migrations']);
    });

    test('a delete record change rolls back with its file', async (db) => {
      const driver = db.driver();
      await driver.ensureRecordTable();
      await runStep(driver, work(d, `CREATE TABLE a (id integer);`, insert('000001')));
      await runStep(driver, work(d, `CREATE TABLE b (id integer);`, insert('000002')));
      await runStep(driver, work(d, `DROP TABLE b;`, { kind: 'delete', revision: '000002' }));
      assert.deepEqual(
        (await driver.readRecord()).map((r) => [r.revision, r.seq]),
        [['000001', 1]],
      );
      assert.deepEqual(await tableNames(db, d), ['a', 'schema_migrations']);
      // a failing down file keeps both the table and the row
      const error = await rejection(
        runStep(driver, work(d, `DROP TABLE a;\nDROP TABLE nope;`, { kind: 'delete', revision: '000001' })),
      );
      assert.ok(error instanceof StepFailure);
      assert.deepEqual(
        (await driver.readRecord()).map((r) => r.revision),
        ['000001'],
      );
      assert.deepEqual(await tableNames(db, d), ['a', 'schema_migrations']);
    });

    test('writeRecord replaces the whole record, seq 1..n in the order given', async (db) => {
      const driver = db.driver();
      await driver.ensureRecordTable();
      await runStep(driver, work(d, `CREATE TABLE a (id integer);`, insert('000001')));
      await runStep(
        driver,
        work(
          d,
          `-- migrate:no-transaction\nCREATE TABLE b (id integer PRIMARY KEY);\nINSERT INTO nope VALUES (1);`,
          insert('000009'),
          false,
        ),
      ).catch(() => {});
      assert.equal((await driver.readRecord()).length, 2);
      await writeRecord(driver, [
        {
          revision: '000003',
          description: 'c',
          checksum: 'c1',
          appliedAt: '2025-01-28T14:00:00.123Z',
          durationMs: 12.6,
        },
        {
          revision: '000002',
          description: "it's",
          checksum: 'b1',
          appliedAt: '2025-01-29T00:00:00.000Z',
          durationMs: 0,
        },
      ]);
      assert.deepEqual(await driver.readRecord(), [
        {
          revision: '000003',
          name: 'c',
          checksum: 'c1',
          status: 'applied',
          appliedAt: '2025-01-28T14:00:00.123Z',
          durationMs: 13,
          seq: 1,
          statementsRun: null,
          error: null,
        },
        {
          revision: '000002',
          name: "it's",
          checksum: 'b1',
          status: 'applied',
          appliedAt: '2025-01-29T00:00:00.000Z',
          durationMs: 0,
          seq: 2,
          statementsRun: null,
          error: null,
        },
      ]);
      await writeRecord(driver, []);
      assert.deepEqual(await driver.readRecord(), []);
    });

    test('renderStep run by hand gives the same record row as runStep', async (db) => {
      const other = await dialect.open();
      try {
        const up = work(
          d,
          `CREATE TABLE users (id integer PRIMARY KEY, note text);\nINSERT INTO users VALUES (1, 'it''s é🔥');\n`,
          insert('000001', "o'brien"),
        );
        const noTx = work(
          d,
          `-- migrate:no-transaction\nCREATE TABLE logs (id integer);\nCREATE INDEX logs_id ON logs (id);\n`,
          insert('000002', 'logs'),
          false,
        );
        const empty = work(d, `-- nothing\n`, insert('000003', 'empty'));
        const down = work(d, `DROP TABLE logs;\n`, { kind: 'delete', revision: '000003' });
        const steps = [up, noTx, empty, down];

        const byDriver = db.driver();
        await byDriver.ensureRecordTable();
        for (const s of steps) await runStep(byDriver, s);

        const renderer = other.driver();
        const script = renderScript(renderer.sql, 'schema_migrations', true, steps);
        assert.match(rendered(renderer, up), /^BEGIN;\n[\s\S]*\nCOMMIT;\n$/);
        assert.doesNotMatch(rendered(renderer, noTx), /BEGIN;/);
        await other.shell(script);

        const want = (await byDriver.readRecord()).map(stable);
        assert.equal(want.length, 2);
        const got = await renderer.readRecord();
        assert.deepEqual(got.map(stable), want);
        for (const r of got) assert.match(r.appliedAt, ISO_UTC_MS);
        assert.deepEqual(await tableNames(other, d), await tableNames(db, d));
        assert.deepEqual(await other.query(`SELECT id, note FROM users`), await db.query(`SELECT id, note FROM users`));
      } finally {
        await other.cleanup();
      }
    });

    test('renderStep: a last statement without `;` is not glued to the tracking statement', async (db) => {
      const driver = db.driver();
      const step = work(
        d,
        `CREATE TABLE a (id integer);\nCREATE TABLE b (id integer) -- no semicolon\n`,
        insert('000001'),
      );
      await db.shell(renderScript(driver.sql, 'schema_migrations', true, [step]));
      assert.deepEqual(
        (await driver.readRecord()).map((r) => r.revision),
        ['000001'],
      );
      assert.deepEqual(await tableNames(db, d), ['a', 'b', 'schema_migrations']);
    });
  });
}

for (const dialect of DRIVER_DIALECTS) stepProtocol(dialect);
