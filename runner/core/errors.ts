/**
 * Two kinds of failure: a `MigrateError` with a stable `code` (usage,
 * validation, connection, lock), and a `MigrationFailed` that points at file:line:column of
 * the SQL that failed and keeps the driver's error as `cause`.
 */
import type { Direction } from './dialect.ts';

/** Problems of the folder's files, found before any database is touched; `check` reports each. */
export type FolderCode =
  | 'BAD_FILENAME'
  | 'MISSING_DOWN'
  | 'MISSING_UP'
  | 'DUPLICATE_VERSION'
  | 'UNKNOWN_DIRECTIVE'
  | 'MISPLACED_DIRECTIVE'
  | 'DIALECT_MISMATCH'
  | 'PHASE_MISMATCH'
  | 'TRANSACTION_CONTROL'
  | 'READING_SETTING'
  | 'NUL_BYTE'
  | 'BAD_ENCODING'
  | 'UNREADABLE_FILE';

/** Stable codes; docs/errors.md#error-codes lists each with its meaning. */
export type ErrorCode =
  // the folder (checked before any database is touched)
  | 'NO_MIGRATIONS'
  | FolderCode
  // usage
  | 'BAD_URL'
  | 'BAD_TABLE_NAME'
  | 'BAD_TARGET'
  | 'BAD_OPTION'
  | 'BAD_BASE'
  | 'UNKNOWN_REVISION'
  | 'AMBIGUOUS_REVISION'
  | 'NOT_ENOUGH_PENDING'
  | 'NOT_ENOUGH_APPLIED'
  | 'BAD_DESCRIPTION'
  | 'CONFIRMATION_REQUIRED'
  | 'WRITE_FAILED'
  // the database's record, against the folder
  | 'FOREIGN_RECORD_TABLE'
  | 'ALEMBIC_DATABASE'
  | 'CHECKSUM_MISMATCH'
  | 'MISSING_FILE'
  | 'OUT_OF_ORDER'
  | 'FAILED_MIGRATION'
  | 'EMPTY_UP'
  // reaching the database
  | 'CONNECTION_FAILED'
  | 'DATABASE_REFUSED'
  | 'LOCK_TIMEOUT'
  | 'TABLE_LOCK_TIMEOUT'
  | 'TRANSACTION_POOLER'
  | 'STANDBY'
  | 'READ_ONLY_SESSION'
  | 'SESSION_SETTING';

/** Exit status the CLI uses for each kind. */
export const EXIT = { ok: 0, migrationFailed: 1, usage: 2, unreachable: 3 } as const;

const UNREACHABLE: ReadonlySet<ErrorCode> = new Set([
  'CONNECTION_FAILED',
  'DATABASE_REFUSED',
  'LOCK_TIMEOUT',
  'TABLE_LOCK_TIMEOUT',
  'STANDBY',
  'READ_ONLY_SESSION',
]);

/** Where in a file something sits; line and column are 1-based and count code points. */
export interface Where {
  file: string;
  line?: number;
  column?: number;
}

/** `file:line:column`, `file:line` or `file`: the form editors and terminals jump to. */
export function formatWhere(where: Where): string {
  const { file, line, column } = where;
  return line === undefined ? file : column === undefined ? `${file}:${line}` : `${file}:${line}:${column}`;
}

/** A usage, validation, connection or lock error: nothing was changed by the call that threw it. */
export class MigrateError extends Error {
  override readonly name = 'MigrateError';
  readonly exitCode: number;
  /** The file (and place in it) the error is about, when it is about one. */
  readonly where?: Where;
  /** The message without its location, for callers that show `where` themselves (`check`). */
  readonly reason: string;
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown; where?: Where; reason?: string },
  ) {
    super(message, options);
    this.exitCode = UNREACHABLE.has(code) ? EXIT.unreachable : EXIT.usage;
    if (options?.where) this.where = options.where;
    this.reason = options?.reason ?? message;
  }

  /** An error about a place in a file: the message is `file:line:column: reason`. */
  static at(code: ErrorCode, where: Where, reason: string, cause?: unknown): MigrateError {
    return new MigrateError(code, `${formatWhere(where)}: ${reason}`, {
      where,
      reason,
      ...(cause === undefined ? {} : { cause }),
    });
  }
}

/** Where a migration failed, with the text of the failing line for showing under the message. */
export interface SourcePosition extends Where {
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
      direction: Direction;
      /** SQLSTATE on PostgreSQL, the SQLite result code name on SQLite. */
      sqlState?: string;
      detail?: string;
      hint?: string;
      /** For a no-transaction file: statements that completed before the failure. */
      statementsRun?: number;
      /** The file's transaction was still open when it failed and was rolled back: nothing of the file remains. */
      rolledBack: boolean;
      /** Steps of the same run that committed before this one failed. */
      completed: ReadonlyArray<{ direction: Direction; revision: string; name: string; durationMs: number }>;
    },
    options: { cause: unknown },
  ) {
    super(message, options);
  }

  /** `file:line:column: message (SQLSTATE)`, the form editors and terminals jump to. */
  get headline(): string {
    const state = this.info.sqlState ? ` (${this.info.sqlState})` : '';
    return `${formatWhere(this.where)}: ${this.message}${state}`;
  }
}
