/**
 * A session with the database a config names: the URL parsed, the folder read while the
 * server sets up the connection, `--wait` as a deadline, and the errors that come back from
 * the database's refusals made readable. Every command that touches a database opens one here.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Driver } from './driver.ts';
import type { LockWaitEvent } from './lock-wait.ts';
import { MigrateError, MigrationFailed } from './errors.ts';
import { DEFAULT_DIR, DEFAULT_TABLE, hideSecrets, parseUrl, type Connection } from './config.ts';
import { loadMigrations, type Migration, type Phase } from './files.ts';
import { StepFailure } from './step.ts';

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
  /**
   * `pre`: apply pending pre revisions only, leaving `-- migrate:phase post` ones pending (a
   * rolling deploy's first step); `post`, or none: everything. Issue #30.
   */
  phase?: Phase;
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
  /** Told, naming the holder, when another runner holds the migration lock: within 2 s, then every 5 s. */
  onLockWait?: (event: LockWaitEvent) => void;
}

export interface WaitEvent {
  /** The database, password hidden. */
  database: string;
  elapsedMs: number;
  limitMs: number;
  /** Why the last attempt failed. */
  reason: string;
}

export interface Session {
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
    const migrations = loadMigrations(config.dir ?? DEFAULT_DIR, connection.dialect, {
      phases: config.phase !== undefined,
    });
    await (early ?? reach(driver, connection, config));
    return { connection, migrations, driver };
  } catch (error) {
    stop.abort();
    await early?.catch(() => {});
    await driver.close();
    throw error;
  }
}

export async function withSession<T>(
  config: RunnerConfig,
  create: boolean,
  fn: (s: Session) => Promise<T>,
): Promise<T> {
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

export function fromCaller(error: unknown): unknown {
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
