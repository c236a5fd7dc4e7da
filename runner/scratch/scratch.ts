/**
 * The scratch databases `check`, `schema` and `drift` migrate: a temporary SQLite file; for
 * PostgreSQL a database created and dropped on the server the URL names, a schema created and
 * dropped in the database it names (`schema` only, when the folder cannot reach past it), or,
 * without a server URL, a fresh embedded PostgreSQL. Nothing else in the database the URL names
 * is touched.
 *
 * The rule of the layout: scratch/ imports only core/ (types included); catalog/ and check/ build
 * on it, core/ never names it (docs/architecture.md).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection } from '../core/config.ts';
import type { Dialect } from '../core/files.ts';
import { serveEmbeddedPostgres } from './embedded.ts';

/** Which database a scratch is: its label for people, and whether it is the embedded PostgreSQL. */
export interface Scratch {
  label: string;
  embedded: boolean;
  /** A database of a server (never the embedded one): its URL, for a second session to watch it from. */
  serverUrl?: string;
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
  /** Scratch schemas and databases an interrupted run left, dropped before this one was made. */
  swept?: string[];
}

/**
 * A fresh place of `dialect` for `fn`, removed afterwards whatever happens. PostgreSQL: with
 * `schemaFor` (the up files' texts) a scratch schema in the database the URL names when
 * catalog/scratch-schema.ts allows one, else a scratch database on that server; without a
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
  const { openScratchSchema } = await import('./postgres-schema.ts');
  const opened = schemaFor ? await openScratchSchema(connection, schemaFor) : undefined;
  const inSchema = opened?.schema;
  const { createScratchDatabase } = await import('./postgres-database.ts');
  const database = inSchema
    ? undefined
    : await createScratchDatabase(connection.url, connection.display, connection.secrets);
  const scratch = inSchema ?? (database as NonNullable<typeof database>);
  const swept = [...(opened?.swept ?? []), ...(database?.swept ?? [])];
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
      ...(swept.length > 0 ? { swept } : {}),
    });
  } finally {
    await scratch.drop();
  }
}

async function withEmbedded<T>(fn: (place: ScratchPlace) => Promise<T>): Promise<T> {
  const pg = await serveEmbeddedPostgres({ maxConnections: 2 });
  try {
    return await fn({ url: pg.url, display: pg.label, label: pg.label, embedded: true, server: false });
  } finally {
    await pg.stop();
  }
}
