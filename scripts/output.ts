/**
 * What the CLI prints: text on stdout, or one JSON object with --json; notes, warnings and
 * errors on stderr. A reader that goes away early (`| head -1`) ends the output, never the run.
 */
import type { Direction } from '../runner/core/dialect.ts';
import { EXIT, MigrateError, MigrationFailed } from '../runner/core/errors.ts';
import { hideSecrets } from '../runner/core/config.ts';
import { describeProgress, describeWait, type LockEvent } from '../runner/core/locks.ts';
import type { CheckProgress, CheckResult } from '../runner/check/check.ts';
import type { ServerRole } from '../runner/core/hosts.ts';
import type { UrlSource } from './startup.ts';

export interface Cli {
  json: boolean;
  /** The password, for the one place its text could come from elsewhere: an unexpected error. */
  secrets: string[];
  /**
   * Which database, and where its URL came from: fields of every --json object. `host`: the
   * server a multi-host URL led to; `standby`: set when that server is a hot standby.
   */
  about: {
    database?: string;
    urlFrom?: UrlSource;
    host?: string;
    standby?: { host: string; replayLagMs: number | null };
  };
}

export function say(cli: Cli, text: string): void {
  if (!cli.json) process.stdout.write(text + '\n');
}

export function warn(_cli: Cli, text: string): void {
  process.stderr.write(text + '\n');
}

export function emitJson(cli: Cli, value: object): void {
  if (cli.json)
    process.stdout.write(
      JSON.stringify({ ...value, ...cli.about }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) + '\n',
    );
}

export function stepLine(e: { direction: Direction; revision: string; name: string; durationMs: number }): string {
  return `${e.direction === 'up' ? 'up  ' : 'down'}  ${e.revision}  ${e.name}  (${Math.round(e.durationMs)} ms)`;
}

/** `check: 0 errors, 1 warning; round trips: sqlite 3/3, postgres 3/3; dialects compared at 3 revisions` */
export function checkSummary(r: CheckResult): string {
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  const trips = r.roundTrips
    .map((t) => (t.skipped ? `${t.dialect} not run (${t.skipped})` : `${t.dialect} ${t.revisions}/${t.of}`))
    .join(', ');
  const compared = r.compared.skipped
    ? `dialects not compared (${r.compared.skipped})`
    : `dialects compared at ${count(r.compared.revisions, 'revision')}`;
  // The pass on populated tables on a line of its own, with the seed that reproduces its rows.
  const data = r.data
    ? `data: ${r.data.runs.map((d) => `${d.dialect} ${d.revisions}/${d.of}`).join(', ') || 'not run'} on populated tables (seed ${r.data.seed}, ${r.data.rows} rows per table)`
    : 'data: skipped (--no-data)';
  // --compat: how much of the running release was proven, and against how many revisions.
  const compat = r.compat
    ? `\ncompat: ${r.compat.file}: ${r.compat.proven} of ${count(r.compat.statements, 'statement')} run against postgres ${r.compat.revisions}/${r.compat.of} revisions`
    : '';
  return `check: ${count(r.errors, 'error')}, ${count(r.warnings, 'warning')}; round trips: ${trips}; ${compared}\n${data}${compat}`;
}

export function where(p: { revision: string; name: string } | null): string {
  return p ? `${p.revision} (${p.name})` : 'base';
}

export function reportFailure(cli: Cli, error: unknown): number {
  if (error instanceof MigrationFailed) {
    if (cli.json) {
      emitJson(cli, {
        ok: false,
        error: { code: 'MIGRATION_FAILED', message: error.message, ...error.where, ...error.info },
      });
      return error.exitCode;
    }
    const lines = [`error: ${error.headline}`];
    if (error.info.detail) lines.push(`detail: ${error.info.detail}`);
    if (error.info.hint) lines.push(`hint: ${error.info.hint}`);
    const { line, column, sourceLine } = error.where;
    if (line !== undefined && sourceLine !== undefined) {
      const gutter = `${line} | `;
      lines.push(`  ${gutter}${sourceLine}`);
      if (column !== undefined)
        lines.push(`  ${' '.repeat(gutter.length + [...sourceLine].slice(0, column - 1).join('').length)}^`);
    }
    lines.push(
      error.info.statementsRun !== undefined
        ? `${error.where.file} ran outside a transaction: ${error.info.statementsRun} statement(s) took effect and it is recorded as failed. Repair by hand, then run \`stamp\`.`
        : (error.info.rolledBack
            ? `${error.info.direction === 'up' ? 'Applying' : 'Rolling back'} ${error.info.revision} was rolled back completely.`
            : `${error.where.file} ended the runner's transaction itself before it failed: what it ran up to there is committed, and ${error.info.revision} is not recorded. Repair by hand, then run \`stamp\`.`) +
            (error.info.completed.length > 0
              ? ` ${error.info.completed.length} earlier step(s) of this run stay applied.`
              : ''),
    );
    warn(cli, lines.join('\n'));
    return error.exitCode;
  }
  if (error instanceof MigrateError) {
    const seen = (error as { observation?: object }).observation;
    if (cli.json) emitJson(cli, { ok: false, error: { code: error.code, message: error.message, ...seen } });
    else warn(cli, `error: ${error.message} [${error.code}]`);
    return error.exitCode;
  }
  const message = hideSecrets(error instanceof Error ? error.message : String(error), cli.secrets);
  if (cli.json) emitJson(cli, { ok: false, error: { code: 'UNEXPECTED', message } });
  else warn(cli, `error: ${message}`);
  return EXIT.migrationFailed;
}

/** One line on stderr per retry or progress note (with --json, the event as a JSON line there: stdout keeps one object). */
export function lockLine(cli: Cli, e: LockEvent): void {
  if (cli.json) {
    process.stderr.write(`${JSON.stringify({ event: e.type, ...e, type: undefined })}\n`);
    return;
  }
  if (e.type === 'lock-wait') {
    const retry = `retrying in ${(e.retryInMs / 1000).toFixed(1)} s`;
    warn(cli, `waiting: ${e.revision} attempt ${e.attempt} timed out on ${describeWait(e)}; ${retry}`);
    return;
  }
  warn(cli, `still on ${e.revision} after ${Math.round(e.elapsedMs / 1000)} s: ${describeProgress(e)}`);
}

/**
 * The server a session reached: a multi-host URL's choice goes in the footer; a hot standby is
 * said at once, with how old its last replayed transaction is (issue #27).
 */
export function noteServer(cli: Cli, role: ServerRole, multiHost: boolean): void {
  if (multiHost) cli.about.host = role.address;
  if (!role.standby) return;
  cli.about.standby = { host: role.address, replayLagMs: role.replayLagMs ?? null };
  const lag =
    role.replayLagMs === undefined
      ? 'replay lag unknown (nothing replayed since it started)'
      : `replay lag ${(role.replayLagMs / 1000).toFixed(1)} s (its last replayed transaction's age)`;
  warn(cli, `note: ${role.address} is a hot standby, read-only: this shows what it has replayed; ${lag}.`);
}

/** Last on stderr, after the outcome: the first line stays the one that matters (an error, say). */
export function sayWhich(cli: Cli): void {
  const { database, urlFrom, host } = cli.about;
  if (!cli.json && database)
    warn(
      cli,
      `database: ${database} (${urlFrom === 'default' ? 'the default' : `from ${urlFrom}`})${host ? `; on ${host}` : ''}`,
    );
}

/**
 * A reader that stops early (`history | head -1`) closes the pipe, and the next write fails with
 * EPIPE: an 'error' event on the stream, which unhandled ends the process with a stack trace.
 * The output is over then, not the run: the command goes on to its end and exits with its own
 * code, so a migration is never cut short because nobody reads what it prints.
 */
export function endQuietlyOnClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
    });
  }
}

/**
 * `check: postgres round trips 120/1000, postgres data 80/1000, sqlite round trips 400/1000` on one
 * line of a terminal, rewritten in place (at most every 100 ms): the passes running at the time.
 */
export function progressLine(_cli: Cli, e: CheckProgress): void {
  const pass = `${e.dialect} ${e.pass}`;
  const count = `${e.done}/${e.of}`;
  running.delete(pass);
  const now = Date.now();
  if (e.done < e.of) {
    running.set(pass, count);
    if (now - lastProgress < 100) return;
  }
  lastProgress = now;
  // A pass that just ended is shown once, first, with its count: then it leaves the line.
  const shown = e.done < e.of ? [...running] : [[pass, count], ...running];
  const line = `check: ${shown.map(([p, n]) => `${p} ${n}`).join(', ')}`;
  // One line, never wrapped: a wrapped line would not be rewritten in place.
  process.stderr.write(`\r\x1b[K${line.slice(0, Math.max(20, (process.stderr.columns || 80) - 1))}`);
}
const running = new Map<string, string>();
let lastProgress = 0;
