/**
 * What the CLI does with its own process and terminal: settings from `.env`, V8's memory
 * growth, the confirmation question. Kept apart so that migrate.ts reads as its commands.
 */
import { existsSync } from 'node:fs';
import { isatty } from 'node:tty';
import type { Step } from '../runner/core/plan.ts';

/** Where the database URL came from, as the CLI reports it. */
export type UrlSource = '--url' | 'MIGRATE_DATABASE_URL' | 'DATABASE_URL' | '.env' | 'default';

/**
 * The URL to migrate and where it came from: `--url`, then MIGRATE_DATABASE_URL (the direct
 * endpoint for migrations, when the app's DATABASE_URL is a pooler: issue #25), then
 * DATABASE_URL, then either from `.env` (dotenv fills gaps, never overrides the real
 * environment), then the default. dotenv is loaded only when there is a .env to read, which a
 * container rarely has (its load time counts against a no-op start; see docs/performance.md).
 */
export async function loadEnv(url: string | undefined, fallback: string): Promise<{ url: string; from: UrlSource }> {
  const before = { MIGRATE_DATABASE_URL: process.env.MIGRATE_DATABASE_URL, DATABASE_URL: process.env.DATABASE_URL };
  if (existsSync('.env')) (await import('dotenv')).config({ quiet: true });
  if (url !== undefined) return { url, from: '--url' };
  for (const name of ['MIGRATE_DATABASE_URL', 'DATABASE_URL'] as const) {
    const value = before[name];
    if (value !== undefined && value !== '') return { url: value, from: name };
  }
  for (const name of ['MIGRATE_DATABASE_URL', 'DATABASE_URL'] as const) {
    const value = process.env[name];
    if (value !== undefined && value !== '') return { url: value, from: '.env' };
  }
  return { url: fallback, from: 'default' };
}

let youngGenerationCapped = false;

/**
 * Keeps V8 from doubling the young generation while every file of the folder survives into
 * it; set only once there is work, as loading node:v8 costs a no-op start (docs/performance.md).
 */
export function capYoungGeneration(): void {
  if (youngGenerationCapped) return;
  youngGenerationCapped = true;
  process.getBuiltinModule('node:v8').setFlagsFromString('--semi-space-growth-factor=1');
}

/** The question for a rollback that would undo more than one revision, or a `stamp` that forgets; on stderr. */
function ask(verb: 'roll back' | 'forget') {
  return async (steps: readonly Step[]): Promise<boolean> => {
    const downs = steps.filter((s) => s.direction === 'down');
    const lines = downs.map((s) => `  ${s.migration.stem}`).join('\n');
    const note =
      verb === 'forget' ? ' (from the record only: no SQL runs, and what they built stays in the database)' : '';
    const count = downs.length === 1 ? '1 revision' : `${downs.length} revisions`;
    process.stderr.write(`About to ${verb} ${count}${note}:\n${lines}\n`);
    // Not import(): the compiled CLI runs as a vm script (dist/migrate.cjs), which has no import().
    const { createInterface } = process.getBuiltinModule('node:readline/promises');
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
      const them = downs.length === 1 ? 'it' : 'them';
      const answer = await rl.question(verb === 'forget' ? `Forget ${them}? [y/N] ` : `Roll ${them} back? [y/N] `);
      return /^y(es)?$/i.test(answer.trim());
    } catch (error) {
      // Ctrl-C or Ctrl-D at the question is a no, not a failure to report.
      if ((error as { code?: unknown }).code === 'ABORT_ERR') return false;
      throw error;
    } finally {
      rl.close();
    }
  };
}

/** isatty(0), not process.stdin.isTTY: the stdin stream costs a no-op start (docs/performance.md). */
export function confirmation(yes: boolean | undefined, verb: 'roll back' | 'forget') {
  return yes ? () => true : isatty(0) ? ask(verb) : undefined;
}
