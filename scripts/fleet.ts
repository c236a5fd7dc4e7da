/**
 * `fleet <target> --targets FILE|-` and `fleet status --targets FILE|-`: the CLI over
 * runner/core/fleet.ts. One process for the whole fleet: the library is called per database,
 * so no database pays the CLI's start-up (docs/fleet.md, docs/performance.md).
 */
import { readFileSync } from 'node:fs';
import { MigrateError } from '../runner/core/errors.ts';
import {
  type FleetEvent,
  type FleetResult,
  type FleetTargetResult,
  fleetExitCode,
  migrateFleet,
  parseTargets,
} from '../runner/core/fleet.ts';
import { type FleetStanding, fleetStatus } from '../runner/core/fleet-status.ts';
import type { RunnerConfig } from '../runner/core/migrator.ts';
import { parseTarget } from '../runner/core/plan.ts';
import type { Values } from './options.ts';
import { type Cli, emitJson, lockLine, say, warn } from './output.ts';

interface FleetRun {
  cli: Cli;
  config: RunnerConfig;
  values: Values;
  /** `status`, or the target. */
  operand: string;
}

/** The databases listed by --targets (a file, or `-` for stdin). */
function readTargets(values: Values): { urls: string[]; source: string } {
  const file = values.targets;
  if (file === undefined || file === '')
    throw new MigrateError(
      'BAD_OPTION',
      'fleet needs --targets FILE (one database URL a line), or --targets - for stdin.',
    );
  const source = file === '-' ? 'stdin' : file;
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (error) {
    throw new MigrateError('BAD_OPTION', `cannot read --targets ${source}: ${(error as Error).message}`);
  }
  return { urls: parseTargets(text, source), source };
}

function count(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isSafeInteger(n))
    throw new MigrateError('BAD_OPTION', `--${name} takes a whole number, not "${text}".`);
  return n;
}

const seconds = (ms: number) => (ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`);

function resultLine(r: FleetTargetResult): string {
  const move = r.from === null && r.to === null ? '-' : `${r.from ?? '?'} → ${r.to ?? '?'}`;
  const head = `${r.outcome.padEnd(11)}  ${r.url}  ${move}  (${seconds(r.ms)})`;
  if (!r.error) return head;
  const at = r.error.file
    ? `${r.error.file}${r.error.line ? `:${r.error.line}` : ''}${r.error.column ? `:${r.error.column}` : ''}: `
    : '';
  return `${head}\n             ${at}${r.error.message.split('\n')[0]} [${r.error.code}]`;
}

function totals(result: FleetResult, elapsedMs: number): string {
  const parts = Object.entries(result.counts)
    .filter(([k, n]) => k !== 'total' && n > 0)
    .map(([k, n]) => `${n} ${k}`);
  return `fleet: ${result.counts.total} database(s): ${parts.join(', ')} (${seconds(elapsedMs)})`;
}

/**
 * Ctrl-C or SIGTERM aborts `signal`: no new database starts, those in work stop after the step
 * in flight, and the summary is printed. A second one ends the process at once: the server
 * rolls back the transactions in flight, as it does for a single run that is killed.
 */
function onInterrupt(cli: Cli): { signal: AbortSignal; release: () => void } {
  const abort = new AbortController();
  const stop = (name: string) => {
    if (abort.signal.aborted) process.exit(130);
    warn(cli, `fleet: ${name}: no new database starts; the steps in flight finish (${name} again to stop at once).`);
    abort.abort();
  };
  const onInt = () => stop('SIGINT');
  const onTerm = () => stop('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    signal: abort.signal,
    release: () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}

async function runApply(r: FleetRun, urls: string[], source: string): Promise<number> {
  const { cli, config, values, operand } = r;
  const { url: _url, ...settings } = config;
  const started = performance.now();
  const interrupt = onInterrupt(cli);
  warn(cli, `fleet: ${operand} on ${urls.length} database(s) from ${source}`);
  const onEvent = (e: FleetEvent) => {
    if (e.type === 'done') {
      if (cli.json) process.stderr.write(`${JSON.stringify({ event: 'target', ...e.result })}\n`);
      else say(cli, resultLine(e.result));
    } else if (e.type === 'target') {
      const ev = e.event;
      if (ev.type === 'warning') warn(cli, `warning: ${e.url}: ${ev.message} [${ev.code}]`);
      else if (ev.type === 'lock-wait' || ev.type === 'progress') {
        if (!cli.json) warn(cli, `${e.url}:`);
        lockLine(cli, ev);
      }
    }
  };
  try {
    const result = await migrateFleet({ ...settings, urls }, operand, {
      parallel: count(values.parallel, 'parallel'),
      canary: count(values.canary, 'canary'),
      onError: values['on-error'] as 'continue' | 'stop' | undefined,
      ...(values.yes ? { confirm: () => true } : {}),
      signal: interrupt.signal,
      onEvent,
    });
    const elapsed = Math.round(performance.now() - started);
    emitJson(cli, { command: 'fleet', target: operand, ...result, ms: elapsed });
    say(cli, totals(result, elapsed));
    return fleetExitCode(result);
  } finally {
    interrupt.release();
  }
}

function standingLine(s: FleetStanding): string {
  const where = s.current ?? (s.unreachable ? 'unreachable' : 'unreadable');
  const pending = s.current !== null && s.pending > 0 ? `  (${s.pending} pending)` : '';
  const why = s.error ? `\n             ${s.error.message.split('\n')[0]} [${s.error.code}]` : '';
  return `${where.padEnd(15)}  ${s.url}${pending}${why}`;
}

async function runStatus(r: FleetRun, urls: string[]): Promise<number> {
  const { cli, config, values } = r;
  const { url: _url, ...settings } = config;
  const interrupt = onInterrupt(cli);
  try {
    const s = await fleetStatus(
      { ...settings, urls },
      { parallel: count(values.parallel, 'parallel'), signal: interrupt.signal },
    );
    emitJson(cli, { command: 'fleet status', ...s });
    for (const t of s.targets) say(cli, standingLine(t));
    const at = Object.entries(s.revisions).map(([rev, n]) => `${n} at ${rev}`);
    if (s.base > 0) at.push(`${s.base} at base`);
    const also = [`${s.atHead} at head`];
    if (s.unreachable > 0) also.push(`${s.unreachable} unreachable`);
    if (s.unreadable > 0) also.push(`${s.unreadable} unreadable`);
    say(cli, `fleet status: ${s.total} database(s): ${[...at, ...also].join(', ')}`);
    if (interrupt.signal.aborted) return 130;
    return s.unreachable > 0 || s.unreadable > 0 ? 3 : 0;
  } finally {
    interrupt.release();
  }
}

/** `fleet <target>` or `fleet status`, both with --targets. */
export async function runFleet(r: FleetRun): Promise<number> {
  const [word, ...rest] = r.operand.split(' ');
  if (rest.length > 0) throw new MigrateError('BAD_TARGET', `fleet takes one target or status, not "${r.operand}".`);
  if (r.values.canary !== undefined && word === 'status')
    throw new MigrateError('BAD_OPTION', '--canary does not apply to fleet status, which changes nothing.');
  if (r.values.url !== undefined)
    throw new MigrateError(
      'BAD_OPTION',
      'fleet takes its databases from --targets, not --url (put the URL in the list).',
    );
  if (word !== 'status') parseTarget(word as string); // refuse garbage before reading the targets
  const { urls, source } = readTargets(r.values);
  return word === 'status' ? runStatus(r, urls) : runApply({ ...r, operand: word as string }, urls, source);
}
