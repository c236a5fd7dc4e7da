/**
 * `npm run bench`: times the runner against its floors and peers, whole processes, several runs.
 *
 *   npm run bench                      every workload (about 8 minutes on 2 cores)
 *   npm run bench -- --quick           fewer runs, no one-call-per-migration dbmate rollbacks
 *   npm run bench -- --only=apply-pg,noop-head-pg
 *   npm run bench -- --no-peers        floors and sql-migrate only (no npm install)
 *
 * Environment: BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres; the bench
 * creates and drops its own bench_<pid>_* databases there), BENCH_PEERS_DIR (where dbmate and
 * node-pg-migrate get installed), BENCH_QUICK=1 (same as --quick), BENCH_ALSO=<another checkout,
 * built> (times its compiled CLI beside this one: to try a fix), BENCH_APPLY (default 1000) and
 * BENCH_HISTORY_FILES (default 10000).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ADMIN_URL, dropAllPg, postgresAvailable, psql, sqliteCliAvailable } from './db.ts';
import { runWorkload, type Row, type Workload } from './engine.ts';
import { writeFolder, type Folder } from './folders.ts';
import { haveGnuTime } from './measure.ts';
import { preparePeers } from './peers.ts';
import { fullTable, summaryTable, verdicts } from './report.ts';
import * as W from './workloads.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    only: { type: 'string' },
    'no-peers': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(
    'npm run bench [-- --quick] [--only=id,id] [--no-peers]\nids: noop-head-pg noop-head-sqlite apply-pg apply-sqlite rollback-pg rollback-sqlite history-pg history-sqlite\n',
  );
  process.exit(0);
}
const quick = values.quick === true || process.env.BENCH_QUICK === '1';
const only = values.only ? new Set(values.only.split(',').map((s) => s.trim())) : undefined;
const log = (text: string) => process.stderr.write(text + '\n');

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const scratch = mkdtempSync(join(tmpdir(), 'sql-migrate-bench-'));
const cleanup = () => {
  dropAllPg();
  rmSync(scratch, { recursive: true, force: true });
};
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

try {
  log('building the compiled CLI (npm run build) …');
  const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: repo, encoding: 'utf8' });
  const compiled = build.status === 0 && existsSync(join(repo, 'dist/migrate.cjs'));
  if (!compiled) log(`npm run build failed; the compiled start is left out:\n${build.stdout}${build.stderr}`);
  else if (/^build:/m.test(build.stderr)) log(build.stderr.trim()); // e.g. a code cache made without PostgreSQL

  const pgMissing = postgresAvailable();
  const sqliteMissing = sqliteCliAvailable();
  const peers = preparePeers(values['no-peers'] !== true);
  const folders = new Map<string, Folder>();
  const folder = (kind: 'small' | 'trivial', count: number) => {
    const key = `${kind}-${count}`;
    if (!folders.has(key)) folders.set(key, writeFolder(join(scratch, key), count, kind));
    return folders.get(key) as Folder;
  };
  const also = process.env.BENCH_ALSO ? resolve(process.env.BENCH_ALSO) : undefined;
  if (also && !W.compiledCli(also))
    throw new Error(`BENCH_ALSO=${also}: no compiled CLI there (run npm run build in it)`);
  const ctx: W.Context = {
    repo,
    scratch,
    peers,
    compiled,
    quick,
    also,
    small: (n) => folder('small', n),
    trivial: (n) => folder('trivial', n),
  };

  const applyCount = Number(process.env.BENCH_APPLY ?? 1000);
  const historyFiles = Number(process.env.BENCH_HISTORY_FILES ?? 10_000);
  const plan: Array<{ id: string; needs: 'postgres' | 'sqlite'; make: () => Workload }> = [
    { id: 'noop-head-pg', needs: 'postgres', make: () => W.noopHead(ctx, 'postgres') },
    { id: 'noop-head-sqlite', needs: 'sqlite', make: () => W.noopHead(ctx, 'sqlite') },
    { id: 'apply-pg', needs: 'postgres', make: () => W.apply(ctx, 'postgres', applyCount) },
    { id: 'apply-sqlite', needs: 'sqlite', make: () => W.apply(ctx, 'sqlite', applyCount) },
    { id: 'rollback-pg', needs: 'postgres', make: () => W.rollback(ctx, 'postgres', applyCount) },
    { id: 'rollback-sqlite', needs: 'sqlite', make: () => W.rollback(ctx, 'sqlite', applyCount) },
    { id: 'history-pg', needs: 'postgres', make: () => W.history(ctx, 'postgres', historyFiles) },
    { id: 'history-sqlite', needs: 'sqlite', make: () => W.history(ctx, 'sqlite', historyFiles) },
  ];

  const pgVersion = pgMissing ? `unavailable: ${pgMissing}` : psql(ADMIN_URL, 'SHOW server_version').trim();
  const sqliteVersion = sqliteMissing ?? spawnSync('sqlite3', ['-version'], { encoding: 'utf8' }).stdout.split(' ')[0];
  const header = [
    `# sql-migrate bench${quick ? ' (--quick)' : ''}`,
    '',
    `node ${process.version}, ${cpus().length} cores; PostgreSQL ${pgVersion}; sqlite3 CLI ${sqliteVersion}`,
    `peers: ${
      [peers.nodePgMigrate, peers.dbmate]
        .filter((p) => p)
        .map((p) => `${p?.name} ${p?.version}`)
        .join(', ') || 'none'
    }${peers.unavailable.length ? ` (${peers.unavailable.join('; ')})` : ''}`,
    `peak RSS: ${haveGnuTime() ? "GNU time's %M, the largest resident set of any one process of the command" : 'not measured: install GNU time (apt-get install time)'}`,
    'each command is a whole process; × floor is the median over runs of (its time / the floor’s time in the same run)',
  ];
  process.stdout.write(header.join('\n') + '\n\n');

  const done: Array<{ workload: Workload; rows: Row[] }> = [];
  for (const p of plan) {
    if (only && !only.has(p.id)) continue;
    const missing = p.needs === 'postgres' ? pgMissing : sqliteMissing;
    if (missing) {
      process.stdout.write(`## ${p.id}: skipped (${missing})\n\n`);
      continue;
    }
    log(`preparing ${p.id} …`);
    let workload: Workload;
    try {
      workload = p.make();
    } catch (error) {
      process.stdout.write(`## ${p.id}: could not be set up\n\n${(error as Error).message}\n\n`);
      continue;
    }
    // The last workload's writes (1000 SQLite commits, a dropped database) still being flushed
    // would slow this one's fsyncs: flush them before the clock starts.
    spawnSync('sync');
    const rows = runWorkload(workload, log);
    done.push({ workload, rows });
    process.stdout.write(
      `## ${workload.title}\n\n${fullTable(rows)}\n${workload.skipped.length ? `\nleft out: ${workload.skipped.join('; ')}\n` : ''}\n`,
    );
  }

  process.stdout.write(
    `## Summary (ratios to the floor in the same run)\n\n${summaryTable(done)}\n\n## Targets\n\n${verdicts(done)}\n`,
  );
} finally {
  cleanup();
}
