/**
 * Which server of a URL's host list a session uses, and the refusals a hot standby or a
 * read-only session earns (issue #27).
 *
 * The hosts are tried in order and `target_session_attrs` applied by libpq's rules
 * (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-TARGET-SESSION-ATTRS):
 * `read-write` wants a server that is not in hot standby and whose sessions are not read-only
 * by default; postgres.js 3.4.9 reads `default_transaction_read_only` alone, which is off on a
 * standby, and so hands a migration to the standby. The runner therefore tries the hosts itself,
 * one connection at a time, and gives postgres.js only the host it chose.
 *
 * What a server is comes from the session's first query (the driver's ping), so knowing it costs
 * no round trip of its own.
 *
 * @module
 */
import { MigrateError } from './errors.ts';

export const SESSION_ATTRS = ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby'] as const;
export type SessionAttrs = (typeof SESSION_ATTRS)[number];

/** One host of the URL; `host` undefined: the client's default (localhost). */
export interface Endpoint {
  host?: string;
  port: number;
}

/** What a server said about itself in the session's first query. */
export interface ServerRole {
  /** `host:port` of the server the session reached. */
  address: string;
  /** `pg_is_in_recovery()`: a hot standby, replaying a primary's WAL and refusing writes. */
  standby: boolean;
  /** `transaction_read_only` is on on a server that is not a standby (`default_transaction_read_only`). */
  readOnly: boolean;
  /** Where `default_transaction_read_only` was set (`pg_settings.source`: `database`, `user`, …). */
  readOnlyFrom?: string;
  /** A standby's replay lag in ms, `now() - pg_last_xact_replay_timestamp()`, when known. */
  replayLagMs?: number;
}

/** Columns the driver's first query adds, read by {@link roleOf}. */
export const ROLE_COLUMNS = `pg_is_in_recovery() AS in_recovery,
  current_setting('transaction_read_only') = 'on' AS read_only,
  CASE WHEN current_setting('default_transaction_read_only') = 'on'
    THEN (SELECT source FROM pg_settings WHERE name = 'default_transaction_read_only') END AS read_only_from,
  CASE WHEN pg_is_in_recovery()
    THEN (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::float8 END AS replay_lag_ms`;

export function addressOf(endpoint: Endpoint): string {
  const host = endpoint.host ?? 'localhost';
  return `${host.includes(':') ? `[${host}]` : host}:${endpoint.port}`;
}

/** The row of a query holding {@link ROLE_COLUMNS}, as a role. */
export function roleOf(row: Record<string, unknown> | undefined, endpoint: Endpoint): ServerRole {
  const standby = row?.in_recovery === true;
  const role: ServerRole = { address: addressOf(endpoint), standby, readOnly: !standby && row?.read_only === true };
  if (role.readOnly && typeof row?.read_only_from === 'string') role.readOnlyFrom = row.read_only_from;
  if (typeof row?.replay_lag_ms === 'number') role.replayLagMs = Math.max(0, Math.round(row.replay_lag_ms));
  return role;
}

/** libpq's test of one server; `prefer-standby` takes any server on its second pass. */
export function suits(attrs: SessionAttrs, role: ServerRole): boolean {
  switch (attrs) {
    case 'read-write':
      return !role.standby && !role.readOnly;
    case 'read-only':
      return role.standby || role.readOnly;
    case 'primary':
      return !role.standby;
    case 'standby':
    case 'prefer-standby':
      return role.standby;
    default:
      return true;
  }
}

/** One host tried: what it is, or why it could not be reached. */
interface Attempt {
  address: string;
  role?: ServerRole;
  error?: unknown;
}

export interface HostWalk {
  /** Connects to host `index` and reads its role; the caller keeps that connection. */
  open(index: number): Promise<ServerRole>;
  /** Ends the connection `open` made: the host did not suit, or failed. */
  drop(): Promise<void>;
  /** An error that ends the walk at once (libpq: a failed login is not retried on the next host). */
  final(error: unknown): boolean;
  /** A failure as one short phrase, password hidden. */
  why(error: unknown): string;
}

/**
 * Tries `endpoints` in order and returns the role of the first that suits `attrs`, its
 * connection left open by `walk.open`. Throws {@link noSuitableHost}'s error when none does;
 * with one host, its own connection error as it came.
 */
export async function chooseHost(
  endpoints: readonly Endpoint[],
  attrs: SessionAttrs,
  display: string,
  walk: HostWalk,
): Promise<ServerRole> {
  const attempts: Attempt[] = [];
  const passes: SessionAttrs[] = attrs === 'prefer-standby' ? ['standby', 'any'] : [attrs];
  for (const pass of passes) {
    for (let i = 0; i < endpoints.length; i++) {
      const address = addressOf(endpoints[i] as Endpoint);
      try {
        const role = await walk.open(i);
        if (suits(pass, role)) return role;
        attempts.push({ address, role });
      } catch (error) {
        if (walk.final(error) || (endpoints.length === 1 && attrs === 'any')) {
          await walk.drop();
          throw error;
        }
        attempts.push({ address, error });
      }
      await walk.drop();
    }
  }
  const reached = attempts.filter((a) => a.role !== undefined);
  if (reached.length === 0 && endpoints.length === 1) throw attempts[0]?.error;
  throw noSuitableHost(attempts, attrs, display, walk);
}

function describe(a: Attempt, walk: HostWalk): string {
  if (a.role === undefined) return `${a.address} cannot be reached (${walk.why(a.error)})`;
  if (a.role.standby) return `${a.address} is a hot standby`;
  return a.role.readOnly ? `${a.address} is read-only (${readOnlySetting(a.role)})` : `${a.address} is a primary`;
}

/** Which way out a refused write has: the same two whatever the reason. */
const WAYS_OUT =
  'Point the URL at the primary (its own address, or a writer endpoint that follows failovers), or list every host with target_session_attrs=read-write (or =primary), e.g. postgres://user@db1:5432,db2:5432/app?target_session_attrs=read-write, so that the runner finds the primary itself.';

/**
 * No host suited. A `read-write`/`primary` URL whose reachable hosts are all standbys is
 * STANDBY (a failover in progress: `--wait` waits it out); one with a read-only primary,
 * READ_ONLY_SESSION; anything else (no host reached, no standby for `standby`) CONNECTION_FAILED.
 */
function noSuitableHost(attempts: Attempt[], attrs: SessionAttrs, display: string, walk: HostWalk): MigrateError {
  const hosts = attempts.length === 1 ? 'its host' : `${new Set(attempts.map((a) => a.address)).size} hosts`;
  const list = attempts.map((a) => describe(a, walk)).join(', ');
  const reached = attempts.flatMap((a) => (a.role === undefined ? [] : [a.role]));
  const cause = [...attempts].reverse().find((a) => a.error !== undefined)?.error;
  const wantsPrimary = attrs === 'read-write' || attrs === 'primary';
  const only = reached.length === 1 && attempts.length === 1 ? reached[0] : undefined;
  const alone = wantsPrimary && only ? refuseWrites(only) : undefined;
  if (alone) return alone;
  if (wantsPrimary && reached.length > 0 && reached.every((r) => r.standby)) {
    return new MigrateError(
      'STANDBY',
      `no primary among ${hosts} of ${display} (target_session_attrs=${attrs}): ${list}. Nothing was run and no lock taken. A failover may be under way: --wait waits for a primary. Otherwise ${WAYS_OUT.replace(/^Point/, 'point')}`,
      { reason: `no primary among ${hosts} yet (${list})`, ...(cause === undefined ? {} : { cause }) },
    );
  }
  const readOnly = reached.find((r) => r.readOnly);
  if (wantsPrimary && readOnly !== undefined)
    return readOnlySession(readOnly, `No host of ${display} takes writes: ${list}. `);
  return new MigrateError(
    'CONNECTION_FAILED',
    `no host of ${display} suits target_session_attrs=${attrs}: ${list}.`,
    cause === undefined ? {} : { cause },
  );
}

/** A command that writes refuses a standby and a read-only session, before the lock and before any step. */
export function refuseWrites(role: ServerRole): MigrateError | undefined {
  if (role.standby) {
    return new MigrateError(
      'STANDBY',
      `${role.address} is a hot standby (in recovery: it replays a primary's changes and refuses writes). Nothing was run and no lock taken. ${WAYS_OUT}`,
      { reason: `${role.address} is a hot standby, no primary yet` },
    );
  }
  return role.readOnly ? readOnlySession(role, '') : undefined;
}

function readOnlySetting(role: ServerRole): string {
  switch (role.readOnlyFrom) {
    case 'database':
      return 'default_transaction_read_only = on for this database: ALTER DATABASE … SET';
    case 'user':
      return 'default_transaction_read_only = on for this role: ALTER ROLE … SET';
    case 'database user':
      return 'default_transaction_read_only = on for this role in this database: ALTER ROLE … IN DATABASE … SET';
    case 'configuration file':
      return "default_transaction_read_only = on in the server's configuration";
    case 'client':
      return "default_transaction_read_only = on from the connection's options";
    default:
      return `default_transaction_read_only = on${role.readOnlyFrom ? ` (set by: ${role.readOnlyFrom})` : ''}`;
  }
}

function readOnlySession(role: ServerRole, others: string): MigrateError {
  return new MigrateError(
    'READ_ONLY_SESSION',
    `${role.address}: the session is read-only (${readOnlySetting(role)}). ${others}Nothing was run and no lock taken. Turn it off for the role or database that migrates (ALTER DATABASE <db> RESET default_transaction_read_only, or ALTER ROLE <role> RESET …), or migrate as a role without it.`,
  );
}

/** `read-write` → itself; anything libpq does not know is a usage error, before anything connects. */
export function sessionAttrs(value: string | undefined): SessionAttrs {
  if (value === undefined) return 'any';
  if ((SESSION_ATTRS as readonly string[]).includes(value)) return value as SessionAttrs;
  throw new MigrateError(
    'BAD_URL',
    `target_session_attrs=${value} is not one libpq knows; use one of ${SESSION_ATTRS.join(', ')}.`,
  );
}
