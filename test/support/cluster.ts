/**
 * A PostgreSQL primary and a hot standby of its own for a test file: Debian's `initdb`,
 * `pg_basebackup -R -c fast` and `pg_ctl`, on free loopback ports, data directories in a temp
 * directory that the `postgres` user owns (the server refuses to run as root). Never the shared
 * server at TEST_POSTGRES_URL. `remove()` stops both and deletes everything, also after a failure.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';

/** Debian's server binaries: 15 as in the issue, else the newest version installed. */
export const BIN = (() => {
  const root = '/usr/lib/postgresql';
  if (existsSync(join(root, '15', 'bin', 'initdb'))) return join(root, '15', 'bin');
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  return join(root, newest ?? '15', 'bin');
})();
const AS_ROOT = process.getuid?.() === 0;

/** Why a cluster cannot be built here, or undefined when it can. */
export function clusterUnavailable(): string | undefined {
  if (!existsSync(join(BIN, 'initdb'))) return `${BIN}/initdb is not installed (postgresql-15)`;
  if (process.platform !== 'linux') return 'needs Linux (runuser, Debian paths)';
  if (AS_ROOT) {
    try {
      execFileSync('id', ['-u', 'postgres']);
    } catch {
      return 'no postgres user to run the servers as';
    }
  }
  return undefined;
}

/** A PostgreSQL binary, as the postgres user when we are root. */
export function pg(tool: string, args: string[]): Promise<string> {
  const file = join(BIN, tool);
  const [command, argv] = AS_ROOT ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
  return new Promise((resolve, reject) =>
    execFile(command, argv, (error, stdout, stderr) =>
      error ? reject(new Error(`${tool} ${args.join(' ')}: ${stderr || String(error)}`)) : resolve(stdout),
    ),
  );
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface Node {
  port: number;
  data: string;
  /** `postgres://postgres@127.0.0.1:<port>/<database>`. */
  url(database?: string): string;
  /** `127.0.0.1:<port>`. */
  hostPort: string;
  start(): Promise<void>;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  running: boolean;
}

export interface Cluster {
  primary: Node;
  standby: Node;
  /** Removes both servers and their data. */
  remove(): Promise<void>;
}

function node(root: string, name: string, port: number): Node {
  const data = join(root, name);
  const options = ['-o', `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off`];
  const n: Node = {
    port,
    data,
    hostPort: `127.0.0.1:${port}`,
    running: false,
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async start() {
      await pg('pg_ctl', ['-D', data, '-l', join(root, `${name}.log`), '-w', '-t', '60', ...options, 'start']);
      n.running = true;
    },
    async stop(mode = 'fast') {
      if (!n.running) return;
      n.running = false;
      await pg('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']).catch(() => {});
    },
  };
  return n;
}

/** A primary (trust auth, fsync off) and a hot standby streaming from it, both running. */
export async function createCluster(): Promise<Cluster> {
  const root = mkdtempSync(join(tmpdir(), 'mig-failover-'));
  if (AS_ROOT)
    chownSync(root, Number(execFileSync('id', ['-u', 'postgres'])), Number(execFileSync('id', ['-g', 'postgres'])));
  const primary = node(root, 'primary', await freePort());
  const standby = node(root, 'standby', await freePort());
  const cluster: Cluster = {
    primary,
    standby,
    async remove() {
      await standby.stop('immediate');
      await primary.stop('immediate');
      rmSync(root, { recursive: true, force: true });
    },
  };
  try {
    await pg('initdb', ['-D', primary.data, '-U', 'postgres', '--auth=trust', '--no-sync']);
    await primary.start();
    await pg('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      String(primary.port),
      '-U',
      'postgres',
      '-D',
      standby.data,
      '-R',
      '-c',
      'fast',
      '--no-sync',
    ]);
    await standby.start();
    return cluster;
  } catch (error) {
    await cluster.remove();
    throw error;
  }
}

/** Runs `fn` with a client of `url`, then ends it. */
export async function withClient<T>(url: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, fetch_types: false, connect_timeout: 10 });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Waits until the standby has replayed everything the primary has written so far. */
export async function caughtUp(cluster: Cluster): Promise<void> {
  const [row] = await withClient(cluster.primary.url(), (sql) => sql`SELECT pg_current_wal_lsn()::text AS lsn`);
  const lsn = row?.lsn as string;
  await withClient(cluster.standby.url(), async (sql) => {
    for (let i = 0; i < 600; i++) {
      const [r] = await sql`SELECT pg_last_wal_replay_lsn() >= ${lsn}::pg_lsn AS done`;
      if (r?.done === true) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`the standby did not replay up to ${lsn} within 30 s`);
  });
}
