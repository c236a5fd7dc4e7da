/**
 * A migration waiting for a table lock must not stall the application: each attempt waits a
 * bounded time, then is rolled back and retried within a budget, the session in the way is
 * named, and nothing of the limits stays on the session. Real PostgreSQL sessions and real
 * SQLite connections hold the locks.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import Database from 'better-sqlite3';
import { runCli, startCli } from './support/cli.ts';
import { createPostgresDatabase, hasPostgresServer, type TestDatabase } from './support/postgres.ts';
import { tempSqliteUrl } from './support/sqlite.ts';
import { PostgresDriver } from '../runner/core/drivers/postgres.ts';
import { backoff } from '../runner/core/locks.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A folder holding one migration pair directly (used for whichever dialect the URL names). */
function folder(up: string, down = '-- nothing'): string {
  const dir = mkdtempSync(join(tmpdir(), 'mig-locks-'));
  dirs.push(dir);
  writeFileSync(join(dir, '20250101_000000_add_column.up.sql'), up);
  writeFileSync(join(dir, '20250101_000000_add_column.down.sql'), down);
  return dir;
}

const connect = (url: string, app: string) =>
  postgres(url, { max: 1, onnotice: () => {}, fetch_types: false, connection: { application_name: app } });

/**
 * 20 loops reading `users` every 10 ms; `end` returns the longest any one query waited. Each
 * client has connected and read once before the loops start, so a connection being made is
 * never counted as a wait.
 */
async function clients(url: string) {
  const pools = Array.from({ length: 20 }, (_, i) => connect(url, `client-${i}`));
  await Promise.all(pools.map((c) => c`SELECT 1`));
  let stop = false;
  let longest = 0;
  const loops = pools.map(async (c) => {
    while (!stop) {
      const t = performance.now();
      await c`SELECT count(*) FROM users`;
      longest = Math.max(longest, performance.now() - t);
      await new Promise((r) => setTimeout(r, 10));
    }
  });
  return {
    async end(): Promise<number> {
      stop = true;
      await Promise.all(loops);
      await Promise.all(pools.map((c) => c.end({ timeout: 1 })));
      return longest;
    },
  };
}

/** Until a session whose application_name matches `app` (a LIKE pattern) waits for a lock it has not been granted. */
async function waiting(url: string, app: string): Promise<void> {
  const sql = connect(url, 'watch');
  try {
    for (;;) {
      const rows = await sql`
        SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE NOT l.granted AND a.application_name LIKE ${app} AND a.datname = current_database()`;
      if (rows.length > 0) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await sql.end();
  }
}

/** Until the runner's session waits for a lock. */
const queued = (url: string) => waiting(url, 'sql-migrate');

/** A session of "the bot" that read `users` and sits idle in its transaction. */
async function blocker(url: string) {
  const sql = connect(url, 'bot-worker');
  const reserved = sql; // max: 1, so BEGIN and what follows share one session
  await reserved`BEGIN`;
  await reserved`SELECT count(*) FROM users`;
  const [row] = await reserved`SELECT pg_backend_pid() AS pid`;
  let done = false;
  return {
    pid: row?.pid as number,
    async commit() {
      if (done) return;
      done = true;
      await reserved`COMMIT`;
      await sql.end({ timeout: 1 });
    },
  };
}

describe('table locks on PostgreSQL', {
  skip: !hasPostgresServer && 'needs a PostgreSQL server (TEST_POSTGRES_URL)',
}, () => {
  let db: TestDatabase;
  const setup = async () => {
    db = await createPostgresDatabase();
    const sql = connect(db.url, 'setup');
    await sql`CREATE TABLE users (id int PRIMARY KEY)`;
    await sql`INSERT INTO users SELECT generate_series(1, 100)`;
    await sql.end();
  };
  const columns = async () => {
    const sql = connect(db.url, 'check');
    const rows = await sql`SELECT attname FROM pg_attribute WHERE attrelid = 'users'::regclass AND attnum > 0`;
    const record = await sql`SELECT to_regclass('schema_migrations') IS NOT NULL AS t`;
    const applied = record[0]?.t ? await sql`SELECT revision FROM schema_migrations` : [];
    await sql.end();
    return { columns: rows.map((r) => r.attname as string), applied: applied.map((r) => r.revision as string) };
  };

  it('an idle-in-transaction session: clients never queue longer than the timeout, the migration applies after it commits, and the blocker is named', async () => {
    await setup();
    try {
      const dir = folder('ALTER TABLE users ADD COLUMN nickname text;');
      const bot = await blocker(db.url);
      const load = await clients(db.url);
      const run = startCli(['head', '--url', db.url, '--dir', dir]);
      await new Promise((r) => setTimeout(r, 8000));
      await bot.commit();
      const result = await run.done;
      const longest = await load.end();
      assert.equal(result.code, 0, result.stderr);
      assert.ok(longest <= 1300, `a client query waited ${Math.round(longest)} ms`);
      assert.match(result.stderr, new RegExp(`pid ${bot.pid} \\(application_name "bot-worker"`));
      assert.match(result.stderr, /idle in transaction/);
      assert.match(result.stderr, /a lock on users/);
      assert.deepEqual(await columns(), { columns: ['id', 'nickname'], applied: ['20250101_000000'] });
    } finally {
      await db.drop();
    }
  });

  it('--table-lock-timeout=0 waits as long as it takes: the same clients then queue behind it (the measure works)', async () => {
    await setup();
    try {
      const dir = folder('ALTER TABLE users ADD COLUMN nickname text;');
      const bot = await blocker(db.url);
      const load = await clients(db.url);
      const run = startCli(['head', '--url', db.url, '--dir', dir, '--table-lock-timeout=0']);
      // The clients queue behind the ALTER once it is queued (they do not conflict with the
      // blocker itself): from the moment one is seen waiting, that query cannot end before the
      // blocker commits, 8 s later, however slow the machine.
      await queued(db.url);
      await waiting(db.url, 'client-%');
      await new Promise((r) => setTimeout(r, 8000));
      await bot.commit();
      const result = await run.done;
      const longest = await load.end();
      assert.equal(result.code, 0, result.stderr);
      assert.ok(longest >= 7000, `the longest client wait was only ${Math.round(longest)} ms`);
    } finally {
      await db.drop();
    }
  });

  it('a blocker that never commits: exit 3 TABLE_LOCK_TIMEOUT within the budget, nothing recorded, the blocker named', async () => {
    await setup();
    const dir = folder('ALTER TABLE users ADD COLUMN nickname text;');
    const bot = await blocker(db.url);
    try {
      const t = Date.now();
      const result = await runCli(['head', '--url', db.url, '--dir', dir, '--retry-for=5']);
      assert.equal(result.code, 3, result.stderr);
      assert.ok(Date.now() - t < 8000 + 2000, `took ${Date.now() - t} ms`); // + the CLI's own start
      assert.match(result.stderr, /\[TABLE_LOCK_TIMEOUT\]/);
      assert.match(
        result.stderr,
        new RegExp(`pid ${bot.pid} \\(application_name "bot-worker", user \\w+, idle in transaction`),
      );
      assert.doesNotMatch(result.stderr, /SELECT count/); // no query text unless asked
      await bot.commit();
      assert.deepEqual(await columns(), { columns: ['id'], applied: [] });
    } finally {
      await bot.commit();
      await db.drop();
    }
  });

  it('--json carries the blockers as fields, and --show-blocker-query their query', async () => {
    await setup();
    const dir = folder('ALTER TABLE users ADD COLUMN nickname text;');
    const bot = await blocker(db.url);
    try {
      const result = await runCli([
        'head',
        '--url',
        db.url,
        '--dir',
        dir,
        '--retry-for=2',
        '--json',
        '--show-blocker-query',
      ]);
      assert.equal(result.code, 3, result.stderr);
      const out = JSON.parse(result.stdout);
      assert.equal(out.error.code, 'TABLE_LOCK_TIMEOUT');
      assert.equal(out.error.relation, 'users');
      const b = out.error.blockers.find((x: { pid: number }) => x.pid === bot.pid);
      assert.equal(b.applicationName, 'bot-worker');
      assert.equal(b.state, 'idle in transaction');
      assert.match(b.mode, /AccessShareLock/);
      assert.ok(b.transactionAgeMs > 0);
      assert.match(b.query, /pg_backend_pid/);
      const events = result.stderr.split('\n').filter((l) => l.startsWith('{'));
      assert.ok(
        events.some((l) => JSON.parse(l).event === 'lock-wait'),
        result.stderr,
      );
    } finally {
      await bot.commit();
      await db.drop();
    }
  });

  it('the limits stay with the attempt: the session shows its defaults after a step and after a statement', async () => {
    await setup();
    const driver = new PostgresDriver({ url: db.url, display: 'db', table: 'schema_migrations', create: true });
    try {
      await driver.ping();
      const show = async () => {
        const source = (await driver.schemaSource()) as {
          query: (t: string, p: string[]) => Promise<Array<Record<string, unknown>>>;
        };
        const [row] = await source.query('SELECT current_setting($1) AS v, current_setting($2) AS s', [
          'lock_timeout',
          'statement_timeout',
        ]);
        return [row?.v, row?.s];
      };
      const before = await show();
      const limits = { lockTimeoutMs: 1500, statementTimeoutMs: 20_000 };
      await driver.transaction(['SELECT 1'], { limits });
      assert.deepEqual(await show(), before);
      await driver.exec('CREATE INDEX CONCURRENTLY users_id ON users (id)', limits);
      assert.deepEqual(await show(), before);
      await assert.rejects(driver.exec('SELECT nope', limits));
      assert.deepEqual(await show(), before);
      const fresh = connect(db.url, 'fresh');
      const [row] = await fresh`SELECT current_setting('lock_timeout') AS v`;
      assert.equal(row?.v, '0');
      await fresh.end();
    } finally {
      await driver.close();
      await db.drop();
    }
  });

  it('a step that waits over 5 s reports every 5 s what it waits on and who holds it', async () => {
    await setup();
    try {
      const dir = folder('ALTER TABLE users ADD COLUMN nickname text;');
      const bot = await blocker(db.url);
      const run = startCli(['head', '--url', db.url, '--dir', dir, '--table-lock-timeout=0']);
      await queued(db.url);
      await new Promise((r) => setTimeout(r, 6500));
      await bot.commit();
      const result = await run.done;
      assert.equal(result.code, 0, result.stderr);
      assert.match(
        result.stderr,
        new RegExp(
          `still on 20250101_000000 after [5-9] s: waiting for a lock on users .*held by pid ${bot.pid} .*idle in transaction`,
        ),
      );
    } finally {
      await db.drop();
    }
  });

  /** Until an index build on the database is in `phase` (pg_stat_progress_create_index). */
  async function inPhase(url: string, phase: string): Promise<void> {
    const sql = connect(url, 'watch');
    try {
      while (
        (await sql`SELECT 1 FROM pg_stat_progress_create_index WHERE phase = ${phase} AND datname = current_database()`)
          .length === 0
      ) {
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await sql.end();
    }
  }

  const valid = async (index: string) => {
    const sql = connect(db.url, 'check');
    const [row] = await sql`SELECT indisvalid AS ok FROM pg_index WHERE indexrelid = to_regclass(${index})`;
    await sql.end();
    return row?.ok === true;
  };

  it('an index build held up by an old snapshot, with the default table-lock timeout: every 5 s its phase and whose transaction it waits for; once that ends, the index is built, valid (not cut short INVALID)', async () => {
    await setup();
    const dir = folder('-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY users_id_idx ON users (id);\n');
    // A snapshot older than the build: CREATE INDEX CONCURRENTLY waits for it before it can finish.
    const report = connect(db.url, 'bot-report');
    await report`BEGIN ISOLATION LEVEL REPEATABLE READ`;
    const [row] = await report`SELECT count(*), pg_backend_pid() AS pid FROM users`;
    let open = true;
    try {
      const run = startCli(['head', '--url', db.url, '--dir', dir]);
      await inPhase(db.url, 'waiting for old snapshots');
      await new Promise((r) => setTimeout(r, 7000));
      await report`COMMIT`;
      open = false;
      const result = await run.done;
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stderr.split('\n').filter((l) => l.startsWith('still on '));
      const line = new RegExp(
        `^still on 20250101_000000 after [5-9] s: index build: waiting for old snapshots, on pid ${row?.pid} \\(application_name "bot-report", user \\w+, idle in transaction, transaction open \\d+\\.\\d s\\)$`,
      );
      assert.ok(
        lines.some((l) => line.test(l)),
        result.stderr,
      );
      // Blocks are counted in the scanning phases only: none is claimed for a wait.
      for (const l of lines) if (/: index build: waiting/.test(l)) assert.doesNotMatch(l, /blocks/);
      assert.ok(await valid('users_id_idx'), 'the index should be valid');
      assert.deepEqual((await columns()).applied, ['20250101_000000']);
    } finally {
      if (open) await report`COMMIT`;
      await report.end();
      await db.drop();
    }
  });

  it('an index build scanning its table: every 5 s the phase and its blocks done of the total', async () => {
    await setup();
    // 100 blocks of 4 rows, and an index expression that takes 20 ms a row: the table scan lasts
    // about 8 s whatever the machine's speed, long enough to be seen mid-way at 5 s.
    const sql = connect(db.url, 'setup');
    await sql`CREATE TABLE docs (id int, body text)`;
    await sql`INSERT INTO docs SELECT g, repeat('x', 1900) FROM generate_series(1, 400) g`;
    await sql.unsafe(
      `CREATE FUNCTION slow_id(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM pg_sleep(0.02); RETURN $1; END $$`,
    );
    const [size] = await sql`SELECT (pg_relation_size('docs') / current_setting('block_size')::int)::int AS blocks`;
    await sql.end();
    try {
      const dir = folder('-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY docs_slow_idx ON docs (slow_id(id));\n');
      const result = await runCli(['head', '--url', db.url, '--dir', dir]);
      assert.equal(result.code, 0, result.stderr);
      const m =
        /^still on 20250101_000000 after [5-7] s: index build: building index: scanning table, (\d+)\/(\d+) blocks$/m.exec(
          result.stderr,
        );
      assert.ok(m, result.stderr);
      assert.equal(Number(m[2]), size?.blocks);
      assert.ok(Number(m[1]) > 0 && Number(m[1]) < Number(m[2]), m[0]);
      assert.ok(await valid('docs_slow_idx'), 'the index should be valid');
    } finally {
      await db.drop();
    }
  });

  it('a CREATE INDEX CONCURRENTLY stopped by the statement timeout after it began: the INVALID index is named, with the way out', async () => {
    await setup();
    const dir = folder('-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY users_id_idx ON users (id);\n');
    // A snapshot older than the build: CREATE INDEX CONCURRENTLY waits for it after making the index.
    const sql = connect(db.url, 'bot-report');
    await sql`BEGIN ISOLATION LEVEL REPEATABLE READ`;
    await sql`SELECT count(*) FROM users`;
    try {
      const result = await runCli(['head', '--url', db.url, '--dir', dir, '--statement-timeout=2']);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /statement timeout/);
      assert.match(result.stderr, /users_id_idx behind, INVALID/);
      assert.match(result.stderr, /DROP INDEX CONCURRENTLY users_id_idx;/);
    } finally {
      await sql`COMMIT`;
      await sql.end();
      await db.drop();
    }
  });

  it('a no-transaction file: a statement that timed out on its lock is retried and applies', async () => {
    await setup();
    try {
      const dir = folder('-- migrate:no-transaction\nALTER TABLE users ADD COLUMN nickname text;\n');
      const bot = await blocker(db.url);
      const run = startCli(['head', '--url', db.url, '--dir', dir]);
      await queued(db.url);
      await new Promise((r) => setTimeout(r, 2500));
      await bot.commit();
      const result = await run.done;
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /timed out on a lock on users/);
      assert.deepEqual(await columns(), { columns: ['id', 'nickname'], applied: ['20250101_000000'] });
    } finally {
      await db.drop();
    }
  });
});

describe('SQLite while another connection holds the write lock', () => {
  /** The bot's database with the record table already made (the runner's first run), and a write transaction left open on it. */
  const hold = async (url: string, path: string) => {
    const stamped = await runCli(['stamp', 'base', '--url', url, '--dir', folder('SELECT 1;')]);
    assert.equal(stamped.code, 0, stamped.stderr);
    const other = new Database(path);
    other.exec('CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY)');
    other.exec('BEGIN IMMEDIATE');
    other.exec('INSERT INTO users DEFAULT VALUES');
    return {
      release() {
        if (other.inTransaction) other.exec('COMMIT');
        other.close();
      },
    };
  };

  it('held for 3 s: the runner waits and applies', async () => {
    const db = tempSqliteUrl();
    const dir = folder('ALTER TABLE users ADD COLUMN nickname TEXT;');
    const bot = await hold(db.url, db.path);
    try {
      const run = startCli(['head', '--url', db.url, '--dir', dir]);
      await new Promise((r) => setTimeout(r, 3000));
      bot.release();
      const result = await run.done;
      assert.equal(result.code, 0, result.stderr);
      assert.doesNotMatch(result.stderr, /SQLITE_BUSY/);
      const check = new Database(db.path, { readonly: true });
      const cols = check.prepare('SELECT name FROM pragma_table_info(?)').all('users') as Array<{ name: string }>;
      check.close();
      assert.deepEqual(
        cols.map((c) => c.name),
        ['id', 'nickname'],
      );
    } finally {
      bot.release();
      db.cleanup();
    }
  });

  it('held on and on with --retry-for=3: exit 3 TABLE_LOCK_TIMEOUT within seconds, never a raw SQLITE_BUSY', async () => {
    const db = tempSqliteUrl();
    const dir = folder('ALTER TABLE users ADD COLUMN nickname TEXT;');
    const bot = await hold(db.url, db.path);
    try {
      const t = Date.now();
      const result = await runCli(['head', '--url', db.url, '--dir', dir, '--retry-for=3']);
      assert.equal(result.code, 3, result.stderr);
      assert.ok(Date.now() - t < 10_000, `took ${Date.now() - t} ms`);
      assert.match(result.stderr, /\[TABLE_LOCK_TIMEOUT\]/);
      assert.match(result.stderr, /another connection holds its write lock/);
      assert.doesNotMatch(result.stderr, /SQLITE_BUSY/);
    } finally {
      bot.release();
      db.cleanup();
    }
  });
});

describe('backoff', () => {
  it('is full jitter: anywhere from 0 to an exponential cap', () => {
    assert.equal(
      backoff(1, () => 0),
      0,
    );
    assert.equal(
      backoff(1, () => 1),
      200,
    );
    assert.equal(
      backoff(3, () => 1),
      800,
    );
    assert.equal(
      backoff(30, () => 1),
      10_000,
    );
  });
});
