/**
 * Schema introspection, apart from the driver contract: only `check` reads a database's schema
 * (on its scratch databases, between steps). Each driver lends the connection it holds; the
 * dialect's catalog queries load only when asked for.
 */
import type { Driver } from '../core/driver.ts';
import type { Schema } from './schema.ts';

/** The database's schema in the shape both dialects share (catalog/schema.ts), without the record table. */
export async function introspect(driver: Driver): Promise<Schema> {
  const source = await driver.schemaSource();
  if ('db' in source) {
    const { introspectSqlite } = await import('./sqlite-schema.ts');
    return introspectSqlite(source.db, source.table);
  }
  const { introspectPostgres } = await import('./postgres-schema.ts');
  return introspectPostgres(source.query, source);
}
