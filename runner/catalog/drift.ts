/**
 * `drift`: what a live database holds that its migrations did not make, and the reverse.
 *
 * The revisions its record lists (and only those: a pending file is not drift) are run, as the
 * runner runs them, on the embedded PostgreSQL or in a scratch database on the `--scratch-url`
 * server; both catalogs are then compared object by object and property by property
 * (catalog/model.ts). The live database is only read, and nothing is created on its server
 * unless --scratch-url names that server (#24): its record through `status()`, its catalog in a
 * read-only transaction with a lock timeout.
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
import { type BuildOptions, buildCatalog, readCatalog, scratchServer } from './schema-command.ts';

export type { DriftItem } from './model.ts';

export interface DriftConfig {
  /** The live database: only read. */
  url: string;
  /**
   * A PostgreSQL server whose role may create databases: the applied revisions are built in a
   * scratch database there. Without it, on the embedded PostgreSQL (PGlite). The live server
   * only when this names it.
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
  /** Set when it was built on the embedded PostgreSQL, or on the live server itself: where, and what that means. */
  note?: string;
}

/** Compare a live database with what the revisions its record lists build. Throws for a record that disagrees with the folder. */
export async function drift(config: DriftConfig, options: BuildOptions = {}): Promise<DriftResult> {
  const dir = config.dir ?? DEFAULT_DIR;
  const table = config.table ?? DEFAULT_TABLE;
  const connection = parseUrl(config.url);
  const record = await status({
    url: config.url,
    dir,
    table,
    ...(config.onServer ? { onServer: config.onServer } : {}),
  });
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
    const server = connection.dialect === 'postgres' ? scratchServer(config.scratchUrl) : undefined;
    // The live read first: a lock that holds it up is met (and a Ctrl-C answered) before any build.
    const found = await readCatalog(connection, table, options);
    const built = await buildCatalog(connection.dialect, server, tmp, table, options);
    const items = compareCatalogs(built.catalog, found);
    return {
      ok: items.length === 0,
      items,
      revisions: [...applied],
      scratch: built.label,
      ...noteOf(built.embedded, built.label, connection, server),
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** What a person should know of where the expected schema was built. */
function noteOf(embedded: boolean, label: string, live: Connection, server: Connection | undefined) {
  if (embedded)
    return {
      note: `the migrations were built on the ${label}; give --scratch-url postgres://… (a server of the live one's version whose role may create databases) to build them there instead.`,
    };
  if (server?.dialect === 'postgres' && live.dialect === 'postgres' && sameServer(live, server))
    return {
      note: `the migrations were built in a scratch database on the live server, created and dropped there, as --scratch-url asked.`,
    };
  return {};
}

function sameServer(a: Extract<Connection, { dialect: 'postgres' }>, b: Extract<Connection, { dialect: 'postgres' }>) {
  const where = (c: typeof a) =>
    (c.server.host ?? ['localhost']).map((h, i) => `${h}:${c.server.port?.[i] ?? c.server.port?.[0] ?? 5432}`);
  const theirs = new Set(where(b));
  return where(a).some((w) => theirs.has(w));
}
