/**
 * The PostgreSQL driver's connections beyond its own session (made, like every client, by
 * core/connect.ts): a failure to connect as CONNECTION_FAILED, the second session that watches
 * the runner's and what it reads, and the pooler probe.
 */
import type { LockHolder } from '../lock-wait.ts';
import postgres from 'postgres';
import { MigrateError } from '../errors.ts';
import { hideSecrets, type PostgresServer } from '../config.ts';
import { type ConnectOptions, connect, type Sql, serverOf } from '../connect.ts';
import type { Observation } from '../driver.ts';
import { catalog, isConnectionError, toObservation } from './postgres-sql.ts';
import { chooseHost, type Endpoint, type ServerRole, roleOf, sessionAttrs } from '../hosts.ts';

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
  /** The command writes: a hot standby or a read-only session is refused at ping (STANDBY, READ_ONLY_SESSION). */
  writes?: boolean;
}

/** The URL's hosts in order; none named: the client's default. */
export function endpointsOf(server: PostgresServer): Endpoint[] {
  const hosts = server.host ?? [];
  if (hosts.length === 0) return [{ port: server.port?.[0] ?? 5432 }];
  return hosts.map((host, i) => ({ host, port: server.port?.[i] ?? 5432 }));
}

/** `server` with host `index` alone, and no host choice left for postgres.js to make. */
export function narrow(server: PostgresServer, index: number): PostgresServer {
  const { targetSessionAttrs: _attrs, ...rest } = server;
  const e = endpointsOf(server)[index] as Endpoint;
  return { ...rest, ...(e.host === undefined ? {} : { host: [e.host] }), port: [e.port] };
}

export interface Chosen {
  sql: Sql;
  /** The host chosen, alone: what every later connection of the run (observer, probe) uses. */
  server: PostgresServer;
  role: ServerRole;
  /** The first query's answer (it holds the role's columns). */
  rows: postgres.RowList<postgres.Row[]>;
}

/**
 * The runner's session on a PostgreSQL URL: each host in order, through connect.ts, `query`
 * (which must hold hosts.ts ROLE_COLUMNS) as the first thing it runs, until one suits the URL's
 * target_session_attrs by libpq's rules (core/hosts.ts). A single-host URL costs exactly that one
 * query; a connection failure comes back as CONNECTION_FAILED, the password hidden.
 */
export async function connectChosen(
  server: PostgresServer,
  o: { display: string; secrets: string[]; query: string; options: ConnectOptions },
): Promise<Chosen> {
  const endpoints = endpointsOf(server);
  let sql: Sql | undefined;
  let chosen = server;
  let rows: postgres.RowList<postgres.Row[]> | undefined;
  const role = await chooseHost(endpoints, sessionAttrs(server.targetSessionAttrs), o.display, {
    open: async (index) => {
      chosen = narrow(server, index);
      // A host dropped below closes later, maybe once the run holds its lock: only the client
      // kept may tell the caller its session closed.
      const onclose = o.options.onclose;
      const client: Sql = connect(chosen, {
        ...o.options,
        onclose: () => {
          if (sql === client) onclose?.();
        },
      });
      sql = client;
      try {
        rows = await client.unsafe(o.query);
      } catch (error) {
        throw isConnectionError(error) ? unreachable(error, o.display, o.secrets, false) : error;
      }
      return roleOf(rows[0], endpoints[index] as Endpoint);
    },
    drop: async () => {
      const client = sql;
      sql = undefined;
      await client?.end({ timeout: 0 });
    },
    final: (error) => {
      const cause = error instanceof MigrateError ? error.cause : error;
      return cause instanceof postgres.PostgresError && cause.code.startsWith('28');
    },
    why: (error) => {
      const cause = error instanceof MigrateError ? error.cause : error;
      const e = cause as { message?: string; code?: string } | null;
      const text = hideSecrets(e?.message ?? String(cause), o.secrets);
      return e?.code && !text.includes(e.code) ? `${text}, ${e.code}` : text;
    },
  });
  return { sql: sql as unknown as Sql, server: chosen, role, rows: rows as postgres.RowList<postgres.Row[]> };
}

/** A session of its own on `url`'s chosen host, for a reader that holds only a URL (schema --url, drift). */
export function connectUrl(url: string, display: string, name: string): Promise<Chosen> {
  const server = serverOf(url);
  const secrets = server.password ? [server.password, encodeURIComponent(server.password)] : [];
  return connectChosen(server, { display, secrets, query: catalog.role, options: { name } });
}

/** A connection failure as CONNECTION_FAILED: `reached`, whether a query had succeeded before; the password hidden. */
export function unreachable(error: unknown, display: string, secrets: string[], reached: boolean): MigrateError {
  if (error instanceof MigrateError) return error;
  const e = error as { message?: string; code?: string } | null;
  const why = hideSecrets(e?.message ?? String(error), secrets);
  const code = e?.code && !why.includes(e.code) ? ` (${e.code})` : '';
  const what = reached ? 'lost the connection to' : 'cannot connect to';
  return new MigrateError('CONNECTION_FAILED', `${what} ${display}: ${why}${code}`, { cause: error });
}

/**
 * A second connection, opened only once a step has waited or run a while, and kept for the run:
 * what the runner's session waits on, who is ahead of it, and an index build's progress.
 */
export class Watcher {
  readonly #connect: () => Sql;
  #sql: Sql | undefined;
  /** The observation in flight, which end() waits for: a client ended while still connecting stays open. */
  #pending: Promise<unknown> | undefined;
  /** Ended: a late look (a timer that fired as the run ended) must not open a client nobody closes. */
  #ended = false;

  constructor(connect: () => Sql) {
    this.#connect = connect;
  }

  /** What session `pid` waits on; undefined when the watcher cannot tell (it could not connect, say). */
  async observe(pid: number, withQuery: boolean): Promise<Observation | undefined> {
    if (this.#ended) return undefined;
    this.#sql ??= this.#connect();
    const looking = Promise.all([
      this.#sql.unsafe(catalog.blockers(pid, withQuery)),
      this.#sql.unsafe(catalog.indexProgress(pid)),
    ]);
    this.#pending = looking;
    try {
      const [rows, [index]] = await looking;
      return toObservation(rows, index, withQuery);
    } catch {
      return undefined;
    }
  }

  async end(): Promise<void> {
    this.#ended = true;
    await this.#pending?.catch(() => {});
    this.#pending = undefined;
    const sql = this.#sql;
    this.#sql = undefined;
    await sql?.end({ timeout: 1 });
  }
}

/** Alternations of ours and the probe: each one the pooler could give away our server session. */
const ROUNDS = 5;
/**
 * How long a probe query may wait for a server session. A session-mode pool with none free
 * (ours may hold its only one) queues the probe until the pooler's own wait ends (PgBouncer's
 * query_wait_timeout, 120 s by default) and then fails it.
 */
const PROBE_WAIT_MS = 2000;

type Row = Record<string, unknown> | undefined;

/**
 * Behind a pooler, a session lock holds only if each client keeps its server session (session
 * mode). Transaction mode hands a client's next statement to any idle server session: two
 * runners could then share one and both "hold" the lock, a lone runner's no-transaction
 * statement could run on a session without it, and the lock would stay behind.
 *
 * Ours and a second client (`probe`) take turns asking which server session they got (leaving
 * nothing behind on it: no setting of ours may stay on a pooled server session). Session mode
 * (or a direct connection) keeps ours on `pid`, and never gives it to the probe. Transaction
 * mode gives itself away both ways: reusing the most recently released server session first
 * (PgBouncer's default), it hands ours to the probe; rotating them (`server_round_robin`), it
 * moves ours off `pid`. Any other order can fool it: the answer is advice (a note, and whether a
 * no-transaction file may run), never what keeps two runners apart (issue #25).
 *
 * A probe given no server session at all within {@link PROBE_WAIT_MS} while ours sits idle
 * means session mode: in transaction mode ours, idle, would have been handed over. So once
 * ours is seen still on `pid`, the answer is no.
 */
export async function transactionMode(
  probe: postgres.Sql,
  ours: (query: string) => Promise<Row>,
  pid: number | undefined,
): Promise<boolean> {
  const kept = (row: Row) => row?.pid === pid;
  try {
    const look = 'SELECT pg_backend_pid() AS pid';
    if (!kept(await ours(look))) return true;
    for (let i = 0; i < ROUNDS; i++) {
      const answer = await within(probe.unsafe(look), PROBE_WAIT_MS);
      if (answer === undefined) return !kept(await ours(look));
      const [theirs] = answer;
      if (theirs?.pid === pid) return true;
      if (!kept(await ours(look))) return true;
    }
    return false;
  } finally {
    // A probe still queued for a server session is cut off, not waited for.
    await probe.end({ timeout: 0 });
  }
}

/** `query`'s result, or undefined once `ms` have passed without one (its later failure handled by the race). */
async function within<T>(query: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, ms, undefined);
  });
  try {
    return await Promise.race([query, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A statement's limits refused with `moved`: it reached another server session than ping's. */
export function movedSession(error: unknown): boolean {
  return error instanceof postgres.PostgresError && error.code === '22023' && /"moved"/.test(error.message);
}

export function movedStatement(display: string): Error {
  return new Error(
    `${display} handed this statement to another server session than the file's: a pooler in transaction mode (PgBouncer's pool_mode = transaction, say), where a no-transaction file cannot run; the statement was not run. Run migrations through a direct URL to the server (MIGRATE_DATABASE_URL).`,
  );
}

/**
 * SESSION_SETTING when the session has standard_conforming_strings off: the runner's lexer reads
 * SQL text as the server does with it on (core/reading-settings.ts), so a backslash in '…' would
 * be read two ways.
 */
export function readsOtherwise(row: { scs?: unknown } | undefined, display: string): MigrateError | undefined {
  if (row?.scs !== 'off') return undefined;
  return new MigrateError(
    'SESSION_SETTING',
    `the session on ${display} has standard_conforming_strings off, so the server would read a backslash in '…' otherwise than the runner does; nothing was run. Turn it on for this role or database (ALTER ROLE … SET standard_conforming_strings = on), or drop it from the URL's options.`,
  );
}

/** The session holding the migration lock, from a row of catalog.lockHolder; undefined for none. */
export function toLockHolder(row: Record<string, unknown> | undefined): LockHolder | undefined {
  if (row === undefined) return undefined;
  const since = row.backend_start instanceof Date ? row.backend_start.toISOString() : undefined;
  return {
    pid: Number(row.pid),
    applicationName: String(row.application_name ?? ''),
    user: String(row.user ?? ''),
    ...(since === undefined ? {} : { since, sinceSession: true }),
  };
}
