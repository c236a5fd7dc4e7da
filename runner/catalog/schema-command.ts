/**
 * `schema`: the canonical schema file of each dialect (catalog/render.ts), built on a scratch
 * database migrated to head with the public `migrate()`, or read from a live database inside a
 * read-only transaction.
 *
 * Folder SQL runs only in a database made for the build: a temporary SQLite file, the embedded
 * PostgreSQL, or a scratch database on a server named for that (`scratchUrl`); never in the
 * database a URL names (#24).
 *
 * @module
 */
import { join } from 'node:path';
import { DEFAULT_DIR, DEFAULT_TABLE, parseTableName, parseUrl, type Connection } from '../core/config.ts';
import type { ServerRole } from '../core/hosts.ts';
import { DIALECTS, isDirectory, type Dialect } from '../core/files.ts';
import { MigrateError } from '../core/errors.ts';
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
   * Picks the dialect of a folder that holds .sql files directly. Nothing connects to it: the
   * folder is never built in the database a URL names.
   */
  url?: string;
  /**
   * A `postgres://` URL of a server where PostgreSQL's build makes a scratch database (the role
   * needs CREATEDB), dropped afterwards; nothing else there is touched. Without one, the
   * embedded PostgreSQL (PGlite).
   */
  scratchUrl?: string;
}

export interface DialectSchema {
  dialect: Dialect;
  /** Where `schema --write` puts it: `<dir>/schema/<dialect>.sql`. */
  file: string;
  /** The canonical file. */
  text: string;
  /** Set when PostgreSQL's was built on the embedded PostgreSQL (no --scratch-url): which one. */
  builtOn?: string;
  /** Scratch databases of an interrupted run, over an hour old and unused, dropped on the way. */
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
export function dialectsOf(dir: string, url: string | undefined): Dialect[] {
  const present = DIALECTS.filter((d) => isDirectory(join(dir, d)));
  return present.length > 0 ? present : [url === undefined ? 'sqlite' : parseUrl(url).dialect];
}

/** The server `scratchUrl` names, refused unless it is a PostgreSQL one. */
export function scratchServer(scratchUrl: string | undefined): Connection | undefined {
  if (scratchUrl === undefined) return undefined;
  const server = parseUrl(scratchUrl);
  if (server.dialect !== 'postgres')
    throw new MigrateError(
      'BAD_OPTION',
      '--scratch-url must be a postgres URL: the server on which a scratch database is made.',
    );
  return server;
}

/** The canonical schema each dialect folder builds at head, each on its own scratch database. */
export async function schemaOf(config: SchemaConfig = {}, options: BuildOptions = {}): Promise<DialectSchema[]> {
  const dir = config.dir ?? DEFAULT_DIR;
  const server = scratchServer(config.scratchUrl);
  const out: DialectSchema[] = [];
  for (const dialect of dialectsOf(dir, config.url)) {
    const built = await buildCatalog(dialect, server, dir, config.table ?? DEFAULT_TABLE, options);
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
export async function liveSchema(
  config: {
    url: string;
    table?: string;
    /** Told which server was read, and whether it is a hot standby (reading one is fine). */
    onServer?: (role: ServerRole) => void;
  },
  options: BuildOptions = {},
): Promise<string> {
  return renderCatalog(
    await readCatalog(parseUrl(config.url), config.table ?? DEFAULT_TABLE, options, config.onServer),
  );
}

/** A folder's catalog at head, and the scratch it was built on. */
export interface BuiltCatalog {
  catalog: Catalog;
  /** The scratch, for people (scratch.ts). */
  label: string;
  /** Built on the embedded PostgreSQL (PGlite): no server was given. */
  embedded: boolean;
  /** Scratch databases an interrupted run left, dropped first. */
  swept?: string[];
}

/**
 * Migrate a scratch of `dialect` to head from `dir` with the public `migrate()` and read its
 * catalog; the scratch is removed whatever happens. PostgreSQL's is a scratch database on the
 * server `server` names, else the embedded PostgreSQL.
 */
export async function buildCatalog(
  dialect: Dialect,
  server: Connection | undefined,
  dir: string,
  table: string,
  options: BuildOptions = {},
): Promise<BuiltCatalog> {
  const { signal } = options;
  return withScratchPlace(dialect, server, async (place) => {
    // A SQLite file holds one schema: the record table goes there.
    const name = dialect === 'sqlite' ? (table.split('.').pop() as string) : table;
    signal?.throwIfAborted();
    // Stopped between two steps, as check's round trips are: the scratch is then dropped.
    await migrate({ url: place.url, dir, table: name }, 'head', { onEvent: () => signal?.throwIfAborted() });
    signal?.throwIfAborted();
    const catalog = await readCatalog(parseUrl(place.url), name, options);
    return {
      catalog,
      label: place.label,
      embedded: place.embedded,
      ...(place.swept ? { swept: place.swept } : {}),
    };
  });
}

/**
 * The catalog of a database. Writes nothing: PostgreSQL in a READ ONLY transaction with a lock
 * timeout, given up when `signal` aborts; SQLite opened read-only.
 */
export async function readCatalog(
  connection: Connection,
  table: string,
  options: BuildOptions = {},
  onServer?: (role: ServerRole) => void,
): Promise<Catalog> {
  if (connection.dialect === 'sqlite') {
    const { readSqliteFile } = await import('./sqlite.ts');
    return readSqliteFile(connection.filename, connection.display, table.split('.').pop() as string);
  }
  const { readPostgresUrl } = await import('./postgres-live.ts');
  return readPostgresUrl(connection.url, connection.display, parseTableName(table, true), options.signal, onServer);
}
