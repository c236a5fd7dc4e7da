/**
 * Every row of a set of tables, read as normalised text and keyed by primary key (or by the
 * whole row when there is none), and the comparison of two such readings: rows lost, rows
 * added or duplicated, and values changed, per table and column.
 *
 * @module
 */
import type { Family, Schema, Table } from '../../catalog/schema.ts';
import { ident, selectText, type DataDb } from './fill.ts';

export interface TablePrint {
  table: string;
  columns: string[];
  /** The key columns shown with a differing row: the primary key, or every column. */
  keyColumns: string[];
  /** key → rows with that key (more than one only without a primary key, or after a duplication). */
  rows: Map<string, string[][]>;
  total: number;
}

/** What one table's rows lost or gained between two readings. */
export interface RowChange {
  table: string;
  /** undefined: whole rows lost or added; else the column whose values changed. */
  column?: string;
  kind: 'lost' | 'added' | 'changed';
  rows: number;
  of: number;
  /** The first differing row: its key, and its values before and after (undefined when absent). */
  key: string;
  before?: string;
  after?: string;
}

/**
 * Read `tables` (as `schema` describes them), each column as text. Numbers lose trailing zeros
 * and an exponent form, so `1.50` and `1.5` are one value but `1.5` and `2` are not.
 */
export async function fingerprint(db: DataDb, schema: Schema, tables: readonly string[]): Promise<TablePrint[]> {
  const out: TablePrint[] = [];
  for (const name of tables) {
    const t = schema.tables.find((x) => x.name === name);
    if (!t || t.columns.length === 0) continue;
    out.push(await readTable(db, t));
  }
  return out;
}

async function readTable(db: DataDb, t: Table): Promise<TablePrint> {
  const columns = t.columns.map((c) => c.name);
  const families = t.columns.map((c) => c.family);
  const rows = await db.all(
    `SELECT ${columns.map((c, i) => `${selectText(c, db.dialect)} AS c${i}`).join(', ')} FROM ${ident(t.name, db.dialect)}`,
  );
  const keyAt = t.primaryKey.length > 0 ? t.primaryKey.map((k) => columns.indexOf(k)) : columns.map((_, i) => i);
  const map = new Map<string, string[][]>();
  for (const r of rows) {
    const values = columns.map((_, i) => normalise(r[`c${i}`], families[i] as Family));
    const key = keyAt.map((i) => values[i]).join(', ');
    const list = map.get(key);
    if (list) list.push(values);
    else map.set(key, [values]);
  }
  return { table: t.name, columns, keyColumns: keyAt.map((i) => columns[i] as string), rows: map, total: rows.length };
}

function normalise(value: unknown, family: Family): string {
  if (value === null || value === undefined) return 'NULL';
  if (Buffer.isBuffer(value)) return `X'${value.toString('hex')}'`;
  const text = String(value);
  if (
    (family === 'integer' || family === 'numeric' || family === 'float' || typeof value === 'number') &&
    isNumber(text)
  )
    return canonicalNumber(text);
  return `'${text}'`;
}

function isNumber(text: string): boolean {
  return /^-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(text);
}

function canonicalNumber(text: string): string {
  if (/e/i.test(text)) return String(Number(text));
  if (!text.includes('.')) return text.replace(/^(-?)0+(?=\d)/, '$1');
  return text.replace(/0+$/, '').replace(/\.$/, '');
}

/**
 * `before` against `after`, over the columns `before` read that `after` still has (a table or
 * column the down did not bring back is the schema comparison's finding, not this one's).
 */
export function compareFingerprints(before: readonly TablePrint[], after: readonly TablePrint[]): RowChange[] {
  const out: RowChange[] = [];
  for (const b of before) {
    const a = after.find((x) => x.table === b.table);
    if (!a) continue;
    const shared = b.columns.filter((c) => a.columns.includes(c));
    const bAt = shared.map((c) => b.columns.indexOf(c));
    const aAt = shared.map((c) => a.columns.indexOf(c));
    // Keyed by the key read before: a key column the down changed shows as rows lost and added.
    const keyOf = (p: TablePrint, values: string[]) =>
      b.keyColumns.map((k) => values[p.columns.indexOf(k)] ?? 'NULL').join(', ');
    const named = (p: TablePrint, values: string[]) =>
      b.keyColumns.map((k) => `${k}=${values[p.columns.indexOf(k)] ?? 'NULL'}`).join(', ');
    const rekeyed = new Map<string, string[][]>();
    for (const list of a.rows.values())
      for (const values of list) {
        const k = keyOf(a, values);
        rekeyed.set(k, [...(rekeyed.get(k) ?? []), values]);
      }
    const lost: RowChange = { table: b.table, kind: 'lost', rows: 0, of: b.total, key: '' };
    const added: RowChange = { table: b.table, kind: 'added', rows: 0, of: b.total, key: '' };
    const changed = new Map<string, RowChange>();
    const show = (p: TablePrint, values: string[]) => `(${p.columns.map((c, i) => `${c}=${values[i]}`).join(', ')})`;
    for (const [key, rows] of b.rows) {
      const others = rekeyed.get(key) ?? [];
      const extra = others.length - rows.length;
      const x = rows[0] as string[];
      const y = others[0];
      if (extra < 0) note(lost, -extra, named(b, x), show(b, x));
      if (extra > 0 && y) note(added, extra, named(a, y), undefined, show(a, y));
      if (!y || b.keyColumns.length === b.columns.length) continue;
      shared.forEach((c, n) => {
        const bv = x[bAt[n] as number] as string;
        const av = y[aAt[n] as number] as string;
        if (bv === av) return;
        let ch = changed.get(c);
        if (!ch) changed.set(c, (ch = { table: b.table, column: c, kind: 'changed', rows: 0, of: b.total, key: '' }));
        note(ch, 1, named(b, x), bv, av);
      });
    }
    for (const [key, others] of rekeyed)
      if (!b.rows.has(key))
        note(added, others.length, named(a, others[0] as string[]), undefined, show(a, others[0] as string[]));
    for (const r of [lost, added, ...changed.values()]) if (r.rows > 0) out.push(r);
  }
  return out;
}

function note(r: RowChange, n: number, key: string, before?: string, after?: string): void {
  if (r.rows === 0) {
    r.key = key;
    if (before !== undefined) r.before = before;
    if (after !== undefined) r.after = after;
  }
  r.rows += n;
}
