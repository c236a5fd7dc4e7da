/**
 * The floors' scripts: one psql or sqlite3 session running the very same files, a transaction
 * per file, with the same tracking-row work the runner does (its record table, an insert with
 * the next `seq`, or a delete). SQLite also runs `PRAGMA foreign_key_check` before each commit,
 * as the runner must (docs/safety.md: foreign keys are checked after each migration).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchMigration } from './folders.ts';
import { postgresSql } from '../runner/core/drivers/postgres-sql.ts';
import { sqliteSql } from '../runner/core/drivers/sqlite-sql.ts';

/** The runner's own record-table DDL, so the floors create exactly its table. */
function recordTableDdl(dialect: 'postgres' | 'sqlite'): string {
  return (dialect === 'postgres' ? postgresSql : sqliteSql).createTable('schema_migrations');
}

function insertRow(dialect: 'postgres' | 'sqlite', m: BenchMigration): string {
  const sql = dialect === 'postgres' ? postgresSql : sqliteSql;
  const row = {
    revision: m.revision,
    description: m.name,
    checksum: m.checksum,
    status: 'applied',
    durationMs: 0,
  } as const;
  return `${sql.insert('schema_migrations', row)};`;
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
      direction === 'up'
        ? insertRow(dialect, m)
        : `${(dialect === 'postgres' ? postgresSql : sqliteSql).remove('schema_migrations', m.revision)};`,
    );
    lines.push('COMMIT;');
  }
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}
