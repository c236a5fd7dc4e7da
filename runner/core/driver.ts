/**
 * The contract a dialect implements: I/O only. The step protocol (what runs in which
 * transaction, the record changes, locating an error) lives once in step.ts, and the SQL of the
 * record table in a pure module per dialect (drivers/*-sql.ts); a driver only moves statements
 * to the database and answers what it was asked. The migrator asks the driver what it can do
 * rather than testing the dialect's name.
 *
 * Every method may be called only while no other method of the same driver is running (the
 * runner is sequential). A method that cannot reach the database throws
 * `MigrateError('CONNECTION_FAILED')`; other database errors pass through unchanged, except in
 * `transaction`, which throws {@link StatementFailed} naming the statement that failed.
 *
 * @module
 */

import type { Dialect } from './files.ts';
import type { DialectSql } from './record.ts';

/** Which file of a pair runs: `up` applies a revision, `down` rolls it back. */
export type Direction = 'up' | 'down';

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

/** What a step writes to the record table, in the same transaction as the file. */
export type RecordChange =
  | { kind: 'insert'; revision: string; description: string; checksum: string }
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

/**
 * Thrown by `transaction`: statement `index` of those given failed (`statements.length`: the
 * commit itself, or a check the driver makes before it). `cause` is the database's error.
 */
export class StatementFailed extends Error {
  override readonly name = 'StatementFailed';
  constructor(
    readonly index: number,
    /** The transaction was still open when the error came, and the driver rolled it back. */
    readonly rolledBack: boolean,
    override readonly cause: unknown,
  ) {
    super((cause as { message?: string } | null)?.message ?? String(cause), { cause });
  }
}

/** Thrown by `transaction` when the session is already inside a transaction a file opened and left open. */
export class TransactionLeftOpen extends Error {
  override readonly name = 'TransactionLeftOpen';
  constructor() {
    super('the file left a transaction open (BEGIN without COMMIT); it was rolled back');
  }
}

/**
 * Thrown by `transaction` when a statement ended the transaction itself (a COMMIT or ROLLBACK
 * the runner's reader did not see as one): what followed it ran in autocommit, and the
 * statements after `index` (the record change) were not run.
 */
export class TransactionEnded extends Error {
  override readonly name = 'TransactionEnded';
  constructor(
    /** The statement that ended it (or one before it). */
    readonly index: number,
    /** That statement's own error, when it also failed. */
    readonly statementError?: unknown,
  ) {
    super('the statement ended the transaction the runner opened for it');
  }
}

/** How long one attempt of a step may wait: sent with each attempt, never left on the session. */
export interface Limits {
  /** Longest wait for a table lock, in ms; 0: as long as it takes. */
  lockTimeoutMs: number;
  /** Longest run of one statement, in ms; undefined: the server's own setting. */
  statementTimeoutMs?: number;
}

/** A session holding (or queued ahead for) a lock the runner waits on. */
export interface Blocker {
  pid: number;
  applicationName: string;
  user: string;
  /** As the server reports it: `idle in transaction`, `active`, … */
  state: string;
  /** Age of its open transaction, ms; null when it has none. */
  transactionAgeMs: number | null;
  /** The lock modes it holds (or waits for) on the relation. */
  mode: string;
  /** Its current or last query: only when asked for (it may hold secrets). */
  query?: string;
}

/** What a step that takes long is doing, seen from a second connection. */
export interface Observation {
  /** The relation the runner's session waits to lock, when it waits on one. */
  relation?: string;
  /** The lock mode it asked for. */
  wanted?: string;
  blockers: Blocker[];
  /** An index build's progress. */
  index?: { phase: string; blocksDone: number; blocksTotal: number };
  /** What a database that cannot name sessions can say about who holds it. */
  holder?: string;
}

/** What the runner needs to know about a dialect without naming it. */
export interface Capabilities {
  /** The dialect folder name under `--dir`: `postgres` or `sqlite`. */
  folder: Dialect;
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
  /** The dialect's record-table SQL (pure: builds statements, runs nothing). */
  readonly sql: DialectSql;

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
   * The record table's name as every statement the runner sends must spell it (quoted, and on
   * PostgreSQL qualified with the schema it was resolved to once), for `sql` to build on.
   */
  recordTable(): Promise<string>;

  /**
   * Run `statements` in order inside one transaction and commit (or, with `rollback`, always
   * roll back: nothing of it remains). Stops at the first failing statement and throws
   * {@link StatementFailed}; nothing of the transaction then remains, unless a statement ended
   * the transaction itself (then `rolledBack` is false). Throws {@link TransactionLeftOpen}
   * (after rolling that transaction back) when a statement run by `exec` left one open.
   * PostgreSQL sends it all in one round trip; SQLite runs it without yielding to the event
   * loop, and checks foreign keys (violations added since the lock was taken) before COMMIT.
   */
  transaction(statements: readonly string[], options?: { rollback?: boolean; limits?: Limits }): Promise<void>;

  /**
   * Run one statement on its own, outside any transaction the runner opens; throws the
   * database's error. With `limits`, they hold for this statement only: the session's own
   * settings are back afterwards.
   */
  exec(sql: string, limits?: Limits): Promise<void>;

  /** The error says a lock was not granted within the attempt's limit (and the statement did nothing). */
  lockBusy(error: unknown): boolean;

  /**
   * What the runner's session waits on right now, and who holds it; called only once a step
   * has run a while, so a driver may open a second connection for it then. Never throws:
   * undefined when nothing can be learnt. `withQuery`: include the blockers' query text.
   */
  observe(withQuery: boolean): Promise<Observation | undefined>;

  /** For a `CREATE INDEX CONCURRENTLY` that failed: whether it left this index behind INVALID. */
  invalidIndex(name: string): Promise<boolean>;

  /** End whatever transaction statements run by `exec` left open or aborted, rolling it back; nothing when none. */
  rollback(): Promise<void>;

  /** Close every connection. Safe to call twice. */
  close(): Promise<void>;
}
