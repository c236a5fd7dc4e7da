/**
 * Database URL → dialect and connection settings. Values come in as arguments; reading the
 * environment and `.env` is the CLI's job: the library never reads process.env.
 */
import { MigrateError } from './errors.ts';

export const DEFAULT_URL = 'sqlite:bot.db';
export const DEFAULT_TABLE = 'schema_migrations';
export const DEFAULT_DIR = 'sql';

/**
 * A PostgreSQL server as postgres.js takes it: explicit fields, never a URL string, so that no
 * part of a password can be read as a host name. Hosts and ports pair up by index.
 */
export interface PostgresServer {
  host?: string[];
  port?: number[];
  database?: string;
  username?: string;
  password?: string;
  /** `sslmode` as written (`disable` is false); postgres.js reads the same names. */
  ssl?: string | false;
  connectTimeout?: number;
  targetSessionAttrs?: string;
  /** Startup parameters the server reads as settings (`application_name`, `options`). */
  parameters: Record<string, string>;
}

export type Connection =
  | {
      dialect: 'sqlite';
      filename: string;
      display: string;
      /** Query options left out (`check_same_thread`, SQLAlchemy's or its drivers'): for a note. */
      dropped: string[];
    }
  | {
      dialect: 'postgres';
      /** The same server as a URL we wrote ourselves (every part percent-encoded), for tools that want one. */
      url: string;
      server: PostgresServer;
      password: string | undefined;
      /** The URL with the password shown as `****`, built from the parsed parts. */
      display: string;
      /** The password as it could appear in a driver's error text (see {@link hideSecrets}). */
      secrets: string[];
      /** Query options left out (SQLAlchemy's and its drivers', or unknown to PostgreSQL): for a note. */
      dropped: string[];
    };

export const ACCEPTED_URLS = [
  'postgres://user:password@host:5432/db',
  'postgresql://…',
  'postgresql+asyncpg://… (also +psycopg, +psycopg2, +pg8000)',
  'sqlite:path/to/file.db',
  'sqlite:///relative/path.db',
  'sqlite:////absolute/path.db',
  'sqlite+aiosqlite:///bot.db',
  'sqlite::memory:',
];

const PYTHON_SQLITE = /^sqlite\+(aiosqlite|pysqlite):/;

/**
 * The URL with its password replaced by `****`; what every message shows. The password runs
 * from the first `:` after `scheme://` to the last `@`: a raw `@`, `/`, `?` or `#` in it (not
 * percent-encoded, so not a valid URL) must not leak its tail, so this over-hides rather than
 * parses. Without `://` (a mistyped scheme) the search starts at the beginning.
 */
export function redactUrl(url: string): string {
  const sep = url.indexOf('://');
  const start = sep >= 0 ? sep + 3 : 0;
  const at = url.lastIndexOf('@');
  const colon = url.indexOf(':', start);
  const masked = at < start || colon < 0 || colon > at ? url : `${url.slice(0, colon + 1)}****${url.slice(at)}`;
  // libpq also takes the password as a query parameter (`?password=…`).
  return masked.replace(/([?&](?:ssl)?password=)[^&#]*/gi, '$1****');
}

export function parseUrl(raw: string): Connection {
  const url = raw.trim();
  if (url.startsWith('sqlite')) {
    const rest = url.replace(PYTHON_SQLITE, 'sqlite:');
    if (rest.startsWith('sqlite:')) {
      const [path = '', query = ''] = rest.slice('sqlite:'.length).split(/\?(.*)/s, 2);
      const dropped = query
        .split('&')
        .filter((option) => option !== '')
        .map((option) => decodePath(option.split('=')[0] as string));
      let filename: string | undefined;
      if (path === ':memory:') filename = ':memory:';
      else if (path.startsWith('////'))
        filename = path.slice(3); // SQLAlchemy: four slashes, absolute
      else if (path.startsWith('///'))
        filename = path.slice(3); // three slashes, relative
      else if (!path.startsWith('//') && path !== '') filename = path;
      if (filename) return { dialect: 'sqlite', filename: decodePath(filename), display: url, dropped };
    }
  }
  const scheme = /^(postgres|postgresql|postgresql\+(?:asyncpg|psycopg2?|pg8000)):\/\//.exec(url)?.[1];
  if (scheme) return parsePostgres(url, scheme);
  throw badUrl(url);
}

/** libpq's query options that postgres.js turns into settings of its own. */
const KEPT_OPTIONS = new Set(['sslmode', 'application_name', 'connect_timeout', 'options', 'target_session_attrs']);
/** What a user name or password may hold unencoded (RFC 3986 userinfo). */
const USERINFO = /^[A-Za-z0-9\-._~!$&'()*+,;=:%]*$/;
const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%]+)(?::(\d{1,5}))?$/;

/**
 * One strict reading of a PostgreSQL URL. A raw `@`, `#`, `/`, `?` or space in the user name
 * or password (not percent-encoded) makes the URL ambiguous: where the password ends is a
 * guess, and a wrong guess once sent the password's tail to DNS as a host name. Such a URL is
 * refused before anything connects, and its message never shows the userinfo.
 */
function parsePostgres(url: string, scheme: string): Connection {
  const rest = url.slice(scheme.length + 3);
  if (rest.includes('#')) throw ambiguous(url, '"#"');
  const authorityEnd = rest.search(/[/?]/);
  const authority = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
  const tail = authorityEnd < 0 ? '' : rest.slice(authorityEnd);
  const queryAt = tail.indexOf('?');
  const path = queryAt < 0 ? tail : tail.slice(0, queryAt);
  if (authority.split('@').length > 2 || path.includes('@')) throw ambiguous(url, '"@" or "/"');
  const at = authority.lastIndexOf('@');
  const userinfo = at < 0 ? undefined : authority.slice(0, at);
  if (userinfo !== undefined && !USERINFO.test(userinfo)) throw ambiguous(url, 'character');
  const colon = userinfo?.indexOf(':') ?? -1;
  const server: PostgresServer = { parameters: {} };
  const part = (text: string) => strictDecode(text, url);
  if (userinfo !== undefined) {
    server.username = part(colon < 0 ? userinfo : userinfo.slice(0, colon)) || undefined;
    if (colon >= 0) server.password = part(userinfo.slice(colon + 1));
  }
  const hosts = authority.slice(at + 1);
  if (hosts !== '') setHosts(server, hosts.split(','), url);
  if (!/^\/?[^/]*$/.test(path)) throw badUrl(url);
  server.database = part(path.slice(1)) || undefined;
  const kept: string[] = [];
  const dropped: string[] = [];
  const queryPassword = readQuery(queryAt < 0 ? '' : tail.slice(queryAt + 1), url, server, kept, dropped);
  if (queryPassword !== undefined) server.password ??= queryPassword;
  const shown = queryHosts(server, hosts) ?? hosts;
  const display = displayOf(
    scheme,
    server,
    shown,
    userinfo !== undefined && colon >= 0,
    kept,
    queryPassword !== undefined,
  );
  return {
    dialect: 'postgres',
    url: urlOf(server),
    server,
    password: server.password,
    display,
    secrets: server.password ? [server.password, encodeURIComponent(server.password)] : [],
    dropped,
  };
}

function setHosts(server: PostgresServer, list: string[], url: string): void {
  server.host = [];
  server.port = [];
  for (const h of list) {
    const m = HOST.exec(h);
    const port = m?.[2] === undefined ? 5432 : Number(m[2]);
    if (!m || port < 1 || port > 65535) throw badUrl(url);
    server.host.push(strictDecode((m[1] as string).replace(/^\[(.*)\]$/, '$1'), url));
    server.port.push(port);
  }
}

/** Reads the query into `server`; returns a `?password=` (libpq's spelling), kept apart for the display. */
function readQuery(query: string, url: string, server: PostgresServer, kept: string[], dropped: string[]) {
  let password: string | undefined;
  for (const pair of query === '' ? [] : query.split('&')) {
    const eq = pair.indexOf('=');
    const name = eq < 0 ? pair : pair.slice(0, eq);
    // A name that is not one (`?34@db/bot`) is what a raw `?` in a password leaves: refuse it unread.
    if (eq < 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw ambiguous(url, '"?"');
    const value = strictDecode(pair.slice(eq + 1).replace(/\+/g, ' '), url);
    if (name === 'password') password = value;
    else if (name === 'user') server.username = value;
    else if (name === 'dbname') server.database = value;
    else if (name === 'host' || name === 'port') {
      if (name === 'host') setHosts(server, value.split(','), url);
      else if (server.host) server.port = server.host.map(() => Number(value));
      else setHosts(server, [`localhost:${value}`], url);
    } else if (KEPT_OPTIONS.has(name)) {
      kept.push(`${name}=${encodeURIComponent(value)}`);
      if (name === 'sslmode') server.ssl = value === 'disable' ? false : value;
      else if (name === 'connect_timeout') server.connectTimeout = Number(value) || undefined;
      else if (name === 'target_session_attrs') server.targetSessionAttrs = value;
      else server.parameters[name] = value;
    } else dropped.push(name);
  }
  return password;
}

/** The hosts as the query set them (`?host=`), when it did: else the URL's own text is shown. */
function queryHosts(s: PostgresServer, written: string): string | undefined {
  const fromUrl = written === '' ? [] : written.split(',');
  const same =
    fromUrl.length === (s.host?.length ?? 0) &&
    fromUrl.every((h, i) => HOST.exec(h)?.[1]?.replace(/^\[(.*)\]$/, '$1') === s.host?.[i]);
  return same ? undefined : hostsOf(s);
}

function displayOf(
  scheme: string,
  s: PostgresServer,
  hosts: string,
  hidden: boolean,
  kept: string[],
  queryPassword: boolean,
) {
  const user = s.username === undefined ? '' : encodeURIComponent(s.username);
  const auth = user !== '' || hidden ? `${user}${hidden ? ':****' : ''}@` : '';
  const query = [...kept, ...(queryPassword ? ['password=****'] : [])];
  return `${scheme}://${auth}${hosts}${s.database === undefined ? '' : `/${encodeURIComponent(s.database)}`}${query.length > 0 ? `?${query.join('&')}` : ''}`;
}

function hostsOf(s: PostgresServer): string {
  return (s.host ?? [])
    .map((h, i) => `${h.includes(':') ? `[${h}]` : encodeURIComponent(h)}:${s.port?.[i] ?? 5432}`)
    .join(',');
}

/** The server as a URL, every part encoded: reads back to the same parts, by us or by postgres.js. */
function urlOf(s: PostgresServer): string {
  const user = s.username === undefined ? '' : encodeURIComponent(s.username);
  const pass = s.password === undefined ? '' : `:${encodeURIComponent(s.password)}`;
  const auth = user !== '' || pass !== '' ? `${user}${pass}@` : '';
  const query = [
    ...(s.ssl === undefined ? [] : [`sslmode=${s.ssl === false ? 'disable' : encodeURIComponent(s.ssl)}`]),
    ...(s.connectTimeout === undefined ? [] : [`connect_timeout=${s.connectTimeout}`]),
    ...(s.targetSessionAttrs === undefined ? [] : [`target_session_attrs=${encodeURIComponent(s.targetSessionAttrs)}`]),
    ...Object.entries(s.parameters).map(([k, v]) => `${k}=${encodeURIComponent(v)}`),
  ];
  const db = s.database === undefined ? '' : encodeURIComponent(s.database);
  return `postgres://${auth}${hostsOf(s)}/${db}${query.length > 0 ? `?${query.join('&')}` : ''}`;
}

function strictDecode(text: string, url: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw ambiguous(url, '"%"');
  }
}

function ambiguous(url: string, what: string): MigrateError {
  return new MigrateError(
    'BAD_URL',
    `the database URL ${redactUrl(url)} cannot be read unambiguously: a raw ${what} in the user name, password or options. Percent-encode it (@ %40, # %23, / %2F, ? %3F, % %25, space %20).`,
  );
}

/**
 * `text` with each of `secrets` replaced by `****`: for a server's or driver's error text only,
 * where the password could conceivably appear. A password shorter than 6 characters is not
 * searched for: it would match unrelated text (a port, a revision), and the runner never sends
 * the password anywhere an error could echo it.
 */
export function hideSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 6) out = out.split(s).join('****');
  return out;
}
/** `my%20bot.db` → `my bot.db`; a `%` that starts no escape (`100%_sure.db`) is kept as written. */
function decodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

function badUrl(url: string): MigrateError {
  return new MigrateError(
    'BAD_URL',
    `unsupported database URL "${redactUrl(url)}". Accepted forms:\n  ${ACCEPTED_URLS.join('\n  ')}`,
  );
}

/** Identifiers we quote ourselves: plain names only, so quoting can never be escaped. */
export function parseTableName(name: string, allowSchema: boolean): { schema?: string; table: string } {
  const ident = '[A-Za-z_][A-Za-z0-9_]{0,62}';
  const m = new RegExp(`^(?:(${ident})\\.)?(${ident})$`).exec(name);
  if (!m || (m[1] && !allowSchema)) {
    throw new MigrateError(
      'BAD_TABLE_NAME',
      `record table "${name}" is not a plain name (letters, digits, _${allowSchema ? '; optionally schema.table' : ''}).`,
    );
  }
  return m[1] ? { schema: m[1], table: m[2] as string } : { table: m[2] as string };
}
