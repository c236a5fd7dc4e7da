/**
 * Peers, installed on demand into a folder outside the project (never project dependencies):
 * BENCH_PEERS_DIR, or <tmpdir>/sql-migrate-bench-peers, kept between runs. A peer that fails to
 * install or start is reported as unavailable; the bench goes on without it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Peer {
  name: string;
  version: string;
  /** How to start it: argv before the tool's own arguments. */
  argv: string[];
}

export interface Peers {
  dbmate?: Peer;
  /** dbmate's Go binary, started directly (the npm package's `dbmate` is a node launcher for it). */
  dbmateBinary?: Peer;
  nodePgMigrate?: Peer;
  unavailable: string[];
}

const SPECS = { dbmate: 'dbmate@^2', 'node-pg-migrate': 'node-pg-migrate@^9', pg: 'pg@^8' } as const;

export const PEERS_DIR = process.env.BENCH_PEERS_DIR ?? join(tmpdir(), 'sql-migrate-bench-peers');

function versionOf(dir: string, pkg: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(dir, 'node_modules', pkg, 'package.json'), 'utf8')) as { version?: string })
      .version;
  } catch {
    return undefined;
  }
}

function install(specs: string[]): string | undefined {
  try {
    mkdirSync(PEERS_DIR, { recursive: true });
    const manifest = join(PEERS_DIR, 'package.json');
    if (!existsSync(manifest))
      writeFileSync(manifest, JSON.stringify({ name: 'sql-migrate-bench-peers', private: true }, null, 2) + '\n');
  } catch (error) {
    return (error as Error).message;
  }
  const r = spawnSync(
    'npm',
    ['install', '--prefix', PEERS_DIR, '--no-audit', '--no-fund', '--loglevel=error', '--fetch-retries=1', ...specs],
    { encoding: 'utf8', timeout: 180_000 },
  );
  return r.status === 0
    ? undefined
    : (r.error?.message ?? (r.stderr || r.stdout).trim().split('\n').slice(0, 2).join(' '));
}

/** A peer counts only once it answers `--version`. */
function works(argv: string[]): boolean {
  const r = spawnSync(argv[0] as string, [...argv.slice(1), '--version'], { encoding: 'utf8', timeout: 30_000 });
  return r.status === 0;
}

export function preparePeers(wanted: boolean): Peers {
  const peers: Peers = { unavailable: [] };
  if (!wanted) {
    peers.unavailable.push('peers skipped (--no-peers)');
    return peers;
  }
  const missing = Object.entries(SPECS).filter(([pkg]) => versionOf(PEERS_DIR, pkg) === undefined);
  if (missing.length > 0) {
    process.stderr.write(`installing ${missing.map(([, s]) => s).join(', ')} into ${PEERS_DIR} …\n`);
    // All at once first; one at a time if that fails, so one bad package does not cost the others.
    if (install(missing.map(([, s]) => s)) !== undefined) {
      for (const [pkg, spec] of missing) {
        const why = install([spec]);
        if (why) peers.unavailable.push(`${pkg}: npm install failed (${why})`);
      }
    }
  }
  const nm = join(PEERS_DIR, 'node_modules');
  const dbmateVersion = versionOf(PEERS_DIR, 'dbmate');
  if (dbmateVersion) {
    const launcher = [process.execPath, join(nm, 'dbmate', 'dist', 'cli.js')];
    if (works(launcher)) peers.dbmate = { name: 'dbmate (npm)', version: dbmateVersion, argv: launcher };
    else peers.unavailable.push('dbmate: installed but does not start');
    const scope = join(nm, '@dbmate');
    const platform = existsSync(scope)
      ? readdirSync(scope).find((d) => existsSync(join(scope, d, 'bin', 'dbmate')))
      : undefined;
    if (platform && works([join(scope, platform, 'bin', 'dbmate')])) {
      peers.dbmateBinary = {
        name: 'dbmate (Go binary)',
        version: dbmateVersion,
        argv: [join(scope, platform, 'bin', 'dbmate')],
      };
    }
  }
  const npmVersion = versionOf(PEERS_DIR, 'node-pg-migrate');
  if (npmVersion && versionOf(PEERS_DIR, 'pg')) {
    const bin = join(nm, 'node-pg-migrate', 'bin', 'node-pg-migrate.js');
    const argv = [process.execPath, bin];
    if (existsSync(bin) && works(argv)) peers.nodePgMigrate = { name: 'node-pg-migrate', version: npmVersion, argv };
    else peers.unavailable.push('node-pg-migrate: installed but does not start');
  }
  return peers;
}
