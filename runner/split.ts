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
import type { Statement } from './driver.ts';
import { Lexer, type LexDialect } from './lexer.ts';

export type SplitDialect = LexDialect;

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
export function splitStatements(text: string, dialect: SplitDialect): Statement[] {
  const pg = dialect === 'postgres';
  const lexer = new Lexer(text, dialect);
  const out: Statement[] = [];

  let start = -1; // offset of the current statement's first token; -1 before it
  let end = 0; // just past its latest token, so trailing comments are left out
  let depth = 0; // PostgreSQL: open BEGIN ATOMIC blocks and the CASEs inside them
  let parens = 0; // PostgreSQL only: psql ignores `;` inside parentheses (CREATE RULE … DO (a; b))
  let block = OUTSIDE; // SQLite: where a trigger's body stands
  let words = 0; // words seen in this statement, to recognise CREATE [TEMP] TRIGGER
  let first = '';
  let second = '';
  let trigger = false;
  let routine = false; // PostgreSQL: CREATE [OR REPLACE] FUNCTION/PROCEDURE, where BEGIN ATOMIC opens a body
  let prev = ''; // the previous token: a short word upper-cased, `.`, or ''

  while (lexer.next()) {
    const kind = lexer.kind;
    if (kind === 'comment') continue;
    const c = text.charCodeAt(lexer.start);
    if (kind === 'punct' && c === 59) {
      if (block === BODY || block === AFTER_SEMI) {
        block = AFTER_SEMI;
        end = lexer.end;
        prev = '';
        continue;
      }
      if (depth === 0 && parens === 0) {
        if (start >= 0) out.push({ sql: text.slice(start, lexer.end), offset: start });
        start = -1;
        words = depth = 0;
        block = OUTSIDE;
        first = second = prev = '';
        trigger = routine = false;
        continue;
      }
    }
    if (start < 0) start = lexer.start;
    end = lexer.end;
    let word = '';
    if (kind === 'word') {
      // Only keywords matter: skip upper-casing words of any other length.
      const length = lexer.end - lexer.start;
      word = (pg || length >= 3) && length <= 9 ? text.slice(lexer.start, lexer.end).toUpperCase() : '';
      // After `.` or AS a keyword is a name (`t.end`, `NEW.begin`, `AS case`): it opens nothing.
      const name = prev === '.' || prev === 'AS';
      if (pg) {
        if (words === 0) first = word;
        else if ((words === 1 || words === 3) && first === 'CREATE') {
          routine ||= word === 'FUNCTION' || word === 'PROCEDURE';
        }
        words++;
        if (name) {
          // a column or a label, which opens and closes nothing
        } else if (word === 'ATOMIC' && prev === 'BEGIN' && routine && parens === 0) {
          // As psql: BEGIN ATOMIC opens a body only in a routine's definition, outside parentheses;
          // elsewhere `begin atomic` is a table and its alias (test/fixtures/lexer/begin-atomic-alias.postgres.sql).
          depth++;
        } else if (depth > 0 && word === 'CASE') depth++;
        else if (depth > 0 && word === 'END') depth--;
      } else {
        // SQLite's BEGIN is a block only in a trigger; elsewhere `BEGIN;` is a transaction.
        if (words === 0) first = word;
        else if (words === 1) {
          second = word;
          trigger = first === 'CREATE' && word === 'TRIGGER';
        } else if (words === 2 && first === 'CREATE' && (second === 'TEMP' || second === 'TEMPORARY')) {
          trigger = word === 'TRIGGER';
        }
        words++;
        if (block === AFTER_SEMI && word === 'END') block = AFTER_END;
        else if (block !== OUTSIDE) block = BODY;
        else if (trigger && word === 'BEGIN' && !name) block = BODY;
      }
    } else {
      if (block !== OUTSIDE) block = BODY;
      if (pg && kind === 'punct') {
        if (c === 40) parens++;
        else if (c === 41 && parens > 0) parens--;
      }
      if (kind === 'punct' && c === 46) word = '.';
    }
    prev = word;
  }

  if (start >= 0) out.push({ sql: text.slice(start, end), offset: start });
  return out;
}

/**
 * Whether a statement (as {@link splitStatements} cuts it) begins or ends a transaction: a file
 * that already runs in the runner's transaction must not hold one. Savepoints are not counted,
 * since they nest inside that transaction, and neither is `BEGIN ATOMIC`, a function body.
 * Comments may sit between the words (`ROLLBACK /* undo *\/ TO s`).
 */
export function isTransactionControl(sql: string, dialect: SplitDialect): boolean {
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

/** The first three tokens of a statement, upper-cased when they are words, skipping comments. */
function leadingWords(sql: string, dialect: SplitDialect): [string, string, string] {
  const out: [string, string, string] = ['', '', ''];
  const lexer = new Lexer(sql, dialect);
  for (let k = 0; k < 3 && lexer.next(); ) {
    if (lexer.kind === 'comment') continue;
    if (lexer.kind !== 'word') break;
    out[k++] = sql.slice(lexer.start, lexer.end).toUpperCase();
  }
  return out;
}
