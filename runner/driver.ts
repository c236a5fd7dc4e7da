/**
 * The contract a dialect implements. The migrator only ever talks to a database through this
 * interface, and it asks the driver for what it can do rather than testing the dialect's name.
 *
 * Every method may be called only while no other method of the same driver is running (the
 * migrator is sequential). A method that cannot reach the database throws
 * `MigrateError('CONNECTION_FAILED')`; other database errors pass through unchanged, except in
 * `runStep`, which throws {@link StepFailure} so the migrator can point at file, line and column.
 *
 * @module
 */

import type { Schema } from './schema.ts';

/** One row of the record table (`schema_migrations` by default). */
export interface RecordRow {
  /** The version as written in the file name, e.g. `20250128_140000` or `000001`. */
  revision: string;
  /** The description part of the file name, e.g. `initial_schema`. */
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

/** What a step writes to the record table, in the same transaction as the file. */
export type RecordChange =
  | { kind: 'insert'; revision: string; name: string; checksum: string }
  | { kind: 'delete'; revision: string };

/** A statement of a file and where it starts, as produced by the splitter. */
export interface Statement {
  sql: string;
  /** Offset (UTF-16 code units) of the statement's first character in the file's text. */
  offset: number;
}

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
 * remains (neither SQL effects nor the record change). For a no-transaction step the first
 * `statementsRun` statements took effect and the driver has written a `failed` record row.
 */
export class StepFailure extends Error {
  override readonly name = 'StepFailure';
  constructor(
    message: string,
    readonly details: {
      /** The driver's own error, unchanged. */
      cause: unknown;
      /** Offset (UTF-16 code units into StepWork.sql) the server or the driver pinned the error to. */
      offset?: number;
      /** Index into StepWork.statements of the statement that failed, when known for certain. */
      statementIndex?: number;
      /** SQLSTATE or the client's error code. */
      code?: string;
      detail?: string;
      hint?: string;
      /** How many statements completed (no-transaction steps). */
      statementsRun?: number;
    },
  ) {
    super(message, { cause: details.cause });
  }
}

/** What the migrator needs to know about a dialect without naming it. */
export interface Capabilities {
  /** The dialect folder name under `--dir`: `postgres` or `sqlite`. */
  folder: 'postgres' | 'sqlite';
  /** Table names may be qualified with a schema (`ops.schema_migrations`). */
  schemaQualifiedTables: boolean;
  /**
   * `ping` waits on a server and creates nothing: the folder can be read while the connection
   * is being made. False for SQLite, whose first open may create the file.
   */
  connectsToServer: boolean;
}

/** The state of the record table before anything is created. */
export type RecordTableState =
  | { kind: 'missing' }
  | { kind: 'ok' }
  /** A table with the record table's name but another shape (dbmate's, golang-migrate's, …). */
  | { kind: 'foreign'; columns: string[] };

export interface Driver {
  readonly capabilities: Capabilities;

  /**
   * Prove the database answers. Called first, and repeatedly by `--wait` until it succeeds.
   * Throws the client's error when the database cannot be reached.
   */
  ping(): Promise<void>;

  /**
   * Hold the migration lock (one runner per database and record table) while `fn` runs, then
   * release it, also when `fn` throws. Waiting holds no transaction and no snapshot: it polls.
   * The lock is released by the database or the OS when the process dies (kill -9 included).
   * Throws `MigrateError('LOCK_TIMEOUT')` when not taken within `timeoutMs` (undefined: wait on).
   */
  withLock<T>(fn: () => Promise<T>, timeoutMs: number | undefined): Promise<T>;

  /** Whether the record table exists, and whether it has our shape. Creates nothing. */
  recordTableState(): Promise<RecordTableState>;

  /** Whether a table of this name exists (used to spot an Alembic-managed database). */
  tableExists(name: string): Promise<boolean>;

  /** Create the record table if missing. Called under the lock, before the first write. */
  ensureRecordTable(): Promise<void>;

  /** All rows of the record table, in order of application. [] when the table is missing. */
  readRecord(): Promise<RecordRow[]>;

  /**
   * Run one file and its record change.
   * - transactional: file and record change commit together or not at all;
   * - no-transaction: statements run one by one outside a transaction; on success the record
   *   change is written; on failure a `failed` row is written (for an insert) and
   *   `StepFailure` carries `statementsRun`;
   * - empty: only the record change.
   * SQLite also checks foreign keys before committing. Throws `StepFailure`.
   */
  runStep(step: StepWork): Promise<StepDone>;

  /**
   * Replace the record so that it lists exactly `rows` (stamp): keeps nothing else. Runs in one
   * transaction, runs no migration SQL.
   */
  writeRecord(
    rows: Array<Pick<RecordRow, 'revision' | 'name' | 'checksum' | 'appliedAt' | 'durationMs'>>,
  ): Promise<void>;

  /**
   * The SQL a person would run by hand for this step (`sql` command, `--dry-run`): the file and
   * its tracking statement, wrapped in BEGIN/COMMIT when transactional.
   */
  renderStep(step: StepWork): string;

  /** The first line of a rendered script: the client's stop-on-first-error setting (psql, sqlite3). */
  renderHeader(): string;

  /** The statement that creates the record table if missing, for rendered scripts. */
  renderEnsureRecordTable(): string;

  /**
   * The database's schema in the shape both dialects share (runner/schema.ts): tables, columns,
   * keys, indexes, enum types and the other objects a migration can leave behind. Leaves out the
   * record table and the database's own bookkeeping (`sqlite_sequence`, the indexes PostgreSQL
   * builds for constraints). Reads only. Called by `check`, on scratch databases, between steps.
   */
  introspect(): Promise<Schema>;

  /** Close every connection. Safe to call twice. */
  close(): Promise<void>;
}
