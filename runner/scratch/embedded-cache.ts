/**
 * The dump of a fresh embedded PostgreSQL (PGlite), kept between runs: initdb in wasm takes
 * 2–9 s, loading its dump 0.3–0.7 s. It lives in a folder of this user's own under the temp
 * directory; anything odd there (a symlink, another owner, group or other bits, a file that does
 * not check out) means no cache this time or a new one, never a failed run.
 *
 * The file is one header line and the tar PGlite dumped. The header holds the tar's length and
 * SHA-256 and the version of the PGlite that made it, and the tar is walked block by block:
 * bytes PGlite cannot read as a tar it retries as gzip, and that failure escapes PGlite's
 * promise and ends the process, so nothing reaches PGlite unchecked; a file that fails is
 * removed and made again.
 */
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const NAME = 'pglite-fresh-datadir.bin';
/** The plain tar earlier releases kept (no header): removed when a checked one is written. */
const LEGACY = 'pglite-fresh-datadir.tar';
const FORMAT = 'sql-migrate pglite dump 1';
/** A header longer than this is not ours. */
const MAX_HEADER = 4096;

interface Header {
  format: string;
  /** `SELECT version()` of the instance dumped: `PostgreSQL 18.6 (PGlite 0.5.14) …`. */
  version: string;
  bytes: number;
  sha256: string;
}

export interface Cached {
  /** The tar, checked, as PGlite's `loadDataDir` takes it. */
  tar: Blob;
  version: string;
}

export class DataDirCache {
  readonly #dir: string;

  private constructor(dir: string) {
    this.#dir = dir;
  }

  /**
   * `<temp>/sql-migrate-<uid>`, made if missing; undefined when it is not a real directory (a
   * symlink, say) owned by this user with no group or other bits, or cannot be looked at.
   */
  static open(): DataDirCache | undefined {
    const uid = process.getuid?.();
    if (uid === undefined) return undefined;
    const dir = join(tmpdir(), `sql-migrate-${uid}`);
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (error) {
      if ((error as { code?: string }).code !== 'EEXIST') return undefined;
    }
    try {
      const st = lstatSync(dir);
      return st.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0 ? new DataDirCache(dir) : undefined;
    } catch {
      return undefined;
    }
  }

  get #file(): string {
    return join(this.#dir, NAME);
  }

  /** The kept dump, if there is one and it checks out; one that does not is removed. */
  read(): Cached | undefined {
    let data: Buffer<ArrayBuffer>;
    try {
      data = readFileSync(this.#file);
    } catch {
      return undefined;
    }
    const cached = parse(data);
    if (cached === undefined) this.drop();
    return cached;
  }

  drop(): void {
    remove(this.#file);
  }

  /** Keep `tar`, made by `version`; a write that fails leaves nothing behind. */
  write(tar: Buffer, version: string): void {
    const header: Header = { format: FORMAT, version, bytes: tar.length, sha256: sha256(tar) };
    // pid and random: another container sharing this temp directory may have our pid.
    const partial = `${this.#file}.${process.pid}.${randomBytes(6).toString('hex')}`;
    try {
      writeFileSync(partial, Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), tar]), {
        mode: 0o600,
        flag: 'wx',
      });
      renameSync(partial, this.#file);
      remove(join(this.#dir, LEGACY));
    } catch {
      // No copy this time (a full disk, say): the instance itself is fine.
      remove(partial);
    }
  }
}

function parse(data: Buffer<ArrayBuffer>): Cached | undefined {
  const end = data.subarray(0, MAX_HEADER).indexOf(0x0a);
  if (end < 0) return undefined;
  let header: Partial<Header> | null;
  try {
    header = JSON.parse(data.subarray(0, end).toString('utf8')) as Partial<Header> | null;
  } catch {
    return undefined;
  }
  const tar = data.subarray(end + 1);
  const version = header?.version;
  const ok =
    header?.format === FORMAT &&
    typeof version === 'string' &&
    header.bytes === tar.length &&
    header.sha256 === sha256(tar) &&
    isTar(tar);
  return ok ? { tar: new Blob([tar]), version } : undefined;
}

/**
 * Whether `data` reads as a POSIX tar to its end: every header block carries `ustar` and a
 * checksum that adds up, sizes walk exactly to the end-of-archive blocks. A file whose header
 * line matches its contents can still hold something else (written by another tool, or by
 * hand), and PGlite would take it for gzip and end the process with Z_DATA_ERROR (#24).
 */
export function isTar(data: Buffer): boolean {
  let at = 0;
  while (at + 512 <= data.length) {
    const block = data.subarray(at, at + 512);
    if (block.every((b) => b === 0)) return at > 0;
    if (block.toString('latin1', 257, 262) !== 'ustar') return false;
    const stored = Number.parseInt(block.toString('latin1', 148, 156).replace(/\0.*$/s, '').trim(), 8);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (block[i] as number);
    if (stored !== sum) return false;
    const size = Number.parseInt(block.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8);
    if (!Number.isSafeInteger(size) || size < 0) return false;
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return false;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function remove(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Already gone, or not ours to remove: nothing more to do.
  }
}
