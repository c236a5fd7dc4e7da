/** Run the CLI as a user does: a child process, its stdout, stderr and exit code. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(ROOT, 'scripts', 'migrate.ts');
const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  /** Replaces the inherited DATABASE_URL/MIGRATIONS_* (never leak the developer's own settings into a test). */
  env?: Record<string, string | undefined>;
  input?: string;
  /** Run this compiled CLI (`npm run build`'s dist/migrate.cjs) with plain node instead of scripts/migrate.ts through tsx. */
  compiled?: string;
  /** Arguments for node itself, before the CLI's file: V8 flags, or `-e <code> --`. */
  node?: string[];
}

export function fixture(name: string): string {
  return join(ROOT, 'test', 'fixtures', name, 'sql');
}

export interface RunningCli {
  child: ChildProcess;
  /** What the process has printed on stdout so far. */
  stdout(): string;
  done: Promise<CliResult>;
}

/** Start the CLI and return at once: for races and kills. */
export function startCli(args: string[], options: CliOptions = {}): RunningCli {
  const env: Record<string, string | undefined> = {
    ...process.env,
    DATABASE_URL: undefined,
    MIGRATE_DATABASE_URL: undefined,
    MIGRATIONS_DIR: undefined,
    MIGRATIONS_TABLE: undefined,
    ...options.env,
  };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  let out = '';
  const child = spawn(process.execPath, [...(options.node ?? []), ...cliEntry(options), ...args], {
    cwd: options.cwd ?? ROOT,
    env: env as NodeJS.ProcessEnv,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const done: Promise<CliResult> = new Promise((resolve) =>
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout: out, stderr: err })),
  );
  child.stdin.end(options.input ?? '');
  return { child, stdout: () => out, done };
}

function cliEntry(options: CliOptions): string[] {
  return options.compiled ? [options.compiled] : ['--import', TSX, CLI];
}

export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, options).done;
}

/** Durations vary from run to run; mask them before comparing text (dbmate's golden tests do the same). */
export function maskDurations(text: string): string {
  return text.replace(/\(\d+ ms\)/g, '(N ms)');
}

/**
 * The CLI on a real pseudo-terminal (`script`), as a person at a shell has it, with `answer`
 * typed once the question is on the screen: a key sent earlier reaches the terminal before the
 * CLI reads it, and Ctrl-C would then be the terminal's, not the CLI's. `stdoutTo`: the CLI's
 * stdout goes to that file, so the terminal shows only its stderr.
 */
export function onTerminal(
  args: string[],
  answer: string,
  options: { stdoutTo?: string; compiled?: string } = {},
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const argv = [process.execPath, ...cliEntry(options), ...args].map((a) => `'${a}'`).join(' ');
    const command = options.stdoutTo ? `${argv} > '${options.stdoutTo}'` : argv;
    const child = execFile(
      'script',
      ['-qec', command, '/dev/null'],
      { env: { ...process.env, DATABASE_URL: '', MIGRATE_DATABASE_URL: '' } },
      (error, stdout) => resolve({ code: error ? Number(error.code ?? 1) : 0, out: stdout }),
    );
    let shown = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      shown += chunk.toString();
      if (shown.includes('[y/N]')) child.stdin?.end(`${answer}\n`);
    });
  });
}
