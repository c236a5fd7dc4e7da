/**
 * lock → read record → plan → apply step by step. Asks the driver what it can do; never asks
 * which dialect it is.
 */
import type { Driver } from './driver.ts';
import { type Direction, versionOf } from './files.ts';
import type { RecordRow } from './record.ts';
import { type StepWork, runStep, StepFailure, stepWork, toMigrationFailed, writeRecord } from './step.ts';
import { MigrateError } from './errors.ts';
import { DEFAULT_TABLE } from './config.ts';
import { appliedAfter, assess, current, parseTarget, plan, type Step, type Target, type Warning } from './plan.ts';
import { renderScript as renderSteps } from './script.ts';
import { type LockEvent, lockPolicy } from './locks.ts';
import { fromCaller, type RunnerConfig, withSession } from './session.ts';

export type { RunnerConfig, WaitEvent } from './session.ts';

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

/** More than one revision rolled back, or forgotten by `stamp`, needs the caller's yes. */
async function confirmed(steps: readonly Step[], options: Pick<MigrateOptions, 'confirm'>, what: string) {
  const count = steps.filter((s) => s.direction === 'down').length;
  if (count <= 1) return;
  let ok = false;
  try {
    ok = options.confirm ? await options.confirm(steps) : false;
  } catch (error) {
    throw fromCaller(error);
  }
  if (!ok) {
    throw new MigrateError(
      'CONFIRMATION_REQUIRED',
      options.confirm
        ? `${what} ${count} revisions was not confirmed; nothing was changed.`
        : `${what} ${count} revisions needs confirmation (--yes when not on a terminal).`,
    );
  }
}

/**
 * Refuse, under the lock and before the first step, a run the database would refuse part-way:
 * the first step's file would be blamed, and a no-transaction file's first statements would
 * already have run (issue #15).
 */
async function refuseMissingRights(driver: Driver, display: string): Promise<void> {
  const missing = await driver.missingRight();
  if (missing === undefined) return;
  throw new MigrateError(
    'DATABASE_REFUSED',
    `${display}: this user lacks ${missing}, which the run needs; nothing was run. Grant it, or run as a user that has it (README, "Permissions and connections").`,
  );
}

/** Refuse a record table of another shape, and an Alembic database nobody has stamped. */
async function readRecordChecked(driver: Driver, table: string, allowAlembic = false): Promise<RecordRow[]> {
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

/** Move the database to `target` (head, base, +N, -N, a revision). */
export async function migrate(
  config: RunnerConfig,
  target: string | Target,
  options: MigrateOptions = {},
): Promise<MigrateResult> {
  const parsed = typeof target === 'string' ? parseTarget(target) : target;
  const table = config.table ?? DEFAULT_TABLE;
  return withSession(config, !options.dryRun, async ({ connection, migrations, driver }) => {
    const run = async (): Promise<MigrateResult> => {
      const rows = await readRecordChecked(driver, table);
      const { steps, warnings } = plan(migrations, rows, parsed, { strict: config.strict });
      const works = steps.map((s) => stepWork(s, driver.capabilities.folder));
      const emit = (event: MigrateEvent) => {
        try {
          options.onEvent?.(event);
        } catch (error) {
          throw fromCaller(error);
        }
      };
      for (const w of warnings) emit({ type: 'warning', code: w.code, message: w.message });
      const after = appliedAfter(migrations, rows, steps);
      const last = after[after.length - 1];
      const finalRevision = last ? { revision: last.revision, name: last.description } : null;
      if (options.dryRun) {
        const missing = (await driver.recordTableState()).kind === 'missing';
        const script = renderSteps(driver.sql, table, missing, works);
        return {
          steps: [],
          warnings,
          current: steps.length > 0 ? finalRevision : lastApplied(rows),
          dryRun: true,
          script,
        };
      }
      await confirmed(steps, options, 'rolling back');
      if (steps.length > 0) await refuseMissingRights(driver, connection.display);
      await driver.ensureRecordTable();
      const policy = lockPolicy(config, emit);
      const done: StepResult[] = [];
      for (let i = 0; i < steps.length; i++) {
        const step = steps[i] as Step;
        const work = works[i] as StepWork;
        let durationMs: number;
        try {
          ({ durationMs } = await runStep(driver, work, policy));
        } catch (error) {
          if (error instanceof StepFailure) throw toMigrationFailed(error, work, step, done);
          throw error;
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
      return { steps: done, warnings, current: steps.length > 0 ? finalRevision : lastApplied(rows), dryRun: false };
    };
    return options.dryRun ? run() : driver.withLock(run, config.lockTimeoutMs);
  });
}

/** The script `target` would run, tracking statements included, for psql or sqlite3 to run by hand. */
export async function renderScript(config: RunnerConfig, target: string | Target): Promise<string> {
  const result = await migrate(config, target, { dryRun: true, confirm: () => true });
  return result.script ?? '';
}

export interface RevisionStatus {
  revision: string;
  name: string;
  state: 'applied' | 'pending' | 'failed';
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

export interface StampResult {
  current: Revision | null;
  /** Revisions now recorded, in order. */
  recorded: string[];
}

/**
 * Record the database as being at `target` without running any SQL: adopts a database built by
 * Alembic or `create_all`, accepts reviewed edits (re-records checksums), and resolves a
 * `failed` row. The record afterwards lists exactly the local revisions up to the target.
 */
export async function stamp(
  config: RunnerConfig,
  target: string | Target,
  options: Pick<MigrateOptions, 'confirm'> = {},
): Promise<StampResult> {
  const parsed = typeof target === 'string' ? parseTarget(target) : target;
  const table = config.table ?? DEFAULT_TABLE;
  return withSession(config, true, async ({ connection, migrations, driver }) =>
    driver.withLock(async () => {
      const rows = await readRecordChecked(driver, table, true);
      // Stamping is the way out of a failed, edited or missing revision, so those are not refused.
      // A failed row counts as recorded here: `stamp -1` forgets it, `stamp <its revision>` keeps it.
      const recorded = rows.map((r) => ({ ...r, status: 'applied' as const }));
      const { steps } = plan(migrations, recorded, parsed, { enforce: false });
      await confirmed(steps, options, 'forgetting');
      const after = appliedAfter(migrations, recorded, steps);
      const keep = new Map(rows.map((r) => [r.revision, r]));
      const now = new Date().toISOString();
      await refuseMissingRights(driver, connection.display);
      await driver.ensureRecordTable();
      await writeRecord(
        driver,
        after.map((m) => {
          const old = keep.get(m.revision);
          return {
            revision: m.revision,
            description: m.description,
            checksum: m.up.checksum,
            appliedAt: old?.appliedAt ?? now,
            durationMs: old?.status === 'applied' ? old.durationMs : 0,
          };
        }),
      );
      const last = after[after.length - 1];
      return {
        current: last ? { revision: last.revision, name: last.description } : null,
        recorded: after.map((m) => m.revision),
      };
    }, config.lockTimeoutMs),
  );
}
