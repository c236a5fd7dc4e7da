/**
 * Schema introspection, apart from the driver contract: only `check` reads a database's schema
 * (on its scratch databases, between steps). Each driver lends the connection it holds; the
 * dialect's catalog queries load only when asked for.
 */
import type { Driver } from '../core/driver.ts';
import type { Schema } from './schema.ts';

/** The database's schema in the shape both dialects share (catalog/schema.ts), without the record table. */
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
export async function introspect(driver: Driver, _scope?: Scope): Promise<Schema> {
  const source = await driver.schemaSource();
  if ('db' in source) {
    // SQLite keeps each table's last reading while its CREATE text stands: no scope needed.
    const { introspectSqlite } = await import('./sqlite-schema.ts');
    return introspectSqlite(source.db, source.table);
  }
  // PostgreSQL is read whole: the scoped reading did not survive main's new catalog reader
  // (postgres-read.ts) and is to be redone there.
  const { introspectPostgres } = await import('./postgres-schema.ts');
  return introspectPostgres(source.query, source);
}
