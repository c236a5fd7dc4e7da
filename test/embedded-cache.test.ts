/**
 * The embedded PostgreSQL's dump cache (runner/embedded-cache.ts) under the temp directory:
 * whatever is found there (bytes that are not a dump, a symlink, a folder others may write to)
 * and however writing it fails, `schema` without a server URL still works, and leaves nothing
 * half-written behind. Each test gives the CLI a temp directory of its own (TMPDIR).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDirCache } from '../runner/scratch/embedded-cache.ts';
import { CLI, ROOT, runCli, type CliResult } from './support/cli.ts';

const BOT = join(ROOT, 'sql');
const UID = process.getuid?.() ?? 0;
const made: string[] = [];

/** A temp directory for one test, and the cache folder the runner keeps in it. */
function temp(): { tmp: string; cache: string } {
  const tmp = mkdtempSync(join(tmpdir(), 'mig-cache-'));
  made.push(tmp);
  return { tmp, cache: join(tmp, `sql-migrate-${UID}`) };
}

function schema(tmp: string): Promise<CliResult> {
  return runCli(['schema', '--dir', BOT], { env: { TMPDIR: tmp, DATABASE_URL: 'sqlite::memory:' } });
}

function assertBuilt(r: CliResult): void {
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /built on the embedded PostgreSQL/);
  assert.match(r.stdout, /CREATE TABLE/);
}

/** The cache as `DataDirCache` finds it with `tmp` as the temp directory. */
function openIn(tmp: string): DataDirCache | undefined {
  const before = process.env.TMPDIR;
  process.env.TMPDIR = tmp;
  try {
    return DataDirCache.open();
  } finally {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
  }
}

after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

describe('the embedded PostgreSQL dump cache', () => {
  it('random bytes where the dump is kept (at its name and at the plain tar earlier releases kept): built anyway, replaced by a checked dump, loaded from it next time', async () => {
    const { tmp, cache } = temp();
    mkdirSync(cache, { mode: 0o700 });
    writeFileSync(join(cache, 'pglite-fresh-datadir.tar'), randomBytes(5000));
    writeFileSync(join(cache, 'pglite-fresh-datadir.bin'), randomBytes(5000));
    const first = await schema(tmp);
    assertBuilt(first);
    assert.deepEqual(readdirSync(cache), ['pglite-fresh-datadir.bin']);
    const kept = statSync(join(cache, 'pglite-fresh-datadir.bin'));
    assert.ok(kept.size > 1_000_000, `a dump of ${kept.size} bytes`);
    assert.equal(kept.mode & 0o777, 0o600);
    assert.ok(openIn(tmp)?.read(), 'the new dump checks out');
    const second = await schema(tmp);
    assertBuilt(second);
    assert.equal(second.stdout, first.stdout);
    // Loaded, not made again: the same file.
    assert.equal(statSync(join(cache, 'pglite-fresh-datadir.bin')).ino, kept.ino);
  });

  it('a dump damaged after it was written (a flipped byte, cut short, no header) is refused and removed before PGlite sees it; one another PGlite made is made again', async () => {
    const { tmp, cache } = temp();
    assertBuilt(await schema(tmp));
    const file = join(cache, 'pglite-fresh-datadir.bin');
    const good = readFileSync(file);
    const newline = good.indexOf(0x0a);
    const header = JSON.parse(good.subarray(0, newline).toString()) as Record<string, unknown>;
    const flipped = Buffer.from(good);
    flipped[flipped.length - 100] = (flipped[flipped.length - 100] ?? 0) ^ 0xff;
    const damaged: Record<string, Buffer> = {
      flipped,
      'cut short': good.subarray(0, good.length - 512),
      'no header': good.subarray(newline + 1),
      'another format': Buffer.concat([
        Buffer.from(`${JSON.stringify({ ...header, format: 'x' })}\n`),
        good.subarray(newline + 1),
      ]),
      empty: Buffer.alloc(0),
    };
    for (const [how, bytes] of Object.entries(damaged)) {
      writeFileSync(file, bytes);
      assert.equal(openIn(tmp)?.read(), undefined, how);
      assert.equal(existsSync(file), false, `${how}: removed`);
    }
    writeFileSync(file, good);
    assert.ok(openIn(tmp)?.read(), 'the dump as written checks out');

    const other = `${JSON.stringify({ ...header, version: 'PostgreSQL 17.0 (PGlite 0.0.1)' })}\n`;
    writeFileSync(file, Buffer.concat([Buffer.from(other), good.subarray(newline + 1)]));
    const before = statSync(file).ino;
    assertBuilt(await schema(tmp));
    assert.notEqual(statSync(file).ino, before, 'made again');
    assert.equal(JSON.parse(readFileSync(file).subarray(0, newline).toString()).version, header.version);
  });

  it('the cache folder a dangling symlink: built without a cache, the symlink left alone', async () => {
    const { tmp, cache } = temp();
    const target = join(tmp, 'elsewhere');
    symlinkSync(target, cache);
    assertBuilt(await schema(tmp));
    assert.ok(lstatSync(cache).isSymbolicLink());
    assert.equal(existsSync(target), false);
  });

  it('a cache folder that is a symlink to a folder of ours, open to others, or owned by another user: not used', () => {
    const link = temp();
    const real = join(link.tmp, 'real');
    mkdirSync(real, { mode: 0o700 });
    symlinkSync(real, link.cache);
    assert.equal(openIn(link.tmp), undefined, 'a symlink');

    const open = temp();
    mkdirSync(open.cache, { mode: 0o700 });
    chmodSync(open.cache, 0o750);
    assert.equal(openIn(open.tmp), undefined, 'group bits');

    const file = temp();
    writeFileSync(file.cache, '');
    assert.equal(openIn(file.tmp), undefined, 'a file');

    const ours = temp();
    assert.ok(openIn(ours.tmp), 'made when missing');
    assert.equal(statSync(ours.cache).mode & 0o777, 0o700);
    if (UID === 0) {
      chownSync(ours.cache, 65534, 65534);
      assert.equal(openIn(ours.tmp), undefined, "another user's");
    }
  });

  it('writing the dump fails (the file size limit): built anyway, no partial file left behind', async () => {
    const { tmp, cache } = temp();
    // 10 MB, a quarter of the dump; node ignores SIGXFSZ, so the write fails with EFBIG.
    const r = await limited(['schema', '--dir', BOT], tmp, 10_000);
    assertBuilt(r);
    assert.deepEqual(readdirSync(cache), []);
  });
});

/** The CLI under `ulimit -f blocks` (KiB). */
function limited(args: string[], tmp: string, blocks: number): Promise<CliResult> {
  const tsx = join(ROOT, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs');
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp, DATABASE_URL: 'sqlite::memory:' };
  const child = spawn(
    '/bin/sh',
    ['-c', `ulimit -f ${blocks} && exec "$@"`, 'sh', process.execPath, '--import', tsx, CLI, ...args],
    {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr })));
}
