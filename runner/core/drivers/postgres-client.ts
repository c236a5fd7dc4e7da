/**
 * The PostgreSQL driver's connections beyond its own session (made, like every client, by
 * core/connect.ts): a failure to connect as CONNECTION_FAILED, the second session that watches
 * the runner's and what it reads, and the pooler probe.
 */
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { MigrateError } from '../errors.ts';
import { hideSecrets, type PostgresServer } from '../config.ts';
import type { Sql } from '../connect.ts';
import type { Observation } from '../driver.ts';
import { catalog, toObservation } from './postgres-sql.ts';

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

  constructor(connect: () => Sql) {
    this.#connect = connect;
  }

  /** What session `pid` waits on; undefined when the watcher cannot tell (it could not connect, say). */
  async observe(pid: number, withQuery: boolean): Promise<Observation | undefined> {
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
    await this.#pending?.catch(() => {});
    this.#pending = undefined;
    const sql = this.#sql;
    this.#sql = undefined;
    await sql?.end({ timeout: 1 });
  }
}

/** A setting of our own: marks the server session ours ran on, for the probe to find. */
const MARK = 'sql_migrate.session';
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
 * Ours marks its server session with a random token (a session setting, outside any
 * transaction, so it stays with that server session whoever gets it next), then ours and a
 * second client (`probe`) take turns asking which server session they got and what mark it
 * carries. Session mode (or a direct connection) keeps ours on `pid` with its mark, and never
 * gives the probe either. Transaction mode gives itself away both ways: reusing the most
 * recently released server session first (PgBouncer's default), it hands ours to the probe;
 * rotating them (`server_round_robin`), it moves ours off `pid`. Any other order that keeps
 * ours put and the probe off it five times in a row is stopped later by the per-statement
 * guard (`moved`), and by `tryLock`'s.
 *
 * A probe given no server session at all within {@link PROBE_WAIT_MS} while ours sits idle
 * means session mode: in transaction mode ours, idle, would have been handed over. So once
 * ours is seen still on `pid` with its mark, the answer is no.
 */
export async function transactionMode(
  probe: postgres.Sql,
  ours: (query: string) => Promise<Row>,
  pid: number | undefined,
): Promise<boolean> {
  const token = randomUUID();
  const kept = (row: Row) => row?.pid === pid && row?.token === token;
  try {
    if (!kept(await ours(`SELECT set_config('${MARK}', '${token}', false) AS token, pg_backend_pid() AS pid`))) {
      return true;
    }
    const look = `SELECT current_setting('${MARK}', true) AS token, pg_backend_pid() AS pid`;
    for (let i = 0; i < ROUNDS; i++) {
      const answer = await within(probe.unsafe(look), PROBE_WAIT_MS);
      if (answer === undefined) return !kept(await ours(look));
      const [theirs] = answer;
      if (theirs?.pid === pid || theirs?.token === token) return true;
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

/** A step's limits refused with `moved`: the statement reached another server session than the lock's. */
export function movedSession(error: unknown): boolean {
  return error instanceof postgres.PostgresError && error.code === '22023' && /"moved"/.test(error.message);
}

export function transactionPooler(display: string): MigrateError {
  return new MigrateError(
    'TRANSACTION_POOLER',
    `${display} is a pooler in transaction mode (PgBouncer's pool_mode = transaction, say): the migration lock cannot hold there, so two runners could apply one migration. Use a direct URL to the server, or a session-mode pool, for migrations.`,
  );
}
