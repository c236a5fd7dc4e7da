/**
 * Pure planning: (migrations, record rows, target) → steps, or a `MigrateError` saying why the
 * target cannot be met. No I/O here, so every rule is testable in milliseconds.
 */
import { type RecordRow, readFailedNote } from './record.ts';
import { MigrateError } from './errors.ts';
import { type Dialect, type Direction, phaseOf, versionOf, type Migration, type Phase } from './files.ts';
import { holdsStatement } from './split.ts';

export type Target =
  | { kind: 'head' }
  | { kind: 'base' }
  | { kind: 'forward'; count: number }
  | { kind: 'back'; count: number }
  | { kind: 'revision'; name: string };

export interface Step {
  direction: Direction;
  migration: Migration;
}

export type WarningCode =
  | 'OUT_OF_ORDER'
  | 'DATABASE_AHEAD'
  | 'NO_TRANSACTION_MULTI'
  /** The run goes through a pooler: no lock for the run, each step takes its own (issue #25). */
  | 'POOLER'
  /** Another runner applied or rolled back a revision meanwhile: the rest was planned again. */
  | 'PLAN_CHANGED';

export interface Warning {
  code: WarningCode;
  message: string;
}

export interface Plan {
  steps: Step[];
  warnings: Warning[];
}

/** Where the record and the folder stand against each other. */
export interface Assessment {
  /** Local migrations keyed by version. */
  local: Map<bigint, Migration>;
  /** Record rows keyed by version (applied and failed). */
  recorded: Map<bigint, RecordRow>;
  /** Local migrations not in the record, in version order. */
  pending: Migration[];
  /** Recorded revisions with no local files. */
  missing: RecordRow[];
  /** Missing revisions that are all newer than every local file: a newer release migrated this database. */
  ahead: boolean;
  /** Applied revisions whose up file changed since. */
  changed: Migration[];
  failed: RecordRow[];
  /** Pending revisions older than the newest recorded one. */
  outOfOrder: Migration[];
}

const OFFSET = /^([+-])(\d+)$/;

export function isOffset(text: string): boolean {
  return OFFSET.test(text);
}

/** Parse a target as typed by a user. Revision names are resolved later, against the folder. */
export function parseTarget(text: string): Target {
  if (text === 'head') return { kind: 'head' };
  if (text === 'base') return { kind: 'base' };
  const m = OFFSET.exec(text);
  if (m) {
    const count = Number(m[2]);
    if (!Number.isSafeInteger(count) || count === 0) {
      throw new MigrateError('BAD_TARGET', `"${text}" moves nowhere: give a count of 1 or more (+1, -2).`);
    }
    return m[1] === '+' ? { kind: 'forward', count } : { kind: 'back', count };
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(text)) {
    throw new MigrateError(
      'BAD_TARGET',
      `"${text}" is not a target. Use head, base, +N, -N, or a revision (20250128_140000 or 20250128_140000_initial_schema).`,
    );
  }
  return { kind: 'revision', name: text };
}

export function assess(migrations: readonly Migration[], rows: readonly RecordRow[]): Assessment {
  const local = new Map(migrations.map((m) => [m.version, m]));
  const recorded = new Map(rows.map((r) => [versionOf(r.revision), r]));
  const pending = migrations.filter((m) => !recorded.has(m.version));
  const missing = rows.filter((r) => !local.has(versionOf(r.revision)));
  const newestLocal = migrations.length > 0 ? (migrations[migrations.length - 1] as Migration).version : -1n;
  const ahead = missing.length > 0 && missing.every((r) => versionOf(r.revision) > newestLocal);
  const changed = migrations.filter((m) => {
    const row = recorded.get(m.version);
    return row !== undefined && row.status === 'applied' && row.checksum !== m.up.checksum;
  });
  const failed = rows.filter((r) => r.status === 'failed');
  let newestRecorded = -1n;
  let newestPost = -1n;
  for (const v of recorded.keys()) {
    if (v > newestRecorded) newestRecorded = v;
    const m = local.get(v);
    if (m && phaseOf(m) === 'post' && v > newestPost) newestPost = v;
  }
  // A post revision waits for the rollout behind later pre ones: late only once a newer post one ran.
  const outOfOrder = pending.filter((m) => m.version < (phaseOf(m) === 'post' ? newestPost : newestRecorded));
  return { local, recorded, pending, missing, ahead, changed, failed, outOfOrder };
}

/** The last applied revision, or undefined at base. */
export function current(rows: readonly RecordRow[]): RecordRow | undefined {
  return rows.length === 0 ? undefined : rows.reduce((a, b) => (b.seq > a.seq ? b : a));
}

/**
 * Both ways out, since the record cannot tell them apart: the edit is already in the database
 * (accept it with `stamp`), or it never ran, as when an empty pair was applied and filled in
 * afterwards (forget the revision, running nothing, then apply it for real).
 */
function editedAfterApplied(a: Assessment): MigrateError {
  const one = a.changed.length === 1;
  const files = a.changed.map((m) => m.up.path).join(', ');
  const applied = [...a.recorded.values()].filter((r) => r.status === 'applied').sort((x, y) => x.seq - y.seq);
  const last = applied[applied.length - 1];
  const first = a.changed[0] as Migration;
  const fromFirst = applied.length - applied.findIndex((r) => versionOf(r.revision) === first.version);
  const back = fromFirst - 1;
  const forget =
    back === 0
      ? '`stamp -1 --yes`'
      : `\`-${back}${back > 1 ? ' --yes' : ''}\` (roll back what came after it), then \`stamp -1 --yes\``;
  return new MigrateError(
    'CHECKSUM_MISMATCH',
    `${files} ${one ? 'was' : 'were'} edited after being applied (checksum differs). Restore ${one ? 'it' : 'them'}; ` +
      `or, if the database already has what the edited file${one ? '' : 's'} say${one ? 's' : ''}, review and run \`stamp ${last?.revision ?? 'head'}\` to accept ${one ? 'it' : 'them'}; ` +
      `or, if the edit never ran (an empty file applied before it was filled in), run ${forget} to forget ${first.revision} without running anything, then \`head\`.`,
  );
}

/**
 * What migrating refuses; `stamp` skips these checks, being the way out of each. A rollback that
 * runs no edited file (`rollbackOnly`) is let through an edit: it is the first way out
 * CHECKSUM_MISMATCH names when later revisions sit on top of the edited one.
 */
function refuseUnsafe(a: Assessment, migrations: readonly Migration[], rollbackOnly: boolean): void {
  if (a.failed.length > 0) {
    const f = a.failed[0] as RecordRow;
    const { direction, message } = readFailedNote(f.error);
    const m = migrations.find((x) => x.version === versionOf(f.revision));
    const path = (d: Direction) => m?.[d].path ?? `${f.revision}_${f.name}.${d}.sql`;
    const forUp = `\`stamp ${f.revision}\` if all of it is now in place, or \`stamp -1\` to forget it`;
    const forDown = `\`stamp -1\` if all of it took effect (the revision is then rolled back), or \`stamp ${f.revision}\` to keep it applied once what it undid is restored`;
    const what =
      direction === undefined
        ? `${path('up')} or ${path('down')} (the record, written by an older version, does not say which) stopped part-way`
        : `${path(direction)} stopped part-way while ${direction === 'up' ? 'applying' : 'rolling back'}`;
    const wayOut =
      direction === 'up' ? forUp : direction === 'down' ? forDown : `for the up, ${forUp}; for the down, ${forDown}`;
    throw new MigrateError(
      'FAILED_MIGRATION',
      `${what} (${f.statementsRun ?? 0} statement(s) ran): ${message}. It ran outside a transaction, so repair the database by hand, then run ${wayOut}.`,
    );
  }
  if (a.changed.length > 0 && !rollbackOnly) throw editedAfterApplied(a);
  if (a.missing.length > 0 && !a.ahead) {
    const names = a.missing.map((r) => `${r.revision}_${r.name}`).join(', ');
    throw new MigrateError(
      'MISSING_FILE',
      `applied revision(s) ${names} have no files in the migrations folder, and newer local files exist. ` +
        `Restore the files from version control; if they were removed on purpose, run \`stamp <revision>\` to record the database's true state.`,
    );
  }
}

/**
 * A revision by version, by full stem, or by description alone (`add_user_email`) when exactly
 * one migration has it; the description is tried only when no version or stem matches.
 */
export function resolveRevision(name: string, migrations: readonly Migration[], rows: readonly RecordRow[]): bigint {
  const byVersionName = /^\d+(_\d+)?$/.test(name);
  const find = (matches: (stem: string, version: bigint, description: string) => boolean) => {
    const found = new Map<string, bigint>();
    for (const m of migrations) if (matches(m.stem, m.version, m.description)) found.set(m.stem, m.version);
    for (const r of rows) {
      const version = versionOf(r.revision);
      if (matches(`${r.revision}_${r.name}`, version, r.name)) found.set(`${r.revision}_${r.name}`, version);
    }
    return found;
  };
  let candidates = find((stem, version) => (byVersionName ? version === versionOf(name) : stem === name));
  if (candidates.size === 0 && !byVersionName) candidates = find((_s, _v, description) => description === name);
  if (candidates.size === 0) {
    throw new MigrateError(
      'UNKNOWN_REVISION',
      `unknown revision "${name}": no migration file or applied revision has that version, name or description. \`history\` lists them.`,
    );
  }
  if (candidates.size > 1) {
    throw new MigrateError(
      'AMBIGUOUS_REVISION',
      `revision "${name}" is ambiguous: ${[...candidates.keys()].join(', ')}. Name it by its version or full stem.`,
    );
  }
  return candidates.values().next().value as bigint;
}

/**
 * Steps that take the database from `rows` to `target`. Rolling back goes in reverse order of
 * application; applying goes in version order.
 */
export function plan(
  migrations: readonly Migration[],
  rows: readonly RecordRow[],
  target: Target,
  options: {
    strict?: boolean;
    enforce?: boolean;
    /** The folder's dialect, whose comment rules say whether an up file holds a statement; without it, both must agree. */
    dialect?: Dialect;
    /** Run one deploy phase: `pre` leaves post revisions pending (docs/folder.md). */
    phase?: Phase;
  } = {},
): Plan {
  const a = assess(migrations, rows);
  const { downs, ups } = moves(inPhase(a, options.phase), migrations, rows, target);
  if (options.enforce !== false) {
    const edited = new Set(a.changed.map((m) => m.version));
    refuseUnsafe(
      a,
      migrations,
      ups.length === 0 && downs.length > 0 && downs.every((r) => !edited.has(versionOf(r.revision))),
    );
  }
  const steps: Step[] = downs.map((r) => {
    const m = a.local.get(versionOf(r.revision));
    if (!m) {
      throw new MigrateError(
        'MISSING_FILE',
        `cannot roll back ${r.revision}_${r.name}: its files are not in the migrations folder${a.ahead ? ' (a newer release applied it; roll back with that release)' : ''}.`,
      );
    }
    return { direction: 'down' as const, migration: m };
  });
  for (const m of ups) steps.push({ direction: 'up', migration: m });
  if (options.enforce !== false) refuseEmptyUps(ups, options.dialect);
  return { steps, warnings: warnings(a, ups, options.strict ?? false) };
}

/**
 * An up file of comments only would be recorded as applied and change nothing; once it is
 * filled in, the deploy after it stops on CHECKSUM_MISMATCH (issue #26). A half-finished branch
 * is refused before anything runs.
 */
function refuseEmptyUps(ups: readonly Migration[], dialect: Dialect | undefined): void {
  // The folder's dialect decides what is a comment; without it, both must agree.
  const empty = ups.filter((m) =>
    dialect
      ? !holdsStatement(m.up.text, dialect)
      : !holdsStatement(m.up.text, 'postgres') && !holdsStatement(m.up.text, 'sqlite'),
  );
  if (empty.length === 0) return;
  const one = empty.length === 1;
  throw new MigrateError(
    'EMPTY_UP',
    `${empty.map((m) => m.up.path).join(', ')} hold${one ? 's' : ''} no statement, only comments: applying ${one ? 'it' : 'them'} would record ${empty.map((m) => m.revision).join(', ')} and change nothing, so nothing was applied. Write the migration there, or delete the pair (in every dialect folder) if it is not needed.`,
    { where: { file: (empty[0] as Migration).up.path } },
  );
}

/**
 * The assessment as a phase sees it: `pre` applies pending pre revisions only, leaving post ones
 * pending for the run after the rollout; `post` (or none) applies everything (issue #30).
 */
function inPhase(a: Assessment, phase: Phase | undefined): Assessment {
  if (phase !== 'pre') return a;
  return { ...a, pending: a.pending.filter((m) => phaseOf(m) === 'pre') };
}

/** The record rows to roll back (newest first) and the migrations to apply (in version order) that reach `target`. */
function moves(
  a: Assessment,
  migrations: readonly Migration[],
  rows: readonly RecordRow[],
  target: Target,
): { downs: RecordRow[]; ups: Migration[] } {
  const newestFirst = [...rows].sort((x, y) => y.seq - x.seq);
  switch (target.kind) {
    case 'head':
      return { downs: [], ups: a.pending };
    case 'base':
      return { downs: newestFirst, ups: [] };
    case 'forward':
      if (target.count > a.pending.length) {
        throw new MigrateError(
          'NOT_ENOUGH_PENDING',
          `cannot apply ${target.count}: ${a.pending.length} revision(s) pending.`,
        );
      }
      return { downs: [], ups: a.pending.slice(0, target.count) };
    case 'back':
      if (target.count > rows.length) {
        throw new MigrateError(
          'NOT_ENOUGH_APPLIED',
          `cannot roll back ${target.count}: ${rows.length} revision(s) applied.`,
        );
      }
      return { downs: newestFirst.slice(0, target.count), ups: [] };
    case 'revision': {
      const v = resolveRevision(target.name, migrations, rows);
      return {
        downs: newestFirst.filter((r) => versionOf(r.revision) > v),
        ups: a.pending.filter((m) => m.version <= v),
      };
    }
  }
}

/** What a plan that applies `ups` warns about; out-of-order revisions refused instead with `strict`. */
function warnings(a: Assessment, ups: readonly Migration[], strict: boolean): Warning[] {
  const out: Warning[] = [];
  if (a.ahead) {
    out.push({
      code: 'DATABASE_AHEAD',
      message: `the database has revisions newer than this folder (${a.missing.map((r) => r.revision).join(', ')}): a newer release migrated it. Nothing of theirs is touched.`,
    });
  }
  const late = ups.filter((m) => a.outOfOrder.includes(m));
  if (late.length > 0) {
    const names = late.map((m) => m.stem).join(', ');
    if (strict) {
      throw new MigrateError(
        'OUT_OF_ORDER',
        `${names} ${late.length === 1 ? 'is' : 'are'} older than the newest applied revision (--strict refuses out-of-order revisions). Renumber ${late.length === 1 ? 'it' : 'them'} with a newer timestamp, or run without --strict.`,
      );
    }
    out.push({
      code: 'OUT_OF_ORDER',
      message: `${names} ${late.length === 1 ? 'is' : 'are'} older than the newest applied revision; applying in version order.`,
    });
  }
  return out;
}

/** The revisions that are applied once `steps` have run, in application order. */
export function appliedAfter(
  migrations: readonly Migration[],
  rows: readonly RecordRow[],
  steps: readonly Step[],
): Migration[] {
  const local = new Map(migrations.map((m) => [m.version, m]));
  const gone = new Set(steps.filter((s) => s.direction === 'down').map((s) => s.migration.version));
  const kept = [...rows]
    .sort((x, y) => x.seq - y.seq)
    .map((r) => local.get(versionOf(r.revision)))
    .filter((m): m is Migration => m !== undefined && !gone.has(m.version));
  return [...kept, ...steps.filter((s) => s.direction === 'up').map((s) => s.migration)];
}
