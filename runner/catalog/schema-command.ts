/**
 * `schema`: the canonical schema file of each dialect (catalog/render.ts), built on a scratch
 * database migrated to head with the public `migrate()`, or read from a live database inside a
 * read-only transaction; and the comparison `check` makes with the committed files
 * (`<dir>/schema/<dialect>.sql`, SCHEMA_STALE).
 *
 * Folder SQL runs only in a database made for the build: a temporary SQLite file, the embedded
 * PostgreSQL, or a scratch database on a server named for that (`scratchUrl`); never in the
 * database a URL names (#24).
 *
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_DIR, DEFAULT_TABLE, parseTableName, parseUrl, type Connection } from '../core/config.ts';
import { DIALECTS, displayPath, isDirectory, type Dialect } from '../core/files.ts';
import { MigrateError } from '../core/errors.ts';
import { withScratchPlace } from '../scratch/scratch.ts';
import { migrate } from '../core/migrator.ts';
import type { Catalog } from './model.ts';
import { renderCatalog } from './render.ts';
import type { Finding } from '../check/check.ts';

export interface SchemaConfig {
  /** Root of the dialect folders. Default `sql`. */
  dir?: string;
  /** The record table, left out of the schema. Default `schema_migrations`. */
  table?: string;
  /**
   * Picks the dialect of a folder that holds .sql files directly. Nothing connects to it: the
   * folder is never built in the database a URL names.
   */
  url?: string;
  /**
   * A `postgres://` URL of a server where PostgreSQL's build makes a scratch database (the role
   * needs CREATEDB), dropped afterwards; nothing else there is touched. Without one, the
   * embedded PostgreSQL (PGlite).
   */
  scratchUrl?: string;
}

export interface DialectSchema {
  dialect: Dialect;
  /** Where `schema --write` puts it: `<dir>/schema/<dialect>.sql`. */
  file: string;
  /** The canonical file. */
  text: string;
  /** Set when PostgreSQL's was built on the embedded PostgreSQL (no --scratch-url): which one. */
  builtOn?: string;
  /** Scratch databases of an interrupted run, over an hour old and unused, dropped on the way. */
  swept?: string[];
}

/** How a build is stopped: Ctrl-C aborts `signal`, and the build stops after the step it is in, its scratch removed. */
export interface BuildOptions {
  signal?: AbortSignal | undefined;
}

/** `<dir>/schema/<dialect>.sql`. */
export function schemaFile(dir: string, dialect: Dialect): string {
  return join(dir, 'schema', `${dialect}.sql`);
}

/** The dialects whose folders `dir` holds (a folder of .sql files alone: the URL's dialect). */
function dialectsOf(dir: string, url: string | undefined): Dialect[] {
  const present = DIALECTS.filter((d) => isDirectory(join(dir, d)));
  return present.length > 0 ? present : [url === undefined ? 'sqlite' : parseUrl(url).dialect];
}

/** The server `scratchUrl` names, refused unless it is a PostgreSQL one. */
export function scratchServer(scratchUrl: string | undefined): Connection | undefined {
  if (scratchUrl === undefined) return undefined;
  const server = parseUrl(scratchUrl);
  if (server.dialect !== 'postgres')
    throw new MigrateError(
      'BAD_OPTION',
      '--scratch-url must be a postgres URL: the server on which a scratch database is made.',
    );
  return server;
}

/** The canonical schema each dialect folder builds at head, each on its own scratch database. */
export async function schemaOf(config: SchemaConfig = {}, options: BuildOptions = {}): Promise<DialectSchema[]> {
  const dir = config.dir ?? DEFAULT_DIR;
  const server = scratchServer(config.scratchUrl);
  const out: DialectSchema[] = [];
  for (const dialect of dialectsOf(dir, config.url)) {
    const built = await buildCatalog(dialect, server, dir, config.table ?? DEFAULT_TABLE, options);
    out.push({
      dialect,
      file: schemaFile(dir, dialect),
      text: renderCatalog(built.catalog),
      ...(built.embedded ? { builtOn: built.label } : {}),
      ...(built.swept ? { swept: built.swept } : {}),
    });
  }
  return out;
}

/** The canonical schema of the database `url` names, read in a read-only transaction. */
export async function liveSchema(config: { url: string; table?: string }, options: BuildOptions = {}): Promise<string> {
  return renderCatalog(await readCatalog(parseUrl(config.url), config.table ?? DEFAULT_TABLE, options));
}

/** A folder's catalog at head, and the scratch it was built on. */
export interface BuiltCatalog {
  catalog: Catalog;
  /** The scratch, for people (scratch.ts). */
  label: string;
  /** Built on the embedded PostgreSQL (PGlite): no server was given. */
  embedded: boolean;
  /** Scratch databases an interrupted run left, dropped first. */
  swept?: string[];
}

/**
 * Migrate a scratch of `dialect` to head from `dir` with the public `migrate()` and read its
 * catalog; the scratch is removed whatever happens. PostgreSQL's is a scratch database on the
 * server `server` names, else the embedded PostgreSQL.
 */
export async function buildCatalog(
  dialect: Dialect,
  server: Connection | undefined,
  dir: string,
  table: string,
  options: BuildOptions = {},
): Promise<BuiltCatalog> {
  const { signal } = options;
  return withScratchPlace(dialect, server, async (place) => {
    // A SQLite file holds one schema: the record table goes there.
    const name = dialect === 'sqlite' ? (table.split('.').pop() as string) : table;
    signal?.throwIfAborted();
    // Stopped between two steps, as check's round trips are: the scratch is then dropped.
    await migrate({ url: place.url, dir, table: name }, 'head', { onEvent: () => signal?.throwIfAborted() });
    signal?.throwIfAborted();
    const catalog = await readCatalog(parseUrl(place.url), name, options);
    return {
      catalog,
      label: place.label,
      embedded: place.embedded,
      ...(place.swept ? { swept: place.swept } : {}),
    };
  });
}

/**
 * The catalog of a database. Writes nothing: PostgreSQL in a READ ONLY transaction with a lock
 * timeout, given up when `signal` aborts; SQLite opened read-only.
 */
export async function readCatalog(connection: Connection, table: string, options: BuildOptions = {}): Promise<Catalog> {
  if (connection.dialect === 'sqlite') {
    const { readSqliteFile } = await import('./sqlite.ts');
    return readSqliteFile(connection.filename, connection.display, table.split('.').pop() as string);
  }
  const { readPostgresUrl } = await import('./postgres.ts');
  return readPostgresUrl(connection.url, connection.display, parseTableName(table, true), options.signal);
}

/**
 * SCHEMA_STALE for each committed `<dir>/schema/<dialect>.sql` that differs from what the
 * folder builds. No file, no finding; a PostgreSQL file is built in a scratch database on the
 * `scratchUrl` server (check's --url), else on the embedded PostgreSQL.
 */
export async function staleSchemaFindings(config: SchemaConfig, options: BuildOptions = {}): Promise<Finding[]> {
  const dir = config.dir ?? DEFAULT_DIR;
  const server = scratchServer(config.scratchUrl);
  const findings: Finding[] = [];
  for (const dialect of dialectsOf(dir, config.url)) {
    const file = schemaFile(dir, dialect);
    if (!existsSync(file)) continue;
    let built: string;
    try {
      const { catalog } = await buildCatalog(dialect, server, dir, config.table ?? DEFAULT_TABLE, options);
      built = renderCatalog(catalog);
    } catch (error) {
      if (options.signal?.aborted) throw error;
      continue; // the migrations themselves fail: check reports that on its own
    }
    const committed = readFileSync(file, 'utf8').replace(/\r\n/g, '\n');
    if (committed === built) continue;
    const shown = displayPath(file);
    findings.push({
      severity: 'error',
      code: 'SCHEMA_STALE',
      file: shown,
      message: `${shown} is not the schema the migrations build. Run \`schema --write\` and commit the result.\n${unifiedDiff(committed, built, shown)}`,
    });
  }
  return findings;
}

/**
 * A unified diff of two texts (the committed file, then what the folder builds), three lines
 * of context, at most `limit` lines of output.
 */
export function unifiedDiff(before: string, after: string, name: string, limit = 40): string {
  const a = before.split('\n');
  const b = after.split('\n');
  // Longest common subsequence, from the end: schema files are a few hundred lines.
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    const row = lcs[i] as number[];
    const next = lcs[i + 1] as number[];
    for (let j = b.length - 1; j >= 0; j--)
      row[j] = a[i] === b[j] ? (next[j + 1] as number) + 1 : Math.max(next[j] as number, row[j + 1] as number);
  }
  const ops: Array<{ op: ' ' | '-' | '+'; text: string; ai: number; bi: number }> = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) ops.push({ op: ' ', text: a[i++] as string, ai: i, bi: ++j });
    else if (j < b.length && (i === a.length || (lcs[i + 1]?.[j] ?? 0) < (lcs[i]?.[j + 1] ?? 0)))
      ops.push({ op: '+', text: b[j++] as string, ai: i, bi: j });
    else ops.push({ op: '-', text: a[i++] as string, ai: i, bi: j });
  }
  const lines = [`--- ${name} (committed)`, `+++ ${name} (built from the migrations)`];
  const changed = ops.flatMap((o, n) => (o.op === ' ' ? [] : [n]));
  let c = 0;
  while (c < changed.length) {
    // One hunk while the next change is within six unchanged lines of the last.
    let last = changed[c] as number;
    const firstChange = last;
    while (c + 1 < changed.length && (changed[c + 1] as number) - last <= 7) last = changed[++c] as number;
    c++;
    const hunk = ops.slice(Math.max(0, firstChange - 3), Math.min(ops.length, last + 4));
    const aFrom = hunk.find((o) => o.op !== '+')?.ai ?? 0;
    const bFrom = hunk.find((o) => o.op !== '-')?.bi ?? 0;
    const aCount = hunk.filter((o) => o.op !== '+').length;
    const bCount = hunk.filter((o) => o.op !== '-').length;
    lines.push(`@@ -${aFrom},${aCount} +${bFrom},${bCount} @@`);
    for (const o of hunk) lines.push(`${o.op}${o.text}`);
  }
  if (lines.length > limit) return [...lines.slice(0, limit), `… ${lines.length - limit} more lines`].join('\n');
  return lines.join('\n');
}
