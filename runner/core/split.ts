/**
 * A migration file → its statements, without a parser.
 *
 * One left-to-right walk over the lexer's tokens that knows just enough of each dialect's block
 * bodies to find the semicolons the database's own shell would end a statement at: `psql`
 * (src/fe_utils/psqlscan.l) for PostgreSQL, `sqlite3_complete()` for SQLite. No-transaction
 * files are run statement by statement from this split, and errors are pointed at a statement
 * through its offset, so offsets index the text exactly as it is sent.
 *
 * @module
 */
import type { Dialect } from './dialect.ts';
import { Lexer } from './lexer.ts';

/** A statement of a file and where it starts, as produced by the splitter. */
export interface Statement {
  sql: string;
  /** Offset (UTF-16 code units) of the statement's first character in the file's text. */
  offset: number;
}

/**
 * SQLite trigger bodies, as `sqlite3_complete()` reads them: the body opens at BEGIN, and only a
 * `;` then END then `;` closes it. No count of BEGIN/CASE/END words, so a column named `begin`,
 * `end` or `case` cannot open or close the body.
 */
const OUTSIDE = 0;
const BODY = 1;
const AFTER_SEMI = 2;
const AFTER_END = 3;

/**
 * Split `text` (BOM removed, CRLF → LF) into statements, in order. Each starts at its first
 * token (leading whitespace and comments are skipped) and runs through its terminating `;`, or
 * for a last statement without one, through its last token. Empty statements are dropped, so a
 * text of only comments gives `[]`.
 */
export function splitStatements(text: string, dialect: Dialect): Statement[] {
  const lexer = new Lexer(text, dialect);
  const scope = new Scope(dialect === 'postgres');
  const out: Statement[] = [];
  let start = -1; // offset of the current statement's first token; -1 before it
  let end = 0; // just past its latest token, so trailing comments are left out

  while (lexer.next()) {
    const kind = lexer.kind;
    if (kind === 'comment') continue;
    const c = text.charCodeAt(lexer.start);
    if (kind === 'punct' && c === 59) {
      const semicolon = scope.semicolon();
      if (semicolon === 'ends') {
        if (start >= 0) out.push({ sql: text.slice(start, lexer.end), offset: start });
        start = -1;
        continue;
      }
      if (semicolon === 'body') {
        end = lexer.end;
        continue;
      }
    }
    if (start < 0) start = lexer.start;
    end = lexer.end;
    if (kind === 'word') {
      // Only keywords matter: skip upper-casing words of any other length.
      const length = lexer.end - lexer.start;
      const keyword = (scope.pg || length >= 3) && length <= 9;
      scope.word(keyword ? text.slice(lexer.start, lexer.end).toUpperCase() : '');
    } else {
      scope.other(kind === 'punct' ? c : 0);
    }
  }

  if (start >= 0) out.push({ sql: text.slice(start, end), offset: start });
  return out;
}

/** What the splitter knows of the statement being read: enough to tell a `;` inside a body from one that ends it. */
class Scope {
  depth = 0; // PostgreSQL: open BEGIN ATOMIC blocks and the CASEs inside them
  parens = 0; // PostgreSQL only: psql ignores `;` inside parentheses (CREATE RULE … DO (a; b))
  block = OUTSIDE; // SQLite: where a trigger's body stands
  words = 0; // words seen in this statement, to recognise CREATE [TEMP] TRIGGER / FUNCTION
  first = '';
  second = '';
  trigger = false;
  routine = false; // PostgreSQL: CREATE [OR REPLACE] FUNCTION/PROCEDURE, where BEGIN ATOMIC opens a body
  prev = ''; // the previous token: a short word upper-cased, `.`, or ''

  constructor(readonly pg: boolean) {}

  /** A `;`: it ends the statement, sits inside a SQLite trigger body, or is a token of a PostgreSQL body. */
  semicolon(): 'ends' | 'body' | 'token' {
    if (this.block === BODY || this.block === AFTER_SEMI) {
      this.block = AFTER_SEMI;
      this.prev = '';
      return 'body';
    }
    if (this.depth !== 0 || this.parens !== 0) return this.other(59);
    this.words = this.depth = 0;
    this.block = OUTSIDE;
    this.first = this.second = this.prev = '';
    this.trigger = this.routine = false;
    return 'ends';
  }

  word(word: string): void {
    // After `.` or AS a keyword is a name (`t.end`, `NEW.begin`, `AS case`): it opens nothing.
    const name = this.prev === '.' || this.prev === 'AS';
    if (this.pg) this.#postgresWord(word, name);
    else this.#sqliteWord(word, name);
    this.words++;
    this.prev = word;
  }

  /** Any token but a word; `c` is the character of a punctuation mark, else 0. */
  other(c: number): 'token' {
    if (this.block !== OUTSIDE) this.block = BODY;
    if (this.pg && c === 40) this.parens++;
    else if (this.pg && c === 41 && this.parens > 0) this.parens--;
    this.prev = c === 46 ? '.' : '';
    return 'token';
  }

  #postgresWord(word: string, name: boolean): void {
    if (this.words === 0) this.first = word;
    else if ((this.words === 1 || this.words === 3) && this.first === 'CREATE') {
      this.routine ||= word === 'FUNCTION' || word === 'PROCEDURE';
    }
    if (name) return; // a column or a label, which opens and closes nothing
    if (word === 'ATOMIC' && this.prev === 'BEGIN' && this.routine && this.parens === 0) {
      // As psql: BEGIN ATOMIC opens a body only in a routine's definition, outside parentheses;
      // elsewhere `begin atomic` is a table and its alias (test/fixtures/lexer/begin-atomic-alias.postgres.sql).
      this.depth++;
    } else if (this.depth > 0 && word === 'CASE') this.depth++;
    else if (this.depth > 0 && word === 'END') this.depth--;
  }

  #sqliteWord(word: string, name: boolean): void {
    // SQLite's BEGIN is a block only in a trigger; elsewhere `BEGIN;` is a transaction.
    if (this.words === 0) this.first = word;
    else if (this.words === 1) {
      this.second = word;
      this.trigger = this.first === 'CREATE' && word === 'TRIGGER';
    } else if (this.words === 2 && this.first === 'CREATE' && (this.second === 'TEMP' || this.second === 'TEMPORARY')) {
      this.trigger = word === 'TRIGGER';
    }
    if (this.block === AFTER_SEMI && word === 'END') this.block = AFTER_END;
    else if (this.block !== OUTSIDE) this.block = BODY;
    else if (this.trigger && word === 'BEGIN' && !name) this.block = BODY;
  }
}

/**
 * Whether a statement (as {@link splitStatements} cuts it) begins or ends a transaction: a file
 * that already runs in the runner's transaction must not hold one. Savepoints are not counted,
 * since they nest inside that transaction, and neither is `BEGIN ATOMIC`, a function body.
 * Comments may sit between the words (`ROLLBACK /* undo *\/ TO s`).
 */
export function isTransactionControl(sql: string, dialect: Dialect): boolean {
  const [a, b, c] = leadingWords(sql, dialect);
  switch (a) {
    case 'BEGIN':
      return b !== 'ATOMIC';
    case 'COMMIT':
    case 'END':
    case 'ABORT':
      return true;
    case 'ROLLBACK':
      // ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] s undoes to a savepoint, inside the transaction.
      return b !== 'TO' && !((b === 'WORK' || b === 'TRANSACTION') && c === 'TO');
    case 'START':
    case 'PREPARE':
      // PREPARE TRANSACTION ends the transaction as well: it hands it over to two-phase commit.
      return b === 'TRANSACTION';
    default:
      return false;
  }
}

/**
 * Whether `text` holds a statement as {@link splitStatements} cuts them: any token but comments
 * and `;` starts one. Stops at the first, so a step learns its file is not empty without a split.
 */
export function holdsStatement(text: string, dialect: Dialect): boolean {
  const lexer = new Lexer(text, dialect);
  while (lexer.next()) {
    if (lexer.kind === 'comment' || (lexer.kind === 'punct' && text.charCodeAt(lexer.start) === 59)) continue;
    return true;
  }
  return false;
}

/**
 * A transaction-control statement starts with one of these words. A text in which none stands
 * alone holds none, and needs no split to know it. Any non-ASCII character sends the text to the
 * split as well: the verdict upper-cases words as JavaScript does (`ſtart` reads as START), which
 * this pattern does not.
 */
const CONTROL_WORD = /[\u0080-\uffff]|\b(?:begin|commit|end|abort|rollback|start|prepare)\b/i;

/** The first statement of `text` that begins or ends a transaction ({@link isTransactionControl}), if any. */
export function firstTransactionControl(text: string, dialect: Dialect): Statement | undefined {
  if (!CONTROL_WORD.test(text)) return undefined;
  return splitStatements(text, dialect).find((s) => isTransactionControl(s.sql, dialect));
}

/** The first three tokens of a statement, upper-cased when they are words, skipping comments. */
function leadingWords(sql: string, dialect: Dialect): [string, string, string] {
  const out: [string, string, string] = ['', '', ''];
  const lexer = new Lexer(sql, dialect);
  for (let k = 0; k < 3 && lexer.next(); ) {
    if (lexer.kind === 'comment') continue;
    if (lexer.kind !== 'word') break;
    out[k++] = sql.slice(lexer.start, lexer.end).toUpperCase();
  }
  return out;
}

/**
 * Statements PostgreSQL refuses inside a transaction block, named as a person reads them. The
 * CONCURRENTLY ones take no lock that blocks reads or writes, so the runner gives the index
 * builds no lock timeout (locks.ts `limitsFor`); `check` measures a CREATE INDEX CONCURRENTLY
 * from a second session.
 */
export type StatementKind =
  | 'CREATE INDEX CONCURRENTLY'
  | 'DROP INDEX CONCURRENTLY'
  | 'REINDEX CONCURRENTLY'
  | 'DETACH PARTITION CONCURRENTLY'
  | 'VACUUM'
  | 'CREATE/DROP DATABASE'
  | 'CREATE/DROP TABLESPACE'
  | 'ALTER SYSTEM';

/**
 * What kind of statement `sql` (one statement, as {@link splitStatements} cuts it) is, read
 * through the lexer: comments may sit between the words, and a word inside a string or a
 * quoted name is not one. Undefined for every other statement. SQLite has only VACUUM of these.
 */
export function statementKind(sql: string, dialect: Dialect): StatementKind | undefined {
  const lexer = new Lexer(sql, dialect);
  const word = (): string | undefined => {
    while (lexer.next()) {
      if (lexer.kind === 'comment') continue;
      return lexer.kind === 'word' ? lexer.value.toUpperCase() : undefined;
    }
    return undefined;
  };
  const first = word();
  if (first === 'VACUUM') return 'VACUUM';
  if (dialect !== 'postgres' || first === undefined) return undefined;
  let second = word();
  if (first === 'CREATE' || first === 'DROP') {
    if (second === 'DATABASE') return 'CREATE/DROP DATABASE';
    if (second === 'TABLESPACE') return 'CREATE/DROP TABLESPACE';
    if (first === 'CREATE' && second === 'UNIQUE') second = word();
    if (second === 'INDEX' && word() === 'CONCURRENTLY') return `${first} INDEX CONCURRENTLY` as StatementKind;
    return undefined;
  }
  if (first === 'ALTER' && second === 'SYSTEM') return 'ALTER SYSTEM';
  if (first !== 'REINDEX' && !(first === 'ALTER' && second === 'TABLE')) return undefined;
  // The rest of the statement's words: REINDEX [(options)] … CONCURRENTLY …, ALTER TABLE … DETACH PARTITION … CONCURRENTLY.
  if (first === 'REINDEX' && second === 'CONCURRENTLY') return 'REINDEX CONCURRENTLY';
  let prev = second;
  let detach = false;
  while (lexer.next()) {
    if (lexer.kind === 'comment') continue;
    const seen = lexer.kind === 'word' ? lexer.value.toUpperCase() : undefined;
    if (seen === 'CONCURRENTLY' && first === 'REINDEX') return 'REINDEX CONCURRENTLY';
    if (seen === 'CONCURRENTLY' && detach) return 'DETACH PARTITION CONCURRENTLY';
    detach ||= prev === 'DETACH' && seen === 'PARTITION';
    prev = seen;
  }
  return undefined;
}

/**
 * The index a `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name ON …` builds, as written
 * (`ix`, `"Ix"`, `app.ix`); undefined for any other statement and for an unnamed index.
 */
export function concurrentIndexName(sql: string): string | undefined {
  if (statementKind(sql, 'postgres') !== 'CREATE INDEX CONCURRENTLY') return undefined;
  const lexer = new Lexer(sql, 'postgres');
  const tokens: Array<{ kind: string; value: string }> = [];
  while (tokens.length < 12 && lexer.next()) {
    if (lexer.kind !== 'comment') tokens.push({ kind: lexer.kind, value: lexer.value });
  }
  const upper = (k: number) => (tokens[k]?.kind === 'word' ? tokens[k]?.value.toUpperCase() : undefined);
  let k = upper(1) === 'UNIQUE' ? 4 : 3; // past CONCURRENTLY
  if (upper(k) === 'IF' && upper(k + 1) === 'NOT' && upper(k + 2) === 'EXISTS') k += 3;
  const isName = (t: { kind: string; value: string } | undefined) =>
    t !== undefined && (t.kind === 'quoted' || (t.kind === 'word' && t.value.toUpperCase() !== 'ON'));
  if (!isName(tokens[k])) return undefined;
  let name = tokens[k]?.value as string;
  if (tokens[k + 1]?.value === '.' && isName(tokens[k + 2])) {
    name = `${name}.${tokens[k + 2]?.value}`;
    k += 2;
  }
  return upper(k + 1) === 'ON' ? name : undefined;
}
