/**
 * `check` measures the locks each statement takes on the scratch PostgreSQL database: the
 * findings for a ground-truth folder (test/fixtures/check-locks) against what PostgreSQL 15
 * documents for each statement, and the `-- migrate:allow-lock` line that accepts one.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check, type CheckResult, type Finding } from '../runner/check/check.ts';
import { fixture } from './support/cli.ts';
import { createPostgresDatabase, hasPostgresServer } from './support/postgres.ts';

const NEEDS_SERVER = hasPostgresServer ? false : 'needs TEST_POSTGRES_URL: locks are measured on a real server';

async function checkOnServer(dir: string): Promise<CheckResult> {
  const db = await createPostgresDatabase();
  try {
    // The lock pass alone: the pass on populated tables has its own tests.
    return await check({ url: db.url, dir, data: false });
  } finally {
    await db.drop();
  }
}

const lockFindings = (r: CheckResult): Finding[] =>
  r.findings.filter((f) => f.code === 'LOCKS_TABLE' || f.code === 'REWRITES_TABLE');

/**
 * Per statement of the fixture's second revision: the lock mode each table that existed before
 * it gets (only modes above ROW EXCLUSIVE), and whether the table is rewritten. Written from
 * https://www.postgresql.org/docs/15/explicit-locking.html and the ALTER TABLE notes
 * (https://www.postgresql.org/docs/15/sql-altertable.html#SQL-ALTERTABLE-NOTES).
 */
const EXPECTED: Array<[statement: string, locks: Record<string, string>, rewrites: string[]]> = [
  ['ALTER TABLE t_const ADD COLUMN flag boolean NOT NULL DEFAULT false', { t_const: 'ACCESS EXCLUSIVE' }, []],
  [
    'ALTER TABLE t_volatile ADD COLUMN score float8 DEFAULT random()',
    { t_volatile: 'ACCESS EXCLUSIVE' },
    ['t_volatile'],
  ],
  ['ALTER TABLE t_varchar ALTER COLUMN name TYPE varchar(20)', { t_varchar: 'ACCESS EXCLUSIVE' }, []],
  ['ALTER TABLE t_bigint ALTER COLUMN n TYPE bigint', { t_bigint: 'ACCESS EXCLUSIVE' }, ['t_bigint']],
  ['ALTER TABLE t_text ALTER COLUMN name TYPE text', { t_text: 'ACCESS EXCLUSIVE' }, []],
  ['ALTER TABLE t_fk ADD CONSTRAINT', { t_fk: 'SHARE ROW EXCLUSIVE', p_fk: 'SHARE ROW EXCLUSIVE' }, []],
  ['ALTER TABLE t_fk_nv ADD CONSTRAINT', { t_fk_nv: 'SHARE ROW EXCLUSIVE', p_fk_nv: 'SHARE ROW EXCLUSIVE' }, []],
  ['ALTER TABLE t_validate VALIDATE CONSTRAINT', { t_validate: 'SHARE UPDATE EXCLUSIVE' }, []],
  ['CREATE INDEX ix_t_index_n ON t_index (n)', { t_index: 'SHARE' }, []],
  ['ALTER TABLE t_notnull ALTER COLUMN n SET NOT NULL', { t_notnull: 'ACCESS EXCLUSIVE' }, []],
  ['ALTER TABLE t_nullable ALTER COLUMN n DROP NOT NULL', { t_nullable: 'ACCESS EXCLUSIVE' }, []],
  ['ALTER TABLE t_drop DROP COLUMN extra', { t_drop: 'ACCESS EXCLUSIVE' }, []],
  ['ALTER TABLE t_check ADD CONSTRAINT', { t_check: 'ACCESS EXCLUSIVE' }, []],
  ['ALTER TABLE t_rename RENAME COLUMN a TO b', { t_rename: 'ACCESS EXCLUSIVE' }, []],
  ['ALTER TABLE t_default ALTER COLUMN n SET DEFAULT 0', { t_default: 'ACCESS EXCLUSIVE' }, []],
  ['DROP INDEX ix_t_dropidx_n', { t_dropidx: 'ACCESS EXCLUSIVE' }, []],
  ['ALTER TABLE t_unique ADD CONSTRAINT', { t_unique: 'ACCESS EXCLUSIVE' }, []],
  ['ALTER TABLE t_stats ALTER COLUMN n SET STATISTICS 500', { t_stats: 'SHARE UPDATE EXCLUSIVE' }, []],
  ['ALTER TABLE t_storage SET (autovacuum_enabled = false)', { t_storage: 'SHARE UPDATE EXCLUSIVE' }, []],
  ['INSERT INTO t_dml', {}, []],
  ['UPDATE t_dml', {}, []],
  // A table the revision creates is nobody else's yet; the existing table its key references is.
  ['CREATE TABLE t_created', {}, []],
  ['ALTER TABLE t_created ALTER COLUMN n TYPE bigint', {}, []],
  ['CREATE TABLE t_child', { p_new: 'SHARE ROW EXCLUSIVE' }, []],
];

/** `line -> "table MODE"` / `"table rewritten"` entries, as a comparable sorted list. */
function entries(rows: Array<[line: number, what: string]>): string[] {
  return rows.map(([line, what]) => `${line}: ${what}`).sort();
}

describe('check measures locks', { skip: NEEDS_SERVER }, () => {
  let ground: Promise<CheckResult> | undefined;
  /** The fixture checked once, for the tests that read its findings. */
  const groundTruth = () => (ground ??= checkOnServer(fixture('check-locks')));

  it('reports the lock mode and rewrite of each statement as PostgreSQL 15 takes them', async () => {
    const dir = fixture('check-locks');
    const file = 'postgres/20250102_000000_alter.up.sql';
    const lines = readFileSync(join(dir, file), 'utf8').split('\n');
    const lineOf = (statement: string) => {
      const i = lines.findIndex((l) => l.startsWith(statement));
      assert.ok(i >= 0, `the fixture holds "${statement}"`);
      return i + 1;
    };
    assert.ok(EXPECTED.length >= 20);
    const expected = entries(
      EXPECTED.flatMap(([statement, locks, rewrites]) => [
        ...Object.entries(locks).map(([table, mode]): [number, string] => [lineOf(statement), `${table} ${mode}`]),
        ...rewrites.map((table): [number, string] => [lineOf(statement), `${table} rewritten`]),
      ]),
    );

    const r = await groundTruth();
    assert.equal(r.errors, 0, JSON.stringify(r.findings, null, 2));
    const found = lockFindings(r).filter((f) => f.file.endsWith(file));
    const actual = entries(
      found.map((f): [number, string] => {
        if (f.code === 'REWRITES_TABLE') return [f.line as number, `${f.subject} rewritten`];
        const mode = /^([A-Z ]+) on /.exec(f.message)?.[1];
        return [f.line as number, `${f.subject} ${mode}`];
      }),
    );
    assert.deepEqual(actual, expected);
    for (const f of found) assert.equal(f.column, 1);
    assert.ok(found.every((f) => f.severity === 'warning'));
    // CREATE INDEX CONCURRENTLY, in a file of its own that runs outside a transaction, watched from a
    // second session: its SHARE UPDATE EXCLUSIVE is what the form is for, so no LOCKS_TABLE (issue #26).
    assert.deepEqual(
      lockFindings(r)
        .filter((f) => f.file.endsWith('postgres/20250103_000000_concurrent_index.up.sql'))
        .map((f) => [f.line, f.column, f.code, f.message.split(':')[0]]),
      [],
    );
    // The first revision only creates tables: nothing of it is reported.
    assert.deepEqual(
      lockFindings(r).filter((f) => f.file.includes('20250101_000000')),
      [],
    );
  });

  it('says what each lock blocks', async () => {
    const r = await groundTruth();
    const message = (subject: string) => lockFindings(r).find((f) => f.subject === subject)?.message ?? '';
    assert.match(message('t_const'), /^ACCESS EXCLUSIVE on t_const: blocks reads and writes until commit\./);
    assert.match(message('t_index'), /^SHARE on t_index: blocks writes until commit\./);
    assert.match(message('t_stats'), /^SHARE UPDATE EXCLUSIVE on t_stats: .*reads and writes go on\./);
    assert.match(message('t_const'), /-- migrate:allow-lock t_const: <reason>$/);
  });

  it('accepts a lock named by -- migrate:allow-lock, counts an index toward its table, and warns of a waiver that accepts nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'check-locks-'));
    try {
      mkdirSync(join(dir, 'postgres'));
      const write = (name: string, text: string) => writeFileSync(join(dir, 'postgres', name), text);
      write(
        '1_users.up.sql',
        'CREATE TABLE users (id int PRIMARY KEY, n int);\nCREATE INDEX ix_users_n ON users (n);\n',
      );
      write('1_users.down.sql', 'DROP TABLE users;\n');
      write('2_plans.up.sql', 'CREATE TABLE plans (id int PRIMARY KEY);\n');
      write('2_plans.down.sql', 'DROP TABLE plans;\n');
      write(
        '3_alter.up.sql',
        '-- migrate:allow-lock public.plans: twelve rows, read once at start-up\n' +
          '-- migrate:allow-lock orders: no such lock here\n' +
          'ALTER TABLE plans ADD COLUMN price int;\n' +
          'REINDEX INDEX ix_users_n;\n',
      );
      write('3_alter.down.sql', 'ALTER TABLE plans DROP COLUMN price;\n');
      const r = await checkOnServer(join(dir, 'postgres'));
      const shown = lockFindings(r).map((f) => `${f.line}:${f.column} ${f.message.split(':')[0]}`);
      // REINDEX takes SHARE on the table and ACCESS EXCLUSIVE on the index, which counts as the table's.
      assert.deepEqual(shown, ['4:1 ACCESS EXCLUSIVE on users']);
      const unused = r.findings.filter((f) => f.code === 'UNUSED_WAIVER');
      assert.deepEqual(
        unused.map((f) => [f.line, f.severity]),
        [[2, 'warning']],
      );
      assert.match(unused[0]?.message ?? '', /allow-lock orders: .*accepts nothing/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('-- migrate:allow-lock without a database', () => {
  it('must name a table and a reason, and belongs in PostgreSQL up files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'check-locks-'));
    try {
      for (const d of ['postgres', 'sqlite']) mkdirSync(join(dir, d));
      writeFileSync(join(dir, 'postgres', '1_a.up.sql'), '-- migrate:allow-lock users\nCREATE TABLE a (id int);\n');
      writeFileSync(join(dir, 'postgres', '1_a.down.sql'), 'DROP TABLE a;\n');
      writeFileSync(join(dir, 'sqlite', '1_a.up.sql'), '-- migrate:allow-lock a: small\nCREATE TABLE a (id int);\n');
      writeFileSync(join(dir, 'sqlite', '1_a.down.sql'), 'DROP TABLE a;\n');
      const r = await check({ url: 'sqlite::memory:', dir });
      const codes = r.findings.map((f) => [f.file.split('/').slice(-2).join('/'), f.line, f.code, f.severity]);
      assert.deepEqual(codes, [
        ['postgres/1_a.up.sql', 1, 'BAD_WAIVER', 'error'],
        ['sqlite/1_a.up.sql', 1, 'UNUSED_WAIVER', 'warning'],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
