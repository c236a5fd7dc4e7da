/** What both drivers share about the record table: its columns, and how rendered scripts spell values and files. */
import type { RecordRow, StepWork } from './driver.ts';

/** The record table's columns; a table of the same name without all of them belongs to another tool. */
export const RECORD_COLUMNS = [
  'revision',
  'name',
  'checksum',
  'status',
  'applied_at',
  'duration_ms',
  'seq',
  'statements_run',
  'error',
] as const;

/** A string literal in standard SQL (both dialects): single quotes doubled. */
export function sqlString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * A step as a person would run it by hand (`sql`, `--dry-run`): the file as written, its
 * tracking statement on `table` (`now` is the dialect's current-time expression), and
 * BEGIN/COMMIT around both when the file is transactional.
 */
export function renderStepScript(step: StepWork, table: string, now: string): string {
  const r = step.record;
  const track =
    r.kind === 'insert'
      ? `INSERT INTO ${table} (revision, name, checksum, status, applied_at, duration_ms, seq)
VALUES (${sqlString(r.revision)}, ${sqlString(r.name)}, ${sqlString(r.checksum)}, 'applied', ${now}, 0, (SELECT coalesce(max(seq), 0) + 1 FROM ${table}));`
      : `DELETE FROM ${table} WHERE revision = ${sqlString(r.revision)};`;
  const body = step.empty ? '' : `${terminated(step).replace(/\s+$/, '')}\n`;
  return step.transactional ? `BEGIN;\n${body}${track}\nCOMMIT;\n` : `${body}${track}\n`;
}

/**
 * The file's text with a `;` after its last statement when the file left it off, so that a
 * tracking statement appended in a rendered script is not read as part of it.
 */
function terminated(step: StepWork): string {
  const last = step.statements[step.statements.length - 1];
  if (!last || last.sql.endsWith(';')) return step.sql;
  const end = last.offset + last.sql.length;
  return `${step.sql.slice(0, end)};${step.sql.slice(end)}`;
}

/** A row of the record table as either client returns it (numbers may come back as strings). */
export function toRecordRow(r: Record<string, unknown>): RecordRow {
  return {
    revision: String(r.revision),
    name: String(r.name),
    checksum: String(r.checksum),
    status: r.status === 'failed' ? 'failed' : 'applied',
    appliedAt: String(r.applied_at),
    durationMs: Number(r.duration_ms),
    seq: Number(r.seq),
    statementsRun: r.statements_run === null ? null : Number(r.statements_run),
    error: r.error === null ? null : String(r.error),
  };
}

const PREFIX = { up: 'applying: ', down: 'rolling back: ' } as const;

/**
 * The error a `failed` row records for a no-transaction file. The record has no column for
 * the direction, and the way out differs, so the text begins with it. The runner's prefix comes
 * first: no error text from the database can pass for it.
 */
export function failedNote(direction: 'up' | 'down', message: string): string {
  return PREFIX[direction] + message;
}

/**
 * Which file of the pair a failed row is about, and its error without the prefix. Rows written
 * before the prefix existed say nothing of their direction (undefined), except the interrupted
 * ones, whose wording did.
 */
export function readFailedNote(error: string | null): { direction: 'up' | 'down' | undefined; message: string } {
  const text = error ?? 'unknown error';
  for (const direction of ['up', 'down'] as const) {
    if (text.startsWith(PREFIX[direction])) return { direction, message: text.slice(PREFIX[direction].length) };
  }
  const older = /^the runner stopped while (applying|rolling back) this file/.exec(text);
  return { direction: older ? (older[1] === 'applying' ? 'up' : 'down') : undefined, message: text };
}

/**
 * What the record says of a no-transaction file while it runs: read only if the runner dies
 * before the file ends. statements_run counts what completed.
 */
export function interrupted(direction: 'up' | 'down'): string {
  return failedNote(
    direction,
    'the runner stopped before the end of this file; the statement after those counted may or may not have taken effect',
  );
}
