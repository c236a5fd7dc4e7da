/**
 * `check`'s first part, without a database: every dialect folder scanned the way the runner
 * scans it (every problem reported, not only the first), then the rules a file can break on its
 * own, and the `-- migrate:allow-difference` waivers the later parts honour.
 *
 * @module
 */
import { type Statement, splitStatements, statementKind } from '../core/split.ts';
import { type StepWork, stepWork } from '../core/step.ts';
import { MigrateError, type FolderCode } from '../core/errors.ts';
import {
  listFolder,
  phaseProblems,
  readFolder,
  siblingProblems,
  type Dialect,
  type Direction,
  type FolderScan,
  type Migration,
  type MigrationFile,
} from '../core/files.ts';
import { tokenize, unquote } from '../core/lexer.ts';
import { mayCommitInside } from '../core/locks.ts';
import type { Step } from '../core/plan.ts';
import { lineColumn } from '../core/position.ts';
import { type Difference, normaliseSubject } from '../catalog/schema.ts';
import { contractFindings } from './contract.ts';

/** What a finding is about; docs/errors.md#check-findings lists each. */
export type CheckCode =
  // the folder, without a database: first the runner's own refusals, by their codes
  | FolderCode
  | 'NEEDS_NO_TRANSACTION'
  | 'ENUM_VALUE_IN_TRANSACTION'
  | 'NO_TRANSACTION_MULTI'
  | 'COMMITS_INSIDE'
  | 'LONG_IDENTIFIER'
  | 'BAD_WAIVER'
  | 'EMPTY_UP'
  // on scratch databases
  | 'MIGRATION_FAILED'
  | 'ROUND_TRIP'
  | 'REAPPLY'
  | 'DIALECT_DIFFERENCE'
  | 'UNUSED_WAIVER'
  | 'LOCKS_TABLE'
  | 'REWRITES_TABLE'
  // deploy phases (phases.ts, contract.ts, compat.ts; issue #30)
  | 'CONTRACT_IN_PRE'
  | 'PHASE_ORDER'
  | 'COMPAT_BREAK'
  // on populated scratch tables (data/pass.ts)
  | 'FAILS_ON_DATA'
  | 'DATA_LOSS'
  | 'DATA_GENERATION'
  // the committed schema files (<dir>/schema/<dialect>.sql)
  | 'SCHEMA_STALE'
  // against a git ref (check --base, base.ts)
  | 'ORDER_CONFLICT';

export interface Finding {
  /** A note (a waived data loss, say) is shown and counted as neither error nor warning. */
  severity: 'error' | 'warning' | 'note';
  code: CheckCode;
  /** Path as shown to users (relative to the working directory when below it). */
  file: string;
  line?: number;
  column?: number;
  message: string;
  /** For a difference a waiver could accept: what `-- migrate:allow-difference` would name. */
  subject?: string;
  /** The table (and column) a finding on populated tables is about. */
  on?: { table: string; column?: string };
}

/** A `-- migrate:allow-difference <subject>: <reason>` line. */
export interface Waiver {
  dialect: Dialect;
  revision: string;
  direction: Direction;
  file: string;
  line?: number;
  text: string;
  subject: string;
  used: boolean;
}

/** The differences no waiver of this revision's files (in these dialects and directions) accepts; marks the waivers used. */
export function unwaived(
  diffs: Difference[],
  waivers: Waiver[],
  dialects: Dialect | Dialect[],
  revision: string,
  directions: Array<Direction>,
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

/** One dialect folder as the folder checks leave it for the scratch databases. */
export interface FolderState {
  dialect: Dialect;
  folder: string;
  /** No error in the folder: its migrations may run. */
  runnable: boolean;
  migrations: Migration[];
  works: Map<string, { up: StepWork; down: StepWork }>;
}

type Add = (f: Finding) => void;

/**
 * Scan every folder, compare their revisions, read and lint every file. Returns whether the
 * folders hold the same revisions (the dialects can then be compared revision by revision).
 */
export function lintFolders(states: FolderState[], add: Add, waivers: Waiver[]): boolean {
  const scans = states.map((s) => listFolder(s.folder));
  const refuse = (s: FolderState, problems: readonly MigrateError[]) => {
    if (problems.length > 0) s.runnable = false;
    for (const p of problems) add(findingOf(p, s.folder));
  };
  states.forEach((s, i) => {
    refuse(s, (scans[i] as FolderScan).problems);
  });
  let sameRevisions = true;
  for (let i = 1; i < states.length; i++) {
    const mismatches = siblingProblems(scans[0] as FolderScan, scans[i] as FolderScan);
    if (mismatches.length > 0) sameRevisions = false;
    for (const p of mismatches) add(findingOf(p, (states[0] as FolderState).folder));
  }
  states.forEach((s, i) => {
    const scanned = s.runnable;
    const { migrations, problems } = readFolder(scans[i] as FolderScan);
    refuse(s, problems);
    if (!scanned) return;
    s.migrations = migrations;
    for (const m of migrations) {
      for (const direction of ['up', 'down'] as const) lintFile(s, m, direction, add, waivers);
    }
  });
  // One revision, one phase, whichever dialect a deploy runs (issue #30).
  const [first, ...others] = states;
  for (const other of others) {
    const ups = new Map(other.migrations.map((m) => [m.version, m.up]));
    for (const p of phaseProblems(first?.migrations ?? [], ups)) add(findingOf(p, other.folder));
  }
  return sameRevisions;
}

/** A refusal of the runner's, as a finding at the place it names. */
function findingOf(error: MigrateError, folder: string): Finding {
  const where = error.where ?? { file: folder };
  return { severity: 'error', code: error.code as CheckCode, ...where, message: error.reason };
}

const ADD_VALUE = /^ALTER\s+TYPE\s+(\S+)\s+ADD\s+VALUE\s+(?:IF\s+NOT\s+EXISTS\s+)?'((?:[^']|'')*)'/i;

/** PostgreSQL keeps the first NAMEDATALEN - 1 = 63 bytes of a name. https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS */
const MAX_IDENTIFIER_BYTES = 63;

function lintFile(s: FolderState, m: Migration, direction: Direction, add: Add, waivers: Waiver[]): void {
  const file = m[direction];
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
    add(findingOf(error, file.path));
  }
  const statements = work?.statements ?? splitStatements(file.text, s.dialect);
  if (direction === 'up' && statements.length === 0) {
    add({
      severity: 'error',
      code: 'EMPTY_UP',
      file: file.path,
      message:
        'holds no statement, only comments: the runner refuses to apply it (it would record the revision and change nothing). Write the migration here, or delete the pair if it is not needed.',
    });
  }
  if (file.transactional) transactionRules(s, file, statements, add);
  else if (statements.length > 1) {
    add({
      severity: 'warning',
      code: 'NO_TRANSACTION_MULTI',
      file: file.path,
      ...lineColumn(file.text, (statements[1] as Statement).offset),
      message: `runs outside a transaction with ${statements.length} statements: if one fails, those before it stay applied and the revision is recorded as failed until repaired by hand. Keep such files to one statement where you can.`,
    });
  }
  if (!file.transactional && s.dialect === 'postgres') commitsInside(file, statements, add);
  // Only PostgreSQL cuts names; a long name in a SQLite file shows up as a difference between the dialects.
  if (s.dialect === 'postgres') longIdentifiers(file, add);
  if (direction === 'up') contractFindings(s.dialect, m, statements, add);
  readWaivers(s.dialect, m, direction, file, add, waivers);
  readAllowLocks(s.dialect, direction, file, add);
}

/**
 * `-- migrate:allow-lock <table>: <reason>` lines: well formed, and where locks are measured
 * (PostgreSQL up files); whether one accepts anything is known only on the scratch database.
 */
function readAllowLocks(dialect: Dialect, direction: Direction, file: MigrationFile, add: Add): void {
  const lines = allowLockLines(file.text);
  (file.allowLocks ?? []).forEach((text, k) => {
    const line = lines[k];
    const where = { file: file.path, ...(line === undefined ? {} : { line }) };
    if (!parseAllowLock(text)) {
      add({
        severity: 'error',
        code: 'BAD_WAIVER',
        ...where,
        message: `"-- migrate:allow-lock ${text}" must name one table and say why: "-- migrate:allow-lock <table>: <why>" (e.g. "plans: 12 rows, read once at start-up").`,
      });
    } else if (dialect !== 'postgres' || direction !== 'up') {
      add({
        severity: 'warning',
        code: 'UNUSED_WAIVER',
        ...where,
        message: `"-- migrate:allow-lock ${text}" accepts nothing here: check measures locks in PostgreSQL up files only. Remove it.`,
      });
    }
  });
}

/**
 * A `DO` block or `CALL` in a no-transaction file may COMMIT inside: stopped by a lock timeout
 * part-way, it is not run again (core/step.ts), and re-running it is the author's call.
 */
function commitsInside(file: MigrationFile, statements: Statement[], add: Add): void {
  for (const st of statements) {
    if (!mayCommitInside(st.sql)) continue;
    add({
      severity: 'warning',
      code: 'COMMITS_INSIDE',
      file: file.path,
      ...lineColumn(file.text, st.offset),
      message:
        'a DO block or CALL outside a transaction can commit part of its work inside: if it stops (a lock timeout, an error), what it committed stays, the runner does not run it again, and the revision is recorded as failed. Make it safe to run again (batches that skip what is done), then repair and `stamp` by hand if it stops.',
    });
  }
}

/** Statements a transactional file cannot hold, and enum labels it cannot use. */
function transactionRules(s: FolderState, file: MigrationFile, statements: Statement[], add: Add): void {
  const at = (offset: number) => lineColumn(file.text, offset);
  statements.forEach((st, i) => {
    const refused = statementKind(st.sql, s.dialect);
    if (refused) {
      s.runnable = false;
      add({
        severity: 'error',
        code: 'NEEDS_NO_TRANSACTION',
        file: file.path,
        ...at(st.offset),
        message: `${refused} cannot run inside a transaction, and this file runs in one. Give it a file of its own that starts with "-- migrate:no-transaction".`,
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
}

/** Names longer than PostgreSQL keeps, each reported once per file. */
function longIdentifiers(file: MigrationFile, add: Add): void {
  const long = new Set<string>();
  for (const id of identifiers(file.text, 'postgres')) {
    const bytes = Buffer.byteLength(id.name, 'utf8');
    if (bytes <= MAX_IDENTIFIER_BYTES || long.has(id.name)) continue;
    long.add(id.name);
    add({
      severity: 'error',
      code: 'LONG_IDENTIFIER',
      file: file.path,
      ...lineColumn(file.text, id.offset),
      message: `"${id.name}" is ${bytes} bytes long; PostgreSQL keeps ${MAX_IDENTIFIER_BYTES} ("${truncateUtf8(id.name, MAX_IDENTIFIER_BYTES)}"), so the dialects would name it differently and two such names can collide. Shorten it.`,
    });
  }
}

/**
 * `-- migrate:allow-difference <subject>: <reason>`: the subject names one difference exactly
 * as check reports it (`users.email nullable`, `index ix_users_email`); the reason is required.
 */
function readWaivers(
  dialect: Dialect,
  m: Migration,
  direction: Direction,
  file: MigrationFile,
  add: Add,
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

/** `-- migrate:allow-lock <table>: <reason>`, parsed; undefined when the table or the reason is missing. */
export function parseAllowLock(text: string): { table: string; reason: string } | undefined {
  const m = /^(.+?):(?=\s|$)\s*(.*)$/s.exec(text);
  const table = m?.[1]?.trim() ?? '';
  const reason = m?.[2]?.trim() ?? '';
  if (table === '' || reason === '' || /[\s*]/.test(table)) return undefined;
  return { table, reason };
}

/** The 1-based line of each `-- migrate:allow-lock` line of a file, in order. */
export function allowLockLines(text: string): number[] {
  return text.split('\n').flatMap((l, i) => (/^\s*--\s*migrate:allow-lock\b/.test(l) ? [i + 1] : []));
}

/**
 * The identifiers of a file (bare words and quoted names) with their offsets: the lexer's word
 * and quoted-name tokens, so comments, strings and dollar-quoted bodies are never names.
 */
export function identifiers(text: string, dialect: Dialect): Array<{ name: string; offset: number }> {
  const out: Array<{ name: string; offset: number }> = [];
  for (const t of tokenize(text, dialect)) {
    if (t.kind === 'word') out.push({ name: text.slice(t.start, t.end), offset: t.start });
    else if (t.kind === 'quoted') out.push({ name: unquote(text, t), offset: t.start });
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
