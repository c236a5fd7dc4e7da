/**
 * PostgreSQL through postgres.js: I/O only. The record table's statements come from
 * postgres-sql.ts, the step protocol from step.ts.
 *
 * One connection per runner (`max: 1`): it holds the session advisory lock and runs every
 * migration, so the lock and the work can never be on two different sessions. A file is sent as
 * it is, in one simple-protocol query, so the server's error `position` indexes the file's text.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import postgres from 'postgres';
import { createHash } from 'node:crypto';
import type { Capabilities, Driver, Limits, Observation, RecordRow, RecordTableState } from '../driver.ts';
import { StatementFailed, TransactionLeftOpen } from '../driver.ts';
import { MigrateError } from '../errors.ts';
import { hideSecrets, parseTableName, type PostgresServer } from '../config.ts';
import {
  type ClientOptions,
  clientOptions,
  movedSession,
  observeSession,
  serverOf,
  transactionMode,
  transactionPooler,
} from './postgres-client.ts';
import { recordTableState, toRecordRow } from '../record.ts';
import { catalog, COLUMNS, isConnectionError, missingRight, postgresSql, quoteIdent } from './postgres-sql.ts';
import type { SchemaSource } from '../introspect.ts';

type Sql = postgres.Sql;

export interface PostgresOptions {
  /** The server, as parsed once from the URL (config.ts `parseUrl`): no URL string reaches postgres.js. */
  server?: PostgresServer;
  /** Or a URL, read by the same strict parser (for callers that hold only a URL). */
  url?: string;
  /** The URL with its password shown as `****`: the only form any message may carry. */
  display: string;
  /** The record table, `table` or `schema.table`. */
  table: string;
  /** False for read-only commands. PostgreSQL creates nothing on connect, so only kept for symmetry. */
  create: boolean;
  /** When set (epoch ms, `--wait`'s limit): each connect attempt gives up by then. */
  deadline?: number;
}

/** Queries sent behind the lock; undefined where they failed or were not sent. */
interface ReadAhead {
  state: Promise<RecordTableState | undefined>;
  rows: Promise<RecordRow[] | undefined>;
}

export class PostgresDriver implements Driver {
  readonly capabilities: Capabilities = { folder: 'postgres', schemaQualifiedTables: true, connectsToServer: true };
  readonly sql = postgresSql;
  readonly #server: PostgresServer;
  readonly #deadline: number | undefined;
  readonly #display: string;
  readonly #secrets: string[];
  /** The record table's name as given (`schema_migrations`, `ops.migrations`), for messages. */
  readonly #label: string;
  readonly #schema: string | undefined;
  readonly #name: string;
  /** The schema an unqualified record table lives in, resolved once per driver. */
  #resolvedSchema: string | undefined;
  #sql: Sql | undefined;
  /** The record table's state, as read under the current lock. */
  #state: RecordTableState | undefined;
  /** The right a run lacks, read by the same query as the record table's state. */
  #missing: string | undefined;
  /** Inside withLock, after the lock was taken. */
  #locked = false;
  /** The connection that held the lock closed: the lock is gone with it. */
  #lost = false;
  /** SQLSTATEs of the notices (warnings) received since last cleared. */
  readonly #notices = new Set<string>();
  /** A query has succeeded: a connection error now means the server went away, not that it was never there. */
  #reached = false;
  /** The record table existed when last pinged: worth reading it in the lock's round trip. */
  #tableSeen = false;
  /** The record table's state and rows, sent right behind the lock that was taken; consumed once. */
  #ahead: ReadAhead | undefined;
  /** `exec` ran since the last transaction: a file's own BEGIN may have left one open. */
  #execSince = false;
  /** The server process of the runner's session (from ping), for the observer to look at. */
  #pid: number | undefined;
  /** A pooler stands between us and the server (the session's announced process is not the one that answers). */
  #pooled = false;
  /** A second connection, opened only once a step has waited or run a while. */
  #observer: Sql | undefined;

  constructor(options: PostgresOptions) {
    this.#server = options.server ?? serverOf(options.url ?? '');
    this.#deadline = options.deadline;
    this.#display = options.display;
    const password = this.#server.password;
    this.#secrets = password ? [password, encodeURIComponent(password)] : [];
    const { schema, table } = parseTableName(options.table, true);
    this.#label = options.table;
    this.#schema = schema;
    this.#name = table;
  }

  /** Created on first use: nothing connects until a method needs the database. */
  get #client(): Sql {
    if (!this.#sql) {
      try {
        this.#sql = postgres(this.#options('sql-migrate'));
      } catch (error) {
        throw this.#unreachable(error);
      }
    }
    return this.#sql;
  }

  #options(name: string): ClientOptions {
    return clientOptions(this.#server, this.#deadline, name, {
      // The library never prints; postgres.js would console.log every NOTICE without this.
      onnotice: (notice) => {
        if (typeof notice.code === 'string') this.#notices.add(notice.code);
      },
      onclose: () => {
        if (this.#locked) this.#lost = true;
      },
    });
  }

  /** Every query goes through here: a connection failure becomes CONNECTION_FAILED, naming the URL without its password. */
  async #do<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    this.#checkSession();
    try {
      const result = await fn(this.#client);
      this.#reached = true;
      return result;
    } catch (error) {
      if (isConnectionError(error)) throw this.#unreachable(error);
      throw error;
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
    if (error instanceof MigrateError) return error;
    const e = error as { message?: string; code?: string } | null;
    const why = hideSecrets(e?.message ?? String(error), this.#secrets);
    const code = e?.code && !why.includes(e.code) ? ` (${e.code})` : '';
    const what = this.#reached ? 'lost the connection to' : 'cannot connect to';
    return new MigrateError('CONNECTION_FAILED', `${what} ${this.#display}: ${why}${code}`, { cause: error });
  }

  async ping(): Promise<void> {
    const rows = await this.#do((sql) => sql.unsafe(catalog.ping(this.#schema, this.#name)));
    const [row] = rows;
    // The server's startup message names its process; a pooler hands out a key of its own.
    const announced = (rows as { state?: { pid?: unknown } }).state?.pid;
    this.#pooled = typeof announced === 'number' && typeof row?.pid === 'number' && announced !== row.pid;
    if (this.#resolvedSchema === undefined && typeof row?.s === 'string') this.#resolvedSchema = row.s;
    this.#tableSeen = row?.seen === true;
    this.#pid = typeof row?.pid === 'number' ? row.pid : undefined;
  }

  /**
   * A session-level advisory lock on the connection that runs the migrations, polled with
   * `pg_try_advisory_lock` so a waiter holds no transaction and no snapshot between polls (a
   * blocking `pg_advisory_lock` would hold one, and stall the holder's CREATE INDEX
   * CONCURRENTLY). The server releases it when the session ends, kill -9 included.
   */
  async withLock<T>(fn: () => Promise<T>, timeoutMs: number | undefined): Promise<T> {
    const key = await this.#lockKey();
    if (this.#pooled) await this.#refuseTransactionPooler();
    // Sent together with the first try: one round trip for the setting, the lock and the record.
    const watching = this.#watchClient();
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    for (let first = true; ; first = false) {
      const trying = this.#do((sql) => sql.unsafe(catalog.tryLock(key, this.#pid)));
      const ahead = first ? this.#readAhead() : undefined;
      // Both awaited at once: whichever fails, the other's failure is not left unhandled.
      const [, [row]] = await Promise.all([first ? watching : undefined, trying]);
      if (this.#pid !== undefined && row?.pid !== this.#pid) throw this.#transactionPooler();
      if (row?.ok === true) {
        this.#ahead = ahead;
        break;
      }
      if (Date.now() >= deadline) {
        throw new MigrateError(
          'LOCK_TIMEOUT',
          `another runner holds the migration lock for ${this.#label} on ${this.#display} (waited ${Math.round((timeoutMs ?? 0) / 1000)} s; see --lock-timeout).`,
        );
      }
      await sleep(50 + Math.random() * 50);
    }
    this.#locked = true;
    this.#lost = false;
    this.#state = undefined;
    try {
      return await fn();
    } finally {
      const lost = this.#lost;
      this.#state = undefined;
      this.#ahead = undefined;
      this.#locked = false;
      this.#lost = false;
      // A lost session took the lock with it; an unlock failing here must not hide fn's outcome.
      if (!lost) await this.#sql?.unsafe(catalog.unlock(key)).catch(() => {});
    }
  }

  /** Only paid behind a pooler: see {@link transactionMode}. */
  async #refuseTransactionPooler(): Promise<void> {
    const probe = postgres({ ...this.#options('sql-migrate (pooler probe)'), onnotice: () => {}, onclose: () => {} });
    const ours = async (query: string) => (await this.#do((sql) => sql.unsafe(query)))[0];
    if (await transactionMode(probe, ours, this.#pid)) throw transactionPooler(this.#display);
  }

  /** The limits refused `moved`: the statement reached another server session than the lock's. */
  #moved(error: unknown): unknown {
    return movedSession(error) ? transactionPooler(this.#display) : error;
  }

  #transactionPooler(): MigrateError {
    return transactionPooler(this.#display);
  }

  /**
   * The record table's state and rows, queued right behind a try for the lock on the same
   * session. Each is its own statement with its own snapshot, taken after the lock statement
   * finished, so when the lock was taken they read what a read under the lock would. When it was
   * not, they are dropped. Rows are asked for only when the table was there at ping: a fresh
   * database then gets no "relation does not exist" in its server log. Any failure here just
   * means the ordinary queries run later.
   */
  #readAhead(): ReadAhead {
    const state = this.#queryState().catch(() => undefined);
    const rows = this.#tableSeen ? this.#queryRecord().catch(() => undefined) : Promise.resolve(undefined);
    return { state, rows };
  }

  /**
   * A runner killed mid-statement (kill -9, OOM) leaves its backend running the statement to
   * its end, holding the lock all along, and for a no-transaction file committing it without a
   * record row. Since PostgreSQL 14 the backend can poll its socket during a query and abort
   * when the client is gone: ask for that on this session.
   * https://www.postgresql.org/docs/current/runtime-config-connection.html#GUC-CLIENT-CONNECTION-CHECK-INTERVAL
   * Older servers lack the setting, and some platforms (PGlite's wasm build) refuse a non-zero
   * value: then carry on without it.
   */
  async #watchClient(): Promise<void> {
    await this.#do((sql) => sql.unsafe(catalog.watchClient)).catch((error: unknown) => {
      if (!(error instanceof postgres.PostgresError)) throw error;
    });
  }

  /**
   * One lock per record table, so two tables in one database never block each other. An
   * unqualified name is resolved to the schema it is created in, so `t` and `public.t` agree.
   */
  async #lockKey(): Promise<string> {
    const schema = await this.#schemaName();
    const digest = createHash('sha256').update(`sql-migrate\0${schema}\0${this.#name}`).digest();
    return digest.readBigInt64BE(0).toString();
  }

  /**
   * The schema of the record table: the one named, else the one an unqualified CREATE TABLE
   * would use (`current_schema()`), fixed at first use. Every statement on the record table is
   * then qualified with it, so a migration that runs `SET search_path` cannot send the record
   * somewhere else halfway through a run.
   */
  async #schemaName(): Promise<string> {
    if (this.#schema !== undefined) return this.#schema;
    if (this.#resolvedSchema === undefined) {
      const [row] = await this.#do((sql) => sql.unsafe(catalog.currentSchema));
      if (typeof row?.s !== 'string') {
        throw new Error(
          `no schema on the search_path exists to hold the record table ${this.#label}: create one, or name it with --table schema.table`,
        );
      }
      this.#resolvedSchema = row.s;
    }
    return this.#resolvedSchema;
  }

  async recordTable(): Promise<string> {
    return `${quoteIdent(await this.#schemaName())}.${quoteIdent(this.#name)}`;
  }

  async recordTableState(): Promise<RecordTableState> {
    // Under the lock nobody else creates or alters the table: asked once per lock, not per call.
    if (this.#locked && this.#state) return this.#state;
    const state = (this.#locked ? await this.#ahead?.state : undefined) ?? (await this.#queryState());
    if (this.#locked) this.#state = state;
    return state;
  }

  async #queryState(): Promise<RecordTableState> {
    const schema = await this.#schemaName();
    const rows = await this.#do((sql) => sql.unsafe(catalog.columns(schema, this.#name)));
    this.#missing = missingRight(rows[0], schema, this.#name);
    return recordTableState(rows.filter((r) => r.name !== null).map((r) => String(r.name)));
  }

  /** Read with the record table's state (the lock's round trip): costs no query of its own. */
  async missingRight(): Promise<string | undefined> {
    await this.recordTableState();
    return this.#missing;
  }

  async tableExists(name: string): Promise<boolean> {
    // to_regclass resolves through search_path exactly as an unqualified query would.
    const [row] = await this.#do((sql) => sql`SELECT to_regclass(${quoteIdent(name)}) IS NOT NULL AS found`);
    return row?.found === true;
  }

  /**
   * Creates only what is missing: `CREATE … IF NOT EXISTS` checks the CREATE privilege before
   * it checks existence, so a role that may use an existing schema and table but not create
   * them would fail on it. https://www.postgresql.org/docs/current/sql-createschema.html
   */
  async ensureRecordTable(): Promise<void> {
    if ((await this.recordTableState()).kind !== 'missing') return;
    const table = await this.recordTable();
    await this.#do(async (sql) => {
      if (this.#schema !== undefined) {
        const [row] =
          await sql`SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = ${this.#schema}) AS found`;
        if (row?.found !== true) await sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.#schema)}`);
      }
      await sql.unsafe(`CREATE TABLE IF NOT EXISTS ${table} (${COLUMNS})`);
    });
    this.#state = { kind: 'ok' };
  }

  async readRecord(): Promise<RecordRow[]> {
    if ((await this.recordTableState()).kind !== 'ok') return [];
    const ahead = this.#locked ? this.#ahead?.rows : undefined;
    if (this.#ahead) this.#ahead.rows = Promise.resolve(undefined); // read ahead once: later reads see later steps
    return (await ahead) ?? (await this.#queryRecord());
  }

  async #queryRecord(): Promise<RecordRow[]> {
    const table = await this.recordTable();
    const rows = await this.#do((sql) => sql.unsafe(catalog.readRecord(table)));
    return rows.map(toRecordRow);
  }

  async transaction(
    statements: readonly string[],
    options: { rollback?: boolean; limits?: Limits } = {},
  ): Promise<void> {
    const check = this.#execSince;
    this.#execSince = false;
    this.#notices.clear();
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
      // The attempt's limits travel in the same round trip, LOCAL to this transaction.
      const limits = options.limits ? [sql.unsafe(catalog.limits(options.limits, true, this.#pid))] : [];
      const queries = [
        ...(check ? [] : [sql.unsafe('BEGIN')]),
        ...limits,
        ...statements.map((text) => sql.unsafe(text)),
        sql.unsafe(options.rollback ? 'ROLLBACK' : 'COMMIT'),
      ];
      const settled = await Promise.allSettled(queries);
      const first = (check ? 0 : 1) + limits.length; // where the caller's statements start
      const index = settled.findIndex((r) => r.status === 'rejected');
      const end = settled[settled.length - 1] as PromiseSettledResult<{ command?: string }>;
      if (index >= 0) {
        const reason = (settled[index] as PromiseRejectedResult).reason;
        if (index < first) throw this.#moved(reason);
        if (!(reason instanceof postgres.PostgresError) || isConnectionError(reason)) throw reason;
        // COMMIT answered with ROLLBACK, or failing itself, means the transaction was still open.
        const rolledBack = end.status === 'rejected' || end.value.command === 'ROLLBACK';
        throw new StatementFailed(index - first, rolledBack, reason);
      }
      const expected = options.rollback ? 'ROLLBACK' : 'COMMIT';
      const answer = end.status === 'fulfilled' ? end.value.command : undefined;
      if (answer !== expected) throw new Error(`${expected} was answered with ${answer}`);
    });
  }

  async exec(text: string, limits?: Limits): Promise<void> {
    this.#execSince = true;
    if (!limits) {
      await this.#do((sql) => sql.unsafe(text));
      return;
    }
    // No transaction to be LOCAL to: set for the statement, back to the defaults right after,
    // all three in one round trip. The reset runs whether or not the statement failed.
    await this.#do(async (sql) => {
      const limited = sql.unsafe(catalog.limits(limits, false, this.#pid));
      // Behind a pooler the statement goes only once its session has been checked: sent along,
      // it would run even where the check failed.
      if (this.#pooled) await limited.catch((error: unknown) => Promise.reject(this.#moved(error)));
      const [set, run, reset] = await Promise.allSettled([limited, sql.unsafe(text), sql.unsafe(catalog.resetLimits)]);
      if (set.status === 'rejected') throw this.#moved(set.reason);
      for (const r of [run, reset]) if (r.status === 'rejected') throw r.reason;
    });
  }

  async rollback(): Promise<void> {
    // Outside a transaction ROLLBACK only warns. A reset that failed in the aborted transaction runs again here.
    await this.#do((sql) => sql.unsafe(`ROLLBACK; ${catalog.resetLimits}`));
  }

  lockBusy(error: unknown): boolean {
    return error instanceof postgres.PostgresError && error.code === '55P03';
  }

  /**
   * From a second connection (opened on first use and kept for the run): what the runner's
   * session waits on, who is ahead of it, and an index build's progress.
   */
  async observe(withQuery: boolean): Promise<Observation | undefined> {
    if (this.#pid === undefined) return undefined;
    this.#observer ??= postgres({
      ...this.#options('sql-migrate (observer)'),
      connect_timeout: 5,
      onnotice: () => {},
      onclose: () => {},
    });
    return observeSession(this.#observer, this.#pid, withQuery);
  }

  async invalidIndex(name: string): Promise<boolean> {
    const [row] = await this.#do((sql) => sql.unsafe(catalog.invalidIndex(name)));
    return row?.bad === true;
  }

  /** What `check`'s introspection reads through: this session, and where the record table lives. */
  async schemaSource(): Promise<SchemaSource> {
    return {
      query: (text, params = []) => this.#do((sql) => sql.unsafe(text, params as postgres.ParameterOrJSON<never>[])),
      schema: await this.#schemaName(),
      table: this.#name,
    };
  }

  async close(): Promise<void> {
    const sql = this.#sql;
    const observer = this.#observer;
    this.#sql = undefined;
    this.#observer = undefined;
    await observer?.end({ timeout: 1 });
    this.#locked = false;
    this.#lost = false;
    await sql?.end({ timeout: 5 });
  }
}
