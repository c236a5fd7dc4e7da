/**
 * The step protocol, once for both dialects: how one migration file and its record change reach
 * the database through a driver's I/O, how a failure is pinned to a statement, and what the
 * record says when a file that runs outside a transaction stops part-way.
 */
import { hostname } from 'node:os';
import { type Driver, StatementFailed, TransactionEnded } from './driver.ts';
import type { Dialect } from './files.ts';
import { MigrateError, MigrationFailed } from './errors.ts';
import { failedNote, interrupted, type RecordRow } from './record.ts';
import { directionOf, lockStopNote, recordEndedInside, retryStatement } from './step-stops.ts';
import type { Step } from './plan.ts';
import {
  concurrentIndexName,
  firstTransactionControl,
  holdsStatement,
  type Statement,
  splitStatements,
} from './split.ts';
import { lineColumn } from './position.ts';
import { DEFAULT_LIMITS, DEFAULT_RETRY_FOR_MS, type LockPolicy, limitsFor, withRetries } from './locks.ts';

/** What a step writes to the record table, in the same transaction as the file. */
export type RecordChange =
  | { kind: 'insert'; revision: string; description: string; checksum: string }
  | { kind: 'delete'; revision: string };

/** One migration file applied or rolled back, with its record change. */
export interface StepWork {
  /** Path as shown to the user (relative to the working directory when possible). */
  file: string;
  /** The file's text after BOM removal and CRLF → LF: exactly what is sent to the server. */
  sql: string;
  /** The file split into statements; used to run no-transaction files, and to locate errors. */
  statements: Statement[];
  /** `false` for files with the `-- migrate:no-transaction` directive. */
  transactional: boolean;
  /** True when the file holds only comments: nothing is sent, only the record changes. */
  empty: boolean;
  record: RecordChange;
}

/** What `runStep` reports on success. */
export interface StepDone {
  durationMs: number;
}

/**
 * Thrown by `runStep`: the file did not run to its end. For a transactional step nothing of it
 * remains (neither SQL effects nor the record change) when `rolledBack` is true. For a
 * no-transaction step the first `statementsRun` statements took effect and the record says
 * `failed`.
 */
export class StepFailure extends Error {
  override readonly name = 'StepFailure';
  constructor(
    message: string,
    readonly details: {
      /** The database's own error, unchanged. */
      cause: unknown;
      /** Offset (UTF-16 code units into StepWork.sql) the database or a replay pinned the error to. */
      offset?: number;
      /** Index into StepWork.statements of the statement that failed, when known for certain. */
      statementIndex?: number;
      /** SQLSTATE or the client's error code. */
      code?: string;
      detail?: string;
      hint?: string;
      /** How many statements completed (no-transaction steps). */
      statementsRun?: number;
      /** The step's transaction was still open when it failed, and was rolled back: nothing of the file remains. */
      rolledBack: boolean;
    },
  ) {
    super(message, { cause: details.cause });
  }
}

/**
 * Files a step runs, checked; a transactional file that ends its own transaction is refused
 * before anything runs. The split into statements waits until something asks for it (a
 * no-transaction file, a failure to locate): a file that runs whole needs none.
 */
export function stepWork(step: Step, dialect: Dialect): StepWork {
  const m = step.migration;
  const file = step.direction === 'up' ? m.up : m.down;
  const control = file.transactional ? firstTransactionControl(file.text, dialect) : undefined;
  if (control) {
    const { line, column } = lineColumn(file.text, control.offset);
    throw MigrateError.at(
      'TRANSACTION_CONTROL',
      { file: file.path, line, column },
      `"${control.sql.split(/\s/)[0]}" inside a file that already runs in a transaction. Remove it, or put "-- migrate:no-transaction" at the top of the file to run it as written.`,
    );
  }
  return new Work(
    file.path,
    file.text,
    file.transactional,
    step.direction === 'up'
      ? { kind: 'insert', revision: m.revision, description: m.description, checksum: m.up.checksum }
      : { kind: 'delete', revision: m.revision },
    dialect,
  );
}

/** A class with the split on first use, rather than a literal split at once (see docs/performance.md). */
class Work implements StepWork {
  readonly empty: boolean;
  #statements: Statement[] | undefined;
  readonly #dialect: Dialect;
  constructor(
    readonly file: string,
    readonly sql: string,
    readonly transactional: boolean,
    readonly record: RecordChange,
    dialect: Dialect,
  ) {
    this.#dialect = dialect;
    this.empty = !holdsStatement(sql, dialect);
  }

  get statements(): Statement[] {
    return (this.#statements ??= splitStatements(this.sql, this.#dialect));
  }

  /** The split sits on the prototype: listed here so that a caller's logs carry it. */
  toJSON(): StepWork {
    const { file, sql, statements, transactional, empty, record } = this;
    return { file, sql, statements, transactional, empty, record };
  }
}

/**
 * Run one file and its record change.
 * - transactional (and empty) files: the file and its record change commit together or not at all;
 * - no-transaction files: statements run one by one outside a transaction; the record says
 *   `failed` before the first and counts each as it completes, so a runner killed in between
 *   leaves the truth behind; at the end the row becomes `applied` (or goes, for a rollback).
 * Throws {@link StepFailure} when the file fails, and `MigrateError('CONNECTION_FAILED')`
 * naming the step when the connection is lost during it.
 */
export async function runStep(
  driver: Driver,
  work: StepWork,
  policy: LockPolicy = { limits: DEFAULT_LIMITS, retryForMs: DEFAULT_RETRY_FOR_MS },
): Promise<StepDone> {
  const started = performance.now();
  const table = await driver.recordTable();
  const step: StepRun = { driver, work, policy, revision: work.record.revision, file: work.file };
  if (!work.transactional && !work.empty) await runStatements(step, table, started);
  else await runTransaction(step, table);
  // Rounded to 0.1 ms: a caller logs it, and a float's last digits are noise (issue #26).
  return { durationMs: Math.round((performance.now() - started) * 10) / 10 };
}

/** One step's driver, work and lock policy (what withRetries needs, and the work). */
interface StepRun {
  driver: Driver;
  work: StepWork;
  policy: LockPolicy;
  revision: string;
  file: string;
}

async function runTransaction(step: StepRun, table: string): Promise<void> {
  const { driver, work } = step;
  const r = work.record;
  const record =
    r.kind === 'insert'
      ? driver.sql.insert(table, {
          revision: r.revision,
          description: r.description,
          checksum: r.checksum,
          status: 'applied',
          durationMs: { step: new Date().toISOString() },
        })
      : driver.sql.remove(table, r.revision);
  try {
    const limits = step.policy.limits;
    const expect = { direction: directionOf(r), revision: r.revision };
    await withRetries(step, () => driver.transaction(work.empty ? [record] : [work.sql, record], { limits, expect }));
  } catch (error) {
    if (error instanceof MigrateError) throw lostDuring(error, work);
    if (error instanceof TransactionEnded) {
      const message = await recordEndedInside(driver, work, table, error);
      throw new StepFailure(message, { cause: error.statementError ?? error, rolledBack: false });
    }
    if (!(error instanceof StatementFailed)) throw error;
    // An error of the tracking statement, or of the check before COMMIT, is not in the file.
    const where = !work.empty && error.index === 0 ? await locate(driver, work, error.cause) : {};
    throw failure(error.cause, { ...where, rolledBack: error.rolledBack });
  }
}

/** A no-transaction file, one statement per query, each its own implicit transaction (CREATE INDEX CONCURRENTLY needs that). */
async function runStatements(step: StepRun, table: string, started: number): Promise<void> {
  const { driver, work } = step;
  const { sql } = driver;
  const r = work.record;
  const direction = directionOf(r);
  const note = interrupted(direction, owner());
  const count = work.statements.length;
  let recorded = false;
  let ran = 0;
  let error: unknown;
  try {
    // The claim, under the step exclusion and record check: of two runners only one starts the file (#25).
    await withRetries(step, () =>
      driver.transaction(
        [
          r.kind === 'insert'
            ? sql.insert(table, { ...r, status: 'failed', durationMs: 0, statementsRun: 0, error: note })
            : sql.progress(table, r.revision, 0, note),
        ],
        { limits: step.policy.limits, expect: { direction, revision: r.revision } },
      ),
    );
    recorded = true;
    for (const s of work.statements) {
      await withRetries(
        step,
        () => driver.exec(s.sql, limitsFor(s.sql, step.policy.limits)),
        (e) => retryStatement(driver, work, ran, e),
      );
      ran++;
      if (ran < count) await driver.exec(sql.progress(table, r.revision, ran, note));
    }
    const done = performance.now() - started;
    await driver.transaction([
      r.kind === 'insert' ? sql.markApplied(table, r.revision, done) : sql.remove(table, r.revision),
    ]);
    return;
  } catch (e) {
    if (e instanceof MigrateError && e.code === 'TABLE_LOCK_TIMEOUT' && recorded) {
      // The statement that waited did nothing: with none before it, nothing of the file ran either.
      await driver.exec(
        ran === 0 && r.kind === 'insert'
          ? sql.remove(table, r.revision)
          : sql.progress(table, r.revision, ran, failedNote(direction, e.message)),
      );
    }
    if (e instanceof MigrateError) throw lostDuring(e, work, recorded ? ran : undefined);
    if (!recorded) throw e; // the runner's own write on the record table: the migrator reports it
    error = e instanceof StatementFailed ? e.cause : e;
  }
  // A file's own BEGIN may have left an open or aborted transaction.
  await driver.rollback();
  await nameInvalidIndex(driver, work.statements[ran]?.sql, error);
  const where: { statementIndex?: number; offset?: number } = {};
  const statement = work.statements[ran];
  if (statement) {
    where.statementIndex = ran;
    const within = sql.errorOffset(error, statement.sql);
    if (within !== undefined) where.offset = statement.offset + within;
  }
  const stepFailure = failure(error, { ...where, statementsRun: ran, rolledBack: false });
  const stopped = lockStopNote(driver, work, ran, error);
  const shown = stopped ? new StepFailure(stepFailure.message + stopped, stepFailure.details) : stepFailure;
  await driver.exec(sql.progress(table, r.revision, ran, failedNote(direction, shown.message)));
  throw shown;
}

/** Who runs a no-transaction file, for the record row that claims it: this machine, process and start. */
function owner(): string {
  return `on ${hostname()} (pid ${process.pid}, since ${new Date().toISOString()})`;
}

/**
 * A `CREATE INDEX CONCURRENTLY` that failed after it began (a statement timeout, a duplicate
 * key, a cancel) leaves its index behind, INVALID, and the next run would stop on "already
 * exists": the error names the index and the way out.
 */
async function nameInvalidIndex(driver: Driver, statement: string | undefined, error: unknown): Promise<void> {
  const name = concurrentIndexName(statement ?? '');
  if (name === undefined || typeof error !== 'object' || error === null) return;
  if (!(await driver.invalidIndex?.(name).catch(() => false))) return;
  Object.assign(error, {
    hint: `It left the index ${name} behind, INVALID. Remove it with \`DROP INDEX CONCURRENTLY ${name};\`, then run again.`,
  });
}

/**
 * Where a transactional file failed. The database may pin the error in the text sent (the whole
 * file). Otherwise replay the statements in a transaction that always rolls back, and name a
 * statement only when it fails with the very same code and message; else say nothing rather
 * than guess.
 */
async function locate(
  driver: Driver,
  work: StepWork,
  error: unknown,
): Promise<{ statementIndex?: number; offset?: number }> {
  const offset = driver.sql.errorOffset(error, work.sql);
  if (offset !== undefined) {
    let statementIndex: number | undefined;
    work.statements.forEach((s, i) => {
      if (s.offset <= offset) statementIndex = i;
    });
    return statementIndex === undefined ? { offset } : { offset, statementIndex };
  }
  try {
    await driver.transaction(
      work.statements.map((s) => s.sql),
      { rollback: true },
    );
  } catch (e) {
    const s = e instanceof StatementFailed ? work.statements[e.index] : undefined;
    if (!s || !sameError((e as StatementFailed).cause, error)) return {};
    const index = (e as StatementFailed).index;
    const within = driver.sql.statementOffset((e as StatementFailed).cause, s.sql);
    return within === undefined ? { statementIndex: index } : { statementIndex: index, offset: s.offset + within };
  }
  return {};
}

function sameError(a: unknown, b: unknown): boolean {
  const x = a as { code?: unknown; message?: unknown } | null;
  const y = b as { code?: unknown; message?: unknown } | null;
  return x?.code === y?.code && x?.message === y?.message;
}

/**
 * The database's message, code, detail and hint; never a PostgreSQL error's `file`/`line`/
 * `routine`, which are the server's C source location, not the migration's.
 */
function failure(error: unknown, details: Omit<StepFailure['details'], 'cause'>): StepFailure {
  const e = error as { message?: string; code?: unknown; detail?: unknown; hint?: unknown } | null;
  const all: StepFailure['details'] = { cause: error, ...details };
  if (typeof e?.code === 'string') all.code = e.code;
  if (typeof e?.detail === 'string') all.detail = e.detail;
  if (typeof e?.hint === 'string') all.hint = e.hint;
  return new StepFailure(e?.message ?? String(error), all);
}

/**
 * A connection lost during a step: say which step, and what the record now says of it. `ran`:
 * for a no-transaction file whose `failed` row was written, the statements it counts as done.
 */
function lostDuring(error: MigrateError, work: StepWork, ran?: number): MigrateError {
  if (error.code !== 'CONNECTION_FAILED') return error;
  const r = work.record;
  const what = `${r.kind === 'insert' ? 'Applying' : 'Rolling back'} ${r.revision} (${work.file})`;
  const said = /[.!?]$/.test(error.message) ? error.message : `${error.message}.`;
  const after = work.transactional
    ? ' Its transaction committed whole or not at all: `history` shows which.'
    : ran === undefined
      ? ''
      : ` The file runs outside a transaction: it is now recorded as failed, with ${ran} statement(s) done; the one after them may or may not have taken effect. Check the database, then run \`stamp\`.`;
  return new MigrateError('CONNECTION_FAILED', `${what} was interrupted: ${said}${after}`, { cause: error });
}

/** The `MigrationFailed` a caller sees: file, line and column from the failure's offset or statement. */
export function toMigrationFailed(
  failure: StepFailure,
  work: StepWork,
  step: Step,
  completed: MigrationFailed['info']['completed'],
): MigrationFailed {
  const d = failure.details;
  let offset = d.offset;
  if (offset === undefined && d.statementIndex !== undefined) offset = work.statements[d.statementIndex]?.offset;
  const where: { file: string; line?: number; column?: number; sourceLine?: string } = { file: work.file };
  if (offset !== undefined) {
    const { line, column } = lineColumn(work.sql, offset);
    Object.assign(where, { line, column, sourceLine: work.sql.split('\n')[line - 1] });
  }
  return new MigrationFailed(
    failure.message,
    where,
    {
      revision: step.migration.revision,
      direction: step.direction,
      sqlState: d.code,
      detail: d.detail,
      hint: d.hint,
      statementsRun: d.statementsRun,
      rolledBack: d.rolledBack,
      completed,
    },
    { cause: d.cause },
  );
}

/**
 * Replace the record so that it lists exactly `rows`, in that order (stamp): one transaction,
 * no migration SQL.
 */
export async function writeRecord(
  driver: Driver,
  rows: ReadonlyArray<Pick<RecordRow, 'revision' | 'checksum' | 'appliedAt' | 'durationMs'> & { description: string }>,
): Promise<void> {
  const table = await driver.recordTable();
  await driver.transaction([
    driver.sql.removeAll(table),
    ...rows.map((r) => driver.sql.insert(table, { ...r, status: 'applied' })),
  ]);
}
