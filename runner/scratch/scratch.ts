/**
 * The scratch databases `check`, `schema` and `drift` migrate: a temporary SQLite file; for
 * PostgreSQL a database created and dropped on the server the URL names, or, without a server
 * URL, a fresh embedded PostgreSQL. Folder SQL never runs in the database a URL names: only in a
 * database created for the run, whose name a connection to it must report back (#24).
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
  /** A database of the server the URL names (never the embedded one): check watches its locks from a second session. */
  server: boolean;
  /** Scratch databases an interrupted run left, dropped before this one was made. */
  swept?: string[];
}

/**
 * A fresh place of `dialect` for `fn`, removed afterwards whatever happens. PostgreSQL: a
 * scratch database on the server `connection` names, else a fresh embedded PostgreSQL (PGlite,
 * loaded only here).
 */
export async function withScratchPlace<T>(
  dialect: Dialect,
  connection: Connection | undefined,
  fn: (place: ScratchPlace) => Promise<T>,
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
  const { createScratchDatabase } = await import('./postgres-database.ts');
  const scratch = await createScratchDatabase(connection.url, connection.display, connection.secrets);
  try {
    // Labelled without the scratch's random name: the same folder gives the same output.
    return await fn({
      url: scratch.url,
      display: `${connection.display} (scratch database ${scratch.name})`,
      label: `${connection.display} (a scratch database, dropped afterwards)`,
      embedded: false,
      server: true,
      ...(scratch.swept.length > 0 ? { swept: scratch.swept } : {}),
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
