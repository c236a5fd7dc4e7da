/**
 * A database's schema as a flat list of named objects, each with the properties `drift`
 * compares and the SQL `schema` prints. Both dialects fill it in (catalog/postgres.ts,
 * catalog/sqlite.ts); render.ts prints it and compareCatalogs() below lists the differences.
 *
 * Unlike catalog/schema.ts, which keeps only what both dialects can express so that `check` can
 * compare them with each other, this model keeps everything one dialect states, exactly as the
 * database prints it back: it is only ever compared with the same dialect.
 *
 * The rule of the layout: catalog/ imports only core/ and scratch/ (types included); check/
 * builds on it (docs/architecture.md).
 *
 * @module
 */
import type { Dialect } from '../core/dialect.ts';

export type ObjectKind =
  | 'extension'
  | 'schema'
  | 'type'
  | 'sequence'
  | 'table'
  | 'column'
  | 'constraint'
  | 'index'
  | 'view'
  | 'function'
  | 'trigger';

export interface CatalogObject {
  kind: ObjectKind;
  /** Unqualified in the default schema, else `schema.name`; a column is `table.column`. */
  name: string;
  /** The table a column, constraint, index or trigger belongs to. */
  table?: string;
  /** What `drift` compares, property by property, as the database prints it. */
  props: Record<string, string>;
  /**
   * The statement that creates it, without the final `;`. Empty for what its table's statement
   * already holds (columns, constraints written inside CREATE TABLE).
   */
  sql: string;
  /**
   * Printed after every table (a foreign key may name a table that sorts later; a serial's
   * sequence is owned by a column that exists only once its table does).
   */
  late?: boolean;
  /** A statement only: what it sets is already a property of another object, compared there. */
  printOnly?: boolean;
}

export interface Catalog {
  dialect: Dialect;
  objects: CatalogObject[];
}

/** One way a live database differs from what its migrations build. */
export interface DriftItem {
  /** `index ix_users_email on users`, `column users.role`, `table users`. */
  object: string;
  /** The property that differs; absent when the object exists on one side only. */
  property?: string;
  /** What the migrations build (absent: created by no migration). */
  expected?: string;
  /** What the database holds (absent: missing from the database). */
  found?: string;
  /** One line for a person. */
  message: string;
}

/** How a person names an object: `column users.role`, `index ix on users`, `table users`. */
export function describe(o: Pick<CatalogObject, 'kind' | 'name' | 'table'>): string {
  if (o.kind === 'column') return `column ${o.name}`;
  return o.table !== undefined ? `${o.kind} ${o.name} on ${o.table}` : `${o.kind} ${o.name}`;
}

function keyOf(o: CatalogObject): string {
  return `${o.kind}\u0000${o.table ?? ''}\u0000${o.name}`;
}

/**
 * What `found` holds that `expected` does not, and the reverse, property by property. An
 * object whose table is itself missing on one side is not listed again under the table.
 */
export function compareCatalogs(expected: Catalog, found: Catalog): DriftItem[] {
  const compared = (c: Catalog) => c.objects.filter((o) => !o.printOnly).map((o) => [keyOf(o), o] as const);
  const want = new Map(compared(expected));
  const have = new Map(compared(found));
  const tablesWanted = new Set(expected.objects.filter((o) => o.kind === 'table').map((o) => o.name));
  const tablesHeld = new Set(found.objects.filter((o) => o.kind === 'table').map((o) => o.name));
  const out: DriftItem[] = [];
  const keys = [...new Set([...want.keys(), ...have.keys()])].sort();
  for (const key of keys) {
    const e = want.get(key);
    const f = have.get(key);
    const o = (e ?? f) as CatalogObject;
    const object = describe(o);
    if (!e) {
      if (o.table === undefined || tablesWanted.has(o.table))
        out.push({ object, found: 'present', message: `${object}: in the database, created by no migration` });
      continue;
    }
    if (!f) {
      if (o.table === undefined || tablesHeld.has(o.table))
        out.push({
          object,
          expected: 'present',
          message: `${object}: created by the migrations, missing from the database`,
        });
      continue;
    }
    const props = [...new Set([...Object.keys(e.props), ...Object.keys(f.props)])].sort();
    for (const property of props) {
      const x = e.props[property] ?? '(none)';
      const y = f.props[property] ?? '(none)';
      if (x === y || (o.kind === 'view' && property === 'definition' && sameViewText(x, y))) continue;
      const subject = o.kind === 'column' ? o.name : object;
      out.push({
        object,
        property,
        expected: x,
        found: y,
        message: `${subject} ${property}: expected ${brief(x)}, found ${brief(y)}`,
      });
    }
  }
  return out;
}

/**
 * Two printings of one view by servers of different major versions: PostgreSQL 16 stopped
 * qualifying a column with its relation where only one is in scope, so `drift` built on the
 * embedded PostgreSQL (#24: never on the live server unless asked) reads a 15 server's
 * `orders.id` as `id`. Qualifiers and layout aside, the text must be the same.
 */
function sameViewText(a: string, b: string): boolean {
  const plain = (t: string) =>
    t
      .replace(/(?:"(?:[^"]|"")+"|\b[a-z_][a-z0-9_$]*)\.(?=["a-z_])/g, '')
      .replace(/\s+/g, ' ')
      .trim();
  return plain(a) === plain(b);
}

function brief(text: string): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > 160 ? `${one.slice(0, 157)}...` : one;
}
