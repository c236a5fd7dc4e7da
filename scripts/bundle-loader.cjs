'use strict';
/**
 * dist/migrate.cjs, the compiled CLI's entry (scripts/build.ts copies this file there). It runs
 * migrate-bundle.cjs beside it with V8's code cache for that bundle, made by the build: Node 20
 * has no compile cache of its own, and compiling the bundle is most of what a no-op start
 * spends over its floor (see bench/).
 *
 * V8 accepts a cache for any source of the same length, so the cache file also holds the exact
 * bytes it was made from; a bundle edited or rebuilt since is compiled from scratch, as is one
 * run by another node version or with other V8 flags (V8 refuses the cache itself then).
 * Cache file: source length (uint32 LE), the source, V8's data.
 */
const { readFileSync, renameSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { Script } = require('node:vm');

const bundle = `${__dirname}/migrate-bundle.cjs`;
const cacheFile = `${__dirname}/migrate-bundle.v8cache`;
const source = readFileSync(bundle);

/** @type {'used' | 'none' | 'stale' | 'rejected'} */
let codeCache = 'none';
let cachedData;
try {
  const file = readFileSync(cacheFile);
  const length = file.readUInt32LE(0);
  if (length === source.length && source.equals(file.subarray(4, 4 + length))) cachedData = file.subarray(4 + length);
  else codeCache = 'stale';
} catch {
  // No cache (or an unreadable one): compile as node would.
}

// The wrapper node gives every CommonJS file, on the bundle's first line so its line numbers hold.
const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: bundle, cachedData });
if (cachedData !== undefined) codeCache = script.cachedDataRejected ? 'rejected' : 'used';

/** For the build, after a run: the cache as it stands, with every function that run compiled. */
function saveCodeCache() {
  const length = Buffer.alloc(4);
  length.writeUInt32LE(source.length);
  const partial = `${cacheFile}.${process.pid}`;
  writeFileSync(partial, Buffer.concat([length, source, script.createCachedData()]));
  renameSync(partial, cacheFile);
}

module.exports = { codeCache, saveCodeCache };

const bundleModule = { exports: {} };
script.runInThisContext().call(bundleModule.exports, bundleModule.exports, createRequire(bundle), bundleModule, bundle, __dirname);
