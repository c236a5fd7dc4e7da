/**
 * The migration folder, read without a database: list a dialect folder, parse names, pair
 * up/down files, read each (read.ts), and refuse anything ambiguous before a database is touched.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { MigrateError } from './errors.ts';
import { type MigrationFile, type Phase, readMigrationFile } from './read.ts';
import { DIALECTS, type Dialect, type Direction } from './dialect.ts';

export { checksumOf, normaliseText } from './read.ts';
export type { MigrationFile, Phase } from './read.ts';

export { DIALECTS, type Dialect, type Direction } from './dialect.ts';

/** A revision's phase, as its up file says (`pre` unless `-- migrate:phase post`). */
export function phaseOf(m: Migration): Phase {
  return m.up.phase ?? 'pre';
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

/** Integer ordering key of a revision as written (`20250128_140000` → 20250128140000n). */
export function versionOf(revision: string): bigint {
  return BigInt(revision.replace('_', ''));
}

export interface ParsedName {
  revision: string;
  version: bigint;
  description: string;
  stem: string;
  direction: Direction;
}

/** Parse a file name; undefined when it does not follow the naming rule. */
export function parseName(fileName: string): ParsedName | undefined {
  const m = NAME.exec(fileName);
  // `20250128_140000.up.sql` would otherwise read as version 20250128, description "140000".
  if (!m || (m[2] !== undefined && /^\d{6}$/.test(m[3] as string) && m[2].length === 8)) return undefined;
  // A space at either end of the description is a slip of the keyboard, not a name (issue #26).
  if (/^\s|\s$/.test(m[3] as string)) return undefined;
  const revision = (m[1] ?? m[2]) as string;
  const description = m[3] as string;
  return {
    revision,
    version: versionOf(revision),
    description,
    stem: `${revision}_${description}`,
    direction: m[4] as Direction,
  };
}

/** Show paths relative to the working directory, so `file:line:col` is clickable in a terminal. */
export function displayPath(path: string, cwd: string = process.cwd()): string {
  if (!isAbsolute(path)) return path;
  const rel = relative(cwd, path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

/**
 * The folder that holds `dialect`'s files: `<dir>/<dialect>` when `dir` is a root of dialect
 * folders, or `dir` itself when it holds `.sql` files directly.
 */
export function dialectFolder(dir: string, dialect: Dialect): string {
  const sub = join(dir, dialect);
  if (isDirectory(sub)) return sub;
  if (!isDirectory(dir)) {
    // Most often the command was run from another folder than the project's root.
    throw new MigrateError(
      'NO_MIGRATIONS',
      `no migrations for ${dialect}: the folder ${displayPath(dir)}/ does not exist, so neither ${displayPath(sub)}/ nor .sql files in it (looked in ${resolve(dir)}). Run from the folder that holds it, or name the migrations folder with --dir <path>.`,
    );
  }
  if (!DIALECTS.some((d) => isDirectory(join(dir, d))) && readdirSync(dir).some((f) => f.endsWith('.sql'))) {
    return dir;
  }
  throw new MigrateError(
    'NO_MIGRATIONS',
    `no migrations for ${dialect}: neither ${displayPath(sub)}/ nor .sql files in ${displayPath(dir)}/. Create one with: npx tsx scripts/migrate.ts new <description>`,
  );
}

export function isDirectory(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

/** A dialect folder's names, parsed and paired, with every problem found in them. */
export interface FolderScan {
  folder: string;
  /** The `.sql` names of the folder, sorted. */
  names: string[];
  versions: Map<bigint, ParsedName>;
  /** Each version's two halves by file name: a path per file is built once, when it is read. */
  halves: Map<bigint, { up?: string; down?: string; name: ParsedName }>;
  /** Bad names, entries that are not files, duplicate versions and lone halves, in name order. */
  problems: MigrateError[];
  /** Names that are not files (directories, pipes): never opened, since a pipe would block the read. */
  unreadable: Set<string>;
}

/**
 * What goes before a file's name to make its path: one concatenation per file, cheaper than a
 * path.join each (see docs/performance.md). As join would: `.` gives ``, `./sql/` gives `sql/`.
 */
function prefixOf(folder: string): string {
  return join(folder, '_').slice(0, -1);
}

/** Parse and pair the names of a folder; every bad name, lone half and duplicate version is a problem. */
export function listFolder(folder: string): FolderScan {
  const halves = new Map<bigint, { up?: string; down?: string; name: ParsedName }>();
  const problems: MigrateError[] = [];
  const unreadable = new Set<string>();
  const all = readdirSync(folder, { withFileTypes: true }).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
  // READMEs and .gitkeep may share the folder; a name that only just misses (`.down.SQL`,
  // `.up.sql.txt`, a stray space) is a mistake to point at, not a file to pass over (issue #26).
  const entries = all.filter(
    (entry) => entry.name.endsWith('.sql') || (NEAR_MISS.test(entry.name) && !LEFTOVER.test(entry.name)),
  );
  const names = entries.filter((entry) => entry.name.endsWith('.sql')).map((entry) => entry.name);
  const shown = (entry: string) => displayPath(prefixOf(folder) + entry);
  for (const entry of entries) {
    const name = entry.name;
    const parsed = name.endsWith('.sql') ? parseName(name) : undefined;
    if (!parsed) {
      problems.push(MigrateError.at('BAD_FILENAME', { file: shown(name) }, badName(name)));
      continue;
    }
    // A FIFO would block the read for ever; a directory cannot be read at all.
    if (
      entry.isDirectory() ||
      entry.isFIFO() ||
      entry.isSocket() ||
      entry.isBlockDevice() ||
      entry.isCharacterDevice()
    ) {
      const what = entry.isDirectory() ? 'a directory' : 'a special file (pipe, socket or device)';
      problems.push(
        MigrateError.at('UNREADABLE_FILE', { file: shown(name) }, `cannot be read: it is ${what}, not a file.`),
      );
      unreadable.add(name);
    }
    const slot = halves.get(parsed.version) ?? { name: parsed };
    const clash = slot.name.stem !== parsed.stem ? (slot.up ?? slot.down) : slot[parsed.direction];
    if (clash !== undefined) {
      problems.push(
        MigrateError.at(
          'DUPLICATE_VERSION',
          { file: shown(name) },
          `version ${parsed.revision} is also used by ${shown(clash)}. Each version names one migration; renumber one of them.`,
        ),
      );
      continue;
    }
    slot[parsed.direction] = name;
    halves.set(parsed.version, slot);
  }
  for (const { up, down, name } of halves.values()) {
    if (!down)
      problems.push(
        MigrateError.at(
          'MISSING_DOWN',
          { file: shown(up as string) },
          `no matching ${name.stem}.down.sql. Every migration is a pair; a down file with only comments is a deliberate no-op.`,
        ),
      );
    if (!up)
      problems.push(MigrateError.at('MISSING_UP', { file: shown(down as string) }, `no matching ${name.stem}.up.sql.`));
  }
  const versions = new Map<bigint, ParsedName>();
  for (const [v, { name }] of halves) versions.set(v, name);
  return { folder, names, versions, halves, problems, unreadable };
}

/** `.up`/`.down` then `sql`, in any case, with spaces around the dots or more after it. */
const NEAR_MISS = /\.\s*(?:up|down)\s*\.\s*sql/i;

/** What editors, merges and patches leave beside a file: never meant to be a migration. */
const LEFTOVER = /(?:\.(?:orig|bak|rej|swp|swo|tmp)|~)$/i;

/** Why a name is not a migration's, with the name it was probably meant to have. */
function badName(name: string): string {
  const rule =
    'Expected <version>_<description>.up.sql or .down.sql, the version being YYYYMMDD_HHMMSS or digits (20250128_140000_initial_schema.up.sql, 000001_init.up.sql).';
  const meant = name
    .trim()
    .replace(/\s*\.\s*(up|down)\s*\.\s*sql.*$/i, (_m, half: string) => `.${half.toLowerCase()}.sql`);
  if (meant !== name && parseName(meant))
    return `not read as a migration: the runner reads names ending in exactly .up.sql or .down.sql, without spaces around them; rename it ${meant}.`;
  return `not a migration name. ${rule}`;
}

function sameNames(mine: FolderScan, entries: string[]): boolean {
  const theirs = entries.filter((entry) => entry.endsWith('.sql')).sort();
  return theirs.length === mine.names.length && theirs.every((name, i) => name === mine.names[i]);
}

/**
 * Read every file of a scanned folder. Complete pairs become migrations, in version order; a file
 * that cannot be read, or holds a NUL byte, bad UTF-8 or a bad directive, is a problem.
 */
export function readFolder(scan: FolderScan): { migrations: Migration[]; problems: MigrateError[] } {
  const migrations: Migration[] = [];
  const problems: MigrateError[] = [];
  const absolute = prefixOf(scan.folder);
  const shown = prefixOf(displayPath(scan.folder)); // one relative() for the folder, not one per file
  const read = (entry: string | undefined): MigrationFile | undefined => {
    if (entry === undefined || scan.unreadable.has(entry)) return undefined;
    try {
      return readMigrationFile(absolute + entry, shown + entry);
    } catch (error) {
      if (!(error instanceof MigrateError)) throw error;
      problems.push(error);
      return undefined;
    }
  };
  for (const { up, down, name } of scan.halves.values()) {
    const upFile = read(up);
    const downFile = read(down);
    if (!upFile || !downFile) continue;
    migrations.push({
      version: name.version,
      revision: name.revision,
      description: name.description,
      stem: name.stem,
      up: upFile,
      down: downFile,
    });
  }
  migrations.sort((a, b) => (a.version < b.version ? -1 : a.version > b.version ? 1 : 0));
  return { migrations, problems };
}

/**
 * Load the migrations of one dialect, in version order, after checking that every dialect
 * folder present under `dir` holds the same revisions. Throws the first problem found.
 */
export function loadMigrations(dir: string, dialect: Dialect, options: { phases?: boolean } = {}): Migration[] {
  const folder = dialectFolder(dir, dialect);
  const scan = listFolder(folder);
  if (scan.problems[0]) throw scan.problems[0];
  if (folder !== dir) {
    for (const other of DIALECTS) {
      if (other === dialect || !isDirectory(join(dir, other))) continue;
      // The usual case, the same file names on both sides, needs no parsing: mine were checked.
      if (sameNames(scan, readdirSync(join(dir, other)))) continue;
      const theirs = listFolder(join(dir, other));
      if (theirs.problems[0]) throw theirs.problems[0];
      const mismatch = siblingProblems(scan, theirs)[0];
      if (mismatch) throw mismatch;
    }
  }
  const { migrations, problems } = readFolder(scan);
  if (problems[0]) throw problems[0];
  // Running a phase reads the other dialects' up files too: they must say the same (issue #30).
  if (options.phases && folder !== dir) {
    for (const other of DIALECTS) {
      if (other === dialect || !isDirectory(join(dir, other))) continue;
      const mismatch = phaseProblems(migrations, readUps(listFolder(join(dir, other))))[0];
      if (mismatch) throw mismatch;
    }
  }
  return migrations;
}

/** The up files of a scanned folder by version (what phases need of another dialect's folder). */
function readUps(scan: FolderScan): Map<bigint, MigrationFile> {
  const out = new Map<bigint, MigrationFile>();
  const absolute = prefixOf(scan.folder);
  const shown = prefixOf(displayPath(scan.folder));
  for (const [v, { up }] of scan.halves) {
    if (up !== undefined && !scan.unreadable.has(up)) out.set(v, readMigrationFile(absolute + up, shown + up));
  }
  return out;
}

/**
 * A revision's up files must name the same phase in every dialect folder: one release's
 * deploy runs one of them, and `check` proves the phases on both (issue #30).
 */
export function phaseProblems(mine: readonly Migration[], theirs: ReadonlyMap<bigint, MigrationFile>): MigrateError[] {
  const problems: MigrateError[] = [];
  for (const m of mine) {
    const other = theirs.get(m.version);
    if (!other || (other.phase ?? 'pre') === phaseOf(m)) continue;
    const [post, pre] = phaseOf(m) === 'post' ? [m.up, other] : [other, m.up];
    problems.push(
      MigrateError.at(
        'PHASE_MISMATCH',
        { file: pre.path },
        `revision ${m.revision} is post in ${post.path} but pre here (no "-- migrate:phase post"): both dialects' up files must name the same phase. Add "-- migrate:phase post" to this file's leading comments, or remove it from the other.`,
      ),
    );
  }
  return problems;
}

/** Two dialect folders must hold the same revisions under the same descriptions: what differs, mine first. */
export function siblingProblems(mine: FolderScan, theirs: FolderScan): MigrateError[] {
  const problems: MigrateError[] = [];
  const fileOf = (scan: FolderScan, stem: string) => displayPath(join(scan.folder, stem)) + '.up.sql';
  const absent = (scan: FolderScan, name: ParsedName, other: FolderScan) =>
    MigrateError.at(
      'DIALECT_MISMATCH',
      { file: fileOf(scan, name.stem) },
      `revision ${name.revision} has no counterpart in ${displayPath(other.folder)}/. Every dialect folder holds the same revisions.`,
    );
  for (const [v, name] of mine.versions) {
    const twin = theirs.versions.get(v);
    if (!twin) {
      problems.push(absent(mine, name, theirs));
    } else if (twin.stem !== name.stem) {
      const file = fileOf(mine, name.stem);
      problems.push(
        new MigrateError(
          'DIALECT_MISMATCH',
          `${file} and ${fileOf(theirs, twin.stem)} share a version but not a description. Name them alike.`,
          { where: { file } },
        ),
      );
    }
  }
  for (const [v, name] of theirs.versions) {
    if (!mine.versions.has(v)) problems.push(absent(theirs, name, mine));
  }
  return problems;
}

/** The dialect folders a `new` migration is written into (creating both on a fresh root). */
export function foldersForNew(dir: string): string[] {
  const present = DIALECTS.map((d) => join(dir, d)).filter(isDirectory);
  if (present.length > 0) return present;
  if (isDirectory(dir) && readdirSync(dir).some((f) => f.endsWith('.sql'))) return [dir];
  return DIALECTS.map((d) => join(dir, d));
}
