/**
 * From PostgreSQL's error `position` to file:line:column, for real: the file goes to the server
 * through the driver exactly as the runner sends it, and the StepFailure's offset is turned into
 * a line and column with runner/position.ts. Multibyte and astral characters before the error,
 * and CRLF files, must not shift it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type RecordChange, type StepWork, runStep, StepFailure } from '../runner/core/step.ts';
import { PostgresDriver } from '../runner/core/drivers/postgres.ts';
import { normaliseText } from '../runner/core/files.ts';
import { lineColumn } from '../runner/core/position.ts';
import { splitStatements } from '../runner/core/split.ts';
import { createPostgresDatabase } from './support/postgres.ts';

const record: RecordChange = { kind: 'insert', revision: '20250301_090000', description: 'add_email', checksum: 'x' };

function work(sql: string, transactional = true): StepWork {
  const statements = splitStatements(sql, 'postgres');
  return {
    file: 'sql/postgres/20250301_090000_add_email.up.sql',
    sql,
    statements,
    transactional,
    empty: statements.length === 0,
    record,
  };
}

/** Run `sql` on a fresh database (after `setup`) and return the StepFailure it must raise. */
async function failureOf(step: StepWork, setup?: string): Promise<StepFailure> {
  const database = await createPostgresDatabase();
  const driver = new PostgresDriver({
    url: database.url,
    display: database.url,
    table: 'schema_migrations',
    create: true,
  });
  try {
    await driver.ensureRecordTable();
    // The setup is the revision before: the step's own revision is still pending when it runs.
    if (setup) await runStep(driver, { ...work(setup), record: { ...record, revision: '20250228_090000' } });
    try {
      await runStep(driver, step);
    } catch (error) {
      assert.ok(error instanceof StepFailure, String(error));
      return error;
    }
    assert.fail('the step should have failed');
  } finally {
    await driver.close();
    await database.drop();
  }
}

/** 1-based line and column of the first `needle` on that line, counting code points as editors do. */
function whereIs(text: string, lineNo: number, needle: string): { line: number; column: number } {
  const line = text.split('\n')[lineNo - 1] as string;
  const index = line.indexOf(needle);
  assert.ok(index >= 0, `${needle} on line ${lineNo}`);
  return { line: lineNo, column: [...line.slice(0, index)].length + 1 };
}

describe('PostgreSQL error positions through the driver', () => {
  it('a syntax error on line 7 of a CRLF file with é and 🔥 before it', async () => {
    const raw = [
      '\uFEFF-- Création des tables 🔥🔥',
      'CREATE TABLE café (',
      '  id   integer PRIMARY KEY,',
      "  nom  text DEFAULT 'crème brûlée 🔥'",
      ');',
      "INSERT INTO café VALUES (1, 'é🔥é');",
      "INSERT INTO café VALUES (2, '🔥 ü 🔥') WHERE id = 1;",
      'SELECT 1;',
      '',
    ].join('\r\n');
    const sql = normaliseText(raw);
    assert.ok(!sql.includes('\r') && !sql.startsWith('\uFEFF'));
    const failure = await failureOf(work(sql));
    assert.equal(failure.details.code, '42601');
    assert.match(failure.message, /syntax error at or near "WHERE"/);
    assert.ok(failure.details.offset !== undefined);
    assert.deepEqual(lineColumn(sql, failure.details.offset), whereIs(sql, 7, 'WHERE'));
    assert.deepEqual(lineColumn(sql, failure.details.offset), { line: 7, column: 38 });
    assert.equal(failure.details.statementIndex, 2);
    const cause = failure.details.cause as { file?: string };
    assert.equal(typeof cause.file, 'string', 'the server error stays intact as the cause');
    assert.equal('file' in failure.details, false, "the server's C source location is not copied");
  });

  it('an undefined column (42703) points at the column name', async () => {
    const sql = [
      '-- Ajoute l’e-mail 📧 aux utilisateurs',
      'ALTER TABLE users ADD COLUMN email text;',
      "UPDATE users SET email = name || '@exemple.fr' WHERE name <> 'Zoë 🔥';",
      "CREATE INDEX users_email ON users (email) WHERE emial <> '';",
      '',
    ].join('\n');
    const failure = await failureOf(work(sql), `CREATE TABLE users (id integer PRIMARY KEY, name text);`);
    assert.equal(failure.details.code, '42703');
    assert.match(failure.message, /column "emial" does not exist/);
    assert.ok(failure.details.offset !== undefined);
    assert.deepEqual(lineColumn(sql, failure.details.offset), whereIs(sql, 4, 'emial'));
    assert.equal(failure.details.statementIndex, 2);
  });

  it('a runtime error without a position (division by zero in statement 3 of 4) names statement 3', async () => {
    const sql = [
      '-- 🔥 recompute',
      'CREATE TABLE ratios (n integer);',
      'INSERT INTO ratios VALUES (0), (2);',
      'UPDATE ratios SET n = 10 / n;',
      'INSERT INTO ratios VALUES (5);',
      '',
    ].join('\n');
    const failure = await failureOf(work(sql));
    assert.equal(failure.details.code, '22012');
    assert.equal(failure.details.statementIndex, 2);
    assert.equal(
      failure.details.offset,
      undefined,
      'no position from the server: the statement is named, not a column',
    );
    assert.equal((failure.details.cause as { position?: string }).position, undefined);
  });

  it('a runtime error that does not reproduce on replay is not pinned anywhere (never guess)', async () => {
    // The sequence is outside the transaction: the replay draws 2, not 1, and does not fail.
    const sql = `SELECT 1;\nSELECT 1 / (nextval('once') - 1);\n`;
    const failure = await failureOf(work(sql), `CREATE SEQUENCE once;`);
    assert.equal(failure.details.code, '22012');
    assert.equal(failure.details.statementIndex, undefined);
    assert.equal(failure.details.offset, undefined);
  });

  it('a no-transaction file: the position within the statement sent, mapped back into the file', async () => {
    const sql = [
      '-- migrate:no-transaction',
      '-- 🔥 index sans verrou',
      'CREATE TABLE t (id integer, nom text);',
      "CREATE INDEX CONCURRENTLY t_nom ON t (nom) WHERE nom <> 'é🔥' AND idd > 0;",
      '',
    ].join('\n');
    const failure = await failureOf(work(sql, false));
    assert.equal(failure.details.code, '42703');
    assert.equal(failure.details.statementIndex, 1);
    assert.equal(failure.details.statementsRun, 1);
    assert.ok(failure.details.offset !== undefined);
    assert.deepEqual(lineColumn(sql, failure.details.offset), whereIs(sql, 4, 'idd'));
  });
});
