/**
 * What the step protocol (runner/step.ts) tells the user, beyond the driver contract: whether a
 * failed file's transaction was really rolled back, which revision a lost connection
 * interrupted, and that a rendered SQLite script stops where the runner would.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { SqliteDriver } from '../runner/core/drivers/sqlite.ts';
import { runStep, StepFailure, toMigrationFailed, type StepWork } from '../runner/core/step.ts';
import { splitStatements } from '../runner/core/split.ts';
import type { Migration } from '../runner/core/files.ts';
import { fixture, runCli, startCli } from './support/cli.ts';
import { withTestDb, type TestDb } from './support/db.ts';
import { hasPostgresServer } from './support/postgres.ts';
import { tempSqliteUrl } from './support/sqlite.ts';

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
