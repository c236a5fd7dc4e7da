/**
 * Times whole processes. Wall time is taken around the spawn; peak memory is GNU time's `%M`:
 * the largest resident set (VmHWM) of any single process the command ran and waited for (for
 * `tsx`, its launcher and the node child it starts are counted apart, the larger wins).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Command {
  argv: string[];
  cwd: string;
  env?: Record<string, string | undefined>;
}

export interface Sample {
  ms: number;
  /** Peak resident set in KiB; undefined without GNU time. */
  rssKiB: number | undefined;
}

export class CommandFailed extends Error {}

const GNU_TIME = '/usr/bin/time';
let gnuTime: boolean | undefined;

/** GNU time (Debian package `time`) gives the peak RSS of a child; without it memory is not reported. */
export function haveGnuTime(): boolean {
  if (gnuTime === undefined) {
    const r = spawnSync(GNU_TIME, ['--version'], { encoding: 'utf8' });
    gnuTime = r.status === 0 && /GNU/.test(`${r.stdout}${r.stderr}`);
  }
  return gnuTime;
}

const scratch = mkdtempSync(join(tmpdir(), 'bench-time-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));

/** A clean environment: no DATABASE_URL or MIGRATIONS_* leaking in from the caller's shell. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const k of ['DATABASE_URL', 'MIGRATIONS_DIR', 'MIGRATIONS_TABLE', 'NODE_OPTIONS', 'PGPASSWORD']) delete env[k];
  return { ...env, ...extra };
}

/** Run `cmd` once; throws CommandFailed (with its stderr) on a non-zero exit. */
export function timeOnce(cmd: Command): Sample {
  const out = join(scratch, 'rss');
  const argv = haveGnuTime() ? [GNU_TIME, '-f', '%M', '-o', out, ...cmd.argv] : cmd.argv;
  const started = process.hrtime.bigint();
  const r = spawnSync(argv[0] as string, argv.slice(1), {
    cwd: cmd.cwd,
    env: cmd.env ?? cleanEnv(),
    stdio: ['ignore', 'ignore', 'pipe'],
    maxBuffer: 64 << 20,
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (r.error || r.status !== 0) throw failed(cmd.argv, r);
  let rssKiB: number | undefined;
  if (haveGnuTime()) {
    const last = readFileSync(out, 'utf8').trim().split('\n').pop();
    rssKiB = last && /^\d+$/.test(last) ? Number(last) : undefined;
  }
  return { ms, rssKiB };
}

/** Run a setup command (not timed), failing loudly. */
export function run(argv: string[], cwd: string, env?: Record<string, string | undefined>, input?: string): string {
  const r = spawnSync(argv[0] as string, argv.slice(1), {
    cwd,
    env: env ?? cleanEnv(),
    encoding: 'utf8',
    input,
    maxBuffer: 256 << 20,
  });
  if (r.error || r.status !== 0) throw failed(argv, r);
  return r.stdout;
}

/** The command, why it failed (error, exit status or signal) and the tail of its stderr. */
function failed(
  argv: readonly string[],
  r: { error?: Error; status: number | null; signal: NodeJS.Signals | null; stderr?: string | Buffer | null },
): CommandFailed {
  const why = r.error ? r.error.message : `exit ${r.status ?? r.signal}`;
  return new CommandFailed(
    `${argv.join(' ')}: ${why}\n${String(r.stderr ?? '')
      .trim()
      .split('\n')
      .slice(-8)
      .join('\n')}`,
  );
}

export interface Stats {
  median: number;
  min: number;
  max: number;
}

export function stats(values: readonly number[]): Stats {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  return { median, min: s[0] as number, max: s[s.length - 1] as number };
}
