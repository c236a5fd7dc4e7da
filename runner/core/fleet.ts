/**
 * Fleet mode (issue #29): one target on many databases, each exactly as a single run gets it
 * (`migrate()`: its own connection, lock, record, lock-safe steps and refusals), at most
 * `parallel` at once, an optional canary first, and one result per database. Nothing here
 * connects by itself: every database is reached through migrate() or status().
 */
import { DEFAULT_DIR, hideSecrets, parseUrl, redactUrl } from './config.ts';
import { EXIT, MigrateError, MigrationFailed } from './errors.ts';
import {
  migrate,
  status,
  type MigrateEvent,
  type MigrateOptions,
  type Revision,
  type RunnerConfig,
} from './migrator.ts';
import { loadMigrations } from './files.ts';
import { parseTarget, resolveRevision, type Target } from './plan.ts';

/** What became of one database. */
export type FleetOutcome =
  /** at least one step ran and the target was reached */
  | 'applied'
  /** nothing to do: already there */
  | 'unchanged'
  /** a migration failed (rolled back; earlier steps of its run kept), or an unexpected error */
  | 'failed'
  /** the database could not be reached (CONNECTION_FAILED) */
  | 'unreachable'
  /** the runner or the database said no: lock not taken in time, standby, read-only, a checksum, … */
  | 'refused'
  /** not started: a canary or, with onError 'stop', another database failed */
  | 'skipped'
  /** not started, or stopped between two steps, because the run was interrupted */
  | 'interrupted';

export const FLEET_OUTCOMES: readonly FleetOutcome[] = [
  'applied',
  'unchanged',
  'failed',
  'unreachable',
  'refused',
  'skipped',
  'interrupted',
];

export interface FleetError {
  code: string;
  message: string;
  file?: string;
  line?: number;
  column?: number;
}

export interface FleetTargetResult {
  /** The database URL with its password hidden. */
  url: string;
  outcome: FleetOutcome;
  /** Where it stood before: a revision, `base`, or null when unknown (never reached or never started). */
  from: string | null;
  /** Where it stands afterwards, the same way. */
  to: string | null;
  /** Wall time spent on this database. */
  ms: number;
  /** Steps that committed on it. */
  steps: number;
  error?: FleetError;
}

export type FleetCounts = Record<FleetOutcome, number> & { total: number };

export interface FleetResult {
  /** One per database, in the order they were listed. */
  targets: FleetTargetResult[];
  counts: FleetCounts;
  /** The signal was aborted while the fleet ran (even if every database in work then finished). */
  interrupted: boolean;
}

/** Every setting of a single run but the URL, and the databases. */
export type FleetConfig = Omit<RunnerConfig, 'url'> & { urls: readonly string[] };

export type FleetEvent =
  | { type: 'start'; index: number; url: string }
  /** One of the database's own events (a step committed, a warning, a lock wait), as migrate() gives it. */
  | { type: 'target'; index: number; url: string; event: MigrateEvent }
  | { type: 'done'; index: number; result: FleetTargetResult };

export interface FleetOptions {
  /** Most databases in work at once (each with its own connections). Default 4. */
  parallel?: number;
  /** The first K databases one at a time, before the rest; any of them not applied or unchanged stops the fleet. */
  canary?: number;
  /** After a database fails: `continue` (default) or `stop` (no new database starts). */
  onError?: 'continue' | 'stop';
  /** Asked per database before a rollback of more than one revision (see MigrateOptions). */
  confirm?: MigrateOptions['confirm'];
  /** Aborted: no new database starts, and those in work stop after the step in flight. */
  signal?: AbortSignal;
  onEvent?: (event: FleetEvent) => void;
}

export const DEFAULT_PARALLEL = 4;
/** The fleet's exit status when interrupted (128 + SIGINT, what a shell reports for Ctrl-C). */
export const EXIT_INTERRUPTED = 130;

/** A database as every output shows it: password hidden. */
function shown(url: string): { display: string; secrets: string[] } {
  try {
    const c = parseUrl(url);
    return c.dialect === 'postgres' ? { display: c.display, secrets: c.secrets } : { display: c.display, secrets: [] };
  } catch {
    return { display: redactUrl(url), secrets: [] };
  }
}

const nameOf = (r: Revision | null): string => r?.revision ?? 'base';
const ok = (r: FleetTargetResult) => r.outcome === 'applied' || r.outcome === 'unchanged';

function outcomeOf(error: unknown, signal: AbortSignal | undefined): FleetOutcome {
  if (error instanceof MigrationFailed) return 'failed';
  if (signal?.aborted && error === signal.reason) return 'interrupted';
  if (error instanceof MigrateError) {
    if (error.code === 'CONNECTION_FAILED') return 'unreachable';
    // Exit 2 and 3 of a single run (a refusal, a lock not taken, a standby, …): this database said no.
    return error.exitCode === EXIT.migrationFailed ? 'failed' : 'refused';
  }
  return 'failed';
}

function describe(error: unknown, secrets: readonly string[]): FleetError {
  const hide = (text: string) => hideSecrets(text, secrets);
  if (error instanceof MigrationFailed) {
    const state = error.info.sqlState ? ` (${error.info.sqlState})` : '';
    return { code: 'MIGRATION_FAILED', message: hide(error.message + state), ...location(error.where) };
  }
  if (error instanceof MigrateError)
    return { code: error.code, message: hide(error.message), ...(error.where ? location(error.where) : {}) };
  const message = error instanceof Error ? error.message : String(error);
  return { code: (error as Error)?.name === 'AbortError' ? 'INTERRUPTED' : 'UNEXPECTED', message: hide(message) };
}

function location(w: { file: string; line?: number; column?: number }) {
  return {
    file: w.file,
    ...(w.line === undefined ? {} : { line: w.line }),
    ...(w.column === undefined ? {} : { column: w.column }),
  };
}

/** Where a database stands now, read-only; null when that cannot be read. */
async function standing(config: RunnerConfig): Promise<string | null> {
  try {
    return nameOf((await status(config)).current);
  } catch {
    return null;
  }
}

async function runTarget(
  config: RunnerConfig,
  target: Target,
  options: FleetOptions,
  onEvent: (e: MigrateEvent) => void,
): Promise<FleetTargetResult> {
  const { display, secrets } = shown(config.url);
  const started = performance.now();
  let from: string | undefined;
  let steps = 0;
  const ms = () => Math.round(performance.now() - started);
  try {
    const r = await migrate(config, target, {
      ...(options.confirm ? { confirm: options.confirm } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      onPlan: (p) => {
        from = nameOf(p.from);
      },
      onEvent: (e) => {
        if (e.type === 'step') steps++;
        onEvent(e);
      },
    });
    const outcome = r.steps.length > 0 ? 'applied' : 'unchanged';
    return { url: display, outcome, from: from ?? null, to: nameOf(r.current), ms: ms(), steps };
  } catch (error) {
    const outcome = outcomeOf(error, options.signal);
    // Planned but no step committed: it stands where it stood. Else (refused before its plan, or
    // stopped part-way) its record says where, read-only.
    const to = outcome === 'unreachable' ? null : steps === 0 && from !== undefined ? from : await standing(config);
    return { url: display, outcome, from: from ?? to, to, ms: ms(), steps, error: describe(error, secrets) };
  }
}

function whole(name: string, value: number | undefined, fallback: number, min: number): number {
  const n = value ?? fallback;
  if (!Number.isSafeInteger(n) || n < min)
    throw new MigrateError('BAD_OPTION', `--${name} takes a whole number (at least ${min}), not "${value}".`);
  return n;
}

/**
 * Refuse, before any database is touched, what cannot work anywhere: a bad URL or option, a
 * folder that does not load, a revision that no migration of the folder has.
 */
function validate(config: FleetConfig, target: Target, options: FleetOptions) {
  if (config.urls.length === 0) throw new MigrateError('BAD_OPTION', 'the fleet lists no database; nothing was run.');
  const dialects = new Set(config.urls.map((url) => parseUrl(url).dialect));
  for (const dialect of dialects) {
    const migrations = loadMigrations(config.dir ?? DEFAULT_DIR, dialect);
    if (target.kind === 'revision') resolveRevision(target.name, migrations, []);
  }
  if (options.onError !== undefined && options.onError !== 'continue' && options.onError !== 'stop')
    throw new MigrateError('BAD_OPTION', `--on-error takes continue or stop, not "${options.onError}".`);
  return {
    parallel: whole('parallel', options.parallel, DEFAULT_PARALLEL, 1),
    canary: whole('canary', options.canary, 0, 0),
  };
}

/**
 * One turn of the event loop. A SQLite step runs synchronously, and a database's work can then
 * end in promises alone: without a turn between databases, a SIGTERM or Ctrl-C handler would
 * not run until the whole fleet was done (as the one-file compiled CLI showed, where no module
 * load yields either).
 */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Calls `work` for every index in order, at most `parallel` at once, the first `canary` one at a
 * time (one of them returning false ends it all); no new one starts once `halted()` says so.
 */
export async function pool(
  count: number,
  limits: { parallel: number; canary: number },
  work: (index: number) => Promise<boolean>,
  halted: (canaryFailed: boolean) => boolean,
): Promise<void> {
  let next = 0;
  for (; next < Math.min(limits.canary, count); ) {
    await turn();
    if (halted(false)) return;
    if (!(await work(next++))) {
      halted(true);
      return;
    }
  }
  const worker = async () => {
    for (;;) {
      await turn();
      if (next >= count || halted(false)) return;
      await work(next++);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limits.parallel, count - next) }, worker));
}

/**
 * Move every database of `config.urls` to `target`, each through its own migrate() call. Never
 * throws for one database's failure: each ends as a {@link FleetTargetResult}. Throws (nothing
 * touched) for a target, URL or option that is wrong for all of them.
 */
export async function migrateFleet(
  config: FleetConfig,
  target: string | Target,
  options: FleetOptions = {},
): Promise<FleetResult> {
  const parsed = typeof target === 'string' ? parseTarget(target) : target;
  const limits = validate(config, parsed, options);
  const { urls, ...single } = config;
  const results: Array<FleetTargetResult | undefined> = urls.map(() => undefined);
  const emit = (e: FleetEvent) => options.onEvent?.(e);
  let halt: 'skipped' | 'interrupted' | undefined;
  const signal = options.signal;
  await pool(
    urls.length,
    limits,
    async (index) => {
      const url = shown(urls[index] as string).display;
      emit({ type: 'start', index, url });
      const r = await runTarget({ ...single, url: urls[index] as string }, parsed, options, (event) =>
        emit({ type: 'target', index, url, event }),
      );
      results[index] = r;
      emit({ type: 'done', index, result: r });
      if (!ok(r) && options.onError === 'stop') halt ??= 'skipped';
      return ok(r);
    },
    (canaryFailed) => {
      if (canaryFailed) halt ??= 'skipped';
      if (signal?.aborted) halt ??= 'interrupted';
      return halt !== undefined;
    },
  );
  const targets = results.map((r, index) => {
    if (r) return r;
    const url = shown(urls[index] as string).display;
    const outcome: FleetOutcome = halt ?? (signal?.aborted ? 'interrupted' : 'skipped');
    const left: FleetTargetResult = { url, outcome, from: null, to: null, ms: 0, steps: 0 };
    emit({ type: 'done', index, result: left });
    return left;
  });
  return { targets, counts: countOutcomes(targets), interrupted: signal?.aborted === true };
}

function countOutcomes(targets: readonly FleetTargetResult[]): FleetCounts {
  const counts = Object.fromEntries(FLEET_OUTCOMES.map((o) => [o, 0])) as FleetCounts;
  for (const t of targets) counts[t.outcome]++;
  counts.total = targets.length;
  return counts;
}

/** 130 when interrupted, else 1 when any migration failed, else 3 when any could not be reached, locked or refused, else 0. */
export function fleetExitCode(result: FleetResult): number {
  const c = result.counts;
  if (result.interrupted || c.interrupted > 0) return EXIT_INTERRUPTED;
  if (c.failed > 0) return EXIT.migrationFailed;
  if (c.unreachable > 0 || c.refused > 0) return EXIT.unreachable;
  return EXIT.ok;
}

/**
 * The databases of a targets file: one URL a line, `#` comments and blank lines ignored. A
 * line that is not a URL the runner accepts is refused with `source:line`, before anything runs.
 */
export function parseTargets(text: string, source: string): string[] {
  const urls: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    // A comment may also end a line (`postgres://… # tenant 7`); a URL holds no raw `#` or space.
    const line = raw
      .replace(/^\uFEFF/, '')
      .replace(/(^|\s)#.*$/, '')
      .trim();
    if (line === '' || line.startsWith('#')) return;
    try {
      parseUrl(line);
    } catch (error) {
      if (!(error instanceof MigrateError)) throw error;
      throw MigrateError.at(error.code, { file: source, line: i + 1 }, error.message);
    }
    urls.push(line);
  });
  return urls;
}
