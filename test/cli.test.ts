/**
 * The CLI as a user runs it, once per dialect: spawn `scripts/migrate.ts`, read its output and
 * exit code, then look at the database directly.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, maskDurations, onTerminal, ROOT, runCli, startCli } from './support/cli.ts';
import { createTestDb, TEST_DIALECTS, withTestDb, type TestDb } from './support/db.ts';
import { hasPostgresServer } from './support/postgres.ts';
import { parseName } from '../runner/core/files.ts';

const BASIC = fixture('basic');

for (const dialect of TEST_DIALECTS) {
  describe(`CLI on ${dialect}`, () => {
    const cli = (db: TestDb, args: string[], dir = BASIC, extra: { input?: string } = {}) =>
      runCli([...args, '--url', db.url, '--dir', dir], extra);

    it('head applies every revision in order, one line each, and records them', () =>
      withTestDb(dialect, async (db) => {
        const r = await cli(db, ['head']);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(
          maskDurations(r.stdout),
          'up    000001  create_users  (N ms)\nup    000002  create_posts  (N ms)\nup    000003  add_email  (N ms)\nat 000003 (add_email)\n',
        );
        assert.deepEqual(await db.tables(), ['posts', 'schema_migrations', 'users']);
        const rows = await db.records();
        assert.deepEqual(
          rows.map((x) => [x.revision, x.name, x.status, x.seq]),
          [
            ['000001', 'create_users', 'applied', 1],
            ['000002', 'create_posts', 'applied', 2],
            ['000003', 'add_email', 'applied', 3],
          ],
        );
        assert.match(rows[0]?.checksum ?? '', /^[0-9a-f]{64}$/);
        const again = await cli(db, ['head']);
        assert.equal(again.code, 0);
        assert.equal(again.stdout, 'nothing to do; at 000003 (add_email)\n');
      }));

    it('current and history report where the database stands', () =>
      withTestDb(dialect, async (db) => {
        assert.equal((await cli(db, ['current'])).stdout, 'base\n');
        assert.equal((await cli(db, ['+2'])).code, 0);
        assert.equal((await cli(db, ['current'])).stdout, '000002 (create_posts)\n');
        const h = await cli(db, ['history']);
        assert.equal(h.code, 0);
        const lines = h.stdout.trim().split('\n');
        assert.equal(lines.length, 3);
        assert.match(lines[0] as string, /^000001 {2}create_users +applied \d{4}-\d\d-\d\dT/);
        assert.match(lines[1] as string, /^000002 {2}create_posts +applied /);
        assert.match(lines[2] as string, /^000003 {2}add_email +pending$/);
        const json = JSON.parse((await cli(db, ['history', '--json'])).stdout);
        assert.deepEqual(
          json.revisions.map((x: { state: string }) => x.state),
          ['applied', 'applied', 'pending'],
        );
      }));

    it('+N and -N walk forward and back; -1 never asks', () =>
      withTestDb(dialect, async (db) => {
        assert.equal((await cli(db, ['+1'])).code, 0);
        assert.deepEqual(await db.tables(), ['schema_migrations', 'users']);
        assert.equal((await cli(db, ['+2'])).code, 0);
        const down = await cli(db, ['-1']);
        assert.equal(down.code, 0, down.stderr);
        assert.equal(maskDurations(down.stdout), 'down  000003  add_email  (N ms)\nat 000002 (create_posts)\n');
        const cols =
          dialect === 'sqlite'
            ? await db.query<{ name: string }>(`SELECT name FROM pragma_table_info('users')`)
            : await db.query<{ name: string }>(
                `SELECT column_name AS name FROM information_schema.columns WHERE table_name = 'users'`,
              );
        assert.deepEqual(cols.map((c) => c.name).sort(), ['id', 'name']);
        assert.deepEqual(
          (await db.records()).map((x) => x.revision),
          ['000001', '000002'],
        );
      }));

    it('a named revision rolls back what follows it (with --yes) or applies up to it', () =>
      withTestDb(dialect, async (db) => {
        assert.equal((await cli(db, ['000002_create_posts'])).code, 0);
        assert.deepEqual(
          (await db.records()).map((x) => x.revision),
          ['000001', '000002'],
        );
        assert.equal((await cli(db, ['head'])).code, 0);
        const refused = await cli(db, ['000001']);
        assert.equal(refused.code, 2, 'two rollbacks without --yes and no terminal');
        assert.match(refused.stderr, /CONFIRMATION_REQUIRED/);
        assert.equal((await db.records()).length, 3);
        const r = await cli(db, ['000001', '--yes']);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(
          maskDurations(r.stdout),
          'down  000003  add_email  (N ms)\ndown  000002  create_posts  (N ms)\nat 000001 (create_users)\n',
        );
        assert.deepEqual(await db.tables(), ['schema_migrations', 'users']);
      }));

    it('base rolls everything back and leaves only the record table', () =>
      withTestDb(dialect, async (db) => {
        assert.equal((await cli(db, ['head'])).code, 0);
        assert.equal((await cli(db, ['base'])).code, 2);
        const r = await cli(db, ['base', '--yes']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /at base\n$/);
        assert.deepEqual(await db.tables(), ['schema_migrations']);
        assert.deepEqual(await db.records(), []);
        assert.equal((await cli(db, ['head'])).code, 0, 'and head rebuilds it');
        assert.deepEqual(await db.tables(), ['posts', 'schema_migrations', 'users']);
      }));

    it('rolling back goes in reverse order of application, not of version', () =>
      withTestDb(dialect, async (db) => {
        const dir = join(db.dir, 'sql');
        cpSync(BASIC, dir, { recursive: true });
        const held = join(db.dir, 'held');
        mkdirSync(held);
        for (const d of ['postgres', 'sqlite'])
          for (const h of ['up', 'down'])
            renameSync(join(dir, d, `000002_create_posts.${h}.sql`), join(held, `${d}.${h}`));
        assert.equal((await cli(db, ['head'], dir)).code, 0);
        for (const d of ['postgres', 'sqlite'])
          for (const h of ['up', 'down'])
            renameSync(join(held, `${d}.${h}`), join(dir, d, `000002_create_posts.${h}.sql`));
        const late = await cli(db, ['head'], dir);
        assert.equal(late.code, 0, late.stderr);
        assert.match(late.stderr, /warning: 000002_create_posts is older than the newest applied revision/);
        assert.deepEqual(
          (await db.records()).map((x) => x.revision),
          ['000001', '000003', '000002'],
        );
        const back = await cli(db, ['-1'], dir);
        assert.equal(back.code, 0, back.stderr);
        assert.match(back.stdout, /^down {2}000002 /);
        assert.deepEqual(
          (await db.records()).map((x) => x.revision),
          ['000001', '000003'],
        );
      }));

    it('each refusal exits 2 and leaves the database unchanged', async () =>
      withTestDb(dialect, async (db) => {
        assert.equal((await cli(db, ['+2'])).code, 0);
        const before = { tables: await db.tables(), rows: await db.records() };
        const cases: Array<[string[], string | undefined, RegExp]> = [
          [['999999'], undefined, /UNKNOWN_REVISION/],
          [['-5'], undefined, /NOT_ENOUGH_APPLIED/],
          [['+3'], undefined, /NOT_ENOUGH_PENDING/],
          [['+0'], undefined, /BAD_TARGET/],
          [["'; drop table x; --"], undefined, /BAD_TARGET/],
          [['head'], fixture('lone-half'), /MISSING_DOWN/],
          [['head'], fixture('duplicate-version'), /DUPLICATE_VERSION/],
          [['head'], fixture('bad-name'), /BAD_FILENAME/],
          [['stamp'], undefined, /BAD_TARGET/],
          [['head', 'extra'], undefined, /BAD_TARGET/],
          [['head', '--bogus'], undefined, /unknown option --bogus\. See `head --help`\. \[BAD_OPTION\]/],
        ];
        for (const [args, dir, message] of cases) {
          const r = await cli(db, args, dir);
          assert.equal(r.code, 2, `${args.join(' ')} ${dir ?? ''}: ${r.stderr}`);
          assert.match(r.stderr, message, args.join(' '));
          assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
        }
        assert.deepEqual({ tables: await db.tables(), rows: await db.records() }, before);
      }));

    it('folder errors name the file and come before any database is touched', () =>
      withTestDb(dialect, async (db) => {
        const r = await cli(db, ['head'], fixture('lone-half'));
        assert.equal(r.code, 2);
        assert.match(r.stderr, new RegExp(`test/fixtures/lone-half/sql/${dialect}/000002_two\\.up\\.sql`));
        assert.deepEqual(await db.tables(), []);
        if (dialect === 'sqlite') assert.equal(readdirSync(db.dir).length, 0, 'not even the SQLite file is created');
      }));

    it('a migration failing in its third statement leaves no trace, keeps the earlier ones, and names file:line:column', () =>
      withTestDb(dialect, async (db) => {
        const r = await cli(db, ['head'], fixture('fail-third-statement'));
        assert.equal(r.code, 1);
        assert.match(maskDurations(r.stdout), /^up {4}000001 {2}one {2}\(N ms\)\nup {4}000002 {2}two {2}\(N ms\)\n$/);
        const first = r.stderr.split('\n')[0] as string;
        assert.match(
          first,
          new RegExp(`^error: test/fixtures/fail-third-statement/sql/${dialect}/000003_three\\.up\\.sql:7:13: `),
        );
        assert.match(first, /nowhere/);
        assert.match(r.stderr, /7 \| INSERT INTO nowhere \(id\) VALUES \(2\);/);
        assert.deepEqual(await db.tables(), ['one', 'schema_migrations', 'two'], 'no trace of table three');
        assert.deepEqual(
          (await db.records()).map((x) => x.revision),
          ['000001', '000002'],
        );
        // Run from inside the folder: the path is the bare file name, clickable as it is.
        const inside = await runCli(['head', '--url', db.url, '--dir', '.'], {
          cwd: join(fixture('fail-third-statement'), dialect),
        });
        assert.match(inside.stderr.split('\n')[0] as string, /^error: 000003_three\.up\.sql:7:13: /);
      }));

    it('new writes an empty pair with one timestamp in every dialect folder, and never overwrites', () =>
      withTestDb(dialect, async (db) => {
        const dir = join(db.dir, 'sql');
        cpSync(BASIC, dir, { recursive: true });
        const r = await cli(db, ['new', 'Add', 'Email', 'index'], dir);
        assert.equal(r.code, 0, r.stderr);
        const made = readdirSync(join(dir, 'postgres')).filter((f) => f.includes('add_email_index'));
        assert.equal(made.length, 2);
        assert.match(made[0] as string, /^\d{8}_\d{6}_add_email_index\.(up|down)\.sql$/);
        assert.deepEqual(
          readdirSync(join(dir, 'sqlite')).filter((f) => f.includes('add_email_index')),
          made,
        );
        const second = await cli(db, ['new', 'add email index'], dir);
        assert.equal(second.code, 0);
        assert.equal(
          readdirSync(join(dir, 'sqlite')).filter((f) => f.includes('add_email_index')).length,
          4,
          'a second pair, not an overwrite',
        );
        // Until they are written, head refuses them (EMPTY_UP) and applies nothing.
        const h = await cli(db, ['head'], dir);
        assert.equal(h.code, 2, h.stderr);
        assert.match(h.stderr, /add_email_index\.up\.sql hold no statement, only comments.*\[EMPTY_UP\]/);
        assert.equal((await db.records()).length, 0);
      }));

    it('--json prints one object on stdout', () =>
      withTestDb(dialect, async (db) => {
        const r = await cli(db, ['head', '--json']);
        assert.equal(r.code, 0);
        const out = JSON.parse(r.stdout);
        assert.equal(out.ok, true);
        assert.deepEqual(
          out.steps.map((s: { revision: string }) => s.revision),
          ['000001', '000002', '000003'],
        );
        assert.deepEqual(out.current, { revision: '000003', name: 'add_email' });
        const bad = await cli(db, ['nope_x', '--json']);
        assert.equal(bad.code, 2);
        assert.equal(JSON.parse(bad.stdout).error.code, 'UNKNOWN_REVISION');
      }));
  });
}

describe('CLI without a database', () => {
  it('no arguments prints usage and exits 2; --help exits 0', async () => {
    const none = await runCli([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^Usage: npx tsx scripts\/migrate\.ts/);
    const help = await runCli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Exit codes: 0 done, 1 a migration failed/);
  });

  it('an unsupported URL exits 2 and lists the accepted forms', async () => {
    const r = await runCli(['head', '--url', 'mysql://u:hunter2@h/db', '--dir', BASIC]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /sqlite\+aiosqlite:\/\/\/bot\.db/);
    assert.doesNotMatch(r.stderr + r.stdout, /hunter2/);
  });

  it('URL order: --url, then MIGRATE_DATABASE_URL, then DATABASE_URL, then .env, then sqlite:bot.db', async () => {
    const db = await createTestDb('sqlite');
    try {
      cpSync(BASIC, join(db.dir, 'sql'), { recursive: true });
      writeFileSync(join(db.dir, '.env'), 'DATABASE_URL=sqlite:from-dotenv.db\n');
      assert.equal((await runCli(['+1'], { cwd: db.dir })).code, 0);
      assert.ok(existsSync(join(db.dir, 'from-dotenv.db')), '.env is read');
      assert.equal(
        (await runCli(['+1'], { cwd: db.dir, env: { DATABASE_URL: 'sqlite+aiosqlite:///from-env.db' } })).code,
        0,
      );
      assert.ok(existsSync(join(db.dir, 'from-env.db')), 'the environment beats .env');
      assert.equal(
        (
          await runCli(['+1', '--url', 'sqlite:///from-flag.db'], {
            cwd: db.dir,
            env: { DATABASE_URL: 'sqlite:from-env.db' },
          })
        ).code,
        0,
      );
      assert.ok(existsSync(join(db.dir, 'from-flag.db')), '--url beats the environment');
      const direct = await runCli(['+1'], {
        cwd: db.dir,
        env: { DATABASE_URL: 'sqlite:from-env.db', MIGRATE_DATABASE_URL: 'sqlite:from-migrate-env.db' },
      });
      assert.equal(direct.code, 0, direct.stderr);
      assert.ok(existsSync(join(db.dir, 'from-migrate-env.db')), 'MIGRATE_DATABASE_URL beats DATABASE_URL');
      assert.match(direct.stderr, /^database: sqlite:from-migrate-env\.db \(from MIGRATE_DATABASE_URL\)$/m);
      writeFileSync(
        join(db.dir, '.env'),
        'DATABASE_URL=sqlite:from-dotenv.db\nMIGRATE_DATABASE_URL=sqlite:from-dotenv-migrate.db\n',
      );
      assert.equal((await runCli(['+1'], { cwd: db.dir, env: { DATABASE_URL: 'sqlite:from-env.db' } })).code, 0);
      assert.ok(!existsSync(join(db.dir, 'from-dotenv-migrate.db')), 'the environment beats .env');
      assert.equal((await runCli(['+1'], { cwd: db.dir })).code, 0);
      assert.ok(existsSync(join(db.dir, 'from-dotenv-migrate.db')), 'in .env too, MIGRATE_DATABASE_URL comes first');
      writeFileSync(join(db.dir, '.env'), '');
      assert.equal((await runCli(['+1'], { cwd: db.dir })).code, 0);
      assert.ok(existsSync(join(db.dir, 'bot.db')), 'the default is sqlite:bot.db');
    } finally {
      await db.drop();
    }
  });

  it('MIGRATIONS_DIR and MIGRATIONS_TABLE are read, and the flags win', async () => {
    const db = await createTestDb('sqlite');
    try {
      const r = await runCli(['head', '--url', db.url], {
        env: { MIGRATIONS_DIR: BASIC, MIGRATIONS_TABLE: 'applied_revisions' },
      });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await db.tables(), ['applied_revisions', 'posts', 'users']);
      const flag = await runCli(['current', '--url', db.url, '--table', 'schema_migrations'], {
        env: { MIGRATIONS_DIR: BASIC, MIGRATIONS_TABLE: 'applied_revisions' },
      });
      assert.equal(flag.stdout, 'base\n');
    } finally {
      await db.drop();
    }
  });

  it('a fresh clone with no .env migrates the embedded default database to head', async () => {
    const db = await createTestDb('sqlite');
    try {
      cpSync(join(ROOT, 'sql'), join(db.dir, 'sql'), { recursive: true });
      const r = await runCli(['head'], { cwd: db.dir });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(existsSync(join(db.dir, 'bot.db')));
      // At head of whatever the folder holds (the team adds a revision a week): every one recorded, in order.
      const folder = readdirSync(join(db.dir, 'sql', 'sqlite'))
        .filter((f) => f.endsWith('.up.sql'))
        .map((f) => parseName(f)?.revision)
        .sort();
      assert.ok(folder.length > 0);
      assert.deepEqual(await recordedAt(join(db.dir, 'bot.db')), folder);
    } finally {
      await db.drop();
    }
  });
});

/** The revisions the record table of the SQLite file at `path` lists, in order of application. */
async function recordedAt(path: string): Promise<string[]> {
  const { default: Database } = await import('better-sqlite3');
  const d = new Database(path, { readonly: true });
  try {
    return (d.prepare('SELECT revision FROM schema_migrations ORDER BY seq').all() as Array<{ revision: string }>).map(
      (r) => r.revision,
    );
  } finally {
    d.close();
  }
}

describe('confirmation on a terminal', () => {
  it('a rollback of more than one revision asks, and does nothing unless told yes', async () => {
    const db = await createTestDb('sqlite');
    try {
      const args = ['base', '--url', db.url, '--dir', BASIC];
      assert.equal((await runCli(['head', '--url', db.url, '--dir', BASIC])).code, 0);
      const no = await onTerminal(args, 'n');
      assert.match(
        no.out,
        /About to roll back 3 revisions:\s+000003_add_email\s+000002_create_posts\s+000001_create_users/,
      );
      assert.match(no.out, /Roll them back\? \[y\/N\]/);
      assert.equal(no.code, 2);
      assert.match(no.out, /was not confirmed; nothing was changed/);
      assert.equal((await db.records()).length, 3);
      const yes = await onTerminal(args, 'y');
      assert.equal(yes.code, 0, yes.out);
      assert.deepEqual(await db.records(), []);
      // --json asks too, on stderr: stdout holds exactly the one object.
      assert.equal((await runCli(['head', '--url', db.url, '--dir', BASIC])).code, 0);
      const stdout = join(db.dir, 'stdout.json');
      const json = await onTerminal([...args, '--json'], 'y', { stdoutTo: stdout });
      assert.equal(json.code, 0, json.out);
      assert.match(json.out, /About to roll back 3 revisions:[\s\S]*Roll them back\? \[y\/N\]/);
      const printed = readFileSync(stdout, 'utf8');
      assert.equal(printed.trim().split('\n').length, 1, printed);
      assert.equal(JSON.parse(printed).ok, true, printed);
      assert.deepEqual(await db.records(), []);
      // Ctrl-C at the question is a no: exit 2, nothing changed, no database error.
      assert.equal((await runCli(['head', '--url', db.url, '--dir', BASIC])).code, 0);
      const interrupted = await onTerminal(args, '\x03');
      assert.equal(interrupted.code, 2, interrupted.out);
      assert.match(interrupted.out, /was not confirmed; nothing was changed/);
      assert.equal((await db.records()).length, 3);
    } finally {
      await db.drop();
    }
  });
});

describe('passwords', { skip: !TEST_DIALECTS.includes('postgres') && 'TEST_DIALECTS leaves PostgreSQL out' }, () => {
  // The local servers trust the connection, so a URL may carry a password nobody checks.
  const secrets = ['S3cret-pw', 'p@ss:w/rd?#%'];

  it('never appear in output, errors, --json or connection failures', async () => {
    const db = await createTestDb('postgres');
    try {
      for (const secret of secrets) {
        const u = new URL(db.url);
        u.password = encodeURIComponent(secret);
        const url = u.toString();
        const runs = [
          await runCli(['head', '--url', url, '--dir', BASIC]),
          await runCli(['history', '--json', '--url', url, '--dir', BASIC]),
          await runCli(['sql', '-1', '--url', url, '--dir', BASIC]),
          await runCli(['nope_x', '--url', url, '--dir', BASIC]),
          await runCli(['head', '--url', url, '--table', 'fail_record', '--dir', fixture('fail-third-statement')]),
          await runCli(['head', '--json', '--url', url.replace(/:\d+\//, ':1/'), '--dir', BASIC]),
        ];
        const [head, , , unknown, failed, unreachable] = runs;
        assert.equal(head?.code, 0, head?.stderr);
        assert.equal(unknown?.code, 2);
        assert.equal(failed?.code, 1);
        assert.equal(unreachable?.code, 3, 'a database that cannot be reached exits 3');
        assert.match(unreachable?.stdout ?? '', /"code":"CONNECTION_FAILED".*postgres:\*\*\*\*@127\.0\.0\.1:1\//);
        for (const r of runs) {
          for (const shown of [secret, encodeURIComponent(secret)]) {
            assert.equal((r.stdout + r.stderr).includes(shown), false, `leaked in: ${r.stdout}${r.stderr}`);
          }
        }
        await runCli([
          'base',
          '--yes',
          '--url',
          url,
          '--table',
          'fail_record',
          '--dir',
          fixture('fail-third-statement'),
        ]);
        await runCli(['base', '--yes', '--url', url, '--dir', BASIC]);
      }
    } finally {
      await db.drop();
    }
  });

  it(
    "a role refused the record table: exit 3 with DATABASE_REFUSED and the server's reason, not a bare error",
    {
      skip:
        (!hasPostgresServer || !TEST_DIALECTS.includes('postgres')) &&
        'needs a PostgreSQL server with roles (TEST_POSTGRES_URL)',
    },
    () =>
      withTestDb('postgres', async (db) => {
        const role = `sql_migrate_noperm_${process.pid}`;
        await db.query(`CREATE ROLE ${role} LOGIN`);
        try {
          assert.equal((await runCli(['+1', '--url', db.url, '--dir', BASIC])).code, 0);
          const url = db.url.replace(/\/\/[^@/]*@/, `//${role}@`);
          for (const args of [['head'], ['history']]) {
            const r = await runCli([...args, '--url', url, '--dir', BASIC]);
            assert.equal(r.code, 3, r.stderr);
            assert.match(
              r.stderr,
              /refused the runner's own work on its record table or lock: permission denied for table schema_migrations \(42501\).*\[DATABASE_REFUSED\]/s,
            );
          }
          assert.deepEqual(
            (await db.records()).map((x) => x.revision),
            ['000001'],
            'nothing changed',
          );
        } finally {
          await db.query(`DROP ROLE ${role}`);
        }
      }),
  );

  // The timeout guards the abort: without it the run would keep retrying for the full --wait=60.
  it('a bad folder is reported before an unreachable server, and --wait stops retrying for it', {
    timeout: 30_000,
  }, async () => {
    // The connection is started while the folder is read: the folder's error must still win.
    const r = await runCli([
      'head',
      '--wait=60',
      '--url',
      'postgres://bot:Hunter2@127.0.0.1:1/bot',
      '--dir',
      fixture('lone-half'),
    ]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /\[MISSING_DOWN\]|\[MISSING_UP\]/);
    assert.doesNotMatch(r.stderr, /CONNECTION_FAILED/);
  });

  it('--wait keeps trying, then exits 3 naming the URL without its password', async () => {
    const r = await runCli(['head', '--wait=1', '--url', 'postgres://bot:Hunter2@127.0.0.1:1/bot', '--dir', BASIC]);
    assert.equal(r.code, 3);
    assert.match(
      r.stderr,
      /connect to postgres:\/\/bot:\*\*\*\*@127\.0\.0\.1:1\/bot: .*\(kept trying for 1 s\) \[CONNECTION_FAILED\]/s,
    );
    assert.equal(r.stderr.includes('Hunter2'), false);
  });
});

for (const dialect of TEST_DIALECTS) {
  describe(`CLI on ${dialect}: stamp, names and options`, () => {
    const cli = (db: TestDb, args: string[]) => runCli([...args, '--url', db.url, '--dir', BASIC]);

    it('stamp forgetting more than one revision needs --yes off a terminal, as a rollback does', () =>
      withTestDb(dialect, async (db) => {
        assert.equal((await cli(db, ['head'])).code, 0);
        const refused = await cli(db, ['stamp', '000001']);
        assert.equal(refused.code, 2, refused.stderr);
        assert.match(refused.stderr, /forgetting 2 revisions \(.*\) needs confirmation.*\[CONFIRMATION_REQUIRED\]/);
        assert.equal((await db.records()).length, 3, 'nothing forgotten');
        // One revision whose up ran statements: its schema stays, so stamp asks even for one.
        const risky = await cli(db, ['stamp', '-1']);
        assert.equal(risky.code, 2, risky.stderr);
        assert.match(
          risky.stderr,
          /forgetting 000003 \(000003 ran statements: what it built stays in the database; `-1` rolls back instead\) needs confirmation.*\[CONFIRMATION_REQUIRED\]/,
        );
        assert.equal((await db.records()).length, 3, 'nothing forgotten');
        const one = await cli(db, ['stamp', '-1', '--yes']);
        assert.equal(one.code, 0, one.stderr);
        assert.match(one.stdout, /^forgot {4}000003 {2}add_email {2}\(from the record only: no SQL ran\)$/m);
        const yes = await cli(db, ['stamp', 'base', '--yes']);
        assert.equal(yes.code, 0, yes.stderr);
        assert.deepEqual(await db.records(), []);
        assert.ok((await db.tables()).includes('posts'), 'stamp runs no SQL');
      }));

    it('a revision named by its description alone', () =>
      withTestDb(dialect, async (db) => {
        const r = await cli(db, ['create_posts']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /at 000002 \(create_posts\)\n$/);
      }));

    it('a bad option value is BAD_OPTION, exit 2', async () => {
      for (const args of [
        ['head', '--wait=soon'],
        ['head', '--lock-timeout=-1'],
        ['head', '--bogus'],
      ]) {
        const r = await runCli([...args, '--url', 'sqlite::memory:', '--dir', BASIC]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /\[BAD_OPTION\]/, args.join(' '));
      }
    });
  });
}

describe('a reader that goes away early (`| head -1`)', () => {
  /** The CLI with its stdout a real pipe whose reading end is closed before it writes: every write fails with EPIPE. */
  const closedEarly = (args: string[]) => {
    const run = startCli(args);
    run.child.stdout?.destroy();
    return run.done;
  };
  const quiet = (r: { stderr: string }) => assert.doesNotMatch(r.stderr, /EPIPE|Error|\n {4}at /);

  it('ends the output, not the run: no stack trace, and the command its own exit code', async () => {
    const help = await closedEarly(['--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.equal(help.stderr, '');
    const url = `sqlite:${join(mkdtempSync(join(tmpdir(), 'sql-migrate-pipe-')), 'bot.db')}`;
    const head = await closedEarly(['head', '--url', url, '--dir', BASIC]);
    assert.equal(head.code, 0, head.stderr);
    quiet(head);
    // Every step ran although nobody read its line.
    assert.match((await runCli(['current', '--url', url, '--dir', BASIC])).stdout, /^000003 \(add_email\)\n$/);
    const history = await closedEarly(['history', '--url', url, '--dir', BASIC]);
    assert.equal(history.code, 0, history.stderr);
    quiet(history);
    const failing = await closedEarly(['nowhere', '--url', url, '--dir', BASIC]);
    assert.equal(failing.code, 2);
    assert.match(failing.stderr, /^error: unknown revision "nowhere".*\[UNKNOWN_REVISION\]\n/);
  });
});
