/**
 * The five workloads of the issue (and their SQLite twins), each with its floor and contenders.
 * Everything a workload needs (folders, databases at the right state, templates) is made here,
 * before anything is timed.
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

export function noopHeadPg(ctx: Context, count = 100): Workload {
  const f = ctx.small(count);
  const contenders: Contender[] = [];
  const base = freshPg('noop_ours');
  oursSetup(ctx, ['head', '--url', base, '--dir', f.ours]);
  contenders.push({
    label: 'floor: node + postgres.js connect + SELECT 1',
    role: 'floor',
    command: floorConnect(ctx, base),
  });
  contenders.push({ label: BOUND, role: 'bound', command: bound(ctx, 'noop', base, join(f.ours, 'postgres')) });
  for (const s of starts(ctx, ['tsx', 'tsx-cold', 'node-import-tsx']))
    contenders.push({
      label: startLabel(ctx, s),
      role: 'ours',
      command: ours(ctx, s, ['head', '--url', base, '--dir', f.ours]),
    });
  const { nodePgMigrate: npm, dbmate: dbm, dbmateBinary: bin } = ctx.peers;
  if (npm) {
    const url = freshPg('noop_npm');
    run(nodePgMigrate(ctx, npm, url, f.nodePgMigrate, ['up']).argv, ctx.scratch, cleanEnv({ DATABASE_URL: url }));
    contenders.push({
      label: peerLabel(npm),
      role: 'peer',
      command: nodePgMigrate(ctx, npm, url, f.nodePgMigrate, ['up']),
    });
  }
  if (dbm) {
    const url = freshPg('noop_dbmate');
    run(dbmate(ctx, dbm, url, f.dbmate, ['up']).argv, ctx.scratch);
    contenders.push({ label: peerLabel(dbm), role: 'peer', command: dbmate(ctx, dbm, url, f.dbmate, ['up']) });
    if (bin) contenders.push({ label: peerLabel(bin), role: 'peer', command: dbmate(ctx, bin, url, f.dbmate, ['up']) });
  }
  return {
    id: 'noop-head-pg',
    title: `no-op \`head\`, PostgreSQL, ${count} applied`,
    runs: runsShort(ctx),
    warmup: true,
    contenders,
    targets: [{ label: OURS, maxRatio: 1.1 }],
    skipped: [...noBuild(ctx), ...missingPeers(ctx, ['dbmate', 'nodePgMigrate'])],
  };
}

export function noopHeadSqlite(ctx: Context, count = 100): Workload {
  const f = ctx.small(count);
  const contenders: Contender[] = [];
  const file = join(ctx.scratch, 'noop-ours.db');
  removeSqlite(file);
  oursSetup(ctx, ['head', '--url', `sqlite:${file}`, '--dir', f.ours]);
  contenders.push({
    label: 'floor: node + better-sqlite3 open + SELECT 1',
    role: 'floor',
    command: floorConnect(ctx, `sqlite:${file}`),
  });
  for (const s of starts(ctx, ['tsx']))
    contenders.push({
      label: startLabel(ctx, s),
      role: 'ours',
      command: ours(ctx, s, ['head', '--url', `sqlite:${file}`, '--dir', f.ours]),
    });
  const { dbmate: dbm, dbmateBinary: bin } = ctx.peers;
  if (dbm) {
    const db = join(ctx.scratch, 'noop-dbmate.db');
    removeSqlite(db);
    run(dbmate(ctx, dbm, `sqlite:${db}`, f.dbmate, ['up']).argv, ctx.scratch);
    contenders.push({
      label: peerLabel(dbm),
      role: 'peer',
      command: dbmate(ctx, dbm, `sqlite:${db}`, f.dbmate, ['up']),
    });
    if (bin)
      contenders.push({
        label: peerLabel(bin),
        role: 'peer',
        command: dbmate(ctx, bin, `sqlite:${db}`, f.dbmate, ['up']),
      });
  }
  return {
    id: 'noop-head-sqlite',
    title: `no-op \`head\`, SQLite, ${count} applied`,
    runs: runsShort(ctx),
    warmup: true,
    contenders,
    targets: [],
    skipped: [...noBuild(ctx), ...missingPeers(ctx, ['dbmate'])],
  };
}

export function applyPg(ctx: Context, count = 1000): Workload {
  const f = ctx.small(count);
  const script = writeFloorScript(
    join(ctx.scratch, `floor-pg-up-${count}.sql`),
    'postgres',
    f.ours,
    f.migrations,
    'up',
  );
  const contenders: Contender[] = [];
  const fresh = (name: string) => () => void freshPg(name);
  const url = (name: string) => scratchPgUrl(name);
  contenders.push({
    label: 'floor: one psql session, a transaction per file',
    role: 'floor',
    setup: fresh('apply_floor'),
    command: { argv: ['psql', '-X', '-q', '-f', script, url('apply_floor')], cwd: ctx.scratch },
  });
  contenders.push({
    label: BOUND,
    role: 'bound',
    setup: fresh('apply_bound'),
    command: bound(ctx, 'up', url('apply_bound'), join(f.ours, 'postgres')),
  });
  for (const s of starts(ctx))
    contenders.push({
      label: startLabel(ctx, s),
      role: 'ours',
      setup: fresh('apply_ours'),
      command: ours(ctx, s, ['head', '--url', url('apply_ours'), '--dir', f.ours]),
    });
  const { nodePgMigrate: npm, dbmate: dbm } = ctx.peers;
  if (npm)
    contenders.push({
      label: `${peerLabel(npm)} (--no-single-transaction)`,
      role: 'peer',
      setup: fresh('apply_npm'),
      command: nodePgMigrate(ctx, npm, url('apply_npm'), f.nodePgMigrate, ['up', '--no-single-transaction']),
    });
  if (dbm)
    contenders.push({
      label: peerLabel(dbm),
      role: 'peer',
      setup: fresh('apply_dbmate'),
      command: dbmate(ctx, dbm, url('apply_dbmate'), f.dbmate, ['up']),
    });
  return {
    id: 'apply-pg',
    title: `apply ${count} small migrations, PostgreSQL`,
    runs: runsLong(ctx),
    warmup: false,
    contenders,
    targets: [{ label: OURS, maxRatio: 1.05, maxRssMiB: 70 }],
    skipped: [...noBuild(ctx), ...missingPeers(ctx, ['dbmate', 'nodePgMigrate'])],
  };
}

export function applySqlite(ctx: Context, count = 1000): Workload {
  const f = ctx.small(count);
  const script = writeFloorScript(
    join(ctx.scratch, `floor-sqlite-up-${count}.sql`),
    'sqlite',
    f.ours,
    f.migrations,
    'up',
  );
  const db = (name: string) => join(ctx.scratch, `apply-${name}.db`);
  const contenders: Contender[] = [
    {
      label: 'floor: one sqlite3 session, a transaction per file',
      role: 'floor',
      setup: () => removeSqlite(db('floor')),
      command: { argv: ['sqlite3', db('floor'), `.read ${script}`], cwd: ctx.scratch },
    },
  ];
  contenders.push({
    label: BOUND,
    role: 'bound',
    setup: () => removeSqlite(db('bound')),
    command: bound(ctx, 'up', `sqlite:${db('bound')}`, join(f.ours, 'sqlite')),
  });
  for (const s of starts(ctx))
    contenders.push({
      label: startLabel(ctx, s),
      role: 'ours',
      setup: () => removeSqlite(db('ours')),
      command: ours(ctx, s, ['head', '--url', `sqlite:${db('ours')}`, '--dir', f.ours]),
    });
  const dbm = ctx.peers.dbmate;
  if (dbm)
    contenders.push({
      label: peerLabel(dbm),
      role: 'peer',
      setup: () => removeSqlite(db('dbmate')),
      command: dbmate(ctx, dbm, `sqlite:${db('dbmate')}`, f.dbmate, ['up']),
    });
  return {
    id: 'apply-sqlite',
    title: `apply ${count} small migrations, SQLite`,
    runs: runsLong(ctx),
    warmup: false,
    contenders,
    targets: [{ label: OURS, maxRatio: 1.05, maxRssMiB: 70 }],
    skipped: [...noBuild(ctx), ...missingPeers(ctx, ['dbmate'])],
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

export function rollbackPg(ctx: Context, count = 1000): Workload {
  const f = ctx.small(count);
  const script = writeFloorScript(
    join(ctx.scratch, `floor-pg-down-${count}.sql`),
    'postgres',
    f.ours,
    f.migrations,
    'down',
  );
  const contenders: Contender[] = [];
  // Templates, built once by each tool itself; each run starts from a copy.
  const tplOurs = freshPg('tpl_ours');
  oursSetup(ctx, ['head', '--url', tplOurs, '--dir', f.ours]);
  const floorUrl = scratchPgUrl('down_floor');
  const oursUrl = scratchPgUrl('down_ours');
  contenders.push({
    label: 'floor: one psql session, a transaction per file',
    role: 'floor',
    setup: () => void freshPg('down_floor', 'tpl_ours'),
    command: { argv: ['psql', '-X', '-q', '-f', script, floorUrl], cwd: ctx.scratch },
  });
  contenders.push({
    label: BOUND,
    role: 'bound',
    setup: () => void freshPg('down_bound', 'tpl_ours'),
    command: bound(ctx, 'down', scratchPgUrl('down_bound'), join(f.ours, 'postgres')),
  });
  for (const s of starts(ctx))
    contenders.push({
      label: startLabel(ctx, s),
      role: 'ours',
      setup: () => void freshPg('down_ours', 'tpl_ours'),
      command: ours(ctx, s, ['base', '--yes', '--url', oursUrl, '--dir', f.ours]),
    });
  const { nodePgMigrate: npm, dbmateBinary: bin } = ctx.peers;
  const skipped = [...noBuild(ctx), ...missingPeers(ctx, ['dbmate', 'nodePgMigrate'])];
  if (npm) {
    const tpl = freshPg('tpl_npm');
    run(nodePgMigrate(ctx, npm, tpl, f.nodePgMigrate, ['up']).argv, ctx.scratch, cleanEnv({ DATABASE_URL: tpl }));
    const url = scratchPgUrl('down_npm');
    contenders.push({
      label: `${peerLabel(npm)} (down ${count} --no-single-transaction)`,
      role: 'peer',
      setup: () => void freshPg('down_npm', 'tpl_npm'),
      command: nodePgMigrate(ctx, npm, url, f.nodePgMigrate, ['down', String(count), '--no-single-transaction']),
    });
  }
  if (bin && !ctx.quick) {
    const tpl = freshPg('tpl_dbmate');
    run(dbmate(ctx, bin, tpl, f.dbmate, ['up']).argv, ctx.scratch);
    const url = scratchPgUrl('down_dbmate');
    contenders.push({
      label: `${peerLabel(bin)}: ${count} calls of \`rollback\` (1 run)`,
      role: 'peer',
      runs: 1,
      setup: () => void freshPg('down_dbmate', 'tpl_dbmate'),
      command: repeat(dbmate(ctx, bin, url, f.dbmate, ['rollback']), count),
    });
  } else if (bin) skipped.push('dbmate rollback (one migration per call): skipped with --quick');
  return {
    id: 'rollback-pg',
    title: `roll back ${count} in one call, PostgreSQL`,
    runs: runsLong(ctx),
    warmup: false,
    contenders,
    targets: [{ label: OURS, maxRatio: 1.15 }],
    skipped,
  };
}

export function rollbackSqlite(ctx: Context, count = 1000): Workload {
  const f = ctx.small(count);
  const script = writeFloorScript(
    join(ctx.scratch, `floor-sqlite-down-${count}.sql`),
    'sqlite',
    f.ours,
    f.migrations,
    'down',
  );
  const db = (name: string) => join(ctx.scratch, `down-${name}.db`);
  removeSqlite(db('tpl-ours'));
  oursSetup(ctx, ['head', '--url', `sqlite:${db('tpl-ours')}`, '--dir', f.ours]);
  const contenders: Contender[] = [
    {
      label: 'floor: one sqlite3 session, a transaction per file',
      role: 'floor',
      setup: () => copySqlite(db('tpl-ours'), db('floor')),
      command: { argv: ['sqlite3', db('floor'), `.read ${script}`], cwd: ctx.scratch },
    },
  ];
  contenders.push({
    label: BOUND,
    role: 'bound',
    setup: () => copySqlite(db('tpl-ours'), db('bound')),
    command: bound(ctx, 'down', `sqlite:${db('bound')}`, join(f.ours, 'sqlite')),
  });
  for (const s of starts(ctx))
    contenders.push({
      label: startLabel(ctx, s),
      role: 'ours',
      setup: () => copySqlite(db('tpl-ours'), db('ours')),
      command: ours(ctx, s, ['base', '--yes', '--url', `sqlite:${db('ours')}`, '--dir', f.ours]),
    });
  const bin = ctx.peers.dbmateBinary;
  const skipped = [...noBuild(ctx), ...missingPeers(ctx, ['dbmate'])];
  if (bin && !ctx.quick) {
    removeSqlite(db('tpl-dbmate'));
    run(dbmate(ctx, bin, `sqlite:${db('tpl-dbmate')}`, f.dbmate, ['up']).argv, ctx.scratch);
    contenders.push({
      label: `${peerLabel(bin)}: ${count} calls of \`rollback\` (1 run)`,
      role: 'peer',
      runs: 1,
      setup: () => copySqlite(db('tpl-dbmate'), db('dbmate')),
      command: repeat(dbmate(ctx, bin, `sqlite:${db('dbmate')}`, f.dbmate, ['rollback']), count),
    });
  } else if (bin) skipped.push('dbmate rollback (one migration per call): skipped with --quick');
  return {
    id: 'rollback-sqlite',
    title: `roll back ${count} in one call, SQLite`,
    runs: runsLong(ctx),
    warmup: false,
    contenders,
    targets: [{ label: OURS, maxRatio: 1.05 }],
    skipped,
  };
}

/** `history` over a folder of `files` .sql files per dialect (files / 2 migrations), all applied. */
export function historyPg(ctx: Context, files = 10_000): Workload {
  const f = ctx.trivial(files / 2);
  const url = freshPg('hist_ours');
  oursSetup(ctx, ['stamp', 'head', '--url', url, '--dir', f.ours]);
  const contenders: Contender[] = [
    {
      label: 'floor: node + readdir + read the record table + print',
      role: 'floor',
      command: {
        argv: [process.execPath, join(ctx.repo, 'bench/floor-history.cjs'), url, join(f.ours, 'postgres')],
        cwd: ctx.scratch,
      },
    },
  ];
  contenders.push({ label: BOUND, role: 'bound', command: bound(ctx, 'history', url, join(f.ours, 'postgres')) });
  for (const s of starts(ctx, ['tsx']))
    contenders.push({
      label: startLabel(ctx, s),
      role: 'ours',
      command: ours(ctx, s, ['history', '--url', url, '--dir', f.ours]),
    });
  const { nodePgMigrate: npm, dbmate: dbm } = ctx.peers;
  if (npm) {
    const u = freshPg('hist_npm');
    run(
      nodePgMigrate(ctx, npm, u, f.nodePgMigrate, ['up', '--fake', '--no-verbose']).argv,
      ctx.scratch,
      cleanEnv({ DATABASE_URL: u }),
    );
    contenders.push({
      label: `${peerLabel(npm)} (up --dry-run)`,
      role: 'peer',
      command: nodePgMigrate(ctx, npm, u, f.nodePgMigrate, ['up', '--dry-run']),
    });
  }
  if (dbm) {
    const u = freshPg('hist_dbmate');
    // dbmate's own record table (as it creates it), filled directly: it has no `stamp`.
    psql(
      u,
      `CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY);\nINSERT INTO schema_migrations SELECT lpad(i::text, 6, '0') FROM generate_series(1, ${files / 2}) AS i;`,
    );
    contenders.push({
      label: `${peerLabel(dbm)} (status)`,
      role: 'peer',
      command: dbmate(ctx, dbm, u, f.dbmate, ['status']),
    });
  }
  return {
    id: 'history-pg',
    title: `\`history\` with ${files} files (${files / 2} migrations, all applied), PostgreSQL`,
    runs: runsShort(ctx) > 5 ? 9 : 3,
    warmup: true,
    contenders,
    targets: [{ label: OURS, maxRatio: 1.3, maxRssMiB: 80 }],
    skipped: [...noBuild(ctx), ...missingPeers(ctx, ['dbmate', 'nodePgMigrate'])],
  };
}

export function historySqlite(ctx: Context, files = 10_000): Workload {
  const f = ctx.trivial(files / 2);
  const file = join(ctx.scratch, 'hist-ours.db');
  removeSqlite(file);
  oursSetup(ctx, ['stamp', 'head', '--url', `sqlite:${file}`, '--dir', f.ours]);
  const contenders: Contender[] = [
    {
      label: 'floor: node + readdir + read the record table + print',
      role: 'floor',
      command: {
        argv: [process.execPath, join(ctx.repo, 'bench/floor-history.cjs'), `sqlite:${file}`, join(f.ours, 'sqlite')],
        cwd: ctx.scratch,
      },
    },
  ];
  contenders.push({
    label: BOUND,
    role: 'bound',
    command: bound(ctx, 'history', `sqlite:${file}`, join(f.ours, 'sqlite')),
  });
  for (const s of starts(ctx, ['tsx']))
    contenders.push({
      label: startLabel(ctx, s),
      role: 'ours',
      command: ours(ctx, s, ['history', '--url', `sqlite:${file}`, '--dir', f.ours]),
    });
  const dbm = ctx.peers.dbmate;
  if (dbm) {
    const db = join(ctx.scratch, 'hist-dbmate.db');
    removeSqlite(db);
    run(
      ['sqlite3', db],
      ctx.scratch,
      undefined,
      `CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY);\nWITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${files / 2}) INSERT INTO schema_migrations SELECT printf('%06d', i) FROM n;\n`,
    );
    contenders.push({
      label: `${peerLabel(dbm)} (status)`,
      role: 'peer',
      command: dbmate(ctx, dbm, `sqlite:${db}`, f.dbmate, ['status']),
    });
  }
  return {
    id: 'history-sqlite',
    title: `\`history\` with ${files} files (${files / 2} migrations, all applied), SQLite`,
    runs: runsShort(ctx) > 5 ? 9 : 3,
    warmup: true,
    contenders,
    targets: [{ label: OURS, maxRatio: 1.3, maxRssMiB: 80 }],
    skipped: [...noBuild(ctx), ...missingPeers(ctx, ['dbmate'])],
  };
}

export type { Target };
