/** `new <description>`: an empty up/down pair with one timestamp in every dialect folder. */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MigrateError } from './errors.ts';
import { displayPath, foldersForNew, parseName, versionOf } from './files.ts';

/** `Add e-mail` → `add_e_mail`: the description `new` writes is lowercase letters, digits and `_`. */
export function slugify(description: string): string {
  return description
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

function timestamp(date: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(date.getUTCFullYear(), 4)}${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}_${p(date.getUTCHours())}${p(date.getUTCMinutes())}${p(date.getUTCSeconds())}`;
}

/**
 * Write `<timestamp>_<slug>.up.sql` and `.down.sql` in every dialect folder under `dir`.
 * The timestamp moves on by a second while any folder already uses it, so two `new` calls in
 * one second never collide and nothing is ever overwritten. Returns the paths written.
 */
export function createMigration(dir: string, description: string, now: Date = new Date()): string[] {
  const slug = slugify(description);
  if (!slug)
    throw new MigrateError(
      'BAD_DESCRIPTION',
      `"${description}" gives an empty name: use letters or digits (new add_email).`,
    );
  const folders = foldersForNew(dir);
  const taken = new Set<string>();
  for (const f of folders) {
    if (!existsSync(f)) continue;
    for (const entry of readdirSync(f)) {
      const parsed = parseName(entry);
      if (parsed) taken.add(parsed.version.toString());
    }
  }
  let at = now.getTime();
  while (taken.has(versionOf(timestamp(new Date(at))).toString())) at += 1000;
  const stem = `${timestamp(new Date(at))}_${slug}`;
  // One line, never first on it: `new no-transaction` or `new migrate:x` must not write a directive.
  const title = description.replace(/\s+/g, ' ').trim();
  const written: string[] = [];
  for (const folder of folders) {
    mkdirSync(folder, { recursive: true });
    for (const [direction, body] of [
      [
        'up',
        `-- Apply ${title}\n-- Runs in one transaction with its record row. Add "-- migrate:no-transaction" on the first line to run it statement by statement instead.\n\n`,
      ],
      [
        'down',
        `-- Undo ${title}: drop what the up file created, in reverse order.\n-- A down file with only comments is a deliberate no-op.\n\n`,
      ],
    ] as const) {
      const path = join(folder, `${stem}.${direction}.sql`);
      writeFileSync(path, body, { flag: 'wx' }); // wx: never overwrite, even if another process raced us
      written.push(displayPath(path));
    }
  }
  return written;
}
