/**
 * The scratch databases `check` (and its passes) migrate up and down: a temporary SQLite file,
 * a database created and dropped on the PostgreSQL server the URL names, or, without a server
 * URL, a fresh embedded PostgreSQL. The database the URL names is never touched.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseUrl, type Connection } from './config.ts';
import type { Dialect } from './files.ts';
import { introspectable, type Introspectable } from './introspect.ts';
import { openDriver } from './session.ts';
import { serveEmbeddedPostgres } from './embedded.ts';
import { scratchUrls } from './check-locks.ts';

/** Which database a scratch is: its label for people, and whether it is the embedded PostgreSQL. */
export interface Scratch {
  label: string;
  embedded: boolean;
}

/**
 * A fresh database of `dialect` for `fn`, removed afterwards whatever happens. PostgreSQL: a
 * scratch database on the server the URL names, or without a server URL a fresh embedded
 * PostgreSQL (PGlite, loaded only here), so that check always proves both dialects.
 */
export async function withScratch<T>(
  dialect: Dialect,
  connection: Connection,
  table: string,
  fn: (driver: Introspectable, scratch: Scratch) => Promise<T>,
): Promise<T> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'migrate-check-'));
    const filename = join(dir, 'scratch.db');
    const driver = introspectable(
      await openDriver(
        { dialect: 'sqlite', filename, display: `sqlite:${filename}` },
        table.split('.').pop() as string,
        true,
      ),
    );
    try {
      return await fn(driver, { label: 'a temporary SQLite file', embedded: false });
    } finally {
      await driver.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  if (connection.dialect !== 'postgres') return withEmbedded(table, fn);
  const { createScratchDatabase } = await import('./drivers/postgres-schema.ts');
  const scratch = await createScratchDatabase(connection.url, connection.display, connection.secrets);
  try {
    const display = `${connection.display} (scratch database ${scratch.name})`;
    const driver = introspectable(await openDriver({ ...connection, url: scratch.url, display }, table, true));
    scratchUrls.set(driver, scratch.url);
    try {
      // Named without the scratch database's random name: the same folder gives the same output.
      return await fn(driver, {
        label: `${connection.display} (a scratch database, dropped afterwards)`,
        embedded: false,
      });
    } finally {
      await driver.close();
    }
  } finally {
    await scratch.drop();
  }
}

async function withEmbedded<T>(
  table: string,
  fn: (driver: Introspectable, scratch: Scratch) => Promise<T>,
): Promise<T> {
  const pg = await serveEmbeddedPostgres({ maxConnections: 2 });
  try {
    const connection = { ...parseUrl(pg.url), display: pg.label } as Connection;
    const driver = introspectable(await openDriver(connection, table, true));
    try {
      return await fn(driver, { label: pg.label, embedded: true });
    } finally {
      await driver.close();
    }
  } finally {
    await pg.stop();
  }
}
