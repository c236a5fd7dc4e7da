/**
 * SQLite's schema in the shape both dialects share (runner/schema.ts), read from the PRAGMA
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
import type { Column, Family, ForeignKey, Index, Schema, Table } from '../schema.ts';
import { skipQuoted } from '../split.ts';

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

/** The schema of the `main` database, without `sqlite_*` tables and without `recordTable`. */
export function introspectSqlite(db: Db, recordTable: string): Schema {
  const listed = db
    .prepare(`SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main' ORDER BY name`)
    .all() as TableListRow[];
  const master = new Map(
    (
      db.prepare(`SELECT type, name, tbl_name, sql FROM sqlite_master`).all() as Array<{
        type: string;
        name: string;
        tbl_name: string;
        sql: string | null;
      }>
    ).map((r) => [`${r.type} ${r.name}`, r]),
  );
  const tables: Table[] = [];
  const others: Record<string, string> = {};
  const primaryKeys = new Map<string, string[]>();

  for (const t of listed) {
    if (t.name.startsWith('sqlite_') || t.name === recordTable) continue;
    if (t.type === 'view') {
      others[`view ${t.name}`] = normaliseSql(master.get(`view ${t.name}`)?.sql ?? '');
      continue;
    }
    if (t.type === 'virtual') {
      others[`virtual table ${t.name}`] = normaliseSql(master.get(`table ${t.name}`)?.sql ?? '');
      continue;
    }
    if (t.type !== 'table') continue; // shadow tables belong to a virtual table
    tables.push(readTable(db, t, master.get(`table ${t.name}`)?.sql ?? ''));
  }
  for (const t of tables) primaryKeys.set(t.name, t.primaryKey);
  // `REFERENCES parent` without columns means the parent's primary key.
  for (const t of tables) {
    for (const f of t.foreignKeys)
      if (f.refColumns.length === 0) f.refColumns = [...(primaryKeys.get(f.refTable) ?? [])];
  }
  for (const r of master.values()) {
    if (r.type === 'trigger' && r.tbl_name !== recordTable)
      others[`trigger ${r.name} on ${r.tbl_name}`] = normaliseSql(r.sql ?? '');
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

  const columns: Column[] = rows.map((c) => {
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
  });

  const foreignKeys: ForeignKey[] = [];
  const fkRows = db
    .prepare(`SELECT id, seq, "table", "from", "to", on_delete FROM pragma_foreign_key_list(?) ORDER BY id, seq`)
    .all(t.name) as Array<{
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

  const uniques: string[][] = [];
  const indexes: Index[] = [];
  const list = db
    .prepare(`SELECT name, "unique", origin, partial FROM pragma_index_list(?) ORDER BY name`)
    .all(t.name) as Array<{ name: string; unique: number; origin: string; partial: number }>;
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

const IDENT = String.raw`(?:"((?:[^"]|"")+)"|\x60([^\x60]+)\x60|\[([^\]]+)\]|([A-Za-z_][\w$]*))`;
const STRING = "'(?:[^']|'')*'";

/** What the simple CHECK forms say about each column, keyed by lower-cased column name. */
function checkFacts(checks: string[]): Map<string, ColumnFacts> {
  const facts = new Map<string, ColumnFacts>();
  const add = (name: string, f: ColumnFacts) =>
    facts.set(name.toLowerCase(), { ...facts.get(name.toLowerCase()), ...f });
  const identOf = (m: RegExpExecArray, from: number) =>
    (m[from] ?? m[from + 1] ?? m[from + 2] ?? m[from + 3] ?? '').replace(/""/g, '"');
  checks.forEach((raw, check) => {
    const e = stripParens(raw.replace(/\s+/g, ' ').trim());
    let m: RegExpExecArray | null;
    if ((m = new RegExp(String.raw`^${IDENT} IN ?\( ?(?:0 ?, ?1|1 ?, ?0) ?\)$`, 'i').exec(e)))
      add(identOf(m, 1), { boolean: check });
    else if ((m = new RegExp(String.raw`^${IDENT} IN ?\( ?(${STRING}(?: ?, ?${STRING})*) ?\)$`, 'i').exec(e))) {
      add(identOf(m, 1), {
        labels: {
          values: [...(m[5] as string).matchAll(/'((?:[^']|'')*)'/g)].map((s) => (s[1] as string).replace(/''/g, "'")),
          check,
        },
      });
    } else if ((m = new RegExp(String.raw`^(?:${IDENT} IS NULL OR )?json_valid ?\( ?${IDENT} ?\)$`, 'i').exec(e))) {
      const inner = identOf(m, 5);
      const outer = identOf(m, 1);
      if (outer === '' || outer.toLowerCase() === inner.toLowerCase()) add(inner, { json: check });
    } else if ((m = new RegExp(String.raw`^length ?\( ?${IDENT} ?\) ?(<=|<) ?(\d+)$`, 'i').exec(e))) {
      const n = Number(m[6]);
      add(identOf(m, 1), { maxLength: { n: m[5] === '<' ? n - 1 : n, check } });
    }
  });
  return facts;
}

/** `((x))` → `x`, only when the outer parentheses enclose the whole expression. */
function stripParens(e: string): string {
  let s = e;
  while (s.startsWith('(') && s.endsWith(')') && closingParen(s, 0) === s.length - 1) s = s.slice(1, -1).trim();
  return s;
}

/**
 * The expressions of every CHECK in a CREATE TABLE statement, column or table constraint: a
 * scan that skips strings, quoted names and comments and takes the balanced parentheses after
 * each CHECK keyword.
 */
export function checkExpressions(createSql: string): string[] {
  const out: string[] = [];
  const s = createSql;
  let i = 0;
  while (i < s.length) {
    const c = s[i] as string;
    if (c === "'" || c === '"' || c === '`') {
      i = skipQuoted(s, i + 1, s.charCodeAt(i));
      continue;
    }
    if (c === '[') {
      const k = s.indexOf(']', i + 1);
      i = k < 0 ? s.length : k + 1;
      continue;
    }
    if (s.startsWith('--', i)) {
      const k = s.indexOf('\n', i);
      i = k < 0 ? s.length : k + 1;
      continue;
    }
    if (s.startsWith('/*', i)) {
      const k = s.indexOf('*/', i + 2);
      i = k < 0 ? s.length : k + 2;
      continue;
    }
    if (/[A-Za-z_]/.test(c) && !/[\w$]/.test(s[i - 1] ?? ' ')) {
      const m = /^[A-Za-z_][\w$]*/.exec(s.slice(i, i + 64)) as RegExpExecArray;
      const word = m[0];
      if (word.toUpperCase() === 'CHECK') {
        let j = i + word.length;
        while (/\s/.test(s[j] ?? '')) j++;
        if (s[j] === '(') {
          const end = closingParen(s, j);
          out.push(s.slice(j + 1, end).trim());
          i = end + 1;
          continue;
        }
      }
      i += word.length;
      continue;
    }
    i++;
  }
  return out;
}

/** Index of the `)` that closes the `(` at `open`, skipping strings and quoted names. */
function closingParen(s: string, open: number): number {
  let depth = 0;
  let i = open;
  while (i < s.length) {
    const c = s[i];
    if (c === "'" || c === '"' || c === '`') {
      i = skipQuoted(s, i + 1, s.charCodeAt(i));
      continue;
    }
    if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i;
    i++;
  }
  return s.length;
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
