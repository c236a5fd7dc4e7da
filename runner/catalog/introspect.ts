/**
 * Schema introspection, apart from the driver contract: only `check` reads a database's schema
 * (on its scratch databases, between steps). Each driver lends the connection it holds; the
 * dialect's catalog queries load only when asked for.
 */
import type { Driver } from '../core/driver.ts';
import type { Schema } from './schema.ts';
import type { PostgresSchemaCache } from './postgres-schema.ts';

/** The database's schema in the shape both dialects share (runner/schema.ts), without the record table. */
/**
 * Per driver, what its last reading found: check reads a scratch database after every step, and
 * reads again only the tables whose catalog rows changed (postgres-schema.ts).
 */
const caches = new WeakMap<Driver, PostgresSchemaCache>();

/**
 * What changed since `previous` can only be in the tables `names` holds (lower-cased, bare or
 * qualified): the others are taken from `previous` as they are. Undefined `names`: every table.
 */
export interface Scope {
  previous: Schema;
  names: ReadonlySet<string> | undefined;
  /** The objects besides tables and enums (views, sequences, functions, …) are as in `previous`. */
  sameOthers?: boolean;
}

/** The driver's schema; with a scope, only the tables it names are read again (check's round trips). */
export async function introspect(driver: Driver, scope?: Scope): Promise<Schema> {
  const source = await driver.schemaSource();
  if ('db' in source) {
    // SQLite keeps each table's last reading while its CREATE text stands: no scope needed.
    const { introspectSqlite } = await import('./sqlite-schema.ts');
    return introspectSqlite(source.db, source.table);
  }
  const { introspectPostgres } = await import('./postgres-schema.ts');
  const names = scope?.names;
  if (scope && names) {
    const read = await introspectPostgres(source.query, source, undefined, [...names], !scope.sameOthers);
    const reached = (name: string) =>
      names.has(name.toLowerCase()) || names.has((name.split('.').pop() as string).toLowerCase());
    const kept = scope.previous.tables.filter((t) => !reached(t.name));
    const tables = [...kept, ...read.tables].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { ...read, tables, ...(scope.sameOthers ? { others: scope.previous.others } : {}) };
  }
  let cache = caches.get(driver);
  if (!cache) caches.set(driver, (cache = { versions: new Map(), tables: new Map(), context: '' }));
  return introspectPostgres(source.query, source, cache);
}
