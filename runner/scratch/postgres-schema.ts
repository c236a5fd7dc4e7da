/**
 * The scratch schema `schema` builds a PostgreSQL folder in when that builds what a scratch
 * database would (runner/scratch.ts picks the place), and the rule that says when it does.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { Connection } from '../core/config.ts';
import { Lexer, tokenize } from '../core/lexer.ts';
import { splitStatements } from '../core/split.ts';

type PostgresConnection = Extract<Connection, { dialect: 'postgres' }>;

/**
 * What lets a migration act outside the schema it runs in: creating a schema or an extension
 * (which lands in the first schema of the path, or is already there), moving the search path,
 * and every object or command of the database as a whole, which `DROP SCHEMA … CASCADE` would
 * leave behind or which reaches every schema: publications, subscriptions, event triggers,
 * foreign servers and wrappers, user mappings, casts, languages, transforms, access methods,
 * default privileges, large objects, `DROP`/`REASSIGN OWNED`, and whole-database maintenance;
 * and the functions that act on other sessions, the server or other databases wherever they are
 * called (a DEFAULT, an INSERT, a trigger's body): every `pg_*` name (pg_notify,
 * pg_terminate_backend, pg_cancel_backend, pg_advisory_lock, an unqualified catalog table …),
 * dblink, set_config, NOTIFY and LISTEN. A list like this cannot be complete, which is why
 * {@link ALLOWED_HEAD} decides first.
 */
const REACHES_OUT = new RegExp(
  `(?<![\\w$])(${[
    'schema',
    'extension',
    'database',
    'search_path',
    'current_schema',
    'tablespace',
    'publication',
    'subscription',
    'event trigger',
    '(foreign|create|alter|drop) server',
    'data wrapper',
    'user mapping',
    '(create|drop) cast',
    '(create|alter|drop)( or replace)?( trusted)?( procedural)? language',
    '(create|drop) transform',
    'access method',
    'default privileges',
    'large object',
    'lo_\\w+',
    '(drop|reassign) owned',
    'vacuum',
    'cluster',
    'reindex',
    'system',
    'pg_\\w+',
    'dblink\\w*',
    'set_config',
    'notify',
    'listen',
    'copy',
  ]
    .map((words) => words.replaceAll(' ', '\\s+'))
    .join('|')})(?![\\w$])`,
  'i',
);

/** How old a scratch schema must be before a later run takes it for one an interrupted run left. */
const LEFTOVER_AGE_SECONDS = 600;

/** A scratch schema made for one build: its URL (search_path = it), its name, and how to remove it. */
export interface ScratchSchema {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/**
 * The statements a scratch schema builds as a scratch database does, by their first words: the
 * DDL of objects that live in a schema, COMMENT, rows written to tables, transaction control
 * and a session setting (not ROLE or SESSION AUTHORIZATION). Anything else (SELECT, DO, CALL,
 * GRANT, COPY, ANALYZE, a CTE …) sends the folder to a scratch database.
 */
const ALLOWED_HEAD = new RegExp(
  `^(${[
    'CREATE (OR REPLACE )?(UNIQUE |UNLOGGED |MATERIALIZED |CONSTRAINT |RECURSIVE )?(TABLE|INDEX|TYPE|DOMAIN|SEQUENCE|VIEW|FUNCTION|PROCEDURE|TRIGGER)',
    '(ALTER|DROP) (MATERIALIZED )?(TABLE|INDEX|TYPE|DOMAIN|SEQUENCE|VIEW|FUNCTION|PROCEDURE|TRIGGER)',
    'COMMENT ON',
    'INSERT INTO',
    'UPDATE',
    'DELETE FROM',
    'BEGIN',
    'COMMIT',
    'END',
    'ROLLBACK',
    'START TRANSACTION',
    'SAVEPOINT',
    'RELEASE',
    'SET (LOCAL )?(?!ROLE\\b|SESSION\\b)\\w+',
  ].join('|')})( |$)`,
);

/** A statement's first five bare words, upper-cased and joined by one space. */
function head(statement: string): string {
  const words: string[] = [];
  for (const token of tokenize(statement, 'postgres')) {
    if (token.kind === 'comment') continue;
    if (token.kind !== 'word' || words.length === 5) break;
    words.push(statement.slice(token.start, token.end).toUpperCase());
  }
  return words.join(' ');
}

/**
 * A schema `sqlmigrate_scratch_<created, epoch seconds hex>_<random>` in the database the URL
 * names, with a URL whose search_path is that schema alone, so that unqualified names (the
 * record table's too) resolve there as they resolve to `public` in a fresh database. Far
 * cheaper than a scratch database (no copy of a template, no checkpoint), but only the same
 * when the migrations cannot reach past it, so `schema` is undefined, and a scratch database
 * used instead, when:
 * - a statement is not one of {@link ALLOWED_HEAD}, or a file's SQL (strings and function
 *   bodies included, comments not) names a schema that database holds (`public.users`,
 *   `pg_catalog.pg_class` too) or uses a word of {@link REACHES_OUT};
 * - the database or the role has settings of its own (`ALTER DATABASE … SET`, `ALTER ROLE …
 *   SET`): a scratch database would not have them, and `timezone` alone changes what a
 *   `timestamptz` default stores;
 * - the database has enabled event triggers (they would run on the migrations' DDL);
 * - the role may not create a schema there.
 *
 * `swept`: the scratch schemas of this role older than ten minutes that were dropped first,
 * left by a run that was killed before it could drop its own.
 */
export async function openScratchSchema(
  connection: PostgresConnection,
  upTexts: readonly string[],
): Promise<{ schema?: ScratchSchema; swept: string[] }> {
  const { default: postgres } = await import('postgres');
  const sql = postgres(connection.url, { max: 1, onnotice: () => {}, connect_timeout: 10, fetch_types: false });
  const close = () => sql.end({ timeout: 5 }).catch(() => {});
  let swept: string[] = [];
  let created: string | undefined;
  try {
    const [row] = await sql.unsafe(`SELECT has_database_privilege(current_database(), 'CREATE') AS can_create,
      EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtenabled <> 'D') AS event_triggers,
      EXISTS (SELECT 1 FROM pg_catalog.pg_db_role_setting s
        WHERE s.setdatabase = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
           OR (s.setdatabase = 0 AND s.setrole IN (SELECT oid FROM pg_catalog.pg_roles WHERE rolname IN (current_user, session_user)))) AS settings,
      floor(extract(epoch FROM now()))::bigint::text AS now,
      (SELECT json_agg(nspname) FROM pg_catalog.pg_namespace WHERE nspname !~ '^pg_(toast|temp_)')::text AS schemas,
      (SELECT json_agg(nspname) FROM pg_catalog.pg_namespace
        WHERE nspname ~ '^sqlmigrate_scratch_[0-9a-f]+_[0-9a-f]+$' AND pg_catalog.pg_get_userbyid(nspowner) = current_user)::text AS ours`);
    const now = Number(row?.now);
    swept = await sweep(sql, JSON.parse(String(row?.ours ?? '[]')) as string[], now);
    const schemas = JSON.parse(String(row?.schemas ?? '[]')) as string[];
    const refused =
      row?.can_create !== true ||
      row.event_triggers !== false ||
      row.settings !== false ||
      reachesOut(upTexts, schemas);
    if (refused) {
      await close();
      return { swept };
    }
    const name = `sqlmigrate_scratch_${now.toString(16)}_${randomBytes(4).toString('hex')}`;
    await sql.unsafe(`CREATE SCHEMA ${name}`);
    created = name;
    const url = new URL(connection.url);
    const options = connection.server.parameters.options;
    url.searchParams.set('options', `${options ? `${options} ` : ''}-c search_path=${name}`);
    return { schema: { url: url.toString(), name, drop: () => dropSchema(sql, connection.url, name) }, swept };
  } catch {
    // Whatever went wrong, the scratch database says it properly (or works where this did not);
    // a schema already made is not left behind.
    if (created !== undefined) await dropSchema(sql, connection.url, created).catch(() => {});
    await close();
    return { swept };
  }
}

/** Drop `names` made more than {@link LEFTOVER_AGE_SECONDS} before `now` (seconds, the server's clock). */
async function sweep(sql: import('postgres').Sql, names: readonly string[], now: number): Promise<string[]> {
  const old = names.filter((n) => now - Number.parseInt(n.split('_')[2] ?? '', 16) > LEFTOVER_AGE_SECONDS).sort();
  for (const name of old) await sql.unsafe(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
  return old;
}

/**
 * Drop the scratch schema and close `sql`. A drop that fails on that connection (lost, or
 * stuck in a failed state) is tried once more on a new one before the error is thrown.
 */
async function dropSchema(sql: import('postgres').Sql, url: string, name: string): Promise<void> {
  const statement = `DROP SCHEMA IF EXISTS ${name} CASCADE`;
  try {
    await sql.unsafe(statement);
  } catch {
    const { default: postgres } = await import('postgres');
    const again = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10, fetch_types: false });
    try {
      await again.unsafe(statement);
    } finally {
      await again.end({ timeout: 5 }).catch(() => {});
    }
  } finally {
    await sql.end({ timeout: 5 }).catch(() => {});
  }
}

/**
 * Whether up files could act outside a scratch schema in a database holding `schemas`: a
 * statement is not one of {@link ALLOWED_HEAD}, or their SQL (strings and function bodies
 * included, comments not) names one of those schemas (`public.users`, `"public".users`) or
 * says something of {@link REACHES_OUT}.
 */
export function reachesOut(upTexts: readonly string[], schemas: readonly string[]): boolean {
  const literal = (name: string) => name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const named = new RegExp(`(?<![\\w$])"?(${schemas.map(literal).join('|')})"?\\s*\\.`, 'i');
  return upTexts.some((text) => {
    if (splitStatements(text, 'postgres').some((s) => !ALLOWED_HEAD.test(head(s.sql)))) return true;
    const parts: string[] = [];
    const lexer = new Lexer(text, 'postgres');
    while (lexer.next()) if (lexer.kind !== 'comment') parts.push(lexer.value);
    const code = parts.join(' ');
    return REACHES_OUT.test(code) || (schemas.length > 0 && named.test(code));
  });
}
