/**
 * The CLI: parse argv, read the environment and .env, call the library, print, exit.
 * Only scripts/ touches process.env, the terminal and process.exit; the library takes values.
 */
import { parseArgs } from 'node:util';
// Straight from the modules every run needs, not runner/index.ts: `check` and `new` load their
// own modules only when asked, which keeps a container's no-op start short (see bench/).
import { DEFAULT_DIR, DEFAULT_TABLE, DEFAULT_URL, parseUrl } from '../runner/core/config.ts';
import { EXIT, MigrateError } from '../runner/core/errors.ts';
import { migrate, planScript, status, type MigrateEvent, type RunnerConfig } from '../runner/core/migrator.ts';
import { stamp } from '../runner/core/stamp.ts';
import { parseTarget } from '../runner/core/plan.ts';
import { describeHolder } from '../runner/core/lock-wait.ts';
import { capYoungGeneration, confirmation, loadEnv, type UrlSource } from './startup.ts';
import {
  checkOptions,
  dataOption,
  formatOf,
  OPTIONS,
  phaseOption,
  seconds,
  splitArgv,
  type Values,
} from './options.ts';
import { commandHelp, didYouMean, HELP, usage, usageLine } from './help.ts';
import {
  type Cli,
  emitJson,
  endQuietlyOnClosedOutput,
  lockLine,
  noteServer,
  reportFailure,
  say,
  sayWhich,
  stepLine,
  warn,
  where,
} from './output.ts';

/** What a command receives: its operand (a target, or `new`'s description) already checked. */
interface Run {
  cli: Cli;
  config: RunnerConfig;
  values: Values;
  operand: string;
}

interface Command {
  operand: 'none' | 'target' | 'words';
  /** What the operand is, for the message when it is missing (default: a target, or a description). */
  needs?: string;
  /** Touches the database named by the URL: say which, once. */
  database: boolean;
  /** What --dry-run could not keep unchanged, for commands that refuse it. */
  writes?: string;
  /** The options of {@link COMMAND_OPTIONS} this command takes; any other one is refused. */
  takes?: readonly CommandOption[];
  run: (r: Run) => Promise<number>;
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
    // A post revision left by `head --phase=pre` waits for the rollout: say so (issue #30).
    const state =
      r.state === 'pending' ? (r.phase === 'post' ? 'pending (post)' : 'pending') : `${r.state} ${r.appliedAt ?? ''}`;
    const flags = r.flags.length > 0 ? `  [${r.flags.join(', ')}]` : '';
    return `${r.revision}  ${r.name.padEnd(width)}  ${state}${flags}`;
  });
  if (lines.length > 0) say(cli, lines.join('\n'));
  return EXIT.ok;
}

async function runSql({ cli, config, operand }: Run): Promise<number> {
  const { script, steps, current } = await planScript(config, operand);
  emitJson(cli, { ok: true, command: 'sql', script, steps });
  // Said in the script too, for whoever reads only the file it was saved to.
  const nothing = steps === 0 ? `-- nothing to do: the database is at ${where(current)}\n` : '';
  if (!cli.json) process.stdout.write(script + nothing);
  if (steps === 0) warn(cli, `sql: nothing to do for ${operand}; at ${where(current)}`);
  return EXIT.ok;
}

async function runNew({ cli, config, operand }: Run): Promise<number> {
  const { createMigration } = await import('../runner/core/create.ts');
  const written = createMigration(config.dir as string, operand);
  emitJson(cli, { ok: true, command: 'new', files: written });
  for (const f of written) say(cli, `created ${f}`);
  return EXIT.ok;
}

async function runStamp({ cli, config, values, operand }: Run): Promise<number> {
  const r = await stamp(config, operand, { confirm: confirmation(values.yes, 'forget') });
  emitJson(cli, { ok: true, command: 'stamp', ...r });
  for (const f of r.forgotten) say(cli, `forgot    ${f.revision}  ${f.name}  (from the record only: no SQL ran)`);
  for (const a of r.added) say(cli, `recorded  ${a.revision}  ${a.name}  (as applied, without running it)`);
  for (const c of r.rerecorded) say(cli, `accepted  ${c.revision}  ${c.name}  (its file as it is now)`);
  say(cli, `stamped: the record now lists ${r.recorded.length} revision(s); at ${where(r.current)}`);
  return EXIT.ok;
}

/**
 * Run a command that builds on scratch databases or schemas with Ctrl-C (or SIGTERM) aborting
 * `signal`: it stops between two steps, so that its scratches are still removed, and the
 * command exits 130. A second Ctrl-C ends the process at once.
 */
async function interruptible(cli: Cli, name: string, fn: (signal: AbortSignal) => Promise<number>): Promise<number> {
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await fn(abort.signal);
  } catch (error) {
    if (!abort.signal.aborted) throw error;
    warn(cli, `${name}: interrupted; its scratch databases were removed.`);
    return 130;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** `check` lives in scripts/check-command.ts (its formats, --fail-on and --base). */
async function runCheck({ cli, config, values }: Run, signal: AbortSignal): Promise<number> {
  const { runCheckCommand } = await import('./check-command.ts');
  const format = formatOf(values, process.env, 'check');
  return runCheckCommand(cli, config, values, format, dataOption(values), signal);
}

/** `schema` and `drift` live in scripts/schema-commands.ts, loaded only when asked for. */
async function runSchemaCommand(
  { cli, config, values }: Run,
  name: 'schema' | 'drift',
  signal: AbortSignal,
): Promise<number> {
  const { runSchema, runDrift } = await import('./schema-commands.ts');
  const io = {
    json: cli.json,
    say: (text: string) => say(cli, text),
    emitJson: (value: unknown) => emitJson(cli, value as object),
    write: (text: string) => process.stdout.write(text),
    signal,
    onServer: config.onServer,
  };
  const common = {
    url: config.url,
    dir: config.dir as string,
    table: config.table as string,
    scratchUrl: values['scratch-url'],
  };
  return name === 'schema'
    ? runSchema({ ...common, live: values.url !== undefined, write: values.write ?? false }, io)
    : runDrift(common, io);
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

/** Every command, with the operand it takes; any other first word is a target (dbmate's and ley's table). */
const COMMANDS: Record<string, Command> = {
  current: { operand: 'none', database: true, run: runCurrent },
  history: { operand: 'none', database: true, run: runHistory },
  new: { operand: 'words', database: false, writes: 'the folder', run: runNew },
  stamp: { operand: 'target', database: true, writes: 'the record', run: runStamp },
  sql: { operand: 'target', database: true, takes: ['phase'], run: runSql },
  check: {
    operand: 'none',
    database: false,
    takes: ['no-data', 'seed', 'rows', 'fail-on', 'base', 'compat'],
    run: (r) => interruptible(r.cli, 'check', (s) => runCheck(r, s)),
  },
  schema: {
    operand: 'none',
    database: false,
    takes: ['write', 'scratch-url'],
    run: (r) => interruptible(r.cli, 'schema', (s) => runSchemaCommand(r, 'schema', s)),
  },
  drift: {
    operand: 'none',
    database: true,
    takes: ['scratch-url'],
    run: (r) => interruptible(r.cli, 'drift', (s) => runSchemaCommand(r, 'drift', s)),
  },
  // scripts/fleet.ts: `fleet <target>` and `fleet status`, both over the --targets databases.
  fleet: {
    operand: 'words',
    needs: 'a target, or status',
    database: false,
    writes: 'every database listed',
    takes: ['targets', 'parallel', 'canary', 'on-error'],
    run: async (r) => (await import('./fleet.ts')).runFleet(r),
  },
};
const MIGRATE: Command = { operand: 'target', database: true, takes: ['phase'], run: runMigrate };

/** The options that mean something to one or two commands only: given to another, exit 2. */
const COMMAND_OPTIONS = [
  'write',
  'scratch-url',
  'no-data',
  'seed',
  'rows',
  'targets',
  'parallel',
  'canary',
  'on-error',
  'fail-on',
  'base',
  'phase',
  'compat',
] as const;
type CommandOption = (typeof COMMAND_OPTIONS)[number];

function refuseForeignOptions(name: string, command: Command, values: Values): void {
  const foreign = COMMAND_OPTIONS.find((o) => values[o] !== undefined && !command.takes?.includes(o));
  if (foreign === undefined) return;
  const owners = Object.entries(COMMANDS).filter(([, c]) => c.takes?.includes(foreign));
  throw new MigrateError(
    'BAD_OPTION',
    `--${foreign} does not apply to ${name}; only ${owners.map(([n]) => n).join(' and ')} take${owners.length === 1 ? 's' : ''} it. See --help.`,
  );
}

/** The operand as the command takes it; a missing or extra one is BAD_TARGET. */
function operandOf(name: string, command: Command, words: string[]): string {
  if (command.operand === 'none') {
    if (words.length > 0)
      throw new MigrateError('BAD_TARGET', `${name} takes no argument ("${words[0]}"). See --help.`);
    return '';
  }
  if (words.length === 0) {
    const what = command.needs ?? (command.operand === 'words' ? 'a description' : 'a target');
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
  if (connection.dialect === 'postgres') cli.secrets.push(...connection.secrets);
  if (connection.dropped.length > 0) {
    const what = connection.dialect === 'postgres' ? 'PostgreSQL connection settings' : 'settings the runner uses';
    warn(
      cli,
      `note: ignored URL option(s) ${connection.dropped.join(', ')}: not ${what} (SQLAlchemy's or its drivers' options, say).`,
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

/** A PostgreSQL URL naming more than one host: the footer then says which one was used. */
function multiHost(url: string): boolean {
  const c = parseUrl(url);
  return c.dialect === 'postgres' && (c.server.host?.length ?? 0) > 1;
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
    onServer: (role) => noteServer(cli, role, multiHost(url)),
    ...phaseOption(values.phase ?? process.env.MIGRATE_PHASE),
    onWait: (e) => {
      const limit = `${Math.round(e.limitMs / 1000)} s`;
      const when = e.elapsedMs < 1000 ? `up to ${limit}` : `${Math.round(e.elapsedMs / 1000)} s of ${limit}`;
      warn(cli, `waiting for ${e.database} (${when}): ${e.reason}`);
    },
    onLockWait: (e) => {
      const limit = e.limitMs === undefined ? 'no --lock-timeout' : `--lock-timeout ${Math.round(e.limitMs / 1000)} s`;
      warn(
        cli,
        `waiting for the migration lock on ${e.database} (${Math.round(e.elapsedMs / 1000)} s so far, ${limit}): held by ${describeHolder(e.holder)}`,
      );
    },
  };
}

/** `help`, `help <command>`, `<command> --help`: the help asked for, on stdout. */
function help(cli: Cli, topic: string | undefined): number {
  if (topic === undefined) {
    say(cli, usage());
    return EXIT.ok;
  }
  const target = /^[+-]?\d/.test(topic) || topic === 'head' || topic === 'base';
  const name = Object.hasOwn(HELP, topic) ? topic : target ? 'migrate' : undefined;
  if (name === undefined) {
    const guess = didYouMean(
      topic,
      Object.keys(HELP).filter((n) => n !== 'migrate'),
    );
    throw new MigrateError(
      'BAD_TARGET',
      `no command "${topic}".${guess ? ` Did you mean "${guess}"?` : ''} Commands: ${Object.keys(COMMANDS).join(', ')}; targets: \`head --help\`.`,
    );
  }
  say(cli, commandHelp(name));
  return EXIT.ok;
}

/**
 * A first word that is not a command is a target, unless it is a slip of the fingers for a
 * command (`histroy`): refused before anything is opened or created, with the likely command.
 */
function targetOrTypo(word: string): true {
  if (/^[+-]?\d/.test(word) || word === 'head' || word === 'base') return true;
  const guess = didYouMean(word, [...Object.keys(COMMANDS), 'help', 'head', 'base']);
  if (guess !== undefined)
    throw new MigrateError('BAD_TARGET', `unknown command "${word}". Did you mean "${guess}"? See --help.`);
  return true;
}

async function main(argv: string[]): Promise<number> {
  const cli: Cli = { json: argv.includes('--json'), secrets: [], about: {} };
  try {
    const args = splitArgv(argv);
    const first = args.find((a) => !a.startsWith('-'));
    const topic = first !== undefined && Object.hasOwn(COMMANDS, first) ? first : 'migrate';
    checkOptions(args, `See \`${topic === 'migrate' ? 'head' : topic} --help\`.`);
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: OPTIONS });
    const [word, ...rest] = positionals;
    if (word === 'help') {
      if (rest.length > 1) throw new MigrateError('BAD_TARGET', `help takes one command ("${rest[1]}"). See --help.`);
      return help(cli, rest[0]);
    }
    if (values.help) return help(cli, word);
    if (word === undefined) {
      if (cli.json) throw new MigrateError('BAD_TARGET', 'no target or command given. See --help.');
      warn(cli, usage());
      return EXIT.usage;
    }
    const named = Object.hasOwn(COMMANDS, word) ? word : undefined;
    if (named === undefined) targetOrTypo(word);
    const command = named === undefined ? MIGRATE : (COMMANDS[named] as Command);
    const operand = operandOf(named ?? 'migrate', command, named === undefined ? positionals : rest);
    refuseForeignOptions(named ?? 'migrate', command, values);
    if (values.format !== undefined) {
      cli.json = formatOf(values, process.env, named ?? 'migrate') === 'json';
    }
    if (values['dry-run'] && command.writes) {
      throw new MigrateError(
        'BAD_OPTION',
        `--dry-run does not apply to ${named}, which would change ${command.writes}; \`sql <target>\` prints what a target would run.`,
      );
    }
    const { url, from } = await loadEnv(values.url, DEFAULT_URL);
    const config = configOf(values, cli, url);
    if (named !== undefined) capYoungGeneration(); // a target caps it at its first step
    // A fleet's databases are listed by --targets, not named by the URL.
    if (named !== 'new' && named !== 'fleet') introduce(cli, url, from, command);
    return await command.run({ cli, config, values, operand });
  } catch (error) {
    const code = reportFailure(cli, error);
    // A usage error ends with the usage line of the command it is about, so the way out is in view.
    if (!cli.json && error instanceof MigrateError && (error.code === 'BAD_OPTION' || error.code === 'BAD_TARGET')) {
      const first = argv.find((a) => !a.startsWith('-'));
      warn(cli, usageLine(first !== undefined && Object.hasOwn(COMMANDS, first) ? first : 'migrate'));
    }
    return code;
  } finally {
    sayWhich(cli);
  }
}

// No top-level await: the compiled CLI is a CommonJS bundle (see scripts/build.ts). Where
// an ES module left pending would exit 13, CommonJS exits 0 once nothing is left to wait for:
// a main that never settled must not pass for success with the Docker entrypoint.
process.exitCode = EXIT.migrationFailed;
endQuietlyOnClosedOutput();
void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
