/**
 * lock → read record → plan → apply step by step. Asks the driver what it can do; never asks
 * which dialect it is.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Direction, Driver, RecordRow, StepWork } from './driver.ts';
import { MigrateError, MigrationFailed } from './errors.ts';
import { DEFAULT_DIR, DEFAULT_TABLE, hideSecrets, parseUrl, type Connection } from './config.ts';
import { loadMigrations, versionOf, type Migration } from './files.ts';
import { appliedAfter, assess, current, parseTarget, plan, type Step, type Target, type Warning } from './plan.ts';
import { renderScript as renderSteps } from './record.ts';
import { runStep, StepFailure, stepWork, toMigrationFailed, writeRecord } from './step.ts';
import { type LockEvent, lockPolicy } from './locks.ts';

export interface RunnerConfig {
  /** Database URL (see docs/cli.md#the-database-url: postgres://…, sqlite:path, the Python forms). */
  url: string;
  /** Root of the dialect folders, or a folder holding .sql files directly. Default `sql`. */
  dir?: string;
  /** Record table; may be `schema.table` on PostgreSQL. Default `schema_migrations`. */
  table?: string;
  /** Give up on the lock after this long (LOCK_TIMEOUT). Default: wait as long as it takes. */
  lockTimeoutMs?: number;
  /** Keep retrying the connection this long before CONNECTION_FAILED. Default: one try. */
  waitMs?: number;
  /** Out-of-order pending revisions are an error instead of a warning. */
  strict?: boolean;
  /** Longest wait of one attempt for a table lock, ms (default 1000); 0: as long as it takes. */
  tableLockTimeoutMs?: number;
  /** Longest run of one statement, ms. Default: the server's setting. */
  statementTimeoutMs?: number;
  /** Total time a step may keep retrying after lock timeouts, ms (default 60000), then TABLE_LOCK_TIMEOUT. */
  retryForMs?: number;
  /** Name the blockers' query text in lock events (it may hold secrets). */
  showBlockerQuery?: boolean;
  /** Told when `waitMs` waiting starts, and about every 5 s while it lasts (the CLI prints it). */
  onWait?: (event: WaitEvent) => void;
}

export interface WaitEvent {
  /** The database, password hidden. */
  database: string;
  elapsedMs: number;
  limitMs: number;
  /** Why the last attempt failed. */
  reason: string;
}

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

interface Session {
  connection: Connection;
  migrations: Migration[];
  driver: Driver;
}

export async function openDriver(
  connection: Connection,
  table: string,
  create: boolean,
  deadline?: number,
): Promise<Driver> {
  if (connection.dialect === 'sqlite') {
    const { SqliteDriver } = await import('./drivers/sqlite.ts');
    return new SqliteDriver({ filename: connection.filename, table, create });
  }
  const { PostgresDriver } = await import('./drivers/postgres.ts');
  return new PostgresDriver({ url: connection.url, display: connection.display, table, create, deadline });
}

/**
 * Ping until the database answers or the deadline (`--wait`) passes; `signal` stops the retries.
 * Each attempt's connect timeout ends by the deadline (see openDriver), so the limit holds.
 * Only what waiting can fix is retried: a refused login or a missing database fails at once.
 */
async function reach(driver: Driver, connection: Connection, config: RunnerConfig, signal?: AbortSignal) {
  const waitMs = config.waitMs ?? 0;
  const started = Date.now();
  const deadline = started + waitMs;
  let nextNote = started;
  for (;;) {
    try {
      await driver.ping();
      return;
    } catch (error) {
      const final = unfixable(error, connection);
      if (final) throw final;
      const reason = error instanceof Error ? scrub(error.message, connection) : String(error);
      // 100 ms: no attempt is worth starting in less; it could not finish its connect.
      if (Date.now() >= deadline - 100 || signal?.aborted) {
        const what = error instanceof MigrateError ? error.message : `cannot reach ${connection.display}: ${reason}`;
        throw new MigrateError(
          'CONNECTION_FAILED',
          `${what}${waitMs ? ` (kept trying for ${Math.round(waitMs / 1000)} s)` : ' (--wait keeps trying)'}`,
          { cause: error },
        );
      }
      if (Date.now() >= nextNote) {
        nextNote += 5000;
        const elapsedMs = Date.now() - started;
        config.onWait?.({ database: connection.display, elapsedMs, limitMs: waitMs, reason });
      }
      // A fresh client per attempt: postgres.js backs off longer after each failed connect of one client.
      if (driver.capabilities.connectsToServer) await driver.close();
      await sleep(Math.min(250, deadline - 100 - Date.now()), undefined, { signal }).catch(() => {});
    }
  }
}

/**
 * The server answered and said no: a wrong password (28xxx), a database that does not exist
 * (3D000), an option it does not know. Waiting changes none of these. Startup and overload
 * states (08, 57P, 53300) and errors without a server's answer are worth another try.
 */
function unfixable(error: unknown, connection: Connection): MigrateError | undefined {
  if (error instanceof MigrateError && error.code !== 'CONNECTION_FAILED') return error;
  const answer = error instanceof MigrateError ? error.cause : error;
  const e = answer as { name?: unknown; code?: unknown; message?: unknown } | null;
  if (e?.name !== 'PostgresError' || typeof e.code !== 'string') return undefined;
  if (/^(08|57P)/.test(e.code) || e.code === '53300') return undefined;
  const text = scrub(String(e.message), connection);
  const why = e.code.startsWith('28')
    ? `${connection.display} refused the login: ${text} (${e.code}). Check the user name and password in the URL`
    : e.code === '3D000'
      ? `${connection.display}: ${text} (${e.code}). Create the database, or fix its name in the URL`
      : `${connection.display} refused the connection: ${text} (${e.code})`;
  return new MigrateError('CONNECTION_FAILED', `${why}; not retried, since waiting cannot fix it.`, { cause: answer });
}

/** A driver message must never carry the URL's password. */
function scrub(text: string, connection: Connection): string {
  return connection.dialect === 'postgres' ? hideSecrets(text, connection.secrets) : text;
}

/**
 * Validate the folder and the URL, then connect. `create` false: read-only commands must not
 * create a SQLite file. A server connection is started first and the folder read while the
 * server sets up the session; a folder error still wins over a connection error, and nothing
 * but the ping has been sent when it is raised.
 */
async function open(config: RunnerConfig, create: boolean): Promise<Session> {
  const connection = parseUrl(config.url);
  const deadline = config.waitMs ? Date.now() + config.waitMs : undefined;
  const driver = await openDriver(connection, config.table ?? DEFAULT_TABLE, create, deadline);
  const stop = new AbortController();
  const early = driver.capabilities.connectsToServer ? reach(driver, connection, config, stop.signal) : undefined;
  early?.catch(() => {}); // may fail while the folder is read: handled below, not an unhandled rejection
  try {
    if (early) await new Promise(setImmediate); // lets the client open its socket before the event loop is busy
    const migrations = loadMigrations(config.dir ?? DEFAULT_DIR, connection.dialect);
    await (early ?? reach(driver, connection, config));
    return { connection, migrations, driver };
  } catch (error) {
    stop.abort();
    await early?.catch(() => {});
    await driver.close();
    throw error;
  }
}

async function withSession<T>(config: RunnerConfig, create: boolean, fn: (s: Session) => Promise<T>): Promise<T> {
  const session = await open(config, create);
  try {
    return await fn(session);
  } catch (error) {
    throw refusedBookkeeping(error, session.connection) ?? error;
  } finally {
    await session.driver.close();
  }
}

/** What the caller's own callbacks (confirm, onEvent) threw: theirs to see as it is, whatever its code. */
const callerErrors = new WeakSet<object>();

function fromCaller(error: unknown): unknown {
  if (typeof error === 'object' && error !== null) callerErrors.add(error);
  return error;
}

/**
 * A database error outside any migration file: the database refused the runner's own work on
 * the record table or the lock (permission denied, a read-only file, a full disk). Such errors
 * carry the database's code (an SQLSTATE, `SQLITE_READONLY`, `EACCES`); an error without one
 * is a bug of ours and stays as it is.
 */
function refusedBookkeeping(error: unknown, connection: Connection): MigrateError | undefined {
  if (
    error instanceof MigrateError ||
    error instanceof MigrationFailed ||
    error instanceof StepFailure ||
    callerErrors.has(error as object)
  )
    return undefined;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || code === '') return undefined;
  const message = scrub((error as Error).message ?? String(error), connection);
  return new MigrateError(
    'DATABASE_REFUSED',
    `${connection.display} refused the runner's own work on its record table or lock: ${message} (${code}). The role needs to create the record table once, then read and write it (docs/record-table.md, "Permissions and connections").`,
    { cause: error },
  );
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

/** A driver that can name, before anything runs, a right the run would lack (both drivers can). */
interface KnowsRights {
  missingRight?(): Promise<string | undefined>;
}

/**
 * Refuse, under the lock and before the first step, a run the database would refuse part-way:
 * the first step's file would be blamed, and a no-transaction file's first statements would
 * already have run (issue #15).
 */
async function refuseMissingRights(driver: Driver, display: string): Promise<void> {
  const missing = await (driver as Driver & KnowsRights).missingRight?.();
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
