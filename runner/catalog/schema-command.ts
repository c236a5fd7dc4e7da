import { join } from 'node:path';
import { DEFAULT_DIR, DEFAULT_TABLE, parseTableName, parseUrl, type Connection } from '../core/config.ts';
import { DIALECTS, isDirectory, loadMigrations, type Dialect } from '../core/files.ts';
import { MigrationFailed } from '../core/errors.ts';
import { withScratchPlace } from '../scratch/scratch.ts';
import { migrate } from '../core/migrator.ts';
import type { Catalog } from './model.ts';
import { renderCatalog } from './render.ts';

export interface SchemaConfig {
  /** Root of the dialect folders. Default `sql`. */
  dir?: string;
  /** The record table, left out of the schema. Default `schema_migrations`. */
  table?: string;
  /**
   * A `postgres://` URL names where PostgreSQL's scratch is made: a schema in the database it
   * names (the role needs CREATE there), or a database on its server (CREATEDB), dropped
   * afterwards; nothing else in that database is touched. Without one, the embedded PostgreSQL
   * (PGlite). It also picks the dialect of a folder that holds .sql files directly.
   */
  url?: string;
}

export interface DialectSchema {
  dialect: Dialect;
  /** Where `schema --write` puts it: `<dir>/schema/<dialect>.sql`. */
  file: string;
  /** The canonical file. */
  text: string;
  /** Set when PostgreSQL's was built on the embedded PostgreSQL (no server URL): which one. */
  builtOn?: string;
  /** Scratch schemas of an interrupted run, older than ten minutes, dropped on the way (catalog/scratch-schema.ts). */
  swept?: string[];
}

/** How a build is stopped: Ctrl-C aborts `signal`, and the build stops after the step it is in, its scratch removed. */
export interface BuildOptions {
  signal?: AbortSignal | undefined;
}

/** `<dir>/schema/<dialect>.sql`. */
export function schemaFile(dir: string, dialect: Dialect): string {
  return join(dir, 'schema', `${dialect}.sql`);
}

/** The dialects whose folders `dir` holds (a folder of .sql files alone: the URL's dialect). */
export function dialectsOf(dir: string, connection: Connection | undefined): Dialect[] {
  const present = DIALECTS.filter((d) => isDirectory(join(dir, d)));
  return present.length > 0 ? present : [connection?.dialect ?? 'sqlite'];
}

/** The canonical schema each dialect folder builds at head, each on its own scratch database. */
export async function schemaOf(config: SchemaConfig = {}, options: BuildOptions = {}): Promise<DialectSchema[]> {
  const dir = config.dir ?? DEFAULT_DIR;
  const connection = config.url === undefined ? undefined : parseUrl(config.url);
  const out: DialectSchema[] = [];
  for (const dialect of dialectsOf(dir, connection)) {
    const built = await buildCatalog(dialect, connection, dir, config.table ?? DEFAULT_TABLE, {
      ...options,
      inSchema: true,
    });
    out.push({
      dialect,
      file: schemaFile(dir, dialect),
      text: renderCatalog(built.catalog),
      ...(built.embedded ? { builtOn: built.label } : {}),
      ...(built.swept ? { swept: built.swept } : {}),
    });
  }
  return out;
}

/** The canonical schema of the database `url` names, read in a read-only transaction. */
export async function liveSchema(config: { url: string; table?: string }): Promise<string> {
  return renderCatalog(await readCatalog(parseUrl(config.url), config.table ?? DEFAULT_TABLE));
}

/** A folder's catalog at head, and the scratch it was built on. */
export interface BuiltCatalog {
  catalog: Catalog;
  /** The scratch, for people (scratch.ts). */
  label: string;
  /** Built on the embedded PostgreSQL (PGlite): no server was given, or it refused a scratch database. */
  embedded: boolean;
  /** Scratch schemas an interrupted run left, dropped first. */
  swept?: string[];
}

/**
 * Migrate a scratch of `dialect` to head from `dir` with the public `migrate()` and read its
 * catalog; the scratch is removed whatever happens. PostgreSQL's is on the server `connection`
 * names (`inSchema`: in a scratch schema of its database where that builds the same, see
 * scratch.ts), else on an embedded PostgreSQL.
 */
export async function buildCatalog(
  dialect: Dialect,
  connection: Connection | undefined,
  dir: string,
  table: string,
  options: BuildOptions & { inSchema?: boolean } = {},
): Promise<BuiltCatalog> {
  let inSchema = false;
  const { signal } = options;
  const build = (schemaFor?: readonly string[]) =>
    withScratchPlace(
      dialect,
      connection,
      async (place) => {
        inSchema = place.schema !== undefined;
        // A scratch schema or a SQLite file holds one schema: the record table goes there.
        const name = inSchema || dialect === 'sqlite' ? (table.split('.').pop() as string) : table;
        signal?.throwIfAborted();
        // Stopped between two steps, as check's round trips are: the scratch is then dropped.
        await migrate({ url: place.url, dir, table: name }, 'head', { onEvent: () => signal?.throwIfAborted() });
        signal?.throwIfAborted();
        const catalog = await readCatalog(parseUrl(place.url), name, place.schema);
        return {
          catalog,
          label: place.label,
          embedded: place.embedded,
          ...(place.swept ? { swept: place.swept } : {}),
        };
      },
      schemaFor,
    );
  if (!options.inSchema || dialect !== 'postgres' || connection?.dialect !== 'postgres') return build();
  try {
    return await build(loadMigrations(dir, dialect).map((m) => m.up.text));
  } catch (error) {
    // A failure in a scratch schema is confirmed (or not) on a scratch database, whose error is the one reported.
    if (!inSchema || !(error instanceof MigrationFailed) || signal?.aborted) throw error;
    return build();
  }
}

/**
 * The catalog of a live database. Writes nothing: PostgreSQL in a READ ONLY transaction, SQLite
 * opened read-only. `scratch`: the scratch schema to read alone (catalog/postgres.ts).
 */
export async function readCatalog(connection: Connection, table: string, scratch?: string): Promise<Catalog> {
  if (connection.dialect === 'sqlite') {
    const { readSqliteFile } = await import('./sqlite.ts');
    return readSqliteFile(connection.filename, connection.display, table.split('.').pop() as string);
  }
  const { readPostgresUrl } = await import('./postgres.ts');
  return readPostgresUrl(connection.url, connection.display, parseTableName(table, true), scratch);
}
