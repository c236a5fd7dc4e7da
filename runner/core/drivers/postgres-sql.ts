/**
 * The record table's SQL on PostgreSQL, and how to read the server's errors. Pure: the driver
 * and rendered scripts both build their statements here. Every value is a literal, not a
 * parameter: a parameterised query costs postgres.js a second round trip (describe first) with
 * `prepare: false`, and a literal statement can be pipelined with the file it records.
 */
import postgres from 'postgres';
import { codePointOffsetToIndex } from '../position.ts';
import { type DialectSql, expectationHolds, recordStatements } from '../record.ts';
import { quoteIdent, sqlString } from '../quote.ts';
import { parseTableName } from '../config.ts';
import {
  type Limits,
  type Observation,
  PlanChanged,
  type RecordExpectation,
  StatementFailed,
  TransactionEnded,
} from '../driver.ts';
import { ROLE_COLUMNS } from '../hosts.ts';

export const COLUMNS = `
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

/** The server's `position` (1-based, in characters of the text sent), when the error carries one. */
function position(error: unknown): number | undefined {
  const raw = (error as { position?: unknown } | null)?.position;
  const n = typeof raw === 'string' ? Number.parseInt(raw, 10) : typeof raw === 'number' ? raw : NaN;
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

function errorOffset(error: unknown, text: string): number | undefined {
  const p = position(error);
  return p === undefined ? undefined : codePointOffsetToIndex(text, p);
}

export const postgresSql: DialectSql = {
  // psql would otherwise carry on after an error and record later steps.
  // How the server reads the files' text, pinned as the runner pins it in every step (#24):
  // psql's own lexer follows the server's setting, so both read a backslash as the runner does.
  header: '\\set ON_ERROR_STOP on\nSET standard_conforming_strings = on;\nSET backslash_quote = on;\n',
  quoteTable(name) {
    const { schema, table } = parseTableName(name, true);
    return schema === undefined ? quoteIdent(table) : `${quoteIdent(schema)}.${quoteIdent(table)}`;
  },
  createTable(name) {
    const { schema } = parseTableName(name, true);
    const create = schema === undefined ? '' : `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)};\n`;
    return `${create}CREATE TABLE IF NOT EXISTS ${this.quoteTable(name)} (${COLUMNS});`;
  },
  ...recordStatements({
    now: 'clock_timestamp()',
    timestamp: (iso) => `${sqlString(iso)}::timestamptz`,
    // Inside the step's transaction `now()` is when its BEGIN ran: the server measures the file.
    duration: () => 'round(extract(epoch FROM clock_timestamp() - now()) * 1000)::integer',
  }),
  scriptGuard: { start: '', afterFile: () => '' },
  errorOffset,
  statementOffset: errorOffset,
};

/**
 * The driver's own queries: session, lock and record table. Literals, not parameters: a
 * parameterised query costs postgres.js a second round trip (describe first) with
 * `prepare: false`. Every name passed parseTableName or came from current_schema().
 */
/** The guard's error text: the step's transaction was ended by the file (see catalog.guard). */
export const STEP_ENDED = 'sql-migrate: the step transaction ended inside the file';

/** The step check's error text: the record no longer says what the plan assumed (see catalog.expect). */
export const PLAN_CHANGED = 'sql-migrate: the record changed since the plan';

export const catalog = {
  currentSchema: 'SELECT current_schema() AS s',
  /**
   * The schema an unqualified table goes to, whether the record table is there, and what the
   * server is (a standby, a read-only session: hosts.ts), in the session's first round trip.
   */
  ping(schema: string | undefined, name: string): string {
    const named = schema === undefined ? 'quote_ident(current_schema())' : sqlString(quoteIdent(schema));
    return `SELECT current_schema() AS s, to_regclass(${named} || '.' || ${sqlString(quoteIdent(name))}) IS NOT NULL AS seen, pg_backend_pid() AS pid, current_setting('standard_conforming_strings') AS scs, ${ROLE_COLUMNS}`;
  },
  /** What the server is, for sessions that read only (schema --url, drift). */
  role: `SELECT ${ROLE_COLUMNS}`,
  /**
   * An attempt's limits: `local` for the step's own transaction (SET LOCAL), else for the
   * session until `resetLimits`. With `pid` (a no-transaction statement's), a statement that
   * reached another server session than ping's (a transaction-mode pooler) fails here, before it
   * runs: `lock_timeout` refuses the value `moved`.
   */
  limits(l: Limits | undefined, local: boolean, pid?: number, token?: string): string {
    // How SQL text is read, pinned in everything the runner sends (core/reading-settings.ts).
    const reading = `set_config('standard_conforming_strings', 'on', ${local}), set_config('backslash_quote', 'on', ${local})`;
    const step = token === undefined ? '' : `, set_config('sql_migrate.step', '${token}', true)`;
    if (l === undefined) return `SELECT ${reading}${step}`;
    const ms = `'${Math.round(l.lockTimeoutMs)}ms'`;
    const lock = pid === undefined ? ms : `CASE WHEN pg_backend_pid() = ${pid} THEN ${ms} ELSE 'moved' END`;
    const statement =
      l.statementTimeoutMs === undefined
        ? ''
        : `, set_config('statement_timeout', '${Math.round(l.statementTimeoutMs)}ms', ${local})`;
    return `SELECT set_config('lock_timeout', ${lock}, ${local})${statement}, ${reading}${step}`;
  },
  /**
   * Fails unless the step's own transaction (the one whose `limits` set `token`) is still open:
   * sent in one query with the statement it guards, so a file that ended the transaction itself
   * (a COMMIT the lexer did not see as one) never gets its record row written in autocommit.
   */
  guard: (token: string) =>
    `SELECT (CASE WHEN current_setting('sql_migrate.step', true) = '${token}' THEN '0' ELSE '${STEP_ENDED}' END)::int`,
  /**
   * A step's exclusion and its check, first in its transaction (issue #25): the step lock `key`
   * (a transaction lock: COMMIT or ROLLBACK releases it, so no session keeps it, behind a pooler
   * either), then, in a statement of its own (its snapshot taken once the lock is held), whether
   * the record still says what the plan assumed. Fails with PLAN_CHANGED, before the file runs,
   * when it does not.
   */
  expect: (table: string, key: string, e: RecordExpectation) =>
    `SELECT pg_advisory_xact_lock(${key}); SELECT (CASE WHEN ${expectationHolds(table, e)} THEN '0' ELSE '${PLAN_CHANGED}' END)::int`,
  /**
   * Behind a pooler: ask the server, for this transaction only, to end it when its client is
   * gone (PostgreSQL 14+; the session-wide `watchClient` would stay on a pooled server session).
   */
  watchClientLocal: `SELECT CASE WHEN current_setting('server_version_num')::int >= 140000
                THEN set_config('client_connection_check_interval', '1000', true) END`,
  /** Creating the record table under the step lock: runners starting at once through a pooler never race on CREATE. */
  createRecord: (key: string, create: string) => `SELECT pg_advisory_xact_lock(${key}); ${create}`,
  /** Back to the session's defaults (the server's, the role's, the URL's), whatever a statement left. */
  resetLimits: 'RESET lock_timeout; RESET statement_timeout',
  /**
   * The relation session `pid` waits to lock and every session ahead of it: holders of a
   * conflicting lock, and waiters queued before it. One row with null pid when none.
   */
  blockers: (pid: number, withQuery: boolean) => `
    WITH w AS (
      SELECT l.relation, l.mode FROM pg_catalog.pg_locks l
      WHERE l.pid = ${pid} AND NOT l.granted ORDER BY l.relation IS NULL LIMIT 1
    ), held AS (
      -- A wait on no relation (DROP INDEX CONCURRENTLY waiting for older transactions): the table it works on.
      SELECT l.relation FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_class c ON c.oid = l.relation
      WHERE l.pid = ${pid} AND l.granted AND l.mode = 'ShareUpdateExclusiveLock' AND c.relkind IN ('r', 'p', 'm') LIMIT 1
    )
    SELECT coalesce((SELECT relation FROM w), CASE WHEN EXISTS (SELECT FROM w) THEN (SELECT relation FROM held) END)::regclass::text AS relation,
      (SELECT mode FROM w WHERE relation IS NOT NULL) AS wanted,
      EXISTS (SELECT FROM w WHERE relation IS NULL) AS transaction_wait,
      a.pid, a.application_name, a.usename AS "user", a.state,
      round(extract(epoch FROM clock_timestamp() - a.xact_start) * 1000)::float8 AS age_ms,
      (SELECT string_agg(DISTINCT l.mode, ', ') FROM pg_catalog.pg_locks l
        WHERE l.pid = a.pid AND l.relation = (SELECT relation FROM w)) AS modes,
      ${withQuery ? 'a.query' : 'NULL::text'} AS query
    FROM (SELECT 1) one
    LEFT JOIN LATERAL unnest(pg_catalog.pg_blocking_pids(${pid})) b(pid) ON true
    LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = b.pid`,
  indexProgress: (pid: number) =>
    `SELECT phase, blocks_done::float8 AS done, blocks_total::float8 AS total FROM pg_catalog.pg_stat_progress_create_index WHERE pid = ${pid}`,
  invalidIndex: (name: string) =>
    `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index WHERE indexrelid = to_regclass(${sqlString(name)}) AND NOT indisvalid) AS bad`,
  /**
   * Taken only on the backend that answered ping: through a transaction-mode pooler the next
   * statement may run on another client's backend, and a session lock left there outlives us.
   */
  tryLock: (key: string, pid: number | undefined) =>
    pid === undefined
      ? `SELECT pg_try_advisory_lock(${key}) AS ok`
      : `SELECT CASE WHEN pg_backend_pid() = ${pid} THEN pg_try_advisory_lock(${key}) END AS ok, pg_backend_pid() AS pid`,
  unlock: (key: string) => `SELECT pg_advisory_unlock(${key})`,
  /** Who holds the advisory lock `key` in this database (a bigint key: classid high, objid low, objsubid 1). */
  lockHolder: (key: string) => `
    SELECT a.pid, a.application_name, a.usename AS "user", a.backend_start
    FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
      AND ((l.classid::int8 << 32) | l.objid::int8) = ${key}
    LIMIT 1`,
  watchClient: `SELECT CASE WHEN current_setting('server_version_num')::int >= 140000
                THEN set_config('client_connection_check_interval', '1000', false) END`,
  /**
   * The columns of the record table, if a table (or view) of its name exists (`name` null when
   * none), and on every row this role's rights on the table, its schema and the database (null
   * where the object does not exist): one statement, so the rights cost no round trip of their own.
   */
  columns: (schema: string, name: string) => `
    SELECT a.attname AS name, r.*
    FROM (SELECT
        c.oid IS NOT NULL AS table_exists,
        has_schema_privilege(n.oid, 'USAGE') AS schema_usage,
        has_schema_privilege(n.oid, 'CREATE') AS schema_create,
        has_database_privilege(current_database(), 'CREATE') AS database_create,
        has_table_privilege(c.oid, 'SELECT') AS "SELECT",
        has_table_privilege(c.oid, 'INSERT') AS "INSERT",
        has_table_privilege(c.oid, 'UPDATE') AS "UPDATE",
        has_table_privilege(c.oid, 'DELETE') AS "DELETE",
        c.oid AS rel
      FROM (SELECT 1) one
      LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = ${sqlString(schema)}
      LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid
        AND c.relname = ${sqlString(name)}
        AND c.relkind IN ('r', 'p', 'v', 'm', 'f')) r
    LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = r.rel AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum`,
  readRecord: (table: string) => `SELECT revision, name, checksum, status,
    to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS applied_at,
    duration_ms, seq, statements_run, error
  FROM ${table} ORDER BY seq`,
} as const;

const TABLE_RIGHTS = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const;

/**
 * The right a run lacks, from a row of `catalog.columns`: on an existing record table every
 * right its bookkeeping uses, else CREATE where the table (and its schema) would be created.
 */
export function missingRight(
  row: Record<string, unknown> | undefined,
  schema: string,
  name: string,
): string | undefined {
  if (!row) return undefined;
  const where = `schema ${quoteIdent(schema)}`;
  const table = `${quoteIdent(schema)}.${quoteIdent(name)}`;
  if (row.schema_usage === null) {
    return row.database_create === true ? undefined : `CREATE on this database (to create ${where})`;
  }
  if (row.schema_usage !== true) return `USAGE on ${where}`;
  if (row.table_exists !== true) {
    return row.schema_create === true ? undefined : `CREATE on ${where} (to create the record table ${table})`;
  }
  const lacking = TABLE_RIGHTS.filter((right) => row[right] !== true);
  return lacking.length === 0 ? undefined : `${lacking.join(', ')} on table ${table}`;
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
export function isConnectionError(error: unknown): boolean {
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

/**
 * What a step's pipelined round trip (see PostgresDriver.transaction) came to, thrown: nothing
 * when every query succeeded and the transaction ended as asked. `pinned`: where the step check
 * starts (the queries before it set the limits); `first`: where the caller's statements start.
 */
export function throwFromStep(
  settled: ReadonlyArray<PromiseSettledResult<unknown>>,
  at: {
    pinned: number;
    first: number;
    expect: RecordExpectation | undefined;
    end: 'COMMIT' | 'ROLLBACK';
  },
): void {
  const index = settled.findIndex((r) => r.status === 'rejected');
  const reason = index >= 0 ? (settled[index] as PromiseRejectedResult).reason : undefined;
  if (index >= 0 && index < at.pinned) throw reason;
  if (index >= 0 && index < at.first && at.expect) {
    if (String((reason as Error)?.message).includes(PLAN_CHANGED)) throw new PlanChanged(at.expect);
    // The step lock not granted in time (lock_timeout): rolled back, nothing ran; retried.
    if (reason instanceof postgres.PostgresError && !isConnectionError(reason))
      throw new StatementFailed(-1, true, reason);
    throw reason;
  }
  const ended = settled.findIndex(
    (r) => r.status === 'rejected' && String((r.reason as Error)?.message).includes(STEP_ENDED),
  );
  if (ended >= 0) throw new TransactionEnded(ended - at.first - 1, index < ended ? reason : undefined);
  throwUnlessEnded(settled, at.first, at.end);
}

/**
 * The pipelined transaction's answers (`first`: where the caller's statements start, `end`: the
 * command it ends with). The first failed statement throws {@link StatementFailed}; COMMIT
 * answered with ROLLBACK, or failing itself, means the transaction was still open and is gone.
 */
function throwUnlessEnded(
  settled: ReadonlyArray<PromiseSettledResult<unknown>>,
  first: number,
  end: 'COMMIT' | 'ROLLBACK',
): void {
  const index = settled.findIndex((r) => r.status === 'rejected');
  const last = settled[settled.length - 1] as PromiseSettledResult<{ command?: string }>;
  if (index >= 0) {
    const reason = (settled[index] as PromiseRejectedResult).reason;
    if (!(reason instanceof postgres.PostgresError) || isConnectionError(reason)) throw reason;
    const rolledBack = last.status === 'rejected' || last.value.command === 'ROLLBACK';
    throw new StatementFailed(index - first, rolledBack, reason);
  }
  const answer = last.status === 'fulfilled' ? last.value.command : undefined;
  if (answer !== end) throw new Error(`${end} was answered with ${answer}`);
}

/** The rows of `catalog.blockers` and `catalog.indexProgress`, in the shared shape. */
export function toObservation(
  rows: ReadonlyArray<Record<string, unknown>>,
  index: Record<string, unknown> | undefined,
  withQuery: boolean,
): Observation {
  const first = rows[0];
  // A session an index build (or DROP INDEX CONCURRENTLY) waits for holds no lock on the table:
  // the statement waits for its transaction to end. Only a wait on a relation has sessions queued ahead.
  const transactionWait = first?.transaction_wait === true;
  const unlocked = index
    ? 'none on the table (the index build waits for its transaction to end)'
    : transactionWait
      ? 'none on the table (the statement waits for its transaction to end)'
      : 'no lock on it yet (queued ahead)';
  const seen: Observation = {
    blockers: rows
      .filter((r) => typeof r.pid === 'number')
      .map((r) => ({
        pid: r.pid as number,
        applicationName: String(r.application_name ?? ''),
        user: String(r.user ?? ''),
        state: String(r.state ?? 'unknown'),
        transactionAgeMs: typeof r.age_ms === 'number' ? r.age_ms : null,
        mode: String(r.modes ?? unlocked),
        ...(withQuery ? { query: String(r.query ?? '') } : {}),
      })),
  };
  if (typeof first?.relation === 'string') seen.relation = first.relation;
  if (typeof first?.wanted === 'string') seen.wanted = first.wanted;
  if (transactionWait) seen.transactionWait = true;
  if (index)
    seen.index = { phase: String(index.phase), blocksDone: Number(index.done), blocksTotal: Number(index.total) };
  return seen;
}
