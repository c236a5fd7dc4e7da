/**
 * PostgreSQL through postgres.js: I/O only. Its SQL is in postgres-sql.ts, the record table's
 * place and state in postgres-record.ts, its clients from connect.ts and postgres-client.ts.
 *
 * One connection per runner (`max: 1`): it holds the session advisory lock and runs every
 * migration, so the lock and the work can never be on two different sessions. A file is sent as
 * it is, in one simple-protocol query, so the server's error `position` indexes the file's text.
 */
import { randomBytes } from 'node:crypto';
import { describeHolder, type LockHolder, type LockWaitEvent, lockWaiter } from '../lock-wait.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import postgres from 'postgres';
import { type ConnectOptions, connect, serverOf } from '../connect.ts';
import {
  type Capabilities,
  type Driver,
  type Limits,
  type Observation,
  PlanChanged,
  type RecordExpectation,
  StatementFailed,
  TransactionEnded,
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
  narrow,
  type PostgresOptions,
  transactionMode,
  readsOtherwise,
  toLockHolder,
  transactionPooler,
  unreachable,
  Watcher,
} from './postgres-client.ts';
import { catalog, isConnectionError, PLAN_CHANGED, postgresSql, STEP_ENDED, throwUnlessEnded } from './postgres-sql.ts';
import { quoteIdent } from '../quote.ts';
import { RecordTable } from './postgres-record.ts';

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
  /** What that server is, as its first query said. */
  #role: ServerRole | undefined;
  /** Where the record table lives, and its state and rows as read under the current lock. */
  readonly #record: RecordTable;
  #sql: Sql | undefined;
  /** Inside withLock, after the lock was taken. */
  #locked = false;
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
  /**
   * A pooler stands between us and the server (the session's announced process is not the one
   * that answers, or a statement reached another server session): no session lock, no session
   * setting; each step takes its exclusion in its own transaction (issue #25).
   */
  #pooled = false;
  /** Behind a pooler, what its probe made of it (advice: a note, and whether no-transaction files may run). */
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

  /**
   * The first query of a session also chooses the URL's host (hosts.ts) and says what the
   * server is; a command that writes stops here on a standby or a read-only session, before
   * the lock. Later pings reuse the session.
   */
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
   * A session-level advisory lock on the connection that runs the migrations, polled with
   * `pg_try_advisory_lock` so a waiter holds no transaction and no snapshot between polls (a
   * blocking `pg_advisory_lock` would hold one, and stall the holder's CREATE INDEX
   * CONCURRENTLY). The server releases it when the session ends, kill -9 included.
   */
  async withLock<T>(
    fn: () => Promise<T>,
    timeoutMs: number | undefined,
    onWait?: (event: LockWaitEvent) => void,
  ): Promise<T> {
    if (this.#pooled) return this.#unlocked(fn);
    const key = await this.#record.lockKey();
    // Sent together with the first try: one round trip for the setting, the lock and the record.
    const watching = this.#watchClient();
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    const waiter = lockWaiter(this.#display, timeoutMs, () => this.#lockHolder(key), onWait);
    for (let first = true; ; first = false) {
      const trying = this.#do((sql) => sql.unsafe(catalog.tryLock(key, this.#pid)));
      const ahead = first ? this.#record.readAhead() : undefined;
      // Both awaited at once: whichever fails, the other's failure is not left unhandled.
      const [, [row]] = await Promise.all([first ? watching : undefined, trying]);
      // Another server session answered: a pooler the startup key did not show. Nothing was
      // locked (tryLock locks only on ping's session); go on as behind any pooler.
      if (this.#pid !== undefined && row?.pid !== this.#pid) {
        this.#pooled = true;
        await ahead?.rows;
        return this.#unlocked(fn);
      }
      if (row?.ok === true) {
        this.#record.locked(ahead);
        break;
      }
      if (Date.now() >= deadline) {
        throw new MigrateError(
          'LOCK_TIMEOUT',
          `${describeHolder(await waiter.last())} holds the migration lock for ${this.#record.label} on ${this.#display} (waited ${Math.round((timeoutMs ?? 0) / 1000)} s; see --lock-timeout). Wait for it to finish, or end that session if it is stuck, then run again.`,
        );
      }
      await waiter.tick();
      await sleep(50 + Math.random() * 50);
    }
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

  /** The session that holds the migration lock's advisory lock in this database, from pg_locks. */
  async #lockHolder(key: string): Promise<LockHolder | undefined> {
    return toLockHolder((await this.#do((sql) => sql.unsafe(catalog.lockHolder(key))))[0]);
  }

  /**
   * Behind a pooler the run holds no lock: each step's own transaction takes its exclusion and
   * checks the record (transaction's `expect`), so nothing depends on which server session the
   * pooler hands out. The probe says only what kind of pool it is (advice, see transactionMode).
   */
  async #unlocked<T>(fn: () => Promise<T>): Promise<T> {
    const probe = connect(this.#target(), { name: 'sql-migrate (pooler probe)', deadline: this.#deadline });
    const ours = async (query: string) => (await this.#do((sql) => sql.unsafe(query)))[0];
    this.#poolMode = (await transactionMode(probe, ours, this.#pid)) ? 'transaction' : 'session';
    return fn();
  }

  pooler(): { mode: 'transaction' | 'session' } | undefined {
    return this.#pooled && this.#poolMode ? { mode: this.#poolMode } : undefined;
  }

  /** The limits refused `moved`: the statement reached another server session than the lock's. */
  #moved(error: unknown): unknown {
    return movedSession(error) ? transactionPooler(this.#display) : error;
  }

  /**
   * Ask the backend to abort a statement whose client is gone (kill -9, OOM), so it neither holds
   * the lock nor commits a no-transaction file unrecorded (client_connection_check_interval,
   * PostgreSQL 14+); servers without it, or refusing it (PGlite), carry on without.
   */
  async #watchClient(): Promise<void> {
    await this.#do((sql) => sql.unsafe(catalog.watchClient)).catch((error: unknown) => {
      if (!(error instanceof postgres.PostgresError)) throw error;
    });
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

  async tableExists(name: string): Promise<boolean> {
    // to_regclass resolves through search_path exactly as an unqualified query would.
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
    try {
      return await this.#transaction(statements, options);
    } catch (error) {
      // A statement reached another server session than ping's: a pooler after all. The limits
      // refused it before anything of the step ran; run it as behind any pooler (issue #25).
      if (!(error instanceof MigrateError && error.code === 'TRANSACTION_POOLER') || this.#pooled) throw error;
      this.#pooled = true;
      return this.#transaction(statements, options);
    }
  }

  async #transaction(
    statements: readonly string[],
    options: { rollback?: boolean; limits?: Limits; expect?: RecordExpectation },
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
      // Otherwise one round trip: BEGIN, each statement (a file is one simple-protocol Query,
      // exactly as written, so `position` indexes it) and COMMIT leave together, pipelined on the
      // one connection. After a failure the server refuses the rest (25P02) and answers COMMIT
      // with ROLLBACK. postgres.js sends a query when it is first awaited, so nothing may touch
      // these before allSettled awaits them in this order.
      // The attempt's limits and how SQL text is read travel in the same round trip, LOCAL to
      // this transaction, with a token that each statement after the first checks in its own
      // query: one the file's own COMMIT left in autocommit is not run (#24).
      const token = randomBytes(8).toString('hex');
      // Behind a pooler each transaction may get another server session: no pin to ping's.
      const pid = options.limits && !this.#pooled ? this.#pid : undefined;
      const pin = sql.unsafe(catalog.limits(options.limits, true, pid, token));
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
      const first = pinned + (expect === undefined ? 0 : 1);
      const index = settled.findIndex((r) => r.status === 'rejected');
      if (index >= 0 && index < pinned) throw this.#moved((settled[index] as PromiseRejectedResult).reason);
      if (index >= 0 && index < first && options.expect) {
        const reason = (settled[index] as PromiseRejectedResult).reason;
        if (String((reason as Error)?.message).includes(PLAN_CHANGED)) throw new PlanChanged(options.expect);
        // The step lock not granted in time (lock_timeout): rolled back, nothing ran; retried.
        if (reason instanceof postgres.PostgresError && !isConnectionError(reason)) {
          throw new StatementFailed(-1, true, reason);
        }
        throw reason;
      }
      const ended = settled.findIndex(
        (r) => r.status === 'rejected' && String((r.reason as Error)?.message).includes(STEP_ENDED),
      );
      if (ended >= 0) {
        const failed = settled[index] as PromiseRejectedResult;
        throw new TransactionEnded(ended - first - 1, index < ended ? failed.reason : undefined);
      }
      throwUnlessEnded(settled, first, options.rollback ? 'ROLLBACK' : 'COMMIT');
    });
  }

  /** The step check's query (catalog.expect); behind a pooler it also asks the server to watch for a client gone. */
  async #expectQuery(expect: RecordExpectation): Promise<string> {
    const query = catalog.expect(await this.#record.qualified(), await this.#record.stepKey(), expect);
    return this.#pooled ? `${catalog.watchClientLocal}; ${query}` : query;
  }

  async exec(text: string, limits?: Limits): Promise<void> {
    this.#execSince = true;
    // No transaction to be LOCAL to: set for the statement (how SQL text is read too, which a
    // statement before may have changed), the limits back to the defaults right after, all in
    // one round trip. The reset runs whether or not the statement failed.
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

  async rollback(): Promise<void> {
    // Outside a transaction ROLLBACK only warns. A reset that failed in the aborted transaction runs again here.
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
