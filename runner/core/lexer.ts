/**
 * The one SQL token scanner: splitting a file into statements, finding the names `check` looks
 * at, and reading CHECK constraints back out of SQLite's schema all walk a text with it, so they
 * agree on where strings, quoted names, dollar quotes and comments begin and end.
 *
 * It knows each dialect's lexical rules and nothing of the grammar: PostgreSQL nests block
 * comments and has dollar quotes and E'…' strings; SQLite also quotes names with `…` and […].
 *
 * @module
 */

import type { Dialect } from './dialect.ts';

/**
 * `word`: a bare word (keyword or name); `number`: a word that starts with a digit; `string`:
 * '…' or E'…'; `quoted`: a quoted name; `dollar`: a dollar-quoted body; `comment`: `--` or
 * `/* *\/`; `punct`: any other single character.
 */
export type TokenKind = 'word' | 'number' | 'string' | 'quoted' | 'dollar' | 'comment' | 'punct';

export interface Token {
  kind: TokenKind;
  /** Offset of the token's first UTF-16 unit in the text. */
  start: number;
  /** Offset just past the token. */
  end: number;
}

/**
 * A cursor over the tokens of `text`, whitespace skipped. `next()` moves it and fills `kind`,
 * `start` and `end` in place, so the statement splitter walks a large file without allocating
 * a token object per word.
 */
export class Lexer {
  kind: TokenKind = 'punct';
  start = 0;
  end = 0;
  readonly pg: boolean;

  constructor(
    readonly text: string,
    dialect: Dialect,
  ) {
    this.pg = dialect === 'postgres';
  }

  /** Move to the next token; false at the end of the text. */
  next(): boolean {
    const text = this.text;
    const n = text.length;
    let i = this.end;
    let c = text.charCodeAt(i);
    while (c === 32 || (c >= 9 && c <= 13)) c = text.charCodeAt(++i);
    if (i >= n) {
      this.start = this.end = n;
      return false;
    }
    this.start = i;
    this.kind = 'punct';
    const next = text.charCodeAt(i + 1);
    if (c === 45 && next === 45) {
      const nl = text.indexOf('\n', i + 2);
      this.kind = 'comment';
      this.end = nl < 0 ? n : nl + 1;
    } else if (c === 47 && next === 42) {
      // PostgreSQL nests block comments (SQL standard); SQLite ends at the first `*/`.
      this.kind = 'comment';
      this.end = this.pg ? skipNestedComment(text, i + 2) : skipPast(text, '*/', i + 2);
    } else if (c === 39) {
      this.kind = 'string';
      this.end = skipQuoted(text, i + 1, 39);
    } else if (c === 34 || (!this.pg && c === 96)) {
      this.kind = 'quoted';
      this.end = skipQuoted(text, i + 1, c);
    } else if (!this.pg && c === 91) {
      // In PostgreSQL `[` is an array subscript, not a quote.
      this.kind = 'quoted';
      this.end = skipPast(text, ']', i + 1);
    } else if (isWordChar(c)) {
      this.#word(i);
    } else {
      const dollarEnd = this.pg && c === 36 ? dollarOpenEnd(text, i) : -1;
      if (dollarEnd > 0) {
        const close = text.indexOf(text.slice(i, dollarEnd), dollarEnd);
        this.kind = 'dollar';
        this.end = close < 0 ? n : close + (dollarEnd - i);
      } else {
        this.end = i + 1;
      }
    }
    return true;
  }

  #word(i: number): void {
    const text = this.text;
    const c = text.charCodeAt(i);
    let j = i + 1;
    // `$` continues a word (`a$b`, `x$$`), so it can only open a dollar quote after a non-word.
    while (isWordChar(text.charCodeAt(j)) || text.charCodeAt(j) === 36) j++;
    if (this.pg && j === i + 1 && (c === 69 || c === 101) && text.charCodeAt(j) === 39) {
      this.kind = 'string';
      this.end = skipEscapeString(text, j + 1);
    } else {
      this.kind = c >= 48 && c <= 57 ? 'number' : 'word';
      this.end = j;
    }
  }

  /** The current token's text. */
  get value(): string {
    return this.text.slice(this.start, this.end);
  }
}

/** Every token of `text`, comments included, in order. */
export function tokenize(text: string, dialect: Dialect): Token[] {
  const lexer = new Lexer(text, dialect);
  const out: Token[] = [];
  while (lexer.next()) out.push({ kind: lexer.kind, start: lexer.start, end: lexer.end });
  return out;
}

/** The name a `quoted` token stands for: quotes removed, a doubled quote read as one. */
export function unquote(text: string, token: Token): string {
  const open = text[token.start] as string;
  const close = open === '[' ? ']' : open;
  const closed = text[token.end - 1] === close && token.end - token.start >= 2;
  const body = text.slice(token.start + 1, closed ? token.end - 1 : token.end);
  return open === '[' ? body : body.split(close + close).join(close);
}

/** Letters, digits, `_` and every non-ASCII unit: what both dialects accept in a bare word. */
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
function skipQuoted(text: string, from: number, q: number): number {
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
