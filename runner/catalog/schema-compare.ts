/**
 * Two schemas compared (schema.ts holds their shape).
 *
 * Comparing within one dialect is exact: every field, types and default expressions as the
 * database spells them. Comparing across dialects looks only at what both can express:
 * tables, columns (type family, nullability, whether a default exists, whether the database
 * generates the value, enum labels, length limits), primary keys, foreign keys with their
 * ON DELETE, unique column sets, and named indexes.
 *
 * @module
 */
import type { Column, Difference, Family, ForeignKey, Index, Schema, Table } from './schema.ts';

/**
 * Which SQLite family may stand for which PostgreSQL family. Equal families always match.
 * Beyond that only one pair: SQLite TEXT for PostgreSQL `timestamp` (and date/time), because
 * SQLite has no date or time type and stores them as text in a fixed format (sql/README.md,
 * "Timestamps"); nothing in the SQLite schema can say more. Every other SQLite stand-in has a
 * CHECK that makes it comparable: INTEGER with `IN (0, 1)` is a boolean, TEXT with
 * `json_valid` is json, TEXT with an IN list of strings is an enum. Without its CHECK the
 * SQLite column is reported, since it then accepts values PostgreSQL refuses.
 */
export function compatibleFamilies(postgres: Family, sqlite: Family): boolean {
  return postgres === sqlite || (postgres === 'timestamp' && sqlite === 'text');
}

type Mode = 'same' | 'cross';

/**
 * Two snapshots of one database (`before`, `after`), field by field. Used for round trips: a
 * down must restore exactly the schema its up started from.
 */
export function compareSnapshots(before: Schema, after: Schema): Difference[] {
  return compare(before, after, 'same');
}

/**
 * The two dialects' schemas at one revision, on what both can express; `postgres` is the left
 * side and `sqlite` the right one (see {@link compatibleFamilies}).
 */
export function compareDialects(postgres: Schema, sqlite: Schema): Difference[] {
  return compare(postgres, sqlite, 'cross');
}

function compare(left: Schema, right: Schema, mode: Mode): Difference[] {
  const out: Difference[] = [];
  const lt = byName(left.tables);
  const rt = byName(right.tables);
  const enumTypes = new Set(mode === 'same' ? left.enums.map((e) => e.name) : []);
  for (const [name, a, b] of paired(lt, rt)) {
    if (!a || !b) {
      out.push(only(a !== undefined, name, `table ${name}`));
      continue;
    }
    // Two readings of one database share the model of a table neither saw change (introspect.ts).
    if (mode === 'same' && a === b) continue;
    compareTables(a, b, mode, out, enumTypes);
  }
  if (mode === 'same') {
    const le = byName(left.enums);
    const re = byName(right.enums);
    for (const [name, a, b] of paired(le, re)) {
      if (!a || !b) out.push(only(a !== undefined, `enum ${name}`, `enum type ${name}`));
      else if (!sameList(a.values, b.values)) {
        out.push({
          subject: `enum ${name} values`,
          object: `enum type ${name}`,
          kind: 'changed',
          at: `enum type ${name}`,
          left: labels(a.values),
          right: labels(b.values),
        });
      }
    }
    const lo = new Map(Object.entries(left.others));
    const ro = new Map(Object.entries(right.others));
    for (const [key, a, b] of paired(lo, ro)) {
      if (a === undefined || b === undefined) out.push(only(a !== undefined, key, key));
      else if (a !== b)
        out.push({
          subject: `${key} definition`,
          object: key,
          kind: 'changed',
          at: key,
          left: `defined as ${brief(a)}`,
          right: brief(b),
        });
    }
  }
  return out;
}

function compareTables(a: Table, b: Table, mode: Mode, out: Difference[], enumTypes: ReadonlySet<string>): void {
  const t = a.name;
  const lc = byName(a.columns);
  const rc = byName(b.columns);
  for (const [name, x, y] of paired(lc, rc)) {
    if (!x || !y) out.push(only(x !== undefined, `${t}.${name}`, `column ${t}.${name}`));
    else compareColumns(t, x, y, mode, out, enumTypes);
  }

  if (!sameList(a.primaryKey, b.primaryKey)) {
    out.push({
      subject: `${t} primary key`,
      object: `the primary key of ${t}`,
      kind: 'changed',
      at: t,
      left: primaryKey(a.primaryKey),
      right: primaryKey(b.primaryKey),
    });
  }

  compareForeignKeys(a, b, out);

  const lu = new Set(a.uniques.map(cols));
  const ru = new Set(b.uniques.map(cols));
  for (const key of union(lu, ru)) {
    if (!lu.has(key) || !ru.has(key)) out.push(only(lu.has(key), `${t} unique ${key}`, `unique ${key} on ${t}`));
  }

  compareIndexes(a, b, mode, out);

  if (mode === 'same') {
    const lk = new Set(a.checks);
    const rk = new Set(b.checks);
    for (const c of union(lk, rk))
      if (!lk.has(c) || !rk.has(c)) out.push(only(lk.has(c), `${t} check ${c}`, `check ${c} on ${t}`));
  }
}

function compareForeignKeys(a: Table, b: Table, out: Difference[]): void {
  const t = a.name;
  const lf = new Map(a.foreignKeys.map((f) => [cols(f.columns), f]));
  const rf = new Map(b.foreignKeys.map((f) => [cols(f.columns), f]));
  for (const [key, x, y] of paired(lf, rf)) {
    const subject = `${t} foreign key ${key}`;
    if (!x || !y) {
      const f = (x ?? y) as ForeignKey;
      out.push(only(x !== undefined, subject, `foreign key ${t} ${key} → ${f.refTable} ${cols(f.refColumns)}`));
      continue;
    }
    const rx = `${x.refTable} ${cols(x.refColumns)}`;
    const ry = `${y.refTable} ${cols(y.refColumns)}`;
    if (rx !== ry)
      out.push({
        subject: `${subject} references`,
        object: `foreign key ${t} ${key}`,
        kind: 'changed',
        at: `${t} foreign key ${key}`,
        left: `references ${rx}`,
        right: ry,
      });
    if (x.onDelete !== y.onDelete) {
      out.push({
        subject: `${subject} on delete`,
        object: `foreign key ${t} ${key}`,
        kind: 'changed',
        at: `${t} foreign key ${key} → ${rx}`,
        left: `ON DELETE ${x.onDelete}`,
        right: y.onDelete,
      });
    }
  }
}

function compareIndexes(a: Table, b: Table, mode: Mode, out: Difference[]): void {
  const t = a.name;
  const li = byName(a.indexes);
  const ri = byName(b.indexes);
  for (const [name, x, y] of paired(li, ri)) {
    if (!x || !y) {
      out.push(only(x !== undefined, `index ${name}`, `index ${name} on ${t}`));
      continue;
    }
    const at = `index ${name}`;
    const xc = mode === 'cross' ? x.columns.map(portable) : x.columns;
    const yc = mode === 'cross' ? y.columns.map(portable) : y.columns;
    if (!sameList(xc, yc))
      out.push({ subject: `${at} columns`, object: at, kind: 'changed', at, left: `on ${cols(xc)}`, right: cols(yc) });
    if (x.unique !== y.unique)
      out.push({
        subject: `${at} unique`,
        object: at,
        kind: 'changed',
        at,
        left: x.unique ? 'unique' : 'not unique',
        right: y.unique ? 'unique' : 'not unique',
      });
    if (mode === 'cross' ? (x.where === null) !== (y.where === null) : x.where !== y.where) {
      const w = (i: Index) => (i.where === null ? 'on every row' : mode === 'cross' ? 'partial' : `WHERE ${i.where}`);
      out.push({ subject: `${at} where`, object: at, kind: 'changed', at, left: w(x), right: w(y) });
    }
  }
}

/** `enumTypes`: enum types compared on their own, whose labels are not reported again for every column of the type. */
function compareColumns(
  t: string,
  x: Column,
  y: Column,
  mode: Mode,
  out: Difference[],
  enumTypes: ReadonlySet<string>,
): void {
  const at = `${t}.${x.name}`;
  const changed = (aspect: string, left: string, right: string) =>
    out.push({ subject: `${at} ${aspect}`, object: `column ${at}`, kind: 'changed', at, left, right });
  const sameType =
    mode === 'cross' ? compatibleFamilies(x.family, y.family) : x.type === y.type && x.family === y.family;
  if (!sameType) changed('type', typeWords(x), typeWords(y));
  if (x.nullable !== y.nullable)
    changed('nullable', x.nullable ? 'nullable' : 'NOT NULL', y.nullable ? 'nullable' : 'NOT NULL');
  if (mode === 'cross' ? x.hasDefault !== y.hasDefault : x.default !== y.default)
    changed('default', defaultWords(x, mode), defaultWords(y, mode));
  if (x.generated !== y.generated)
    changed(
      'generated',
      x.generated ? 'generated by the database' : 'not generated',
      y.generated ? 'generated by the database' : 'not generated',
    );
  if (
    x.family === 'enum' &&
    y.family === 'enum' &&
    x.values &&
    y.values &&
    !(x.type === y.type && enumTypes.has(x.type))
  ) {
    const same = mode === 'cross' ? sameList([...x.values].sort(), [...y.values].sort()) : sameList(x.values, y.values);
    if (!same) {
      const missing = (p: string[], q: string[]) => p.filter((v) => !q.includes(v));
      const lo = missing(x.values, y.values);
      const ro = missing(y.values, x.values);
      const detail =
        lo.length + ro.length > 0 ? `labels ${labels(x.values)}` : `labels in the order ${labels(x.values)}`;
      changed('values', detail, labels(y.values));
    }
  }
  if (x.maxLength !== y.maxLength) changed('length', lengthWords(x.maxLength), lengthWords(y.maxLength));
}

/** Expressions differ in spelling between dialects; across them only "an expression" is compared. */
function portable(column: string): string {
  return column.startsWith('(') ? `(expression)${column.endsWith(' DESC') ? ' DESC' : ''}` : column;
}

function only(onLeft: boolean, subject: string, object: string): Difference {
  return { subject, object, kind: onLeft ? 'onlyLeft' : 'onlyRight' };
}

function typeWords(c: Column): string {
  return c.family === c.type.toLowerCase() ? c.family : `${c.family} (${c.type})`;
}

function defaultWords(c: Column, mode: Mode): string {
  if (c.default === null || !c.hasDefault) return 'no default';
  return mode === 'cross' ? 'a default' : `DEFAULT ${c.default}`;
}

function lengthWords(n: number | undefined): string {
  return n === undefined ? 'no length limit' : `at most ${n} characters`;
}

function primaryKey(columns: string[]): string {
  return columns.length === 0 ? 'no primary key' : `primary key ${cols(columns)}`;
}

function labels(values: string[]): string {
  return `(${values.map((v) => `'${v}'`).join(', ')})`;
}

function cols(columns: readonly string[]): string {
  return `(${columns.join(', ')})`;
}

function brief(text: string): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > 80 ? `${one.slice(0, 77)}...` : one;
}

function byName<T extends { name: string }>(items: readonly T[]): Map<string, T> {
  return new Map(items.map((i) => [i.name, i]));
}

/** Each key of either map, in order, with what each side holds for it. */
function paired<K, A, B>(a: Map<K, A>, b: Map<K, B>): Array<[K, A | undefined, B | undefined]> {
  return union(a, b).map((k) => [k, a.get(k), b.get(k)]);
}

function union<K>(a: { keys(): Iterable<K> }, b: { keys(): Iterable<K> }): K[] {
  return [...new Set([...a.keys(), ...b.keys()])].sort();
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
