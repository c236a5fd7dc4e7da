/**
 * The five workloads of the issue, each with its floor and contenders, written once for both
 * dialects: what differs between them (scratch databases, the floor's CLI, the peers) is a
 * `Side`. Everything a workload needs (folders, databases at the right state, templates) is made
 * here, before anything is timed.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { copySqlite, freshPg, psql, removeSqlite, scratchPgUrl } from './db.ts';
import type { Contender, Target, Workload } from './engine.ts';
import { writeFloorScript } from './floors.ts';
import type { Folder } from './folders.ts';
import { cleanEnv, run, type Command } from './measure.ts';
import type { Peer, Peers } from './peers.ts';

export interface Context {
  repo: string;
  scratch: string;
  peers: Peers;
  /** `npm run build` succeeded: dist/migrate.cjs is current. */
  compiled: boolean;
  quick: boolean;
  /** BENCH_ALSO: another checkout (built with `npm run build`) timed beside this one, to try a fix. */
  also?: string;
  /** Folders by migration count: `small` ones run, `trivial` ones are only listed. */
  small: (count: number) => Folder;
  trivial: (count: number) => Folder;
}

/**
 * The compiled CLI of a checkout: `npm run build`'s bundle, or the per-module build of
 * checkouts older than the bundle (so BENCH_ALSO can time one against the other).
 */
export function compiledCli(root: string): string | undefined {
  return ['dist/migrate.cjs', 'dist/scripts/migrate.js'].map((p) => join(root, p)).find((p) => existsSync(p));
}

type Start = 'dist' | 'tsx' | 'tsx-cold' | 'node-import-tsx' | 'also';

const START_LABEL: Record<Start, string> = {
  dist: 'sql-migrate: node dist/migrate.cjs',
  tsx: 'sql-migrate: tsx scripts/migrate.ts',
  'tsx-cold': 'sql-migrate: tsx, no transform cache (fresh container)',
  'node-import-tsx': 'sql-migrate: node --import tsx (one process)',
  also: 'sql-migrate: BENCH_ALSO checkout',
};

/** The BENCH_ALSO row says which of its builds was timed: a reused checkout may hold both. */
function startLabel(ctx: Context, s: Start): string {
  return s === 'also'
    ? `${START_LABEL.also}, node ${compiledCli(ctx.also ?? '')?.slice((ctx.also ?? '').length + 1)}`
    : START_LABEL[s];
}
export const OURS = START_LABEL.dist;
export const OURS_TSX = START_LABEL.tsx;

function ours(ctx: Context, start: Start, args: string[]): Command {
  const script =
    start === 'also'
      ? (compiledCli(ctx.also ?? '') ?? '')
      : join(ctx.repo, start === 'dist' ? 'dist/migrate.cjs' : 'scripts/migrate.ts');
  const cwd = ctx.scratch; // no .env of the repo's gets read
  switch (start) {
    case 'dist':
    case 'also':
      return { argv: [process.execPath, script, ...args], cwd };
    case 'tsx':
      return { argv: [join(ctx.repo, 'node_modules/.bin/tsx'), script, ...args], cwd };
    case 'tsx-cold':
      return {
        argv: [join(ctx.repo, 'node_modules/.bin/tsx'), script, ...args],
        cwd,
        env: cleanEnv({ TSX_DISABLE_CACHE: '1' }),
      };
    case 'node-import-tsx':
      return {
        argv: [
          process.execPath,
          '--import',
          pathToFileURL(join(ctx.repo, 'node_modules/tsx/dist/loader.mjs')).href,
          script,
          ...args,
        ],
        cwd,
      };
  }
}

/** Runs a setup step of ours (not timed): dist when built, tsx otherwise. */
function oursSetup(ctx: Context, args: string[]): void {
  const c = ours(ctx, ctx.compiled ? 'dist' : 'tsx', args);
  run(c.argv, c.cwd, c.env);
}

function starts(ctx: Context, extra: Start[] = []): Start[] {
  return [...(ctx.compiled ? (['dist'] as Start[]) : []), ...(ctx.also ? (['also'] as Start[]) : []), ...extra];
}

export const BOUND = 'lower bound: node doing only what the runner must (bench/bounds.cjs)';
const bound = (ctx: Context, mode: string, url: string, folder: string): Command => ({
  argv: [process.execPath, join(ctx.repo, 'bench/bounds.cjs'), mode, url, folder],
  cwd: ctx.scratch,
});

const floorConnect = (ctx: Context, url: string): Command => ({
  argv: [process.execPath, join(ctx.repo, 'bench/floor-connect.cjs'), url],
  cwd: ctx.scratch,
});

/** dbmate speaks lib/pq, which wants TLS unless told otherwise. */
const dbmateUrl = (url: string) =>
  url.startsWith('postgres') ? `${url}${url.includes('?') ? '&' : '?'}sslmode=disable` : url;

function dbmate(ctx: Context, peer: Peer, url: string, dir: string, args: string[]): Command {
  return { argv: [...peer.argv, '--no-dump-schema', '-u', dbmateUrl(url), '-d', dir, ...args], cwd: ctx.scratch };
}

function nodePgMigrate(ctx: Context, peer: Peer, url: string, dir: string, args: string[]): Command {
  return { argv: [...peer.argv, ...args, '-m', dir], cwd: ctx.scratch, env: cleanEnv({ DATABASE_URL: url }) };
}

const peerLabel = (p: Peer) => `${p.name} ${p.version}`;

function missingPeers(ctx: Context, names: Array<'dbmate' | 'nodePgMigrate'>): string[] {
  const out: string[] = [];
  if (names.includes('dbmate') && !ctx.peers.dbmate) out.push('dbmate: unavailable');
  if (names.includes('nodePgMigrate') && !ctx.peers.nodePgMigrate) out.push('node-pg-migrate: unavailable');
  return out;
}

function noBuild(ctx: Context): string[] {
  return ctx.compiled ? [] : ['compiled CLI: `npm run build` failed'];
}

const runsShort = (ctx: Context) => (ctx.quick ? 5 : 31); // medians of 15 no-op runs swung by ±0.03×
const runsLong = (ctx: Context) => (ctx.quick ? 2 : 7); // medians of 5 one-second runs swung by ±0.05×

export type Dialect = 'postgres' | 'sqlite';
type PeerKind = 'nodePgMigrate' | 'dbmate';

/** What the twin workloads need to know of a dialect: its scratch databases, its CLI and its peers. */
interface Side {
  dialect: Dialect;
  /** In workload ids and file names: `pg`, `sqlite`. */
  id: string;
  name: string;
  /** The floor's CLI: one session of it runs a script. */
  tool: string;
  /** The URL of scratch database `name`. */
  url(name: string): string;
  /** Scratch database `name` emptied, or made a copy of scratch database `from`; its URL. */
  reset(name: string, from?: string): string;
  /** The argv of one session of `tool` running `script` on `url`. */
  session(script: string, url: string): string[];
  /** Runs `sql` on `url` (untimed setup). */
  exec(url: string, sql: string): void;
  /** The peers that speak this dialect. */
  peers: PeerKind[];
}

function side(ctx: Context, dialect: Dialect): Side {
  if (dialect === 'postgres') {
    return {
      dialect,
      id: 'pg',
      name: 'PostgreSQL',
      tool: 'psql',
      url: scratchPgUrl,
      reset: (name, from) => freshPg(name, from),
      session: (script, url) => ['psql', '-X', '-q', '-f', script, url],
      exec: (url, sql) => void psql(url, sql),
      peers: ['nodePgMigrate', 'dbmate'],
    };
  }
  const file = (name: string) => join(ctx.scratch, `${name}.db`);
  const path = (url: string) => url.slice('sqlite:'.length);
  return {
    dialect,
    id: 'sqlite',
    name: 'SQLite',
    tool: 'sqlite3',
    url: (name) => `sqlite:${file(name)}`,
    reset: (name, from) => {
      if (from) copySqlite(file(from), file(name));
      else removeSqlite(file(name));
      return `sqlite:${file(name)}`;
    },
    session: (script, url) => ['sqlite3', path(url), `.read ${script}`],
    exec: (url, sql) => void run(['sqlite3', path(url)], ctx.scratch, undefined, sql),
    peers: ['dbmate'],
  };
}

/** A peer's command on `url`, with the folder `f` in that peer's format. */
function peerCommand(ctx: Context, kind: PeerKind, f: Folder, url: string, args: string[]): Command {
  const peer = ctx.peers[kind] as Peer;
  return kind === 'dbmate'
    ? dbmate(ctx, peer, url, f.dbmate, args)
    : nodePgMigrate(ctx, peer, url, f.nodePgMigrate, args);
}

/** Untimed: a peer brings a database to a state by itself (its own `up`, say). */
function peerSetup(ctx: Context, kind: PeerKind, f: Folder, url: string, args: string[]): void {
  const c = peerCommand(ctx, kind, f, url, args);
  run(c.argv, c.cwd, c.env);
}

/** The dialect's peers that are installed. */
const present = (ctx: Context, d: Side) => d.peers.filter((k) => ctx.peers[k]);

const skippedOf = (ctx: Context, d: Side) => [...noBuild(ctx), ...missingPeers(ctx, d.peers)];

/** `head` on a database where all `count` revisions are applied already: start-up, lock, record, nothing to do. */
export function noopHead(ctx: Context, dialect: Dialect, count = 100): Workload {
  const d = side(ctx, dialect);
  const f = ctx.small(count);
  const base = d.reset('noop_ours');
  oursSetup(ctx, ['head', '--url', base, '--dir', f.ours]);
  const opens = dialect === 'postgres' ? 'postgres.js connect' : 'better-sqlite3 open';
  const contenders: Contender[] = [
    { label: `floor: node + ${opens} + SELECT 1`, role: 'floor', command: floorConnect(ctx, base) },
  ];
  // bounds.cjs's no-op takes the lock as the runner does only on PostgreSQL.
  if (dialect === 'postgres')
    contenders.push({ label: BOUND, role: 'bound', command: bound(ctx, 'noop', base, join(f.ours, dialect)) });
  const extra: Start[] = dialect === 'postgres' ? ['tsx', 'tsx-cold', 'node-import-tsx'] : ['tsx'];
  for (const s of starts(ctx, extra))
    contenders.push({
      label: startLabel(ctx, s),
      role: 'ours',
      command: ours(ctx, s, ['head', '--url', base, '--dir', f.ours]),
    });
  for (const kind of present(ctx, d)) {
    const url = d.reset(`noop_${kind.toLowerCase()}`);
    peerSetup(ctx, kind, f, url, ['up']);
    const peer = ctx.peers[kind] as Peer;
    contenders.push({ label: peerLabel(peer), role: 'peer', command: peerCommand(ctx, kind, f, url, ['up']) });
    const bin = ctx.peers.dbmateBinary;
    if (kind === 'dbmate' && bin)
      contenders.push({ label: peerLabel(bin), role: 'peer', command: dbmate(ctx, bin, url, f.dbmate, ['up']) });
  }
  return {
    id: `noop-head-${d.id}`,
    title: `no-op \`head\`, ${d.name}, ${count} applied`,
    runs: runsShort(ctx),
    warmup: true,
    contenders,
    targets: dialect === 'postgres' ? [{ label: OURS, maxRatio: 1.1 }] : [],
    skipped: skippedOf(ctx, d),
  };
}

/** The floor and the lower bound, each on its own scratch database prepared by `fresh` before every run. */
function floorAndBound(
  ctx: Context,
  d: Side,
  f: Folder,
  direction: 'up' | 'down',
  fresh: (name: string) => void,
): Contender[] {
  const count = f.migrations.length;
  const script = writeFloorScript(
    join(ctx.scratch, `floor-${d.id}-${direction}-${count}.sql`),
    d.dialect,
    f.ours,
    f.migrations,
    direction,
  );
  const name = direction === 'up' ? 'apply' : 'down';
  return [
    {
      label: `floor: one ${d.tool} session, a transaction per file`,
      role: 'floor',
      setup: () => fresh(`${name}_floor`),
      command: { argv: d.session(script, d.url(`${name}_floor`)), cwd: ctx.scratch },
    },
    {
      label: BOUND,
      role: 'bound',
      setup: () => fresh(`${name}_bound`),
      command: bound(ctx, direction, d.url(`${name}_bound`), join(f.ours, d.dialect)),
    },
  ];
}

/** `head` on an empty database: `count` small migrations, each in its own transaction. */
export function apply(ctx: Context, dialect: Dialect, count = 1000): Workload {
  const d = side(ctx, dialect);
  const f = ctx.small(count);
  const fresh = (name: string) => void d.reset(name);
  const contenders = floorAndBound(ctx, d, f, 'up', fresh);
  // The BENCH_ALSO build gets its own database: dropping the one ours just filled would slow it.
  const db = (s: Start) => (s === 'also' ? 'apply_also' : 'apply_ours');
  for (const s of starts(ctx))
    contenders.push({
      label: startLabel(ctx, s),
      role: 'ours',
      setup: () => fresh(db(s)),
      command: ours(ctx, s, ['head', '--url', d.url(db(s)), '--dir', f.ours]),
    });
  for (const kind of present(ctx, d)) {
    const name = `apply_${kind.toLowerCase()}`;
    // node-pg-migrate runs them all in one transaction unless told otherwise.
    const args = kind === 'nodePgMigrate' ? ['up', '--no-single-transaction'] : ['up'];
    const peer = ctx.peers[kind] as Peer;
    contenders.push({
      label: `${peerLabel(peer)}${kind === 'nodePgMigrate' ? ' (--no-single-transaction)' : ''}`,
      role: 'peer',
      setup: () => fresh(name),
      command: peerCommand(ctx, kind, f, d.url(name), args),
    });
  }
  return {
    id: `apply-${d.id}`,
    title: `apply ${count} small migrations, ${d.name}`,
    runs: runsLong(ctx),
    warmup: false,
    contenders,
    targets: [{ label: OURS, maxRatio: 1.05, maxRssMiB: 70 }],
    skipped: skippedOf(ctx, d),
  };
}

/** `sh -c` running one command `times` times: dbmate rolls back one migration per call. */
function repeat(cmd: Command, times: number): Command {
  return {
    argv: [
      'sh',
      '-c',
      `i=0; while [ $i -lt ${times} ]; do "$@" >/dev/null || exit 1; i=$((i+1)); done`,
      'sh',
      ...cmd.argv,
    ],
    cwd: cmd.cwd,
    env: cmd.env,
  };
}

/** `base --yes` on a database where all `count` are applied: every down, in one call. */
export function rollback(ctx: Context, dialect: Dialect, count = 1000): Workload {
  const d = side(ctx, dialect);
  const f = ctx.small(count);
  // Templates, built once by each tool itself; each run starts from a copy.
  oursSetup(ctx, ['head', '--url', d.reset('tpl_ours'), '--dir', f.ours]);
  const contenders = floorAndBound(ctx, d, f, 'down', (name) => void d.reset(name, 'tpl_ours'));
  const db = (s: Start) => (s === 'also' ? 'down_also' : 'down_ours');
  for (const s of starts(ctx))
    contenders.push({
      label: startLabel(ctx, s),
      role: 'ours',
      setup: () => void d.reset(db(s), 'tpl_ours'),
      command: ours(ctx, s, ['base', '--yes', '--url', d.url(db(s)), '--dir', f.ours]),
    });
  const skipped = skippedOf(ctx, d);
  if (present(ctx, d).includes('nodePgMigrate')) {
    peerSetup(ctx, 'nodePgMigrate', f, d.reset('tpl_npm'), ['up']);
    contenders.push({
      label: `${peerLabel(ctx.peers.nodePgMigrate as Peer)} (down ${count} --no-single-transaction)`,
      role: 'peer',
      setup: () => void d.reset('down_npm', 'tpl_npm'),
      command: peerCommand(ctx, 'nodePgMigrate', f, d.url('down_npm'), [
        'down',
        String(count),
        '--no-single-transaction',
      ]),
    });
  }
  const bin = ctx.peers.dbmateBinary;
  if (bin && !ctx.quick) {
    run(dbmate(ctx, bin, d.reset('tpl_dbmate'), f.dbmate, ['up']).argv, ctx.scratch);
    contenders.push({
      label: `${peerLabel(bin)}: ${count} calls of \`rollback\` (1 run)`,
      role: 'peer',
      runs: 1,
      setup: () => void d.reset('down_dbmate', 'tpl_dbmate'),
      command: repeat(dbmate(ctx, bin, d.url('down_dbmate'), f.dbmate, ['rollback']), count),
    });
  } else if (bin) skipped.push('dbmate rollback (one migration per call): skipped with --quick');
  return {
    id: `rollback-${d.id}`,
    title: `roll back ${count} in one call, ${d.name}`,
    runs: runsLong(ctx),
    warmup: false,
    contenders,
    targets: [{ label: OURS, maxRatio: dialect === 'postgres' ? 1.15 : 1.05 }],
    skipped,
  };
}

/** `history` over a folder of `files` .sql files per dialect (files / 2 migrations), all applied. */
export function history(ctx: Context, dialect: Dialect, files = 10_000): Workload {
  const d = side(ctx, dialect);
  const f = ctx.trivial(files / 2);
  const url = d.reset('hist_ours');
  oursSetup(ctx, ['stamp', 'head', '--url', url, '--dir', f.ours]);
  const folder = join(f.ours, dialect);
  const contenders: Contender[] = [
    {
      label: 'floor: node + readdir + read the record table + print',
      role: 'floor',
      command: { argv: [process.execPath, join(ctx.repo, 'bench/floor-history.cjs'), url, folder], cwd: ctx.scratch },
    },
    { label: BOUND, role: 'bound', command: bound(ctx, 'history', url, folder) },
  ];
  for (const s of starts(ctx, ['tsx']))
    contenders.push({
      label: startLabel(ctx, s),
      role: 'ours',
      command: ours(ctx, s, ['history', '--url', url, '--dir', f.ours]),
    });
  for (const kind of present(ctx, d)) {
    const u = d.reset(`hist_${kind.toLowerCase()}`);
    const peer = ctx.peers[kind] as Peer;
    if (kind === 'nodePgMigrate') {
      peerSetup(ctx, kind, f, u, ['up', '--fake', '--no-verbose']);
      contenders.push({
        label: `${peerLabel(peer)} (up --dry-run)`,
        role: 'peer',
        command: peerCommand(ctx, kind, f, u, ['up', '--dry-run']),
      });
    } else {
      // dbmate's own record table (as it creates it), filled directly: it has no `stamp`.
      const versions = f.migrations.map((m) => `('${m.revision}')`).join(',\n');
      d.exec(
        u,
        `CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY);\nINSERT INTO schema_migrations VALUES\n${versions};\n`,
      );
      contenders.push({
        label: `${peerLabel(peer)} (status)`,
        role: 'peer',
        command: peerCommand(ctx, kind, f, u, ['status']),
      });
    }
  }
  return {
    id: `history-${d.id}`,
    title: `\`history\` with ${files} files (${files / 2} migrations, all applied), ${d.name}`,
    runs: runsShort(ctx) > 5 ? 9 : 3,
    warmup: true,
    contenders,
    targets: [{ label: OURS, maxRatio: 1.3, maxRssMiB: 80 }],
    skipped: skippedOf(ctx, d),
  };
}

export type { Target };
