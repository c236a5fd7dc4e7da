/**
 * The CLI: parse argv, read the environment and .env, call the library, print, exit.
 * Only this file touches process.env, the terminal and process.exit (STYLE.md).
 */
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { isatty } from 'node:tty';
// Straight from the modules every run needs, not runner/index.ts: `check` and `new` load their
// own modules only when asked, which keeps a container's no-op start short (see bench/).
import { ACCEPTED_URLS, DEFAULT_DIR, DEFAULT_TABLE, DEFAULT_URL, hideSecrets, parseUrl } from '../runner/config.ts';
import { EXIT, MigrateError, MigrationFailed } from '../runner/errors.ts';
import { migrate, renderScript, stamp, status, type MigrateEvent, type RunnerConfig } from '../runner/migrator.ts';
import { parseTarget, type Step } from '../runner/plan.ts';
import type { CheckResult } from '../runner/check.ts';

/**
 * V8 doubles the young generation each time enough survives a scavenge, and everything the
 * runner loads (every file of the folder) survives: without this a 1000-file run peaks near
 * 80 MiB, mostly empty young-generation pages. V8 reads the flag at each growth, so it works
 * although set after start-up; and it is set only once there is work (loading node:v8 costs
 * ~1.6 ms, a tenth of what a container's no-op start may spend over its floor; see bench/).
 */
let youngGenerationCapped = false;
function capYoungGeneration(): void {
  if (youngGenerationCapped) return;
  youngGenerationCapped = true;
  process.getBuiltinModule('node:v8').setFlagsFromString('--semi-space-growth-factor=1');
}

/** How this CLI was started, for the usage line: the compiled bundle or the TypeScript source. */
const SELF = /\.cjs$/.test(process.argv[1] ?? '') ? 'node dist/migrate.cjs' : 'tsx scripts/migrate.ts';

const USAGE = `Usage: ${SELF} <target | command> [options]

Targets (move the database):
  head                 apply every pending revision, in version order
  base                 roll back every applied revision
  +N                   apply the next N pending revisions
  -N                   roll back the last N applied revisions
  <revision>           make it the last applied: apply up to it, or roll back what follows it
                       (by version, 20250128_140000, or full stem, 20250128_140000_initial_schema)

Commands:
  current              print the last applied revision, or "base"
  history              every revision, oldest first: applied (with time) or pending, and flags
  new <description>    write an empty up/down pair, same timestamp, in every dialect folder
  stamp <target>       record the database as at <target> without running SQL
  sql <target>         print the script <target> would run (for psql or sqlite3), run nothing
  check                validate the folder; then, on scratch databases (a temporary SQLite file,
                       and a new database on the --url server when it is postgres://), prove
                       every down undoes its up and both dialect folders build the same schema
  schema               print the canonical schema each dialect folder builds (PostgreSQL's on a
                       scratch database on the postgres:// server of $DATABASE_URL); --write saves
                       DIR/schema/<dialect>.sql; with --url, the schema of that database (read-only)
  drift                compare the database with what the revisions its record lists build
                       (read-only; exit 1 when they differ)

Options:
  --url URL            database URL (default: $DATABASE_URL, then .env, then ${DEFAULT_URL})
  --dir DIR            migrations root holding postgres/ and sqlite/ (default: $MIGRATIONS_DIR or ${DEFAULT_DIR})
  --table NAME         record table, schema.table allowed on PostgreSQL
                       (default: $MIGRATIONS_TABLE or ${DEFAULT_TABLE})
  --wait[=SECONDS]     keep retrying the connection until the database answers (default 30)
  --lock-timeout=SECONDS  give up (exit 3) if another runner holds the lock that long
                       (default: wait as long as it takes)
  --dry-run            plan and print the script, change nothing (not even the record table)
  --yes, -y            confirm a rollback of more than one revision without asking
  --strict             out-of-order pending revisions are an error, not a warning
  --write              schema: write DIR/schema/postgres.sql and sqlite.sql instead of printing
  --json               print one JSON object on stdout instead of text
  --help, -h           this text

Exit codes: 0 done, 1 a migration failed (check: a problem was found; drift: the database differs), 2 usage or validation
error (nothing changed), 3 the database could not be reached or the lock was not taken in time.

Database URLs accepted:
  ${ACCEPTED_URLS.join('\n  ')}`;

const COMMANDS = new Set(['current', 'history', 'new', 'stamp', 'sql', 'check', 'schema', 'drift']);
const NO_OPERAND = new Set(['current', 'history', 'check', 'schema', 'drift']);

interface Cli {
  json: boolean;
  secrets: string[];
}

/** Every line leaves through here, so a URL's password can never be printed. */
function scrub(cli: Cli, text: string): string {
  return hideSecrets(text, cli.secrets);
}

function say(cli: Cli, text: string): void {
  if (!cli.json) process.stdout.write(scrub(cli, text) + '\n');
}

function warn(cli: Cli, text: string): void {
  process.stderr.write(scrub(cli, text) + '\n');
}

function emitJson(cli: Cli, value: unknown): void {
  if (cli.json)
    process.stdout.write(
      scrub(
        cli,
        JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
      ) + '\n',
    );
}

function seconds(name: string, value: string | undefined, fallback?: number): number | undefined {
  if (value === undefined || value === '') return fallback === undefined ? undefined : fallback * 1000;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0)
    throw new MigrateError('BAD_TARGET', `--${name} takes a number of seconds, not "${value}".`);
  return n * 1000;
}

/**
 * `-1` and `+1` are targets, not options: parseArgs would read `-1` as a short flag, so offsets
 * are moved behind `--` first. `--wait` alone means the default wait.
 */
function splitArgv(argv: string[]): string[] {
  const offsets = argv.filter((a) => /^[+-]\d+$/.test(a));
  const rest = argv.filter((a) => !/^[+-]\d+$/.test(a)).map((a) => (a === '--wait' ? '--wait=' : a));
  return offsets.length > 0 ? [...rest.filter((a) => a !== '--'), '--', ...offsets] : rest;
}

async function askYes(steps: readonly Step[]): Promise<boolean> {
  const downs = steps.filter((s) => s.direction === 'down');
  process.stderr.write(
    `About to roll back ${downs.length} revisions:\n${downs.map((s) => `  ${s.migration.stem}`).join('\n')}\n`,
  );
  // Not import(): the compiled CLI runs as a vm script (dist/migrate.cjs), which has no import().
  const { createInterface } = process.getBuiltinModule('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question('Roll them back? [y/N] ');
    return /^y(es)?$/i.test(answer.trim());
  } catch (error) {
    // Ctrl-C or Ctrl-D at the question is a no, not a failure to report.
    if ((error as { code?: unknown }).code === 'ABORT_ERR') return false;
    throw error;
  } finally {
    rl.close();
  }
}

function stepLine(e: { direction: 'up' | 'down'; revision: string; name: string; durationMs: number }): string {
  return `${e.direction === 'up' ? 'up  ' : 'down'}  ${e.revision}  ${e.name}  (${Math.round(e.durationMs)} ms)`;
}

/** `check: 0 errors, 1 warning; round trips: sqlite 3/3, postgres 3/3; dialects compared at 3 revisions` */
function checkSummary(r: CheckResult): string {
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  const trips = r.roundTrips
    .map((t) => (t.skipped ? `${t.dialect} not run (${t.skipped})` : `${t.dialect} ${t.revisions}/${t.of}`))
    .join(', ');
  const compared = r.compared.skipped
    ? `dialects not compared (${r.compared.skipped})`
    : `dialects compared at ${count(r.compared.revisions, 'revision')}`;
  return `check: ${count(r.errors, 'error')}, ${count(r.warnings, 'warning')}; round trips: ${trips}; ${compared}`;
}

function where(p: { revision: string; name: string } | null): string {
  return p ? `${p.revision} (${p.name})` : 'base';
}

function reportFailure(cli: Cli, error: unknown): number {
  if (error instanceof MigrationFailed) {
    if (cli.json) {
      emitJson(cli, {
        ok: false,
        error: { code: 'MIGRATION_FAILED', message: error.message, ...error.where, ...error.info },
      });
      return error.exitCode;
    }
    const lines = [`error: ${error.headline}`];
    if (error.info.detail) lines.push(`detail: ${error.info.detail}`);
    if (error.info.hint) lines.push(`hint: ${error.info.hint}`);
    const { line, column, sourceLine } = error.where;
    if (line !== undefined && sourceLine !== undefined) {
      const gutter = `${line} | `;
      lines.push(`  ${gutter}${sourceLine}`);
      if (column !== undefined)
        lines.push(`  ${' '.repeat(gutter.length + [...sourceLine].slice(0, column - 1).join('').length)}^`);
    }
    lines.push(
      error.info.statementsRun !== undefined
        ? `${error.where.file} ran outside a transaction: ${error.info.statementsRun} statement(s) took effect and it is recorded as failed. Repair by hand, then run \`stamp\`.`
        : `${error.info.direction === 'up' ? 'Applying' : 'Rolling back'} ${error.info.revision} was rolled back completely.` +
            (error.info.completed.length > 0
              ? ` ${error.info.completed.length} earlier step(s) of this run stay applied.`
              : ''),
    );
    warn(cli, lines.join('\n'));
    return error.exitCode;
  }
  if (error instanceof MigrateError) {
    if (cli.json) emitJson(cli, { ok: false, error: { code: error.code, message: error.message } });
    else warn(cli, `error: ${error.message} [${error.code}]`);
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  if (cli.json) emitJson(cli, { ok: false, error: { code: 'UNEXPECTED', message } });
  else warn(cli, `error: ${message}`);
  return EXIT.migrationFailed;
}

async function main(argv: string[]): Promise<number> {
  const cli: Cli = { json: argv.includes('--json'), secrets: [] };
  try {
    const { values, positionals } = parseArgs({
      args: splitArgv(argv),
      allowPositionals: true,
      strict: true,
      options: {
        url: { type: 'string' },
        dir: { type: 'string' },
        table: { type: 'string' },
        wait: { type: 'string' },
        'lock-timeout': { type: 'string' },
        'dry-run': { type: 'boolean' },
        yes: { type: 'boolean', short: 'y' },
        strict: { type: 'boolean' },
        write: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      say(cli, USAGE);
      return EXIT.ok;
    }
    if (positionals.length === 0) {
      warn(cli, USAGE);
      return EXIT.usage;
    }
    // .env fills gaps only: the real environment wins (dotenv never overrides).
    // dotenv costs ~6 ms to load: only when there is a .env to read (containers rarely have one).
    if (existsSync('.env')) (await import('dotenv')).config({ quiet: true });
    const url = values.url ?? process.env.DATABASE_URL ?? DEFAULT_URL;
    const config: RunnerConfig = {
      url,
      dir: values.dir ?? process.env.MIGRATIONS_DIR ?? DEFAULT_DIR,
      table: values.table ?? process.env.MIGRATIONS_TABLE ?? DEFAULT_TABLE,
      waitMs: seconds('wait', values.wait, values.wait === undefined ? undefined : 30),
      lockTimeoutMs: seconds('lock-timeout', values['lock-timeout']),
      strict: values.strict ?? false,
    };
    const [word, ...args] = positionals as [string, ...string[]];
    const command = COMMANDS.has(word) ? word : 'migrate';
    if (command !== 'migrate') capYoungGeneration(); // a target caps it at its first step
    const operand = command === 'migrate' ? word : args[0];
    const extra = command === 'migrate' ? args : args.slice(1);
    if ((command === 'check' || command === 'schema' || command === 'drift') && args.length > 0)
      throw new MigrateError('BAD_TARGET', `check takes no argument ("${args[0]}"). See --help.`);
    if (!NO_OPERAND.has(command) && operand === undefined) {
      throw new MigrateError(
        'BAD_TARGET',
        `${command} needs ${command === 'new' ? 'a description' : 'a target'}. See --help.`,
      );
    }
    if (extra.length > 0 && command !== 'new')
      throw new MigrateError('BAD_TARGET', `unexpected argument "${extra[0]}". See --help.`);

    if (values['dry-run'] && (command === 'new' || command === 'stamp')) {
      throw new MigrateError(
        'BAD_TARGET',
        `--dry-run does not apply to ${command}, which would change ${command === 'new' ? 'the folder' : 'the record'}; \`sql <target>\` prints what a target would run.`,
      );
    }
    if (command === 'new') {
      const { createMigration } = await import('../runner/create.ts');
      const written = createMigration(config.dir as string, [operand, ...extra].join(' '));
      emitJson(cli, { ok: true, command, files: written });
      for (const f of written) say(cli, `created ${f}`);
      return EXIT.ok;
    }

    const connection = parseUrl(url);
    if (connection.dialect === 'postgres') cli.secrets.push(...connection.secrets);
    if (operand !== undefined) parseTarget(operand); // refuse garbage before anything else happens

    switch (command) {
      case 'current': {
        const s = await status(config);
        emitJson(cli, { ok: true, command, current: s.current });
        say(cli, s.current ? `${s.current.revision} (${s.current.name})` : 'base');
        return EXIT.ok;
      }
      case 'history': {
        const s = await status(config);
        emitJson(cli, { ok: true, command, current: s.current, revisions: s.revisions });
        if (s.revisions.length === 0) say(cli, '(no migrations)');
        const width = Math.max(0, ...s.revisions.map((r) => r.name.length));
        // One write for the whole list: a write per line costs a system call each.
        const lines = s.revisions.map((r) => {
          const state = r.state === 'pending' ? 'pending' : `${r.state} ${r.appliedAt ?? ''}`;
          const flags = r.flags.length > 0 ? `  [${r.flags.join(', ')}]` : '';
          return `${r.revision}  ${r.name.padEnd(width)}  ${state}${flags}`;
        });
        if (lines.length > 0) say(cli, lines.join('\n'));
        return EXIT.ok;
      }
      case 'sql': {
        const script = await renderScript(config, operand as string);
        emitJson(cli, { ok: true, command, script });
        if (!cli.json) process.stdout.write(scrub(cli, script));
        return EXIT.ok;
      }
      case 'check': {
        // Ctrl-C stops between two steps, so that the scratch databases are still removed; a
        // second Ctrl-C ends the process at once.
        const abort = new AbortController();
        const stop = () => abort.abort();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        let result: CheckResult;
        try {
          const { check } = await import('../runner/check.ts');
          result = await check({ url, dir: config.dir, table: config.table }, { signal: abort.signal });
        } catch (error) {
          if (!abort.signal.aborted) throw error;
          warn(cli, 'check: interrupted; its scratch databases were removed.');
          return 130;
        } finally {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        }
        emitJson(cli, { command, ...result });
        for (const f of result.findings) {
          const at =
            f.line === undefined
              ? f.file
              : f.column === undefined
                ? `${f.file}:${f.line}`
                : `${f.file}:${f.line}:${f.column}`;
          say(cli, `${at}: ${f.severity}: ${f.message} [${f.code}]`);
        }
        say(cli, checkSummary(result));
        return result.ok ? EXIT.ok : EXIT.migrationFailed;
      }
      case 'schema':
      case 'drift': {
        const { runSchema, runDrift } = await import('./schema-commands.ts');
        const io = {
          json: cli.json,
          say: (text: string) => say(cli, text),
          emitJson: (value: unknown) => emitJson(cli, value),
          write: (text: string) => process.stdout.write(scrub(cli, text)),
        };
        const common = { url, dir: config.dir as string, table: config.table as string };
        return command === 'schema'
          ? runSchema({ ...common, live: values.url !== undefined, write: values.write ?? false }, io)
          : runDrift(common, io);
      }
      case 'stamp': {
        const r = await stamp(config, operand as string);
        emitJson(cli, { ok: true, command, ...r });
        say(cli, `stamped: the record now lists ${r.recorded.length} revision(s); at ${where(r.current)}`);
        return EXIT.ok;
      }
      default: {
        const dryRun = values['dry-run'] ?? false;
        const result = await migrate(config, operand as string, {
          dryRun,
          // The question and the list go to stderr: with --json, stdout still holds one object.
          // isatty(0), not process.stdin.isTTY: building the stdin stream loads a dozen of node's
          // modules (~1.7 ms), and a no-op start never reads it.
          confirm: values.yes ? () => true : isatty(0) ? askYes : undefined,
          onEvent: (e: MigrateEvent) => {
            if (e.type === 'warning') warn(cli, `warning: ${e.message} [${e.code}]`);
            else {
              capYoungGeneration();
              say(cli, stepLine(e));
            }
          },
        });
        emitJson(cli, { ok: true, command: 'migrate', target: operand, ...result });
        if (dryRun) {
          if (!cli.json)
            process.stdout.write(
              scrub(cli, `-- dry run: nothing was changed. This is what ${operand} would run:\n${result.script ?? ''}`),
            );
          say(cli, `-- would then be at ${where(result.current)}`);
        } else {
          say(
            cli,
            result.steps.length === 0 ? `nothing to do; at ${where(result.current)}` : `at ${where(result.current)}`,
          );
        }
        return EXIT.ok;
      }
    }
  } catch (error) {
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      warn(cli, `error: ${(error as Error).message}\n\n${USAGE}`);
      return EXIT.usage;
    }
    return reportFailure(cli, error);
  }
}

// No top-level await: the compiled CLI is a CommonJS bundle (see scripts/build.ts). Where
// an ES module left pending would exit 13, CommonJS exits 0 once nothing is left to wait for:
// a main that never settled must not pass for success with the Docker entrypoint.
process.exitCode = EXIT.migrationFailed;
void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
