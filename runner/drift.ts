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
import { DEFAULT_DIR, DEFAULT_TABLE, parseUrl } from './config.ts';
import { MigrateError } from './errors.ts';
import { loadMigrations } from './files.ts';
import { status } from './migrator.ts';
import { compareCatalogs, type DriftItem } from './catalog/model.ts';
import { buildCatalog, readCatalog } from './schema-command.ts';

export type { DriftItem } from './catalog/model.ts';

export interface DriftConfig {
  /** The live database. A PostgreSQL scratch database is created on the same server (CREATEDB). */
  url: string;
  dir?: string;
  table?: string;
}

export interface DriftResult {
  /** No drift. */
  ok: boolean;
  items: DriftItem[];
  /** The revisions the record lists, which the scratch database was built from. */
  revisions: string[];
}

/** Compare a live database with what the revisions its record lists build. Throws for a record that disagrees with the folder. */
export async function drift(config: DriftConfig): Promise<DriftResult> {
  const dir = config.dir ?? DEFAULT_DIR;
  const table = config.table ?? DEFAULT_TABLE;
  const connection = parseUrl(config.url);
  const record = await status({ url: config.url, dir, table });
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
    const expected = await buildCatalog(connection.dialect, connection, tmp, table);
    const found = await readCatalog(connection, table);
    const items = compareCatalogs(expected, found);
    return { ok: items.length === 0, items, revisions: [...applied] };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
