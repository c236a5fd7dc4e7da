/** What both drivers share about the record table: its columns, and literals for rendered scripts. */

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
