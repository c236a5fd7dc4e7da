/**
 * The floors' scripts: one psql or sqlite3 session running the very same files, a transaction
 * per file, with the same tracking-row work the runner does (its record table, an insert with
 * the next `seq`, or a delete). SQLite also runs `PRAGMA foreign_key_check` before each commit,
 * as the runner must (SPEC: foreign keys are checked after each migration).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchMigration } from './folders.ts';
import { PostgresDriver } from '../runner/drivers/postgres.ts';
import { SqliteDriver } from '../runner/drivers/sqlite.ts';
import { sqlString as q } from '../runner/record.ts';

/** The runner's own record-table DDL, so the floors create exactly its table; neither constructor connects. */
function recordTableDdl(dialect: 'postgres' | 'sqlite'): string {
  const table = 'schema_migrations';
  const driver =
    dialect === 'postgres'
      ? new PostgresDriver({ url: 'postgres://localhost/unused', display: '', table, create: false })
      : new SqliteDriver({ filename: ':memory:', table, create: false });
  return driver.renderEnsureRecordTable();
}

function insertRow(dialect: 'postgres' | 'sqlite', m: BenchMigration): string {
  const now = dialect === 'postgres' ? 'clock_timestamp()' : `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`;
  return `INSERT INTO schema_migrations (revision, name, checksum, status, applied_at, duration_ms, seq) VALUES (${q(m.revision)}, ${q(m.name)}, ${q(m.checksum)}, 'applied', ${now}, 0, (SELECT coalesce(max(seq), 0) + 1 FROM schema_migrations));`;
}

/**
 * Write the script that applies (`up`, in order) or rolls back (`down`, newest first) every
 * migration of `migrations`, reading each file from `dir/<dialect>/` with `\i` or `.read`.
 */
export function writeFloorScript(
  path: string,
  dialect: 'postgres' | 'sqlite',
  dir: string,
  migrations: readonly BenchMigration[],
  direction: 'up' | 'down',
): string {
  const lines: string[] =
    dialect === 'postgres'
      ? ['\\set ON_ERROR_STOP on', '\\set QUIET on', 'SET client_min_messages = warning;']
      : ['.bail on', '.timeout 5000', 'PRAGMA foreign_keys = ON;'];
  if (direction === 'up') lines.push(recordTableDdl(dialect));
  const list = direction === 'up' ? migrations : [...migrations].reverse();
  for (const m of list) {
    const file = join(dir, dialect, `${m.revision}_${m.name}.${direction}.sql`);
    lines.push(dialect === 'postgres' ? 'BEGIN;' : 'BEGIN IMMEDIATE;');
    lines.push(dialect === 'postgres' ? `\\i ${file}` : `.read ${file}`);
    if (dialect === 'sqlite') lines.push('PRAGMA foreign_key_check;');
    lines.push(
      direction === 'up' ? insertRow(dialect, m) : `DELETE FROM schema_migrations WHERE revision = ${q(m.revision)};`,
    );
    lines.push('COMMIT;');
  }
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}
