/**
 * PostgreSQL through postgres.js: I/O only. Its SQL is in postgres-sql.ts, the record table's
 * place and state in postgres-record.ts, the session lock in postgres-lock.ts, its clients from
 * connect.ts and postgres-client.ts. One connection per runner (`max: 1`) runs every migration
 * (and, direct, holds the session lock). A file is sent as it is, in one simple-protocol query,
 * so the server's error `position` indexes the file's text.
 */
import { randomBytes } from 'node:crypto';
import type { LockWaitEvent } from '../lock-wait.ts';
import { lockHolder, poolMode, pollSessionLock, watchClient } from './postgres-lock.ts';
import postgres from 'postgres';
import { type ConnectOptions, connect, serverOf } from '../connect.ts';
import {
  type Capabilities,
  type Driver,
  type Limits,
  type Observation,
  type RecordExpectation,
  TransactionLeftOpen,
  type SchemaSource,
} from '../driver.ts';
import type { RecordRow, RecordTableState } from '../record.ts';
import { MigrateError } from '../errors.ts';
import type { PostgresServer } from '../config.ts';
import { refuseWrites, type ServerRole } from '../hosts.ts';
import {
  connectChosen,
  movedSession,
  movedStatement,
  narrow,
  type PostgresOptions,
  readsOtherwise,
  unreachable,
  Watcher,
} from './postgres-client.ts';
import { catalog, isConnectionError, postgresSql, throwFromStep } from './postgres-sql.ts';
import { quoteIdent } from '../quote.ts';
import { type ReadAhead, RecordTable } from './postgres-record.ts';

type Sql = postgres.Sql;

export type { PostgresOptions } from './postgres-client.ts';

export class PostgresDriver implements Driver {
  readonly capabilities: Capabilities = { folder: 'postgres', schemaQualifiedTables: true, connectsToServer: true };
  readonly sql = postgresSql;
  readonly #server: PostgresServer;
  readonly #deadline: number | undefined;
  readonly #display: string;
  readonly #secrets: string[];
  /** The command writes: a standby or a read-only session is refused at ping. */
  readonly #writes: boolean;
  /** The host of the URL the session reached (hosts.ts), alone; undefined until ping chose it. */
  #chosen: PostgresServer | undefined;
  #role: ServerRole | undefined; // what that server is, as its first query said
  /** Where the record table lives, and its state and rows as read under the current lock. */
  readonly #record: RecordTable;
  #sql: Sql | undefined;
  #locked = false; // inside withLock, after the lock was taken
  /** The connection that held the lock closed: the lock is gone with it. */
  #lost = false;
  /** SQLSTATEs of the notices (warnings) received since last cleared. */
  readonly #notices = new Set<string>();
  /** A query has succeeded: a connection error now means the server went away, not that it was never there. */
  #reached = false;
  /** `exec` ran since the last transaction: a file's own BEGIN may have left one open. */
  #execSince = false;
  /** The server process of the runner's session (from ping), for the observer to look at. */
  #pid: number | undefined;
  /** Behind a pooler (ping's startup key, or another server session answered): no session lock or setting (#25). */
  #pooled = false;
  /** What the pooler probe made of it: advice (a note; whether no-transaction files may run). */
  #poolMode: 'transaction' | 'session' | undefined;
  /** A second connection, opened only once a step has waited or run a while. */
  readonly #watcher = new Watcher(() => connect(this.#target(), { name: 'sql-migrate (observer)', connectTimeout: 5 }));

  constructor(options: PostgresOptions) {
    this.#server = options.server ?? serverOf(options.url ?? '');
    this.#deadline = options.deadline;
    this.#display = options.display;
    this.#writes = options.writes ?? false;
    const password = this.#server.password;
    this.#secrets = password ? [password, encodeURIComponent(password)] : [];
    this.#record = new RecordTable(options.table, (fn) => this.#do(fn));
  }

  /** Created on first use: nothing connects until a method needs the database. */
  get #client(): Sql {
    if (!this.#sql) {
      try {
        this.#sql = connect(this.#target(), this.#options('sql-migrate'));
      } catch (error) {
        throw this.#unreachable(error);
      }
    }
    return this.#sql;
  }

  /** The host ping chose (every client of the run goes there), else the URL's first. */
  #target(): PostgresServer {
    return this.#chosen ?? narrow(this.#server, 0);
  }

  #options(name: string): ConnectOptions {
    return {
      name,
      deadline: this.#deadline,
      onnotice: (notice) => {
        if (typeof notice.code === 'string') this.#notices.add(notice.code);
      },
      onclose: () => {
        if (this.#locked) this.#lost = true;
      },
    };
  }

  /** Every query goes through here: a connection failure becomes CONNECTION_FAILED, naming the URL without its password. */
  async #do<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    this.#checkSession();
    try {
      const result = await fn(this.#client);
      this.#reached = true;
      return result;
    } catch (error) {
      if (!isConnectionError(error)) throw error;
      // The session that held the lock is gone, whether or not postgres.js has told onclose yet:
      // an unlock queued now would wait on a connection that never answers.
      if (this.#locked) this.#lost = true;
      throw this.#unreachable(error);
    }
  }

  /** After the connection that held the lock dropped, postgres.js would silently reconnect: refuse to run unlocked. */
  #checkSession(): void {
    if (this.#lost) {
      throw new MigrateError(
        'CONNECTION_FAILED',
        `lost the connection to ${this.#display} while holding the migration lock; stopped so that nothing runs without it. Run again: what was committed is recorded.`,
      );
    }
  }

  #unreachable(error: unknown): MigrateError {
    return unreachable(error, this.#display, this.#secrets, this.#reached);
  }

  /** The first query also chooses the URL's host (hosts.ts) and says what the server is: a writer stops on a standby. */
  async ping(): Promise<void> {
    const query = catalog.ping(this.#record.schema, this.#record.name);
    let rows: postgres.RowList<postgres.Row[]>;
    if (this.#sql === undefined) {
      this.#checkSession();
      const chosen = await connectChosen(this.#server, {
        display: this.#display,
        secrets: this.#secrets,
        query,
        options: this.#options('sql-migrate'),
      });
      this.#sql = chosen.sql;
      this.#chosen = chosen.server;
      this.#role = chosen.role;
      this.#reached = true;
      rows = chosen.rows;
    } else {
      rows = await this.#do((sql) => sql.unsafe(query));
    }
    const [row] = rows;
    // The server's startup message names its process; a pooler hands out a key of its own.
    const announced = (rows as { state?: { pid?: unknown } }).state?.pid;
    this.#pooled = typeof announced === 'number' && typeof row?.pid === 'number' && announced !== row.pid;
    this.#record.pinged(row);
    this.#pid = typeof row?.pid === 'number' ? row.pid : undefined;
    const refusal = this.#writes && this.#role ? refuseWrites(this.#role) : undefined;
    if (refusal) throw refusal;
    const misread = readsOtherwise(row, this.#display);
    if (misread) throw misread;
  }

  /** The server the session reached, once ping has run. */
  serverRole(): ServerRole | undefined {
    return this.#role;
  }

  /**
   * A session-level advisory lock on the connection that runs the migrations (postgres-lock.ts),
   * released by the server when the session ends, kill -9 included. Behind a pooler, none.
   */
  async withLock<T>(
    fn: () => Promise<T>,
    timeoutMs: number | undefined,
    onWait?: (event: LockWaitEvent) => void,
  ): Promise<T> {
    if (this.#pooled) return this.#unlocked(fn);
    const key = await this.#record.lockKey();
    // Sent together with the first try: one round trip for the setting, the lock and the record.
    const watching = watchClient((f) => this.#do(f));
    let ahead: ReadAhead | undefined;
    const taken = await pollSessionLock({
      label: this.#record.label,
      display: this.#display,
      timeoutMs,
      onWait,
      pid: this.#pid,
      holder: () => lockHolder((f) => this.#do(f), key),
      attempt: async (first) => {
        const trying = this.#do((sql) => sql.unsafe(catalog.tryLock(key, this.#pid)));
        ahead = first ? this.#record.readAhead() : undefined;
        // Both awaited at once: whichever fails, the other's failure is not left unhandled.
        const [, [row]] = await Promise.all([first ? watching : undefined, trying]);
        return row;
      },
    });
    if (!taken) {
      this.#pooled = true;
      return this.#unlocked(fn);
    }
    this.#record.locked(ahead);
    this.#locked = true;
    this.#lost = false;
    try {
      return await fn();
    } finally {
      const lost = this.#lost;
      this.#record.unlocked();
      this.#locked = false;
      this.#lost = false;
      // A lost session took the lock with it; an unlock failing here must not hide fn's outcome.
      if (!lost) await this.#sql?.unsafe(catalog.unlock(key)).catch(() => {});
    }
  }

  /** Behind a pooler the run holds no lock (issue #25); the probe tells only what kind of pool (advice). */
  async #unlocked<T>(fn: () => Promise<T>): Promise<T> {
    this.#poolMode = await poolMode(this.#target(), this.#deadline, (f) => this.#do(f), this.#pid);
    return fn();
  }

  pooler(): { mode: 'transaction' | 'session' } | undefined {
    return this.#pooled && this.#poolMode ? { mode: this.#poolMode } : undefined;
  }

  /**
   * A no-transaction statement's limits refused `moved`: it reached another server session than
   * the one the file runs on (a transaction pooler the probe took for a session pool). A failure of
   * that statement, as any other: the file stops, recorded as failed with what ran before it.
   */
  #moved(error: unknown): unknown {
    return movedSession(error) ? movedStatement(this.#display) : error;
  }

  async recordTable(): Promise<string> {
    return this.#record.qualified();
  }

  async recordTableState(): Promise<RecordTableState> {
    return this.#record.state();
  }

  /** Read with the record table's state (the lock's round trip): costs no query of its own. */
  async missingRight(): Promise<string | undefined> {
    return this.#record.missingRight();
  }

  /** to_regclass resolves through search_path exactly as an unqualified query would. */
  async tableExists(name: string): Promise<boolean> {
    const [row] = await this.#do((sql) => sql`SELECT to_regclass(${quoteIdent(name)}) IS NOT NULL AS found`);
    return row?.found === true;
  }

  async ensureRecordTable(): Promise<void> {
    await this.#record.ensure();
  }

  async readRecord(): Promise<RecordRow[]> {
    return this.#record.rows();
  }

  async transaction(
    statements: readonly string[],
    options: { rollback?: boolean; limits?: Limits; expect?: RecordExpectation } = {},
  ): Promise<void> {
    const check = this.#execSince;
    this.#execSince = false;
    this.#notices.clear();
    const expect = options.expect ? await this.#expectQuery(options.expect) : undefined;
    await this.#do(async (sql) => {
      // After a no-transaction file, our BEGIN inside the file's own open transaction would only
      // warn (25001) and COMMIT would commit the file's half: wait for BEGIN's answer first.
      if (check) {
        await sql.unsafe('BEGIN');
        if (this.#notices.has('25001')) {
          await sql.unsafe('ROLLBACK');
          throw new TransactionLeftOpen();
        }
      }
      // Otherwise one round trip, pipelined: BEGIN; the attempt's limits and how SQL text is read
      // (LOCAL), with a token each later statement checks, so one the file's own COMMIT left in
      // autocommit is not run (#24); the step lock and record check (#25); each statement (a file
      // is one simple-protocol Query, exactly as written, so `position` indexes it); COMMIT. After
      // a failure the server refuses the rest (25P02) and answers COMMIT with ROLLBACK. postgres.js
      // sends a query when first awaited: nothing may touch these before allSettled does.
      // Not pinned to ping's server session: the step's own lock and record check make it safe on
      // whichever session the transaction gets (behind a pooler too, found or not).
      const token = randomBytes(8).toString('hex');
      const pin = sql.unsafe(catalog.limits(options.limits, true, undefined, token));
      const queries = [
        ...(check ? [] : [sql.unsafe('BEGIN')]),
        pin,
        ...(expect === undefined ? [] : [sql.unsafe(expect)]),
        ...statements.map((text, i) =>
          sql.unsafe(i === 0 || options.rollback ? text : `${catalog.guard(token)};\n${text}`),
        ),
        sql.unsafe(options.rollback ? 'ROLLBACK' : 'COMMIT'),
      ];
      const settled = await Promise.allSettled(queries);
      const pinned = check ? 1 : 2; // where the step check, then the caller's statements, start
      throwFromStep(settled, {
        pinned,
        first: pinned + (expect === undefined ? 0 : 1),
        expect: options.expect,
        end: options.rollback ? 'ROLLBACK' : 'COMMIT',
      });
    });
  }

  /** catalog.expect; behind a pooler also a watch for a client gone, for this transaction only. */
  async #expectQuery(expect: RecordExpectation): Promise<string> {
    const query = catalog.expect(await this.#record.qualified(), await this.#record.stepKey(), expect);
    return this.#pooled ? `${catalog.watchClientLocal}; ${query}` : query;
  }

  async exec(text: string, limits?: Limits): Promise<void> {
    this.#execSince = true;
    // No transaction to be LOCAL to: set for the statement (how SQL text is read too), back to the
    // defaults right after, in one round trip; the reset runs whether or not the statement failed.
    await this.#do(async (sql) => {
      const limited = sql.unsafe(catalog.limits(limits, false, limits ? this.#pid : undefined));
      // Behind a pooler the statement goes only once its session has been checked: sent along,
      // it would run even where the check failed.
      if (limits && this.#pooled) await limited.catch((error: unknown) => Promise.reject(this.#moved(error)));
      const [set, run, reset] = await Promise.allSettled([
        limited,
        sql.unsafe(text),
        limits ? sql.unsafe(catalog.resetLimits) : undefined,
      ]);
      if (run.status === 'rejected') throw set.status === 'rejected' ? this.#moved(set.reason) : run.reason;
      if (set.status === 'rejected') throw this.#moved(set.reason);
      if (reset.status === 'rejected') throw reset.reason;
    });
  }

  /** Outside a transaction ROLLBACK only warns. A reset that failed in the aborted transaction runs again here. */
  async rollback(): Promise<void> {
    await this.#do((sql) => sql.unsafe(`ROLLBACK; ${catalog.resetLimits}`));
  }

  lockBusy(error: unknown): boolean {
    return error instanceof postgres.PostgresError && error.code === '55P03';
  }

  /** From a second connection: what the runner's session waits on, who is ahead of it, an index build's progress. */
  async observe(withQuery: boolean): Promise<Observation | undefined> {
    return this.#pid === undefined ? undefined : this.#watcher.observe(this.#pid, withQuery);
  }

  async invalidIndex(name: string): Promise<boolean> {
    const [row] = await this.#do((sql) => sql.unsafe(catalog.invalidIndex(name)));
    return row?.bad === true;
  }

  /** What `check`'s introspection reads through: this session, and where the record table lives. */
  async schemaSource(): Promise<SchemaSource> {
    return this.#record.schemaSource();
  }

  async close(): Promise<void> {
    const sql = this.#sql;
    this.#sql = undefined;
    this.#chosen = undefined;
    this.#role = undefined;
    this.#reached = false;
    await this.#watcher.end();
    this.#locked = false;
    this.#lost = false;
    await sql?.end({ timeout: 5 });
  }
}
