/**
 * The driver contract (runner/core/driver.ts), one suite run once per dialect against real
 * databases: a SQLite file in a temp dir, and PostgreSQL (a fresh database on TEST_POSTGRES_URL,
 * or an embedded PGlite). Every check reads the database through its own connection, never
 * through the driver under test. The step protocol's cases on these drivers live in
 * test/step.test.ts; the harness in test/support/drivers.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runStep, StepFailure, writeRecord } from '../runner/core/step.ts';
import { introspect } from '../runner/catalog/introspect.ts';
import { MigrateError } from '../runner/core/errors.ts';
import type { LockWaitEvent } from '../runner/core/lock-wait.ts';
import { SqliteDriver } from '../runner/core/drivers/sqlite.ts';
import { PlanChanged } from '../runner/core/driver.ts';
import { PostgresDriver } from '../runner/core/drivers/postgres.ts';
import { hasPostgresServer } from './support/postgres.ts';
import {
  type Db,
  type Dialect,
  dbTest,
  insert,
  pg,
  rejection,
  sleep,
  sqlite,
  tableNames,
  work,
} from './support/drivers.ts';

function contract(dialect: Dialect): void {
  const d = dialect.name;
  const test = dbTest(dialect);

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

    test('a step the record no longer expects (another runner got there first): PlanChanged, nothing of it ran', async (db) => {
      const driver = db.driver();
      await driver.ensureRecordTable();
      const del = (revision: string) => ({ kind: 'delete', revision }) as const;
      await runStep(driver, work(d, `CREATE TABLE a (id integer);`, insert('000001')));
      await runStep(driver, work(d, `CREATE TABLE c (id integer);`, insert('000002')));
      // Up: the revision is already recorded.
      const twice = await rejection(runStep(driver, work(d, `CREATE TABLE b (id integer);`, insert('000001'))));
      assert.ok(twice instanceof PlanChanged, String(twice));
      assert.deepEqual(twice.expected, { direction: 'up', revision: '000001' });
      // Down: applied, but not the last one applied; and not recorded at all.
      const notLast = await rejection(runStep(driver, work(d, `DROP TABLE a;`, del('000001'))));
      assert.ok(notLast instanceof PlanChanged, String(notLast));
      const gone = await rejection(runStep(driver, work(d, `DROP TABLE c;`, del('000009'))));
      assert.ok(gone instanceof PlanChanged, String(gone));
      // A no-transaction file is claimed the same way: nothing of it runs.
      const claimed = await rejection(
        runStep(driver, work(d, `CREATE TABLE e (id integer);`, insert('000002'), false)),
      );
      assert.ok(claimed instanceof PlanChanged, String(claimed));
      assert.deepEqual(await tableNames(db, d), ['a', 'c', 'schema_migrations']);
      assert.deepEqual(
        (await driver.readRecord()).map((r) => [r.revision, r.status]),
        [
          ['000001', 'applied'],
          ['000002', 'applied'],
        ],
      );
      // The last one applied rolls back as ever.
      await runStep(driver, work(d, `DROP TABLE c;`, del('000002')));
      assert.deepEqual(await tableNames(db, d), ['a', 'schema_migrations']);
    });

    test("another tool's schema_migrations is reported as foreign, and never altered", async (db) => {
      const driver = db.driver();
      await driver.ping();
      await db.query(`CREATE TABLE schema_migrations (version varchar(255) PRIMARY KEY)`);
      assert.deepEqual(await driver.recordTableState(), { kind: 'foreign', columns: ['version'] });
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

    test('withLock: a waiter is told who holds the lock, and LOCK_TIMEOUT names the holder', {
      skip: dialect.lockSkip,
    }, async (db) => {
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
      const events: LockWaitEvent[] = [];
      const error = await rejection(
        b.withLock(
          async () => {},
          5_500,
          (e) => events.push(e),
        ),
      );
      release();
      await first;
      assert.ok(error instanceof MigrateError && error.code === 'LOCK_TIMEOUT', String(error));
      assert.ok(events.length >= 1, 'told at least once while it waited');
      const holder = events[0]?.holder;
      assert.equal(typeof holder?.pid, 'number', JSON.stringify(events[0]));
      assert.ok(holder?.since, 'since when');
      if (d === 'postgres') assert.equal(typeof holder?.applicationName, 'string');
      else assert.equal(holder?.pid, process.pid, 'the SQLite holder is this process');
      assert.match(error.message, new RegExp(`^pid ${holder?.pid} \\(.*since .* holds the migration lock`));
    });
  });
}

/**
 * Every member of the contract (runner/core/driver.ts), called by name on both dialects, as
 * golang-migrate's database/testing does; the meta case fails when a driver grows a method this
 * list does not name.
 */
const CONTRACT_METHODS = [
  'ping',
  'serverRole',
  'withLock',
  'recordTableState',
  'tableExists',
  'ensureRecordTable',
  'readRecord',
  'recordTable',
  'transaction',
  'exec',
  'lockBusy',
  'observe',
  'pooler',
  'invalidIndex',
  'missingRight',
  'schemaSource',
  'rollback',
  'close',
] as const;

function byName(dialect: Dialect): void {
  const d = dialect.name;
  const withDb = (fn: (db: Db) => Promise<void>) => async () => {
    const db = await dialect.open();
    try {
      await fn(db);
    } finally {
      await db.cleanup();
    }
  };

  describe(`driver contract, method by method: ${d}`, () => {
    it('the contract list names every public method of the driver, and nothing else', () => {
      const proto = d === 'sqlite' ? SqliteDriver.prototype : PostgresDriver.prototype;
      const methods = Object.getOwnPropertyNames(proto).filter((n) => n !== 'constructor');
      assert.deepEqual([...methods].sort(), CONTRACT_METHODS.filter((m) => m in proto).sort());
      // Optional capabilities aside (observe, invalidIndex, serverRole, pooler), every method is there.
      const optional: readonly string[] = ['observe', 'invalidIndex', 'serverRole', 'pooler'];
      for (const m of CONTRACT_METHODS) {
        if (!optional.includes(m)) assert.equal(typeof (proto as unknown as Record<string, unknown>)[m], 'function', m);
      }
    });

    it(
      'capabilities and sql: what differs, and the record SQL as data',
      withDb(async (db) => {
        const driver = db.driver();
        assert.equal(driver.capabilities.folder, d);
        assert.equal(driver.capabilities.schemaQualifiedTables, d === 'postgres');
        assert.equal(driver.capabilities.connectsToServer, d === 'postgres');
        const table = driver.sql.quoteTable('schema_migrations');
        assert.match(table, /schema_migrations/);
        // The rendered statements run as they are: create the table, insert a row, read it back.
        await db.shell(
          `${driver.sql.createTable('schema_migrations')};\n${driver.sql.insert(table, { revision: '1', description: 'a', checksum: 'c', status: 'applied', durationMs: 0 })};\n`,
        );
        assert.deepEqual(
          (await driver.readRecord()).map((r) => r.revision),
          ['1'],
        );
      }),
    );

    it(
      'ping, ensureRecordTable (twice), recordTableState, tableExists, recordTable, readRecord',
      withDb(async (db) => {
        const driver = db.driver();
        await driver.ping();
        // PostgreSQL says, once pinged, which server it reached: a primary here (SQLite has none).
        const role = driver.serverRole?.();
        if (d === 'postgres') assert.equal(role?.standby, false);
        else assert.equal(role, undefined);
        assert.deepEqual(await driver.recordTableState(), { kind: 'missing' });
        assert.deepEqual(await driver.readRecord(), []);
        await driver.ensureRecordTable();
        await driver.ensureRecordTable();
        assert.deepEqual(await driver.recordTableState(), { kind: 'ok' });
        assert.equal(await driver.tableExists('alembic_version'), false);
        await db.query('CREATE TABLE alembic_version (version_num varchar(32))');
        assert.equal(await driver.tableExists('alembic_version'), true);
        const table = await driver.recordTable();
        assert.match(table, /schema_migrations/);
        assert.deepEqual(await db.query(`SELECT count(*) AS n FROM ${table}`).then((r) => Number(r[0]?.n)), 0);
      }),
    );

    it(
      'transaction commits, or with rollback leaves nothing; a failure names its statement',
      withDb(async (db) => {
        const driver = db.driver();
        await driver.transaction(['CREATE TABLE kept (a int)', 'INSERT INTO kept VALUES (1)']);
        await driver.transaction(['CREATE TABLE gone (a int)'], { rollback: true });
        assert.deepEqual(await tableNames(db, d), ['kept']);
        const error = await rejection(
          driver.transaction(['INSERT INTO kept VALUES (2)', 'INSERT INTO nowhere VALUES (1)']),
        );
        assert.equal((error as { index?: number }).index, 1);
        assert.deepEqual(
          (await db.query('SELECT a FROM kept ORDER BY a')).map((r) => Number(r.a)),
          [1],
        );
      }),
    );

    it(
      'exec runs one statement outside any transaction; rollback ends what exec left open',
      withDb(async (db) => {
        const driver = db.driver();
        await driver.rollback(); // nothing open: nothing to do
        await driver.exec('CREATE TABLE t (a int)');
        await driver.exec('BEGIN');
        await driver.exec('INSERT INTO t VALUES (1)');
        await driver.rollback();
        await driver.exec('INSERT INTO t VALUES (2)');
        assert.deepEqual(
          (await db.query('SELECT a FROM t')).map((r) => Number(r.a)),
          [2],
        );
      }),
    );

    it(
      'lockBusy: a lock not granted within the limit is busy; another error is not',
      { skip: dialect.lockSkip },
      withDb(async (db) => {
        const a = db.driver();
        const b = db.driver();
        await a.exec('CREATE TABLE t (a int)');
        await b.exec('BEGIN');
        await b.exec(d === 'sqlite' ? 'INSERT INTO t VALUES (1)' : 'LOCK TABLE t');
        const busy = await rejection(a.exec('INSERT INTO t VALUES (2)', { lockTimeoutMs: 50 }));
        await b.rollback();
        assert.equal(a.lockBusy(busy), true, String(busy));
        const other = await rejection(a.exec('INSERT INTO nowhere VALUES (1)'));
        assert.equal(a.lockBusy(other), false);
      }),
    );

    it(
      'withLock returns what fn returns, and is free again afterwards',
      withDb(async (db) => {
        const driver = db.driver();
        assert.equal(await driver.withLock(async () => 42, 1000), 42);
        assert.equal(await db.driver().withLock(async () => 'again', 1000), 'again');
      }),
    );

    it(
      'observe (optional) never throws; invalidIndex (optional) tells an INVALID index from a valid or absent one',
      withDb(async (db) => {
        const driver = db.driver();
        await driver.ping();
        if (driver.observe) {
          const seen = await driver.observe(false);
          assert.ok(seen === undefined || Array.isArray(seen.blockers));
        }
        if (d === 'sqlite') {
          assert.equal(driver.invalidIndex, undefined, 'SQLite has no CREATE INDEX CONCURRENTLY');
          return;
        }
        assert.ok(driver.invalidIndex);
        await driver.exec('CREATE TABLE t (a int)');
        await driver.exec('INSERT INTO t VALUES (1), (1), (2)');
        await driver.exec('CREATE INDEX ok_ix ON t (a)');
        await rejection(driver.exec('CREATE UNIQUE INDEX CONCURRENTLY bad_ix ON t (a)'));
        assert.equal(await driver.invalidIndex('bad_ix'), true);
        assert.equal(await driver.invalidIndex('ok_ix'), false);
        assert.equal(await driver.invalidIndex('no_such_ix'), false);
      }),
    );

    it(
      'missingRight: none for the database owner; schemaSource lends the session without the record table',
      withDb(async (db) => {
        const driver = db.driver();
        await driver.ensureRecordTable();
        assert.equal(await driver.missingRight(), undefined);
        const source = await driver.schemaSource();
        assert.equal(source.table, 'schema_migrations');
        if ('db' in source) assert.deepEqual(source.db.prepare('SELECT 1 AS one').get(), { one: 1 });
        else assert.deepEqual([...(await source.query('SELECT 1 AS one'))], [{ one: 1 }]);
      }),
    );

    it(
      'close is safe twice, and the database is usable by the next driver',
      withDb(async (db) => {
        const driver = db.driver();
        await driver.ensureRecordTable();
        await driver.close();
        await driver.close();
        assert.deepEqual(await db.driver().recordTableState(), { kind: 'ok' });
      }),
    );
  });
}

contract(sqlite);
contract(pg);
byName(sqlite);
byName(pg);

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
