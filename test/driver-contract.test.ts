/**
 * The driver contract (runner/driver.ts), one suite run once per dialect against real
 * databases: a SQLite file in a temp dir, and PostgreSQL (a fresh database on TEST_POSTGRES_URL,
 * or an embedded PGlite). Every check reads the database through its own connection, never
 * through the driver under test.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import postgres from 'postgres';
import { type RecordChange, type StepWork, runStep, StepFailure, writeRecord } from '../runner/core/step.ts';
import { type RecordRow, failedNote } from '../runner/core/record.ts';
import { introspect } from '../runner/catalog/introspect.ts';
import type { Driver } from '../runner/core/driver.ts';
import { renderScript, renderStep } from '../runner/core/script.ts';
import { MigrateError } from '../runner/core/errors.ts';
import { splitStatements, type SplitDialect } from '../runner/core/split.ts';
import { SqliteDriver } from '../runner/core/drivers/sqlite.ts';
import { PostgresDriver } from '../runner/core/drivers/postgres.ts';
import { createPostgresDatabase, hasPostgresServer } from './support/postgres.ts';
import { tempSqliteUrl } from './support/sqlite.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ISO_UTC_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** One fresh database, and what the suite needs to look at it from outside the driver. */
interface Db {
  /** A new driver on this database (closed by `cleanup`). */
  driver(table?: string): Driver;
  /** A query through the test's own connection. */
  query(sql: string): Promise<Array<Record<string, unknown>>>;
  /** Run a script with the dialect's own shell (`psql -v ON_ERROR_STOP=1`, `sqlite3 -bail`). */
  shell(script: string): Promise<void>;
  cleanup(): Promise<void>;
}

interface Dialect {
  name: SplitDialect;
  open(): Promise<Db>;
  /** Two drivers on one database exclude each other through the lock (not on embedded PGlite). */
  lockSkip: string | false;
  /** A unique violation's SQLSTATE / result code. */
  uniqueViolation: string;
  /** Known failures of this dialect's driver: the name of the test → why. */
  todo?: Record<string, string>;
}

function run(cmd: string, args: string[], input: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return new Promise((resolve, reject) => {
    // Asynchronous on purpose: the embedded PostgreSQL server runs in this process's event loop.
    const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stdout.resume();
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err}`))));
    child.stdin.end(input);
  });
}

const sqlite: Dialect = {
  name: 'sqlite',
  lockSkip: false,
  uniqueViolation: 'SQLITE_CONSTRAINT_PRIMARYKEY',
  async open() {
    const tmp = tempSqliteUrl();
    const drivers: Driver[] = [];
    return {
      driver(table = 'schema_migrations') {
        const d = new SqliteDriver({ filename: tmp.path, table, create: true });
        drivers.push(d);
        return d;
      },
      async query(sql) {
        const db = new Database(tmp.path);
        try {
          const statement = db.prepare(sql);
          if (statement.reader) return statement.all() as Array<Record<string, unknown>>;
          statement.run();
          return [];
        } finally {
          db.close();
        }
      },
      shell: (script) => run('sqlite3', ['-bail', tmp.path], script),
      async cleanup() {
        for (const d of drivers) await d.close();
        tmp.cleanup();
      },
    };
  },
};

const pg: Dialect = {
  name: 'postgres',
  lockSkip: hasPostgresServer
    ? false
    : 'embedded PGlite: every connection shares one backend session, so advisory locks cannot exclude (set TEST_POSTGRES_URL)',
  uniqueViolation: '23505',
  async open() {
    const database = await createPostgresDatabase();
    const drivers: Driver[] = [];
    const client = postgres(database.url, { max: 1, onnotice: () => {}, fetch_types: false });
    return {
      driver(table = 'schema_migrations') {
        const d = new PostgresDriver({ url: database.url, display: database.url, table, create: true });
        drivers.push(d);
        return d;
      },
      query: async (sql) => [...(await client.unsafe(sql))],
      shell: (script) =>
        run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', database.url, '-f', '-'], script, {
          ...process.env,
          PGSSLMODE: 'disable',
        }),
      async cleanup() {
        for (const d of drivers) await d.close();
        await client.end({ timeout: 5 });
        await database.drop();
      },
    };
  },
};

function insert(revision: string, name = `m${revision}`): RecordChange {
  return { kind: 'insert', revision, description: name, checksum: `sum-${revision}` };
}

function work(dialect: SplitDialect, sql: string, record: RecordChange, transactional = true): StepWork {
  const statements = splitStatements(sql, dialect);
  return { file: `${record.revision}.sql`, sql, statements, transactional, empty: statements.length === 0, record };
}

/** The step as a rendered script spells it, on the default record table. */
function rendered(driver: Driver, step: StepWork): string {
  return renderStep(driver.sql, driver.sql.quoteTable('schema_migrations'), step);
}

/** The row without what differs from run to run. */
function stable(row: RecordRow): Omit<RecordRow, 'appliedAt' | 'durationMs'> {
  const { appliedAt: _a, durationMs: _d, ...rest } = row;
  return rest;
}

async function tableNames(db: Db, dialect: SplitDialect): Promise<string[]> {
  const rows =
    dialect === 'sqlite'
      ? await db.query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
      : await db.query(
          `SELECT table_schema || '.' || table_name AS name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
        );
  return rows.map((r) => String(r.name).replace(/^public\./, ''));
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (error) {
    return error;
  }
  assert.fail('expected a rejection');
}

function contract(dialect: Dialect): void {
  const d = dialect.name;
  type Body = (db: Db) => Promise<void>;
  const test = (name: string, a: Body | { skip: string | false }, b?: Body) => {
    const fn = (typeof a === 'function' ? a : b) as Body;
    const skip = typeof a === 'function' ? false : a.skip;
    return it(name, { skip, todo: dialect.todo?.[name] ?? false }, async () => {
      const db = await dialect.open();
      try {
        await fn(db);
      } finally {
        await db.cleanup();
      }
    });
  };

  describe(`driver contract: ${d}`, () => {
    test('ping; missing record table → ensureRecordTable → ok; readRecord [] before', async (db) => {
      const driver = db.driver();
      await driver.ping();
      assert.deepEqual(await driver.recordTableState(), { kind: 'missing' });
      assert.deepEqual(await driver.readRecord(), []);
      assert.deepEqual(await tableNames(db, d), [], 'reading creates nothing');
      await driver.ensureRecordTable();
      await driver.ensureRecordTable();
      assert.deepEqual(await driver.recordTableState(), { kind: 'ok' });
      assert.deepEqual(await driver.readRecord(), []);
      assert.equal(await driver.tableExists('schema_migrations'), true);
      assert.equal(await driver.tableExists('alembic_version'), false);
    });

    test("another tool's schema_migrations is reported as foreign, and never altered", async (db) => {
      const driver = db.driver();
      await driver.ping();
      await db.query(`CREATE TABLE schema_migrations (version varchar(255) PRIMARY KEY)`);
      assert.deepEqual(await driver.recordTableState(), { kind: 'foreign', columns: ['version'] });
      assert.deepEqual(await driver.readRecord(), []);
    });

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

    test('introspect shows what the migrations built, never the record table', async (db) => {
      const driver = db.driver();
      await driver.ensureRecordTable();
      await runStep(
        driver,
        work(
          d,
          `CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL);\nCREATE INDEX users_email ON users (email);\n`,
          insert('000001'),
        ),
      );
      const schema = await introspect(driver);
      assert.deepEqual(
        schema.tables.map((t) => t.name),
        ['users'],
      );
      const users = schema.tables[0];
      assert.deepEqual(users?.primaryKey, ['id']);
      assert.deepEqual(
        users?.columns.map((c) => [c.name, c.nullable]),
        [
          ['id', false],
          ['email', false],
        ],
      );
      assert.deepEqual(
        users?.indexes.map((i) => [i.name, i.columns]),
        [['users_email', ['email']]],
      );
    });

    test('withLock: a second holder waits until the first releases', { skip: dialect.lockSkip }, async (db) => {
      const a = db.driver();
      const b = db.driver();
      const events: string[] = [];
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let entered!: () => void;
      const aIn = new Promise<void>((r) => (entered = r));
      const first = a.withLock(async () => {
        events.push('a in');
        entered();
        await held;
        events.push('a out');
        return 'a';
      }, undefined);
      await aIn;
      const second = b.withLock(async () => {
        events.push('b in');
        return 'b';
      }, 3_000); // well past the 400 ms below; short, so a driver that blocks while polling fails fast
      second.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
      await sleep(400);
      assert.deepEqual(events, ['a in'], 'b must not enter while a holds the lock');
      release();
      assert.deepEqual(await Promise.all([first, second]), ['a', 'b']);
      assert.deepEqual(events, ['a in', 'a out', 'b in']);
      // released after a throw too
      await assert.rejects(
        a.withLock(async () => Promise.reject(new Error('boom')), undefined),
        /boom/,
      );
      assert.equal(await b.withLock(async () => 'again', 1_000), 'again');
    });

    test('withLock: LOCK_TIMEOUT when not taken in time, and fn never runs', { skip: dialect.lockSkip }, async (db) => {
      const a = db.driver();
      const b = db.driver();
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let entered!: () => void;
      const aIn = new Promise<void>((r) => (entered = r));
      const first = a.withLock(async () => {
        entered();
        await held;
      }, undefined);
      await aIn;
      let ran = false;
      const started = Date.now();
      const error = await rejection(
        b.withLock(async () => {
          ran = true;
        }, 300),
      );
      const waited = Date.now() - started;
      release();
      await first;
      assert.ok(error instanceof MigrateError, String(error));
      assert.equal(error.code, 'LOCK_TIMEOUT');
      assert.equal(error.exitCode, 3);
      assert.equal(ran, false);
      assert.ok(waited >= 250 && waited < 3_000, `gave up after ${waited} ms`);
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
        const down = work(d, `DROP TABLE logs;\n`, { kind: 'delete', revision: '000002' });
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

contract(sqlite);
contract(pg);

describe('PostgreSQL driver specifics', () => {
  const open = () => pg.open();
  const withDb = (fn: (db: Db) => Promise<void>) => async () => {
    const db = await open();
    try {
      await fn(db);
    } finally {
      await db.cleanup();
    }
  };

  it(
    'a schema-qualified record table (ops.migrations): schema created, rows written there',
    withDb(async (db) => {
      const driver = db.driver('ops.migrations');
      assert.deepEqual(await driver.recordTableState(), { kind: 'missing' });
      assert.match(
        driver.sql.createTable('ops.migrations'),
        /^CREATE SCHEMA IF NOT EXISTS "ops";\nCREATE TABLE IF NOT EXISTS "ops"\."migrations" \(/,
      );
      await driver.withLock(async () => {
        await driver.ensureRecordTable();
        await runStep(driver, work('postgres', `CREATE TABLE users (id integer);`, insert('000001')));
      }, 5_000);
      assert.deepEqual(await driver.recordTableState(), { kind: 'ok' });
      assert.deepEqual(await tableNames(db, 'postgres'), ['ops.migrations', 'users']);
      assert.deepEqual(
        (await db.query(`SELECT revision FROM ops.migrations`)).map((r) => r.revision),
        ['000001'],
      );
      assert.deepEqual(
        (await driver.readRecord()).map((r) => r.revision),
        ['000001'],
      );
      assert.deepEqual(
        (await introspect(driver)).tables.map((t) => t.name),
        ['users'],
        'ops.migrations is the record, not schema',
      );
      // the default table in the same database is a different, still missing, record
      const plain = db.driver();
      assert.deepEqual(await plain.recordTableState(), { kind: 'missing' });
      assert.equal(await plain.tableExists('migrations'), false, 'ops is not on the search_path');
      // the schema already there (e.g. made by a DBA) is fine
      const again = db.driver('ops.other');
      await again.ensureRecordTable();
      assert.deepEqual(await again.recordTableState(), { kind: 'ok' });
    }),
  );

  it(
    'a migration that changes search_path does not move the record',
    withDb(async (db) => {
      const driver = db.driver();
      await driver.ensureRecordTable();
      await runStep(
        driver,
        work(
          'postgres',
          `CREATE SCHEMA app;\nSET search_path TO app;\nCREATE TABLE users (id integer);`,
          insert('000001'),
        ),
      );
      await runStep(driver, work('postgres', `CREATE TABLE posts (id integer);`, insert('000002')));
      assert.deepEqual(await tableNames(db, 'postgres'), ['app.posts', 'app.users', 'schema_migrations']);
      assert.deepEqual(
        (await db.query(`SELECT revision FROM public.schema_migrations ORDER BY seq`)).map((r) => r.revision),
        ['000001', '000002'],
      );
      assert.deepEqual(
        (await driver.readRecord()).map((r) => r.revision),
        ['000001', '000002'],
      );
    }),
  );

  it(
    'a table of that name in another schema is not ours: missing, not foreign',
    withDb(async (db) => {
      await db.query(`CREATE SCHEMA ops; CREATE TABLE ops.schema_migrations (version bigint PRIMARY KEY)`);
      const driver = db.driver();
      assert.deepEqual(await driver.recordTableState(), { kind: 'missing' });
      assert.deepEqual(await db.driver('ops.schema_migrations').recordTableState(), {
        kind: 'foreign',
        columns: ['version'],
      });
    }),
  );

  it('an unreachable server: CONNECTION_FAILED naming the URL without its password', async () => {
    const driver = new PostgresDriver({
      url: 'postgres://bob:s3cr%40t-pw@127.0.0.1:1/app',
      display: 'postgres://bob:****@127.0.0.1:1/app',
      table: 'schema_migrations',
      create: true,
    });
    try {
      const error = await rejection(driver.ping());
      assert.ok(error instanceof MigrateError, String(error));
      assert.equal(error.code, 'CONNECTION_FAILED');
      assert.equal(error.exitCode, 3);
      assert.match(error.message, /postgres:\/\/bob:\*\*\*\*@127\.0\.0\.1:1\/app/);
      assert.doesNotMatch(error.message, /s3cr/);
      // every method, not only ping
      const again = await rejection(driver.readRecord());
      assert.ok(again instanceof MigrateError && again.code === 'CONNECTION_FAILED');
    } finally {
      await driver.close();
      await driver.close();
    }
  });

  it('a database that does not exist: CONNECTION_FAILED', {
    skip: !hasPostgresServer && 'needs TEST_POSTGRES_URL',
  }, async () => {
    const url = new URL(process.env.TEST_POSTGRES_URL as string);
    url.pathname = '/mig_t_does_not_exist';
    const driver = new PostgresDriver({
      url: url.toString(),
      display: url.toString(),
      table: 'schema_migrations',
      create: false,
    });
    try {
      const error = await rejection(driver.ping());
      assert.ok(error instanceof MigrateError, String(error));
      assert.equal(error.code, 'CONNECTION_FAILED');
      assert.match(error.message, /mig_t_does_not_exist/);
    } finally {
      await driver.close();
    }
  });

  it(
    'no-transaction files run CREATE INDEX CONCURRENTLY; a file left in BEGIN is a failure',
    withDb(async (db) => {
      const driver = db.driver();
      await driver.ensureRecordTable();
      await runStep(driver, work('postgres', `CREATE TABLE t (id integer);`, insert('000001')));
      await runStep(
        driver,
        work(
          'postgres',
          `-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n`,
          insert('000002'),
          false,
        ),
      );
      assert.deepEqual(
        (await db.query(`SELECT indexname FROM pg_indexes WHERE tablename = 't'`)).map((r) => r.indexname),
        ['t_id'],
      );
      const error = await rejection(
        runStep(
          driver,
          work(
            'postgres',
            `-- migrate:no-transaction\nBEGIN;\nCREATE TABLE u (id integer);\n`,
            insert('000003'),
            false,
          ),
        ),
      );
      assert.ok(error instanceof StepFailure, String(error));
      assert.match(error.message, /transaction open/);
      assert.deepEqual(
        await tableNames(db, 'postgres'),
        ['schema_migrations', 't'],
        'the open transaction was rolled back',
      );
      assert.deepEqual(
        (await driver.readRecord()).map((r) => [r.revision, r.status, r.statementsRun]),
        [
          ['000001', 'applied', null],
          ['000002', 'applied', null],
          ['000003', 'failed', 2],
        ],
      );
      // a statement failing inside the file's own BEGIN: rolled back, the failed row still written
      await writeRecord(driver, []);
      const inner = await rejection(
        runStep(
          driver,
          work(
            'postgres',
            `-- migrate:no-transaction\nBEGIN;\nCREATE TABLE v (id integer);\nSELECT 1/0;\nCOMMIT;\n`,
            insert('000004'),
            false,
          ),
        ),
      );
      assert.ok(inner instanceof StepFailure);
      assert.equal(inner.details.code, '22012');
      assert.equal(inner.details.statementIndex, 2);
      assert.deepEqual(
        (await driver.readRecord()).map((r) => [r.revision, r.status, r.statementsRun]),
        [['000004', 'failed', 2]],
      );
      assert.deepEqual(await tableNames(db, 'postgres'), ['schema_migrations', 't']);
    }),
  );

  it(
    'a failing tracking statement is not located in the file',
    withDb(async (db) => {
      const driver = db.driver();
      await driver.ensureRecordTable();
      await runStep(driver, work('postgres', `CREATE TABLE a (id integer);`, insert('000001')));
      const error = await rejection(
        runStep(driver, work('postgres', `CREATE TABLE b (id integer);`, insert('000001'))),
      );
      assert.ok(error instanceof StepFailure);
      assert.equal(error.details.code, '23505');
      assert.equal(error.details.offset, undefined);
      assert.equal(error.details.statementIndex, undefined);
      assert.deepEqual(await tableNames(db, 'postgres'), ['a', 'schema_migrations']);
    }),
  );

  it(
    'locks on different record tables do not block each other',
    { skip: pg.lockSkip },
    withDb(async (db) => {
      const a = db.driver('schema_migrations');
      const b = db.driver('ops.schema_migrations');
      const c = db.driver('public.schema_migrations');
      await a.withLock(async () => {
        assert.equal(await b.withLock(async () => 'b', 500), 'b');
        const error = await rejection(c.withLock(async () => 'c', 200));
        assert.ok(
          error instanceof MigrateError && error.code === 'LOCK_TIMEOUT',
          'public.schema_migrations is the same table as schema_migrations',
        );
      }, 1_000);
    }),
  );

  it(
    'a waiter holds no transaction or snapshot: the holder can CREATE INDEX CONCURRENTLY',
    { skip: pg.lockSkip },
    withDb(async (db) => {
      const holder = db.driver();
      const waiter = db.driver();
      await holder.ensureRecordTable();
      await runStep(
        holder,
        work(
          'postgres',
          `CREATE TABLE t (id integer); INSERT INTO t SELECT generate_series(1, 1000);`,
          insert('000001'),
        ),
      );
      let waiting: Promise<string> | undefined;
      await holder.withLock(async () => {
        waiting = waiter.withLock(async () => 'waiter', 20_000);
        await sleep(300);
        // Between its polls the waiter is idle; sampled during a poll it is briefly active.
        let sample: Record<string, unknown> | undefined;
        for (let i = 0; i < 20 && sample?.state !== 'idle'; i++) {
          const rows = await db.query(
            `SELECT state, backend_xid, backend_xmin FROM pg_stat_activity WHERE application_name = 'sql-migrate' AND datname = current_database() AND pid <> ALL (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)`,
          );
          assert.equal(rows.length, 1, 'the waiter, and only it, holds no advisory lock');
          sample = rows[0];
        }
        assert.deepEqual(sample, { state: 'idle', backend_xid: null, backend_xmin: null });
        await runStep(
          holder,
          work(
            'postgres',
            `-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);`,
            insert('000002'),
            false,
          ),
        );
      }, 5_000);
      assert.equal(await waiting, 'waiter');
      assert.deepEqual(
        (await holder.readRecord()).map((r) => r.revision),
        ['000001', '000002'],
      );
    }),
  );

  it(
    'the connection holding the lock drops: later steps fail instead of running unlocked',
    { skip: pg.lockSkip },
    withDb(async (db) => {
      const driver = db.driver();
      await driver.ensureRecordTable();
      const error = await rejection(
        driver.withLock(async () => {
          await runStep(driver, work('postgres', `CREATE TABLE a (id integer);`, insert('000001')));
          await db.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sql-migrate' AND datname = current_database()`,
          );
          await sleep(200);
          await runStep(driver, work('postgres', `CREATE TABLE b (id integer);`, insert('000002')));
        }, 5_000),
      );
      assert.ok(error instanceof MigrateError, String(error));
      assert.equal(error.code, 'CONNECTION_FAILED');
      assert.match(error.message, /lock/);
      assert.deepEqual(await tableNames(db, 'postgres'), ['a', 'schema_migrations']);
      // a new lock on a new connection works again
      assert.equal(await driver.withLock(async () => (await driver.readRecord()).length, 1_000), 1);
    }),
  );
});
