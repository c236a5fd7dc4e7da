/** A SQLite database file in a fresh temp directory, for one test. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempSqlite {
  /** `sqlite:<absolute path>`, as the runner takes it. */
  url: string;
  /** The database file's absolute path (not created yet). */
  path: string;
  /** Removes the directory and everything in it (the database, its -wal/-shm and lock files). */
  cleanup(): void;
}

export function tempSqliteUrl(): TempSqlite {
  const dir = mkdtempSync(join(tmpdir(), 'mig-sqlite-'));
  const path = join(dir, 'test.db');
  return {
    url: `sqlite:${path}`,
    path,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
