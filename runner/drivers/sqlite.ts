/**
 * SQLite through better-sqlite3. Every line of SQLite-specific SQL lives here.
 *
 * better-sqlite3 is synchronous, and each step runs begin → file → record → commit with no
 * `await` in between: an async gap inside a transaction lets other work interleave (ley shipped
 * that bug; better-sqlite3's docs warn about it).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import type { Capabilities, Driver, RecordRow, RecordTableState, StepDone, StepWork, Statement } from '../driver.ts';
import { StepFailure } from '../driver.ts';
import { MigrateError } from '../errors.ts';
import { parseTableName } from '../config.ts';
import { failedNote, interrupted, RECORD_COLUMNS, renderStepScript, toRecordRow } from '../record.ts';
import type { Schema } from '../schema.ts';
import { introspectSqlite } from './sqlite-schema.ts';

type Db = Database.Database;

export interface SqliteOptions {
  filename: string;
  table: string;
  /** False for read-only commands: a missing file is read as an empty database, not created. */
  create: boolean;
}

export class SqliteDriver implements Driver {
  readonly capabilities: Capabilities = { folder: 'sqlite', schemaQualifiedTables: false, connectsToServer: false };
  readonly #filename: string;
  readonly #table: string;
  readonly #create: boolean;
  #db: Db | undefined;
  /** Statements prepared once per connection: a 1000-step run would otherwise prepare each 1000 times. */
  readonly #prepared = new Map<string, Database.Statement>();
  /** Foreign-key violations found before this lock's first step, by key and count. */
  #violationsBefore: Map<string, number> | undefined;

  constructor(options: SqliteOptions) {
    this.#filename = options.filename;
    this.#table = `"${parseTableName(options.table, false).table}"`;
    this.#create = options.create;
  }

  /** Opened on first use, so that a bad folder is reported before any file is created. */
  get #conn(): Db {
    if (!this.#db) {
      const stand_in = !this.#create && this.#filename !== ':memory:' && !existsSync(this.#filename);
      try {
        this.#db = new Database(stand_in ? ':memory:' : this.#filename);
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
   */
  async withLock<T>(fn: () => Promise<T>, timeoutMs: number | undefined): Promise<T> {
    if (this.#filename === ':memory:' || !this.#create) return fn();
    // timeout 0: each attempt must return at once. better-sqlite3's default 5 s busy wait would
    // block the event loop and stretch --lock-timeout to the next 5 s.
    const lock = new Database(`${this.#filename}.migrate-lock`, { timeout: 0 });
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    try {
      for (;;) {
        try {
          lock.exec('BEGIN EXCLUSIVE');
          break;
        } catch (error) {
          if ((error as { code?: string }).code !== 'SQLITE_BUSY') throw error;
          if (Date.now() >= deadline) {
            throw new MigrateError(
              'LOCK_TIMEOUT',
              `another runner holds the migration lock on ${this.#filename} (waited ${Math.round((timeoutMs ?? 0) / 1000)} s; see --lock-timeout).`,
            );
          }
          await sleep(25 + Math.random() * 50);
        }
      }
      this.#violationsBefore = undefined; // counted afresh by the first step under this lock
      return await fn();
    } finally {
      lock.close(); // closing ends the exclusive transaction and releases the file lock
    }
  }

  async recordTableState(): Promise<RecordTableState> {
    const cols = this.#conn.prepare(`SELECT name FROM pragma_table_info(?)`).all(this.#table.slice(1, -1)) as Array<{
      name: string;
    }>;
    if (cols.length === 0) return { kind: 'missing' };
    const names = cols.map((c) => c.name);
    return RECORD_COLUMNS.every((c) => names.includes(c)) ? { kind: 'ok' } : { kind: 'foreign', columns: names };
  }

  async tableExists(name: string): Promise<boolean> {
    return this.#conn.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(name) !== undefined;
  }

  renderHeader(): string {
    return '.bail on\n'; // sqlite3 would otherwise carry on after an error, into the tracking INSERT and COMMIT
  }

  renderEnsureRecordTable(): string {
    return `CREATE TABLE IF NOT EXISTS ${this.#table} (
  revision       TEXT    PRIMARY KEY,
  name           TEXT    NOT NULL,
  checksum       TEXT    NOT NULL,
  status         TEXT    NOT NULL CHECK (status IN ('applied', 'failed')),
  applied_at     TEXT    NOT NULL,
  duration_ms    INTEGER NOT NULL,
  seq            INTEGER NOT NULL UNIQUE,
  statements_run INTEGER,
  error          TEXT
);`;
  }

  async ensureRecordTable(): Promise<void> {
    this.#conn.exec(this.renderEnsureRecordTable());
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

  #insertRow(
    revision: string,
    name: string,
    checksum: string,
    status: 'applied' | 'failed',
    durationMs: number,
    statementsRun: number | null,
    error: string | null,
    appliedAt = new Date().toISOString(),
  ): void {
    this.#stmt(
      `INSERT INTO ${this.#table} (revision, name, checksum, status, applied_at, duration_ms, seq, statements_run, error)
       VALUES (?, ?, ?, ?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM ${this.#table}), ?, ?)`,
    ).run(revision, name, checksum, status, appliedAt, Math.round(durationMs), statementsRun, error);
  }

  #applyRecord(step: StepWork, started: number): void {
    const r = step.record;
    if (r.kind === 'insert')
      this.#insertRow(r.revision, r.name, r.checksum, 'applied', performance.now() - started, null, null);
    else this.#stmt(`DELETE FROM ${this.#table} WHERE revision = ?`).run(r.revision);
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

  async runStep(step: StepWork): Promise<StepDone> {
    const started = performance.now();
    const db = this.#conn;
    this.#noteViolationsBefore();
    if (!step.transactional) return this.#runStatements(step, started);
    try {
      db.exec('BEGIN IMMEDIATE');
      if (!step.empty) db.exec(step.sql);
      this.#checkForeignKeys();
      this.#applyRecord(step, started);
      db.exec('COMMIT');
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw this.#failure(step, error, this.#locate(step, error));
    }
    return { durationMs: performance.now() - started };
  }

  /**
   * No-transaction files: one statement at a time, so a failure knows how many statements took
   * effect. The record says `failed` before the first statement and counts each one as it
   * completes: a runner killed in between leaves the truth behind.
   */
  #runStatements(step: StepWork, started: number): StepDone {
    const db = this.#conn;
    const r = step.record;
    const direction = r.kind === 'insert' ? 'up' : 'down';
    const progress = this.#stmt(
      `UPDATE ${this.#table} SET status = 'failed', statements_run = ?, error = ? WHERE revision = ?`,
    );
    if (r.kind === 'insert') this.#insertRow(r.revision, r.name, r.checksum, 'failed', 0, 0, interrupted(direction));
    else progress.run(0, interrupted(direction), r.revision);
    let ran = 0;
    try {
      for (const s of step.statements) {
        db.exec(s.sql);
        ran++;
        if (ran < step.statements.length && !db.inTransaction) progress.run(ran, interrupted(direction), r.revision);
      }
      if (db.inTransaction) throw new Error('the file left a transaction open (BEGIN without COMMIT)');
      db.pragma('foreign_keys = ON'); // files that turn foreign keys off for a table rebuild may forget to turn them back on
      db.exec('BEGIN IMMEDIATE');
      this.#checkForeignKeys();
      if (r.kind === 'insert') {
        this.#stmt(
          `UPDATE ${this.#table} SET status = 'applied', statements_run = NULL, error = NULL, applied_at = ?, duration_ms = ? WHERE revision = ?`,
        ).run(new Date().toISOString(), Math.round(performance.now() - started), r.revision);
      } else {
        this.#stmt(`DELETE FROM ${this.#table} WHERE revision = ?`).run(r.revision);
      }
      db.exec('COMMIT');
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK');
      db.pragma('foreign_keys = ON');
      const failure = this.#failure(step, error, { statementIndex: ran < step.statements.length ? ran : undefined });
      progress.run(ran, failedNote(direction, failure.message), r.revision);
      failure.details.statementsRun = ran;
      throw failure;
    }
    return { durationMs: performance.now() - started };
  }

  /**
   * better-sqlite3 reports no offset. Find the failing statement by replaying the file one
   * statement at a time in a transaction that is rolled back, and accept the answer only when
   * the replay fails with the very same message: otherwise name the file alone, never guess.
   */
  #locate(step: StepWork, error: unknown): { statementIndex?: number; offset?: number } {
    const message = (error as Error).message;
    if (step.empty || step.statements.length === 0) return {};
    const db = this.#conn;
    let found: number | undefined;
    try {
      db.exec('BEGIN');
      for (let i = 0; i < step.statements.length; i++) {
        try {
          db.exec((step.statements[i] as Statement).sql);
        } catch (e) {
          if ((e as Error).message === message) found = i;
          break;
        }
      }
    } catch {
      return {};
    } finally {
      if (db.inTransaction) db.exec('ROLLBACK');
    }
    if (found === undefined) return {};
    const statement = step.statements[found] as Statement;
    return { statementIndex: found, offset: statement.offset + tokenOffset(statement.sql, message) };
  }

  #failure(_step: StepWork, error: unknown, where: { statementIndex?: number; offset?: number }): StepFailure {
    const e = error as { message?: string; code?: string };
    return new StepFailure(e.message ?? String(error), { cause: error, code: e.code, ...where });
  }

  async writeRecord(
    rows: Array<Pick<RecordRow, 'revision' | 'name' | 'checksum' | 'appliedAt' | 'durationMs'>>,
  ): Promise<void> {
    const db = this.#conn;
    db.transaction(() => {
      db.exec(`DELETE FROM ${this.#table}`);
      for (const r of rows)
        this.#insertRow(r.revision, r.name, r.checksum, 'applied', r.durationMs, null, null, r.appliedAt);
    }).immediate();
  }

  renderStep(step: StepWork): string {
    return renderStepScript(step, this.#table, "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')");
  }

  async introspect(): Promise<Schema> {
    return introspectSqlite(this.#conn, this.#table.slice(1, -1));
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

/**
 * Where in a statement SQLite's message points: `near "X": syntax error`, `no such table: X`,
 * `no such column: X`. The offset of the first whole-word occurrence, or 0 (the statement's
 * start) when the message names nothing findable.
 */
export function tokenOffset(sql: string, message: string): number {
  const m =
    /near "([^"]+)"/.exec(message) ??
    /no such (?:table|column|function|index|view|trigger): ([\w.]+)/.exec(message) ??
    /(?:table|index|view|trigger) (\S+) already exists/.exec(message);
  if (!m) return 0;
  const token = (m[1] as string).split('.').pop() as string;
  const escaped = token.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const hit = new RegExp(`(^|[^\\w])(${escaped})(?![\\w])`, 'i').exec(sql);
  return hit ? hit.index + (hit[1] as string).length : 0;
}
