/**
 * An in-memory PostgreSQL (PGlite: PostgreSQL compiled to wasm) served over TCP on 127.0.0.1 and
 * a free port, so that postgres.js and psql reach it like any server. The build warms the
 * compiled CLI's code cache on it; the tests use it on a machine without a PostgreSQL server
 * (test/support/postgres.ts says what it can and cannot do).
 *
 * It runs in this process: a client in another process is served only while this process's
 * event loop is free, so spawn clients asynchronously, never with spawnSync/execFileSync.
 * PGlite is a devDependency, loaded only when called.
 */
export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** A data directory from `dumpDataDir()`: loading one takes ~0.3 s where initdb takes ~2 s. */
  loadDataDir?: File | Blob;
  /** Connections served at once (pglite-socket's default is 1). */
  maxConnections: number;
}

export async function serveEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedPostgres> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create(options.loadDataDir ? { loadDataDir: options.loadDataDir } : {});
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: options.maxConnections });
  try {
    await server.start();
  } catch (error) {
    await db.close();
    throw error;
  }
  let stopped = false;
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.stop();
      await db.close();
    },
  };
}
