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

/** How a failed row's error begins when the file that stopped was a down. */
const ROLLING_BACK = 'rolling back: ';

/**
 * The error a `failed` row records for a no-transaction file. The record has no column for
 * the direction, and the way out differs: a down that stopped part-way is named as the down.
 */
export function failedNote(direction: 'up' | 'down', message: string): string {
  return direction === 'down' ? ROLLING_BACK + message : message;
}

/** Which file of the pair a failed row is about, and its error without the direction. */
export function readFailedNote(error: string | null): { direction: 'up' | 'down'; message: string } {
  if (error?.startsWith(ROLLING_BACK)) return { direction: 'down', message: error.slice(ROLLING_BACK.length) };
  return { direction: 'up', message: error ?? 'unknown error' };
}

/**
 * What the record says of a no-transaction file while it runs: read only if the runner dies
 * before the file ends.
 */
export function interrupted(direction: 'up' | 'down'): string {
  return failedNote(direction, 'the runner stopped in the middle of this file, which runs outside a transaction: statements_run statements completed, and the next one may or may not have taken effect');
}
