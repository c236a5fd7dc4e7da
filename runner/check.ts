/**
 * `check`: prove that the folder is sound, that every down undoes its up exactly, and that the
 * dialect folders describe the same schema.
 *
 * 1. Without a database, every file of every dialect folder: names, pairs, the same revisions
 *    in each folder, directives (waivers included), transaction control in a transactional
 *    file, statements PostgreSQL refuses inside a transaction, no-transaction files of several
 *    statements, identifiers longer than PostgreSQL keeps.
 * 2. On scratch databases (a SQLite file always; a PostgreSQL database when the URL names a
 *    server, created and dropped here), through the driver's own `runStep`, revision by
 *    revision: snapshot, up, snapshot, down, compare with the first snapshot, up again, compare
 *    with the second.
 * 3. The two dialects' snapshots after each revision, on what both can express (schema.ts).
 *
 * Findings are returned, never printed; the database the URL names is never touched.
 *
 * @module
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Driver, Statement, StepWork } from './driver.ts';
import { StepFailure } from './driver.ts';
import { MigrateError, type ErrorCode, type MigrationFailed } from './errors.ts';
import { DEFAULT_DIR, DEFAULT_TABLE, DEFAULT_URL, parseUrl, type Connection } from './config.ts';
import {
  DIALECTS,
  dialectFolder,
  displayPath,
  isDirectory,
  loadMigrations,
  parseName,
  readMigrationFile,
  type Dialect,
  type Migration,
  type MigrationFile,
  type ParsedName,
} from './files.ts';
import { openDriver, stepWork, toMigrationFailed } from './migrator.ts';
import type { Step } from './plan.ts';
import { lineColumn } from './position.ts';
import { splitStatements } from './split.ts';
import { compareDialects, compareSnapshots, normaliseSubject, type Difference, type Schema } from './schema.ts';

/** What a finding is about; README.md lists each. */
export type CheckCode =
  // the folder, without a database: first the runner's own refusals, by their codes
  | Extract<
      ErrorCode,
      | 'BAD_FILENAME'
      | 'MISSING_DOWN'
      | 'MISSING_UP'
      | 'DUPLICATE_VERSION'
      | 'UNKNOWN_DIRECTIVE'
      | 'MISPLACED_DIRECTIVE'
      | 'DIALECT_MISMATCH'
      | 'TRANSACTION_CONTROL'
    >
  | 'NEEDS_NO_TRANSACTION'
  | 'ENUM_VALUE_IN_TRANSACTION'
  | 'NO_TRANSACTION_MULTI'
  | 'LONG_IDENTIFIER'
  | 'BAD_WAIVER'
  // on scratch databases
  | 'MIGRATION_FAILED'
  | 'ROUND_TRIP'
  | 'REAPPLY'
  | 'DIALECT_DIFFERENCE'
  | 'UNUSED_WAIVER'
  // the committed schema files (<dir>/schema/<dialect>.sql)
  | 'SCHEMA_STALE';

export interface Finding {
  severity: 'error' | 'warning';
  code: CheckCode;
  /** Path as shown to users (relative to the working directory when below it). */
  file: string;
  line?: number;
  column?: number;
  message: string;
  /** For a difference a waiver could accept: what `-- migrate:allow-difference` would name. */
  subject?: string;
}

export interface CheckConfig {
  /**
   * A `postgres://` URL adds the PostgreSQL half: a scratch database is created on that server
   * (the role needs CREATEDB) and dropped afterwards. The database the URL names is not touched.
   * A SQLite URL, or none, checks SQLite on a temporary file only.
   */
  url?: string;
  /** Root of the dialect folders, or a folder holding .sql files directly. Default `sql`. */
  dir?: string;
  /** The record table the scratch databases keep (left out of every comparison). */
  table?: string;
}

export interface CheckOptions {
  /** Stop between two steps; the scratch databases are still removed. */
  signal?: AbortSignal;
}

export interface RoundTrips {
  dialect: Dialect;
  /** Revisions whose up, down and up again ran on the scratch database. */
  revisions: number;
  of: number;
  /** Why the scratch database was not used at all. */
  skipped?: string;
}

export interface CheckResult {
  /** No errors (warnings allowed). */
  ok: boolean;
  errors: number;
  warnings: number;
  findings: Finding[];
  /** The dialect folders checked. */
  dialects: Dialect[];
  roundTrips: RoundTrips[];
  /** Revisions at which the two dialects' schemas were compared. */
  compared: { revisions: number; skipped?: string };
}

/** A `-- migrate:allow-difference <subject>: <reason>` line. */
interface Waiver {
  dialect: Dialect;
  revision: string;
  direction: 'up' | 'down';
  file: string;
  line?: number;
  text: string;
  subject: string;
  used: boolean;
}

interface DialectState {
  dialect: Dialect;
  folder: string;
  revisions: Map<bigint, ParsedName & { up?: string; down?: string }>;
  /** No error in the folder: its migrations may run. */
  runnable: boolean;
  migrations: Migration[];
  works: Map<string, { up: StepWork; down: StepWork }>;
  /** The schema after each revision's up, in order, as far as the round trips got. */
  snapshots: Schema[];
  roundTrips?: RoundTrips;
}

/** Check the folder, and the migrations on scratch databases. Throws only for usage (NO_MIGRATIONS, BAD_URL) and an unreachable server. */
export async function check(config: CheckConfig = {}, options: CheckOptions = {}): Promise<CheckResult> {
  const dir = config.dir ?? DEFAULT_DIR;
  const connection = parseUrl(config.url ?? DEFAULT_URL);
  const findings: Finding[] = [];
  const add = (f: Finding) => findings.push(f);

  const present = DIALECTS.filter((d) => isDirectory(join(dir, d)));
  // A folder of .sql files without dialect folders is the URL's dialect (as for every command).
  const states: DialectState[] = (present.length > 0 ? present : [connection.dialect]).map((dialect) => ({
    dialect,
    folder: dialectFolder(dir, dialect),
    revisions: new Map(),
    runnable: true,
    migrations: [],
    works: new Map(),
    snapshots: [],
  }));

  const waivers: Waiver[] = [];
  for (const s of states) scanFolder(s, add);
  const sameRevisions = compareFolders(states, add);
  for (const s of states) {
    if (!s.runnable) continue;
    loadFolder(s, add);
    for (const m of s.migrations) {
      for (const direction of ['up', 'down'] as const) lintFile(s, m, direction, add, waivers);
    }
  }

  for (const s of states) {
    options.signal?.throwIfAborted();
    const of = s.migrations.length;
    if (!s.runnable) {
      s.roundTrips = { dialect: s.dialect, revisions: 0, of, skipped: `errors in ${displayPath(s.folder)}/` };
    } else if (s.dialect === 'postgres' && connection.dialect !== 'postgres') {
      s.roundTrips = { dialect: s.dialect, revisions: 0, of, skipped: 'no postgres:// URL given' };
    } else {
      const revisions = await withScratch(s.dialect, connection, config.table ?? DEFAULT_TABLE, (driver) =>
        roundTrip(s, driver, waivers, add, options.signal),
      );
      s.roundTrips = { dialect: s.dialect, revisions, of };
    }
  }

  const compared = compareAcross(states, sameRevisions, waivers, add);

  const reachedRoundTrip = new Map(states.map((s) => [s.dialect, s.roundTrips?.revisions ?? 0]));
  const order = new Map((states[0]?.migrations ?? []).map((m, i) => [m.revision, i]));
  for (const w of waivers) {
    if (w.used) continue;
    // Unused only when every comparison that could have used it ran: an up file's waiver may be
    // meant for the dialects' comparison, which needs both round trips to get that far.
    const at =
      states.find((s) => s.dialect === w.dialect)?.migrations.findIndex((m) => m.revision === w.revision) ?? -1;
    const roundTripped = at >= 0 && at < (reachedRoundTrip.get(w.dialect) ?? 0);
    const compareRan = states.length < 2 || (order.get(w.revision) ?? Infinity) < compared.revisions;
    if (roundTripped && (w.direction === 'down' || compareRan)) {
      add({
        severity: 'warning',
        code: 'UNUSED_WAIVER',
        file: w.file,
        ...(w.line === undefined ? {} : { line: w.line }),
        message: `"-- migrate:allow-difference ${w.text}" accepts nothing: no difference named "${w.subject}" appears at this revision. Remove it, or name the difference as check reports it (a difference between the dialects is accepted in an up file of the revision where it first appears).`,
      });
    }
  }

  if (states.every((s) => s.runnable)) {
    const { staleSchemaFindings } = await import('./schema-command.ts');
    findings.push(...(await staleSchemaFindings({ dir, table: config.table, url: config.url })));
  }

  const errors = findings.filter((f) => f.severity === 'error').length;
  return {
    ok: errors === 0,
    errors,
    warnings: findings.length - errors,
    findings,
    dialects: states.map((s) => s.dialect),
    roundTrips: states.map((s) => s.roundTrips as RoundTrips),
    compared,
  };
}

// ---------------------------------------------------------------------------------------------
// The folder, without a database
// ---------------------------------------------------------------------------------------------

/**
 * Names, pairs and directives of one folder, every problem reported rather than the first
 * (the runner's loader, which stops at the first, then loads a folder found clean).
 */
function scanFolder(s: DialectState, add: (f: Finding) => void): void {
  const fail = (f: Omit<Finding, 'severity'>) => {
    s.runnable = false;
    add({ severity: 'error', ...f });
  };
  for (const entry of readdirSync(s.folder).sort()) {
    if (!entry.endsWith('.sql')) continue;
    const full = join(s.folder, entry);
    const file = displayPath(full);
    const parsed = parseName(entry);
    if (!parsed) {
      fail({
        code: 'BAD_FILENAME',
        file,
        message:
          'not a migration name. Expected <version>_<description>.up.sql or .down.sql, the version being YYYYMMDD_HHMMSS or digits (20250128_140000_initial_schema.up.sql, 000001_init.up.sql).',
      });
      continue;
    }
    try {
      readMigrationFile(full);
    } catch (error) {
      if (!(error instanceof MigrateError)) throw error;
      fail(fromMigrateError(error, file));
    }
    const slot = s.revisions.get(parsed.version);
    if (!slot) {
      s.revisions.set(parsed.version, { ...parsed, [parsed.direction]: file });
      continue;
    }
    const clash = slot.stem !== parsed.stem ? (slot.up ?? slot.down) : slot[parsed.direction];
    if (clash !== undefined) {
      fail({
        code: 'DUPLICATE_VERSION',
        file,
        message: `version ${parsed.revision} is also used by ${clash}. Each version names one migration; renumber one of them.`,
      });
    } else {
      slot[parsed.direction] = file;
    }
  }
  for (const r of s.revisions.values()) {
    if (!r.down)
      fail({
        code: 'MISSING_DOWN',
        file: r.up as string,
        message: `no matching ${r.stem}.down.sql. Every migration is a pair; a down file with only comments is a deliberate no-op.`,
      });
    if (!r.up) fail({ code: 'MISSING_UP', file: r.down as string, message: `no matching ${r.stem}.up.sql.` });
  }
}

/** Every dialect folder holds the same revisions, under the same descriptions. */
function compareFolders(states: DialectState[], add: (f: Finding) => void): boolean {
  let same = true;
  for (const a of states) {
    for (const b of states) {
      if (a === b) continue;
      for (const [version, r] of a.revisions) {
        const twin = b.revisions.get(version);
        const file = (r.up ?? r.down) as string;
        if (!twin) {
          same = false;
          add({
            severity: 'error',
            code: 'DIALECT_MISMATCH',
            file,
            message: `revision ${r.revision} has no counterpart in ${displayPath(b.folder)}/. Every dialect folder holds the same revisions.`,
          });
        } else if (twin.stem !== r.stem && a.dialect < b.dialect) {
          same = false;
          add({
            severity: 'error',
            code: 'DIALECT_MISMATCH',
            file,
            message: `shares version ${r.revision} with ${(twin.up ?? twin.down) as string} but not its description. Name them alike.`,
          });
        }
      }
    }
  }
  return same;
}

function loadFolder(s: DialectState, add: (f: Finding) => void): void {
  if (s.revisions.size === 0) return;
  try {
    s.migrations = loadMigrations(s.folder, s.dialect);
  } catch (error) {
    if (!(error instanceof MigrateError)) throw error;
    s.runnable = false;
    add(fromMigrateError(error, displayPath(s.folder)));
  }
}

/** Statements PostgreSQL refuses inside a transaction block. */
const NOT_IN_TRANSACTION: Array<[RegExp, string]> = [
  [/^CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\b/i, 'CREATE INDEX CONCURRENTLY'],
  [/^DROP\s+INDEX\s+CONCURRENTLY\b/i, 'DROP INDEX CONCURRENTLY'],
  [/^REINDEX\b[^;]*\bCONCURRENTLY\b/i, 'REINDEX CONCURRENTLY'],
  [/^ALTER\s+TABLE\b[^;]*\bDETACH\s+PARTITION\b[^;]*\bCONCURRENTLY\b/i, 'DETACH PARTITION CONCURRENTLY'],
  [/^VACUUM\b/i, 'VACUUM'],
  [/^(?:CREATE|DROP)\s+DATABASE\b/i, 'CREATE/DROP DATABASE'],
  [/^(?:CREATE|DROP)\s+TABLESPACE\b/i, 'CREATE/DROP TABLESPACE'],
  [/^ALTER\s+SYSTEM\b/i, 'ALTER SYSTEM'],
];

const ADD_VALUE = /^ALTER\s+TYPE\s+(\S+)\s+ADD\s+VALUE\s+(?:IF\s+NOT\s+EXISTS\s+)?'((?:[^']|'')*)'/i;

/** PostgreSQL keeps the first NAMEDATALEN - 1 = 63 bytes of a name. https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS */
const MAX_IDENTIFIER_BYTES = 63;

function lintFile(
  s: DialectState,
  m: Migration,
  direction: 'up' | 'down',
  add: (f: Finding) => void,
  waivers: Waiver[],
): void {
  const file = m[direction];
  const at = (offset: number) => lineColumn(file.text, offset);
  let work: StepWork | undefined;
  try {
    // The runner's own preparation of a step: its refusal of BEGIN/COMMIT is the check.
    work = stepWork({ direction, migration: m } satisfies Step, s.dialect);
    const pair = s.works.get(m.revision) ?? ({} as { up: StepWork; down: StepWork });
    pair[direction] = work;
    s.works.set(m.revision, pair);
  } catch (error) {
    if (!(error instanceof MigrateError)) throw error;
    s.runnable = false;
    add(fromMigrateError(error, file.path));
  }
  const statements = work?.statements ?? splitStatements(file.text, s.dialect);

  if (file.transactional) {
    statements.forEach((st, i) => {
      const refused =
        s.dialect === 'postgres'
          ? NOT_IN_TRANSACTION.find(([re]) => re.test(st.sql))
          : /^VACUUM\b/i.test(st.sql)
            ? [null, 'VACUUM']
            : undefined;
      if (refused) {
        s.runnable = false;
        add({
          severity: 'error',
          code: 'NEEDS_NO_TRANSACTION',
          file: file.path,
          ...at(st.offset),
          message: `${refused[1]} cannot run inside a transaction, and this file runs in one. Give it a file of its own that starts with "-- migrate:no-transaction".`,
        });
      }
      const added = s.dialect === 'postgres' ? ADD_VALUE.exec(st.sql) : null;
      if (added) {
        const label = added[2] as string;
        const usedLater = statements.slice(i + 1).some((later: Statement) => later.sql.includes(`'${label}'`));
        if (usedLater) s.runnable = false;
        add({
          severity: usedLater ? 'error' : 'warning',
          code: 'ENUM_VALUE_IN_TRANSACTION',
          file: file.path,
          ...at(st.offset),
          message:
            `ALTER TYPE ${added[1]} ADD VALUE '${label}' runs inside this file's transaction: the new label cannot be used before that transaction commits` +
            (usedLater
              ? `, and a later statement of this file uses it, so the file fails. `
              : ` (and before PostgreSQL 12 the statement fails there). `) +
            `Give it a file of its own that starts with "-- migrate:no-transaction", or use the label from the next migration on.`,
        });
      }
    });
  } else if (statements.length > 1) {
    add({
      severity: 'warning',
      code: 'NO_TRANSACTION_MULTI',
      file: file.path,
      ...at((statements[1] as Statement).offset),
      message: `runs outside a transaction with ${statements.length} statements: if one fails, those before it stay applied and the revision is recorded as failed until repaired by hand. Keep such files to one statement where you can.`,
    });
  }

  // Only PostgreSQL cuts names; a long name in a SQLite file shows up as a difference between the dialects.
  const long = new Set<string>();
  for (const id of s.dialect === 'postgres' ? identifiers(file.text, s.dialect) : []) {
    const bytes = Buffer.byteLength(id.name, 'utf8');
    if (bytes <= MAX_IDENTIFIER_BYTES || long.has(id.name)) continue;
    long.add(id.name);
    add({
      severity: 'error',
      code: 'LONG_IDENTIFIER',
      file: file.path,
      ...at(id.offset),
      message: `"${id.name}" is ${bytes} bytes long; PostgreSQL keeps ${MAX_IDENTIFIER_BYTES} ("${truncateUtf8(id.name, MAX_IDENTIFIER_BYTES)}"), so the dialects would name it differently and two such names can collide. Shorten it.`,
    });
  }

  readWaivers(s.dialect, m, direction, file, add, waivers);
}

/**
 * `-- migrate:allow-difference <subject>: <reason>`: the subject names one difference exactly
 * as check reports it (`users.email nullable`, `index ix_users_email`); the reason is required.
 */
function readWaivers(
  dialect: Dialect,
  m: Migration,
  direction: 'up' | 'down',
  file: MigrationFile,
  add: (f: Finding) => void,
  waivers: Waiver[],
): void {
  const lines = file.text.split('\n');
  const lineNumbers = lines.flatMap((l, i) => (/^\s*--\s*migrate:allow-difference\b/.test(l) ? [i + 1] : []));
  file.allowDifferences.forEach((text, k) => {
    const line = lineNumbers[k];
    const where = { file: file.path, ...(line === undefined ? {} : { line }) };
    const parsed = /^(.+?):(?=\s|$)\s*(.*)$/s.exec(text);
    const subject = parsed?.[1]?.trim() ?? '';
    const reason = parsed?.[2]?.trim() ?? '';
    if (subject === '' || reason === '' || subject.includes('*')) {
      add({
        severity: 'error',
        code: 'BAD_WAIVER',
        ...where,
        message: `"-- migrate:allow-difference ${text}" must name one difference and say why: "-- migrate:allow-difference <what>: <why>", the <what> as check reports it (e.g. "users.email nullable: …", "index ix_users_email: …").`,
      });
      return;
    }
    waivers.push({
      dialect,
      revision: m.revision,
      direction,
      ...where,
      text,
      subject: normaliseSubject(subject),
      used: false,
    });
  });
}

const WORD = /[\w\u0080-\uffff$]+/y;
const NUMBER = /[\w.]+/y;

/**
 * The identifiers of a file (bare words and quoted names) with their offsets, skipping
 * comments, strings and, on PostgreSQL, dollar-quoted bodies.
 */
export function identifiers(text: string, dialect: Dialect): Array<{ name: string; offset: number }> {
  const out: Array<{ name: string; offset: number }> = [];
  const pg = dialect === 'postgres';
  const n = text.length;
  let i = 0;
  const until = (close: string, from: number) => {
    const k = text.indexOf(close, from);
    return k < 0 ? n : k + close.length;
  };
  const quoted = (q: string, from: number) => {
    let k = from;
    for (;;) {
      const e = text.indexOf(q, k);
      if (e < 0) return n;
      if (text[e + 1] !== q) return e + 1;
      k = e + 2;
    }
  };
  while (i < n) {
    const c = text[i] as string;
    if (c === '-' && text[i + 1] === '-') i = until('\n', i);
    else if (c === '/' && text[i + 1] === '*') i = until('*/', i + 2);
    else if (c === "'") {
      // E'…' strings escape quotes with a backslash.
      if (pg && /[eE]/.test(text[i - 1] ?? '') && !/[\w$]/.test(text[i - 2] ?? '')) {
        let k = i + 1;
        while (k < n && text[k] !== "'") k += text[k] === '\\' ? 2 : 1;
        i = text[k + 1] === "'" ? quoted("'", k + 2) : k + 1;
      } else i = quoted("'", i + 1);
    } else if (c === '"' || (!pg && (c === '`' || c === '['))) {
      const close = c === '[' ? ']' : c;
      const end = c === '[' ? until(']', i + 1) : quoted(close, i + 1);
      out.push({
        name: text
          .slice(i + 1, end - 1)
          .split(close + close)
          .join(close),
        offset: i,
      });
      i = end;
    } else if (pg && c === '$' && !/[\w$]/.test(text[i - 1] ?? ' ')) {
      const tag = /^\$(?:[A-Za-z_\u0080-\uffff][\w\u0080-\uffff]*)?\$/.exec(text.slice(i, i + 70));
      i = tag ? until(tag[0], i + tag[0].length) : i + 1;
    } else if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      WORD.lastIndex = i;
      const m = WORD.exec(text) as RegExpExecArray;
      out.push({ name: m[0], offset: i });
      i += m[0].length;
    } else if (/[0-9]/.test(c)) {
      NUMBER.lastIndex = i;
      i += (NUMBER.exec(text) as RegExpExecArray)[0].length;
    } else i++;
  }
  return out;
}

function truncateUtf8(name: string, bytes: number): string {
  let out = '';
  for (const ch of name) {
    if (Buffer.byteLength(out + ch, 'utf8') > bytes) break;
    out += ch;
  }
  return out;
}

/** A loader error, whose message starts with `path[:line[:column]]: `, as a finding. */
function fromMigrateError(error: MigrateError, fallback: string): Omit<Finding, 'severity'> & { severity: 'error' } {
  const m = /^(\S+?\.sql)(?::(\d+))?(?::(\d+))?:? ([\s\S]*)$/.exec(error.message);
  const base = { severity: 'error' as const, code: error.code as CheckCode };
  if (!m) return { ...base, file: fallback, message: error.message };
  return {
    ...base,
    file: m[1] as string,
    ...(m[2] ? { line: Number(m[2]) } : {}),
    ...(m[3] ? { column: Number(m[3]) } : {}),
    message: m[4] as string,
  };
}

// ---------------------------------------------------------------------------------------------
// Scratch databases
// ---------------------------------------------------------------------------------------------

/** A fresh database of `dialect` for `fn`, removed afterwards whatever happens. */
async function withScratch<T>(
  dialect: Dialect,
  connection: Connection,
  table: string,
  fn: (driver: Driver) => Promise<T>,
): Promise<T> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'migrate-check-'));
    const filename = join(dir, 'scratch.db');
    const driver = await openDriver(
      { dialect: 'sqlite', filename, display: `sqlite:${filename}` },
      table.split('.').pop() as string,
      true,
    );
    try {
      return await fn(driver);
    } finally {
      await driver.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  if (connection.dialect !== 'postgres') throw new Error('a PostgreSQL scratch database needs a postgres:// URL');
  const { createScratchDatabase } = await import('./drivers/postgres-schema.ts');
  const scratch = await createScratchDatabase(connection.url, connection.display, connection.secrets);
  try {
    const driver = await openDriver(
      { ...connection, url: scratch.url, display: `${connection.display} (scratch database ${scratch.name})` },
      table,
      true,
    );
    try {
      return await fn(driver);
    } finally {
      await driver.close();
    }
  } finally {
    await scratch.drop();
  }
}

/**
 * Every revision in order: up, down (the schema must be back where it started), up again (the
 * schema must be what the first up made). Returns how many revisions completed; stops at the
 * first failure, since the database is then in no known state.
 */
async function roundTrip(
  s: DialectState,
  driver: Driver,
  waivers: Waiver[],
  add: (f: Finding) => void,
  signal: AbortSignal | undefined,
): Promise<number> {
  await driver.ensureRecordTable();
  let before = await driver.introspect();
  let done = 0;
  for (const m of s.migrations) {
    const work = s.works.get(m.revision) as { up: StepWork; down: StepWork };
    /** Run one file of the pair; a failure comes back as a finding-to-be (file:line:column and message), not thrown. */
    const run = async (direction: 'up' | 'down'): Promise<MigrationFailed | undefined> => {
      signal?.throwIfAborted();
      try {
        await driver.runStep(work[direction]);
        return undefined;
      } catch (error) {
        if (!(error instanceof StepFailure)) throw error;
        return toMigrationFailed(error, work[direction], { direction, migration: m }, []);
      }
    };
    const report = (failed: MigrationFailed, what: string, severity: 'error' | 'warning', suffix: string) => {
      const { file, line, column } = failed.where;
      const state = failed.info.sqlState ? ` (${failed.info.sqlState})` : '';
      add({
        severity,
        code: 'MIGRATION_FAILED',
        file,
        ...(line === undefined ? {} : { line }),
        ...(column === undefined ? {} : { column }),
        message: `${what}: ${failed.message}${state}.${suffix}`,
      });
    };
    const stopped = ` Later revisions were not run on ${s.dialect}.`;

    const upFailed = await run('up');
    if (upFailed) {
      report(upFailed, `fails on a scratch ${s.dialect} database`, 'error', stopped);
      return done;
    }
    const after = await driver.introspect();
    const downFailed = await run('down');
    if (downFailed) {
      report(downFailed, `fails on a scratch ${s.dialect} database, right after its up`, 'error', stopped);
      return done;
    }
    const back = await driver.introspect();
    const left = unwaived(compareSnapshots(before, back), waivers, s.dialect, m.revision, ['up', 'down']);
    for (const d of left) {
      add({
        severity: 'error',
        code: 'ROUND_TRIP',
        file: m.down.path,
        message: roundTripMessage(d, m),
        subject: d.subject,
      });
    }
    const againFailed = await run('up');
    if (againFailed) {
      // After a down that left something behind, the second up failing is the expected sequel.
      report(
        againFailed,
        `fails when run again after its down (as after "-1" then "head")`,
        left.length > 0 ? 'warning' : 'error',
        left.length > 0 ? ` That follows from the incomplete down above.${stopped}` : stopped,
      );
      return done;
    }
    const again = await driver.introspect();
    if (left.length === 0) {
      for (const d of unwaived(compareSnapshots(after, again), waivers, s.dialect, m.revision, ['up', 'down'])) {
        add({ severity: 'error', code: 'REAPPLY', file: m.up.path, message: reapplyMessage(d), subject: d.subject });
      }
    }
    s.snapshots.push(again);
    before = again;
    done++;
  }
  return done;
}

function roundTripMessage(d: Difference, m: Migration): string {
  const what =
    d.kind === 'onlyRight'
      ? `leaves ${d.object} behind: it was not there before ${m.stem}.up.sql ran, and the down must remove what the up made.`
      : d.kind === 'onlyLeft'
        ? `removes ${d.object}, which was there before ${m.stem}.up.sql ran.`
        : `does not restore ${d.at}: ${d.left} before the up, ${d.right} after the down.`;
  return `${what} If it cannot be undone, say why in this file: -- migrate:allow-difference ${d.subject}: <reason>`;
}

function reapplyMessage(d: Difference): string {
  if (d.kind === 'onlyLeft') return `run again after its down, no longer creates ${d.object}.`;
  if (d.kind === 'onlyRight') return `run again after its down, also creates ${d.object}.`;
  return `run again after its down, gives ${d.at}: ${d.right}, where the first run gave ${d.left}.`;
}

/** The differences no waiver of this revision's files (in these dialects and directions) accepts; marks the waivers used. */
function unwaived(
  diffs: Difference[],
  waivers: Waiver[],
  dialects: Dialect | Dialect[],
  revision: string,
  directions: Array<'up' | 'down'>,
): Difference[] {
  const ds = Array.isArray(dialects) ? dialects : [dialects];
  return diffs.filter((d) => {
    const subject = normaliseSubject(d.subject);
    const hits = waivers.filter(
      (w) =>
        ds.includes(w.dialect) && w.revision === revision && directions.includes(w.direction) && w.subject === subject,
    );
    for (const w of hits) w.used = true;
    return hits.length === 0;
  });
}

// ---------------------------------------------------------------------------------------------
// The dialects against each other
// ---------------------------------------------------------------------------------------------

/**
 * The schemas after each revision, PostgreSQL against SQLite. A difference is reported at the
 * revision where it appears (and again only if it goes away and comes back), in the file to
 * look at: the folder that lacks the object, or the SQLite file (the port) when both have it.
 */
function compareAcross(
  states: DialectState[],
  sameRevisions: boolean,
  waivers: Waiver[],
  add: (f: Finding) => void,
): { revisions: number; skipped?: string } {
  const pg = states.find((s) => s.dialect === 'postgres');
  const lite = states.find((s) => s.dialect === 'sqlite');
  if (!pg || !lite) return { revisions: 0, skipped: 'only one dialect folder' };
  if (!sameRevisions) return { revisions: 0, skipped: 'the dialect folders hold different revisions' };
  if (pg.roundTrips?.skipped || lite.roundTrips?.skipped)
    return {
      revisions: 0,
      skipped: (pg.roundTrips?.skipped
        ? `postgres: ${pg.roundTrips.skipped}`
        : `sqlite: ${lite.roundTrips?.skipped}`) as string,
    };
  const count = Math.min(pg.snapshots.length, lite.snapshots.length);
  let previous = new Set<string>();
  for (let i = 0; i < count; i++) {
    const mp = pg.migrations[i] as Migration;
    const ml = lite.migrations[i] as Migration;
    const diffs = compareDialects(pg.snapshots[i] as Schema, lite.snapshots[i] as Schema);
    const key = (d: Difference) => `${d.kind}\0${d.subject}\0${d.left ?? ''}\0${d.right ?? ''}`;
    const fresh = diffs.filter((d) => !previous.has(key(d)));
    previous = new Set(diffs.map(key));
    for (const d of unwaived(fresh, waivers, ['postgres', 'sqlite'], mp.revision, ['up'])) {
      const file = d.kind === 'onlyRight' ? mp.up.path : ml.up.path;
      const text =
        d.kind === 'onlyLeft'
          ? `${d.object} exists in postgres only`
          : d.kind === 'onlyRight'
            ? `${d.object} exists in sqlite only`
            : `${d.at}: ${d.left} in postgres, ${d.right} in sqlite`;
      add({
        severity: 'error',
        code: 'DIALECT_DIFFERENCE',
        file,
        message: `${text} (after ${mp.stem}). If intended, say why in either up file: -- migrate:allow-difference ${d.subject}: <reason>`,
        subject: d.subject,
      });
    }
  }
  return { revisions: count };
}
