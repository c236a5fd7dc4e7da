/**
 * `npx tsx bench/fleet.ts`: a no-op `fleet head` over 20 databases (10 PostgreSQL, 10 SQLite,
 * every one already at head of the project's sql/) against what teams script today, a shell
 * loop of the CLI over the same list, in one bench run; whole processes, start-up included,
 * the two alternated so that a busy machine weighs on both alike. Prints each median and the
 * ratio (issue #29 asks for at most a quarter), with the compiled CLI (dist/migrate.cjs) beside
 * the source when `npm run build` has made it.
 *
 * Environment: BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres; the
 * bench creates and drops bench_<pid>_fleet_* databases there), BENCH_RUNS (default 3; the loop
 * costs about a second per database on a tsx start).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrate } from '../runner/core/migrator.ts';
import { dropAllPg, freshPg, postgresAvailable } from './db.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const COMPILED = join(ROOT, 'dist', 'migrate.cjs');
const log = (text: string) => process.stderr.write(`${text}\n`);

const missing = postgresAvailable();
if (missing) {
  log(`bench/fleet.ts needs PostgreSQL: ${missing}`);
  process.exit(2);
}
const scratch = mkdtempSync(join(tmpdir(), 'sql-migrate-fleet-bench-'));
const cleanup = () => {
  dropAllPg();
  rmSync(scratch, { recursive: true, force: true });
};
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

/** One timed whole process (or shell loop); throws unless it exits 0. */
function timed(command: string, args: string[]): number {
  const started = performance.now();
  const r = spawnSync(command, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    encoding: 'utf8',
  });
  const ms = performance.now() - started;
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const show = (xs: number[]) =>
  `median ${(median(xs) / 1000).toFixed(2)} s  (${xs.map((x) => (x / 1000).toFixed(2)).join(' ')})`;

try {
  const urls: string[] = [];
  for (let i = 0; i < 10; i++) urls.push(freshPg(`fleet_${i}`));
  for (let i = 0; i < 10; i++) urls.push(`sqlite:${join(scratch, `tenant_${i}.db`)}`);
  log(`migrating the ${urls.length} databases to head of sql/ (untimed) …`);
  for (const url of urls) await migrate({ url, dir: join(ROOT, 'sql') }, 'head');
  const list = join(scratch, 'targets.txt');
  writeFileSync(list, `${urls.join('\n')}\n`);

  const entries: Array<{ label: string; node: string[] }> = [
    { label: 'node --import tsx scripts/migrate.ts', node: ['--import', 'tsx', 'scripts/migrate.ts'] },
  ];
  if (existsSync(COMPILED)) entries.push({ label: 'node dist/migrate.cjs', node: [COMPILED] });
  for (const { label, node } of entries) {
    const cli = [process.execPath, ...node].map((a) => `'${a}'`).join(' ');
    // What a team scripts today: the CLI once per database.
    const loop = `while read -r url; do ${cli} head --url "$url" >/dev/null || exit 1; done < '${list}'`;
    const fleet: number[] = [];
    const shell: number[] = [];
    timed(process.execPath, [...node, 'fleet', 'head', '--targets', list]); // warm-up: the OS's file cache
    for (let i = 0; i < RUNS; i++) {
      fleet.push(timed(process.execPath, [...node, 'fleet', 'head', '--targets', list]));
      shell.push(timed('sh', ['-c', loop]));
    }
    const ratio = median(fleet) / median(shell);
    console.log(`${label}, no-op head over ${urls.length} databases (10 PostgreSQL, 10 SQLite), ${RUNS} runs each:`);
    console.log(`  fleet head --targets (one process)   ${show(fleet)}`);
    console.log(`  shell loop of the CLI (20 processes) ${show(shell)}`);
    console.log(`  ratio ${ratio.toFixed(3)} (${ratio <= 0.25 ? 'within' : 'NOT within'} a quarter)`);
  }
} finally {
  cleanup();
}
