/**
 * Rows for one table, made from the schema alone (catalog/schema.ts): every value is a SQL
 * literal the dialect coerces to the column's type, so no client-side type handling is needed.
 *
 * What the rows respect: NOT NULL, length limits, enum labels, the simple CHECKs (comparisons
 * with constants, numeric IN lists, length bounds), single and composite unique sets, foreign
 * keys (values drawn from the parent's existing keys). What they exercise: nullable columns
 * NULL in some rows only, non-unique columns repeating values, numerics with a fraction,
 * strings at their length limit, every enum label, columns left to their DEFAULT in some rows.
 * The same seed gives the same rows.
 *
 * @module
 */
import type { Column, Table } from '../../catalog/schema.ts';
import type { Dialect } from '../../core/files.ts';
import { sqlString } from '../../core/quote.ts';

/** A seeded generator (mulberry32): small, fast, and the same sequence for the same seed on every platform. */
export class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** What the simple CHECKs of a table say about one of its columns. */
export interface Bounds {
  min?: number;
  max?: number;
  /** The only values a numeric IN list allows. */
  values?: number[];
  minLength?: number;
}

/**
 * The simple CHECK forms, as either dialect prints them: `col >= 0`, `0 < col`, `col BETWEEN a
 * AND b`, `col IN (1, 2)` (PostgreSQL: `col = ANY (ARRAY[1, 2])`), `length(col) >= n`, `col <> ''`,
 * and conjunctions of these. Casts and parentheses are read through; anything else is left to
 * the database (a row it refuses is dropped, see fill.ts).
 */
export function checkBounds(checks: readonly string[]): Map<string, Bounds> {
  const out = new Map<string, Bounds>();
  const at = (col: string): Bounds => {
    const key = col.toLowerCase();
    let b = out.get(key);
    if (!b) out.set(key, (b = {}));
    return b;
  };
  for (const raw of checks) {
    const text = raw
      .replace(/::[\w ]+(\[\])?/g, '')
      .replace(/'(-?\d+(?:\.\d+)?)'/g, '$1')
      .replace(/[()]/g, ' ')
      .replace(/"/g, '')
      .replace(/\s+/g, ' ')
      .trim();
    const between = text.replace(/(\w+) BETWEEN (-?[\d.]+) AND (-?[\d.]+)/gi, '$1 >= $2 AND $1 <= $3');
    for (const part of between.split(/ AND /i)) readCondition(part.trim(), at);
  }
  return out;
}

const NUM = '(-?\\d+(?:\\.\\d+)?)';
const FLIP: Record<string, string> = { '<': '>', '<=': '>=', '>': '<', '>=': '<=' };

function readCondition(part: string, at: (col: string) => Bounds): void {
  let m = new RegExp(`^(?:char_)?length (\\w+) (>=|>|<=|<) ${NUM}$`, 'i').exec(part);
  if (m) {
    const [, col, op, n] = m as unknown as [string, string, string, string];
    if (op === '>=' || op === '>') at(col).minLength = Number(n) + (op === '>' ? 1 : 0);
    return;
  }
  m = /^(\w+) (<>|!=) ''$/.exec(part);
  if (m) {
    at(m[1] as string).minLength ??= 1;
    return;
  }
  m = new RegExp(`^(\\w+) (>=|>|<=|<) ${NUM}$`).exec(part);
  const flipped = new RegExp(`^${NUM} (>=|>|<=|<) (\\w+)$`).exec(part);
  if (m || flipped) {
    const [col, op, n] = m
      ? [m[1] as string, m[2] as string, Number(m[3])]
      : [flipped?.[3] as string, FLIP[flipped?.[2] as string] as string, Number(flipped?.[1])];
    const b = at(col);
    // A strict bound is kept apart from the constant by a margin any numeric type can hold.
    if (op === '>=') b.min = Math.max(b.min ?? -Infinity, n);
    if (op === '>') b.min = Math.max(b.min ?? -Infinity, n + 1);
    if (op === '<=') b.max = Math.min(b.max ?? Infinity, n);
    if (op === '<') b.max = Math.min(b.max ?? Infinity, n - 1);
    return;
  }
  m = /^(\w+) (?:IN|= ANY ARRAY\[?) ?([-\d., ]+)\]?$/i.exec(part.replace(/ARRAY\[/g, 'ARRAY[').replace(/\] ?$/, ''));
  if (m) {
    const values = (m[2] as string)
      .split(',')
      .map((v) => v.trim())
      .filter((v) => v !== '')
      .map(Number);
    if (values.length > 0 && values.every(Number.isFinite)) at(m[1] as string).values = values;
  }
}

/** Where a table's foreign-key values come from: each foreign key's parent keys, as literal tuples. */
export type ParentKeys = Map<string, string[][]>;

export function fkKey(refTable: string, refColumns: readonly string[]): string {
  return `${refTable}\0${refColumns.join('\0')}`;
}

export interface Rows {
  columns: string[];
  rows: string[][];
}

const NULL_SHARE = 0.3;
/** Share of the rows that leave every column with a DEFAULT to its default. */
const DEFAULT_SHARE = 0.25;

/**
 * `count` rows for `table`, in two groups: the first leaves the columns that have a DEFAULT out
 * (so the defaults are used), the second sets them. `start` keeps unique values apart from those
 * of earlier calls for the same table. Returns fewer rows when a NOT NULL foreign key has no
 * parent row to point at.
 */
export function generateRows(
  table: Table,
  dialect: Dialect,
  count: number,
  rng: Rng,
  parents: ParentKeys,
  start = 0,
): Rows[] {
  const shape = tableShape(table);
  const seen = shape.composites.map(() => new Set<string>());
  const groups: Rows[] = [];
  const withDefaults = Math.floor(count * DEFAULT_SHARE);
  for (const [from, to, skipDefaults] of [
    [0, withDefaults, true],
    [withDefaults, count, false],
  ] as const) {
    const columns = table.columns.filter((c) => !c.generated && !(skipDefaults && c.hasDefault));
    const rows: string[][] = [];
    for (let i = from; i < to; i++) {
      // A composite unique set that repeats draws the row again, a few times at most.
      for (let attempt = 0; attempt < 8; attempt++) {
        const values = makeRow(table, shape, columns, dialect, rng, parents, i + start);
        if (values === undefined) return groups.concat(rows.length > 0 ? [{ columns: names(columns), rows }] : []);
        const keys = shape.composites.map((u) => u.map((c) => values.get(c) ?? 'DEFAULT').join('\0'));
        if (keys.some((k, n) => seen[n]?.has(k)) && attempt < 7) continue;
        for (const [n, k] of keys.entries()) seen[n]?.add(k);
        rows.push(columns.map((c) => values.get(c.name) as string));
        break;
      }
    }
    if (rows.length > 0) groups.push({ columns: names(columns), rows });
  }
  return groups;
}

function names(columns: readonly Column[]): string[] {
  return columns.map((c) => c.name);
}

/** What the row maker needs to know about a table, worked out once. */
interface Shape {
  bounds: Map<string, Bounds>;
  uniqueSingles: Set<string>;
  composites: string[][];
  /** column → its foreign key (index) and its place in that key */
  fkOf: Map<string, { fk: number; at: number }>;
  /** Per column: how many labels were handed out, so that every enum label is used. */
  counters: Map<string, number>;
}

function tableShape(table: Table): Shape {
  const keys = [...table.uniques, table.primaryKey];
  const fkOf = new Map<string, { fk: number; at: number }>();
  for (const [fk, f] of table.foreignKeys.entries()) for (const [at, c] of f.columns.entries()) fkOf.set(c, { fk, at });
  return {
    bounds: checkBounds(table.checks),
    uniqueSingles: new Set(keys.filter((u) => u.length === 1).map((u) => u[0] as string)),
    composites: keys.filter((u) => u.length > 1),
    fkOf,
    counters: new Map(),
  };
}

/** One row's literals by column; undefined when a NOT NULL foreign key has no parent row to point at. */
function makeRow(
  table: Table,
  shape: Shape,
  columns: readonly Column[],
  dialect: Dialect,
  rng: Rng,
  parents: ParentKeys,
  row: number,
): Map<string, string> | undefined {
  const tuples = table.foreignKeys.map((f) => {
    const keys = parents.get(fkKey(f.refTable, f.refColumns)) ?? [];
    if (keys.length === 0) return undefined;
    const unique = f.columns.length === 1 && shape.uniqueSingles.has(f.columns[0] as string);
    // A unique foreign key takes each parent once.
    return keys[unique ? row % keys.length : rng.int(0, keys.length - 1)];
  });
  const values = new Map<string, string>();
  for (const c of columns) {
    const link = shape.fkOf.get(c.name);
    if (link) {
      const tuple = tuples[link.fk];
      if (tuple === undefined || (c.nullable && rng.chance(NULL_SHARE))) {
        if (!c.nullable) return undefined;
        values.set(c.name, 'NULL');
      } else values.set(c.name, tuple[link.at] as string);
      continue;
    }
    const value = columnValue(c, dialect, rng, {
      row,
      // A member of a composite key counts rows too: drawn from a pool, the sets would repeat.
      unique: shape.uniqueSingles.has(c.name) || shape.composites.some((u) => u.includes(c.name)),
      bounds: shape.bounds.get(c.name.toLowerCase()),
      counters: shape.counters,
    });
    values.set(c.name, value);
  }
  return values;
}

interface ValueContext {
  row: number;
  unique: boolean;
  bounds: Bounds | undefined;
  /** Per column: how many labels were handed out, so that every enum label is used. */
  counters: Map<string, number>;
}

/** One column's literal for one row. */
function columnValue(c: Column, dialect: Dialect, rng: Rng, x: ValueContext): string {
  if (c.nullable && rng.chance(NULL_SHARE)) return 'NULL';
  // A unique column counts rows; another one draws from a small pool, so values repeat.
  const k = x.unique ? x.row : rng.int(0, 9);
  const b = x.bounds;
  if (b?.values && b.values.length > 0) return String(b.values[k % b.values.length]);
  switch (c.family) {
    case 'enum': {
      const labels = c.values ?? [];
      if (labels.length === 0) return c.nullable ? 'NULL' : 'DEFAULT';
      const n = x.counters.get(c.name) ?? 0;
      x.counters.set(c.name, n + 1);
      return sqlString(labels[(x.unique ? x.row : n) % labels.length] as string);
    }
    case 'boolean':
      return dialect === 'postgres' ? (rng.chance(0.5) ? 'true' : 'false') : rng.chance(0.5) ? '1' : '0';
    case 'integer':
      return String(integerValue(c.type, k, x.unique, b));
    case 'numeric':
    case 'float':
      return numericValue(c, k, rng, b);
    case 'timestamp':
      return sqlString(timeValue(c.type, k));
    case 'json':
      return sqlString(rng.chance(0.5) ? `{"n": ${k}, "tag": "t${k % 3}"}` : `[${k}, "x"]`);
    case 'text':
      return sqlString(textValue(c, k, x.row, rng, b));
    default:
      return otherValue(c, dialect, k);
  }
}

function integerValue(type: string, k: number, unique: boolean, b: Bounds | undefined): number {
  const top = /smallint|int2/i.test(type) ? 32767 : 2147483647;
  const lo = Math.max(b?.min ?? 1, -top);
  const span = Math.max(1, Math.min(b?.max ?? top, top) - lo + 1);
  // Pooled values sit away from the small counted keys: an integer that names a row without a
  // foreign key then names none, as orphans do in a database in use.
  return lo + ((unique ? k : 1000 + k * 7) % span);
}

/** A value with a fraction, within `numeric(p, s)` and the CHECK bounds. */
function numericValue(c: Column, k: number, rng: Rng, b: Bounds | undefined): string {
  const spec = /\((\d+)\s*(?:,\s*(\d+))?\)/.exec(c.type);
  const scale = spec ? Number(spec[2] ?? 0) : 2;
  const digits = spec ? Number(spec[1]) - scale : 6;
  const top = Math.min(10 ** Math.min(digits, 9) - 1, b?.max ?? Infinity);
  const lo = Math.max(b?.min ?? 0, 0);
  const whole = lo + (k % Math.max(1, Math.floor(top - lo)));
  if (c.family === 'float') return `${whole}.${[25, 5, 75][rng.int(0, 2)]}`;
  if (scale === 0) return String(whole);
  const fraction = String(rng.int(1, 9)) + String(rng.int(0, 10 ** (scale - 1) - 1)).padStart(scale - 1, '0');
  return `${whole}.${fraction.slice(0, scale)}`;
}

function timeValue(type: string, k: number): string {
  const at = new Date(Date.UTC(2024, 0, 1) + k * 3_600_000 + (k % 7) * 1000);
  const iso = at.toISOString();
  if (/^date$/i.test(type)) return iso.slice(0, 10);
  if (/^time(?!stamp)/i.test(type)) return iso.slice(11, 19);
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${String(123456 + k).slice(-6)}`;
}

/** Text within the length bounds: a quarter of the rows exactly at the limit, some with non-ASCII letters and a quote. */
function textValue(c: Column, k: number, row: number, rng: Rng, b: Bounds | undefined): string {
  const max = c.maxLength ?? 40;
  const min = Math.min(b?.minLength ?? 0, max);
  const id = k.toString(36);
  const flavour = row % 4;
  const base = flavour === 1 ? `é'${id}` : flavour === 2 ? `${c.name}-${id}` : `v${id}`;
  // Unique values keep their distinguishing part at the end, where truncation cannot reach it.
  let text = base.length > max ? id.slice(-max) : base;
  if (flavour === 3 || rng.chance(0.2)) text = 'x'.repeat(Math.max(0, max - text.length)) + text;
  while (text.length < min) text = `x${text}`;
  return text;
}

function otherValue(c: Column, dialect: Dialect, k: number): string {
  const t = c.type.toLowerCase();
  if (dialect === 'sqlite') return t.includes('blob') ? `X'${k.toString(16).padStart(4, '0')}'` : sqlString(`o${k}`);
  if (t === 'uuid') return sqlString(`00000000-0000-4000-8000-${k.toString(16).padStart(12, '0')}`);
  if (t === 'bytea') return sqlString(`\\x${k.toString(16).padStart(4, '0')}`);
  if (t.endsWith('[]')) return sqlString('{}');
  if (t === 'inet' || t === 'cidr') return sqlString(`10.0.${(k >> 8) & 255}.${k & 255}`);
  if (t === 'interval') return sqlString(`${k} minutes`);
  return c.nullable ? 'NULL' : 'DEFAULT';
}
