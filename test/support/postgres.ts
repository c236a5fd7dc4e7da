/**
 * A fresh, empty PostgreSQL database per test.
 *
 * - `TEST_POSTGRES_URL` set (e.g. `postgres://postgres@127.0.0.1:5432/postgres`): a real server.
 *   Each test gets its own `mig_t_<random>` database, created and dropped (`WITH (FORCE)`)
 *   through that admin URL.
 * - Otherwise: an embedded PGlite (PostgreSQL 18 compiled to wasm, in memory) served over TCP by
 *   pglite-socket on 127.0.0.1 and a free port, one per test database.
 *
 * What the embedded server can and cannot do (tried with pglite 0.5.14, pglite-socket 0.2.17):
 * - More than one connection at a time: only with `maxConnections` > 1 (the default is 1; we
 *   ask for {@link MAX_CONNECTIONS}). A client past the limit is not refused with an error: the
 *   server writes "Too many connections" as plain text and postgres.js then hangs on it, past
 *   its connect_timeout.
 * - Those connections are multiplexed onto PGlite's single backend: one session for all (every
 *   connection reports the same pg_backend_pid()). While
 *   one connection is inside a transaction the others' queries queue until it ends (so data
 *   visibility looks serial), but session state is shared: SET, temporary tables, prepared
 *   statements and, above all, advisory locks. `pg_try_advisory_lock(k)` succeeds on every
 *   connection at once (the same session re-takes its own lock), so lock tests need a real
 *   server: see {@link hasPostgresServer}.
 * - One database only: CREATE DATABASE succeeds, but a connection to any database name lands in
 *   the same one. Hence one PGlite per test database, never one shared server.
 * - Multi-statement simple-protocol queries, error `position`, SQLSTATEs, CREATE SCHEMA,
 *   CREATE INDEX CONCURRENTLY (outside a transaction), set_config('client_connection_check_interval')
 *   and `psql` as a client all work. Its clock is coarse enough that two statements in a row
 *   may see the same `now()`/`statement_timestamp()`: do not infer anything from timestamps.
 * - pg_terminate_backend cannot be used (there is one backend: this process), and a long
 *   statement (pg_sleep) blocks this process's event loop while it runs.
 * - The server runs in this process: a client in another process (a spawned CLI, psql) is
 *   served only while this process's event loop is free, so spawn asynchronously, never with
 *   spawnSync/execFileSync.
 * - Creating a PGlite runs initdb (about 2 s); every database here is instead loaded from a dump
 *   of one fresh instance made once per process (about 0.3 s).
 */
import postgres from 'postgres';
import { randomBytes } from 'node:crypto';
import { serveEmbeddedPostgres } from '../../scripts/embedded-postgres.ts';

export interface TestDatabase {
  url: string;
  kind: 'server' | 'embedded';
  drop(): Promise<void>;
}

const SERVER_URL = process.env.TEST_POSTGRES_URL || undefined;

/** True when a real server is configured (TEST_POSTGRES_URL); concurrency tests need one. */
export const hasPostgresServer: boolean = SERVER_URL !== undefined;

/** Connections the embedded server accepts at once (a driver, a checking client, psql, a CLI or two). */
export const MAX_CONNECTIONS = 16;

/** A fresh, empty database for one test. */
export async function createPostgresDatabase(): Promise<TestDatabase> {
  return SERVER_URL === undefined ? createEmbedded() : createOnServer(SERVER_URL);
}

async function createOnServer(adminUrl: string): Promise<TestDatabase> {
  const name = `mig_t_${randomBytes(6).toString('hex')}`;
  await admin(adminUrl, (sql) => sql.unsafe(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    kind: 'server',
    async drop() {
      if (dropped) return;
      dropped = true;
      await admin(adminUrl, (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

async function admin(url: string, fn: (sql: postgres.Sql) => Promise<unknown>): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10, fetch_types: false });
  try {
    await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** The data directory of a freshly initialised PGlite, made once per process. */
let template: Promise<File | Blob> | undefined;

async function createEmbedded(): Promise<TestDatabase> {
  template ??= (async () => {
    // Imported here so that server runs never load the wasm build.
    const { PGlite } = await import('@electric-sql/pglite');
    const fresh = await PGlite.create();
    try {
      return await fresh.dumpDataDir('none');
    } finally {
      await fresh.close();
    }
  })();
  const server = await serveEmbeddedPostgres({ loadDataDir: await template, maxConnections: MAX_CONNECTIONS });
  return { url: server.url, kind: 'embedded', drop: () => server.stop() };
}
