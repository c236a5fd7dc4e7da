/**
 * Run the CLI as a user does: a child process, its stdout, stderr and exit code.
 *
 * Through tsx, every start of the CLI costs about 0.4 s of CPU more than the same code as one
 * file (tsx's loader thread and esbuild service, then a transform per module), and the suite
 * starts it some 650 times. So by default the tests run scripts/migrate.ts bundled by esbuild,
 * the transformer tsx itself uses, into one file: the same source, built afresh whenever a file
 * under scripts/ or runner/ changes (its name is their hash), with every package left to
 * node_modules as under tsx. CommonJS, as `npm run build` makes it (a bundle has no import() of
 * its own modules), but run as `migrate.js`, so it names itself as the tsx CLI does.
 * `{ tsx: true }` runs scripts/migrate.ts through tsx itself: the README's own command, which
 * test/compiled.test.ts holds to the same output as both bundles.
 */
import { createHash } from 'node:crypto';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(ROOT, 'scripts', 'migrate.ts');
const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  /** Replaces the inherited DATABASE_URL/MIGRATIONS_* (never leak the developer's own settings into a test). */
  env?: Record<string, string | undefined>;
  input?: string;
  /** Run this compiled CLI (`npm run build`'s dist/migrate.cjs) with plain node instead of scripts/migrate.ts through tsx. */
  compiled?: string;
  /** Arguments for node itself, before the CLI's file: V8 flags, or `-e <code> --`. */
  node?: string[];
  /** Run scripts/migrate.ts through tsx, as the README does, instead of the suite's bundle of it. */
  tsx?: boolean;
}

export function fixture(name: string): string {
  return join(ROOT, 'test', 'fixtures', name, 'sql');
}

export interface RunningCli {
  child: ChildProcess;
  /** What the process has printed on stdout so far. */
  stdout(): string;
  done: Promise<CliResult>;
}

/** Start the CLI and return at once: for races and kills. */
export function startCli(args: string[], options: CliOptions = {}): RunningCli {
  const env: Record<string, string | undefined> = {
    ...process.env,
    DATABASE_URL: undefined,
    MIGRATE_DATABASE_URL: undefined,
    MIGRATIONS_DIR: undefined,
    MIGRATIONS_TABLE: undefined,
    ...options.env,
  };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  let out = '';
  const child = spawn(process.execPath, [...(options.node ?? []), ...cliEntry(options), ...args], {
    cwd: options.cwd ?? ROOT,
    env: env as NodeJS.ProcessEnv,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const done: Promise<CliResult> = new Promise((resolve) =>
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout: out, stderr: err })),
  );
  child.stdin.end(options.input ?? '');
  return { child, stdout: () => out, done };
}

function cliEntry(options: CliOptions): string[] {
  if (options.compiled) return [options.compiled];
  return options.tsx ? ['--import', TSX, CLI] : [testBundle()];
}

/** Where the suite keeps its bundles of the CLI: inside node_modules, so its packages resolve as under tsx. */
const BUNDLES = join(ROOT, 'node_modules', '.cache', 'sql-migrate-tests');
let bundled: string | undefined;

/**
 * scripts/migrate.ts as one file, built once for the sources as they are: the first test
 * process to need it builds it beside its final place and renames it there (a rename is atomic:
 * a process that loses the race keeps the winner's, built from the same files).
 */
export function testBundle(): string {
  if (bundled) return bundled;
  const hash = createHash('sha256');
  for (const file of sources()) hash.update(file).update('\0').update(readFileSync(file)).update('\0');
  const dir = join(BUNDLES, hash.digest('hex').slice(0, 16));
  const file = join(dir, 'migrate.js');
  if (!existsSync(file)) {
    const building = `${dir}.${process.pid}`;
    mkdirSync(BUNDLES, { recursive: true });
    rmSync(building, { recursive: true, force: true });
    buildSync({
      entryPoints: [CLI],
      absWorkingDir: ROOT,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      packages: 'external',
      outfile: join(building, 'migrate.js'),
      logLevel: 'error',
    });
    writeFileSync(join(building, 'package.json'), '{ "type": "commonjs" }\n');
    try {
      renameSync(building, dir);
    } catch {
      rmSync(building, { recursive: true, force: true });
      if (!existsSync(file)) throw new Error(`could not place the CLI's test bundle at ${file}`);
    }
    // Bundles of sources since changed: a day old is long past any run still using one.
    for (const old of readdirSync(BUNDLES)) {
      const path = join(BUNDLES, old);
      if (path !== dir && Date.now() - statSync(path).mtimeMs > 86_400_000)
        rmSync(path, { recursive: true, force: true });
    }
  }
  bundled = file;
  return file;
}

/** Every file the CLI's bundle is built from, and the package file that pins what it imports. */
function sources(): string[] {
  const out = [join(ROOT, 'package.json'), join(ROOT, 'package-lock.json')];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (/\.(ts|cjs|mjs|js|json)$/.test(e.name)) out.push(path);
    }
  };
  walk(join(ROOT, 'scripts'));
  walk(join(ROOT, 'runner'));
  return out;
}

export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, options).done;
}

/** Durations vary from run to run; mask them before comparing text (dbmate's golden tests do the same). */
export function maskDurations(text: string): string {
  return text.replace(/\(\d+ ms\)/g, '(N ms)');
}

/**
 * The CLI on a real pseudo-terminal (`script`), as a person at a shell has it, with `answer`
 * typed once the question is on the screen: a key sent earlier reaches the terminal before the
 * CLI reads it, and Ctrl-C would then be the terminal's, not the CLI's. `stdoutTo`: the CLI's
 * stdout goes to that file, so the terminal shows only its stderr.
 */
export function onTerminal(
  args: string[],
  answer: string,
  options: { stdoutTo?: string; compiled?: string; tsx?: boolean } = {},
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const argv = [process.execPath, ...cliEntry(options), ...args].map((a) => `'${a}'`).join(' ');
    const command = options.stdoutTo ? `${argv} > '${options.stdoutTo}'` : argv;
    const child = execFile(
      'script',
      ['-qec', command, '/dev/null'],
      { env: { ...process.env, DATABASE_URL: '', MIGRATE_DATABASE_URL: '' } },
      (error, stdout) => resolve({ code: error ? Number(error.code ?? 1) : 0, out: stdout }),
    );
    let shown = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      shown += chunk.toString();
      if (shown.includes('[y/N]')) child.stdin?.end(`${answer}\n`);
    });
  });
}
