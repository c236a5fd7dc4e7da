/**
 * `CONTRACT_IN_PRE` (issue #30): a statement in a `pre` up file that takes something away from
 * the release still running during a rolling deploy — a dropped column or table, a rename, SET
 * NOT NULL, a type change, a new CHECK/FOREIGN KEY/UNIQUE that is not NOT VALID (a unique index
 * too), a dropped default. Such a change belongs in a `-- migrate:phase post` revision, once no replica runs the
 * old release; `-- migrate:allow-contract <table>: <reason>` in the file accepts one.
 *
 * Read from the project's one lexer: comments, strings and dollar bodies are never keywords.
 *
 * @module
 */
import type { Statement } from '../core/split.ts';
import { phaseOf, type Dialect, type Migration, type MigrationFile } from '../core/files.ts';
import { tokenize, unquote } from '../core/lexer.ts';
import { lineColumn } from '../core/position.ts';

/**
 * What this module reports, shaped as lint.ts's Finding (which imports this module: the type is
 * repeated here rather than imported back, so the two make no cycle).
 */
export interface ContractFinding {
  severity: 'error' | 'warning';
  code: 'CONTRACT_IN_PRE' | 'BAD_WAIVER' | 'UNUSED_WAIVER';
  file: string;
  line?: number;
  column?: number;
  message: string;
  on?: { table: string };
}

/** A contracting change found in a statement: what it does, to which table, where. */
export interface Contraction {
  table: string;
  what: string;
  /** Offset in the file's text of the clause that contracts. */
  offset: number;
}

/** A statement as words: keywords upper-cased, names folded (quoted ones kept), strings and comments left out. */
interface Word {
  text: string;
  /** A name as the database keeps it (unquoted lower-cased, quoted as written). */
  name: string;
  offset: number;
}

function wordsOf(st: Statement, dialect: Dialect): Word[] {
  const out: Word[] = [];
  for (const t of tokenize(st.sql, dialect)) {
    const offset = st.offset + t.start;
    if (t.kind === 'word') {
      const raw = st.sql.slice(t.start, t.end);
      out.push({ text: raw.toUpperCase(), name: raw.toLowerCase(), offset });
    } else if (t.kind === 'quoted') {
      const name = unquote(st.sql, t);
      out.push({ text: `"${name}"`, name, offset });
    } else if (t.kind === 'punct') {
      const c = st.sql.slice(t.start, t.end);
      if (c !== ';') out.push({ text: c, name: c, offset });
    } else if (t.kind !== 'comment') out.push({ text: '?', name: '?', offset });
  }
  return out;
}

/** `schema.table` or `table` at `i`: its name and the index after it. */
function nameAt(words: Word[], i: number): { name: string; next: number } | undefined {
  const first = words[i];
  if (!first || !/^[\w"]/.test(first.text)) return undefined;
  if (words[i + 1]?.text === '.' && words[i + 2]) return { name: `${first.name}.${words[i + 2]?.name}`, next: i + 3 };
  return { name: first.name, next: i + 1 };
}

const is = (words: Word[], i: number, ...texts: string[]) => texts.every((t, k) => words[i + k]?.text === t);

/** The actions of `ALTER TABLE … a, b, c`, split at commas outside parentheses. */
function actions(words: Word[], from: number): Word[][] {
  const out: Word[][] = [[]];
  let depth = 0;
  for (const w of words.slice(from)) {
    if (w.text === '(') depth++;
    if (w.text === ')') depth--;
    if (w.text === ',' && depth === 0) out.push([]);
    else out[out.length - 1]?.push(w);
  }
  return out.filter((a) => a.length > 0);
}

/** What one ALTER TABLE action takes away, if anything. */
function contractingAction(a: Word[]): { what: string; at: Word } | undefined {
  const head = a[0] as Word;
  if (is(a, 0, 'DROP') && !is(a, 1, 'CONSTRAINT')) {
    const at = is(a, 1, 'COLUMN') ? 2 : 1;
    const named = is(a, at, 'IF', 'EXISTS') ? at + 2 : at;
    return { what: `drops column ${a[named]?.name ?? '?'}`, at: head };
  }
  if (is(a, 0, 'RENAME') && !is(a, 1, 'CONSTRAINT')) {
    if (is(a, 1, 'TO')) return { what: `renames the table to ${a[2]?.name ?? '?'}`, at: head };
    const at = is(a, 1, 'COLUMN') ? 2 : 1;
    return { what: `renames column ${a[at]?.name ?? '?'} to ${a[at + 2]?.name ?? '?'}`, at: head };
  }
  if (is(a, 0, 'ALTER')) {
    const at = is(a, 1, 'COLUMN') ? 2 : 1;
    const column = a[at]?.name ?? '?';
    const rest = at + 1;
    if (is(a, rest, 'SET', 'NOT', 'NULL')) return { what: `sets ${column} NOT NULL`, at: head };
    if (is(a, rest, 'TYPE') || is(a, rest, 'SET', 'DATA', 'TYPE'))
      return { what: `changes the type of ${column}`, at: head };
    if (is(a, rest, 'DROP', 'DEFAULT')) return { what: `drops the default of ${column}`, at: head };
    return undefined;
  }
  if (is(a, 0, 'ADD')) {
    let at = 1;
    if (is(a, at, 'CONSTRAINT')) at += 2;
    const kind = is(a, at, 'CHECK')
      ? 'CHECK'
      : is(a, at, 'FOREIGN', 'KEY')
        ? 'FOREIGN KEY'
        : is(a, at, 'UNIQUE')
          ? 'UNIQUE'
          : undefined;
    const notValid = a.some((w, k) => w.text === 'NOT' && a[k + 1]?.text === 'VALID');
    if (kind && !notValid) return { what: `adds a ${kind} constraint that is not NOT VALID`, at: head };
  }
  return undefined;
}

/**
 * The contracting changes of a file's statements. A table the same file creates is not the
 * running release's, so dropping or renaming it is no contraction (SQLite's rebuild: create
 * `new_t`, copy, drop `t`, rename `new_t` to `t`, reads as a rebuild, not as a drop).
 */
export function contractions(statements: readonly Statement[], dialect: Dialect): Contraction[] {
  const parsed = statements.map((st) => wordsOf(st, dialect));
  const created = new Set<string>();
  const renamedInto = new Set<string>();
  for (const words of parsed) {
    if (is(words, 0, 'CREATE')) {
      const t = words.findIndex((w) => w.text === 'TABLE');
      if (t > 0 && t <= 3) {
        const at = is(words, t + 1, 'IF', 'NOT', 'EXISTS') ? t + 4 : t + 1;
        const n = nameAt(words, at);
        if (n) created.add(n.name);
      }
    }
    if (is(words, 0, 'ALTER', 'TABLE')) {
      const n = nameAt(words, is(words, 2, 'IF', 'EXISTS') ? 4 : 2);
      const to = n && is(words, n.next, 'RENAME', 'TO') ? words[n.next + 2]?.name : undefined;
      if (n && to && created.has(n.name)) renamedInto.add(to);
    }
  }
  const out: Contraction[] = [];
  for (const words of parsed) {
    if (is(words, 0, 'DROP', 'TABLE')) {
      let i = is(words, 2, 'IF', 'EXISTS') ? 4 : 2;
      for (let n = nameAt(words, i); n; n = is(words, i, ',') ? nameAt(words, ++i) : undefined) {
        if (!created.has(n.name) && !renamedInto.has(n.name))
          out.push({ table: n.name, what: `drops table ${n.name}`, offset: (words[0] as Word).offset });
        i = n.next;
      }
      continue;
    }
    if (is(words, 0, 'CREATE', 'UNIQUE', 'INDEX')) {
      // A unique index refuses the old release's duplicates as a UNIQUE constraint does.
      const on = words.findIndex((w) => w.text === 'ON');
      const n = on > 0 ? nameAt(words, is(words, on + 1, 'ONLY') ? on + 2 : on + 1) : undefined;
      if (n && !created.has(n.name))
        out.push({ table: n.name, what: `adds a unique index on ${n.name}`, offset: (words[0] as Word).offset });
      continue;
    }
    if (!is(words, 0, 'ALTER', 'TABLE')) continue;
    let i = 2;
    if (is(words, i, 'IF', 'EXISTS')) i += 2;
    if (is(words, i, 'ONLY')) i++;
    const n = nameAt(words, i);
    if (!n || created.has(n.name)) continue;
    for (const a of actions(words, is(words, n.next, '*') ? n.next + 1 : n.next)) {
      const found = contractingAction(a);
      if (found) out.push({ table: n.name, what: found.what, offset: found.at.offset });
    }
  }
  return out;
}

/** `-- migrate:allow-contract <table>: <reason>`, parsed; undefined when the table or the reason is missing. */
function parseAllowContract(text: string): { table: string; reason: string } | undefined {
  const m = /^([^\s:]+):\s*(\S.*)$/s.exec(text);
  return m ? { table: (m[1] as string).toLowerCase(), reason: m[2] as string } : undefined;
}

/**
 * CONTRACT_IN_PRE for each contracting statement of a pre up file (warnings), unless a waiver
 * of the file names its table; malformed and unused waivers are reported as for the others.
 */
export function contractFindings(
  dialect: Dialect,
  m: Migration,
  statements: readonly Statement[],
  add: (f: ContractFinding) => void,
): void {
  const file: MigrationFile = m.up;
  const waiverLines = file.text
    .split('\n')
    .flatMap((l, i) => (/^\s*--\s*migrate:allow-contract\b/.test(l) ? [i + 1] : []));
  const waivers = (file.allowContracts ?? []).map((text, k) => ({
    text,
    line: waiverLines[k],
    parsed: parseAllowContract(text),
    used: false,
  }));
  for (const w of waivers) {
    if (w.parsed) continue;
    add({
      severity: 'error',
      code: 'BAD_WAIVER',
      file: file.path,
      ...(w.line === undefined ? {} : { line: w.line }),
      message: `"-- migrate:allow-contract ${w.text}" must name one table and say why: "-- migrate:allow-contract <table>: <why>".`,
    });
  }
  const post = phaseOf(m) === 'post';
  for (const c of post ? [] : contractions(statements, dialect)) {
    const names = [c.table, c.table.split('.').pop() as string];
    const hits = waivers.filter((w) => w.parsed && names.includes(w.parsed.table));
    for (const w of hits) w.used = true;
    if (hits.length > 0) continue;
    add({
      severity: 'warning',
      code: 'CONTRACT_IN_PRE',
      file: file.path,
      ...lineColumn(file.text, c.offset),
      message: `${c.what} in a pre revision: replicas still on the previous release use ${c.table} while this runs, and break. Move it to a revision of its own marked "-- migrate:phase post" (run once the rollout is done; docs/folder.md, expand and contract), or, if no running release depends on it, say why in this file: -- migrate:allow-contract ${c.table}: <reason>`,
      on: { table: c.table },
    });
  }
  for (const w of waivers) {
    if (!w.parsed || w.used) continue;
    add({
      severity: 'warning',
      code: 'UNUSED_WAIVER',
      file: file.path,
      ...(w.line === undefined ? {} : { line: w.line }),
      message: post
        ? `"-- migrate:allow-contract ${w.text}" accepts nothing: this revision is post, where contracting is expected. Remove it.`
        : `"-- migrate:allow-contract ${w.text}" accepts nothing: no statement of this file contracts ${w.parsed.table}. Remove it, or name the table as check reports it.`,
    });
  }
}
