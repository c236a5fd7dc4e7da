/**
 * `npm run build [-- --outdir DIR]`: the compiled CLI, in dist/ unless told otherwise (DIR must
 * reach this project's node_modules, as dist/ does: better-sqlite3 stays there).
 *
 *   migrate.cjs             the entry (scripts/bundle-loader.cjs): `node dist/migrate.cjs head`
 *   migrate-bundle.cjs      the CLI with the runner's core, postgres.js and dotenv in one
 *                           CommonJS file: what head, history, stamp, sql, current and new run;
 *                           better-sqlite3, a native module, stays in node_modules
 *   migrate-bundle.v8cache  V8's code cache for that bundle
 *   migrate-full.cjs        the whole CLI, proof tooling and fleet included: what check, schema,
 *                           drift and fleet run (the entry picks it by the command line)
 *
 * One file because node 20 loads ES modules one by one (about 1 ms each); two, because a start
 * compiles every byte of the file it loads (issue #23: 525 KB with the proof tooling, 3 ms more
 * for a no-op `head`); a code cache because compiling the small one is most of what is left of
 * a no-op start over its floor. The cache holds
 * the functions that no-op runs compiled, so the build makes them: `head` on a scratch SQLite
 * file and on an embedded PostgreSQL (PGlite), each applying a scratch folder first. Those runs
 * are also the build's smoke test: if the CLI cannot migrate, the build fails. Only a missing
 * PGlite is a warning (the cache then lacks what PostgreSQL starts compile).
 * No type check here: `npm run typecheck` does that.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build, type BuildOptions, type Plugin } from 'esbuild';
import { serveEmbeddedPostgres } from './embedded-postgres.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { outdir: { type: 'string' } } });
const outdir = resolve(values.outdir ?? join(root, 'dist'));
const OUTPUTS = ['migrate.cjs', 'migrate-bundle.cjs', 'migrate-bundle.v8cache', 'migrate-full.cjs'];
/**
 * What only the full bundle holds: the modules scripts/migrate.ts imports lazily for them, and
 * the commands that load each. In the small bundle each is a module that fails if ever reached.
 */
const FULL_ONLY: Record<string, string[]> = {
  './check-command.ts': ['check'],
  './schema-commands.ts': ['schema', 'drift'],
  './fleet.ts': ['fleet'],
};
/** What of the runner the small bundle may hold: the folders `head` loads (docs/architecture.md). */
const CORE_ONLY = /^runner\/(?!core\/|index\.ts$)/;
const entry = join(outdir, 'migrate.cjs');
const RUN_LIMIT_MS = 60_000;

/** What stops the build: printed as `build: <message>`, exit 1. */
class BuildFailed extends Error {}
const fail = (message: string): never => {
  throw new BuildFailed(message);
};

async function main(): Promise<void> {
  await bundle();
  const scratch = mkdtempSync(join(tmpdir(), 'sql-migrate-build-'));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      rmSync(scratch, { recursive: true, force: true });
      discardOutputs();
      process.exit(130);
    });
  }
  try {
    await makeCodeCache(scratch);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  // What was built, and how to run it: a build that says nothing leaves the user guessing (issue #26).
  const shown = (file: string) => relative(process.cwd(), join(outdir, file)) || file;
  const sizes = OUTPUTS.map((f) => `  ${shown(f)}  ${Math.round(statSync(join(outdir, f)).size / 1024)} KB`);
  process.stdout.write(
    `built the compiled CLI:\n${sizes.join('\n')}\nrun it with: node ${shown('migrate.cjs')} --help\n`,
  );
}

async function bundle(): Promise<void> {
  const common: BuildOptions & { metafile: true } = {
    entryPoints: [join(root, 'scripts', 'migrate.ts')],
    // The metafile names inputs from here: CORE_ONLY matches them wherever the build is run from.
    absWorkingDir: root,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['better-sqlite3'],
    logLevel: 'warning',
    metafile: true,
  };
  const full = await build({ ...common, outfile: join(outdir, 'migrate-full.cjs') });
  const small = await build({ ...common, outfile: join(outdir, 'migrate-bundle.cjs'), plugins: [fullOnly] });
  // The loader runs the bundles as vm scripts, which have no import(): esbuild turns the bundled
  // ones into require(), but one of a module left outside (node's own) would stay and throw.
  for (const [file, input] of Object.entries(full.metafile.inputs)) {
    const dynamic = input.imports.find((i) => i.kind === 'dynamic-import' && i.external);
    if (dynamic)
      fail(
        `${file} imports ${dynamic.path} with import(), which the compiled CLI cannot run: use process.getBuiltinModule() or require().`,
      );
  }
  const tooling = Object.keys(small.metafile.inputs).find((file) => CORE_ONLY.test(file));
  if (tooling)
    fail(
      `the bundle \`head\` runs holds ${tooling}: a command that needs it must load it lazily, from a module listed in FULL_ONLY (scripts/build.ts).`,
    );
  const loader = readFileSync(join(root, 'scripts', 'bundle-loader.cjs'), 'utf8');
  const commands = JSON.stringify(Object.values(FULL_ONLY).flat());
  if (!loader.includes('/* FULL_COMMANDS */')) fail('scripts/bundle-loader.cjs lost its /* FULL_COMMANDS */ mark.');
  writeFileSync(entry, loader.replace('/* FULL_COMMANDS */', commands));
}

/** In the small bundle, each module of FULL_ONLY: reached only if the entry picked the wrong bundle. */
const fullOnly: Plugin = {
  name: 'full-only',
  setup(b) {
    const modules = Object.keys(FULL_ONLY).map((m) => m.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'));
    b.onResolve({ filter: new RegExp(`^(${modules.join('|')})$`) }, (args) =>
      args.importer === join(root, 'scripts', 'migrate.ts') ? { path: args.path, namespace: 'full-only' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'full-only' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`internal: ${args.path} is in migrate-full.cjs only, and dist/migrate.cjs ran migrate-bundle.cjs (commands: ${FULL_ONLY[args.path]?.join(', ')})`)});`,
      loader: 'js',
    }));
  },
};

/**
 * Runs the compiled CLI in a plain node; resolves to what its loader did with the code cache.
 * NODE_OPTIONS passes through: V8 refuses a cache made under other flags, so a build run with
 * the image's NODE_OPTIONS makes the cache its starts accept. With `save`, the run then writes
 * the cache, including what it compiled on top of the cache it started with: so the SQLite
 * run's functions stay in after the PostgreSQL run.
 */
function run(scratch: string, args: string[], save = false): Promise<string> {
  const probe = `const cli = require(process.argv[1]); process.on('exit', (code) => { if (code === 0 && ${save}) cli.saveCodeCache(); process.stderr.write('code cache: ' + cli.codeCache); });`;
  const env = { ...process.env, DATABASE_URL: undefined, MIGRATIONS_DIR: undefined, MIGRATIONS_TABLE: undefined };
  return new Promise((done, failed) => {
    // Asynchronous: the embedded PostgreSQL answers from this process's event loop.
    const child = spawn(process.execPath, ['-e', probe, '--', entry, ...args], {
      cwd: scratch,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: RUN_LIMIT_MS,
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', failed);
    child.on('close', (code, signal) => {
      const state = /code cache: (\w+)$/.exec(stderr);
      if (code === 0 && state) return done(state[1] as string);
      const how = signal
        ? `was stopped by ${signal}${signal === 'SIGTERM' ? ` (over ${RUN_LIMIT_MS / 1000} s?)` : ''}`
        : `exited ${code}`;
      failed(new Error(`\`migrate ${args.join(' ')}\` ${how}: ${stderr.replace(/code cache: \w+$/, '').trim()}`));
    });
  });
}

/** `head` twice: the first applies the scratch folder, the second is the no-op a container start does. */
async function warm(scratch: string, url: string): Promise<void> {
  const args = ['head', '--url', url, '--dir', join(scratch, 'sql')];
  await run(scratch, args);
  await run(scratch, args, true);
}

async function makeCodeCache(scratch: string): Promise<void> {
  for (const dialect of ['postgres', 'sqlite']) {
    const folder = join(scratch, 'sql', dialect);
    mkdirSync(folder, { recursive: true });
    writeFileSync(
      join(folder, '20000101_000000_warm_up.up.sql'),
      'CREATE TABLE warm_up (id integer PRIMARY KEY, note text);\n',
    );
    writeFileSync(join(folder, '20000101_000000_warm_up.down.sql'), 'DROP TABLE warm_up;\n');
  }
  const sqlite = `sqlite:${join(scratch, 'warm.db')}`;
  await warm(scratch, sqlite).catch((error: Error) => fail(`the compiled CLI failed on SQLite: ${error.message}`));
  const pg = await serveEmbeddedPostgres({ maxConnections: 4 }).catch((error: Error) => {
    process.stderr.write(
      `build: no embedded PostgreSQL (${error.message}); the code cache holds what SQLite starts compile only, and PostgreSQL starts are ~3 ms slower.\n`,
    );
    return undefined;
  });
  if (pg) {
    try {
      await warm(scratch, pg.url).catch((error: Error) =>
        fail(`the compiled CLI failed on PostgreSQL (embedded): ${error.message}`),
      );
    } finally {
      await pg.stop();
    }
  }
  // The cache is only worth shipping if a plain start takes it.
  const state = await run(scratch, ['current', '--url', sqlite]).catch((error: Error) => fail(error.message));
  if (state !== 'used') fail(`node did not take the code cache the build made (${state}).`);
}

/** A build that did not finish leaves no compiled CLI rather than a broken one: the Docker entrypoint then runs tsx. */
function discardOutputs(): void {
  for (const file of OUTPUTS) rmSync(join(outdir, file), { force: true });
}

await main().catch((error: unknown) => {
  discardOutputs();
  process.stderr.write(
    `build: ${error instanceof BuildFailed ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\nbuild: failed; nothing left in ${outdir}.\n`,
  );
  process.exitCode = 1;
});
