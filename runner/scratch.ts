/**
 * The scratch databases `check`, `schema` and `drift` migrate: a temporary SQLite file; for
 * PostgreSQL a database created and dropped on the server the URL names, a schema created and
 * dropped in the database it names (`schema` only, when the folder cannot reach past it), or,
 * without a server URL, a fresh embedded PostgreSQL. Nothing else in the database the URL names
 * is touched.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseUrl, type Connection } from './config.ts';
import type { Dialect } from './files.ts';
import { Lexer } from './lexer.ts';
import { introspectable, type Introspectable } from './introspect.ts';
import { openDriver } from './session.ts';
import { serveEmbeddedPostgres } from './embedded.ts';
import { scratchUrls } from './check-locks.ts';

/** Which database a scratch is: its label for people, and whether it is the embedded PostgreSQL. */
export interface Scratch {
  label: string;
  embedded: boolean;
}

/** Where a scratch build runs: a URL any command can open, and what it is. */
export interface ScratchPlace extends Scratch {
  url: string;
  /** The display form of `url`, for the driver's messages. */
  display: string;
  /** Set for a scratch schema: its name, which the catalog reader reads alone and prints as `public`. */
  schema?: string;
  /** A database of the server the URL names (never the embedded one): check watches its locks from a second session. */
  server: boolean;
}

type PostgresConnection = Extract<Connection, { dialect: 'postgres' }>;

/**
 * A fresh place of `dialect` for `fn`, removed afterwards whatever happens. PostgreSQL: with
 * `schemaFor` (the up files' texts) a scratch schema in the database the URL names when
 * {@link openScratchSchema} allows one, else a scratch database on that server; without a
 * server URL a fresh embedded PostgreSQL (PGlite, loaded only here).
 */
export async function withScratchPlace<T>(
  dialect: Dialect,
  connection: Connection | undefined,
  fn: (place: ScratchPlace) => Promise<T>,
  schemaFor?: readonly string[],
): Promise<T> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'migrate-scratch-'));
    const url = `sqlite:${join(dir, 'scratch.db')}`;
    try {
      return await fn({ url, display: url, label: 'a temporary SQLite file', embedded: false, server: false });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  if (connection?.dialect !== 'postgres') return withEmbedded(fn);
  const inSchema = schemaFor ? await openScratchSchema(connection, schemaFor) : undefined;
  const { createScratchDatabase } = await import('./drivers/postgres-schema.ts');
  const scratch = inSchema ?? (await createScratchDatabase(connection.url, connection.display, connection.secrets));
  try {
    const kind = inSchema ? 'schema' : 'database';
    // Labelled without the scratch's random name: the same folder gives the same output.
    return await fn({
      url: scratch.url,
      display: `${connection.display} (scratch ${kind} ${scratch.name})`,
      label: `${connection.display} (a scratch ${kind}, dropped afterwards)`,
      embedded: false,
      server: true,
      ...(inSchema ? { schema: inSchema.name } : {}),
    });
  } finally {
    await scratch.drop();
  }
}

/**
 * A fresh database of `dialect` for `fn`, opened as a driver (what check's round trips use):
 * never a scratch schema, since check also measures locks and fills tables from a second session.
 */
export async function withScratch<T>(
  dialect: Dialect,
  connection: Connection,
  table: string,
  fn: (driver: Introspectable, scratch: Scratch) => Promise<T>,
): Promise<T> {
  return withScratchPlace(dialect, connection, async (place) => {
    const opened = { ...parseUrl(place.url), display: place.display } as Connection;
    const name = dialect === 'sqlite' ? (table.split('.').pop() as string) : table;
    const driver = introspectable(await openDriver(opened, name, true));
    if (place.server) scratchUrls.set(driver, place.url);
    try {
      return await fn(driver, { label: place.label, embedded: place.embedded });
    } finally {
      await driver.close();
    }
  });
}

async function withEmbedded<T>(fn: (place: ScratchPlace) => Promise<T>): Promise<T> {
  const pg = await serveEmbeddedPostgres({ maxConnections: 2 });
  try {
    return await fn({ url: pg.url, display: pg.label, label: pg.label, embedded: true, server: false });
  } finally {
    await pg.stop();
  }
}

/**
 * What lets a migration act outside the schema it runs in: creating a schema or an extension
 * (which lands in the first schema of the path, or is already there), moving the search path,
 * and every object or command of the database as a whole, which `DROP SCHEMA … CASCADE` would
 * leave behind or which reaches every schema: publications, subscriptions, event triggers,
 * foreign servers and wrappers, user mappings, casts, languages, transforms, access methods,
 * default privileges, large objects, `DROP`/`REASSIGN OWNED`, and whole-database maintenance.
 */
const REACHES_OUT = new RegExp(
  `(?<![\\w$])(${[
    'schema',
    'extension',
    'database',
    'search_path',
    'current_schema',
    'tablespace',
    'publication',
    'subscription',
    'event trigger',
    '(foreign|create|alter|drop) server',
    'data wrapper',
    'user mapping',
    '(create|drop) cast',
    '(create|alter|drop)( or replace)?( trusted)?( procedural)? language',
    '(create|drop) transform',
    'access method',
    'default privileges',
    'large object',
    'lo_\\w+',
    '(drop|reassign) owned',
    'vacuum',
    'cluster',
    'reindex',
    'system',
  ]
    .map((words) => words.replaceAll(' ', '\\s+'))
    .join('|')})(?![\\w$])`,
  'i',
);

/**
 * A schema `sqlmigrate_scratch_<random>` in the database the URL names, with a URL whose
 * search_path is that schema alone, so that unqualified names (the record table's too) resolve
 * there as they resolve to `public` in a fresh database. Far cheaper than a scratch database
 * (no copy of a template, no checkpoint), but only the same when the migrations cannot reach
 * past it, so undefined, and a scratch database instead, when:
 * - a file's SQL (strings and function bodies included, comments not) names a schema that
 *   database holds (`public.users`, `pg_catalog.pg_class` too: a superuser's write there would
 *   change that database's catalog), or uses a word of {@link REACHES_OUT};
 * - the database has enabled event triggers (they would run on the migrations' DDL);
 * - the role may not create a schema there.
 */
export async function openScratchSchema(
  connection: PostgresConnection,
  upTexts: readonly string[],
): Promise<{ url: string; name: string; drop(): Promise<void> } | undefined> {
  if (reachesOut(upTexts, [])) return undefined;
  const { default: postgres } = await import('postgres');
  const sql = postgres(connection.url, { max: 1, onnotice: () => {}, connect_timeout: 10, fetch_types: false });
  const close = () => sql.end({ timeout: 5 });
  try {
    const [row] = await sql.unsafe(`SELECT has_database_privilege(current_database(), 'CREATE') AS can_create,
      EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtenabled <> 'D') AS event_triggers,
      (SELECT json_agg(nspname) FROM pg_catalog.pg_namespace WHERE nspname !~ '^pg_(toast|temp_)')::text AS schemas`);
    const schemas = JSON.parse(String(row?.schemas ?? '[]')) as string[];
    const refused = row?.can_create !== true || row.event_triggers !== false || reachesOut(upTexts, schemas);
    if (refused) {
      await close();
      return undefined;
    }
    const name = `sqlmigrate_scratch_${randomBytes(6).toString('hex')}`;
    await sql.unsafe(`CREATE SCHEMA ${name}`);
    const url = new URL(connection.url);
    const options = connection.server.parameters.options;
    url.searchParams.set('options', `${options ? `${options} ` : ''}-c search_path=${name}`);
    return {
      url: url.toString(),
      name,
      async drop() {
        try {
          await sql.unsafe(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
        } finally {
          await close();
        }
      },
    };
  } catch {
    // Whatever went wrong, the scratch database says it properly (or works where this did not).
    await close().catch(() => {});
    return undefined;
  }
}

/**
 * Whether up files could act outside a scratch schema in a database holding `schemas`: their
 * SQL (strings and function bodies included, comments not) names one of those schemas
 * (`public.users`, `"public".users`) or says something of {@link REACHES_OUT}.
 */
export function reachesOut(upTexts: readonly string[], schemas: readonly string[]): boolean {
  const literal = (name: string) => name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const named = new RegExp(`(?<![\\w$])"?(${schemas.map(literal).join('|')})"?\\s*\\.`, 'i');
  return upTexts.some((text) => {
    const parts: string[] = [];
    const lexer = new Lexer(text, 'postgres');
    while (lexer.next()) if (lexer.kind !== 'comment') parts.push(lexer.value);
    const code = parts.join(' ');
    return REACHES_OUT.test(code) || (schemas.length > 0 && named.test(code));
  });
}
