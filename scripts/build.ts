/**
 * `npm run build [-- --outdir DIR]`: the compiled CLI, in dist/ unless told otherwise.
 *
 *   migrate.cjs             the entry (scripts/bundle-loader.cjs): `node dist/migrate.cjs head`
 *   migrate-bundle.cjs      the CLI, the runner, postgres.js and dotenv in one CommonJS file;
 *                           better-sqlite3, a native module, stays in node_modules
 *   migrate-bundle.v8cache  V8's code cache for the bundle
 *
 * One file because node 20 loads ES modules one by one (about 1 ms each); a code cache because
 * compiling that file is most of what is left of a no-op start over its floor. The cache holds
 * the functions that no-op runs compiled, so the build makes them: `head` on a scratch SQLite
 * file and on an embedded PostgreSQL (PGlite), each applying a scratch folder first. Without
 * the cache the CLI works the same, only slower to start; the build then says why it is missing.
 * No type check here: `npm run typecheck` does that.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { serveEmbeddedPostgres } from './embedded-postgres.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { outdir: { type: 'string' } } });
const outdir = resolve(values.outdir ?? join(root, 'dist'));
const entry = join(outdir, 'migrate.cjs');

await build({
  entryPoints: [join(root, 'scripts', 'migrate.ts')],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['better-sqlite3'],
  outfile: join(outdir, 'migrate-bundle.cjs'),
  logLevel: 'warning',
});
copyFileSync(join(root, 'scripts', 'bundle-loader.cjs'), entry);
rmSync(join(outdir, 'migrate-bundle.v8cache'), { force: true }); // never one made from another bundle

/**
 * Runs the compiled CLI in a plain node. NODE_OPTIONS passes through: V8 refuses a cache made
 * under other flags, so a build run with the image's NODE_OPTIONS makes the cache its starts
 * accept. With `save`, the run then writes the cache, including what it compiled on top of the
 * cache it started with: so the SQLite run's functions stay in after the PostgreSQL run.
 */
function run(args: string[], save: boolean): Promise<void> {
  const saving = `const cli = require(process.argv[1]); process.on('exit', (code) => { if (code === 0) cli.saveCodeCache(); });`;
  const argv = save ? ['-e', saving, '--', entry, ...args] : [entry, ...args];
  const env = { ...process.env, DATABASE_URL: undefined, MIGRATIONS_DIR: undefined, MIGRATIONS_TABLE: undefined };
  return new Promise((done, fail) => {
    // Asynchronous: the embedded PostgreSQL answers from this process's event loop.
    const child = spawn(process.execPath, argv, { cwd: scratch, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', fail);
    child.on('close', (code) => (code === 0 ? done() : fail(new Error(`migrate ${args.join(' ')} exited ${code}: ${stderr.trim()}`))));
  });
}

/** `head` twice: the first applies the scratch folder, the second is the no-op a container start does. */
async function warm(url: string): Promise<void> {
  const args = ['head', '--url', url, '--dir', join(scratch, 'sql')];
  await run(args, false);
  await run(args, true);
}

const scratch = mkdtempSync(join(tmpdir(), 'sql-migrate-build-'));
const missing: string[] = [];
try {
  for (const dialect of ['postgres', 'sqlite']) {
    const folder = join(scratch, 'sql', dialect);
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, '20000101_000000_warm_up.up.sql'), 'CREATE TABLE warm_up (id integer PRIMARY KEY, note text);\n');
    writeFileSync(join(folder, '20000101_000000_warm_up.down.sql'), 'DROP TABLE warm_up;\n');
  }
  await warm(`sqlite:${join(scratch, 'warm.db')}`).catch((error: Error) => missing.push(`SQLite: ${error.message}`));
  const pg = await serveEmbeddedPostgres({ maxConnections: 4 }).catch((error: Error) => {
    missing.push(`embedded PostgreSQL: ${error.message}`);
    return undefined;
  });
  if (pg) {
    try {
      await warm(pg.url).catch((error: Error) => missing.push(`PostgreSQL: ${error.message}`));
    } finally {
      await pg.stop();
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
if (missing.length > 0) {
  process.stderr.write(`build: the code cache lacks what these runs would have compiled (the CLI works, but starts slower):\n  ${missing.join('\n  ')}\n`);
}
