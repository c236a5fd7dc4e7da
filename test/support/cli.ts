/** Run the CLI as a user does: a child process, its stdout, stderr and exit code. */
import { spawn, type ChildProcess } from 'node:child_process';
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
  /** Run this compiled CLI (`npm run build`'s bundle) with plain node instead of scripts/migrate.ts through tsx. */
  compiled?: string;
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
  const env: Record<string, string | undefined> = { ...process.env, DATABASE_URL: undefined, MIGRATIONS_DIR: undefined, MIGRATIONS_TABLE: undefined, ...options.env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  let out = '';
  let done!: Promise<CliResult>;
  const entry = options.compiled ? [options.compiled] : ['--import', TSX, CLI];
  const child = spawn(process.execPath, [...entry, ...args], { cwd: options.cwd ?? ROOT, env: env as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  done = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout: out, stderr: err })));
  child.stdin.end(options.input ?? '');
  return { child, stdout: () => out, done };
}

export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, options).done;
}

/** Durations vary from run to run; mask them before comparing text (dbmate's golden tests do the same). */
export function maskDurations(text: string): string {
  return text.replace(/\(\d+ ms\)/g, '(N ms)');
}
