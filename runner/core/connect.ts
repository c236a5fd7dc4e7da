/**
 * The one way this project connects to PostgreSQL: every postgres.js client, the runner's
 * session, its observer and pooler probe, and the clients of `schema`, `drift` and `check`, is
 * made by {@link connect}, from a server as config.ts parses it. Each gets one connection, the
 * unnamed-statement protocol (poolers), no type fetch at connect, notices kept from the
 * terminal, and an `application_name` that says which of them it is in pg_stat_activity.
 *
 * @module
 */
import postgres from 'postgres';
import { parseUrl, type PostgresServer } from './config.ts';
import { MigrateError } from './errors.ts';

export type Sql = postgres.Sql;
type Notice = postgres.Notice;

export interface ConnectOptions {
  /** `application_name`: `sql-migrate`, or `sql-migrate (<role>)` for a second client. */
  name: string;
  /** When set (epoch ms, `--wait`'s limit): the connect attempt gives up by then. */
  deadline?: number;
  /** Seconds a connect attempt may take; default the URL's `connect_timeout`, else 10. */
  connectTimeout?: number;
  /** Notices (warnings) the server sends; ignored by default (the library never prints). */
  onnotice?: (notice: Notice) => void;
  /** Called when the connection closes, for a caller whose session state (a lock) goes with it. */
  onclose?: () => void;
}

/** The server a URL names; for callers that hold only a URL. */
export function serverOf(url: string): PostgresServer {
  const c = parseUrl(url);
  if (c.dialect !== 'postgres') throw new MigrateError('BAD_URL', `${c.display} is not a PostgreSQL URL.`);
  return c.server;
}

/**
 * A client of one connection (`max: 1`) to `target` (a server, or a URL read by the same strict
 * parser). Nothing connects until the first query.
 */
export function connect(target: PostgresServer | string, options: ConnectOptions): Sql {
  const s = typeof target === 'string' ? serverOf(target) : target;
  const timeout = options.connectTimeout ?? s.connectTimeout ?? 10;
  const deadline = options.deadline;
  return postgres({
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
      deadline === undefined ? timeout : Math.max(0.1, Math.min(timeout, (deadline - Date.now()) / 1000)),
    // postgres.js would console.log every NOTICE without a handler.
    onnotice: options.onnotice ?? (() => {}),
    onclose: options.onclose ?? (() => {}),
    // Unnamed statements only: works through poolers, and nothing to re-prepare after a reconnect.
    prepare: false,
    // We read no arrays or custom types: save the round trip at connect.
    fetch_types: false,
    debug: false,
    connection: { application_name: options.name, ...s.parameters },
  });
}
