/**
 * A PgBouncer of a test's own, in front of the server TEST_POSTGRES_URL names (its host and
 * port read from the URL, never assumed), on a free port, run as the postgres user (PgBouncer
 * refuses root), stopped by its pid. Debian's package: `apt-get install -y pgbouncer`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';

export const PGBOUNCER = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find(
  (p) => spawnSync(p, ['--version']).status === 0,
);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface Bouncer {
  port: number;
  /** `url` (a TEST_POSTGRES_URL-like URL) with its host and port replaced by the bouncer's. */
  through(url: string): string;
  stop(): Promise<void>;
}

/**
 * Start one in `mode`, with `ignore_startup_parameters = extra_float_digits,options` (a common
 * setting: the `options` startup parameter is then dropped silently).
 */
export async function startBouncer(
  server: string,
  mode: 'session' | 'transaction',
  /** More [pgbouncer] lines, or other values for those above (a smaller pool, round robin). */
  settings: Record<string, string | number> = {},
): Promise<Bouncer> {
  const target = new URL(server);
  const dir = mkdtempSync(join(tmpdir(), 'mig-bouncer-'));
  chmodSync(dir, 0o755);
  const port = await freePort();
  writeFileSync(join(dir, 'userlist.txt'), '"postgres" ""\n');
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    `[databases]
* = host=${target.hostname} port=${target.port || 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
auth_file = ${join(dir, 'userlist.txt')}
${Object.entries({
  pool_mode: mode,
  max_client_conn: 200,
  default_pool_size: 10,
  ignore_startup_parameters: 'extra_float_digits,options',
  ...settings,
})
  .map(([k, v]) => `${k} = ${v}`)
  .join('\n')}
`,
  );
  const child: ChildProcess = spawn(PGBOUNCER as string, ['-u', 'postgres', join(dir, 'pgbouncer.ini')], {
    stdio: 'ignore',
  });
  const through = (url: string) => {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(port);
    return u.toString();
  };
  for (let i = 0; ; i++) {
    const probe = postgres(through(server), { max: 1, connect_timeout: 1, onnotice: () => {} });
    try {
      await probe`SELECT 1`;
      break;
    } catch (error) {
      if (i > 50) {
        if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
        throw error;
      }
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      await probe.end({ timeout: 1 });
    }
  }
  return {
    port,
    through,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
