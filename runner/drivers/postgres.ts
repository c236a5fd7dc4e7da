/**
 * PostgreSQL through postgres.js. Every line of PostgreSQL-specific SQL lives here.
 *
 * One connection per runner (`max: 1`): it holds the session advisory lock and runs every
 * migration, so the lock and the work can never be on two different sessions. A file is sent as
 * it is, in one simple-protocol query, so the server's error `position` indexes the file's text.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import postgres from 'postgres';
import { createHash } from 'node:crypto';
import type { Capabilities, Driver, RecordRow, RecordTableState, Statement, StepDone, StepWork } from '../driver.ts';
import { StepFailure } from '../driver.ts';
import { MigrateError } from '../errors.ts';
import { hideSecrets, parseTableName, parseUrl, type PostgresServer } from '../config.ts';
import { failedNote, interrupted, RECORD_COLUMNS, renderStepScript, sqlString, toRecordRow } from '../record.ts';
import { codePointOffsetToIndex } from '../position.ts';
import type { Schema } from '../schema.ts';
import { introspectPostgres } from './postgres-schema.ts';

type Sql = postgres.Sql;
type Query = Pick<Sql, 'unsafe'>;

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

/** postgres.js' own codes for a connection that could not be made or was lost. */
const CLIENT_CONNECTION_CODES = new Set([
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'SASL_SIGNATURE_MISMATCH',
  'MESSAGE_NOT_SUPPORTED',
]);

/**
 * Whether an error means "the database could not be reached, or the session is gone", as
 * opposed to an SQL error. Server side: connection exceptions (08), authentication (28), a
 * database that does not exist (3D000), shutdown / not yet accepting connections (57P01-57P03),
 * too many connections (53300); https://www.postgresql.org/docs/current/errcodes-appendix.html.
 * Client side: postgres.js' connection codes, socket errors (ECONNREFUSED, ENOTFOUND, … carry
 * `syscall`) and TLS failures (OpenSSL errors carry `library`/`reason`, Node's `ERR_TLS_*`).
 */
function isConnectionError(error: unknown): boolean {
  if (error instanceof postgres.PostgresError) return /^(08|28|3D|57P)/.test(error.code) || error.code === '53300';
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { code?: unknown; syscall?: unknown; library?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  return (
    CLIENT_CONNECTION_CODES.has(code) ||
    typeof e.syscall === 'string' ||
    typeof e.library === 'string' ||
    /^ERR_(TLS|SSL)_|CERT/.test(code)
  );
}

function serverOf(url: string): PostgresServer {
  const c = parseUrl(url);
  if (c.dialect !== 'postgres') throw new MigrateError('BAD_URL', `${c.display} is not a PostgreSQL URL.`);
  return c.server;
}

/** Queries sent behind the lock; undefined where they failed or were not sent. */
interface ReadAhead {
  state: Promise<RecordTableState | undefined>;
  rows: Promise<RecordRow[] | undefined>;
}

/** Thrown inside a transaction to roll it back on purpose. */
class Rollback extends Error {}

export class PostgresDriver implements Driver {
  readonly capabilities: Capabilities = { folder: 'postgres', schemaQualifiedTables: true, connectsToServer: true };
  readonly #server: PostgresServer;
  readonly #deadline: number | undefined;
  readonly #display: string;
  readonly #secrets: string[];
  /** The record table's name as given (`schema_migrations`, `ops.migrations`), for messages. */
  readonly #label: string;
  readonly #schema: string | undefined;
  readonly #name: string;
  /** The record table as the user named it, quoted: `"table"` or `"schema"."table"`; for rendered scripts. */
  readonly #table: string;
  /** The schema an unqualified record table lives in, resolved once per driver. */
  #resolvedSchema: string | undefined;
  #sql: Sql | undefined;
  /** The record table's state, as read under the current lock. */
  #state: RecordTableState | undefined;
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
    this.#table = schema === undefined ? quoteIdent(table) : `${quoteIdent(schema)}.${quoteIdent(table)}`;
  }

  /** Created on first use: nothing connects until a method needs the database. */
  get #client(): Sql {
    if (!this.#sql) {
      try {
        const s = this.#server;
        this.#sql = postgres({
          // Arrays pair hosts with ports by index (postgres.js reads both forms; its types know one).
          host: s.host as unknown as string | undefined,
          port: s.port as unknown as number | undefined,
          database: s.database,
          username: s.username,
          password: s.password,
          ...(s.ssl === undefined ? {} : { ssl: s.ssl as 'require' | false }),
          ...(s.targetSessionAttrs === undefined ? {} : { target_session_attrs: s.targetSessionAttrs as 'read-write' }),
          max: 1,
          // Holding the session lock on an idle connection must never end it: postgres.js would
          // otherwise recycle the connection after 30-60 min (max_lifetime) and silently release
          // the advisory lock along with it.
          idle_timeout: 0,
          max_lifetime: null,
          connect_timeout:
            this.#deadline === undefined
              ? (s.connectTimeout ?? 10)
              : Math.max(0.1, Math.min(s.connectTimeout ?? 10, (this.#deadline - Date.now()) / 1000)),
          // The library never prints; postgres.js would console.log every NOTICE without this.
          onnotice: (notice) => {
            if (typeof notice.code === 'string') this.#notices.add(notice.code);
          },
          onclose: () => {
            if (this.#locked) this.#lost = true;
          },
          // Unnamed statements only: works through poolers, and nothing to re-prepare after a reconnect.
          prepare: false,
          // We read no arrays or custom types: save the round trip at connect.
          fetch_types: false,
          debug: false,
          connection: { application_name: 'sql-migrate', ...s.parameters },
        });
      } catch (error) {
        throw this.#unreachable(error);
      }
    }
    return this.#sql;
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
    const named = this.#schema === undefined ? 'quote_ident(current_schema())' : sqlString(quoteIdent(this.#schema));
    const [row] = await this.#do((sql) =>
      sql.unsafe(
        `SELECT current_schema() AS s, to_regclass(${named} || '.' || ${sqlString(quoteIdent(this.#name))}) IS NOT NULL AS seen`,
      ),
    );
    if (this.#resolvedSchema === undefined && typeof row?.s === 'string') this.#resolvedSchema = row.s;
    this.#tableSeen = row?.seen === true;
  }

  /**
   * A session-level advisory lock on the connection that runs the migrations, polled with
   * `pg_try_advisory_lock` so a waiter holds no transaction and no snapshot between polls (a
   * blocking `pg_advisory_lock` would hold one, and stall the holder's CREATE INDEX
   * CONCURRENTLY). The server releases it when the session ends, kill -9 included.
   */
  async withLock<T>(fn: () => Promise<T>, timeoutMs: number | undefined): Promise<T> {
    const key = await this.#lockKey();
    // Sent together with the first try: one round trip for the setting, the lock and the record.
    const watching = this.#watchClient();
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    for (let first = true; ; first = false) {
      const trying = this.#do((sql) => sql.unsafe(`SELECT pg_try_advisory_lock(${key}) AS ok`));
      const ahead = first ? this.#readAhead() : undefined;
      // Both awaited at once: whichever fails, the other's failure is not left unhandled.
      const [, [row]] = await Promise.all([first ? watching : undefined, trying]);
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
      if (!lost) await this.#sql?.unsafe(`SELECT pg_advisory_unlock(${key})`).catch(() => {});
    }
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
    await this.#do((sql) =>
      sql.unsafe(
        `SELECT CASE WHEN current_setting('server_version_num')::int >= 140000
                THEN set_config('client_connection_check_interval', '1000', false) END`,
      ),
    ).catch((error: unknown) => {
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
      const [row] = await this.#do((sql) => sql.unsafe('SELECT current_schema() AS s'));
      if (typeof row?.s !== 'string') {
        throw new Error(
          `no schema on the search_path exists to hold the record table ${this.#label}: create one, or name it with --table schema.table`,
        );
      }
      this.#resolvedSchema = row.s;
    }
    return this.#resolvedSchema;
  }

  /** The record table, schema-qualified and quoted, for every statement the driver runs. */
  async #target(): Promise<string> {
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
    // Literals, not parameters: a parameterised query costs postgres.js a second round trip
    // (describe first) with `prepare: false`. Both names passed parseTableName or came from
    // current_schema(), and sqlString quotes them all the same.
    const rows = await this.#do((sql) =>
      sql.unsafe(`
        SELECT a.attname AS name
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE n.nspname = ${sqlString(schema)}
          AND c.relname = ${sqlString(this.#name)}
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        ORDER BY a.attnum`),
    );
    const names = rows.map((r) => String(r.name));
    return rows.length === 0
      ? { kind: 'missing' }
      : RECORD_COLUMNS.every((c) => names.includes(c))
        ? { kind: 'ok' }
        : { kind: 'foreign', columns: names };
  }

  async tableExists(name: string): Promise<boolean> {
    // to_regclass resolves through search_path exactly as an unqualified query would.
    const [row] = await this.#do((sql) => sql`SELECT to_regclass(${quoteIdent(name)}) IS NOT NULL AS found`);
    return row?.found === true;
  }

  renderHeader(): string {
    return '\\set ON_ERROR_STOP on\n'; // psql would otherwise carry on after an error and record later steps
  }

  renderEnsureRecordTable(): string {
    const schema = this.#schema === undefined ? '' : `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.#schema)};\n`;
    return `${schema}CREATE TABLE IF NOT EXISTS ${this.#table} (${COLUMNS});`;
  }

  /**
   * Creates only what is missing: `CREATE … IF NOT EXISTS` checks the CREATE privilege before
   * it checks existence, so a role that may use an existing schema and table but not create
   * them would fail on it. https://www.postgresql.org/docs/current/sql-createschema.html
   */
  async ensureRecordTable(): Promise<void> {
    if ((await this.recordTableState()).kind !== 'missing') return;
    const table = await this.#target();
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
    const table = await this.#target();
    const rows = await this.#do((sql) =>
      sql.unsafe(
        `SELECT revision, name, checksum, status,
                to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS applied_at,
                duration_ms, seq, statements_run, error
         FROM ${table} ORDER BY seq`,
      ),
    );
    return rows.map(toRecordRow);
  }

  async #insertRow(
    q: Query,
    table: string,
    row: {
      revision: string;
      name: string;
      checksum: string;
      status: 'applied' | 'failed';
      durationMs: number;
      statementsRun: number | null;
      error: string | null;
    },
  ): Promise<void> {
    await q.unsafe(
      `INSERT INTO ${table} (revision, name, checksum, status, applied_at, duration_ms, seq, statements_run, error)
       VALUES ($1, $2, $3, $4, clock_timestamp(), $5, (SELECT coalesce(max(seq), 0) + 1 FROM ${table}), $6, $7)`,
      [row.revision, row.name, row.checksum, row.status, Math.round(row.durationMs), row.statementsRun, row.error],
    );
  }

  async runStep(step: StepWork): Promise<StepDone> {
    const started = performance.now();
    const table = await this.#target();
    if (!step.transactional && !step.empty) return this.#runStatements(step, table, started);
    let fileError: unknown;
    try {
      await this.#do(async (sql) => {
        // One round trip per step: BEGIN, the file (one simple-protocol Query, exactly as written,
        // so `position` indexes it), its record change and COMMIT leave together, pipelined on the
        // one connection. If the file fails, the server refuses the record change (25P02) and
        // answers COMMIT with ROLLBACK: nothing of the step remains.
        // postgres.js sends a query when it is first awaited, so nothing may touch these before
        // allSettled awaits them in this order.
        const queries = [
          sql.unsafe('BEGIN'),
          ...(step.empty ? [] : [sql.unsafe(step.sql)]),
          sql.unsafe(recordChange(table, step)),
          sql.unsafe('COMMIT'),
        ];
        const settled = await Promise.allSettled(queries);
        const rejected = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (rejected) {
          if (!step.empty && settled[1] === rejected) fileError = rejected.reason;
          throw rejected.reason;
        }
        const commit = settled[settled.length - 1] as PromiseFulfilledResult<{ command?: string }>;
        if (commit.value.command !== 'COMMIT') throw new Error(`COMMIT was answered with ${commit.value.command}`);
      });
    } catch (error) {
      if (!(error instanceof postgres.PostgresError)) throw error;
      // An error of the tracking statement has its own `position`, not the file's.
      throw failure(error, error === fileError ? await this.#locate(step, error) : {});
    }
    return { durationMs: performance.now() - started };
  }

  /**
   * No-transaction files: one statement per simple-protocol query, each its own implicit
   * transaction (CREATE INDEX CONCURRENTLY needs that), so a failure knows how many took effect.
   * The record says `failed` before the first statement and counts each one as it completes: a
   * runner killed in between leaves the truth behind, not statements that no row mentions.
   */
  async #runStatements(step: StepWork, table: string, started: number): Promise<StepDone> {
    const revision = step.record.revision;
    const progress = (ran: number, error: string) =>
      this.#do((sql) =>
        sql.unsafe(
          `UPDATE ${table} SET status = 'failed', statements_run = ${ran}, error = ${sqlString(error)} WHERE revision = ${sqlString(revision)}`,
        ),
      );
    const r = step.record;
    if (r.kind === 'insert') {
      await this.#do((sql) =>
        this.#insertRow(sql, table, {
          revision,
          name: r.name,
          checksum: r.checksum,
          status: 'failed',
          durationMs: 0,
          statementsRun: 0,
          error: interrupted('up'),
        }),
      );
    } else {
      await progress(0, interrupted('down'));
    }
    let ran = 0;
    let error: unknown;
    try {
      for (const s of step.statements) {
        await this.#do((sql) => sql.unsafe(s.sql));
        ran++;
        if (ran < step.statements.length) await progress(ran, interrupted(r.kind === 'insert' ? 'up' : 'down'));
      }
      this.#notices.clear();
      await this.#do((sql) =>
        sql.begin(async (tx) => {
          // Our BEGIN inside the file's own open transaction only warns (25001): throwing here
          // rolls back both, rather than committing the file's half under our record row.
          if (this.#notices.has('25001'))
            throw new Error('the file left a transaction open (BEGIN without COMMIT); it was rolled back');
          if (r.kind === 'insert') {
            await tx.unsafe(
              `UPDATE ${table} SET status = 'applied', statements_run = NULL, error = NULL, applied_at = clock_timestamp(), duration_ms = ${Math.round(performance.now() - started)} WHERE revision = ${sqlString(revision)}`,
            );
          } else {
            await tx.unsafe(`DELETE FROM ${table} WHERE revision = ${sqlString(revision)}`);
          }
        }),
      );
      return { durationMs: performance.now() - started };
    } catch (e) {
      if (e instanceof MigrateError) throw e;
      error = e;
    }
    // A file's own BEGIN may have left an open or aborted transaction; outside one this is a no-op.
    await this.#do((sql) => sql.unsafe('ROLLBACK'));
    const statement = ran < step.statements.length ? (step.statements[ran] as Statement) : undefined;
    const where: { statementIndex?: number; offset?: number } = {};
    if (statement) {
      where.statementIndex = ran;
      const position = positionOf(error);
      if (position !== undefined) where.offset = statement.offset + codePointOffsetToIndex(statement.sql, position);
    }
    const stepFailure = failure(error, where);
    stepFailure.details.statementsRun = ran;
    await progress(ran, failedNote(r.kind === 'insert' ? 'up' : 'down', stepFailure.message));
    throw stepFailure;
  }

  /**
   * Where a transactional file failed. The server's `position` counts characters from the start
   * of the text sent (the whole file). Runtime errors carry none: then replay the statements one
   * by one in a transaction that is rolled back, and name a statement only when it fails with
   * the very same SQLSTATE and message. Otherwise say nothing rather than guess.
   */
  async #locate(step: StepWork, error: postgres.PostgresError): Promise<{ statementIndex?: number; offset?: number }> {
    if (step.empty) return {};
    const position = positionOf(error);
    if (position !== undefined) {
      const offset = codePointOffsetToIndex(step.sql, position);
      let statementIndex: number | undefined;
      step.statements.forEach((s, i) => {
        if (s.offset <= offset) statementIndex = i;
      });
      return statementIndex === undefined ? { offset } : { offset, statementIndex };
    }
    let found: { statementIndex?: number; offset?: number } = {};
    try {
      await this.#do((sql) =>
        sql.begin(async (tx) => {
          for (let i = 0; i < step.statements.length; i++) {
            const s = step.statements[i] as Statement;
            try {
              await tx.unsafe(s.sql);
            } catch (e) {
              if (e instanceof postgres.PostgresError && e.code === error.code && e.message === error.message) {
                found = { statementIndex: i };
                const p = positionOf(e);
                if (p !== undefined) found.offset = s.offset + codePointOffsetToIndex(s.sql, p);
              }
              break;
            }
          }
          throw new Rollback();
        }),
      );
    } catch (e) {
      if (!(e instanceof Rollback)) return {};
    }
    return found;
  }

  async writeRecord(
    rows: Array<Pick<RecordRow, 'revision' | 'name' | 'checksum' | 'appliedAt' | 'durationMs'>>,
  ): Promise<void> {
    const table = await this.#target();
    await this.#do((sql) =>
      sql.begin(async (tx) => {
        await tx.unsafe(`DELETE FROM ${table}`);
        let seq = 0;
        for (const r of rows) {
          await tx.unsafe(
            `INSERT INTO ${table} (revision, name, checksum, status, applied_at, duration_ms, seq)
             VALUES ($1, $2, $3, 'applied', $4::timestamptz, $5, $6)`,
            [r.revision, r.name, r.checksum, r.appliedAt, Math.round(r.durationMs), ++seq],
          );
        }
      }),
    );
  }

  /** For `psql -v ON_ERROR_STOP=1 -f`: the file as written, its tracking statement, and BEGIN/COMMIT when transactional. */
  renderStep(step: StepWork): string {
    return renderStepScript(step, this.#table, 'now()');
  }

  async introspect(): Promise<Schema> {
    const schema = await this.#schemaName();
    return introspectPostgres(
      (text, params = []) => this.#do((sql) => sql.unsafe(text, params as postgres.ParameterOrJSON<never>[])),
      { schema, table: this.#name },
    );
  }

  async close(): Promise<void> {
    const sql = this.#sql;
    this.#sql = undefined;
    this.#locked = false;
    this.#lost = false;
    await sql?.end({ timeout: 5 });
  }
}

const COLUMNS = `
  revision       text        PRIMARY KEY,
  name           text        NOT NULL,
  checksum       text        NOT NULL,
  status         text        NOT NULL CHECK (status IN ('applied', 'failed')),
  applied_at     timestamptz NOT NULL,
  duration_ms    integer     NOT NULL,
  seq            integer     NOT NULL UNIQUE,
  statements_run integer,
  error          text
`;

/** An identifier in double quotes; parseTableName only lets plain names through, so nothing to escape but `"`. */
function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function positionOf(error: unknown): number | undefined {
  const raw = (error as { position?: unknown } | null)?.position;
  const n = typeof raw === 'string' ? Number.parseInt(raw, 10) : typeof raw === 'number' ? raw : NaN;
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * The server's message, SQLSTATE, detail and hint; never its `file`/`line`/`routine`, which
 * are the server's C source location, not the migration's.
 */
function failure(error: unknown, where: { statementIndex?: number; offset?: number }): StepFailure {
  const e = error as { message?: string; code?: string; detail?: string; hint?: string } | null;
  const details: ConstructorParameters<typeof StepFailure>[1] = { cause: error, ...where };
  if (typeof e?.code === 'string') details.code = e.code;
  if (typeof e?.detail === 'string') details.detail = e.detail;
  if (typeof e?.hint === 'string') details.hint = e.hint;
  return new StepFailure(e?.message ?? String(error), details);
}

/**
 * The step's record change as one literal statement, so it can be pipelined (a parameterised
 * query costs postgres.js a second round trip to describe it first when `prepare` is off).
 * `duration_ms` is measured by the server: from BEGIN (`now()`) to the end of the file.
 */
function recordChange(table: string, step: StepWork): string {
  const r = step.record;
  return r.kind === 'insert'
    ? `INSERT INTO ${table} (revision, name, checksum, status, applied_at, duration_ms, seq)
       VALUES (${sqlString(r.revision)}, ${sqlString(r.name)}, ${sqlString(r.checksum)}, 'applied', clock_timestamp(),
               round(extract(epoch FROM clock_timestamp() - now()) * 1000)::integer,
               (SELECT coalesce(max(seq), 0) + 1 FROM ${table}))`
    : `DELETE FROM ${table} WHERE revision = ${sqlString(r.revision)}`;
}
