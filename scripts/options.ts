/**
 * The CLI's options: parseArgs' table of options (their help is in help.ts), our own refusal of
 * an unknown or malformed option, and reading the values parseArgs cannot (offsets that look
 * like short flags, durations in seconds, check's data options).
 */
import type { parseArgs } from 'node:util';
import { MigrateError } from '../runner/core/errors.ts';
import { didYouMean } from './help.ts';

/** PostgreSQL's longest timeout (and Node's longest timer), in ms: INT_MAX. */
export const MAX_TIMEOUT_MS = 2_147_483_647;
/** The most rows per table `check --rows` generates: they are held in memory, table by table. */
export const MAX_ROWS = 100_000;

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

/**
 * Refuse an unknown option, a value given to a flag, or a missing value, with our own message
 * (parseArgs' own names neither the way out nor a likely spelling), before anything is opened.
 * `args` as splitArgv left them: everything after a bare `--` is an operand.
 */
export function checkOptions(args: readonly string[], seeHelp: string): void {
  const shorts = new Map(
    Object.entries(OPTIONS).flatMap(([name, o]) => ('short' in o ? [[o.short as string, name] as const] : [])),
  );
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') return;
    if (!arg.startsWith('-') || arg === '-') continue;
    const long = arg.startsWith('--');
    const [written, value] = long ? splitOnce(arg.slice(2)) : [arg.slice(1), undefined];
    const name = long ? written : shorts.get(written);
    const option = name === undefined ? undefined : OPTIONS[name as keyof typeof OPTIONS];
    if (name === undefined || option === undefined) {
      const guess = didYouMean(written.replace(/^-+/, ''), Object.keys(OPTIONS));
      throw new MigrateError(
        'BAD_OPTION',
        `unknown option ${arg}.${guess ? ` Did you mean --${guess}?` : ''} ${seeHelp}`,
      );
    }
    if (option.type === 'boolean' && value !== undefined)
      throw new MigrateError('BAD_OPTION', `--${name} takes no value ("${arg}"). ${seeHelp}`);
    if (option.type === 'string' && value === undefined) {
      const next = args[i + 1];
      if (next === undefined || next === '--' || next.startsWith('--'))
        throw new MigrateError('BAD_OPTION', `--${name} needs a value: --${name}=VALUE. ${seeHelp}`);
      i++;
    }
  }
}

function splitOnce(text: string): [string, string | undefined] {
  const at = text.indexOf('=');
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

export const FORMATS = ['text', 'json', 'github', 'sarif', 'gitlab'] as const;
export type Format = (typeof FORMATS)[number];

/**
 * The format: `--format`, else json for `--json`, else github under GitHub Actions, else text.
 * Commands other than check know text and json only. Here, not in
 * check-command.ts, because every command reads it and `head` must not load check's formats.
 */
export function formatOf(values: Values, env: NodeJS.ProcessEnv, command: string): Format {
  const given = values.format;
  if (given !== undefined && !(FORMATS as readonly string[]).includes(given))
    throw new MigrateError('BAD_OPTION', `--format takes ${FORMATS.join(', ')}, not "${given}".`);
  if (values.json && given !== undefined && given !== 'json')
    throw new MigrateError('BAD_OPTION', `--json is --format=json; it cannot go with --format=${given}.`);
  const format = (given ?? (values.json ? 'json' : undefined)) as Format | undefined;
  if (command !== 'check') {
    if (format !== undefined && format !== 'text' && format !== 'json')
      throw new MigrateError('BAD_OPTION', `--format=${format} is for check; ${command} prints text or json.`);
    return format ?? 'text';
  }
  return format ?? (env.GITHUB_ACTIONS === 'true' ? 'github' : 'text');
}
