'use strict';
/**
 * dist/migrate.cjs, the compiled CLI's entry (scripts/build.ts copies this file there). The build
 * makes two bundles of the same CLI:
 *
 *   migrate-bundle.cjs  what `head`, `history`, `stamp`, `sql`, `current` and `new` run: the
 *                       CLI with the runner's core only, run with V8's code cache
 *   migrate-full.cjs    the whole CLI, proof tooling included (check, schema, drift, fleet)
 *
 * A word of the command line that names a command only the full bundle holds picks it (the
 * build fills in FULL_COMMANDS): any word, not only the first, so an option's value can only
 * make a start slower, never run the wrong bundle. Node 20 has no compile cache of its own, and
 * compiling is most of what a no-op start spends over its floor (see bench/): so the bundle a
 * container start runs is small, and comes with a cache. The full one is compiled as node would.
 *
 * V8 takes a cache for any source of the same length and, in release builds, does not verify
 * the cache's checksum: a cache made from other source runs that source's code, and a damaged
 * one can crash the process. So the cache file holds the exact bundle it was made from, and a
 * SHA-256 of V8's data together with the wrapper below; anything that does not match is left
 * aside and the bundle compiled as node would. V8 itself refuses a cache made by another V8 or
 * under other V8 flags.
 *
 * Cache file: bundle length (uint32 LE), the bundle, SHA-256 (32 bytes), V8's data.
 */
const { createHash } = require('node:crypto');
const { readFileSync, renameSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { Script } = require('node:vm');

const FULL_COMMANDS = new Set(/* FULL_COMMANDS */);
const full = process.argv.slice(2).some((word) => FULL_COMMANDS.has(word));
const bundle = `${__dirname}/${full ? 'migrate-full.cjs' : 'migrate-bundle.cjs'}`;
const cacheFile = full ? undefined : `${__dirname}/migrate-bundle.v8cache`;
// The wrapper node gives every CommonJS file, on the bundle's first line so its line numbers hold.
const HEAD = '(function (exports, require, module, __filename, __dirname) {';
const TAIL = '\n})';

const digest = (v8Data) => createHash('sha256').update(HEAD).update(TAIL).update(v8Data).digest();

function readBundle() {
  try {
    return readFileSync(bundle);
  } catch (error) {
    process.stderr.write(
      `error: ${bundle} cannot be read (${error.code ?? error.message}): dist/migrate.cjs runs it; copy all of dist/, as \`npm run build\` wrote it.\n`,
    );
    process.exit(1);
  }
}

/** The cache for exactly this bundle, or why there is none. */
function cacheFor(source) {
  if (cacheFile === undefined) return { state: 'none' };
  let file;
  try {
    file = readFileSync(cacheFile);
  } catch {
    return { state: 'none' };
  }
  if (file.length < 36) return { state: 'stale' };
  const length = file.readUInt32LE(0);
  const v8Data = file.subarray(4 + length + 32);
  const same =
    length === source.length &&
    source.equals(file.subarray(4, 4 + length)) &&
    digest(v8Data).equals(file.subarray(4 + length, 4 + length + 32));
  return same ? { state: 'given', v8Data } : { state: 'stale' };
}

function compile() {
  const bytes = readBundle();
  const cache = cacheFor(bytes);
  let source = bytes.toString();
  // A shebang is valid only at the very start of a script; node drops it from files it loads.
  if (source.startsWith('#!')) source = `//${source.slice(2)}`;
  const script = new Script(HEAD + source + TAIL, { filename: bundle, cachedData: cache.v8Data });
  const codeCache = cache.state !== 'given' ? cache.state : script.cachedDataRejected ? 'rejected' : 'used';
  return { bytes, script, codeCache };
}

const { bytes, script, codeCache } = compile();

/** For the build, after a run: the cache as it stands, with every function that run compiled. */
function saveCodeCache() {
  if (cacheFile === undefined) return;
  const length = Buffer.alloc(4);
  length.writeUInt32LE(bytes.length);
  const v8Data = script.createCachedData();
  const partial = `${cacheFile}.${process.pid}`;
  writeFileSync(partial, Buffer.concat([length, bytes, digest(v8Data), v8Data]));
  renameSync(partial, cacheFile);
}

/** @type {{ codeCache: 'used' | 'none' | 'stale' | 'rejected', saveCodeCache(): void }} */
module.exports = { codeCache, saveCodeCache };

const bundleModule = { exports: {} };
script
  .runInThisContext()
  .call(bundleModule.exports, bundleModule.exports, createRequire(bundle), bundleModule, bundle, __dirname);
