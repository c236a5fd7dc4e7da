/**
 * Schema introspection, apart from the driver contract: only `check` reads a database's schema
 * (on its scratch databases, between steps). Each driver lends the connection it holds; the
 * dialect's catalog queries load only when asked for.
 */
import type Database from 'better-sqlite3';
import type { Driver } from '../core/driver.ts';
import type { Schema } from './schema.ts';

/** What a driver lends to introspection, reads only: its session, and the record table to leave out. */
export type SchemaSource =
  | {
      query: (text: string, params?: unknown[]) => Promise<Array<Record<string, unknown>>>;
      schema: string;
      table: string;
    }
  | { db: Database.Database; table: string };

/** A driver that can lend its connection to introspection (both of this project's drivers). */
export interface Introspectable extends Driver {
  schemaSource(): Promise<SchemaSource>;
}

/** The database's schema in the shape both dialects share (runner/schema.ts), without the record table. */
export async function introspect(driver: Introspectable): Promise<Schema> {
  const source = await driver.schemaSource();
  if ('db' in source) {
    const { introspectSqlite } = await import('./sqlite-schema.ts');
    return introspectSqlite(source.db, source.table);
  }
  const { introspectPostgres } = await import('./postgres-schema.ts');
  return introspectPostgres(source.query, source);
}

/** `driver` as an introspectable one; a driver that lends nothing cannot be checked. */
export function introspectable(driver: Driver): Introspectable {
  if (typeof (driver as Partial<Introspectable>).schemaSource !== 'function') {
    throw new Error('this driver cannot read its schema, which check needs');
  }
  return driver as Introspectable;
}
