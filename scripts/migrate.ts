/**
 * The CLI: parse argv, read the environment and .env, call the library, print, exit.
 * Only scripts/ touches process.env, the terminal and process.exit; the library takes values.
 */
import { parseArgs } from 'node:util';
// Straight from the modules every run needs, not runner/index.ts: `check` and `new` load their
// own modules only when asked, which keeps a container's no-op start short (see bench/).
import { ACCEPTED_URLS, DEFAULT_DIR, DEFAULT_TABLE, DEFAULT_URL, hideSecrets, parseUrl } from '../runner/config.ts';
import { EXIT, formatWhere, MigrateError, MigrationFailed } from '../runner/errors.ts';
import { migrate, renderScript, stamp, status, type MigrateEvent, type RunnerConfig } from '../runner/migrator.ts';
import { parseTarget } from '../runner/plan.ts';
import { describeWait, type LockEvent } from '../runner/locks.ts';
import type { CheckResult } from '../runner/check.ts';
import { capYoungGeneration, confirmation, loadEnv, type UrlSource } from './startup.ts';

/** How this CLI was started, for the usage line: the compiled bundle or the TypeScript source. */
const SELF = /\.cjs$/.test(process.argv[1] ?? '') ? 'node dist/migrate.cjs' : 'npx tsx scripts/migrate.ts';

const USAGE = `Usage: ${SELF} <target | command> [options]

Targets (move the database):
  head                 apply every pending revision, in version order
  base                 roll back every applied revision
  +N                   apply the next N pending revisions
  -N                   roll back the last N applied revisions
  <revision>           make it the last applied: apply up to it, or roll back what follows it
                       (by version, 20250128_140000, full stem, 20250128_140000_initial_schema,
                       or description alone, initial_schema, when one migration has it)

Commands:
  current              print the last applied revision, or "base"
  history              every revision, oldest first: applied (with time) or pending, and flags
  new <description>    write an empty up/down pair, same timestamp, in every dialect folder
  stamp <target>       record the database as at <target> without running SQL
  sql <target>         print the script <target> would run (for psql or sqlite3), run nothing
  check                validate the folder; then, on scratch databases (a temporary SQLite file,
                       and a new database on the --url server when it is postgres://, else an
                       embedded PostgreSQL), prove
                       every down undoes its up and both dialect folders build the same schema
  schema               print the canonical schema each dialect folder builds (PostgreSQL's in a
                       scratch schema or database of the postgres:// URL $DATABASE_URL names,
                       else on an embedded PostgreSQL); --write saves
                       DIR/schema/<dialect>.sql; with --url, the schema of that database (read-only)
  drift                compare the database with what the revisions its record lists build
                       (read-only; exit 1 when they differ); --scratch-url URL builds them there

Options:
  --url URL            database URL (default: $DATABASE_URL, then .env, then ${DEFAULT_URL})
  --dir DIR            migrations root holding postgres/ and sqlite/ (default: $MIGRATIONS_DIR or ${DEFAULT_DIR})
  --table NAME         record table, schema.table allowed on PostgreSQL
                       (default: $MIGRATIONS_TABLE or ${DEFAULT_TABLE})
  --wait[=SECONDS]     keep retrying the connection until the database answers (default 30)
  --lock-timeout=SECONDS  give up (exit 3) if another runner holds the lock that long
                       (default: wait as long as it takes)
  --table-lock-timeout=SECONDS  longest wait of one attempt for a table lock, so queries queued
                       behind the migration never wait longer (default: $MIGRATE_TABLE_LOCK_TIMEOUT
                       or 1; 0: wait as long as it takes)
  --retry-for=SECONDS  keep retrying a step that timed out on a table lock this long, then
                       exit 3 (default: $MIGRATE_RETRY_FOR or 60)
  --statement-timeout=SECONDS  longest run of one statement (default: $MIGRATE_STATEMENT_TIMEOUT,
                       else the server's setting)
  --show-blocker-query also print the query text of the sessions a migration waits on
  --dry-run            plan and print the script, change nothing (not even the record table)
  --yes, -y            confirm a rollback (or a stamp) that undoes more than one revision
  --strict             out-of-order pending revisions are an error, not a warning
  --write              schema: write DIR/schema/postgres.sql and sqlite.sql instead of printing
  --json               print one JSON object on stdout instead of text
  --no-data            check: skip the pass on populated tables
  --seed=N, --rows=N   check: the generated rows' seed (printed; random when not given) and
                       how many per table (default 100)
  --help, -h           this text

Exit codes: 0 done, 1 a migration failed (check: a problem was found; drift: the database
differs), 2 usage or validation
error (nothing changed), 3 the database could not be reached or the lock was not taken in time.

Database URLs accepted:
  ${ACCEPTED_URLS.join('\n  ')}`;

const OPTIONS = {
  url: { type: 'string' },
  dir: { type: 'string' },
  table: { type: 'string' },
  wait: { type: 'string' },
  'lock-timeout': { type: 'string' },
  'table-lock-timeout': { type: 'string' },
  'retry-for': { type: 'string' },
  'statement-timeout': { type: 'string' },
  'show-blocker-query': { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  strict: { type: 'boolean' },
  write: { type: 'boolean' },
  'scratch-url': { type: 'string' },
  json: { type: 'boolean' },
  'no-data': { type: 'boolean' },
  seed: { type: 'string' },
  rows: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

interface Cli {
  json: boolean;
  /** The password, for the one place its text could come from elsewhere: an unexpected error. */
  secrets: string[];
  /** Which database, and where its URL came from: fields of every --json object. */
  about: { database?: string; urlFrom?: UrlSource };
}

/** What a command receives: its operand (a target, or `new`'s description) already checked. */
interface Run {
  cli: Cli;
  config: RunnerConfig;
  values: Values;
  operand: string;
}

interface Command {
  operand: 'none' | 'target' | 'words';
  /** Touches the database named by the URL: say which, once. */
  database: boolean;
  /** What --dry-run could not keep unchanged, for commands that refuse it. */
  writes?: string;
  run: (r: Run) => Promise<number>;
}

function say(cli: Cli, text: string): void {
  if (!cli.json) process.stdout.write(text + '\n');
}

function warn(_cli: Cli, text: string): void {
  process.stderr.write(text + '\n');
}

function emitJson(cli: Cli, value: object): void {
  if (cli.json)
    process.stdout.write(
      JSON.stringify({ ...value, ...cli.about }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) + '\n',
    );
}

function seconds(name: string, value: string | undefined, fallback?: number): number | undefined {
  if (value === undefined || value === '') return fallback === undefined ? undefined : fallback * 1000;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0)
    throw new MigrateError('BAD_OPTION', `--${name} takes a number of seconds, not "${value}".`);
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
  // The pass on populated tables on a line of its own, with the seed that reproduces its rows.
  const data = r.data
    ? `data: ${r.data.runs.map((d) => `${d.dialect} ${d.revisions}/${d.of}`).join(', ') || 'not run'} on populated tables (seed ${r.data.seed}, ${r.data.rows} rows per table)`
    : 'data: skipped (--no-data)';
  return `check: ${count(r.errors, 'error')}, ${count(r.warnings, 'warning')}; round trips: ${trips}; ${compared}\n${data}`;
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
        : (error.info.rolledBack
            ? `${error.info.direction === 'up' ? 'Applying' : 'Rolling back'} ${error.info.revision} was rolled back completely.`
            : `${error.where.file} ended the runner's transaction itself before it failed: what it ran up to there is committed, and ${error.info.revision} is not recorded. Repair by hand, then run \`stamp\`.`) +
            (error.info.completed.length > 0
              ? ` ${error.info.completed.length} earlier step(s) of this run stay applied.`
              : ''),
    );
    warn(cli, lines.join('\n'));
    return error.exitCode;
  }
  if (error instanceof MigrateError) {
    const seen = (error as { observation?: object }).observation;
    if (cli.json) emitJson(cli, { ok: false, error: { code: error.code, message: error.message, ...seen } });
    else warn(cli, `error: ${error.message} [${error.code}]`);
    return error.exitCode;
  }
  const message = hideSecrets(error instanceof Error ? error.message : String(error), cli.secrets);
  if (cli.json) emitJson(cli, { ok: false, error: { code: 'UNEXPECTED', message } });
  else warn(cli, `error: ${message}`);
  return EXIT.migrationFailed;
}

async function runCurrent({ cli, config }: Run): Promise<number> {
  const s = await status(config);
  emitJson(cli, { ok: true, command: 'current', current: s.current });
  say(cli, s.current ? `${s.current.revision} (${s.current.name})` : 'base');
  return EXIT.ok;
}

async function runHistory({ cli, config }: Run): Promise<number> {
  const s = await status(config);
  emitJson(cli, { ok: true, command: 'history', current: s.current, revisions: s.revisions });
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

async function runSql({ cli, config, operand }: Run): Promise<number> {
  const script = await renderScript(config, operand);
  emitJson(cli, { ok: true, command: 'sql', script });
  if (!cli.json) process.stdout.write(script);
  return EXIT.ok;
}

async function runNew({ cli, config, operand }: Run): Promise<number> {
  const { createMigration } = await import('../runner/create.ts');
  const written = createMigration(config.dir as string, operand);
  emitJson(cli, { ok: true, command: 'new', files: written });
  for (const f of written) say(cli, `created ${f}`);
  return EXIT.ok;
}

async function runStamp({ cli, config, values, operand }: Run): Promise<number> {
  const r = await stamp(config, operand, { confirm: confirmation(values.yes, 'forget') });
  emitJson(cli, { ok: true, command: 'stamp', ...r });
  say(cli, `stamped: the record now lists ${r.recorded.length} revision(s); at ${where(r.current)}`);
  return EXIT.ok;
}

/** `--no-data`, `--seed=N`, `--rows=N` as check's `data` setting. */
function dataOption(values: Values): false | { seed?: number; rows?: number } {
  if (values['no-data']) return false;
  const whole = (name: 'seed' | 'rows', min: number) => {
    const text = values[name];
    if (text === undefined) return {};
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < min)
      throw new MigrateError('BAD_OPTION', `--${name} takes a whole number (at least ${min}), not "${text}".`);
    return { [name]: n };
  };
  return { ...whole('seed', 0), ...whole('rows', 1) };
}

async function runCheck({ cli, config, values }: Run): Promise<number> {
  // Ctrl-C stops between two steps, so that the scratch databases are still removed; a
  // second Ctrl-C ends the process at once.
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let result: CheckResult;
  try {
    const { check } = await import('../runner/check.ts');
    result = await check(
      { url: config.url, dir: config.dir, table: config.table, data: dataOption(values) },
      { signal: abort.signal },
    );
  } catch (error) {
    if (!abort.signal.aborted) throw error;
    warn(cli, 'check: interrupted; its scratch databases were removed.');
    return 130;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  emitJson(cli, { command: 'check', ...result });
  for (const f of result.findings) say(cli, `${formatWhere(f)}: ${f.severity}: ${f.message} [${f.code}]`);
  for (const t of result.roundTrips)
    if (t.dialect === 'postgres' && t.database) say(cli, `check: postgres on ${t.database}`);
  say(cli, checkSummary(result));
  return result.ok ? EXIT.ok : EXIT.migrationFailed;
}

/** `schema` and `drift` live in scripts/schema-commands.ts, loaded only when asked for. */
async function runSchemaCommand({ cli, config, values }: Run, name: 'schema' | 'drift'): Promise<number> {
  const { runSchema, runDrift } = await import('./schema-commands.ts');
  const io = {
    json: cli.json,
    say: (text: string) => say(cli, text),
    emitJson: (value: unknown) => emitJson(cli, value as object),
    write: (text: string) => process.stdout.write(text),
  };
  const common = { url: config.url, dir: config.dir as string, table: config.table as string };
  return name === 'schema'
    ? runSchema({ ...common, live: values.url !== undefined, write: values.write ?? false }, io)
    : runDrift({ ...common, scratchUrl: values['scratch-url'] }, io);
}

async function runMigrate({ cli, config, values, operand }: Run): Promise<number> {
  const dryRun = values['dry-run'] ?? false;
  const result = await migrate(config, operand, {
    dryRun,
    // The question and the list go to stderr: with --json, stdout still holds one object.
    confirm: confirmation(values.yes, 'roll back'),
    onEvent: (e: MigrateEvent) => {
      if (e.type === 'warning') warn(cli, `warning: ${e.message} [${e.code}]`);
      else if (e.type === 'lock-wait' || e.type === 'progress') lockLine(cli, e);
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
        `-- dry run: nothing was changed. This is what ${operand} would run:\n${result.script ?? ''}`,
      );
    say(cli, `-- would then be at ${where(result.current)}`);
  } else {
    say(cli, result.steps.length === 0 ? `nothing to do; at ${where(result.current)}` : `at ${where(result.current)}`);
  }
  return EXIT.ok;
}

/** One line on stderr per retry or progress note (with --json, the event as a JSON line there: stdout keeps one object). */
function lockLine(cli: Cli, e: LockEvent): void {
  if (cli.json) {
    process.stderr.write(`${JSON.stringify({ event: e.type, ...e, type: undefined })}\n`);
    return;
  }
  if (e.type === 'lock-wait') {
    const retry = `retrying in ${(e.retryInMs / 1000).toFixed(1)} s`;
    warn(cli, `waiting: ${e.revision} attempt ${e.attempt} timed out on ${describeWait(e)}; ${retry}`);
    return;
  }
  const { index } = e;
  const doing = index
    ? `building an index: ${index.phase}, ${index.blocksDone}/${index.blocksTotal} blocks`
    : e.relation || e.holder || (e.blockers?.length ?? 0) > 0
      ? `waiting for ${describeWait(e)}`
      : 'running';
  warn(cli, `still on ${e.revision} after ${Math.round(e.elapsedMs / 1000)} s: ${doing}`);
}

/** Every command, with the operand it takes; any other first word is a target (dbmate's and ley's table). */
const COMMANDS: Record<string, Command> = {
  current: { operand: 'none', database: true, run: runCurrent },
  history: { operand: 'none', database: true, run: runHistory },
  new: { operand: 'words', database: false, writes: 'the folder', run: runNew },
  stamp: { operand: 'target', database: true, writes: 'the record', run: runStamp },
  sql: { operand: 'target', database: true, run: runSql },
  check: { operand: 'none', database: false, run: runCheck },
  schema: { operand: 'none', database: false, run: (r) => runSchemaCommand(r, 'schema') },
  drift: { operand: 'none', database: true, run: (r) => runSchemaCommand(r, 'drift') },
};
const MIGRATE: Command = { operand: 'target', database: true, run: runMigrate };

/** The operand as the command takes it; a missing or extra one is BAD_TARGET. */
function operandOf(name: string, command: Command, words: string[]): string {
  if (command.operand === 'none') {
    if (words.length > 0)
      throw new MigrateError('BAD_TARGET', `${name} takes no argument ("${words[0]}"). See --help.`);
    return '';
  }
  if (words.length === 0) {
    const what = command.operand === 'words' ? 'a description' : 'a target';
    throw new MigrateError('BAD_TARGET', `${name} needs ${what}. See --help.`);
  }
  if (command.operand === 'words') return words.join(' ');
  if (words.length > 1) throw new MigrateError('BAD_TARGET', `unexpected argument "${words[1]}". See --help.`);
  const target = words[0] as string;
  parseTarget(target); // refuse garbage before anything else happens
  return target;
}

/** Says once which database (password hidden) and where its URL came from; notes dropped URL options. */
function introduce(cli: Cli, url: string, from: UrlSource, command: Command): void {
  const connection = parseUrl(url);
  if (connection.dialect === 'postgres') {
    cli.secrets.push(...connection.secrets);
    if (connection.dropped.length > 0)
      warn(
        cli,
        `note: ignored URL option(s) ${connection.dropped.join(', ')}: not PostgreSQL connection settings (SQLAlchemy's or its drivers' options, say).`,
      );
  }
  // check opens no database of the URL's: it creates scratch ones, and says itself which server it used.
  if (!command.database) return;
  cli.about = {
    database: connection.dialect === 'sqlite' ? sqliteShown(connection.filename) : connection.display,
    urlFrom: from,
  };
}

/** A file in or under the working directory by its relative path: the same run reads the same from any checkout. */
function sqliteShown(filename: string): string {
  if (filename === ':memory:') return 'sqlite::memory:';
  const { isAbsolute, relative, resolve } = process.getBuiltinModule('node:path');
  const inside = relative(process.cwd(), resolve(filename));
  return `sqlite:${inside.startsWith('..') || isAbsolute(inside) ? resolve(filename) : inside}`;
}

/** Last on stderr, after the outcome: the first line stays the one that matters (an error, say). */
function sayWhich(cli: Cli): void {
  const { database, urlFrom } = cli.about;
  if (!cli.json && database)
    warn(cli, `database: ${database} (${urlFrom === 'default' ? 'the default' : `from ${urlFrom}`})`);
}

function configOf(values: Values, cli: Cli, url: string): RunnerConfig {
  return {
    url,
    dir: values.dir ?? process.env.MIGRATIONS_DIR ?? DEFAULT_DIR,
    table: values.table ?? process.env.MIGRATIONS_TABLE ?? DEFAULT_TABLE,
    waitMs: seconds('wait', values.wait, values.wait === undefined ? undefined : 30),
    lockTimeoutMs: seconds('lock-timeout', values['lock-timeout']),
    tableLockTimeoutMs: seconds(
      'table-lock-timeout',
      values['table-lock-timeout'] ?? process.env.MIGRATE_TABLE_LOCK_TIMEOUT,
    ),
    retryForMs: seconds('retry-for', values['retry-for'] ?? process.env.MIGRATE_RETRY_FOR),
    statementTimeoutMs: seconds(
      'statement-timeout',
      values['statement-timeout'] ?? process.env.MIGRATE_STATEMENT_TIMEOUT,
    ),
    showBlockerQuery: values['show-blocker-query'] ?? false,
    strict: values.strict ?? false,
    onWait: (e) => {
      const limit = `${Math.round(e.limitMs / 1000)} s`;
      const when = e.elapsedMs < 1000 ? `up to ${limit}` : `${Math.round(e.elapsedMs / 1000)} s of ${limit}`;
      warn(cli, `waiting for ${e.database} (${when}): ${e.reason}`);
    },
  };
}

async function main(argv: string[]): Promise<number> {
  const cli: Cli = { json: argv.includes('--json'), secrets: [], about: {} };
  try {
    const { values, positionals } = parseArgs({ args: splitArgv(argv), allowPositionals: true, options: OPTIONS });
    if (values.help) {
      say(cli, USAGE);
      return EXIT.ok;
    }
    const [word, ...rest] = positionals;
    if (word === undefined) {
      warn(cli, USAGE);
      return EXIT.usage;
    }
    const named = Object.hasOwn(COMMANDS, word) ? word : undefined;
    const command = named === undefined ? MIGRATE : (COMMANDS[named] as Command);
    const operand = operandOf(named ?? 'migrate', command, named === undefined ? positionals : rest);
    if (values['dry-run'] && command.writes) {
      throw new MigrateError(
        'BAD_OPTION',
        `--dry-run does not apply to ${named}, which would change ${command.writes}; \`sql <target>\` prints what a target would run.`,
      );
    }
    const from = await loadEnv(values.url);
    const url = values.url ?? process.env.DATABASE_URL ?? DEFAULT_URL;
    const config = configOf(values, cli, url);
    if (named !== undefined) capYoungGeneration(); // a target caps it at its first step
    if (named !== 'new') introduce(cli, url, from, command);
    return await command.run({ cli, config, values, operand });
  } catch (error) {
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      warn(cli, `error: ${(error as Error).message} [BAD_OPTION]\n\n${USAGE}`);
      return EXIT.usage;
    }
    return reportFailure(cli, error);
  } finally {
    sayWhich(cli);
  }
}

// No top-level await: the compiled CLI is a CommonJS bundle (see scripts/build.ts). Where
// an ES module left pending would exit 13, CommonJS exits 0 once nothing is left to wait for:
// a main that never settled must not pass for success with the Docker entrypoint.
process.exitCode = EXIT.migrationFailed;
void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
