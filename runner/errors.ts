/**
 * Two kinds of failure, as STYLE.md asks: a `MigrateError` with a stable `code` (usage,
 * validation, connection, lock), and a `MigrationFailed` that points at file:line:column of
 * the SQL that failed and keeps the driver's error as `cause`.
 */

/** Stable codes; README.md lists each with its meaning. */
export type ErrorCode =
  // the folder (checked before any database is touched)
  | 'NO_MIGRATIONS'
  | 'BAD_FILENAME'
  | 'MISSING_DOWN'
  | 'MISSING_UP'
  | 'DUPLICATE_VERSION'
  | 'UNKNOWN_DIRECTIVE'
  | 'MISPLACED_DIRECTIVE'
  | 'DIALECT_MISMATCH'
  | 'TRANSACTION_CONTROL'
  // usage
  | 'BAD_URL'
  | 'BAD_TABLE_NAME'
  | 'BAD_TARGET'
  | 'BAD_OPTION'
  | 'UNKNOWN_REVISION'
  | 'AMBIGUOUS_REVISION'
  | 'NOT_ENOUGH_PENDING'
  | 'NOT_ENOUGH_APPLIED'
  | 'BAD_DESCRIPTION'
  | 'CONFIRMATION_REQUIRED'
  // the database's record, against the folder
  | 'FOREIGN_RECORD_TABLE'
  | 'ALEMBIC_DATABASE'
  | 'CHECKSUM_MISMATCH'
  | 'MISSING_FILE'
  | 'OUT_OF_ORDER'
  | 'FAILED_MIGRATION'
  // reaching the database
  | 'CONNECTION_FAILED'
  | 'DATABASE_REFUSED'
  | 'LOCK_TIMEOUT';

/** Exit status the CLI uses for each kind (SPEC.md, "Exit codes"). */
export const EXIT = { ok: 0, migrationFailed: 1, usage: 2, unreachable: 3 } as const;

const UNREACHABLE: ReadonlySet<ErrorCode> = new Set(['CONNECTION_FAILED', 'DATABASE_REFUSED', 'LOCK_TIMEOUT']);

/** A usage, validation, connection or lock error: nothing was changed by the call that threw it. */
export class MigrateError extends Error {
  override readonly name = 'MigrateError';
  readonly exitCode: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.exitCode = UNREACHABLE.has(code) ? EXIT.unreachable : EXIT.usage;
  }
}

/** Where in a file an error sits; line and column are 1-based and count code points. */
export interface SourcePosition {
  file: string;
  line?: number;
  column?: number;
  /** The text of the failing line, for showing under the message. */
  sourceLine?: string;
}

/**
 * A migration file failed. Its own transaction was rolled back (or, for a no-transaction file,
 * a `failed` row records how far it got); the steps listed in `completed` stay applied.
 */
export class MigrationFailed extends Error {
  override readonly name = 'MigrationFailed';
  readonly exitCode = EXIT.migrationFailed;
  constructor(
    message: string,
    readonly where: SourcePosition,
    readonly info: {
      revision: string;
      direction: 'up' | 'down';
      /** SQLSTATE on PostgreSQL, the SQLite result code name on SQLite. */
      sqlState?: string;
      detail?: string;
      hint?: string;
      /** For a no-transaction file: statements that completed before the failure. */
      statementsRun?: number;
      /** Steps of the same run that committed before this one failed. */
      completed: ReadonlyArray<{ direction: 'up' | 'down'; revision: string; name: string; durationMs: number }>;
    },
    options: { cause: unknown },
  ) {
    super(message, options);
  }

  /** `file:line:column: message (SQLSTATE)`, the form editors and terminals jump to. */
  get headline(): string {
    const { file, line, column } = this.where;
    const at = line === undefined ? file : column === undefined ? `${file}:${line}` : `${file}:${line}:${column}`;
    const state = this.info.sqlState ? ` (${this.info.sqlState})` : '';
    return `${at}: ${this.message}${state}`;
  }
}
