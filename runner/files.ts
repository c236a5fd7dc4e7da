/**
 * The migration folder, read without a database: list a dialect folder, parse names and
 * directives, pair up/down files, and refuse anything ambiguous before a database is touched.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { MigrateError } from './errors.ts';

export type Dialect = 'postgres' | 'sqlite';
export const DIALECTS: readonly Dialect[] = ['postgres', 'sqlite'];

export interface MigrationFile {
  /** Path as shown to users: relative to the working directory when it lies below it. */
  path: string;
  /** UTF-8 text with the BOM removed and CRLF turned into LF: what runs and what is hashed. */
  text: string;
  /** sha256 hex of `text`: computed on first read, so `{ ...file }` leaves it out (JSON keeps it). */
  checksum: string;
  /** False when the file carries `-- migrate:no-transaction` (or sqlx's `-- no-transaction`). */
  transactional: boolean;
  /** Reasons given by `-- migrate:allow-difference <reason>` lines (used by `check`). */
  allowDifferences: readonly string[];
}

export interface Migration {
  /** The version as an integer: the ordering key, and what two files of a pair share. */
  version: bigint;
  /** The version as written (`20250128_140000`, `000001`): the revision users and the record see. */
  revision: string;
  description: string;
  /** `<revision>_<description>`: the other name users may give a revision by. */
  stem: string;
  up: MigrationFile;
  down: MigrationFile;
}

/** `20250128_140000_initial_schema.up.sql`, or golang-migrate/sqlx style `000001_init.up.sql`. */
const NAME = /^(?:(\d{8}_\d{6})|(\d+))_(.+)\.(up|down)\.sql$/;

const KNOWN_DIRECTIVES = new Set(['no-transaction', 'allow-difference']);

/** Shared by every file without `allow-difference` lines, rather than an empty array each. */
const NO_REASONS: readonly string[] = Object.freeze([]);

export function normaliseText(raw: string): string {
  const noBom = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  return noBom.includes('\r') ? noBom.replace(/\r\n?/g, '\n') : noBom;
}

export function checksumOf(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Integer ordering key of a revision as written (`20250128_140000` → 20250128140000n). */
export function versionOf(revision: string): bigint {
  return BigInt(revision.replace('_', ''));
}

export interface ParsedName {
  revision: string;
  version: bigint;
  description: string;
  stem: string;
  direction: 'up' | 'down';
}

/** Parse a file name; undefined when it does not follow the naming rule. */
export function parseName(fileName: string): ParsedName | undefined {
  const m = NAME.exec(fileName);
  // `20250128_140000.up.sql` would otherwise read as version 20250128, description "140000".
  if (!m || (m[2] !== undefined && /^\d{6}$/.test(m[3] as string) && m[2].length === 8)) return undefined;
  const revision = (m[1] ?? m[2]) as string;
  const description = m[3] as string;
  return {
    revision,
    version: versionOf(revision),
    description,
    stem: `${revision}_${description}`,
    direction: m[4] as 'up' | 'down',
  };
}

/** Show paths relative to the working directory, so `file:line:col` is clickable in a terminal. */
export function displayPath(path: string, cwd: string = process.cwd()): string {
  if (!isAbsolute(path)) return path;
  const rel = relative(cwd, path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

/**
 * Directives live in the file's leading comment block. A `-- migrate:` line further down is an
 * error rather than ignored: dbmate's `-- migrate:up` / `-- migrate:down` sections would
 * otherwise run both halves at once.
 */
function readDirectives(path: string, text: string): { transactional: boolean; allowDifferences: readonly string[] } {
  let transactional = true;
  // Only lines holding `migrate:` or `no-transaction` can matter: most files hold neither.
  if (!text.includes('migrate:') && !text.includes('no-transaction'))
    return { transactional, allowDifferences: NO_REASONS };
  const allowDifferences: string[] = [];
  let inHeader = true;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (inHeader && line !== '' && !line.startsWith('--')) inHeader = false;
    if (!line.startsWith('--')) continue;
    const body = line.slice(2).trim();
    if (inHeader && body === 'no-transaction') {
      transactional = false; // sqlx's spelling
      continue;
    }
    const m = /^migrate:(\S*)\s*(.*)$/.exec(body);
    if (!m) continue;
    const name = m[1] as string;
    if (!KNOWN_DIRECTIVES.has(name)) {
      throw new MigrateError(
        'UNKNOWN_DIRECTIVE',
        `${path}:${i + 1}: unknown directive "-- migrate:${name}". Known: ${[...KNOWN_DIRECTIVES].map((d) => `-- migrate:${d}`).join(', ')}.` +
          (name === 'up' || name === 'down'
            ? ' (dbmate keeps up and down in one file; here they are two files: .up.sql and .down.sql.)'
            : ''),
      );
    }
    if (!inHeader) {
      throw new MigrateError(
        'MISPLACED_DIRECTIVE',
        `${path}:${i + 1}: "-- migrate:${name}" must stand in the comment block at the top of the file.`,
      );
    }
    if (name === 'no-transaction') transactional = false;
    else allowDifferences.push((m[2] as string).trim());
  }
  return { transactional, allowDifferences };
}

export function readMigrationFile(absPath: string, path: string = displayPath(absPath)): MigrationFile {
  const text = normaliseText(readFileSync(absPath, 'utf8'));
  const { transactional, allowDifferences } = readDirectives(path, text);
  return new LoadedFile(path, text, transactional, allowDifferences);
}

/**
 * A class rather than an object literal with a getter: V8 gives every instance one compact
 * shape, where the literal took about 2 KB per migration, which a 10,000-file folder pays in
 * memory and in garbage collection.
 */
class LoadedFile implements MigrationFile {
  #checksum: string | undefined;
  constructor(
    readonly path: string,
    readonly text: string,
    readonly transactional: boolean,
    readonly allowDifferences: readonly string[],
  ) {}

  /** Hashed on first use: only applied up files are compared, and down files never are. */
  get checksum(): string {
    return (this.#checksum ??= checksumOf(this.text));
  }

  /** The lazy checksum sits on the prototype: listed here so that a caller's logs carry it. */
  toJSON(): MigrationFile {
    return {
      path: this.path,
      text: this.text,
      checksum: this.checksum,
      transactional: this.transactional,
      allowDifferences: this.allowDifferences,
    };
  }
}

/**
 * The folder that holds `dialect`'s files: `<dir>/<dialect>` when `dir` is a root of dialect
 * folders, or `dir` itself when it holds `.sql` files directly.
 */
export function dialectFolder(dir: string, dialect: Dialect): string {
  const sub = join(dir, dialect);
  if (isDirectory(sub)) return sub;
  if (
    isDirectory(dir) &&
    !DIALECTS.some((d) => isDirectory(join(dir, d))) &&
    readdirSync(dir).some((f) => f.endsWith('.sql'))
  ) {
    return dir;
  }
  throw new MigrateError(
    'NO_MIGRATIONS',
    `no migrations for ${dialect}: neither ${displayPath(sub)}/ nor .sql files in ${displayPath(dir)}/. Create one with: tsx scripts/migrate.ts new <description>`,
  );
}

export function isDirectory(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

interface Listed {
  /** The `.sql` names of the folder, sorted. */
  names: string[];
  versions: Map<bigint, ParsedName>;
  /** Each version's two halves by file name: a path per file is built once, when it is read. */
  halves: Map<bigint, { up?: string; down?: string; name: ParsedName }>;
}

/**
 * What goes before a file's name to make its path, so that each path costs one concatenation
 * (path.join per file left several string fragments behind per file, which a 10,000-file
 * folder pays in memory and garbage collection). Same result as join: `.` gives ``, `./sql/`
 * gives `sql/`.
 */
function prefixOf(folder: string): string {
  return join(folder, '_').slice(0, -1);
}

/** Parse and pair the names of a folder, refusing bad names, lone halves and duplicate versions. */
function listFolder(folder: string): Listed {
  const halves = new Map<bigint, { up?: string; down?: string; name: ParsedName }>();
  const names = readdirSync(folder)
    .filter((entry) => entry.endsWith('.sql'))
    .sort(); // READMEs and .gitkeep may share the folder
  const shown = (entry: string) => displayPath(prefixOf(folder) + entry);
  for (const entry of names) {
    const parsed = parseName(entry);
    if (!parsed) {
      throw new MigrateError(
        'BAD_FILENAME',
        `${shown(entry)}: not a migration name. Expected <version>_<description>.up.sql or .down.sql, the version being YYYYMMDD_HHMMSS or digits (20250128_140000_initial_schema.up.sql, 000001_init.up.sql).`,
      );
    }
    const slot = halves.get(parsed.version) ?? { name: parsed };
    const clash = slot.name.stem !== parsed.stem ? (slot.up ?? slot.down) : slot[parsed.direction];
    if (clash !== undefined) {
      throw new MigrateError(
        'DUPLICATE_VERSION',
        `${shown(entry)}: version ${parsed.revision} is also used by ${shown(clash)}. Each version names one migration; renumber one of them.`,
      );
    }
    slot[parsed.direction] = entry;
    halves.set(parsed.version, slot);
  }
  for (const { up, down, name } of halves.values()) {
    if (!down)
      throw new MigrateError(
        'MISSING_DOWN',
        `${shown(up as string)}: no matching ${name.stem}.down.sql. Every migration is a pair; a down file with only comments is a deliberate no-op.`,
      );
    if (!up) throw new MigrateError('MISSING_UP', `${shown(down)}: no matching ${name.stem}.up.sql.`);
  }
  const versions = new Map<bigint, ParsedName>();
  for (const [v, { name }] of halves) versions.set(v, name);
  return { names, versions, halves };
}

function sameNames(mine: Listed, entries: string[]): boolean {
  const theirs = entries.filter((entry) => entry.endsWith('.sql')).sort();
  return theirs.length === mine.names.length && theirs.every((name, i) => name === mine.names[i]);
}

/**
 * Load the migrations of one dialect, in version order, after checking that every dialect
 * folder present under `dir` holds the same revisions.
 */
export function loadMigrations(dir: string, dialect: Dialect): Migration[] {
  const folder = dialectFolder(dir, dialect);
  const listed = listFolder(folder);
  if (folder !== dir) checkSiblings(dir, dialect, listed);
  const migrations: Migration[] = [];
  const absolute = prefixOf(folder);
  const shown = prefixOf(displayPath(folder)); // one relative() for the folder, not one per file
  for (const { up, down, name } of listed.halves.values()) {
    migrations.push({
      version: name.version,
      revision: name.revision,
      description: name.description,
      stem: name.stem,
      up: readMigrationFile(absolute + (up as string), shown + (up as string)),
      down: readMigrationFile(absolute + (down as string), shown + (down as string)),
    });
  }
  return migrations.sort((a, b) => (a.version < b.version ? -1 : a.version > b.version ? 1 : 0));
}

function checkSiblings(dir: string, dialect: Dialect, mine: Listed): void {
  for (const other of DIALECTS) {
    if (other === dialect || !isDirectory(join(dir, other))) continue;
    // The usual case, the same file names on both sides, needs no parsing: mine were checked.
    if (sameNames(mine, readdirSync(join(dir, other)))) continue;
    const theirs = listFolder(join(dir, other));
    for (const [v, name] of mine.versions) {
      const twin = theirs.versions.get(v);
      if (!twin) {
        throw new MigrateError(
          'DIALECT_MISMATCH',
          `${displayPath(join(dir, dialect, name.stem))}.up.sql has no counterpart in ${displayPath(join(dir, other))}/. Every dialect folder holds the same revisions.`,
        );
      }
      if (twin.stem !== name.stem) {
        throw new MigrateError(
          'DIALECT_MISMATCH',
          `${displayPath(join(dir, dialect, name.stem))}.up.sql and ${displayPath(join(dir, other, twin.stem))}.up.sql share a version but not a description. Name them alike.`,
        );
      }
    }
    for (const [v, name] of theirs.versions) {
      if (!mine.versions.has(v)) {
        throw new MigrateError(
          'DIALECT_MISMATCH',
          `${displayPath(join(dir, other, name.stem))}.up.sql has no counterpart in ${displayPath(join(dir, dialect))}/. Every dialect folder holds the same revisions.`,
        );
      }
    }
  }
}

/** The dialect folders a `new` migration is written into (creating both on a fresh root). */
export function foldersForNew(dir: string): string[] {
  const present = DIALECTS.map((d) => join(dir, d)).filter(isDirectory);
  if (present.length > 0) return present;
  if (isDirectory(dir) && readdirSync(dir).some((f) => f.endsWith('.sql'))) return [dir];
  return DIALECTS.map((d) => join(dir, d));
}
