/**
 * Database URL → dialect and connection settings. Values come in as arguments; reading the
 * environment and `.env` is the CLI's job (STYLE.md: the library never reads process.env).
 */
import { MigrateError } from './errors.ts';

export const DEFAULT_URL = 'sqlite:bot.db';
export const DEFAULT_TABLE = 'schema_migrations';
export const DEFAULT_DIR = 'sql';

export type Connection =
  | { dialect: 'sqlite'; filename: string; display: string }
  | {
      dialect: 'postgres';
      url: string;
      password: string | undefined;
      display: string;
      /** Every spelling of the password a message could carry (see {@link secretsIn}). */
      secrets: string[];
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

const PYTHON_PG = /^postgresql\+(asyncpg|psycopg2?|pg8000):\/\//;
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
      const path = rest.slice('sqlite:'.length).replace(/\?.*$/, '');
      let filename: string | undefined;
      if (path === ':memory:') filename = ':memory:';
      else if (path.startsWith('////'))
        filename = path.slice(3); // SQLAlchemy: four slashes, absolute
      else if (path.startsWith('///'))
        filename = path.slice(3); // three slashes, relative
      else if (!path.startsWith('//') && path !== '') filename = path;
      if (filename) return { dialect: 'sqlite', filename: decodePath(filename), display: url };
    }
  }
  if (/^postgres(ql)?:\/\//.test(url) || PYTHON_PG.test(url)) {
    const normal = url.replace(PYTHON_PG, 'postgres://');
    let parsed: URL;
    try {
      parsed = new URL(normal);
    } catch {
      throw badUrl(url);
    }
    const password = parsed.password
      ? decodeURIComponent(parsed.password)
      : (parsed.searchParams.get('password') ?? undefined);
    return { dialect: 'postgres', url: normal, password, display: redactUrl(url), secrets: secretsIn(url) };
  }
  throw badUrl(url);
}

/**
 * The password in every form a message could show it: as written in the URL (percent-encoded
 * or not), decoded, re-encoded, and libpq's `?password=`; longest first, so that no shorter
 * form is hidden inside a longer one and leaves its tail showing. Taken from the raw text, not
 * a parsed URL: a password too broken to parse must still be hidden.
 */
export function secretsIn(url: string): string[] {
  const found: string[] = [];
  const raw = /^[a-z][a-z0-9+.-]*:\/\/[^:/?#@]*:([^@/?#]*)@/i.exec(url)?.[1];
  if (raw) found.push(raw);
  for (const m of url.matchAll(/[?&](?:ssl)?password=([^&#]*)/gi)) if (m[1]) found.push(m[1]);
  const all = found.flatMap((s) => [s, decodePath(s), encodeURIComponent(decodePath(s))]);
  return [...new Set(all)].filter((s) => s !== '').sort((a, b) => b.length - a.length);
}

/** `text` with each of `secrets` replaced by `****`. */
export function hideSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s) out = out.split(s).join('****');
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
