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
        trigger = false;
        continue;
      }
    }
    if (start < 0) start = lexer.start;
    end = lexer.end;
    let word = '';
    if (kind === 'word') {
      // Only keywords matter: skip upper-casing words of any other length.
      const length = lexer.end - lexer.start;
      word = (pg ? length <= 6 : length >= 3) && length <= 9 ? text.slice(lexer.start, lexer.end).toUpperCase() : '';
      // After `.` or AS a keyword is a name (`t.end`, `NEW.begin`, `AS case`): it opens nothing.
      const name = prev === '.' || prev === 'AS';
      if (pg) {
        if (name) {
          // a column or a label, which opens and closes nothing
        } else if (word === 'ATOMIC' && prev === 'BEGIN') depth++;
        else if (depth > 0 && word === 'CASE') depth++;
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
