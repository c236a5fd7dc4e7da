/**
 * The CLI's help: one entry per command in {@link HELP} (what `<command> --help` and
 * `help <command>` print, and its line in the overview), one per option in {@link OPTION_HELP},
 * and the "did you mean" for a mistyped command or option. A new command or option is one entry.
 */
import { ACCEPTED_URLS, DEFAULT_DIR, DEFAULT_TABLE, DEFAULT_URL } from '../runner/core/config.ts';

/** How this CLI was started, for the usage lines: the compiled bundle or the TypeScript source. */
export const SELF = /\.cjs$/.test(process.argv[1] ?? '') ? 'node dist/migrate.cjs' : 'npx tsx scripts/migrate.ts';

/** Each option's lines in a help text, first line `--name …`, continuation lines indented to column 23. */
export const OPTION_HELP: Record<string, string> = {
  url: `--url URL            database URL (default: $MIGRATE_DATABASE_URL, then $DATABASE_URL,
                       then .env, then ${DEFAULT_URL}); several hosts with
                       ?target_session_attrs=read-write: the primary among them (libpq's rules).
                       Commands that write refuse a hot standby (exit 3, STANDBY)`,
  dir: `--dir DIR            migrations root holding postgres/ and sqlite/
                       (default: $MIGRATIONS_DIR or ${DEFAULT_DIR})`,
  table: `--table NAME         record table, schema.table allowed on PostgreSQL
                       (default: $MIGRATIONS_TABLE or ${DEFAULT_TABLE})`,
  wait: `--wait[=SECONDS]     keep retrying the connection until the database answers, and until a
                       primary is promoted during a failover (default 30)`,
  'lock-timeout': `--lock-timeout=SECONDS
                       give up (exit 3) if another runner holds the lock that long
                       (default: wait as long as it takes)`,
  'table-lock-timeout': `--table-lock-timeout=SECONDS
                       longest wait of one attempt for a table lock, so queries queued behind
                       the migration never wait longer (default: $MIGRATE_TABLE_LOCK_TIMEOUT
                       or 1; 0: wait as long as it takes)`,
  'retry-for': `--retry-for=SECONDS  keep retrying a step that timed out on a table lock this long, then
                       exit 3 (default: $MIGRATE_RETRY_FOR or 60)`,
  'statement-timeout': `--statement-timeout=SECONDS
                       longest run of one statement (default: $MIGRATE_STATEMENT_TIMEOUT,
                       else the server's setting). Durations are seconds: 0 (no limit), or
                       0.001 (1 ms) to 2147483.647`,
  'show-blocker-query': '--show-blocker-query also print the query text of the sessions a migration waits on',
  'dry-run': '--dry-run            plan and print the script, change nothing (not even the record table)',
  yes: '--yes, -y            confirm a rollback (or a stamp) that undoes more than one revision',
  strict: '--strict             out-of-order pending revisions are an error, not a warning',
  write: '--write              write DIR/schema/postgres.sql and sqlite.sql instead of printing',
  'scratch-url': "--scratch-url URL    build PostgreSQL's side in a scratch database on that server",
  json: '--json               print one JSON object on stdout instead of text (errors too)',
  'no-data': '--no-data            skip the pass on populated tables',
  seed: `--seed=N             the generated rows' seed (printed; random when not given)`,
  rows: '--rows=N             how many rows per table (default 100, at most 100000)',
  format: `--format=FORMAT      text, json, github (workflow commands: annotations, and a Markdown
                       table of every finding appended to $GITHUB_STEP_SUMMARY), sarif (SARIF
                       2.1.0 for code scanning) or gitlab (Code Quality JSON); default text,
                       github when GITHUB_ACTIONS=true; the counts go to stderr then`,
  'fail-on': '--fail-on=LEVEL      error (default), warning or never: which findings exit 1',
  base: `--base=REF           a revision added since the git ref REF (committed or not) that sorts
                       before the newest revision REF has is an error (ORDER_CONFLICT)`,
  targets: '--targets FILE|-     the databases, one URL a line (# comments; - reads stdin)',
  parallel: '--parallel N         at most N databases in work at once (default 4)',
  canary: '--canary K           the first K databases one at a time first; any failure stops all',
  'on-error': `--on-error=continue|stop
                       after a failure, go on with the others (default) or start no more`,
  phase: `--phase=pre|post     pre: apply the pending revisions except "-- migrate:phase post" ones
                       (default: $MIGRATE_PHASE, else all)`,
  compat: `--compat=FILE        the running release's statements must still prepare and run after
                       every pre revision (COMPAT_BREAK)`,
  help: '--help, -h           this text',
};

type OptionName = keyof typeof OPTION_HELP;

export interface HelpEntry {
  /** What follows the program in the usage line. */
  usage: string;
  /** The command's line(s) in the overview, without its name. */
  summary: string;
  /** What `<command> --help` adds below the usage line. */
  text: string;
  options: readonly OptionName[];
}

const CONNECT: readonly OptionName[] = ['url', 'dir', 'table', 'wait'];

/** Every command; `migrate` stands for the targets (`head`, `base`, `+N`, `-N`, a revision). */
export const HELP: Record<string, HelpEntry> = {
  migrate: {
    usage: '<target> [options]',
    summary: 'head, base, +N, -N or a revision: move the database there',
    text: `Move the database to <target>, one migration at a time, each in its own transaction:
  head                 apply every pending revision, in version order
  base                 roll back every applied revision
  +N                   apply the next N pending revisions
  -N                   roll back the last N applied revisions
  <revision>           make it the last applied: apply up to it, or roll back what follows it
                       (by version, 20250128_140000, full stem, 20250128_140000_initial_schema,
                       or description alone, initial_schema, when one migration has it)
A rollback of more than one revision asks first on a terminal, and needs --yes otherwise.`,
    options: [
      ...CONNECT,
      'lock-timeout',
      'table-lock-timeout',
      'retry-for',
      'statement-timeout',
      'show-blocker-query',
      'dry-run',
      'yes',
      'strict',
      'phase',
      'json',
    ],
  },
  current: {
    usage: 'current [options]',
    summary: 'print the last applied revision, or "base"',
    text: 'Print the last applied revision of the database, or "base" when none is.',
    options: [...CONNECT, 'json'],
  },
  history: {
    usage: 'history [options]',
    summary: 'every revision, oldest first: applied (with time) or pending, and flags',
    text: `Every revision, oldest first: applied (with its time) or pending, flagged
changed (edited since applied), missing (file gone), out of order, or failed.`,
    options: [...CONNECT, 'json'],
  },
  new: {
    usage: 'new <description> [options]',
    summary: 'write an empty up/down pair, same timestamp, in every dialect folder',
    text: `Write an empty pair <timestamp>_<description>.up.sql and .down.sql in every dialect folder.
Never overwrites a file. The description is lowercase letters, digits and _.`,
    options: ['dir', 'json'],
  },
  stamp: {
    usage: 'stamp <target> [options]',
    summary: 'record the database as at <target> without running SQL',
    text: `Record the database as being at <target> without running any SQL (adopting a database
that Alembic or create_all built), and re-record the checksums of the applied files.`,
    options: [...CONNECT, 'lock-timeout', 'yes', 'json'],
  },
  sql: {
    usage: 'sql <target> [options]',
    summary: 'print the script <target> would run (for psql or sqlite3), run nothing',
    text: 'Print, without running it, the exact script <target> would run, for psql or sqlite3.',
    options: [...CONNECT, 'strict', 'json'],
  },
  check: {
    usage: 'check [options]',
    summary: 'validate the folder, and prove every pair on scratch databases',
    text: `Validate the folder; then, on scratch databases (a temporary SQLite file, and a new database
on the --url server when it is postgres://, else an embedded PostgreSQL), prove that every
down undoes its up, that both dialect folders build the same schema, and that every pair
runs on populated tables. A committed DIR/schema/<dialect>.sql is compared with a build.
The database --url names is never changed. Exit 1 when an error is found.`,
    options: ['url', 'dir', 'table', 'json', 'format', 'fail-on', 'base', 'compat', 'no-data', 'seed', 'rows'],
  },
  schema: {
    usage: 'schema [options]',
    summary: 'print the canonical schema each dialect folder builds (--write saves it)',
    text: `Print the canonical schema each dialect folder builds (PostgreSQL's on an embedded
PostgreSQL, or in a scratch database on the --scratch-url server; never in the database
$DATABASE_URL names); --write saves DIR/schema/<dialect>.sql; with --url, the schema of that
database (read-only: nothing written or created there).`,
    options: ['url', 'dir', 'table', 'json', 'write', 'scratch-url'],
  },
  drift: {
    usage: 'drift [options]',
    summary: 'compare the database with what the revisions its record lists build',
    text: `Compare the database with what the revisions its record lists build (read-only: nothing
written there, nor created on its server unless --scratch-url names it; exit 1 when they
differ). Built on an embedded PostgreSQL, or in a scratch database on the --scratch-url server.`,
    options: [...CONNECT, 'json', 'scratch-url'],
  },
  fleet: {
    usage: 'fleet <target> --targets FILE [options]',
    summary: 'apply <target> on every database FILE lists; `fleet status`: where each is',
    text: `Apply <target> on every database FILE lists (one URL a line, # comments; - reads stdin), each
as a single run would; one line per database as it finishes, then totals (docs/fleet.md).
\`fleet status --targets FILE\`: how many of those databases stand at each revision (read-only).
Exit: 130 interrupted, else 1 a migration failed on any database, else 3 any database could not
be reached, locked or refused, else 0 (fleet status: 3 when any could not be read).`,
    options: ['dir', 'table', 'targets', 'parallel', 'canary', 'on-error', 'lock-timeout', 'yes', 'json'],
  },
  help: {
    usage: 'help [<command>]',
    summary: 'this overview, or one command’s options',
    text: 'Print the overview, or the usage and options of one command (the same as <command> --help).',
    options: [],
  },
};

const EXIT_CODES = `Exit codes: 0 done, 1 a migration failed (check: a problem was found; drift: the database
differs), 2 usage or validation error (nothing changed), 3 the database could not be reached
or the lock was not taken in time, 130 check, schema or drift interrupted (Ctrl-C; its
scratch databases and schemas were removed).`;

function optionLines(names: readonly OptionName[]): string {
  // Each entry's continuation lines are indented to where its first line's text starts, after this prefix.
  return names.map((n) => `  ${OPTION_HELP[n] as string}`).join('\n');
}

/** The overview: every command's line, the options every command shares, exit codes, URLs. */
export function usage(): string {
  const lines = Object.entries(HELP)
    .filter(([name]) => name !== 'migrate')
    .map(([, h]) => {
      const head = h.usage.replace(/ \[options\]$/, '');
      // A long usage takes a line of its own, the summary goes under it.
      return head.length > 19 ? `  ${head}\n  ${' '.repeat(21)}${h.summary}` : `  ${head.padEnd(19)}  ${h.summary}`;
    });
  return `Usage: ${SELF} <target | command> [options]

Targets (move the database; see \`head --help\`):
  head, base, +N, -N, <revision>

Commands:
${lines.join('\n')}

Options every command that opens a database takes:
${optionLines(['url', 'dir', 'table', 'json'])}
  \`<command> --help\` (or \`help <command>\`) lists each command's own options.

${EXIT_CODES}

Database URLs accepted:
  ${ACCEPTED_URLS.join('\n  ')}`;
}

/** One command's help: its usage line, what it does, and every option it takes. */
export function commandHelp(name: string): string {
  const h = HELP[name] as HelpEntry;
  const options = h.options.length > 0 ? `\n\nOptions:\n${optionLines([...h.options, 'help'])}` : '';
  return `Usage: ${SELF} ${h.usage}\n\n${h.text}${options}`;
}

/** The usage line of one command, for an error about its arguments. */
export function usageLine(name: string): string {
  return `Usage: ${SELF} ${(HELP[name] as HelpEntry).usage}`;
}

/**
 * The candidate closest to `word` when it is close enough to be a slip of the fingers
 * (optimal string alignment distance: a swap of two neighbours counts once).
 */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  const allowed = Math.max(1, Math.floor(word.length / 3));
  return bestDistance <= allowed ? best : undefined;
}

function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) (d[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    const row = d[i] as number[];
    const up = d[i - 1] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        row[j] = Math.min(row[j] as number, ((d[i - 2] as number[])[j - 2] as number) + 1);
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}
