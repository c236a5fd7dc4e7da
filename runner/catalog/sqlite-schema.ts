/**
 * SQLite's schema in the shape both dialects share (catalog/schema.ts), read from the PRAGMA
 * table-valued functions and, for CHECK constraints, from the CREATE TABLE text SQLite keeps in
 * sqlite_master (no PRAGMA lists them).
 *
 * SQLite has no boolean, timestamp, json or enum type, so a column's family comes from its
 * declared type (by SQLite's affinity rules, https://www.sqlite.org/datatype3.html#determination_of_column_affinity,
 * after the names SQLite accepts but ignores: BOOLEAN, DATETIME, JSON, …) and then from the
 * simple CHECKs this project writes for the missing types:
 *   `col IN (0, 1)`                          boolean
 *   `json_valid(col)`, `col IS NULL OR json_valid(col)`   json
 *   `col IN ('A', 'B', …)`                   enum, with those labels
 *   `length(col) <= n` (or `< n`)             a length limit
 * Other CHECKs are kept as text, for comparing a database with itself.
 *
 * @module
 */
import type Database from 'better-sqlite3';
import type { Column, Family, ForeignKey, Index, Schema, Table } from './schema.ts';
import { tokenize, unquote, type Token } from '../core/lexer.ts';

type Db = Database.Database;

interface TableListRow {
  name: string;
  type: string;
  wr: number;
}

interface ColumnRow {
  cid: number;
  name: string;
  type: string;
  notnull: number;
  dflt_value: string | null;
  pk: number;
  hidden: number;
}

/** Per connection, each table's last reading, what PRAGMA table_list called it, and the text it was read from. */
const readings = new WeakMap<Db, Map<string, { key: string; kind: string; table?: Table }>>();

/** The schema of the `main` database, without `sqlite_*` tables and without `recordTable`. */
export function introspectSqlite(db: Db, recordTable: string): Schema {
  // As arrays, in name order: check reads after every step (issue #26), and at 600 tables making
  // an object of each of sqlite_master's rows cost more than SQLite's reading them.
  const master = db
    .prepare(`SELECT type, name, tbl_name, sql FROM main.sqlite_master ORDER BY name`)
    .raw()
    .all() as Array<[type: string, name: string, table: string, sql: string | null]>;
  const indexSql = new Map<string, string[]>();
  for (const [type, name, table, sql] of master) {
    if (type !== 'index') continue;
    const list = indexSql.get(table);
    if (list) list.push(`${name} ${sql ?? ''}`);
    else indexSql.set(table, [`${name} ${sql ?? ''}`]);
  }
  let cache = readings.get(db);
  if (!cache) readings.set(db, (cache = new Map()));
  const tables: Table[] = [];
  const others: Record<string, string> = {};
  const primaryKeys = new Map<string, string[]>();

  for (const [type, name, , sql] of master) {
    if (name.startsWith('sqlite_') || name === recordTable) continue;
    if (type === 'view') {
      others[`view ${name}`] = normaliseSql(sql ?? '');
      continue;
    }
    if (type !== 'table') continue;
    const createSql = sql ?? '';
    // A table's model comes from its CREATE text and its indexes: while those read the same,
    // the last reading stands (check reads after every step; issue #26), and so does what
    // PRAGMA table_list said of it (a plain table, a virtual one, a virtual table's shadow; with
    // or without rowid), which its CREATE text decides.
    const key = `${createSql}\0${(indexSql.get(name) ?? []).sort().join('\0')}`;
    let known = cache.get(name);
    if (known?.key !== key) {
      const listed = db.prepare(`SELECT name, type, wr FROM pragma_table_list(?) WHERE schema = 'main'`).get(name) as
        | TableListRow
        | undefined;
      const kind = listed?.type ?? 'shadow';
      known = { key, kind, ...(listed && kind === 'table' ? { table: readTable(db, listed, createSql) } : {}) };
      cache.set(name, known);
    }
    if (known.kind === 'virtual') others[`virtual table ${name}`] = normaliseSql(createSql);
    // Else a shadow table, which belongs to a virtual table.
    else if (known.table) tables.push(known.table);
  }
  for (const t of tables) primaryKeys.set(t.name, t.primaryKey);
  // `REFERENCES parent` without columns means the parent's primary key (a copy: the reading is kept).
  tables.forEach((t, i) => {
    if (!t.foreignKeys.some((f) => f.refColumns.length === 0)) return;
    tables[i] = {
      ...t,
      foreignKeys: t.foreignKeys.map((f) =>
        f.refColumns.length > 0 ? f : { ...f, refColumns: [...(primaryKeys.get(f.refTable) ?? [])] },
      ),
    };
  });
  for (const [type, name, table, sql] of master) {
    if (type === 'trigger' && table !== recordTable) others[`trigger ${name} on ${table}`] = normaliseSql(sql ?? '');
  }
  return { tables, enums: [], others };
}

function readTable(db: Db, t: TableListRow, createSql: string): Table {
  const rows = (
    db
      .prepare(`SELECT cid, name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid`)
      .all(t.name) as ColumnRow[]
  ).filter((c) => c.hidden === 0 || c.hidden === 2 || c.hidden === 3);
  const pkRows = rows.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk);
  const primaryKey = pkRows.map((c) => c.name);
  // https://www.sqlite.org/lang_createtable.html#rowid: exactly "INTEGER", any case, alone in the key.
  const rowidAlias =
    t.wr === 0 && pkRows.length === 1 && (pkRows[0] as ColumnRow).type.toUpperCase() === 'INTEGER'
      ? (pkRows[0] as ColumnRow).name
      : undefined;
  const checks = checkExpressions(createSql);
  const facts = checkFacts(checks);
  // A CHECK that made a column boolean, json, an enum or length-limited is compared as that
  // column's fact; `checks` keeps the rest, so one change is not reported twice.
  const explained = new Set<number>();

  const columns: Column[] = rows.map((c) => readColumn(c, t, rowidAlias, facts, explained));
  const foreignKeys = readForeignKeys(db, t.name);
  const { uniques, indexes } = readIndexes(db, t.name);

  return {
    name: t.name,
    columns,
    primaryKey,
    foreignKeys,
    uniques,
    indexes,
    checks: checks
      .filter((_, i) => !explained.has(i))
      .map(normaliseSql)
      .sort(),
  };
}

/** One column, with what the table's CHECKs say of it; `explained` collects the CHECKs used up. */
function readColumn(
  c: ColumnRow,
  t: TableListRow,
  rowidAlias: string | undefined,
  facts: ReturnType<typeof checkFacts>,
  explained: Set<number>,
): Column {
  const computed = c.hidden === 2 || c.hidden === 3;
  const keyNotNull = c.pk > 0 && (t.wr === 1 || c.name === rowidAlias);
  const f = facts.get(c.name.toLowerCase());
  let family = declaredFamily(c.type);
  let values: string[] | undefined;
  if (f?.boolean !== undefined && (family === 'integer' || family === 'numeric' || family === 'boolean')) {
    family = 'boolean';
    explained.add(f.boolean);
  } else if (f?.json !== undefined && (family === 'text' || family === 'other' || family === 'json')) {
    family = 'json';
    explained.add(f.json);
  } else if (f?.labels && (family === 'text' || family === 'other')) {
    family = 'enum';
    values = f.labels.values;
    explained.add(f.labels.check);
  }
  const column: Column = {
    name: c.name,
    type: c.type,
    family,
    nullable: c.notnull === 0 && !keyNotNull && !computed,
    hasDefault: !computed && c.dflt_value !== null,
    default: computed ? null : c.dflt_value,
    generated: computed || c.name === rowidAlias,
  };
  if (values) column.values = values;
  if (f?.maxLength !== undefined) {
    column.maxLength = f.maxLength.n;
    explained.add(f.maxLength.check);
  }
  return column;
}

function readForeignKeys(db: Db, table: string): ForeignKey[] {
  const foreignKeys: ForeignKey[] = [];
  const fkRows = db
    .prepare(`SELECT id, seq, "table", "from", "to", on_delete FROM pragma_foreign_key_list(?) ORDER BY id, seq`)
    .all(table) as Array<{
    id: number;
    table: string;
    from: string;
    to: string | null;
    on_delete: string;
  }>;
  const byId = new Map<number, ForeignKey>();
  for (const r of fkRows) {
    let fk = byId.get(r.id);
    if (!fk) {
      fk = { columns: [], refTable: r.table, refColumns: [], onDelete: r.on_delete.toUpperCase() };
      byId.set(r.id, fk);
      foreignKeys.push(fk);
    }
    fk.columns.push(r.from);
    if (r.to !== null) fk.refColumns.push(r.to);
  }
  // pragma_foreign_key_list lists the last declared first; keep declaration order.
  foreignKeys.reverse();
  return foreignKeys;
}

function readIndexes(db: Db, table: string): { uniques: string[][]; indexes: Index[] } {
  const uniques: string[][] = [];
  const indexes: Index[] = [];
  const list = db
    .prepare(`SELECT name, "unique", origin, partial FROM pragma_index_list(?) ORDER BY name`)
    .all(table) as Array<{ name: string; unique: number; origin: string; partial: number }>;
  for (const ix of list) {
    const keys = db
      .prepare(`SELECT seqno, cid, name, "desc" FROM pragma_index_xinfo(?) WHERE key = 1 ORDER BY seqno`)
      .all(ix.name) as Array<{ cid: number; name: string | null; desc: number }>;
    const columns = keys.map(
      (k) => (k.cid === -2 || k.name === null ? '(expression)' : k.name) + (k.desc ? ' DESC' : ''),
    );
    const plain = keys.every((k) => k.cid >= 0 && k.name !== null);
    if (ix.unique === 1 && ix.origin !== 'pk' && ix.partial === 0 && plain)
      uniques.push(keys.map((k) => k.name as string).sort());
    // sqlite_autoindex_* back UNIQUE and PRIMARY KEY constraints: their names are SQLite's, not the schema's.
    if (ix.origin === 'c') {
      const sql =
        (
          db.prepare(`SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?`).get(ix.name) as
            | { sql: string | null }
            | undefined
        )?.sql ?? '';
      indexes.push({
        name: ix.name,
        columns,
        unique: ix.unique === 1,
        where: ix.partial === 1 ? partialWhere(sql) : null,
      });
    }
  }
  uniques.sort((a, b) => a.join(',').localeCompare(b.join(',')));
  return { uniques, indexes };
}

/** The family SQLite's affinity gives a declared type, after the type names SQLite ignores but people write. */
function declaredFamily(declared: string): Family {
  const t = declared.toUpperCase().trim();
  if (/^BOOL(EAN)?$/.test(t)) return 'boolean';
  if (/^(DATETIME|TIMESTAMP|DATE|TIME)\b/.test(t)) return 'timestamp';
  if (/^JSONB?$/.test(t)) return 'json';
  if (t.includes('INT')) return 'integer';
  if (t.includes('CHAR') || t.includes('CLOB') || t.includes('TEXT')) return 'text';
  if (t === '' || t.includes('BLOB')) return 'other';
  if (t.includes('REAL') || t.includes('FLOA') || t.includes('DOUB')) return 'float';
  return 'numeric';
}

/** What the simple CHECK forms say about a column, each with the index of the CHECK that says it. */
interface ColumnFacts {
  boolean?: number;
  json?: number;
  labels?: { values: string[]; check: number };
  maxLength?: { n: number; check: number };
}

/** The tokens of a SQL fragment, comments left out, with the few tests the CHECK forms need. */
class Tokens {
  readonly list: Token[];
  constructor(readonly text: string) {
    this.list = tokenize(text, 'sqlite').filter((t) => t.kind !== 'comment');
  }
  value(k: number): string {
    const t = this.list[k];
    return t ? this.text.slice(t.start, t.end) : '';
  }
  isPunct(k: number, ch: string): boolean {
    return this.list[k]?.kind === 'punct' && this.value(k) === ch;
  }
  isWord(k: number, word: string): boolean {
    return this.list[k]?.kind === 'word' && this.value(k).toLowerCase() === word;
  }
  /** The column a bare or quoted name token names; undefined for anything else. */
  name(k: number): string | undefined {
    const t = this.list[k];
    if (t?.kind === 'word') return this.value(k);
    return t?.kind === 'quoted' ? unquote(this.text, t) : undefined;
  }
  /** Index of the `)` token that closes the `(` token at `open`; the token count when unclosed. */
  closing(open: number): number {
    let depth = 0;
    for (let k = open; k < this.list.length; k++) {
      if (this.isPunct(k, '(')) depth++;
      else if (this.isPunct(k, ')') && --depth === 0) return k;
    }
    return this.list.length;
  }
}

/** What the simple CHECK forms say about each column, keyed by lower-cased column name. */
function checkFacts(checks: string[]): Map<string, ColumnFacts> {
  const facts = new Map<string, ColumnFacts>();
  checks.forEach((raw, check) => {
    const fact = checkFact(new Tokens(raw), check);
    if (fact) {
      const key = fact.column.toLowerCase();
      facts.set(key, { ...facts.get(key), ...fact.facts });
    }
  });
  return facts;
}

/**
 * One CHECK against the four forms: `col IN (0, 1)`, `col IN ('A', …)`, `[col IS NULL OR]
 * json_valid(col)` and `length(col) <= n` (or `< n`), outer parentheses aside.
 */
function checkFact(t: Tokens, check: number): { column: string; facts: ColumnFacts } | undefined {
  let from = 0;
  let to = t.list.length - 1; // inclusive
  while (t.isPunct(from, '(') && t.closing(from) === to) {
    from++;
    to--;
  }
  const size = to - from + 1;
  const column = t.name(from);
  if (column !== undefined && t.isWord(from + 1, 'in') && t.isPunct(from + 2, '(') && t.isPunct(to, ')')) {
    const items = t.list.slice(from + 3, to);
    const values = items.filter((_, k) => k % 2 === 0);
    const commas = items.every((_, k) => k % 2 === 0 || t.isPunct(from + 3 + k, ','));
    if (!commas || items.length % 2 === 0) return undefined;
    const texts = values.map((v) => t.text.slice(v.start, v.end));
    if (values.length === 2 && values.every((v) => v.kind === 'number') && [...texts].sort().join() === '0,1')
      return { column, facts: { boolean: check } };
    if (values.every((v) => v.kind === 'string'))
      return { column, facts: { labels: { values: texts.map((x) => x.slice(1, -1).replace(/''/g, "'")), check } } };
    return undefined;
  }
  const jsonAt = size === 4 ? from : size === 8 ? from + 4 : -1;
  if (jsonAt >= 0 && t.isWord(jsonAt, 'json_valid') && t.isPunct(jsonAt + 1, '(') && t.isPunct(jsonAt + 3, ')')) {
    const inner = t.name(jsonAt + 2);
    if (inner === undefined) return undefined;
    if (size === 4) return { column: inner, facts: { json: check } };
    const nullable = t.isWord(from + 1, 'is') && t.isWord(from + 2, 'null') && t.isWord(from + 3, 'or');
    if (nullable && column?.toLowerCase() === inner.toLowerCase()) return { column: inner, facts: { json: check } };
    return undefined;
  }
  if (t.isWord(from, 'length') && t.isPunct(from + 1, '(') && t.isPunct(from + 3, ')') && t.isPunct(from + 4, '<')) {
    const inner = t.name(from + 2);
    const orEqual = t.isPunct(from + 5, '=') && t.list[from + 5]?.start === t.list[from + 4]?.end;
    const at = orEqual ? from + 6 : from + 5;
    if (inner === undefined || at !== to || !/^\d+$/.test(t.value(at))) return undefined;
    const n = Number(t.value(at));
    return { column: inner, facts: { maxLength: { n: orEqual ? n : n - 1, check } } };
  }
  return undefined;
}

/**
 * The expressions of every CHECK in a CREATE TABLE statement, column or table constraint: the
 * balanced parentheses after each CHECK keyword, strings, quoted names and comments skipped.
 */
export function checkExpressions(createSql: string): string[] {
  const out: string[] = [];
  const t = new Tokens(createSql);
  for (let k = 0; k < t.list.length; k++) {
    if (!t.isWord(k, 'check') || !t.isPunct(k + 1, '(')) continue;
    const close = t.closing(k + 1);
    out.push(createSql.slice((t.list[k + 1] as Token).end, t.list[close]?.start ?? createSql.length).trim());
    k = close;
  }
  return out;
}

/** The WHERE of a partial index's CREATE INDEX text. */
function partialWhere(sql: string): string {
  const m = /\bWHERE\b([\s\S]*)$/i.exec(sql);
  return m ? normaliseSql(m[1] as string) : '(unknown)';
}

/** One spelling for text that was written by hand: runs of blanks are one space, none inside parentheses. */
function normaliseSql(sql: string): string {
  return sql
    .replace(/\s+/g, ' ')
    .replace(/\(\s/g, '(')
    .replace(/\s\)/g, ')')
    .replace(/\s*;\s*$/, '')
    .trim();
}
