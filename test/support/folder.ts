/** A throwaway migrations root for one test: one PostgreSQL revision per up text, downs unused. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function postgresFolder(...ups: string[]): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'mig-pg-folder-'));
  mkdirSync(join(dir, 'postgres'));
  ups.forEach((up, i) => {
    const stem = `00000${i + 1}_r${i + 1}`;
    writeFileSync(join(dir, 'postgres', `${stem}.up.sql`), up);
    writeFileSync(join(dir, 'postgres', `${stem}.down.sql`), '-- not used\n');
  });
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
