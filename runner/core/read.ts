/**
 * One migration file: its bytes checked (no NUL, valid UTF-8), decoded and normalised, its
 * directives read, its checksum computed when first asked for.
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { MigrateError } from './errors.ts';
import { namesReadingSetting } from './reading-settings.ts';
import { lineColumn } from './position.ts';

/** One file of a pair, read and checked: what runs, what is hashed, and its directives. */
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
  /** Tables named by `-- migrate:allow-lock <table>: <reason>` lines, with their reasons (used by `check`). */
  allowLocks?: readonly string[];
  /** `-- migrate:phase post` in an up file: run once the rollout is done (absent: `pre`). Issue #30. */
  phase?: Phase;
  /** Tables named by `-- migrate:allow-contract <table>: <reason>` lines (used by `check`). */
  allowContracts?: readonly string[];
}

/** When a revision runs in a rolling deploy: `pre` before the new release rolls out, `post` after. */
export type Phase = 'pre' | 'post';

const KNOWN_DIRECTIVES = new Set([
  'no-transaction',
  'allow-difference',
  'allow-lock',
  'allow-data-loss',
  'allow-fails-on-data',
  'phase',
  'allow-contract',
]);

/** Shared by every file without `allow-difference` lines, rather than an empty array each. */
const NO_REASONS: readonly string[] = Object.freeze([]);

export function normaliseText(raw: string): string {
  const noBom = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  return noBom.includes('\r') ? noBom.replace(/\r\n?/g, '\n') : noBom;
}

export function checksumOf(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * Directives live in the file's leading comment block. A `-- migrate:` line further down is an
 * error rather than ignored: dbmate's `-- migrate:up` / `-- migrate:down` sections would
 * otherwise run both halves at once.
 */
interface Directives {
  transactional: boolean;
  allowDifferences: readonly string[];
  allowLocks: readonly string[];
  phase: Phase;
  allowContracts: readonly string[];
}

function readDirectives(path: string, text: string): Directives {
  let transactional = true;
  // Only lines holding `migrate:` or `no-transaction` can matter: most files hold neither.
  if (!text.includes('migrate:') && !text.includes('no-transaction'))
    return {
      transactional,
      allowDifferences: NO_REASONS,
      allowLocks: NO_REASONS,
      phase: 'pre',
      allowContracts: NO_REASONS,
    };
  const allowDifferences: string[] = [];
  const allowLocks: string[] = [];
  const allowContracts: string[] = [];
  let phase: Phase = 'pre';
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
      throw MigrateError.at(
        'UNKNOWN_DIRECTIVE',
        { file: path, line: i + 1 },
        `unknown directive "-- migrate:${name}". Known: ${[...KNOWN_DIRECTIVES].map((d) => `-- migrate:${d}`).join(', ')}.` +
          (name === 'up' || name === 'down'
            ? ' (dbmate keeps up and down in one file; here they are two files: .up.sql and .down.sql.)'
            : ''),
      );
    }
    if (!inHeader) {
      throw MigrateError.at(
        'MISPLACED_DIRECTIVE',
        { file: path, line: i + 1 },
        `"-- migrate:${name}" must stand in the comment block at the top of the file.`,
      );
    }
    const value = (m[2] as string).trim();
    if (name === 'no-transaction') transactional = false;
    else if (name === 'allow-lock') allowLocks.push(value);
    else if (name === 'allow-difference') allowDifferences.push(value);
    else if (name === 'allow-contract') allowContracts.push(value);
    else if (name === 'phase') phase = phaseValue(value, { file: path, line: i + 1 });
  }
  return {
    transactional,
    allowDifferences,
    allowLocks: allowLocks.length > 0 ? allowLocks : NO_REASONS,
    phase,
    allowContracts: allowContracts.length > 0 ? allowContracts : NO_REASONS,
  };
}

/** `-- migrate:phase pre|post` (issue #30): when a revision runs in a rolling deploy. */
function phaseValue(value: string, where: { file: string; line: number }): Phase {
  if (value === 'pre' || value === 'post') return value;
  throw MigrateError.at(
    'UNKNOWN_DIRECTIVE',
    where,
    `"-- migrate:phase ${value}": the phase is pre (before the new release rolls out, the default) or post (once no replica runs the old release). Write "-- migrate:phase post", or remove the line.`,
  );
}

/** Read, validate and decode one migration file; every failure is a MigrateError naming the path. */
export function readMigrationFile(absPath: string, path: string): MigrationFile {
  // Read and decoded in one native call, the cheapest way to read a file in node.
  const raw = reading(path, () => readFileSync(absPath, 'utf8'));
  // A NUL decodes as U+0000 and invalid UTF-8 as U+FFFD; a text holding neither is valid. Only
  // then are the bytes read again, to tell a written U+FFFD from a bad byte and name its place.
  if (raw.includes('\0') || raw.includes('\uFFFD')) checkBytes(absPath, path);
  const text = normaliseText(raw);
  const d = readDirectives(path, text);
  const setting = namesReadingSetting(text);
  if (setting) {
    const { line, column } = lineColumn(text, setting.offset);
    throw MigrateError.at(
      'READING_SETTING',
      { file: path, line, column },
      `${setting.name} changes how the server reads SQL text, so the runner would read a later file otherwise than the server does. Remove it: the runner keeps standard_conforming_strings on and backslash_quote on in everything it sends.`,
    );
  }
  return new LoadedFile(path, text, d.transactional, d.allowDifferences, d.allowLocks, d.phase, d.allowContracts);
}

/**
 * A NUL ends the text early for SQLite and breaks the PostgreSQL protocol; invalid UTF-8 would
 * be stored as U+FFFD. Both throw, at the first offending byte.
 */
function checkBytes(absPath: string, path: string): void {
  const bytes = reading(path, () => readFileSync(absPath));
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    throw MigrateError.at(
      'NUL_BYTE',
      placeOf(bytes, nul, path),
      'holds a NUL byte (\\0), which no SQL text may contain. Remove it; the file may not be the text it seems.',
    );
  }
  if (!isUtf8(bytes)) {
    throw MigrateError.at(
      'BAD_ENCODING',
      placeOf(bytes, firstBadUtf8(bytes), path),
      'is not valid UTF-8 (this is the first byte that is not). Save the file as UTF-8; a Latin-1 "é" is one such byte.',
    );
  }
}

function reading<T>(path: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    throw MigrateError.at('UNREADABLE_FILE', { file: path }, unreadable(error), error);
  }
}

/** Why reading failed, in words: the path is in the error's location already. */
function unreadable(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'cannot be read: it is a symbolic link whose target does not exist.';
  if (code === 'EISDIR') return 'cannot be read: it is a directory, not a file.';
  if (code === 'EACCES' || code === 'EPERM') return 'cannot be read: permission denied.';
  return `cannot be read: ${(error as Error).message}.`;
}

/** File, line and column of the byte at `index`, counted as the runner counts (BOM and CR aside). */
function placeOf(bytes: Buffer, index: number, file: string): { file: string; line: number; column: number } {
  const before = normaliseText(bytes.subarray(0, index).toString('utf8'));
  return { file, ...lineColumn(before, before.length) };
}

/** Index of the first byte that breaks UTF-8 (called only once `isUtf8` said one does). */
function firstBadUtf8(bytes: Buffer): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    const size =
      b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (size === 0 || i + size > bytes.length) return i;
    if (size > 1 && !isUtf8(bytes.subarray(i, i + size))) return i;
    i += size;
  }
  return bytes.length;
}

/** A class, not an object literal with a getter: one compact shape per file (see docs/performance.md). */
class LoadedFile implements MigrationFile {
  #checksum: string | undefined;
  constructor(
    readonly path: string,
    readonly text: string,
    readonly transactional: boolean,
    readonly allowDifferences: readonly string[],
    readonly allowLocks: readonly string[],
    readonly phase: Phase,
    readonly allowContracts: readonly string[],
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
      ...(this.allowLocks.length > 0 ? { allowLocks: this.allowLocks } : {}),
      ...(this.phase === 'post' ? { phase: this.phase } : {}),
      ...(this.allowContracts.length > 0 ? { allowContracts: this.allowContracts } : {}),
    };
  }
}
