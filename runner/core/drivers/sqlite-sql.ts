/**
 * The record table's SQL on SQLite. Pure: the driver and rendered scripts both build their
 * statements here, with values as literals.
 */
import { type DialectSql, recordStatements } from '../record.ts';
import { sqlString } from '../quote.ts';
import { parseTableName } from '../config.ts';

/** The current time as the record stores it: ISO-8601 UTC with milliseconds. */
const NOW = `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`;

/** Every record-table column, with the same names and checks as on PostgreSQL. */
export function createTable(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (
  revision       TEXT    PRIMARY KEY,
  name           TEXT    NOT NULL,
  checksum       TEXT    NOT NULL,
  status         TEXT    NOT NULL CHECK (status IN ('applied', 'failed')),
  applied_at     TEXT    NOT NULL,
  duration_ms    INTEGER NOT NULL,
  seq            INTEGER NOT NULL UNIQUE,
  statements_run INTEGER,
  error          TEXT
);`;
}

/**
 * A rendered script stops, as the runner does, on a foreign-key violation a file added: it
 * notes the violations there before it starts, and after each file inserts the count of new
 * ones into a temporary table whose CHECK refuses anything but 0. sqlite3 under `.bail on`
 * then exits non-zero before the tracking statement and the COMMIT.
 */
const GUARD_START = `PRAGMA foreign_keys = ON;
CREATE TEMP TABLE migrate_fk_before AS SELECT "table", rowid, parent, fkid FROM pragma_foreign_key_check;
CREATE TEMP TABLE migrate_fk_guard (added INTEGER CONSTRAINT "FOREIGN KEY constraint failed: the file added rows that violate foreign keys" CHECK (added = 0));
`;
const GUARD_CHECK = `INSERT INTO temp.migrate_fk_guard SELECT count(*) FROM (SELECT "table", rowid, parent, fkid FROM pragma_foreign_key_check EXCEPT SELECT * FROM temp.migrate_fk_before);
`;

/**
 * Where in a statement SQLite's message points: `near "X": syntax error`, `no such table: X`,
 * `no such column: X`. The offset of the first whole-word occurrence, or 0 (the statement's
 * start) when the message names nothing findable.
 */
export function tokenOffset(sql: string, message: string): number {
  const m =
    /near "([^"]+)"/.exec(message) ??
    /no such (?:table|column|function|index|view|trigger): ([\w.]+)/.exec(message) ??
    /(?:table|index|view|trigger) (\S+) already exists/.exec(message);
  if (!m) return 0;
  const token = (m[1] as string).split('.').pop() as string;
  const escaped = token.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const hit = new RegExp(`(^|[^\\w])(${escaped})(?![\\w])`, 'i').exec(sql);
  return hit ? hit.index + (hit[1] as string).length : 0;
}

export const sqliteSql: DialectSql = {
  // sqlite3 would otherwise carry on after an error, into the tracking INSERT and COMMIT.
  header: '.bail on\n',
  quoteTable: (name) => `"${parseTableName(name, false).table}"`,
  createTable(name) {
    return createTable(this.quoteTable(name));
  },
  ...recordStatements({
    now: NOW,
    timestamp: sqlString,
    // SQLite cannot ask a transaction when it began: measured from the step's start, on this machine's clock.
    duration: (step) => `CAST(round((julianday('now') - julianday(${sqlString(step)})) * 86400000) AS INTEGER)`,
  }),
  scriptGuard: {
    start: GUARD_START,
    // A file may turn foreign keys off for a table rebuild; the runner turns them back on after a no-transaction file.
    afterFile: (transactional) => (transactional ? GUARD_CHECK : `PRAGMA foreign_keys = ON;\n${GUARD_CHECK}`),
  },
  // better-sqlite3 reports no position.
  errorOffset: () => undefined,
  statementOffset: (error, statement) => tokenOffset(statement, (error as Error).message ?? ''),
};
