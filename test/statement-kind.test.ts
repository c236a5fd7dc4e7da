/**
 * The lexer's two answers about a statement, given in one place (runner/core/split.ts) and used
 * by every caller: whether a text holds a statement (the plan's EMPTY_UP warning, a step's
 * "record only", check's lint, the split), and what kind of statement it is (statementKind: the
 * CONCURRENTLY family and the rest of what PostgreSQL refuses in a transaction).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMigrations, type Dialect } from '../runner/core/files.ts';
import { plan, parseTarget } from '../runner/core/plan.ts';
import { stepWork } from '../runner/core/step.ts';
import { limitsFor } from '../runner/core/locks.ts';
import {
  concurrentIndexName,
  holdsStatement,
  splitStatements,
  type StatementKind,
  statementKind,
} from '../runner/core/split.ts';

/** What each consumer says of an up file holding `text`, on `dialect`: true when it sees a statement. */
function verdicts(text: string, dialect: Dialect): Record<string, boolean> {
  const dir = mkdtempSync(join(tmpdir(), 'statement-kind-'));
  try {
    mkdirSync(join(dir, dialect));
    writeFileSync(join(dir, dialect, '000001_a.up.sql'), text);
    writeFileSync(join(dir, dialect, '000001_a.down.sql'), '-- nothing\n');
    const migrations = loadMigrations(dir, dialect);
    const p = plan(migrations, [], parseTarget('head'), { dialect, enforce: false });
    const up = p.steps[0];
    assert.ok(up);
    // head refuses an up file with no statement (EMPTY_UP).
    let refused = false;
    try {
      plan(migrations, [], parseTarget('head'), { dialect });
    } catch (error) {
      if ((error as { code?: string }).code !== 'EMPTY_UP') throw error;
      refused = true;
    }
    return {
      holdsStatement: holdsStatement(text, dialect),
      split: splitStatements(text, dialect).length > 0,
      plan: !refused,
      step: !stepWork(up, dialect).empty,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('is there a statement: one answer everywhere', () => {
  const cases: Array<[string, string, Record<Dialect, boolean>]> = [
    // PostgreSQL nests block comments: the comment ends at the second */, then a statement.
    ['a nested comment, then a statement', '/* a /* b */ c */ select 1;', { postgres: true, sqlite: true }],
    // PostgreSQL: one comment. SQLite ends the comment at the first */ and reads `c */` as a statement.
    ['a nested comment alone', '/* a /* b */ c */\n', { postgres: false, sqlite: true }],
    ['comments and empty statements', '-- only\n;;\n/* and */\n', { postgres: false, sqlite: false }],
    [
      'a statement after a comment header',
      '-- add a column\nALTER TABLE t ADD COLUMN c int;\n',
      { postgres: true, sqlite: true },
    ],
  ];
  for (const [name, text, expected] of cases) {
    for (const dialect of ['postgres', 'sqlite'] as const) {
      test(`${name} (${dialect})`, () => {
        const want = expected[dialect];
        assert.deepEqual(verdicts(text, dialect), { holdsStatement: want, split: want, plan: want, step: want });
      });
    }
  }

  test('without a dialect, plan refuses (EMPTY_UP) only when both dialects see no statement', () => {
    const dir = mkdtempSync(join(tmpdir(), 'statement-kind-'));
    try {
      mkdirSync(join(dir, 'postgres'));
      writeFileSync(join(dir, 'postgres', '000001_a.up.sql'), '/* a /* b */ c */\n');
      writeFileSync(join(dir, 'postgres', '000001_a.down.sql'), '');
      writeFileSync(join(dir, 'postgres', '000002_b.up.sql'), '-- nothing yet\n');
      writeFileSync(join(dir, 'postgres', '000002_b.down.sql'), '');
      const migrations = loadMigrations(dir, 'postgres');
      // 000001 holds a statement for SQLite's reading of the nested comment: it alone passes.
      assert.equal(plan(migrations, [], parseTarget('+1')).steps.length, 1);
      assert.throws(
        () => plan(migrations, [], parseTarget('head')),
        (e: Error & { code?: string }) =>
          e.code === 'EMPTY_UP' && /^\S*000002_b\.up\.sql holds no statement, only comments/.test(e.message),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('what kind of statement', () => {
  const cases: Array<[string, StatementKind | undefined, Dialect?]> = [
    ['CREATE INDEX CONCURRENTLY ix ON t (a)', 'CREATE INDEX CONCURRENTLY'],
    ['create unique index concurrently ix on t (a)', 'CREATE INDEX CONCURRENTLY'],
    ['CREATE /* why */ INDEX\n-- note\n CONCURRENTLY ix ON t (a)', 'CREATE INDEX CONCURRENTLY'],
    ['CREATE INDEX concurrently_ix ON t (a)', undefined],
    ['CREATE INDEX "concurrently" ON t (a)', undefined],
    ['DROP INDEX CONCURRENTLY IF EXISTS ix', 'DROP INDEX CONCURRENTLY'],
    ['DROP INDEX ix', undefined],
    ['REINDEX INDEX CONCURRENTLY ix', 'REINDEX CONCURRENTLY'],
    ['REINDEX (VERBOSE, CONCURRENTLY) TABLE t', 'REINDEX CONCURRENTLY'],
    ['REINDEX TABLE "concurrently"', undefined],
    ['ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY', 'DETACH PARTITION CONCURRENTLY'],
    ['ALTER TABLE p DETACH PARTITION p1 FINALIZE', undefined],
    ["ALTER TABLE p ADD COLUMN note text DEFAULT 'detach partition concurrently'", undefined],
    ['VACUUM ANALYZE t', 'VACUUM'],
    ['CREATE DATABASE d', 'CREATE/DROP DATABASE'],
    ['DROP TABLESPACE s', 'CREATE/DROP TABLESPACE'],
    ['ALTER SYSTEM SET work_mem = 1', 'ALTER SYSTEM'],
    ['CREATE TABLE t (a int)', undefined],
    ['VACUUM', 'VACUUM', 'sqlite'],
    ['CREATE INDEX CONCURRENTLY ix ON t (a)', undefined, 'sqlite'],
  ];
  for (const [sql, kind, dialect = 'postgres'] of cases) {
    test(`${sql} (${dialect}) → ${kind ?? 'none'}`, () => assert.equal(statementKind(sql, dialect), kind));
  }

  test('the index a CREATE INDEX CONCURRENTLY builds, as written', () => {
    assert.equal(concurrentIndexName('CREATE INDEX CONCURRENTLY ix ON t (a)'), 'ix');
    assert.equal(concurrentIndexName('create unique index concurrently if not exists "Ix" on t (a)'), '"Ix"');
    assert.equal(concurrentIndexName('-- c\nCREATE INDEX CONCURRENTLY app . ix ON t (a)'), 'app.ix');
    assert.equal(concurrentIndexName('CREATE INDEX CONCURRENTLY ON t (a)'), undefined);
    assert.equal(concurrentIndexName('CREATE INDEX ix ON t (a)'), undefined);
  });

  test('index builds, rebuilds and drops CONCURRENTLY wait without a lock timeout; nothing else does', () => {
    const limits = { lockTimeoutMs: 5000, statementTimeoutMs: 60000 };
    for (const sql of [
      'CREATE INDEX CONCURRENTLY ix ON t (a)',
      'DROP INDEX CONCURRENTLY ix',
      'REINDEX INDEX CONCURRENTLY ix',
    ])
      assert.deepEqual(limitsFor(sql, limits), { lockTimeoutMs: 0, statementTimeoutMs: 60000 }, sql);
    for (const sql of ['ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY', 'CREATE INDEX ix ON t (a)'])
      assert.deepEqual(limitsFor(sql, limits), limits, sql);
  });
});
