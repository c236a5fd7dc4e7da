/**
 * What the lock lines say (issue #26): a progress line never says `running` while the runner
 * sleeps between attempts, and DROP INDEX CONCURRENTLY waiting for older transactions names the
 * table and those transactions, not a lock they do not hold. Needs a real server: the blocking
 * session is a second session.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { runCli, startCli } from './support/cli.ts';
import { createPostgresDatabase, hasPostgresServer, type TestDatabase } from './support/postgres.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function folder(up: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'mig-lock-lines-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'postgres'));
  writeFileSync(join(dir, 'postgres', '20250101_000000_change.up.sql'), up);
  writeFileSync(join(dir, 'postgres', '20250101_000000_change.down.sql'), '-- nothing\n');
  return dir;
}

const connect = (url: string, app: string) =>
  postgres(url, { max: 1, onnotice: () => {}, connection: { application_name: app } });

/** "The bot": a session that read users and sits idle in its transaction. */
async function blocker(url: string) {
  const sql = connect(url, 'bot-worker');
  await sql`BEGIN`;
  await sql`SELECT count(*) FROM users`;
  const [row] = await sql`SELECT pg_backend_pid() AS pid`;
  let done = false;
  return {
    pid: row?.pid as number,
    async commit() {
      if (done) return;
      done = true;
      await sql`COMMIT`;
      await sql.end({ timeout: 1 });
    },
  };
}

/** Until the runner's session waits for a lock it has not been granted (a table's, or another transaction's). */
async function runnerWaits(url: string): Promise<void> {
  const sql = connect(url, 'watch');
  try {
    for (let i = 0; i < 1200; i++) {
      const rows = await sql`
        SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE NOT l.granted AND a.application_name LIKE 'sql-migrate%' AND a.datname = current_database()`;
      if (rows.length > 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail('the runner never waited');
  } finally {
    await sql.end();
  }
}

describe('lock lines', { skip: !hasPostgresServer && 'needs a PostgreSQL server (TEST_POSTGRES_URL)' }, () => {
  let db: TestDatabase;
  const setup = async () => {
    db = await createPostgresDatabase();
    const sql = connect(db.url, 'setup');
    await sql`CREATE TABLE users (id int PRIMARY KEY)`;
    await sql`CREATE INDEX users_id_idx ON users (id)`;
    await sql`INSERT INTO users SELECT generate_series(1, 100)`;
    await sql.end();
  };

  it('retrying on a table lock: every progress line names what it waits on, none says running', async () => {
    await setup();
    const bot = await blocker(db.url);
    try {
      const dir = folder('ALTER TABLE users ADD COLUMN nickname text;\n');
      const r = await runCli(['head', '--url', db.url, '--dir', dir, '--retry-for=16']);
      assert.equal(r.code, 3, r.stderr);
      const waits = r.stderr.match(/^waiting: .*$/gm) ?? [];
      assert.ok(waits.length >= 2, r.stderr);
      const progress = r.stderr.match(/^still on .*$/gm) ?? [];
      for (const line of progress) assert.match(line, new RegExp(`waiting for a lock on users .*pid ${bot.pid}`));
      assert.doesNotMatch(r.stderr, /: running$/m);
    } finally {
      await bot.commit();
      await db.drop();
    }
  });

  it('DROP INDEX CONCURRENTLY waiting for an older transaction names the table and that transaction', async () => {
    await setup();
    const bot = await blocker(db.url);
    try {
      const dir = folder('-- migrate:no-transaction\nDROP INDEX CONCURRENTLY users_id_idx;\n');
      const run = startCli(['head', '--url', db.url, '--dir', dir]);
      // Once the runner's session waits, past the progress line at 5 s of the step, then let it finish.
      await runnerWaits(db.url);
      await new Promise((res) => setTimeout(res, 7000));
      await bot.commit();
      const r = await run.done;
      assert.equal(r.code, 0, r.stderr);
      const line = /^still on 20250101_000000 after \d+ s: .*$/m.exec(r.stderr)?.[0];
      assert.ok(line, r.stderr);
      assert.match(
        line,
        new RegExp(
          `waiting for older transactions to end on users: pid ${bot.pid} \\(application_name "bot-worker", user \\w+, idle in transaction`,
        ),
      );
      assert.doesNotMatch(r.stderr, /no lock on it yet/);
    } finally {
      await bot.commit();
      await db.drop();
    }
  });
});
