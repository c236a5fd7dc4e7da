/**
 * SQLite through better-sqlite3: I/O only. The record table's statements come from
 * sqlite-sql.ts, the step protocol from step.ts.
 *
 * better-sqlite3 is synchronous, and a transaction runs begin → statements → commit with no
 * `await` in between: an async gap inside a transaction lets other work interleave (ley shipped
 * that bug; better-sqlite3's docs warn about it).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { accessSync, constants, existsSync, realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import {
  type Capabilities,
  type Driver,
  type Limits,
  type Observation,
  PlanChanged,
  type RecordExpectation,
  StatementFailed,
  TransactionLeftOpen,
  type SchemaSource,
} from '../driver.ts';
import { expectationHolds, type RecordRow, type RecordTableState, recordTableState, toRecordRow } from '../record.ts';
import { MigrateError } from '../errors.ts';
import { createTable, sqliteSql } from './sqlite-sql.ts';
import { readHolderNote, writeHolderNote } from './sqlite-lock-holder.ts';
import { describeHolder, type LockWaitEvent, lockWaiter } from '../lock-wait.ts';

type Db = Database.Database;

export interface SqliteOptions {
  filename: string;
  table: string;
  /** False for read-only commands: a missing file is read as an empty database, not created. */
  create: boolean;
}

export class SqliteDriver implements Driver {
  readonly capabilities: Capabilities = { folder: 'sqlite', schemaQualifiedTables: false, connectsToServer: false };
  readonly sql = sqliteSql;
  readonly #filename: string;
  readonly #table: string;
  readonly #create: boolean;
  #db: Db | undefined;
  /** Statements prepared once per connection: a 1000-step run would otherwise prepare each 1000 times. */
  readonly #prepared = new Map<string, Database.Statement>();
  /** The busy timeout set on the connection now, ms. */
  #busyMs = 5000;
  /** Foreign-key violations found before this lock's first step, by key and count. */
  #violationsBefore: Map<string, number> | undefined;

  constructor(options: SqliteOptions) {
    this.#filename = options.filename;
    this.#table = sqliteSql.quoteTable(options.table);
    this.#create = options.create;
  }

  /** Opened on first use, so that a bad folder is reported before any file is created. */
  get #conn(): Db {
    if (!this.#db) {
      const standIn = !this.#create && this.#filename !== ':memory:' && !existsSync(this.#filename);
      try {
        this.#db = new Database(standIn ? ':memory:' : this.#filename);
      } catch (error) {
        throw new MigrateError(
          'CONNECTION_FAILED',
          `cannot open SQLite database ${this.#filename}: ${(error as Error).message}`,
          { cause: error },
        );
      }
      // Another process may hold a brief write lock (the bot itself); wait for it rather than fail.
      this.#db.pragma('busy_timeout = 5000');
      this.#db.pragma('foreign_keys = ON');
      // better-sqlite3 builds SQLite with a 16 MiB page cache; the sqlite3 CLI's 2 MiB is plenty for DDL.
      this.#db.pragma('cache_size = -2000');
    }
    return this.#db;
  }

  #stmt(sql: string): Database.Statement {
    let stmt = this.#prepared.get(sql);
    if (!stmt) this.#prepared.set(sql, (stmt = this.#conn.prepare(sql)));
    return stmt;
  }

  async ping(): Promise<void> {
    this.#conn.prepare('SELECT 1').get();
  }

  /**
   * The lock is an exclusive transaction on a side file (`<db>.migrate-lock`), never on the
   * database itself: the holder must be free to write the database from its own connection,
   * and waiting must not hold anything on it. SQLite's file locks are released by the OS when
   * the process dies, so kill -9 leaves no stale lock. The side file is never deleted: unlinking
   * a lock file while others hold it open would let two runners lock two different files.
   * The side file is named after the database's real path, so a runner that reaches it through
   * a symlink takes the same lock. A side file this user cannot write would open read-only,
   * where SQLite takes no write lock and nothing would exclude: refused instead (issue #15).
   */
  async withLock<T>(
    fn: () => Promise<T>,
    timeoutMs: number | undefined,
    onWait?: (event: LockWaitEvent) => void,
  ): Promise<T> {
    if (this.#filename === ':memory:' || !this.#create) return fn();
    const lock = openLockFile(`${realPath(this.#filename)}.migrate-lock`);
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    const waiter = lockWaiter(`sqlite:${this.#filename}`, timeoutMs, async () => readHolderNote(lock.path), onWait);
    try {
      for (;;) {
        try {
          lock.db.exec('BEGIN EXCLUSIVE');
          break;
        } catch (error) {
          if ((error as { code?: string }).code !== 'SQLITE_BUSY') throw lockRefused(lock.path, error);
          if (Date.now() >= deadline) {
            throw new MigrateError(
              'LOCK_TIMEOUT',
              `${describeHolder(await waiter.last())} holds the migration lock on ${this.#filename} (waited ${Math.round((timeoutMs ?? 0) / 1000)} s; see --lock-timeout). Wait for it to finish, or end that process if it is stuck, then run again.`,
            );
          }
          await waiter.tick();
          await sleep(25 + Math.random() * 50);
        }
      }
      writeHolderNote(lock.path);
      this.#violationsBefore = undefined; // counted afresh by the first step under this lock
      return await fn();
    } finally {
      lock.db.close(); // closing ends the exclusive transaction and releases the file lock
    }
  }

  /** What this user lacks to migrate the file: write access to it (root has it whatever the mode). */
  async missingRight(): Promise<string | undefined> {
    if (this.#filename === ':memory:' || !existsSync(this.#filename)) return undefined;
    try {
      accessSync(this.#filename, constants.W_OK);
      return undefined;
    } catch {
      return `write access to the database file ${this.#filename} (it is read-only for this user: chmod u+w, or run as its owner)`;
    }
  }

  async recordTableState(): Promise<RecordTableState> {
    const cols = this.#conn.prepare(`SELECT name FROM pragma_table_info(?)`).all(this.#table.slice(1, -1)) as Array<{
      name: string;
    }>;
    return recordTableState(cols.map((c) => c.name));
  }

  async tableExists(name: string): Promise<boolean> {
    return this.#conn.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(name) !== undefined;
  }

  async ensureRecordTable(): Promise<void> {
    this.#conn.exec(createTable(this.#table));
  }

  async readRecord(): Promise<RecordRow[]> {
    if ((await this.recordTableState()).kind !== 'ok') return [];
    const rows = this.#conn
      .prepare(
        `SELECT revision, name, checksum, status, applied_at, duration_ms, seq, statements_run, error FROM ${this.#table} ORDER BY seq`,
      )
      .all() as Array<Record<string, unknown>>;
    return rows.map(toRecordRow);
  }

  async recordTable(): Promise<string> {
    return this.#table;
  }

  /**
   * Foreign keys are enforced while migrating, and whatever a file did with them is checked
   * before it counts. Only violations the step added: a database written with foreign keys off
   * (the bot's driver leaves them off) may hold orphans from long ago, and those must not block
   * every migration after them. What existed is counted once per lock, before the first step.
   */
  #noteViolationsBefore(): void {
    this.#violationsBefore ??= countViolations(this.#stmt('PRAGMA foreign_key_check').all() as Violation[]);
  }

  #checkForeignKeys(): void {
    const before = this.#violationsBefore ?? new Map<string, number>();
    const now = this.#stmt('PRAGMA foreign_key_check').all() as Violation[];
    if (now.length === 0) return;
    const left = new Map(before);
    const added = now.filter((v) => {
      const n = left.get(violationKey(v)) ?? 0;
      left.set(violationKey(v), n - 1);
      return n <= 0;
    });
    if (added.length === 0) return;
    const first = added[0] as Violation;
    const old = now.length - added.length;
    const error = new Error(
      `FOREIGN KEY constraint failed: ${added.length} row(s) violate foreign keys (first: ${first.table} rowid ${first.rowid} → ${first.parent})` +
        (old > 0 ? `; ${old} older violation(s), there before this run, are left alone` : ''),
    );
    Object.assign(error, { code: 'SQLITE_CONSTRAINT_FOREIGNKEY' });
    throw error;
  }

  /**
   * How long SQLite itself waits for another connection's write lock. It waits synchronously,
   * so an attempt is kept short (the runner retries between attempts); 0 ("wait as long as it
   * takes") becomes short attempts without a budget.
   */
  #busyFor(limits: Limits | undefined): void {
    const ms = limits ? Math.min(limits.lockTimeoutMs || 1000, 5000) : 5000;
    if (ms === this.#busyMs) return;
    this.#conn.pragma(`busy_timeout = ${ms}`);
    this.#busyMs = ms;
  }

  async transaction(
    statements: readonly string[],
    options: { rollback?: boolean; limits?: Limits; expect?: RecordExpectation } = {},
  ): Promise<void> {
    // A turn of the event loop before each step, outside any transaction: the step then runs
    // synchronously, and a caller running many (check's SQLite round trips beside a PostgreSQL
    // server's, a fleet) would otherwise keep signals and every socket waiting until it ended.
    await new Promise(setImmediate);
    const db = this.#conn;
    this.#busyFor(options.limits);
    this.#noteViolationsBefore();
    if (db.inTransaction) {
      db.exec('ROLLBACK');
      throw new TransactionLeftOpen();
    }
    // A file that turned them off for a table rebuild may have forgotten to turn them back on.
    // Read first: setting a pragma prepares a statement and expires every prepared one, each step.
    if (this.#stmt('PRAGMA foreign_keys').pluck().get() !== 1) db.pragma('foreign_keys = ON');
    try {
      db.exec('BEGIN IMMEDIATE');
    } catch (error) {
      // Another connection writes: nothing started, the attempt may run again.
      if (this.lockBusy(error)) throw new StatementFailed(0, true, error);
      throw error;
    }
    // BEGIN IMMEDIATE is the step's exclusion: no other connection writes until it ends.
    if (options.expect && !this.#expected(options.expect)) {
      db.exec('ROLLBACK');
      throw new PlanChanged(options.expect);
    }
    let index = 0;
    try {
      for (; index < statements.length; index++) db.exec(statements[index] as string);
      if (options.rollback) return;
      this.#checkForeignKeys();
      db.exec('COMMIT');
    } catch (error) {
      // A statement that ended the transaction itself (a COMMIT inside the file) left nothing to roll back.
      const rolledBack = db.inTransaction;
      if (rolledBack) db.exec('ROLLBACK');
      throw new StatementFailed(index, rolledBack, this.#diskFull(error));
    } finally {
      if (options.rollback && db.inTransaction) db.exec('ROLLBACK');
    }
  }

  /** Whether the record says what a step assumed (see RecordExpectation). */
  #expected(e: RecordExpectation): boolean {
    return (
      this.#conn
        .prepare(`SELECT ${expectationHolds(this.#table, e)}`)
        .pluck()
        .get() === 1
    );
  }

  /** SQLite's "database or disk is full" names neither: say which file was being written, and where. */
  #diskFull(error: unknown): unknown {
    const e = error as { code?: unknown; message?: unknown } | null;
    if (e?.code !== 'SQLITE_FULL' || typeof e.message !== 'string' || e.message.includes(this.#filename)) return error;
    const where = this.#filename === ':memory:' ? 'memory' : `the disk holding ${dirname(realPath(this.#filename))}`;
    e.message = `${e.message}: writing the migration's changes to ${this.#filename} (and its journal) failed, as ${where} is full. Free space there (check's scratch files live in TMPDIR), then run again.`;
    return error;
  }

  async exec(sql: string, limits?: Limits): Promise<void> {
    this.#noteViolationsBefore();
    this.#busyFor(limits);
    try {
      this.#conn.exec(sql);
    } catch (error) {
      throw this.#diskFull(error);
    } finally {
      this.#busyFor(undefined);
    }
  }

  lockBusy(error: unknown): boolean {
    const code = (error as { code?: unknown } | null)?.code;
    return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
  }

  /** SQLite keeps no list of its connections: it can say which file is locked, not by whom. */
  async observe(): Promise<Observation | undefined> {
    const wal = existsSync(`${this.#filename}-wal`) ? ' (WAL mode: a writer, or a reader blocking a checkpoint)' : '';
    return {
      relation: this.#filename,
      blockers: [],
      holder: `another connection holds its write lock${wal}; SQLite cannot tell which process`,
    };
  }

  async rollback(): Promise<void> {
    if (this.#conn.inTransaction) this.#conn.exec('ROLLBACK');
    this.#conn.pragma('foreign_keys = ON');
  }

  /** What `check`'s introspection reads through: this connection, and the record table to leave out. */
  async schemaSource(): Promise<SchemaSource> {
    return { db: this.#conn, table: this.#table.slice(1, -1) };
  }

  async close(): Promise<void> {
    this.#prepared.clear();
    this.#db?.close();
    this.#db = undefined;
  }
}

/** A row of `PRAGMA foreign_key_check`; rowid is null for WITHOUT ROWID tables, hence the counts. */
interface Violation {
  table: string;
  rowid: number | null;
  parent: string;
  fkid: number;
}

function violationKey(v: Violation): string {
  return `${v.table}\0${v.rowid}\0${v.parent}\0${v.fkid}`;
}

function countViolations(list: readonly Violation[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const v of list) counts.set(violationKey(v), (counts.get(violationKey(v)) ?? 0) + 1);
  return counts;
}

/** The file's real path; for a file not created yet, its folder's real path and its name. */
function realPath(filename: string): string {
  try {
    return realpathSync(filename);
  } catch {
    try {
      return join(realpathSync(dirname(filename)), basename(filename));
    } catch {
      return filename;
    }
  }
}

/**
 * Timeout 0: each attempt must return at once. better-sqlite3's default 5 s busy wait would
 * block the event loop and stretch --lock-timeout to the next 5 s.
 */
function openLockFile(path: string): { db: Db; path: string } {
  let db: Db;
  try {
    db = new Database(path, { timeout: 0 });
  } catch (error) {
    throw lockRefused(path, error);
  }
  try {
    accessSync(path, constants.W_OK);
  } catch (error) {
    db.close();
    throw lockRefused(path, error);
  }
  return { db, path };
}

function lockRefused(path: string, error: unknown): MigrateError {
  const e = error as { code?: string; message?: string } | null;
  const why = e?.code === 'EACCES' ? 'this user cannot write it' : (e?.message ?? String(error));
  return new MigrateError(
    'DATABASE_REFUSED',
    `cannot take the migration lock ${path}: ${why}${e?.code ? ` (${e.code})` : ''}. The runner never migrates without it: let this user create and write that file (chmod 666 or chown it, and allow writing in its folder), or run as the user that owns it.`,
    { cause: error },
  );
}
