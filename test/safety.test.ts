/**
 * The safety rules of docs/safety.md on each dialect: edited, missing and out-of-order revisions,
 * stamp, no-transaction files, dry runs and printed scripts, Alembic and foreign record tables.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, cpSync, mkdirSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { migrate } from '../runner/core/migrator.ts';
import { fixture, ROOT, runCli } from './support/cli.ts';
import { createTestDb, TEST_DIALECTS, withTestDb, type TestDb } from './support/db.ts';

/** A private copy of a fixture folder, to edit, delete or add files in. */
function copyFixture(db: TestDb, name: string): string {
  const dir = join(db.dir, 'sql');
  cpSync(fixture(name), dir, { recursive: true });
  return dir;
}

function moveRevision(dir: string, stem: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const d of ['postgres', 'sqlite'])
    for (const h of ['up', 'down']) renameSync(join(dir, d, `${stem}.${h}.sql`), join(to, `${d}.${h}`));
}

function restoreRevision(dir: string, stem: string, from: string): void {
  for (const d of ['postgres', 'sqlite'])
    for (const h of ['up', 'down']) renameSync(join(from, `${d}.${h}`), join(dir, d, `${stem}.${h}.sql`));
}

/**
 * Run a printed script by hand, as a DBA would. Asynchronously: the embedded PostgreSQL is
 * served from this very process, and a synchronous child would wait on a server it blocks.
 */
function runByHand(db: TestDb, script: string, pgOptions = ''): Promise<void> {
  const [command, args, env] =
    db.dialect === 'sqlite'
      ? ['sqlite3', ['-bail', db.url.slice('sqlite:'.length)], process.env]
      : [
          'psql',
          ['-X', '-q', '-v', 'ON_ERROR_STOP=1', db.url],
          { ...process.env, PGOPTIONS: `--client-min-messages=warning ${pgOptions}` },
        ];
  return new Promise((resolve, reject) => {
    const child = execFile(command as string, args as string[], { env }, (error, _stdout, stderr) =>
      error ? reject(new Error(`${command} failed: ${stderr}`)) : resolve(),
    );
    child.stdin?.end(script);
  });
}

for (const dialect of TEST_DIALECTS) {
  describe(`safety on ${dialect}`, () => {
    const cli = (db: TestDb, args: string[], dir: string) => runCli([...args, '--url', db.url, '--dir', dir]);

    it('an edited applied file stops head (exit 2, nothing applied) until stamp accepts it', () =>
      withTestDb(dialect, async (db) => {
        const dir = copyFixture(db, 'basic');
        assert.equal((await cli(db, ['+2'], dir)).code, 0);
        appendFileSync(join(dir, dialect, '000001_create_users.up.sql'), '-- reviewed: a comment added later\n');
        const r = await cli(db, ['head'], dir);
        assert.equal(r.code, 2);
        assert.match(
          r.stderr,
          new RegExp(`${dialect}/000001_create_users\\.up\\.sql was edited after being applied \\(checksum differs\\)`),
        );
        assert.match(r.stderr, /stamp/);
        assert.deepEqual(
          (await db.records()).map((x) => x.revision),
          ['000001', '000002'],
          'nothing applied',
        );
        assert.match((await cli(db, ['history'], dir)).stdout, /000001 {2}create_users +applied .*\[changed\]/);
        const s = await cli(db, ['stamp', '000002'], dir);
        assert.equal(s.code, 0, s.stderr);
        const h = await cli(db, ['head'], dir);
        assert.equal(h.code, 0, h.stderr);
        assert.deepEqual(
          (await db.records()).map((x) => x.revision),
          ['000001', '000002', '000003'],
        );
      }));

    it('an applied file deleted in the middle stops with exit 2; a database ahead of the folder is a warning', () =>
      withTestDb(dialect, async (db) => {
        const dir = copyFixture(db, 'basic');
        assert.equal((await cli(db, ['head'], dir)).code, 0);
        moveRevision(dir, '000002_create_posts', join(db.dir, 'held'));
        const gap = await cli(db, ['head'], dir);
        assert.equal(gap.code, 2);
        assert.match(gap.stderr, /000002_create_posts have no files.*\[MISSING_FILE\]/s);
        assert.match((await cli(db, ['history'], dir)).stdout, /000002 {2}create_posts +applied .*\[missing\]/);
        restoreRevision(dir, '000002_create_posts', join(db.dir, 'held'));
        moveRevision(dir, '000003_add_email', join(db.dir, 'newer'));
        const ahead = await cli(db, ['head'], dir);
        assert.equal(ahead.code, 0, ahead.stderr);
        assert.match(ahead.stderr, /warning: the database has revisions newer than this folder \(000003\)/);
        assert.equal(ahead.stdout, 'nothing to do; at 000003 (add_email)\n');
        assert.equal((await db.records()).length, 3);
      }));

    it('a merged-in older revision is applied with a warning, and refused under --strict', () =>
      withTestDb(dialect, async (db) => {
        const dir = copyFixture(db, 'basic');
        moveRevision(dir, '000002_create_posts', join(db.dir, 'held'));
        assert.equal((await cli(db, ['head'], dir)).code, 0);
        restoreRevision(dir, '000002_create_posts', join(db.dir, 'held'));
        assert.match((await cli(db, ['history'], dir)).stdout, /000002 {2}create_posts +pending {2}\[out of order\]/);
        const strict = await cli(db, ['head', '--strict'], dir);
        assert.equal(strict.code, 2);
        assert.match(strict.stderr, /OUT_OF_ORDER/);
        assert.deepEqual(
          (await db.records()).map((x) => x.revision),
          ['000001', '000003'],
        );
        const r = await cli(db, ['head'], dir);
        assert.equal(r.code, 0);
        assert.match(
          r.stderr,
          /warning: 000002_create_posts is older than the newest applied revision; applying in version order\. \[OUT_OF_ORDER\]/,
        );
        assert.deepEqual(
          (await db.records()).map((x) => x.revision),
          ['000001', '000003', '000002'],
        );
      }));

    it('a `sql` script printed from a database that has the record table runs on one that has not; nothing to do is said', async () => {
      const from = await createTestDb(dialect);
      const other = await createTestDb(dialect);
      try {
        const dir = fixture('basic');
        assert.equal((await cli(from, ['+1'], dir)).code, 0);
        const printed = await cli(from, ['sql', '+2'], dir);
        assert.equal(printed.code, 0, printed.stderr);
        // The other database: the first revision's schema made by hand, no record table yet.
        const first = await cli(other, ['sql', '+1'], dir);
        await runByHand(other, first.stdout.replace(/INSERT INTO[^;]*schema_migrations[\s\S]*?;\n/, ''));
        assert.deepEqual((await other.records()).length, 0);
        await runByHand(other, printed.stdout);
        assert.deepEqual(
          (await other.records()).map((x) => x.revision),
          ['000002', '000003'],
        );
        assert.equal((await cli(from, ['head'], dir)).code, 0);
        const nothing = await cli(from, ['sql', 'head'], dir);
        assert.equal(nothing.code, 0, nothing.stderr);
        assert.match(nothing.stderr, /^sql: nothing to do for head; at 000003 \(add_email\)$/m);
        assert.match(nothing.stdout, /^-- nothing to do: the database is at 000003 \(add_email\)$/m);
        await runByHand(from, nothing.stdout);
      } finally {
        await from.drop();
        await other.drop();
      }
    });

    it('a printed script reads a backslash as the runner does, whatever the session says of standard_conforming_strings', async () => {
      if (dialect !== 'postgres') return;
      const db = await createTestDb(dialect);
      try {
        const dir = join(db.dir, 'sql');
        mkdirSync(join(dir, 'postgres'), { recursive: true });
        writeFileSync(
          join(dir, 'postgres', '000001_paths.up.sql'),
          "CREATE TABLE paths (v text);\nINSERT INTO paths VALUES ('C:\\bin\\new');\n",
        );
        writeFileSync(join(dir, 'postgres', '000001_paths.down.sql'), 'DROP TABLE paths;\n');
        const printed = await cli(db, ['sql', 'head'], dir);
        assert.equal(printed.code, 0, printed.stderr);
        await runByHand(db, printed.stdout, '-c standard_conforming_strings=off -c escape_string_warning=off');
        const [row] = await db.query('SELECT v FROM paths');
        assert.equal(row?.v, 'C:\\bin\\new', 'the backslashes are kept, as the runner keeps them');
      } finally {
        await db.drop();
      }
    });

    it('the script printed by `sql head`, run by hand, gives the same schema and record as head', async () => {
      const byRunner = await createTestDb(dialect);
      const byHand = await createTestDb(dialect);
      try {
        const dir = fixture('basic');
        const printed = await cli(byHand, ['sql', 'head'], dir);
        assert.equal(printed.code, 0, printed.stderr);
        assert.deepEqual(await byHand.tables(), [], 'printing changes nothing');
        await runByHand(byHand, printed.stdout);
        assert.equal((await cli(byRunner, ['head'], dir)).code, 0);
        assert.deepEqual(await byHand.schema(), await byRunner.schema());
        const strip = (rows: Awaited<ReturnType<TestDb['records']>>) =>
          rows.map(({ revision, name, status, seq, checksum }) => ({ revision, name, status, seq, checksum }));
        assert.deepEqual(strip(await byHand.records()), strip(await byRunner.records()));
        assert.equal(
          (await cli(byHand, ['head'], dir)).stdout,
          'nothing to do; at 000003 (add_email)\n',
          'the runner accepts the hand-run record',
        );
        // and the other way: print a rollback, run it by hand
        const down = await cli(byHand, ['sql', '-1'], dir);
        await runByHand(byHand, down.stdout);
        assert.deepEqual(
          (await byHand.records()).map((x) => x.revision),
          ['000001', '000002'],
        );
      } finally {
        await byRunner.drop();
        await byHand.drop();
      }
    });

    it('--dry-run prints the plan and leaves a fresh database without even the record table', () =>
      withTestDb(dialect, async (db) => {
        const r = await cli(db, ['head', '--dry-run'], fixture('basic'));
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^-- dry run: nothing was changed/);
        assert.match(r.stdout, /CREATE TABLE users/);
        assert.match(r.stdout, /-- would then be at 000003 \(add_email\)\n$/);
        assert.deepEqual(await db.tables(), []);
        if (dialect === 'sqlite')
          assert.equal(existsSync(db.url.slice('sqlite:'.length)), false, 'not even the SQLite file');
      }));

    it('a no-transaction file runs statement by statement', () =>
      withTestDb(dialect, async (db) => {
        const dir = fixture('no-transaction');
        const r = await cli(db, ['head'], dir);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(
          (await db.records()).map((x) => [x.revision, x.status]),
          [
            ['000001', 'applied'],
            ['000002', 'applied'],
          ],
        );
        const labels = await db.query<{ label: string }>('SELECT label FROM items ORDER BY id');
        assert.deepEqual(
          labels.map((x) => x.label),
          ['a;b', '-- not a comment'],
        );
        const idx =
          dialect === 'sqlite'
            ? await db.query<{ name: string }>(
                `SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'items_label'`,
              )
            : await db.query<{ name: string }>(
                `SELECT indexname AS name FROM pg_indexes WHERE indexname = 'items_label'`,
              );
        assert.equal(idx.length, 1);
        const back = await cli(db, ['-1'], dir);
        assert.equal(back.code, 0, back.stderr);
        assert.deepEqual(
          (await db.records()).map((x) => x.revision),
          ['000001'],
        );
      }));

    it('a no-transaction file failing part-way is recorded as failed, blocks migrating, and stamp resolves it', () =>
      withTestDb(dialect, async (db) => {
        const dir = fixture('no-transaction-fails');
        const r = await cli(db, ['head'], dir);
        assert.equal(r.code, 1);
        assert.match(r.stderr, new RegExp(`${dialect}/000002_indexes\\.up\\.sql:3:`));
        assert.match(r.stderr, /1 statement\(s\) took effect and it is recorded as failed/);
        const rows = await db.query<{ revision: string; status: string; statements_run: number; error: string }>(
          'SELECT revision, status, statements_run, error FROM schema_migrations ORDER BY seq',
        );
        assert.deepEqual(
          rows.map((x) => [x.revision, x.status, Number(x.statements_run ?? 0)]),
          [
            ['000001', 'applied', 0],
            ['000002', 'failed', 1],
          ],
        );
        assert.match(rows[1]?.error ?? '', /nope/);
        assert.match((await cli(db, ['history'], dir)).stdout, /000002 {2}indexes +failed .*\[failed\]/);
        const blocked = await cli(db, ['head'], dir);
        assert.equal(blocked.code, 2);
        assert.match(blocked.stderr, /stopped part-way while applying \(1 statement\(s\) ran\).*\[FAILED_MIGRATION\]/s);
        // The operator repairs by hand (here: accepts the one index that was made), then stamps.
        const s = await cli(db, ['stamp', '000002'], dir);
        assert.equal(s.code, 0, s.stderr);
        assert.deepEqual(
          (await db.records()).map((x) => [x.revision, x.status]),
          [
            ['000001', 'applied'],
            ['000002', 'applied'],
          ],
        );
        assert.equal((await cli(db, ['head'], dir)).code, 0);
      }));

    it('stamp -1 forgets a failed no-transaction file and keeps what came before', () =>
      withTestDb(dialect, async (db) => {
        const dir = fixture('no-transaction-fails');
        assert.equal((await cli(db, ['head'], dir)).code, 1);
        const s = await cli(db, ['stamp', '-1'], dir);
        assert.equal(s.code, 0, s.stderr);
        assert.deepEqual(
          (await db.records()).map((x) => [x.revision, x.status]),
          [['000001', 'applied']],
        );
        assert.match((await cli(db, ['history'], dir)).stdout, /000002 {2}indexes +pending/);
      }));

    it("the library hands back what the caller's own callbacks threw, not a database refusal", () =>
      withTestDb(dialect, async (db) => {
        const config = { url: db.url, dir: fixture('basic') };
        // readline's Ctrl-C error carries a code, as a database's errors do.
        const aborted = Object.assign(new Error('Aborted with Ctrl+C'), { code: 'ABORT_ERR' });
        const fromEvent = Object.assign(new Error('log sink is full'), { code: 'ENOSPC' });
        await assert.rejects(
          migrate(config, 'head', {
            onEvent: () => {
              throw fromEvent;
            },
          }),
          (e) => e === fromEvent,
        );
        assert.deepEqual(
          (await db.records()).map((x) => x.revision),
          ['000001'],
          'the step before the event was committed',
        );
        assert.equal((await migrate(config, 'head')).steps.length, 2);
        await assert.rejects(
          migrate(config, 'base', {
            confirm: async () => {
              throw aborted;
            },
          }),
          (e) => e === aborted,
        );
        assert.equal((await db.records()).length, 3, 'nothing rolled back');
      }));

    it('a no-transaction down failing part-way is recorded as failed; current names the last applied', () =>
      withTestDb(dialect, async (db) => {
        const dir = copyFixture(db, 'no-transaction');
        const broken =
          dialect === 'postgres'
            ? 'DROP INDEX CONCURRENTLY items_label;\nDROP INDEX CONCURRENTLY nope;\n'
            : 'DROP TRIGGER items_label_trim;\nDROP INDEX nope;\n';
        writeFileSync(join(dir, dialect, '000002_label_index.down.sql'), `-- migrate:no-transaction\n${broken}`);
        assert.equal((await cli(db, ['head'], dir)).code, 0);
        const r = await cli(db, ['-1'], dir);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /1 statement\(s\) took effect and it is recorded as failed/);
        assert.deepEqual(
          (await db.records()).map((x) => [x.revision, x.status]),
          [
            ['000001', 'applied'],
            ['000002', 'failed'],
          ],
        );
        assert.equal((await cli(db, ['current'], dir)).stdout, '000001 (items)\n');
        const refused = await cli(db, ['-1'], dir);
        assert.equal(refused.code, 2, 'refused until stamped');
        // The refusal names the down that stopped, and the way out for a rollback.
        assert.match(
          refused.stderr,
          new RegExp(
            `${dialect}/000002_label_index\\.down\\.sql stopped part-way while rolling back \\(1 statement\\(s\\) ran\\): .*nope`,
          ),
        );
        assert.match(refused.stderr, /`stamp -1` if all of it took effect/);
        // Once the operator has finished the rollback by hand, stamp -1 forgets the revision.
        const s = await cli(db, ['stamp', '-1'], dir);
        assert.equal(s.code, 0, s.stderr);
        assert.deepEqual(
          (await db.records()).map((x) => [x.revision, x.status]),
          [['000001', 'applied']],
        );
      }));

    it('a printed script stops at its first error when run by hand', () =>
      withTestDb(dialect, async (db) => {
        const dir = fixture('fail-third-statement');
        const printed = await cli(db, ['sql', 'head'], dir);
        assert.equal(printed.code, 0);
        await assert.rejects(runByHand(db, printed.stdout));
        assert.deepEqual(
          (await db.records()).map((x) => x.revision),
          ['000001', '000002'],
        );
        assert.equal((await db.tables()).includes('three'), false);
      }));

    it('--dry-run is refused where it cannot hold (stamp), changing nothing', () =>
      withTestDb(dialect, async (db) => {
        assert.equal((await cli(db, ['head'], fixture('basic'))).code, 0);
        const r = await cli(db, ['stamp', 'base', '--dry-run'], fixture('basic'));
        assert.equal(r.code, 2);
        assert.equal((await db.records()).length, 3);
      }));

    it('a transactional file with its own COMMIT is refused before anything runs', () =>
      withTestDb(dialect, async (db) => {
        const dir = copyFixture(db, 'basic');
        writeFileSync(
          join(dir, dialect, '000002_create_posts.up.sql'),
          'CREATE TABLE posts (id integer PRIMARY KEY);\nCOMMIT;\n',
        );
        const r = await cli(db, ['head'], dir);
        assert.equal(r.code, 2);
        assert.match(
          r.stderr,
          new RegExp(
            `${dialect}/000002_create_posts\\.up\\.sql:2:1: "COMMIT;" inside a file that already runs in a transaction`,
          ),
        );
        assert.deepEqual(await db.records(), []);
      }));

    it('an Alembic database is refused until stamped; a foreign record table is refused', () =>
      withTestDb(dialect, async (db) => {
        const dir = fixture('basic');
        // What Alembic and create_all left behind: the schema at 000002, and alembic_version.
        const setup =
          'CREATE TABLE alembic_version (version_num varchar(32) NOT NULL PRIMARY KEY);\n' +
          "INSERT INTO alembic_version VALUES ('a1b2c3d4e5f6');\n" +
          'CREATE TABLE users (id integer PRIMARY KEY, name text NOT NULL);\nCREATE TABLE posts (id integer PRIMARY KEY, user_id integer NOT NULL REFERENCES users (id));\n';
        await runByHand(db, setup);
        const r = await cli(db, ['head'], dir);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /managed by Alembic.*stamp <revision>.*\[ALEMBIC_DATABASE\]/s);
        assert.deepEqual(await db.records(), []);
        assert.equal((await cli(db, ['stamp', '000002'], dir)).code, 0);
        assert.deepEqual(
          (await db.records()).map((x) => x.revision),
          ['000001', '000002'],
        );
        const h = await cli(db, ['head'], dir);
        assert.equal(h.code, 0, h.stderr);
        assert.match(h.stdout, /^up {4}000003 {2}add_email/);
        // dbmate's record table under our name is never touched
        const dbmate = await cli(db, ['head', '--table', 'alembic_version'], dir);
        assert.equal(dbmate.code, 2);
        assert.match(dbmate.stderr, /not this runner's record \(its columns: version_num\).*\[FOREIGN_RECORD_TABLE\]/s);
      }));
  });
}

describe('SQLite foreign keys', () => {
  it('orphans from before the run do not block migrating; a migration that adds one is refused', () =>
    withTestDb('sqlite', async (db) => {
      // As the bot's driver leaves it: foreign keys off, and an orphan written long ago. The key
      // is deferred, so only the runner's own check after the step can catch a new orphan.
      const { default: Database } = await import('better-sqlite3');
      const conn = new Database(db.url.slice('sqlite:'.length));
      conn.pragma('foreign_keys = OFF');
      conn.exec(
        'CREATE TABLE parent (id integer PRIMARY KEY); CREATE TABLE child (id integer PRIMARY KEY, parent_id integer REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED); INSERT INTO child VALUES (1, 99);',
      );
      conn.close();
      const dir = fixture('sqlite-old-orphans');
      const first = await runCli(['+1', '--url', db.url, '--dir', dir]);
      assert.equal(first.code, 0, first.stderr);
      const second = await runCli(['head', '--url', db.url, '--dir', dir]);
      assert.equal(second.code, 1, second.stderr);
      assert.match(
        second.stderr,
        /000002_new_orphan\.up\.sql: FOREIGN KEY constraint failed: 1 row\(s\) violate foreign keys \(first: child rowid 2 → parent\); 1 older violation\(s\), there before this run, are left alone/,
      );
      assert.deepEqual(
        (await db.records()).map((r) => r.revision),
        ['000001'],
      );
      assert.deepEqual(
        await db.query('SELECT id FROM child ORDER BY id'),
        [{ id: 1 }],
        'the new orphan was rolled back',
      );
    }));
});

describe('docker entrypoint', () => {
  const entry = join(ROOT, 'scripts', 'docker-entrypoint.sh');
  const run = (env: Record<string, string>, command: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile('sh', [entry, ...command], { env: { ...process.env, ...env } }, (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });

  it('migrates to head, then runs the command', () =>
    withTestDb('sqlite', async (db) => {
      const marker = join(db.dir, 'started');
      const r = await run({ DATABASE_URL: db.url, MIGRATIONS_DIR: fixture('basic') }, [
        'node',
        '-e',
        `require('fs').writeFileSync(${JSON.stringify(marker)}, 'yes')`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(existsSync(marker), 'the command ran');
      assert.equal((await db.records()).length, 3);
    }));

  it('does not run the command when a migration fails', () =>
    withTestDb('sqlite', async (db) => {
      const marker = join(db.dir, 'started');
      const r = await run({ DATABASE_URL: db.url, MIGRATIONS_DIR: fixture('fail-third-statement') }, [
        'node',
        '-e',
        `require('fs').writeFileSync(${JSON.stringify(marker)}, 'yes')`,
      ]);
      assert.equal(r.code, 1);
      assert.equal(existsSync(marker), false, 'the command never started');
    }));
});
