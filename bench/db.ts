/**
 * Scratch databases, made and dropped outside the timed part: PostgreSQL through psql on the
 * server named by BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres), SQLite
 * as files in the bench's scratch folder.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, rmSync } from 'node:fs';
import { run } from './measure.ts';

export const ADMIN_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The URL of database `name` on the same server. */
export function pgUrl(name: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Whether the server answers, and psql is there to talk to it. */
export function postgresAvailable(): string | undefined {
  const r = spawnSync('psql', ['-X', '-q', '-tA', ADMIN_URL, '-c', 'SELECT 1'], { encoding: 'utf8' });
  if (r.error) return `psql not found (${r.error.message})`;
  return r.status === 0
    ? undefined
    : `PostgreSQL at ${ADMIN_URL.replace(/:[^:@/]*@/, ':****@')} did not answer: ${(r.stderr ?? '').trim()}`;
}

export function sqliteCliAvailable(): string | undefined {
  const r = spawnSync('sqlite3', ['-version'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : 'sqlite3 CLI not found (apt-get install sqlite3)';
}

const created = new Set<string>();
const prefix = `bench_${process.pid}_`;

export function psql(url: string, sql: string): string {
  return run(['psql', '-X', '-q', '-tA', '-v', 'ON_ERROR_STOP=1', url], '/', undefined, sql);
}

/** The URL of the scratch database `name` (made by freshPg). */
export function scratchPgUrl(name: string): string {
  return pgUrl(prefix + name);
}

/** A fresh, empty database (or a copy of `template`); returns its URL. */
export function freshPg(name: string, template?: string): string {
  const db = prefix + name;
  psql(
    ADMIN_URL,
    `DROP DATABASE IF EXISTS ${db} WITH (FORCE);\nCREATE DATABASE ${db}${template ? ` TEMPLATE ${prefix + template} STRATEGY FILE_COPY` : ''};`,
  );
  created.add(db);
  return pgUrl(db);
}

export function dropAllPg(): void {
  for (const db of created) {
    try {
      psql(ADMIN_URL, `DROP DATABASE IF EXISTS ${db} WITH (FORCE);`);
    } catch {
      // best effort: the report matters more than a leftover scratch database
    }
  }
  created.clear();
}

/** A SQLite file gone, with its journal and the runner's lock file. */
export function removeSqlite(path: string): void {
  for (const s of ['', '-journal', '-wal', '-shm', '.migrate-lock']) rmSync(path + s, { force: true });
}

export function copySqlite(from: string, to: string): void {
  removeSqlite(to);
  copyFileSync(from, to);
}
