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

import type { LockWaitEvent } from './lock-wait.ts';
import type { Dialect, Direction } from './dialect.ts';
import type Database from 'better-sqlite3';
import type { DialectSql, RecordRow, RecordTableState } from './record.ts';
import type { ServerRole } from './hosts.ts';

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

/**
 * What a step assumes the record says when its transaction begins: `up`, the revision is not in
 * it; `down`, the revision is applied and the last one applied. Checked inside the step's own
 * transaction, after the step's exclusion (a lock the transaction's end releases) is taken, so
 * it holds whatever the session did before: behind a transaction-mode pooler too (issue #25).
 */
export interface RecordExpectation {
  direction: Direction;
  revision: string;
}

/**
 * Thrown by `transaction` when the record no longer says what {@link RecordExpectation} assumed
 * (another runner applied or rolled back the revision meanwhile): nothing of the transaction ran.
 */
export class PlanChanged extends Error {
  override readonly name = 'PlanChanged';
  constructor(readonly expected: RecordExpectation) {
    super(
      `the record changed before ${expected.revision} could be ${expected.direction === 'up' ? 'applied' : 'rolled back'}: another runner got there first`,
    );
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
  /** The wait is for other transactions to end, not for a lock on `relation` (DROP INDEX CONCURRENTLY). */
  transactionWait?: boolean;
}

/** What a driver lends to schema readers, reads only: its session, and the record table to leave out. */
export type SchemaSource =
  | {
      query: (text: string, params?: unknown[]) => Promise<Array<Record<string, unknown>>>;
      /**
       * `query` for a read sent again and again with other parameters (check's catalog readings
       * after every step): prepared once per session, so the server plans it once. Reads only.
       */
      repeated: (text: string, params?: unknown[]) => Promise<Array<Record<string, unknown>>>;
      schema: string;
      table: string;
    }
  | { db: Database.Database; table: string };

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

export interface Driver {
  readonly capabilities: Capabilities;
  /** The dialect's record-table SQL (pure: builds statements, runs nothing). */
  readonly sql: DialectSql;

  /**
   * Prove the database answers. Called first, and repeatedly by `--wait` until it succeeds.
   * Throws the client's error when the database cannot be reached. A server driver also
   * chooses the URL's host here (core/hosts.ts), and for a command that writes throws
   * `MigrateError('STANDBY')` on a hot standby and `MigrateError('READ_ONLY_SESSION')` on a
   * read-only session: before the lock, before any step.
   */
  ping(): Promise<void>;

  /**
   * The server the session reached, after a successful `ping`: its address, whether it is a
   * standby, and its replay lag. Absent for a database without servers (SQLite).
   */
  serverRole?(): ServerRole | undefined;

  /**
   * Hold the migration lock (one runner per database and record table) while `fn` runs, then
   * release it, also when `fn` throws. Waiting holds no transaction and no snapshot: it polls.
   * The lock is released by the database or the OS when the process dies (kill -9 included).
   * Throws `MigrateError('LOCK_TIMEOUT')`, naming the holder, when not taken within `timeoutMs`
   * (undefined: wait on). While another runner holds it, `onWait` is told who, within 2 s and
   * then every 5 s (see lock-wait.ts).
   */
  withLock<T>(fn: () => Promise<T>, timeoutMs: number | undefined, onWait?: (event: LockWaitEvent) => void): Promise<T>;

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
   * With `expect`, the transaction first takes the step exclusion and checks the record; throws
   * {@link PlanChanged}, having run nothing, when the record says otherwise.
   */
  transaction(
    statements: readonly string[],
    options?: { rollback?: boolean; limits?: Limits; expect?: RecordExpectation },
  ): Promise<void>;

  /**
   * Optional: what stands between the runner and the database, once `withLock` has begun. A
   * pooler: the migration lock is not held for the run (each step takes its exclusion in its own
   * transaction instead); `transaction` mode (as far as can be told): a no-transaction file cannot
   * run there. Undefined: a direct session.
   */
  pooler?(): { mode: 'transaction' | 'session' } | undefined;

  /**
   * Run one statement on its own, outside any transaction the runner opens; throws the
   * database's error. With `limits`, they hold for this statement only: the session's own
   * settings are back afterwards.
   */
  exec(sql: string, limits?: Limits): Promise<void>;

  /** The error says a lock was not granted within the attempt's limit (and the statement did nothing). */
  lockBusy(error: unknown): boolean;

  /**
   * Optional: what the runner's session waits on right now, and who holds it; called only once
   * a step has run a while, so a driver may open a second connection for it then. Never throws:
   * undefined when nothing can be learnt. `withQuery`: include the blockers' query text. A
   * driver without it makes the runner report waits without naming a holder.
   */
  observe?(withQuery: boolean): Promise<Observation | undefined>;

  /**
   * Optional, for dialects with `CREATE INDEX CONCURRENTLY`: whether a failed build left this
   * index behind INVALID. A driver without it has no such indexes.
   */
  invalidIndex?(name: string): Promise<boolean>;

  /**
   * Before the first step, under the lock: a right this user lacks that the run would need
   * (creating the record table, writing it), named for the refusal; undefined when none is
   * missing or the dialect has no rights.
   */
  missingRight(): Promise<string | undefined>;

  /**
   * What schema readers (catalog/) read through: this driver's own session, and the record
   * table to leave out. Reads only; called between steps, never during one.
   */
  schemaSource(): Promise<SchemaSource>;

  /** End whatever transaction statements run by `exec` left open or aborted, rolling it back; nothing when none. */
  rollback(): Promise<void>;

  /** Close every connection. Safe to call twice. */
  close(): Promise<void>;
}
