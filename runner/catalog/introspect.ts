/**
 * Schema introspection, apart from the driver contract: only `check` reads a database's schema
 * (on its scratch databases, between steps). Each driver lends the connection it holds; the
 * dialect's catalog queries load only when asked for.
 */
import type { Driver } from '../core/driver.ts';
import type { Schema } from './schema.ts';
import type { RowsCache } from './postgres-changes.ts';

/**
 * The driver's schema, in the shape both dialects share (catalog/schema.ts), without the record
 * table. Both dialects read again only what their catalog says changed since this connection's
 * last reading.
 */
export async function introspect(driver: Driver): Promise<Schema> {
  const source = await driver.schemaSource();
  if ('db' in source) {
    // SQLite bumps schema_version on every schema change: the same number outside a transaction
    // (a rollback brings it back), the same schema, as for a data fix or a no-op down. Otherwise
    // each table's last reading is kept while its CREATE text stands (sqlite-schema.ts).
    const { db, table } = source;
    const version = db.inTransaction ? undefined : Number(db.pragma('schema_version', { simple: true }));
    const last = sqliteReadings.get(db);
    if (version !== undefined && last?.version === version && last.table === table) return last.schema;
    sqliteModule ??= import('./sqlite-schema.ts');
    const { introspectSqlite } = await sqliteModule;
    const schema = introspectSqlite(db, table);
    if (version !== undefined) sqliteReadings.set(db, { version, table, schema });
    return schema;
  }
  // PostgreSQL reads again only the tables whose catalog rows changed since this driver's last reading.
  postgresModules ??= Promise.all([import('./postgres-schema.ts'), import('./postgres-changes.ts')]);
  const [{ introspectPostgres }, { newRowsCache }] = await postgresModules;
  let cache = caches.get(driver);
  if (!cache) caches.set(driver, (cache = newRowsCache()));
  return introspectPostgres(source.repeated, source, cache);
}

/**
 * Each dialect's catalog modules, loaded on first use and then held: check reads after every
 * step, and under tsx every import() asks its loader thread again, even for a module loaded.
 */
let sqliteModule: Promise<typeof import('./sqlite-schema.ts')> | undefined;
let postgresModules:
  | Promise<[typeof import('./postgres-schema.ts'), typeof import('./postgres-changes.ts')]>
  | undefined;

/** Per driver, what its last reading found (postgres-changes.ts): check reads its scratch database after every step. */
const caches = new WeakMap<Driver, RowsCache>();

/** Per SQLite connection, the last schema read and the schema_version it was read at. */
const sqliteReadings = new WeakMap<object, { version: number; table: string; schema: Schema }>();
