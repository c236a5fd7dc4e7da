/**
 * An in-memory PostgreSQL (PGlite: PostgreSQL compiled to wasm) served over TCP on 127.0.0.1 and
 * a free port, so that postgres.js and psql reach it like any server. `check` proves the
 * PostgreSQL folder on one when no server URL is given, `schema` builds on one then, and
 * `drift` when the live role may not create a scratch database; the build warms the compiled CLI's code
 * cache on one; the tests use it on a machine without a PostgreSQL server (test/support/postgres.ts
 * says what it can and cannot do: one session for every connection, one database).
 *
 * It runs in this process: a client in another process is served only while this process's
 * event loop is free, so spawn clients asynchronously, never with spawnSync/execFileSync.
 * PGlite is loaded only when called, never on the migrate path.
 */
import { DataDirCache } from './embedded-cache.ts';
import type { MigrationFailed } from '../core/errors.ts';

export interface EmbeddedPostgres {
  url: string;
  /** What it is, for people: `embedded PostgreSQL 18.6 (PGlite 0.5.14, in this process)`. */
  label: string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** A data directory from `dumpDataDir()`: loading one takes ~0.3 s where initdb takes ~2 s. */
  loadDataDir?: File | Blob;
  /** Connections served at once (pglite-socket's default is 1). */
  maxConnections: number;
}

type PGliteModule = typeof import('@electric-sql/pglite');
type SocketModule = typeof import('@electric-sql/pglite-socket');

/**
 * The compiled CLI is one CommonJS bundle run as a script: it has require() and no import().
 * From source it is the other way round. A name held in a variable keeps the bundler from
 * pulling PGlite (and its wasm) into the bundle every run loads.
 */
async function load<T>(name: string): Promise<T> {
  return typeof require === 'function' ? (require(name) as T) : ((await import(name)) as T);
}

export async function serveEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedPostgres> {
  const { PGlite } = await load<PGliteModule>('@electric-sql/pglite');
  const { PGLiteSocketServer } = await load<SocketModule>('@electric-sql/pglite-socket');
  const db = options.loadDataDir ? await PGlite.create({ loadDataDir: options.loadDataDir }) : await fresh(PGlite);
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: options.maxConnections });
  let label = 'embedded PostgreSQL (PGlite, in this process)';
  try {
    const m = /^PostgreSQL (\S+) \((PGlite [^)]+)\)/.exec(await versionOf(db));
    if (m) label = `embedded PostgreSQL ${m[1]} (${m[2]}, in this process)`;
    await server.start();
  } catch (error) {
    await db.close();
    throw error;
  }
  let stopped = false;
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    label,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.stop();
      await db.close();
    },
  };
}

/**
 * A fresh instance, from the dump of one made earlier when this user has it (embedded-cache.ts
 * checks it before PGlite sees a byte); one another PGlite made, or that will not load, is made
 * again.
 */
async function fresh(PGlite: PGliteModule['PGlite']): Promise<InstanceType<PGliteModule['PGlite']>> {
  const cache = DataDirCache.open();
  const cached = cache?.read();
  if (cached !== undefined) {
    try {
      const db = await PGlite.create({ loadDataDir: cached.tar });
      if ((await versionOf(db)) === cached.version) return db;
      await db.close();
    } catch {
      // Not loadable by this PGlite: made again below.
    }
    cache?.drop();
  }
  const made = await PGlite.create();
  if (cache === undefined) return made;
  try {
    cache.write(Buffer.from(await (await made.dumpDataDir('none')).arrayBuffer()), await versionOf(made));
  } catch {
    // No copy this time: the instance itself is fine.
  }
  return made;
}

async function versionOf(db: InstanceType<PGliteModule['PGlite']>): Promise<string> {
  const [row] = (await db.query<{ v: string }>('SELECT version() AS v')).rows;
  return row?.v ?? '';
}

/** The extension a file asked for that the server does not have (PGlite ships few, and loads none unasked). */
export function lackedExtension(failed: MigrationFailed): string | undefined {
  if (failed.info.sqlState !== '0A000' && failed.info.sqlState !== '58P01') return undefined;
  return /^extension "([^"]+)" is not available/.exec(failed.message)?.[1];
}

export function embeddedLacks(extension: string, dialect: string): string {
  return `needs the extension "${extension}", which the embedded PostgreSQL (PGlite) does not have: this file and the revisions after it were not proven on ${dialect}. Give check a PostgreSQL server that has it (--url postgres://…) to prove them.`;
}
