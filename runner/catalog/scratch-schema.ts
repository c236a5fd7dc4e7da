/**
 * The scratch schema `schema` builds a PostgreSQL folder in when that builds what a scratch
 * database would (runner/scratch.ts picks the place), and the rule that says when it does.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { Connection } from '../config.ts';
import { Lexer } from '../lexer.ts';

type PostgresConnection = Extract<Connection, { dialect: 'postgres' }>;

/**
 * What lets a migration act outside the schema it runs in: creating a schema or an extension
 * (which lands in the first schema of the path, or is already there), moving the search path,
 * and every object or command of the database as a whole, which `DROP SCHEMA … CASCADE` would
 * leave behind or which reaches every schema: publications, subscriptions, event triggers,
 * foreign servers and wrappers, user mappings, casts, languages, transforms, access methods,
 * default privileges, large objects, `DROP`/`REASSIGN OWNED`, and whole-database maintenance.
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
  ]
    .map((words) => words.replaceAll(' ', '\\s+'))
    .join('|')})(?![\\w$])`,
  'i',
);

/**
 * A schema `sqlmigrate_scratch_<random>` in the database the URL names, with a URL whose
 * search_path is that schema alone, so that unqualified names (the record table's too) resolve
 * there as they resolve to `public` in a fresh database. Far cheaper than a scratch database
 * (no copy of a template, no checkpoint), but only the same when the migrations cannot reach
 * past it, so undefined, and a scratch database instead, when:
 * - a file's SQL (strings and function bodies included, comments not) names a schema that
 *   database holds (`public.users`, `pg_catalog.pg_class` too: a superuser's write there would
 *   change that database's catalog), or uses a word of {@link REACHES_OUT};
 * - the database has enabled event triggers (they would run on the migrations' DDL);
 * - the role may not create a schema there.
 */
export async function openScratchSchema(
  connection: PostgresConnection,
  upTexts: readonly string[],
): Promise<{ url: string; name: string; drop(): Promise<void> } | undefined> {
  if (reachesOut(upTexts, [])) return undefined;
  const { default: postgres } = await import('postgres');
  const sql = postgres(connection.url, { max: 1, onnotice: () => {}, connect_timeout: 10, fetch_types: false });
  const close = () => sql.end({ timeout: 5 });
  try {
    const [row] = await sql.unsafe(`SELECT has_database_privilege(current_database(), 'CREATE') AS can_create,
      EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtenabled <> 'D') AS event_triggers,
      (SELECT json_agg(nspname) FROM pg_catalog.pg_namespace WHERE nspname !~ '^pg_(toast|temp_)')::text AS schemas`);
    const schemas = JSON.parse(String(row?.schemas ?? '[]')) as string[];
    const refused = row?.can_create !== true || row.event_triggers !== false || reachesOut(upTexts, schemas);
    if (refused) {
      await close();
      return undefined;
    }
    const name = `sqlmigrate_scratch_${randomBytes(6).toString('hex')}`;
    await sql.unsafe(`CREATE SCHEMA ${name}`);
    const url = new URL(connection.url);
    const options = connection.server.parameters.options;
    url.searchParams.set('options', `${options ? `${options} ` : ''}-c search_path=${name}`);
    return {
      url: url.toString(),
      name,
      async drop() {
        try {
          await sql.unsafe(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
        } finally {
          await close();
        }
      },
    };
  } catch {
    // Whatever went wrong, the scratch database says it properly (or works where this did not).
    await close().catch(() => {});
    return undefined;
  }
}

/**
 * Whether up files could act outside a scratch schema in a database holding `schemas`: their
 * SQL (strings and function bodies included, comments not) names one of those schemas
 * (`public.users`, `"public".users`) or says something of {@link REACHES_OUT}.
 */
export function reachesOut(upTexts: readonly string[], schemas: readonly string[]): boolean {
  const literal = (name: string) => name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const named = new RegExp(`(?<![\\w$])"?(${schemas.map(literal).join('|')})"?\\s*\\.`, 'i');
  return upTexts.some((text) => {
    const parts: string[] = [];
    const lexer = new Lexer(text, 'postgres');
    while (lexer.next()) if (lexer.kind !== 'comment') parts.push(lexer.value);
    const code = parts.join(' ');
    return REACHES_OUT.test(code) || (schemas.length > 0 && named.test(code));
  });
}
