/**
 * The CLI's options: the help text, parseArgs' table of options, and reading the values it
 * cannot (offsets that look like short flags, durations in seconds, check's data options).
 */
import type { parseArgs } from 'node:util';
import { ACCEPTED_URLS, DEFAULT_DIR, DEFAULT_TABLE, DEFAULT_URL } from '../runner/core/config.ts';
import { MigrateError } from '../runner/core/errors.ts';

/** PostgreSQL's longest timeout (and Node's longest timer), in ms: INT_MAX. */
export const MAX_TIMEOUT_MS = 2_147_483_647;
/** The most rows per table `check --rows` generates: they are held in memory, table by table. */
export const MAX_ROWS = 100_000;

/** How this CLI was started, for the usage line: the compiled bundle or the TypeScript source. */
const SELF = /\.cjs$/.test(process.argv[1] ?? '') ? 'node dist/migrate.cjs' : 'npx tsx scripts/migrate.ts';

export const USAGE = `Usage: ${SELF} <target | command> [options]

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
                       and new databases on the --url server when it is postgres://, else an
                       embedded PostgreSQL), prove every down undoes its up and both dialect
                       folders build the same schema, and compare a committed
                       DIR/schema/<dialect>.sql; nothing runs in the database --url names
  schema               print the canonical schema each dialect folder builds (PostgreSQL's on an
                       embedded PostgreSQL, or in a scratch database on the --scratch-url server;
                       never in the database $DATABASE_URL names); --write saves
                       DIR/schema/<dialect>.sql; with --url, the schema of that database
                       (read-only: nothing written or created there)
  drift                compare the database with what the revisions its record lists build
                       (read-only: nothing written there, nor created on its server unless
                       --scratch-url names it; exit 1 when they differ); built on an
                       embedded PostgreSQL, or in a scratch database on --scratch-url URL
  fleet <target> --targets FILE
                       apply <target> on every database FILE lists (one URL a line, # comments;
                       - reads stdin), each as a single run would; one line per database as it
                       finishes, then totals (docs/fleet.md)
  fleet status --targets FILE
                       how many of those databases stand at each revision (read-only)

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
                       Durations are seconds: 0 (no limit), or 0.001 (1 ms) to 2147483.647.
  --show-blocker-query also print the query text of the sessions a migration waits on
  --dry-run            plan and print the script, change nothing (not even the record table)
  --yes, -y            confirm a rollback (or a stamp) that undoes more than one revision
  --strict             out-of-order pending revisions are an error, not a warning
  --phase=pre|post     pre: apply pending revisions except "-- migrate:phase post" ones, which
                       stay pending until a run after the rollout (head, or --phase=post: all)
                       (default: $MIGRATE_PHASE, else all; docs/docker.md, rolling deploys)
  --write              schema: write DIR/schema/postgres.sql and sqlite.sql instead of printing
  --scratch-url URL    schema, drift: build PostgreSQL's side in a scratch database on that server
  --json               print one JSON object on stdout instead of text (= --format=json)
  --format=FORMAT      check: text, json, github (workflow commands: annotations, and a
                       Markdown table of every finding appended to $GITHUB_STEP_SUMMARY), sarif
                       (SARIF 2.1.0 for code scanning) or gitlab (Code Quality JSON); default
                       text, github when GITHUB_ACTIONS=true; the counts go to stderr then
  --fail-on=LEVEL      check: error (default), warning or never: which findings exit 1
  --base=REF           check: a revision added since the git ref REF (committed or not) that
                       sorts before the newest revision REF has is an error (ORDER_CONFLICT)
  --no-data            check: skip the pass on populated tables
  --seed=N, --rows=N   check: the generated rows' seed (printed; random when not given) and
                       how many per table (default 100, at most ${MAX_ROWS})
  --targets FILE|-     fleet: the databases, one URL a line
  --parallel N         fleet: at most N databases in work at once (default 4)
  --canary K           fleet: the first K databases one at a time first; any failure stops all
  --on-error=continue|stop  fleet: after a failure, go on with the others (default) or start no more
  --compat=FILE        check: FILE holds the running release's PostgreSQL statements ($n
                       parameters, ;-separated); each must still prepare and run after every
                       pre revision (COMPAT_BREAK otherwise)
  --help, -h           this text

Exit codes: 0 done, 1 a migration failed (check: a problem was found; drift: the database
differs), 2 usage or validation
error (nothing changed), 3 the database could not be reached or the lock was not taken in time,
130 check, schema or drift interrupted (Ctrl-C or SIGTERM; its scratch databases were removed).
fleet: 130 interrupted, else 1 a migration failed on any database, else 3 any database could not be
reached, locked or refused, else 0 (fleet status: 3 when any could not be read).

Database URLs accepted:
  ${ACCEPTED_URLS.join('\n  ')}`;

export const OPTIONS = {
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
  format: { type: 'string' },
  'fail-on': { type: 'string' },
  base: { type: 'string' },
  'no-data': { type: 'boolean' },
  seed: { type: 'string' },
  rows: { type: 'string' },
  targets: { type: 'string' },
  parallel: { type: 'string' },
  canary: { type: 'string' },
  'on-error': { type: 'string' },
  phase: { type: 'string' },
  compat: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

/**
 * A duration option in ms. 0 (no limit) or from 1 ms to {@link MAX_TIMEOUT_MS}: a value that
 * would round to 0 ms would silently mean "no limit" on the server, and a larger one fails there
 * only after connecting (#24). Checked before anything connects.
 */
export function seconds(name: string, value: string | undefined, fallback?: number): number | undefined {
  if (value === undefined || value === '') return fallback === undefined ? undefined : fallback * 1000;
  const n = Number(value);
  const ms = n * 1000;
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || (ms > 0 && ms < 1) || ms > MAX_TIMEOUT_MS)
    throw new MigrateError(
      'BAD_OPTION',
      `--${name} takes a number of seconds: 0, or from 0.001 (1 ms) to ${MAX_TIMEOUT_MS / 1000} (PostgreSQL's longest timeout); not "${value}".`,
    );
  return ms;
}

/**
 * `-1` and `+1` are targets, not options: parseArgs would read `-1` as a short flag, so offsets
 * are moved behind `--` first. `--wait` alone means the default wait.
 */
export function splitArgv(argv: string[]): string[] {
  const offsets = argv.filter((a) => /^[+-]\d+$/.test(a));
  const rest = argv.filter((a) => !/^[+-]\d+$/.test(a)).map((a) => (a === '--wait' ? '--wait=' : a));
  return offsets.length > 0 ? [...rest.filter((a) => a !== '--'), '--', ...offsets] : rest;
}

/** `--no-data`, `--seed=N`, `--rows=N` as check's `data` setting. */
export function dataOption(values: Values): false | { seed?: number; rows?: number } {
  if (values['no-data']) return false;
  const whole = (name: 'seed' | 'rows', min: number, max = Number.MAX_SAFE_INTEGER) => {
    const text = values[name];
    if (text === undefined) return {};
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `from ${min} to ${max}`;
      throw new MigrateError('BAD_OPTION', `--${name} takes a whole number (${range}), not "${text}".`);
    }
    return { [name]: n };
  };
  return { ...whole('seed', 0), ...whole('rows', 1, MAX_ROWS) };
}

/** `--phase` (or MIGRATE_PHASE) as the runner's setting; an empty value is none, anything but pre or post exits 2. */
export function phaseOption(text: string | undefined): { phase?: 'pre' | 'post' } {
  if (text === undefined || text === '') return {};
  if (text === 'pre' || text === 'post') return { phase: text };
  throw new MigrateError(
    'BAD_OPTION',
    `--phase takes pre or post, not "${text}" (MIGRATE_PHASE too): pre applies all but "-- migrate:phase post" revisions, post applies everything.`,
  );
}
