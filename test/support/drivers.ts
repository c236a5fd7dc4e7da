/**
 * The driver suites' harness (test/driver-contract.test.ts, test/step.test.ts): one fresh
 * database per case in either dialect (a SQLite file in a temp dir; PostgreSQL at
 * TEST_POSTGRES_URL, or an embedded PGlite), drivers on it, and the test's own connection and
 * shell to look at it from outside the driver under test.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import postgres from 'postgres';
import type { RecordChange, StepWork } from '../../runner/core/step.ts';
import type { RecordRow } from '../../runner/core/record.ts';
import type { Driver } from '../../runner/core/driver.ts';
import { renderStep } from '../../runner/core/script.ts';
import { splitStatements } from '../../runner/core/split.ts';
import type { Dialect as DialectName } from '../../runner/core/dialect.ts';
import { SqliteDriver } from '../../runner/core/drivers/sqlite.ts';
import { PostgresDriver } from '../../runner/core/drivers/postgres.ts';
import { createPostgresDatabase, hasPostgresServer } from './postgres.ts';
import { tempSqliteUrl } from './sqlite.ts';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const ISO_UTC_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** One fresh database, and what the suite needs to look at it from outside the driver. */
export interface Db {
  /** A new driver on this database (closed by `cleanup`). */
  driver(table?: string): Driver;
  /** A query through the test's own connection. */
  query(sql: string): Promise<Array<Record<string, unknown>>>;
  /** Run a script with the dialect's own shell (`psql -v ON_ERROR_STOP=1`, `sqlite3 -bail`). */
  shell(script: string): Promise<void>;
  cleanup(): Promise<void>;
}

export interface Dialect {
  name: DialectName;
  open(): Promise<Db>;
  /** Two drivers on one database exclude each other through the lock (not on embedded PGlite). */
  lockSkip: string | false;
  /** A unique violation's SQLSTATE / result code. */
  uniqueViolation: string;
  /** Known failures of this dialect's driver: the name of the test → why. */
  todo?: Record<string, string>;
}

export function run(cmd: string, args: string[], input: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
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

export const sqlite: Dialect = {
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

export const pg: Dialect = {
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

export function insert(revision: string, name = `m${revision}`): RecordChange {
  return { kind: 'insert', revision, description: name, checksum: `sum-${revision}` };
}

export function work(dialect: DialectName, sql: string, record: RecordChange, transactional = true): StepWork {
  const statements = splitStatements(sql, dialect);
  return { file: `${record.revision}.sql`, sql, statements, transactional, empty: statements.length === 0, record };
}

/** The step as a rendered script spells it, on the default record table. */
export function rendered(driver: Driver, step: StepWork): string {
  return renderStep(driver.sql, driver.sql.quoteTable('schema_migrations'), step);
}

/** The row without what differs from run to run. */
export function stable(row: RecordRow): Omit<RecordRow, 'appliedAt' | 'durationMs'> {
  const { appliedAt: _a, durationMs: _d, ...rest } = row;
  return rest;
}

export async function tableNames(db: Db, dialect: DialectName): Promise<string[]> {
  const rows =
    dialect === 'sqlite'
      ? await db.query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
      : await db.query(
          `SELECT table_schema || '.' || table_name AS name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
        );
  return rows.map((r) => String(r.name).replace(/^public\./, ''));
}

export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (error) {
    return error;
  }
  assert.fail('expected a rejection');
}

type Body = (db: Db) => Promise<void>;

/** `it`, on a fresh database of `dialect` opened before and cleaned up after each case. */
export function dbTest(dialect: Dialect) {
  return (name: string, a: Body | { skip: string | false }, b?: Body) => {
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
}

export const DRIVER_DIALECTS: readonly Dialect[] = [sqlite, pg];
