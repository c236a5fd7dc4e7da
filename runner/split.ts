/**
 * A migration file → its statements, without a parser.
 *
 * One left-to-right scan that knows just enough of each dialect's lexer (strings, quoted names,
 * comments, dollar quotes) and of its block bodies to find the semicolons the database's own
 * shell would end a statement at: `psql` (src/fe_utils/psqlscan.l) for PostgreSQL,
 * `sqlite3_complete()` for SQLite. No-transaction files are run statement by statement from this
 * split, and errors are pointed at a statement through its offset, so offsets index the text
 * exactly as it is sent.
 *
 * @module
 */
import type { Statement } from './driver.ts';

export type SplitDialect = 'postgres' | 'sqlite';

/**
 * Split `text` (BOM removed, CRLF → LF) into statements, in order. Each starts at its first
 * token (leading whitespace and comments are skipped) and runs through its terminating `;`, or
 * for a last statement without one, through its last token. Empty statements are dropped, so a
 * text of only comments gives `[]`.
 */
export function splitStatements(text: string, dialect: SplitDialect): Statement[] {
  const pg = dialect === 'postgres';
  const n = text.length;
  const out: Statement[] = [];

  let start = -1; // offset of the current statement's first token; -1 before it
  let end = 0; // just past its latest token, so trailing comments are left out
  let depth = 0; // open BEGIN ATOMIC blocks and the CASEs inside them; SQLite: 1 inside a trigger
  let parens = 0; // PostgreSQL only: psql ignores `;` inside parentheses (CREATE RULE … DO (a; b))
  let words = 0; // words seen in this statement, to recognise CREATE [TEMP] TRIGGER
  let first = '';
  let second = '';
  let trigger = false;
  let routine = false; // PostgreSQL: CREATE [OR REPLACE] FUNCTION/PROCEDURE, where BEGIN ATOMIC opens a body
  let prev = ''; // the previous token when it was a keyword-length word, upper-cased, or `;`; else ''

  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 32 || (c >= 9 && c <= 13)) {
      i++;
      continue;
    }
    if (c === 45 && text.charCodeAt(i + 1) === 45) {
      const nl = text.indexOf('\n', i + 2);
      i = nl < 0 ? n : nl + 1;
      continue;
    }
    if (c === 47 && text.charCodeAt(i + 1) === 42) {
      // PostgreSQL nests block comments (SQL standard); SQLite ends at the first `*/`.
      i = pg ? skipNestedComment(text, i + 2) : skipPast(text, '*/', i + 2);
      continue;
    }
    if (c === 59 && depth === 0 && parens === 0) {
      if (start >= 0) out.push({ sql: text.slice(start, i + 1), offset: start });
      start = -1;
      words = 0;
      first = second = prev = '';
      trigger = routine = false;
      i++;
      continue;
    }

    if (start < 0) start = i;
    let word = '';
    const dollarEnd = pg && c === 36 ? dollarOpenEnd(text, i) : -1;
    if (c === 39) {
      i = skipQuoted(text, i + 1, 39);
    } else if (c === 34) {
      i = skipQuoted(text, i + 1, 34);
    } else if (!pg && c === 96) {
      i = skipQuoted(text, i + 1, 96);
    } else if (!pg && c === 91) {
      // In PostgreSQL `[` is an array subscript, not a quote.
      i = skipPast(text, ']', i + 1);
    } else if (dollarEnd > 0) {
      const close = text.indexOf(text.slice(i, dollarEnd), dollarEnd);
      i = close < 0 ? n : close + (dollarEnd - i);
    } else if (isWordChar(c)) {
      let j = i + 1;
      // `$` continues a word (`a$b`, `x$$`), so it can only open a dollar quote after a non-word.
      while (j < n && (isWordChar(text.charCodeAt(j)) || text.charCodeAt(j) === 36)) j++;
      if (pg && j === i + 1 && (c === 69 || c === 101) && text.charCodeAt(j) === 39) {
        i = skipEscapeString(text, j + 1);
      } else {
        // Only keywords matter, and they are 3 to 9 letters: skip upper-casing anything else.
        word = j - i >= 3 && j - i <= 9 ? text.slice(i, j).toUpperCase() : '';
        if (pg) {
          // As psql: BEGIN ATOMIC opens a body only in a routine's definition, outside parentheses;
          // elsewhere `begin atomic` is a name and its alias (test/fixtures/lexer/begin-atomic-alias.postgres.sql).
          if (words === 0) first = word;
          else if ((words === 1 || words === 3) && first === 'CREATE') {
            routine ||= word === 'FUNCTION' || word === 'PROCEDURE';
          }
          words++;
          if (word === 'ATOMIC' && prev === 'BEGIN' && routine && parens === 0) depth++;
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
          // A trigger ends only at `; END ;` (sqlite3_complete's rule): its body is statements each
          // ending in `;`, then END. Counting BEGIN/CASE/END instead miscounts columns named `begin`
          // or `end` (test/fixtures/lexer/trigger-begin-column.sqlite.sql).
          if (trigger) depth = word === 'END' && prev === ';' ? 0 : 1;
        }
        i = j;
      }
    } else {
      if (pg && c === 40) parens++;
      else if (pg && c === 41 && parens > 0) parens--;
      i++;
    }
    end = i;
    prev = c === 59 ? ';' : word;
  }

  if (start >= 0) out.push({ sql: text.slice(start, end), offset: start });
  return out;
}

/** Letters, digits, `_` and every non-ASCII unit: what both lexers accept in a bare word. */
function isWordChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95 || c >= 128;
}

/**
 * If a PostgreSQL dollar quote opens at `i` (`$$` or `$tag$`, the tag an identifier without `$`),
 * the index just past it; otherwise -1 (`$1` is a parameter).
 */
function dollarOpenEnd(text: string, i: number): number {
  let j = i + 1;
  const c = text.charCodeAt(j);
  if (c === 36) return j + 1;
  if (!isWordChar(c) || (c >= 48 && c <= 57)) return -1;
  while (isWordChar(text.charCodeAt(j))) j++;
  return text.charCodeAt(j) === 36 ? j + 1 : -1;
}

/** Past the quote `q` that closes a string opened before `from`; a doubled quote is an escape. */
export function skipQuoted(text: string, from: number, q: number): number {
  const quote = String.fromCharCode(q);
  for (;;) {
    const k = text.indexOf(quote, from);
    if (k < 0) return text.length;
    if (text.charCodeAt(k + 1) !== q) return k + 1;
    from = k + 2;
  }
}

/** Past the end of a PostgreSQL E'…' string, where `\` escapes any character and `''` a quote. */
function skipEscapeString(text: string, from: number): number {
  const n = text.length;
  let k = from;
  while (k < n) {
    const c = text.charCodeAt(k);
    if (c === 92) k += 2;
    else if (c === 39 && text.charCodeAt(k + 1) === 39) k += 2;
    else if (c === 39) return k + 1;
    else k++;
  }
  return n;
}

function skipPast(text: string, close: string, from: number): number {
  const k = text.indexOf(close, from);
  return k < 0 ? text.length : k + close.length;
}

/** Past the `*\/` that closes a PostgreSQL block comment whose body starts at `from`. */
function skipNestedComment(text: string, from: number): number {
  const n = text.length;
  let nesting = 1;
  let k = from;
  while (k < n) {
    const c = text.charCodeAt(k);
    const next = text.charCodeAt(k + 1);
    if (c === 47 && next === 42) {
      nesting++;
      k += 2;
    } else if (c === 42 && next === 47) {
      k += 2;
      if (--nesting === 0) return k;
    } else {
      k++;
    }
  }
  return n;
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

/** The first three bare words of a statement, upper-cased, skipping comments; '' past the last. */
function leadingWords(sql: string, dialect: SplitDialect): [string, string, string] {
  const out: [string, string, string] = ['', '', ''];
  let i = 0;
  for (let k = 0; k < 3 && i < sql.length; ) {
    const c = sql.charCodeAt(i);
    if (c === 32 || (c >= 9 && c <= 13)) i++;
    else if (c === 45 && sql.charCodeAt(i + 1) === 45) i = skipPast(sql, '\n', i + 2);
    else if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      i = dialect === 'postgres' ? skipNestedComment(sql, i + 2) : skipPast(sql, '*/', i + 2);
    } else {
      let j = i;
      while (j < sql.length && isWordChar(sql.charCodeAt(j))) j++;
      if (j === i) break;
      out[k++] = sql.slice(i, j).toUpperCase();
      i = j;
    }
  }
  return out;
}
