/** `new <description>`: an empty up/down pair with one timestamp in every dialect folder. */
import { existsSync, linkSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MigrateError } from './errors.ts';
import type { Direction } from './dialect.ts';
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
  if (Buffer.byteLength(`${stem}.down.sql`) > MAX_NAME_BYTES) {
    throw new MigrateError(
      'BAD_DESCRIPTION',
      `"${description.slice(0, 40)}…" is too long: ${displayPath(join(folders[0] as string, stem))}.down.sql would pass the ${MAX_NAME_BYTES} bytes a file name can hold. Keep the description under ${MAX_NAME_BYTES - 25} characters, and say the rest in the file's comments.`,
    );
  }
  // One line, never first on it: `new no-transaction` or `new migrate:x` must not write a directive.
  const title = description.replace(/\s+/g, ' ').trim();
  const files = folders.flatMap((folder) =>
    (['up', 'down'] as const).map((direction) => ({
      folder,
      path: join(folder, `${stem}.${direction}.sql`),
      direction,
    })),
  );
  return writeAll(files, (direction) => (direction === 'up' ? upBody(title) : downBody(title)));
}

/** Most file systems cap a name at 255 bytes. */
const MAX_NAME_BYTES = 255;

function upBody(title: string): string {
  return `-- Apply ${title}\n-- Runs in one transaction with its record row. Add "-- migrate:no-transaction" on the first line to run it statement by statement instead.\n\n`;
}

function downBody(title: string): string {
  return `-- Undo ${title}: drop what the up file created, in reverse order.\n-- A down file with only comments is a deliberate no-op.\n\n`;
}

/**
 * Write every file or none: each is written under a temporary name (which the folder scan
 * ignores), then linked to its real name, which fails rather than overwrite a file another
 * process made meanwhile. On any failure, whatever was written is removed.
 */
function writeAll(
  files: Array<{ folder: string; path: string; direction: Direction }>,
  body: (direction: Direction) => string,
): string[] {
  const temps: string[] = [];
  const linked: string[] = [];
  let current = files[0]?.folder ?? '';
  try {
    for (const f of files) {
      current = f.folder;
      mkdirSync(f.folder, { recursive: true });
      const temp = join(f.folder, `.new-${process.pid}-${temps.length}.tmp`);
      writeFileSync(temp, body(f.direction), { flag: 'wx' });
      temps.push(temp);
    }
    files.forEach((f, k) => {
      current = f.path;
      placeFile(temps[k] as string, f.path);
      linked.push(f.path);
    });
  } catch (error) {
    for (const p of linked) rmSync(p, { force: true });
    // Node's message ends with the (temporary) path: keep the reason, name the real place.
    const why = (error as Error).message.split(', ')[0];
    throw MigrateError.at(
      'WRITE_FAILED',
      { file: displayPath(current) },
      `cannot be written (${why}). Nothing was written: fix the folder, or choose another with --dir.`,
      error,
    );
  } finally {
    for (const p of temps) rmSync(p, { force: true });
  }
  return files.map((f) => displayPath(f.path));
}

/** Give `temp` its real name without overwriting; a file system without hard links gets a rename after a check. */
function placeFile(temp: string, path: string): void {
  try {
    linkSync(temp, path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if ((code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EPERM') || existsSync(path)) throw error;
    renameSync(temp, path);
  }
}
