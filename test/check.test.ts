/**
 * `check`, run as a user runs it: the CLI on fixtures that each carry one planted defect
 * (test/fixtures/check-*), a clean fixture, and the project's own sql/.
 *
 * The PostgreSQL half needs a server that keeps databases apart, since check creates and drops
 * a scratch database on it: TEST_POSTGRES_URL. The embedded PGlite accepts CREATE DATABASE but
 * serves its one database under every name (check refuses it, exit 3), so without a server the
 * tests that need a server are skipped; with a SQLite URL check proves PostgreSQL on its own
 * embedded PGlite. CI sets the URL.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import postgres from 'postgres';
import { fixture, ROOT, runCli, type CliResult } from './support/cli.ts';
import { createPostgresDatabase, hasPostgresServer } from './support/postgres.ts';
import { checkExpressions } from '../runner/catalog/sqlite-schema.ts';
import { identifiers } from '../runner/check/lint.ts';
import type { Schema, Table } from '../runner/catalog/schema.ts';
import { compareDialects } from '../runner/catalog/schema-compare.ts';

const NEEDS_SERVER = hasPostgresServer
  ? false
  : 'needs TEST_POSTGRES_URL: check creates its scratch PostgreSQL database there';

/** Run `check` on a folder; with a PostgreSQL database from the test server when `pg`. */
async function check(dir: string, pg: boolean, ...extra: string[]): Promise<CliResult> {
  if (!pg) return runCli(['check', '--dir', dir, '--url', 'sqlite::memory:', ...extra]);
  const db = await createPostgresDatabase();
  try {
    return await runCli(['check', '--dir', dir, '--url', db.url, ...extra]);
  } finally {
    await db.drop();
  }
}

/** The fixture's folder as check names it (relative to the working directory, ROOT). */
function shown(name: string, dialect: 'postgres' | 'sqlite', file: string): string {
  return `${relative(ROOT, fixture(name))}/${dialect}/${file}`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The one line of output that reports `file` (at an optional line), as a regular expression match. */
function findingLine(r: CliResult, file: string, severity: 'error' | 'warning', message: RegExp, code: string): void {
  const re = new RegExp(
    `^${escapeRegExp(file)}(?::\\d+(?::\\d+)?)?: ${severity}: ${message.source}.* \\[${code}\\]$`,
    'm',
  );
  assert.match(
    r.stdout,
    re,
    `expected a ${code} ${severity} on ${file}\n--- stdout:\n${r.stdout}\n--- stderr:\n${r.stderr}`,
  );
}

function errorCount(r: CliResult): number {
  return r.stdout.split('\n').filter((l) => / error: /.test(l)).length;
}

/**
 * `check` on the test server as a role of its own, and the scratch databases that role still owns
 * afterwards: another `check` may run on the same server meanwhile, so only this run's count.
 */
async function checkOwningScratch(dir: string): Promise<{ r: CliResult; left: string[] }> {
  const role = `migrate_check_owner_${randomBytes(4).toString('hex')}`;
  const db = await createPostgresDatabase();
  const sql = postgres(process.env.TEST_POSTGRES_URL as string, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`CREATE ROLE ${role} LOGIN CREATEDB`);
    const r = await runCli(['check', '--dir', dir, '--url', db.url.replace(/\/\/[^@/]*@/, `//${role}@`)]);
    const owned =
      await sql`SELECT datname FROM pg_database WHERE datdba = (SELECT oid FROM pg_roles WHERE rolname = ${role})`;
    const left = owned.map((row) => String(row.datname));
    for (const name of left) await sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    return { r, left };
  } finally {
    await db.drop();
    await sql.unsafe(`DROP ROLE IF EXISTS ${role}`);
    await sql.end({ timeout: 5 });
  }
}

describe('check: planted defects, one per fixture', () => {
  it('a down that forgets an index: the down file and the index are named (exit 1)', async () => {
    const r = await check(fixture('check-down-forgets-index'), hasPostgresServer);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    findingLine(
      r,
      shown('check-down-forgets-index', 'sqlite', '000002_index_users.down.sql'),
      'error',
      /leaves index ix_users_created_at on users behind/,
      'ROUND_TRIP',
    );
    assert.equal(errorCount(r), 1, r.stdout);
    // The second up then fails on the leftover: said once, as a consequence, not as a second defect.
    findingLine(
      r,
      shown('check-down-forgets-index', 'sqlite', '000002_index_users.up.sql'),
      'warning',
      /fails when run again after its down \(as after "-1" then "head"\): index ix_users_created_at already exists/,
      'MIGRATION_FAILED',
    );
  });

  it('a down that forgets an enum type (PostgreSQL)', { skip: NEEDS_SERVER }, async () => {
    const r = await check(fixture('check-down-forgets-enum'), true);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    findingLine(
      r,
      shown('check-down-forgets-enum', 'postgres', '000002_add_mood.down.sql'),
      'error',
      /leaves enum type mood behind/,
      'ROUND_TRIP',
    );
    assert.equal(errorCount(r), 1, r.stdout);
  });

  it('a column nullable in one dialect only', { skip: NEEDS_SERVER }, async () => {
    // Its PostgreSQL up also fails on populated tables (test/check-data.test.ts): one defect at a time here.
    const r = await check(fixture('check-nullable-one-dialect'), true, '--no-data');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    findingLine(
      r,
      shown('check-nullable-one-dialect', 'sqlite', '000002_add_email.up.sql'),
      'error',
      /users\.email: NOT NULL in postgres, nullable in sqlite/,
      'DIALECT_DIFFERENCE',
    );
    assert.match(r.stdout, /-- migrate:allow-difference users\.email nullable: <reason>/);
    assert.equal(errorCount(r), 1, r.stdout);
  });

  it('a foreign key missing in one dialect', { skip: NEEDS_SERVER }, async () => {
    const r = await check(fixture('check-fk-one-dialect'), true);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    findingLine(
      r,
      shown('check-fk-one-dialect', 'sqlite', '000002_create_posts.up.sql'),
      'error',
      /foreign key posts \(user_id\) → users \(id\) exists in postgres only/,
      'DIALECT_DIFFERENCE',
    );
    assert.equal(errorCount(r), 1, r.stdout);
  });

  it('a revision present in one folder only (no database needed)', async () => {
    const r = await check(fixture('check-revision-one-folder'), false);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    findingLine(
      r,
      shown('check-revision-one-folder', 'postgres', '000002_add_email.up.sql'),
      'error',
      /revision 000002 has no counterpart in test\/fixtures\/check-revision-one-folder\/sql\/sqlite\//,
      'DIALECT_MISMATCH',
    );
    assert.equal(errorCount(r), 1, r.stdout);
    assert.match(r.stdout, /dialects not compared \(the dialect folders hold different revisions\)/);
  });

  it('COMMIT in a transactional file, at its line and column (no database needed)', async () => {
    const r = await check(fixture('check-commit-in-transaction'), false);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      new RegExp(
        `^${escapeRegExp(shown('check-commit-in-transaction', 'postgres', '000002_add_email.up.sql'))}:3:1: error: "COMMIT;?" inside a file that already runs in a transaction.* \\[TRANSACTION_CONTROL\\]$`,
        'm',
      ),
    );
    assert.equal(errorCount(r), 1, r.stdout);
    assert.match(r.stdout, /postgres not run \(errors in /);
  });

  it('every rule that needs no database, all reported in one run', async () => {
    const name = 'check-static-rules';
    const r = await check(fixture(name), false);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const up = shown(name, 'postgres', '000002_admins.up.sql');
    findingLine(r, up, 'error', /CREATE INDEX CONCURRENTLY cannot run inside a transaction/, 'NEEDS_NO_TRANSACTION');
    findingLine(
      r,
      up,
      'error',
      /ALTER TYPE userrole ADD VALUE 'ADMIN' runs inside this file's transaction.*a later statement of this file uses it/,
      'ENUM_VALUE_IN_TRANSACTION',
    );
    findingLine(
      r,
      up,
      'error',
      /"user_role_change_log_entries_kept_for_the_auditors_of_the_financial_year_2025" is 77 bytes long; PostgreSQL keeps 63/,
      'LONG_IDENTIFIER',
    );
    findingLine(
      r,
      up,
      'error',
      /"-- migrate:allow-difference users\.role values" must name one difference and say why/,
      'BAD_WAIVER',
    );
    findingLine(
      r,
      shown(name, 'sqlite', '000002_admins.up.sql'),
      'warning',
      /runs outside a transaction with 2 statements/,
      'NO_TRANSACTION_MULTI',
    );
  });
});

describe('check: what passes', () => {
  it('a clean fixture passes: round trips in both dialects, compared at every revision, and nothing left on the server', async () => {
    const { r, left } = hasPostgresServer
      ? await checkOwningScratch(fixture('check-clean'))
      : { r: await check(fixture('check-clean'), false), left: [] };
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stderr, '');
    assert.doesNotMatch(r.stdout, /: (error|warning): /);
    if (hasPostgresServer) {
      assert.match(
        r.stdout,
        /^check: 0 errors, 0 warnings; round trips: postgres 3\/3, sqlite 3\/3; dialects compared at 3 revisions$/m,
      );
      assert.deepEqual(left, []);
    } else {
      // Without a server URL the PostgreSQL half runs on the embedded PostgreSQL.
      assert.match(r.stdout, /round trips: postgres 3\/3, sqlite 3\/3; dialects compared at 3 revisions$/m);
    }
  });

  it("the project's own sql/ passes", async () => {
    const r = await check(join(ROOT, 'sql'), hasPostgresServer);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // As many as the folder holds: the team adds migrations, and this must keep passing.
    const n = readdirSync(join(ROOT, 'sql', 'postgres')).filter((f) => f.endsWith('.up.sql')).length;
    assert.match(
      r.stdout,
      hasPostgresServer
        ? new RegExp(`round trips: postgres ${n}/${n}, sqlite ${n}/${n}; dialects compared at ${n} revisions?$`, 'm')
        : new RegExp(`sqlite ${n}/${n}`),
    );
  });

  it('check never touches the database the URL names', { skip: NEEDS_SERVER }, async () => {
    const db = await createPostgresDatabase();
    try {
      const r = await runCli(['check', '--dir', fixture('check-clean'), '--url', db.url]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const sql = postgres(db.url, { max: 1, onnotice: () => {} });
      try {
        const [row] =
          await sql`SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'`;
        assert.equal(row?.n, 0, 'nothing created in the named database');
      } finally {
        await sql.end({ timeout: 5 });
      }
    } finally {
      await db.drop();
    }
  });
});

describe('check: waivers', () => {
  /** A private copy of the clean fixture to edit. */
  function copyClean(): { dir: string; cleanup(): void } {
    const root = mkdtempSync(join(tmpdir(), 'migrate-check-test-'));
    const dir = join(root, 'sql');
    cpSync(fixture('check-clean'), dir, { recursive: true });
    return { dir, cleanup: () => rmSync(root, { recursive: true, force: true }) };
  }

  it('the waiver in the clean fixture is what accepts its one intended difference', {
    skip: NEEDS_SERVER,
  }, async () => {
    const copy = copyClean();
    try {
      const file = join(copy.dir, 'postgres', '000002_create_posts.up.sql');
      writeFileSync(file, readFileSync(file, 'utf8').replace(/^-- migrate:allow-difference .*\n/m, ''));
      const r = await check(copy.dir, true);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(
        r.stdout,
        /sqlite\/000002_create_posts\.up\.sql: error: posts\.tags: other \(text\[\]\) in postgres, json \(TEXT\) in sqlite .*-- migrate:allow-difference posts\.tags type: <reason> \[DIALECT_DIFFERENCE\]$/m,
      );
      assert.equal(errorCount(r), 1, r.stdout);
    } finally {
      copy.cleanup();
    }
  });

  it('a waiver that accepts nothing is a warning; one that is not specific is an error', {
    skip: NEEDS_SERVER,
  }, async () => {
    const copy = copyClean();
    try {
      const file = join(copy.dir, 'sqlite', '000001_create_users.up.sql');
      writeFileSync(
        file,
        `-- migrate:allow-difference users.name nullable: no such difference\n${readFileSync(file, 'utf8')}`,
      );
      const unused = await check(copy.dir, true);
      assert.equal(unused.code, 0, unused.stdout + unused.stderr);
      assert.match(
        unused.stdout,
        /sqlite\/000001_create_users\.up\.sql:1: warning: "-- migrate:allow-difference users\.name nullable: no such difference" accepts nothing.* \[UNUSED_WAIVER\]$/m,
      );

      writeFileSync(file, `-- migrate:allow-difference *: everything\n${readFileSync(file, 'utf8')}`);
      const blanket = await check(copy.dir, true);
      assert.equal(blanket.code, 1, blanket.stdout + blanket.stderr);
      assert.match(
        blanket.stdout,
        /sqlite\/000001_create_users\.up\.sql:1: error: .*must name one difference and say why.* \[BAD_WAIVER\]$/m,
      );
    } finally {
      copy.cleanup();
    }
  });
});

describe('check: output and usage', () => {
  it('--json: one object with every finding, exit 1', async () => {
    const r = await check(fixture('check-down-forgets-index'), false, '--json');
    assert.equal(r.code, 1, r.stderr);
    const out = JSON.parse(r.stdout) as {
      ok: boolean;
      command: string;
      errors: number;
      findings: Array<Record<string, unknown>>;
      roundTrips: Array<Record<string, unknown>>;
    };
    assert.equal(out.ok, false);
    assert.equal(out.command, 'check');
    assert.equal(out.errors, 1);
    const f = out.findings.find((x) => x.code === 'ROUND_TRIP');
    assert.deepEqual(f, {
      severity: 'error',
      code: 'ROUND_TRIP',
      file: shown('check-down-forgets-index', 'sqlite', '000002_index_users.down.sql'),
      message:
        'leaves index ix_users_created_at on users behind: it was not there before 000002_index_users.up.sql ran, and the down must remove what the up made. ' +
        'If it cannot be undone, say why in this file: -- migrate:allow-difference index ix_users_created_at: <reason>',
      subject: 'index ix_users_created_at',
    });
    assert.deepEqual(
      out.roundTrips.find((t) => t.dialect === 'sqlite'),
      { dialect: 'sqlite', revisions: 1, of: 2 },
    );
  });

  it('usage errors exit 2: an argument, a folder that does not exist', async () => {
    const extra = await runCli(['check', 'head', '--url', 'sqlite::memory:']);
    assert.equal(extra.code, 2);
    assert.match(extra.stderr, /check takes no argument \("head"\).*\[BAD_TARGET\]/);
    const missing = await runCli([
      'check',
      '--dir',
      join(tmpdir(), 'no-such-migrations-folder'),
      '--url',
      'sqlite::memory:',
    ]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /\[NO_MIGRATIONS\]/);
  });
});

describe('check: pieces, without a database', () => {
  it('identifiers: strings, comments and dollar-quoted bodies are not names', () => {
    const text = `CREATE TABLE "Odd ""name""" (a int DEFAULT 'not_a_name'); -- nor_this\n/* nor_that */ SELECT $$ body $$, $f$ x $f$ FROM t1;`;
    assert.deepEqual(
      identifiers(text, 'postgres').map((i) => i.name),
      ['CREATE', 'TABLE', 'Odd "name"', 'a', 'int', 'DEFAULT', 'SELECT', 'FROM', 't1'],
    );
  });

  it('SQLite CHECKs are found in column and table constraints, quotes and comments skipped', () => {
    const sql = `CREATE TABLE t (a TEXT CHECK (a IN ('x', 'y)')), -- CHECK (ignored)\n b INTEGER, CONSTRAINT c CHECK ((b IN (0, 1))))`;
    assert.deepEqual(checkExpressions(sql), ["a IN ('x', 'y)')", '(b IN (0, 1))']);
  });

  it('across dialects: SQLite TEXT stands for a PostgreSQL timestamp, not for a boolean', () => {
    const table = (family: 'timestamp' | 'text' | 'boolean' | 'integer', type: string): Schema => ({
      tables: [
        {
          name: 't',
          columns: [{ name: 'c', type, family, nullable: true, hasDefault: false, default: null, generated: false }],
          primaryKey: [],
          foreignKeys: [],
          uniques: [],
          indexes: [],
          checks: [],
        } satisfies Table,
      ],
      enums: [],
      others: {},
    });
    assert.deepEqual(compareDialects(table('timestamp', 'timestamp without time zone'), table('text', 'TEXT')), []);
    const [d] = compareDialects(table('boolean', 'boolean'), table('integer', 'INTEGER'));
    assert.equal(d?.subject, 't.c type');
    assert.equal(
      `${d?.at}: ${d?.left} in postgres, ${d?.right} in sqlite`,
      't.c: boolean in postgres, integer in sqlite',
    );
  });
});

describe('check: the folder alone, through the runner’s own scan and lexer', () => {
  /** A temp root holding `files` (paths relative to it) for `fn`, removed afterwards. */
  async function withFolder(files: Record<string, string>, fn: (root: string) => Promise<void>): Promise<void> {
    const root = mkdtempSync(join(tmpdir(), 'check-lint-'));
    try {
      for (const [rel, body] of Object.entries(files)) {
        mkdirSync(join(root, rel, '..'), { recursive: true });
        writeFileSync(join(root, rel), body);
      }
      await fn(root);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }

  it('a 70-character word inside a nested PostgreSQL block comment is no LONG_IDENTIFIER', async () => {
    const long = 'w'.repeat(70);
    await withFolder(
      {
        'postgres/000001_a.up.sql': `/* outer /* inner */ ${long} still a comment */\nCREATE TABLE t (id int);\n`,
        'postgres/000001_a.down.sql': 'DROP TABLE t;\n',
      },
      async (root) => {
        const r = await check(root, false, '--json');
        const codes = (JSON.parse(r.stdout) as { findings: Array<{ code: string }> }).findings.map((f) => f.code);
        assert.deepEqual(codes, []);
        assert.equal(
          identifiers(`/* /* */ ${long} */ x`, 'postgres')
            .map((i) => i.name)
            .join(),
          'x',
        );
        // The same word outside the comment is one.
        writeFileSync(join(root, 'postgres/000001_a.up.sql'), `CREATE TABLE ${long} (id int);\n`);
        const again = await check(root, false);
        findingLine(again, join(root, 'postgres/000001_a.up.sql'), 'error', /"w+" is 70 bytes long/, 'LONG_IDENTIFIER');
      },
    );
  });

  it('every folder problem is reported, each at its file, with the runner’s codes', async () => {
    await withFolder(
      {
        'sqlite/000001_a.up.sql': 'SELECT 1;\n',
        'sqlite/000001_a.down.sql': 'SELECT 1;\n',
        'sqlite/000002_b.up.sql': 'SELECT 1;\n',
        'sqlite/notes.sql': '',
        'sqlite/000003_c.up.sql': 'SELECT 1;\0\n',
        'sqlite/000003_c.down.sql': '-- migrate:bogus\n',
      },
      async (root) => {
        const r = await check(root, false);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        const at = (f: string) => join(root, 'sqlite', f);
        findingLine(r, at('notes.sql'), 'error', /not a migration name/, 'BAD_FILENAME');
        findingLine(r, at('000002_b.up.sql'), 'error', /no matching 000002_b\.down\.sql/, 'MISSING_DOWN');
        assert.ok(r.stdout.includes(`${at('000003_c.up.sql')}:1:10: error: holds a NUL byte`), r.stdout);
        assert.ok(r.stdout.includes(`${at('000003_c.down.sql')}:1: error: unknown directive`), r.stdout);
        assert.equal(errorCount(r), 4, r.stdout);
      },
    );
  });

  it('an up file of comments only is an EMPTY_UP error (exit 1); an empty down is not', async () => {
    await withFolder(
      {
        'sqlite/000001_a.up.sql': '-- Apply a\n-- (forgot to write it)\n\n',
        'sqlite/000001_a.down.sql': '-- nothing to undo\n',
      },
      async (root) => {
        const r = await check(root, false);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        findingLine(r, join(root, 'sqlite/000001_a.up.sql'), 'error', /holds no statement, only comments/, 'EMPTY_UP');
        assert.doesNotMatch(r.stdout, /000001_a\.down\.sql.*EMPTY_UP/);
      },
    );
  });

  it('a COMMIT after a trigger whose body names a column begin is TRANSACTION_CONTROL', async () => {
    const up = `CREATE TABLE t (id integer PRIMARY KEY, begin integer);
CREATE TRIGGER t_touch AFTER INSERT ON t BEGIN
  UPDATE t SET begin = 1 WHERE id = NEW.id;
END;
COMMIT;
`;
    await withFolder({ 'sqlite/000001_a.up.sql': up, 'sqlite/000001_a.down.sql': 'DROP TABLE t;\n' }, async (root) => {
      const r = await check(root, false);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.ok(r.stdout.includes(`${join(root, 'sqlite/000001_a.up.sql')}:5:1: error: "COMMIT;" inside`), r.stdout);
    });
  });
});

describe('check without a PostgreSQL server: the embedded PostgreSQL proves the PostgreSQL half', () => {
  it('a foreign key missing in one dialect is found with a SQLite URL, and the output names the embedded PostgreSQL', async () => {
    const r = await runCli(['check', '--dir', fixture('check-fk-one-dialect'), '--url', 'sqlite::memory:']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    findingLine(
      r,
      shown('check-fk-one-dialect', 'sqlite', '000002_create_posts.up.sql'),
      'error',
      /foreign key posts \(user_id\) → users \(id\) exists in postgres only/,
      'DIALECT_DIFFERENCE',
    );
    assert.match(r.stdout, /^check: postgres on embedded PostgreSQL \S+ \(PGlite [^)]*\)$/m);
    assert.match(r.stdout, /round trips: postgres 2\/2, sqlite 2\/2; dialects compared at 2 revisions$/m);
  });

  it('a nullability difference is found with no URL at all', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'mig-check-nourl-'));
    try {
      const r = await runCli(['check', '--dir', fixture('check-nullable-one-dialect')], { cwd });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /users\.email: NOT NULL in postgres, nullable in sqlite.* \[DIALECT_DIFFERENCE\]$/m);
      assert.match(r.stdout, /^check: postgres on embedded PostgreSQL/m);
      assert.deepEqual(readdirSync(cwd), [], 'no database file made for the default URL');
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('an extension the embedded PostgreSQL lacks: a clear warning on that file, the revisions before it proven', async () => {
    const r = await runCli(['check', '--dir', fixture('check-extension-embedded'), '--url', 'sqlite::memory:']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    findingLine(
      r,
      shown('check-extension-embedded', 'postgres', '000002_tag_names.up.sql'),
      'warning',
      /needs the extension "citext", which the embedded PostgreSQL \(PGlite\) does not have: this file and the revisions after it were not proven on postgres\. Give check a PostgreSQL server that has it \(--url postgres:\/\/…\)/,
      'MIGRATION_FAILED',
    );
    assert.match(r.stdout, /round trips: postgres 1\/2, sqlite 2\/2; dialects compared at 1 revision$/m);
  });
});
