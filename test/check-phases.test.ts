/**
 * `check` proving deploy phases (issue #30): PHASE_ORDER on both dialects, CONTRACT_IN_PRE (the
 * rule read from the lexer, then the CLI), PHASE_MISMATCH, and `check --compat=FILE` with the
 * running release's statements. Run as a user runs check: on a scratch database of the
 * TEST_POSTGRES_URL server when there is one, else on the embedded PGlite.
 */
import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { readRelease } from '../runner/check/compat.ts';
import { contractions } from '../runner/check/contract.ts';
import { phaseOrder } from '../runner/check/phases.ts';
import { loadMigrations } from '../runner/core/files.ts';
import { splitStatements } from '../runner/core/split.ts';
import { fixture, ROOT, runCli, type CliResult } from './support/cli.ts';
import { createPostgresDatabase, hasPostgresServer } from './support/postgres.ts';

const RELEASE = join(ROOT, 'test', 'fixtures', 'compat-release.sql');

async function check(dir: string, ...extra: string[]): Promise<CliResult> {
  if (!hasPostgresServer) return runCli(['check', '--dir', dir, '--url', 'sqlite::memory:', ...extra]);
  const db = await createPostgresDatabase();
  try {
    return await runCli(['check', '--dir', dir, '--url', db.url, ...extra]);
  } finally {
    await db.drop();
  }
}

const shown = (path: string) => relative(ROOT, path);
const lines = (r: CliResult, code: string) => r.stdout.split('\n').filter((l) => l.endsWith(`[${code}]`));

/** The lines the contraction rule reports for `sql`, as `line: what (table)`. */
function contracts(sql: string, dialect: 'postgres' | 'sqlite' = 'postgres'): string[] {
  return contractions(splitStatements(sql, dialect), dialect).map((c) => {
    const line = sql.slice(0, c.offset).split('\n').length;
    return `${line}: ${c.what} (${c.table})`;
  });
}

describe('contracting statements (pure, from the lexer)', () => {
  test('each kind the issue names, at the clause that contracts', () => {
    assert.deepEqual(
      contracts(
        [
          'ALTER TABLE users DROP COLUMN nick;',
          'ALTER TABLE users DROP nick, ADD COLUMN x int;',
          'DROP TABLE IF EXISTS old_things, "Other";',
          'ALTER TABLE users RENAME COLUMN nick TO handle;',
          'ALTER TABLE users RENAME TO members;',
          'ALTER TABLE users ALTER COLUMN email SET NOT NULL;',
          'ALTER TABLE users ALTER email TYPE varchar(50);',
          'ALTER TABLE users ALTER COLUMN email SET DATA TYPE text;',
          'ALTER TABLE users ALTER COLUMN role DROP DEFAULT;',
          'ALTER TABLE posts ADD CONSTRAINT posts_user_fk FOREIGN KEY (user_id) REFERENCES users (id);',
          'ALTER TABLE posts ADD CHECK (length(body) > 0);',
          'ALTER TABLE ONLY public.posts ADD CONSTRAINT u UNIQUE (slug);',
          'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ix_users_email ON users (email);',
        ].join('\n'),
      ),
      [
        '1: drops column nick (users)',
        '2: drops column nick (users)',
        '3: drops table old_things (old_things)',
        '3: drops table Other (Other)',
        '4: renames column nick to handle (users)',
        '5: renames the table to members (users)',
        '6: sets email NOT NULL (users)',
        '7: changes the type of email (users)',
        '8: changes the type of email (users)',
        '9: drops the default of role (users)',
        '10: adds a FOREIGN KEY constraint that is not NOT VALID (posts)',
        '11: adds a CHECK constraint that is not NOT VALID (posts)',
        '12: adds a UNIQUE constraint that is not NOT VALID (public.posts)',
        '13: adds a unique index on users (users)',
      ],
    );
  });

  test('expanding statements, NOT VALID constraints, comments and strings are not contractions', () => {
    assert.deepEqual(
      contracts(
        [
          'ALTER TABLE users ADD COLUMN handle text;',
          'ALTER TABLE users ALTER COLUMN email DROP NOT NULL;',
          'ALTER TABLE users ALTER COLUMN role SET DEFAULT 1;',
          'ALTER TABLE posts ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;',
          'ALTER TABLE posts DROP CONSTRAINT old_check;',
          '-- ALTER TABLE users DROP COLUMN nick;',
          "INSERT INTO notes (body) VALUES ('ALTER TABLE users DROP COLUMN nick');",
          'CREATE TABLE tmp (id int); DROP TABLE tmp;',
          'CREATE TABLE tags (id int, name text); CREATE UNIQUE INDEX ix_tags_name ON tags (name);',
          'CREATE INDEX ix_users_name ON users (name);',
        ].join('\n'),
      ),
      [],
    );
  });

  test("SQLite's table rebuild (create, copy, drop, rename into place) is not a drop", () => {
    const rebuild = [
      'CREATE TABLE new_users (id integer PRIMARY KEY, nick text NOT NULL);',
      'INSERT INTO new_users SELECT id, nick FROM users;',
      'DROP TABLE users;',
      'ALTER TABLE new_users RENAME TO users;',
    ].join('\n');
    assert.deepEqual(contracts(rebuild, 'sqlite'), []);
  });
});

describe('the phase order and the release file (pure)', () => {
  test('phase order: every pre revision in version order, then every post one', () => {
    const order = phaseOrder(loadMigrations(fixture('phases'), 'postgres')).map((m) => m.revision);
    assert.deepEqual(order, ['000001', '000002', '000004', '000003']);
  });

  test('the release file: one statement each, at its first line, comments left out, writes told apart', () => {
    const pg = { dialect: 'postgres', migrations: [], works: new Map(), snapshots: [], runnable: true };
    const release = readRelease(RELEASE, [pg]);
    assert.equal(release.file, shown(RELEASE));
    assert.deepEqual(
      release.statements.map((st) => [st.line, st.writes, st.sql.split('\n')[0]]),
      [
        [2, false, 'SELECT id, created_at FROM users WHERE id = $1'],
        [5, false, 'SELECT id, nick'],
        [9, true, 'INSERT INTO users (id, nick) VALUES ($1, $2)'],
        [10, true, 'UPDATE users SET nick = $2 WHERE id = $1'],
        [11, true, 'DELETE FROM users WHERE id = $1'],
      ],
    );
    // A plain INSERT's parameters are matched with its columns, so they get values fit for them.
    assert.deepEqual(
      [...(release.statements[2]?.insert?.columns ?? [])],
      [
        [1, 'id'],
        [2, 'nick'],
      ],
    );
    assert.equal(release.statements[2]?.insert?.table, 'users');
    assert.throws(
      () => readRelease(RELEASE, [{ ...pg, dialect: 'sqlite' }]),
      (e: Error & { code?: string }) => e.code === 'BAD_OPTION' && /needs a postgres\/ folder/.test(e.message),
    );
  });
});

describe('check: phases', () => {
  it('a post revision dropping nick and a later pre one adding it back: PHASE_ORDER naming both, on both dialects (exit 1)', async () => {
    const dir = fixture('phase-order');
    const r = await check(dir, '--no-data');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const found = lines(r, 'PHASE_ORDER');
    for (const dialect of ['postgres', 'sqlite']) {
      const line = found.find((l) =>
        l.startsWith(`${shown(join(dir, dialect, '000003_readd_nick.up.sql'))}:2:1: error: `),
      );
      assert.ok(line, `no PHASE_ORDER on ${dialect}:\n${r.stdout}`);
      assert.match(line, /000003_readd_nick is pre and runs ahead of the post revision 000002_drop_nick/);
    }
    assert.equal(found.length, 2, r.stdout);
  });

  it('a post revision that fails once a later pre one ran first: PHASE_ORDER naming both', async () => {
    const dir = fixture('phase-order-post');
    const r = await check(dir, '--no-data');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const [line, ...more] = lines(r, 'PHASE_ORDER');
    assert.deepEqual(more, [], r.stdout);
    assert.ok(line?.startsWith(`${shown(join(dir, 'postgres', '000002_add_nick.up.sql'))}:2:1: error: `), r.stdout);
    assert.match(
      line ?? '',
      /relation "users" does not exist \(42P01\)\. 000002_add_nick is post and runs after 000003_rename_users/,
    );
  });

  it('a phase order that runs but builds another schema: PHASE_ORDER naming the post revision and the pre one', async () => {
    const dir = fixture('phase-order-schema');
    const r = await check(dir, '--no-data');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const [line, ...more] = lines(r, 'PHASE_ORDER');
    assert.deepEqual(more, [], r.stdout);
    assert.ok(line?.startsWith(`${shown(join(dir, 'postgres', '000002_drop_nick.up.sql'))}: error: `), r.stdout);
    assert.match(line ?? '', /column users\.nick exists in version order only/);
    assert.match(line ?? '', /000002_drop_nick is post and runs after 000003_readd_nick/);
  });

  it('a pre DROP COLUMN: CONTRACT_IN_PRE at its line in each dialect; none once the file is post (exit 0)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mig-contract-'));
    try {
      cpSync(fixture('phases'), dir, { recursive: true });
      const post = await check(dir, '--no-data');
      assert.equal(post.code, 0, post.stdout + post.stderr);
      assert.deepEqual(lines(post, 'CONTRACT_IN_PRE'), []);
      for (const dialect of ['postgres', 'sqlite']) {
        const file = join(dir, dialect, '000003_drop_nick.up.sql');
        writeFileSync(file, readFileSync(file, 'utf8').replace('-- migrate:phase post\n', ''));
      }
      const pre = await check(dir, '--no-data');
      assert.equal(pre.code, 0, pre.stdout + pre.stderr); // a warning
      const found = lines(pre, 'CONTRACT_IN_PRE');
      assert.equal(found.length, 2, pre.stdout);
      for (const dialect of ['postgres', 'sqlite']) {
        assert.ok(
          found.some((l) =>
            l.startsWith(
              `${join(dir, dialect, '000003_drop_nick.up.sql')}:3:19: warning: drops column nick in a pre revision`,
            ),
          ),
          pre.stdout,
        );
      }
      assert.match(found[0] ?? '', /-- migrate:allow-contract users: <reason>/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('allow-contract accepts it; a waiver nothing uses, and one without a reason, are reported', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mig-contract-waiver-'));
    try {
      cpSync(fixture('phases'), dir, { recursive: true });
      const pg = join(dir, 'postgres', '000003_drop_nick.up.sql');
      const lite = join(dir, 'sqlite', '000003_drop_nick.up.sql');
      const waived = '-- migrate:allow-contract users: no release reads nick since v3\n';
      writeFileSync(pg, readFileSync(pg, 'utf8').replace('-- migrate:phase post\n', waived));
      writeFileSync(
        lite,
        readFileSync(lite, 'utf8').replace('-- migrate:phase post\n', '-- migrate:allow-contract users\n'),
      );
      writeFileSync(
        join(dir, 'postgres', '000002_add_name.up.sql'),
        `-- migrate:allow-contract posts: never mind\nALTER TABLE users ADD COLUMN name text;\n`,
      );
      const r = await check(dir, '--no-data');
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.deepEqual(
        lines(r, 'CONTRACT_IN_PRE').map((l) => l.split(':')[0]),
        [lite], // the malformed waiver accepts nothing
      );
      assert.ok(
        lines(r, 'BAD_WAIVER').some((l) => l.startsWith(`${lite}:1: error: `)),
        r.stdout,
      );
      assert.ok(
        lines(r, 'UNUSED_WAIVER').some((l) =>
          l.startsWith(`${join(dir, 'postgres', '000002_add_name.up.sql')}:1: warning: `),
        ),
        r.stdout,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("dialects disagreeing on a revision's phase: PHASE_MISMATCH naming the file (exit 1)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mig-phase-mismatch-check-'));
    try {
      cpSync(fixture('phases'), dir, { recursive: true });
      const lite = join(dir, 'sqlite', '000003_drop_nick.up.sql');
      writeFileSync(lite, readFileSync(lite, 'utf8').replace('-- migrate:phase post\n', ''));
      const r = await check(dir, '--no-data');
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const [line] = lines(r, 'PHASE_MISMATCH');
      assert.ok(line?.startsWith(`${lite}: error: revision 000003 is post in `), r.stdout);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('check --compat: the running release against each revision (PostgreSQL)', () => {
  it('a pre revision renaming a column the release selects: COMPAT_BREAK at each statement using it (exit 1)', async () => {
    const r = await check(fixture('compat-rename'), `--compat=${RELEASE}`);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const found = lines(r, 'COMPAT_BREAK');
    const at = found.map((l) => l.split(': ')[0]);
    // 5: the SELECT of nick (its first line); 9 the INSERT, 10 the UPDATE; not 2 or 11, which use no nick.
    assert.deepEqual(
      at,
      [5, 9, 10].map((n) => `${shown(RELEASE)}:${n}`),
      r.stdout,
    );
    assert.match(
      found[0] ?? '',
      /: error: .*works before 000002_rename_nick and fails after it: column "nick" does not exist \(42703\)/,
    );
  });

  it('the same change as add (pre) then drop (post): no COMPAT_BREAK (exit 0)', async () => {
    const r = await check(fixture('compat-expand'), `--compat=${RELEASE}`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(lines(r, 'COMPAT_BREAK'), []);
    assert.match(r.stdout, /data: postgres 3\/3 on populated tables/);
    assert.match(
      r.stdout,
      /^compat: test\/fixtures\/compat-release\.sql: 5 of 5 statements run against postgres 3\/3 revisions$/m,
    );
  });

  it("a pre NOT NULL without a default on a column the release's INSERT leaves out: COMPAT_BREAK at the INSERT (it prepares, and fails when run)", async () => {
    const r = await check(fixture('compat-not-null'), `--compat=${RELEASE}`);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const found = lines(r, 'COMPAT_BREAK');
    assert.equal(found.length, 1, r.stdout);
    assert.match(
      found[0] ?? '',
      new RegExp(
        `^${shown(RELEASE)}:9: error: .*INSERT INTO users.*works before 000002_created_required and fails after it: null value in column "created_at".*\\(23502\\)`,
      ),
    );
  });

  it('a --compat file that cannot be read exits 2', async () => {
    const r = await runCli([
      'check',
      '--dir',
      fixture('compat-rename'),
      '--url',
      'sqlite::memory:',
      '--compat=/nonexistent/release.sql',
    ]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /--compat=\/nonexistent\/release\.sql: cannot read the file/);
  });
});
