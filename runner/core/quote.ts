/**
 * Quoting, for the SQL the runner writes itself (both dialects follow the standard here):
 * `sqlString` for a value, `quoteIdent` for a name. Every hand-built statement quotes through
 * these two.
 *
 * @module
 */

/** A string literal in standard SQL (both dialects): single quotes doubled. */
export function sqlString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** An identifier in double quotes, `"` doubled: any name reads back as itself. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
