/**
 * lock → read record → plan → apply step by step. Asks the driver what it can do; never asks
 * which dialect it is. `migrate` is prepare() (read the record, plan, build the steps) then
 * apply() under the lock; `sql` and `--dry-run` share prepare() and render the steps instead.
 * Also `stamp` and `status` (`history`, `current`).
 *
 * The rule of the layout: core/ imports nothing outside core/ (types included); it is what
 * `head`, `stamp`, `history`, `current`, `sql` and `new` load (docs/architecture.md).
 */
import { type Driver, PlanChanged } from './driver.ts';
import { type Direction, phaseOf, type Phase, versionOf } from './files.ts';
import type { RecordRow } from './record.ts';
import { type StepWork, runStep, StepFailure, stepWork, toMigrationFailed } from './step.ts';
import { MigrateError } from './errors.ts';
import { DEFAULT_TABLE } from './config.ts';
import type { Migration } from './files.ts';
import { appliedAfter, assess, current, parseTarget, plan, type Step, type Target, type Warning } from './plan.ts';
import { renderScript as renderSteps } from './script.ts';
import { type LockEvent, lockPolicy } from './locks.ts';
import { fromCaller, type RunnerConfig, type Session, withSession } from './session.ts';

export type { RunnerConfig, WaitEvent } from './session.ts';
export type { LockHolder, LockWaitEvent } from './lock-wait.ts';

export interface StepResult {
  direction: Direction;
  revision: string;
  name: string;
  file: string;
  durationMs: number;
}

export type MigrateEvent =
  | ({ type: 'step' } & StepResult)
  | { type: 'warning'; code: Warning['code']; message: string }
  | LockEvent;

export interface MigrateOptions {
  /** Plan and render, change nothing (not even the record table). */
  dryRun?: boolean;
  /**
   * Asked before a rollback of more than one revision (for `stamp`: before forgetting more than
   * one), with the planned steps; resolve true to go on. Without it, CONFIRMATION_REQUIRED.
   */
  confirm?: (steps: readonly Step[]) => boolean | Promise<boolean>;
  /** Called after each step commits, and for each warning. */
  onEvent?: (event: MigrateEvent) => void;
  /** Told, once the record is read, where the database stands and where the planned steps lead. */
  onPlan?: (plan: { from: Revision | null; to: Revision | null; steps: readonly Step[] }) => void;
  /**
   * Aborted: no further step starts (the one in flight commits or rolls back as it would), and
   * the call throws the signal's reason. Used by the fleet's Ctrl-C (docs/fleet.md).
   */
  signal?: AbortSignal;
}

/** A revision and its description (`name`, as the CLI's JSON has always called it). */
export interface Revision {
  revision: string;
  name: string;
}

export interface MigrateResult {
  steps: StepResult[];
  warnings: Warning[];
  /** Where the database stands afterwards (for a dry run: where it would stand); null at base. */
  current: Revision | null;
  dryRun: boolean;
  /** For a dry run: the script that would run. */
  script?: string;
}

/**
 * More than one revision rolled back, or forgotten by `stamp`, needs the caller's yes; so does
 * `stamp` forgetting one that may have left schema behind (`risky`, issue #26).
 */
export async function confirmed(
  steps: readonly Step[],
  options: Pick<MigrateOptions, 'confirm'>,
  what: string,
  risky: readonly Migration[] = [],
) {
  const count = steps.filter((s) => s.direction === 'down').length;
  if (count <= 1 && risky.length === 0) return;
  let ok = false;
  try {
    ok = options.confirm ? await options.confirm(steps) : false;
  } catch (error) {
    throw fromCaller(error);
  }
  if (ok) return;
  const subject =
    count === 1 ? (steps.find((s) => s.direction === 'down')?.migration.revision ?? '') : `${count} revisions`;
  const why =
    risky.length > 0
      ? ` (${risky.map((m) => m.revision).join(', ')} ran statements: what ${risky.length === 1 ? 'it' : 'they'} built stays in the database; \`-${count}\` rolls back instead)`
      : '';
  throw new MigrateError(
    'CONFIRMATION_REQUIRED',
    options.confirm
      ? `${what} ${subject} was not confirmed; nothing was changed.`
      : `${what} ${subject}${why} needs confirmation (--yes when not on a terminal).`,
  );
}

/**
 * Refuse, under the lock and before the first step, a run the database would refuse part-way:
 * the first step's file would be blamed, and a no-transaction file's first statements would
 * already have run (issue #15).
 */
export async function refuseMissingRights(driver: Driver, display: string): Promise<void> {
  const missing = await driver.missingRight();
  if (missing === undefined) return;
  throw new MigrateError(
    'DATABASE_REFUSED',
    `${display}: this user lacks ${missing}, which the run needs; nothing was run. Grant it, or run as a user that has it (README, "Permissions and connections").`,
  );
}

/** Refuse a record table of another shape, and an Alembic database nobody has stamped. */
export async function readRecordChecked(driver: Driver, table: string, allowAlembic = false): Promise<RecordRow[]> {
  const state = await driver.recordTableState();
  if (state.kind === 'foreign') {
    throw new MigrateError(
      'FOREIGN_RECORD_TABLE',
      `table ${table} exists but is not this runner's record (its columns: ${state.columns.join(', ')}); another migration tool (dbmate, golang-migrate, …) owns it. Use --table to keep the record elsewhere.`,
    );
  }
  if (state.kind === 'missing' && !allowAlembic && (await driver.tableExists('alembic_version'))) {
    throw new MigrateError(
      'ALEMBIC_DATABASE',
      `this database was managed by Alembic (it has an alembic_version table) and has no ${table}. Find the revision matching its schema and run \`npx tsx scripts/migrate.ts stamp <revision>\` to adopt it; migrations after that will then run.`,
    );
  }
  return driver.readRecord();
}

/** The last *applied* revision: a failed one is not where the database stands. */
function lastApplied(rows: readonly RecordRow[]): Revision | null {
  const last = current(rows.filter((r) => r.status === 'applied'));
  return last ? { revision: last.revision, name: last.name } : null;
}

/** Move the database to `target` (head, base, +N, -N, a revision): lock, prepare, apply. */
export async function migrate(
  config: RunnerConfig,
  target: string | Target,
  options: MigrateOptions = {},
): Promise<MigrateResult> {
  const parsed = typeof target === 'string' ? parseTarget(target) : target;
  if (options.dryRun) return dryRun(config, parsed, options);
  return withSession(config, true, (session) =>
    session.driver.withLock(
      async () => {
        const p = await prepare(session, config, parsed, emitter(options));
        planned(p, options);
        const { steps, current } = await apply(session, config, parsed, p, options);
        return { steps, warnings: p.warnings, current, dryRun: false };
      },
      config.lockTimeoutMs,
      config.onLockWait,
    ),
  );
}

/** `--dry-run`: prepare without the lock and render the script; nothing is created or changed. */
async function dryRun(config: RunnerConfig, target: Target, options: MigrateOptions): Promise<MigrateResult> {
  return withSession(config, false, async (session) => {
    const p = await prepare(session, config, target, emitter(options));
    planned(p, options);
    const script = await render(session, config, p);
    return { steps: [], warnings: p.warnings, current: p.current, dryRun: true, script };
  });
}

/** The script `target` would run, tracking statements included, for psql or sqlite3 to run by hand. */
export async function renderScript(config: RunnerConfig, target: string | Target): Promise<string> {
  const parsed = typeof target === 'string' ? parseTarget(target) : target;
  return withSession(config, false, async (session) => render(session, config, await prepare(session, config, parsed)));
}

/** What a run towards a target would do, read and planned before anything changes. */
interface Prepared {
  steps: Step[];
  works: StepWork[];
  warnings: Warning[];
  /** Where the database stands now; null at base. */
  from: Revision | null;
  /** Where the database stands once every step has run (now, when there is none); null at base. */
  current: Revision | null;
}

/**
 * Read the record (refusing another tool's), plan the steps to `target`, build each step's work,
 * and emit the plan's warnings.
 */
async function prepare(
  session: Session,
  config: RunnerConfig,
  target: Target,
  emit?: (event: MigrateEvent) => void,
): Promise<Prepared> {
  const { migrations, driver } = session;
  const dialect = driver.capabilities.folder;
  const rows = await readRecordChecked(driver, config.table ?? DEFAULT_TABLE);
  const { steps, warnings } = plan(migrations, rows, target, { strict: config.strict, dialect, phase: config.phase });
  const works = steps.map((s) => stepWork(s, dialect));
  for (const w of warnings) emit?.({ type: 'warning', code: w.code, message: w.message });
  const last = appliedAfter(migrations, rows, steps).at(-1);
  const then = last ? { revision: last.revision, name: last.description } : null;
  const from = lastApplied(rows);
  return { steps, works, warnings, from, current: steps.length > 0 ? then : from };
}

/** Tell the caller where the database stands and where the prepared steps lead. */
function planned(p: Prepared, options: MigrateOptions): void {
  try {
    options.onPlan?.({ from: p.from, to: p.current, steps: p.steps });
  } catch (error) {
    throw fromCaller(error);
  }
}

/** Run the prepared steps in order, under the lock; each result is emitted once its step commits. */
async function apply(
  session: Session,
  config: RunnerConfig,
  target: Target,
  prepared: Prepared,
  options: MigrateOptions,
): Promise<{ steps: StepResult[]; current: Revision | null }> {
  const { connection, driver } = session;
  let p = prepared;
  const emit = emitter(options);
  await confirmed(p.steps, options, 'rolling back');
  if (p.steps.length > 0) await refuseMissingRights(driver, connection.display);
  const pooler = p.steps.length > 0 ? driver.pooler?.() : undefined;
  if (pooler) {
    refuseThroughPooler(p, pooler.mode, connection.display);
    emit({ type: 'warning', code: 'POOLER', message: poolerNote(pooler.mode, connection.display) });
  }
  await driver.ensureRecordTable();
  const policy = lockPolicy(config, emit);
  const done: StepResult[] = [];
  for (let i = 0; i < p.steps.length; i++) {
    const step = p.steps[i] as Step;
    const work = p.works[i] as StepWork;
    options.signal?.throwIfAborted();
    let durationMs: number;
    try {
      ({ durationMs } = await runStep(driver, work, policy));
    } catch (error) {
      if (error instanceof StepFailure) throw toMigrationFailed(error, work, step, done);
      if (!(error instanceof PlanChanged)) throw error;
      // Another runner (one without the run's lock, behind a pooler) got there first: nothing of
      // this step ran. Plan the rest again, from the record as it is now, to where this run was going.
      const again = await prepare(session, config, absolute(target, p));
      if (pooler) refuseThroughPooler(again, pooler.mode, connection.display);
      emit({
        type: 'warning',
        code: 'PLAN_CHANGED',
        message: `${error.message}; planned again from the record as it is now: ${again.steps.length} step(s) left.`,
      });
      p = again;
      i = -1;
      continue;
    }
    const result: StepResult = {
      direction: step.direction,
      revision: step.migration.revision,
      name: step.migration.description,
      file: work.file,
      durationMs,
    };
    done.push(result);
    emit({ type: 'step', ...result });
  }
  return { steps: done, current: p.current };
}

/**
 * The target to plan again towards: the same one, unless it counted from where the database
 * stood (+N, -N), then where that plan led.
 */
function absolute(target: Target, p: Prepared): Target {
  if (target.kind !== 'forward' && target.kind !== 'back') return target;
  return p.current === null ? { kind: 'base' } : { kind: 'revision', name: p.current.revision };
}

/**
 * A no-transaction file cannot run through a transaction-mode pooler: its statements would run on
 * whichever server sessions the pooler hands out, between the runner's checks. Refused before
 * any step (issue #25).
 */
function refuseThroughPooler(p: Prepared, mode: 'transaction' | 'session', display: string): void {
  if (mode !== 'transaction') return;
  const i = p.works.findIndex((w) => !w.transactional && !w.empty);
  if (i < 0) return;
  const work = p.works[i] as StepWork;
  throw new MigrateError(
    'TRANSACTION_POOLER',
    `${work.file} runs outside a transaction (-- migrate:no-transaction), and ${display} is a pooler in transaction mode: its statements could run on any server session the pooler hands out. Nothing was run. Run migrations through a direct URL to the server (or a session-mode pool): set MIGRATE_DATABASE_URL to it, and the app keeps DATABASE_URL.`,
    { where: { file: work.file } },
  );
}

function poolerNote(mode: 'transaction' | 'session', display: string): string {
  return `${display} is a pooler (${mode} mode, as far as the runner can tell): the run holds no migration lock; each step takes its own inside its transaction and checks the record there. A direct URL (MIGRATE_DATABASE_URL) is still the better endpoint for migrations.`;
}

/** The prepared steps as one script, with the record table's creation when it is missing. */
async function render(session: Session, config: RunnerConfig, p: Prepared): Promise<string> {
  const { driver } = session;
  // A script that writes the record creates the table if it is missing wherever it is run: it may
  // be run on another database than the one it was printed from (issue #26).
  const missing = p.works.length > 0 || (await driver.recordTableState()).kind === 'missing';
  return renderSteps(driver.sql, config.table ?? DEFAULT_TABLE, missing, p.works);
}

/** The caller's event handler; an exception it throws is the caller's, not the run's. */
function emitter(options: MigrateOptions): (event: MigrateEvent) => void {
  return (event) => {
    try {
      options.onEvent?.(event);
    } catch (error) {
      throw fromCaller(error);
    }
  };
}

/** {@link renderScript} with where the database stands and how many steps the script holds. */
export async function planScript(
  config: RunnerConfig,
  target: string | Target,
): Promise<{ script: string; steps: number; current: Revision | null }> {
  const parsed = typeof target === 'string' ? parseTarget(target) : target;
  return withSession(config, false, async (session) => {
    const p = await prepare(session, config, parsed);
    return { script: await render(session, config, p), steps: p.steps.length, current: p.current };
  });
}

export interface RevisionStatus {
  revision: string;
  name: string;
  state: 'applied' | 'pending' | 'failed';
  /** `post` for a `-- migrate:phase post` revision (run once the rollout is done), else `pre`; absent when its files are missing. */
  phase?: Phase;
  appliedAt: string | null;
  /** changed: edited since applied; missing: applied but its files are gone; out of order: pending, older than the newest applied. */
  flags: Array<'changed' | 'missing' | 'out of order' | 'failed'>;
}

export interface StatusResult {
  current: Revision | null;
  revisions: RevisionStatus[];
}

/** Every revision, oldest first, with its state and flags (`history`, `current`). Changes nothing. */
export async function status(config: RunnerConfig): Promise<StatusResult> {
  const table = config.table ?? DEFAULT_TABLE;
  return withSession(config, false, async ({ migrations, driver }) => {
    const rows = await readRecordChecked(driver, table, true);
    const a = assess(migrations, rows);
    const changed = new Set(a.changed.map((m) => m.version));
    const late = new Set(a.outOfOrder.map((m) => m.version));
    const revisions: Array<RevisionStatus & { version: bigint }> = migrations.map((m) => {
      const row = a.recorded.get(m.version);
      const flags: RevisionStatus['flags'] = [];
      if (changed.has(m.version)) flags.push('changed');
      if (late.has(m.version)) flags.push('out of order');
      if (row?.status === 'failed') flags.push('failed');
      return {
        version: m.version,
        revision: m.revision,
        name: m.description,
        state: row ? row.status : 'pending',
        phase: phaseOf(m),
        appliedAt: row?.appliedAt ?? null,
        flags,
      };
    });
    for (const r of a.missing) {
      revisions.push({
        version: versionOf(r.revision),
        revision: r.revision,
        name: r.name,
        state: r.status,
        appliedAt: r.appliedAt,
        flags: r.status === 'failed' ? ['missing', 'failed'] : ['missing'],
      });
    }
    revisions.sort((x, y) => (x.version < y.version ? -1 : x.version > y.version ? 1 : 0));
    return { current: lastApplied(rows), revisions: revisions.map(({ version: _v, ...r }) => r) };
  });
}
