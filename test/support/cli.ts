/** Run the CLI as a user does: a child process, its stdout, stderr and exit code. */
import { execFile } from 'node:child_process';
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
}

export function fixture(name: string): string {
  return join(ROOT, 'test', 'fixtures', name, 'sql');
}

export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const env: Record<string, string | undefined> = { ...process.env, DATABASE_URL: undefined, MIGRATIONS_DIR: undefined, MIGRATIONS_TABLE: undefined, ...options.env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['--import', TSX, CLI, ...args], { cwd: options.cwd ?? ROOT, env, timeout: 120_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end(options.input ?? '');
  });
}

/** Durations vary from run to run; mask them before comparing text (dbmate's golden tests do the same). */
export function maskDurations(text: string): string {
  return text.replace(/\(\d+ ms\)/g, '(N ms)');
}
