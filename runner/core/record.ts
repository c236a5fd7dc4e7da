/** What both dialects share about the record table: its columns, the shape of its SQL, and rendered scripts. */
import type { Direction } from './files.ts';
import { sqlString } from './quote.ts';

/** The record table's columns; a table of the same name without all of them belongs to another tool. */
/** One row of the record table (`schema_migrations` by default). */
export interface RecordRow {
  /** The version as written in the file name, e.g. `20250128_140000` or `000001`. */
  revision: string;
  /** The description part of the file name, e.g. `initial_schema` (the record table's `name` column). */
  name: string;
  /** sha256 (hex) of the up file after BOM removal and CRLF → LF. */
  checksum: string;
  /** `failed` only for a no-transaction file that stopped part-way. */
  status: 'applied' | 'failed';
  /** UTC, ISO-8601 with milliseconds (`2025-01-28T14:00:00.000Z`). */
  appliedAt: string;
  durationMs: number;
  /** Order of application: 1 for the first revision ever applied, rising. */
  seq: number;
  /** For a `failed` row: how many statements of the file completed before the error. */
  statementsRun: number | null;
  /** For a `failed` row: the error message. */
  error: string | null;
}

/** The state of the record table before anything is created. */
export type RecordTableState =
  | { kind: 'missing' }
  | { kind: 'ok' }
  /** A table with the record table's name but another shape (dbmate's, golang-migrate's, …). */
  | { kind: 'foreign'; columns: string[] };

export const RECORD_COLUMNS = [
  'revision',
  'name',
  'checksum',
  'status',
  'applied_at',
  'duration_ms',
  'seq',
  'statements_run',
  'error',
] as const;

/** The record table's state from the columns a table of its name has ([] when there is none). */
export function recordTableState(columns: readonly string[]): RecordTableState {
  if (columns.length === 0) return { kind: 'missing' };
  return RECORD_COLUMNS.every((c) => columns.includes(c)) ? { kind: 'ok' } : { kind: 'foreign', columns: [...columns] };
}

/** The values of one new record row. */
export interface RecordValues {
  revision: string;
  description: string;
  checksum: string;
  status: 'applied' | 'failed';
  /**
   * Milliseconds, or `step`: the time since the step began, measured by the database inside the
   * step's transaction (`startedAt` is the step's start by this machine's clock, for a dialect
   * that cannot ask the transaction when it began).
   */
  durationMs: number | { step: string };
  /** ISO-8601 UTC; the database's current time when left out. */
  appliedAt?: string;
  statementsRun?: number | null;
  error?: string | null;
}

/**
 * The record table's SQL in one dialect. Pure: it builds statements, runs nothing, so both the
 * runner and rendered scripts (`sql`, `--dry-run`) spell each statement the same way. `table`
 * is always the table as quoted by `quoteTable` (or as the driver resolved it).
 */
export interface DialectSql {
  /** The first line of a rendered script: the client's stop-on-first-error setting (psql, sqlite3). */
  readonly header: string;
  /** The record table's name as given (`t`, `s.t`), quoted for SQL. */
  quoteTable(name: string): string;
  /** Statement(s) creating the record table named `name` if it is missing, for rendered scripts. */
  createTable(name: string): string;
  /** The one INSERT of a record row; `seq` is the next after the highest. */
  insert(table: string, row: RecordValues): string;
  /** A no-transaction file's progress: `failed`, with how many statements completed and why. */
  progress(table: string, revision: string, statementsRun: number, error: string): string;
  /** A no-transaction file that ran to its end: its row becomes `applied`. */
  markApplied(table: string, revision: string, durationMs: number): string;
  /** The record row of one revision goes (a rollback). */
  remove(table: string, revision: string): string;
  /** Every row goes (stamp rewrites the record). */
  removeAll(table: string): string;
  /**
   * What a rendered script runs at its start and after each file so it stops where the runner
   * would ('' where nothing is needed).
   */
  readonly scriptGuard: { start: string; afterFile(transactional: boolean): string };
  /** Where in `text`, sent as one query, the database pinned `error` (UTF-16 offset); undefined when it did not. */
  errorOffset(error: unknown, text: string): number | undefined;
  /** Where in one statement a replay found to fail `error` points; undefined when nothing says. */
  statementOffset(error: unknown, statement: string): number | undefined;
}

const nullable = (v: string | number | null | undefined) =>
  v === null || v === undefined ? 'NULL' : typeof v === 'number' ? String(v) : sqlString(v);

/**
 * The record statements both dialects spell alike, given how each spells the current time, a
 * literal timestamp and a step's duration.
 */
export function recordStatements(spell: {
  now: string;
  timestamp: (iso: string) => string;
  duration: (step: string) => string;
}): Pick<DialectSql, 'insert' | 'progress' | 'markApplied' | 'remove' | 'removeAll'> {
  return {
    insert(table, r) {
      const at = r.appliedAt === undefined ? spell.now : spell.timestamp(r.appliedAt);
      const ms =
        typeof r.durationMs === 'number' ? String(Math.round(r.durationMs)) : spell.duration(r.durationMs.step);
      return `INSERT INTO ${table} (revision, name, checksum, status, applied_at, duration_ms, seq, statements_run, error)
VALUES (${sqlString(r.revision)}, ${sqlString(r.description)}, ${sqlString(r.checksum)}, ${sqlString(r.status)}, ${at}, ${ms}, (SELECT coalesce(max(seq), 0) + 1 FROM ${table}), ${nullable(r.statementsRun)}, ${nullable(r.error)})`;
    },
    progress: (table, revision, ran, error) =>
      `UPDATE ${table} SET status = 'failed', statements_run = ${ran}, error = ${sqlString(error)} WHERE revision = ${sqlString(revision)}`,
    markApplied: (table, revision, durationMs) =>
      `UPDATE ${table} SET status = 'applied', statements_run = NULL, error = NULL, applied_at = ${spell.now}, duration_ms = ${Math.round(durationMs)} WHERE revision = ${sqlString(revision)}`,
    remove: (table, revision) => `DELETE FROM ${table} WHERE revision = ${sqlString(revision)}`,
    removeAll: (table) => `DELETE FROM ${table}`,
  };
}

/** A row of the record table as either client returns it (numbers may come back as strings). */
export function toRecordRow(r: Record<string, unknown>): RecordRow {
  return {
    revision: String(r.revision),
    name: String(r.name),
    checksum: String(r.checksum),
    status: r.status === 'failed' ? 'failed' : 'applied',
    appliedAt: String(r.applied_at),
    durationMs: Number(r.duration_ms),
    seq: Number(r.seq),
    statementsRun: r.statements_run === null ? null : Number(r.statements_run),
    error: r.error === null ? null : String(r.error),
  };
}

const PREFIX = { up: 'applying: ', down: 'rolling back: ' } as const;

/**
 * The error a `failed` row records for a no-transaction file. The record has no column for
 * the direction, and the way out differs, so the text begins with it. The runner's prefix comes
 * first: no error text from the database can pass for it.
 */
export function failedNote(direction: Direction, message: string): string {
  return PREFIX[direction] + message;
}

/**
 * Which file of the pair a failed row is about, and its error without the prefix. Rows written
 * before the prefix existed say nothing of their direction (undefined), except the interrupted
 * ones, whose wording did.
 */
export function readFailedNote(error: string | null): { direction: Direction | undefined; message: string } {
  const text = error ?? 'unknown error';
  for (const direction of ['up', 'down'] as const) {
    if (text.startsWith(PREFIX[direction])) return { direction, message: text.slice(PREFIX[direction].length) };
  }
  const older = /^the runner stopped while (applying|rolling back) this file/.exec(text);
  return { direction: older ? (older[1] === 'applying' ? 'up' : 'down') : undefined, message: text };
}

/**
 * Whether the record still says what a step assumed (driver.ts, RecordExpectation), as a
 * condition both dialects read alike: `up`, the revision is not in it; `down`, the revision is
 * applied and the last one applied. Each driver asks it inside the step's transaction, once the
 * step's exclusion is held (issue #25).
 */
export function expectationHolds(table: string, e: { direction: Direction; revision: string }): string {
  const revision = sqlString(e.revision);
  return e.direction === 'up'
    ? `NOT EXISTS (SELECT 1 FROM ${table} WHERE revision = ${revision})`
    : `EXISTS (SELECT 1 FROM ${table} WHERE revision = ${revision} AND status = 'applied' AND seq = (SELECT max(seq) FROM ${table}))`;
}

/**
 * What the record says of a no-transaction file while it runs: read only if the runner dies
 * before the file ends. statements_run counts what completed.
 */
export function interrupted(direction: Direction, owner?: string): string {
  const who = owner === undefined ? 'the runner' : `the runner ${owner}`;
  return failedNote(
    direction,
    `${who} is running this file, or stopped before its end; the statement after those counted may or may not have taken effect (if that runner still runs, let it finish)`,
  );
}
