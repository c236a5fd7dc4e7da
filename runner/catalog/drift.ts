/**
 * `drift`: what a live database holds that its migrations did not make, and the reverse.
 *
 * The revisions its record lists (and only those: a pending file is not drift) are run, as the
 * runner runs them, on a scratch database; both catalogs are then compared object by object
 * and property by property (catalog/model.ts). The live database is only read: its record
 * through `status()`, its catalog in a read-only transaction.
 *
 * @module
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { DEFAULT_DIR, DEFAULT_TABLE, parseUrl, type Connection } from '../core/config.ts';
import { MigrateError } from '../core/errors.ts';
import type { ServerRole } from '../core/hosts.ts';
import { loadMigrations } from '../core/files.ts';
import { status } from '../core/migrator.ts';
import { compareCatalogs, type DriftItem } from './model.ts';
import { type BuildOptions, buildCatalog, readCatalog } from './schema-command.ts';

export type { DriftItem } from './model.ts';

export interface DriftConfig {
  /** The live database: only read. */
  url: string;
  /**
   * Where PostgreSQL's scratch is made: a server (and database) the role of this URL may write
   * to, as `schema` uses its URL. Without it, a scratch database on the live server when its
   * role may create one, else the embedded PostgreSQL (PGlite).
   */
  scratchUrl?: string;
  dir?: string;
  table?: string;
  /** Told which server was read, and whether it is a hot standby (drift runs there: it only reads). */
  onServer?: (role: ServerRole) => void;
}

export interface DriftResult {
  /** No drift. */
  ok: boolean;
  items: DriftItem[];
  /** The revisions the record lists, which the scratch database was built from. */
  revisions: string[];
  /** Where the expected schema was built, for people. */
  scratch: string;
  /** Set when it was built on the embedded PostgreSQL: why, and what to do for a build on the live server's version. */
  note?: string;
}

/** Compare a live database with what the revisions its record lists build. Throws for a record that disagrees with the folder. */
export async function drift(config: DriftConfig, options: BuildOptions = {}): Promise<DriftResult> {
  const dir = config.dir ?? DEFAULT_DIR;
  const table = config.table ?? DEFAULT_TABLE;
  const connection = parseUrl(config.url);
  let standby = false;
  const onServer = (role: ServerRole) => {
    standby = role.standby;
    config.onServer?.(role);
  };
  const record = await status({ url: config.url, dir, table, onServer });
  const refuse = (flag: 'changed' | 'missing' | 'failed') => record.revisions.filter((r) => r.flags.includes(flag));
  const changed = refuse('changed');
  if (changed.length > 0) {
    throw new MigrateError(
      'CHECKSUM_MISMATCH',
      `drift builds what the applied files make, but ${changed.map((r) => r.revision).join(', ')} changed since applied (checksum differs). Restore them, or review and run \`stamp\`.`,
    );
  }
  const missing = refuse('missing');
  if (missing.length > 0) {
    throw new MigrateError(
      'MISSING_FILE',
      `the record lists ${missing.map((r) => r.revision).join(', ')}, whose files are gone: drift cannot build what they made.`,
    );
  }
  const failed = refuse('failed');
  if (failed.length > 0) {
    throw new MigrateError(
      'FAILED_MIGRATION',
      `${failed.map((r) => r.revision).join(', ')} stopped part-way: repair it and run \`stamp\` before comparing.`,
    );
  }
  const applied = new Set(record.revisions.filter((r) => r.state === 'applied').map((r) => r.revision));

  // The applied revisions alone, copied into a folder of their own, so that `migrate` runs
  // them exactly as it runs any folder and no pending file reaches the scratch database.
  const tmp = mkdtempSync(join(tmpdir(), 'migrate-drift-'));
  try {
    const folder = join(tmp, connection.dialect);
    mkdirSync(folder);
    for (const m of loadMigrations(dir, connection.dialect)) {
      if (!applied.has(m.revision)) continue;
      writeFileSync(join(folder, basename(m.up.path)), m.up.text);
      writeFileSync(join(folder, basename(m.down.path)), m.down.text);
    }
    // A hot standby cannot hold a scratch database: build on the embedded PostgreSQL unless told where.
    const built = await buildExpected(connection, config.scratchUrl, tmp, table, options, standby);
    const found = await readCatalog(connection, table);
    const items = compareCatalogs(built.catalog, found);
    return {
      ok: items.length === 0,
      items,
      revisions: [...applied],
      scratch: built.label,
      ...(built.embedded ? { note: embeddedNote(built.label, 'standby' in built) } : {}),
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The catalog the applied revisions build. Never a scratch schema in the live database: it is
 * only read. Without --scratch-url, a scratch database on the live server; a role that may not
 * create one (42501) falls back to the embedded PostgreSQL, whose catalog model of the same
 * folder is the 15 server's (catalog/postgres.ts reads NOT NULL the one way both print it).
 */
async function buildExpected(
  live: Connection,
  scratchUrl: string | undefined,
  dir: string,
  table: string,
  options: BuildOptions,
  standby = false,
) {
  if (scratchUrl !== undefined) {
    const scratch = parseUrl(scratchUrl);
    if (scratch.dialect !== live.dialect)
      throw new MigrateError('BAD_OPTION', `--scratch-url must be a ${live.dialect} URL, like the database compared.`);
    return buildCatalog(live.dialect, scratch, dir, table, { ...options, inSchema: true });
  }
  if (standby) return { ...(await buildCatalog(live.dialect, undefined, dir, table, options)), standby };
  try {
    return await buildCatalog(live.dialect, live, dir, table, options);
  } catch (error) {
    const refused = error instanceof MigrateError && (error.cause as { code?: unknown })?.code === '42501';
    if (!refused) throw error;
    return buildCatalog(live.dialect, undefined, dir, table, options);
  }
}

function embeddedNote(label: string, standby: boolean): string {
  const why = standby
    ? 'the live server is a hot standby (read-only)'
    : 'the live role may not create a scratch database';
  return `${why}, so the migrations were built on the ${label}; give --scratch-url postgres://… (a server of the live one's version the role there may write to) to build them there instead.`;
}
