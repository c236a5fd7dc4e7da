/**
 * The lexer (runner/split.ts) proved against the databases' own parsers, on every SQL file the
 * tests can reach and on generated files (issue #19).
 *
 * - PostgreSQL: libpg-query (PostgreSQL's parser compiled to wasm) gives each statement's
 *   location, length and kind. The lexer's statements must start and end where the parser's do,
 *   and the runner's transaction-control verdict must match the parser's TransactionStmt kinds.
 * - SQLite: better-sqlite3 refuses to prepare a string of more than one statement, and reports a
 *   string of only whitespace and comments as holding none. Each piece the lexer cuts must
 *   prepare and run as one statement after the pieces before it, and the text between pieces
 *   must hold no statement.
 *
 * Generated files come from test/support/sql-gen.ts with a fixed seed; LEXER_PROOF_SEED and
 * LEXER_PROOF_RUNS change the seed and the number of files. A failure prints the seed, the path
 * and the shrunk file; keep that file under test/fixtures/lexer/ once the lexer is fixed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import Database from 'better-sqlite3';
import { loadModule, parseSync } from 'libpg-query';
import { firstTransactionControl, holdsStatement, splitStatements } from '../runner/core/split.ts';
import { normaliseText } from '../runner/core/files.ts';
import { pgFile, sqliteFile, transactionControlIn } from './support/sql-gen.ts';

const SEED = Number(process.env.LEXER_PROOF_SEED ?? 19);
const RUNS = Number(process.env.LEXER_PROOF_RUNS ?? 1500);
/** fast-check's run options; LEXER_PROOF_PATH (the `path` of a failure report) replays just that case. */
const RUN = { seed: SEED, numRuns: RUNS, path: process.env.LEXER_PROOF_PATH, includeErrorInReport: true };
const ROOT = join(import.meta.dirname, '..');
/** Shrunk cases the properties found, each once a bug of the lexer. */
const KEPT = 'test/fixtures/lexer';

/** One statement: where it starts and ends (UTF-16 indexes) and whether it is transaction control. */
interface Cut {
  offset: number;
  /** Index of its terminating `;`; without one, the text's end if only whitespace and comments follow. */
  end: number;
  control: boolean;
}

/** Savepoints nest inside the runner's transaction; every other TransactionStmt begins or ends one. */
const NESTING = new Set(['TRANS_STMT_SAVEPOINT', 'TRANS_STMT_RELEASE', 'TRANS_STMT_ROLLBACK_TO']);

interface ParsedStatement {
  stmt: Record<string, { kind?: string }>;
  stmt_location?: number;
  stmt_len?: number;
}

/** PostgreSQL's own cut of `text`. */
function parserCuts(text: string): Cut[] {
  if (text.trim() === '') return [];
  const stmts = (parseSync(text) as { stmts: ParsedStatement[] }).stmts;
  const index = byteToIndex(text);
  return stmts.map((s) => {
    const from = index[s.stmt_location ?? 0] as number;
    // Without a length the statement runs to the end of the text, trailing trivia included.
    const end = s.stmt_len ? (index[(s.stmt_location ?? 0) + s.stmt_len] as number) : text.length;
    const [kind, node] = Object.entries(s.stmt)[0] ?? ['', {}];
    return {
      offset: skipTrivia(text, from),
      end,
      control: kind === 'TransactionStmt' && !NESTING.has(node.kind ?? ''),
    };
  });
}

/** The lexer's cut of `text`, in the same terms. */
function lexerCuts(text: string): Cut[] {
  return splitStatements(text, 'postgres').map((s) => {
    const end = s.offset + s.sql.length;
    return {
      offset: s.offset,
      end: s.sql.endsWith(';') ? end - 1 : skipTrivia(text, end) === text.length ? text.length : end,
      control: transactionControlIn(s.sql, 'postgres'),
    };
  });
}

/** The parser counts bytes of UTF-8; the lexer counts UTF-16 units. */
function byteToIndex(text: string): Int32Array {
  const index = new Int32Array(Buffer.byteLength(text) + 1);
  let byte = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const width = c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c < 0xdc00 ? 4 : c >= 0xdc00 && c < 0xe000 ? 0 : 3;
    for (let k = 0; k < width; k++) index[byte + k] = i;
    byte += width;
  }
  index[byte] = text.length;
  return index;
}

/** Past the whitespace and comments (PostgreSQL's: nested) that start at `i`. */
function skipTrivia(text: string, i: number): number {
  for (;;) {
    while (i < text.length && /[ \t\n\r\f\v]/.test(text.charAt(i))) i++;
    if (text.startsWith('--', i)) {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl + 1;
    } else if (text.startsWith('/*', i)) {
      let depth = 0;
      do {
        const two = text.slice(i, i + 2);
        depth += two === '/*' ? 1 : two === '*/' ? -1 : 0;
        i += two === '/*' || two === '*/' ? 2 : 1;
      } while (depth > 0 && i < text.length);
    } else {
      return i;
    }
  }
}

function describe(text: string, cuts: Cut[]): string {
  return cuts.map((c) => `  ${c.control ? 'TX ' : ''}${JSON.stringify(text.slice(c.offset, c.end + 1))}`).join('\n');
}

/**
 * A step asks for neither the split nor the verdicts of a file that runs whole: it takes the
 * shortcuts, which must answer as the split would.
 */
function checkShortcuts(text: string, dialect: 'postgres' | 'sqlite', where: string): void {
  const statements = splitStatements(text, dialect);
  assert.equal(holdsStatement(text, dialect), statements.length > 0, `${where}\nholdsStatement`);
  const control = statements.find((s) => transactionControlIn(s.sql, dialect));
  assert.deepEqual(firstTransactionControl(text, dialect), control, `${where}\nfirstTransactionControl`);
}

/** Asserts that the lexer cuts a PostgreSQL text as the parser does; returns the statement count. */
function checkPostgres(text: string, name = 'generated file'): number {
  checkShortcuts(text, 'postgres', `${name}: ${JSON.stringify(text)}`);
  const want = parserCuts(text);
  const got = lexerCuts(text);
  assert.deepEqual(
    got,
    want,
    `${name}: the lexer's cut differs from PostgreSQL's parser\n${JSON.stringify(text)}\nlexer:\n${describe(text, got)}\nparser:\n${describe(text, want)}`,
  );
  return got.length;
}

/** What better-sqlite3 throws for a string that holds no statement. */
const NO_STATEMENT = /contains no statements/;
/** What SQLite says for transaction control at the wrong moment: a verdict of "control" all the same. */
const MISPLACED_CONTROL = /within a transaction|no transaction is active/;

/**
 * Runs a SQLite text piece by piece on `db`, asserting that each piece is one statement, that
 * the gaps hold none and that the lexer's verdict matches what the piece did to the transaction.
 * A piece failing for any other reason throws when `strict`; otherwise the text's check stops
 * there (fixtures that fail on purpose) and false is returned; else the number of pieces.
 */
function checkSqlite(db: Database.Database, raw: string, strict: boolean, name = 'generated file'): number | false {
  const text = normaliseText(raw);
  const where = `${name}: ${JSON.stringify(text)}`;
  checkShortcuts(text, 'sqlite', where);
  let last = 0;
  const pieces = splitStatements(text, 'sqlite');
  for (const s of pieces) {
    assertNoStatement(db, text.slice(last, s.offset), where);
    last = s.offset + s.sql.length;
    const before = db.inTransaction;
    let toggled: boolean;
    try {
      const stmt = db.prepare(s.sql);
      if (stmt.reader) stmt.all();
      else stmt.run();
      toggled = db.inTransaction !== before;
    } catch (error) {
      const message = (error as Error).message;
      if (MISPLACED_CONTROL.test(message)) toggled = true;
      else if (strict || error instanceof RangeError || /incomplete input|syntax error/.test(message)) {
        assert.fail(`${where}\npiece ${JSON.stringify(s.sql)} is not one statement: ${message}`);
      } else return false;
    }
    assert.equal(transactionControlIn(s.sql, 'sqlite'), toggled, `${where}\nverdict on ${JSON.stringify(s.sql)}`);
  }
  assertNoStatement(db, text.slice(last), where);
  return pieces.length;
}

function assertNoStatement(db: Database.Database, gap: string, where: string): void {
  if (gap.trim() === '') return;
  assert.throws(() => db.prepare(gap), NO_STATEMENT, `${where}\nthe gap ${JSON.stringify(gap)} holds a statement`);
}

/** Every `.sql` file under `dir` whose path has a `<dialect>` folder, or ends in `.<dialect>.sql`. */
function sqlFiles(dir: string, dialect: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.sql') && (f.split(/[\\/]/).includes(dialect) || f.endsWith(`.${dialect}.sql`)))
    .map((f) => join(dir, f))
    .sort();
}

const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8');

test('lexer proof: PostgreSQL files in the project cut as PostgreSQL parses them', async (t) => {
  await loadModule();
  const files = [...sqlFiles('sql', 'postgres'), ...sqlFiles('test/fixtures', 'postgres')];
  let statements = 0;
  for (const file of files) statements += checkPostgres(normaliseText(read(file)), file);
  t.diagnostic(`${files.length} PostgreSQL files, ${statements} statements`);
  assert.ok(files.length > 50);
});

test('lexer proof: SQLite files in the project run piece by piece', (t) => {
  // A folder's migrations run in order on one database, ups then downs, as the runner would.
  const folders = new Map<string, string[]>();
  for (const file of [...sqlFiles('sql', 'sqlite'), ...sqlFiles('test/fixtures', 'sqlite')]) {
    if (file.startsWith(KEPT)) continue;
    const folder = file.replace(/[^\\/]*$/, '');
    folders.set(folder, [...(folders.get(folder) ?? []), file]);
  }
  let checked = 0;
  for (const files of folders.values()) {
    const ordered = [
      ...files.filter((f) => !f.endsWith('.down.sql')),
      ...files.filter((f) => f.endsWith('.down.sql')).reverse(),
    ];
    const db = new Database(':memory:');
    try {
      for (const file of ordered) {
        if (checkSqlite(db, read(file), false, file) === false) break;
        checked++;
      }
    } finally {
      db.close();
    }
  }
  t.diagnostic(`${checked} SQLite files checked in full`);
  assert.ok(checked > 40);
});

for (const file of sqlFiles(KEPT, 'postgres')) {
  test(`lexer proof: kept case ${file}`, async () => {
    await loadModule();
    checkPostgres(normaliseText(read(file)), file);
  });
}

for (const file of sqlFiles(KEPT, 'sqlite')) {
  test(`lexer proof: kept case ${file}`, () => {
    const db = new Database(':memory:');
    try {
      checkSqlite(db, read(file), true, file);
    } finally {
      db.close();
    }
  });
}

test('lexer proof: generated PostgreSQL files cut as PostgreSQL parses them', async (t) => {
  await loadModule();
  let files = 0;
  let statements = 0;
  fc.assert(
    fc.property(pgFile, (text) => {
      files++;
      statements += checkPostgres(text);
      // The runner lexes text with CRLF turned into LF; the cut must not depend on it.
      if (text.includes('\r')) checkPostgres(normaliseText(text));
    }),
    RUN,
  );
  t.diagnostic(`${files} generated PostgreSQL files (seed ${SEED}), ${statements} statements`);
});

test('lexer proof: generated SQLite files run piece by piece', (t) => {
  let files = 0;
  let statements = 0;
  fc.assert(
    fc.property(sqliteFile, (text) => {
      files++;
      const db = new Database(':memory:');
      try {
        statements += checkSqlite(db, text, true) || 0;
      } finally {
        db.close();
      }
    }),
    RUN,
  );
  t.diagnostic(`${files} generated SQLite files (seed ${SEED}), ${statements} statements`);
});
