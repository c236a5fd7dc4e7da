/**
 * The record table's SQL on PostgreSQL. Pure: the driver and rendered scripts both build their
 * statements here. Every value is a literal, not a parameter: a parameterised query costs
 * postgres.js a second round trip (describe first) with `prepare: false`, and a literal
 * statement can be pipelined with the file it records.
 */
import { codePointOffsetToIndex } from '../position.ts';
import { type DialectSql, recordStatements, sqlString } from '../record.ts';
import { parseTableName } from '../config.ts';

export const COLUMNS = `
  revision       text        PRIMARY KEY,
  name           text        NOT NULL,
  checksum       text        NOT NULL,
  status         text        NOT NULL CHECK (status IN ('applied', 'failed')),
  applied_at     timestamptz NOT NULL,
  duration_ms    integer     NOT NULL,
  seq            integer     NOT NULL UNIQUE,
  statements_run integer,
  error          text
`;

/** An identifier in double quotes; parseTableName only lets plain names through, so nothing to escape but `"`. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The server's `position` (1-based, in characters of the text sent), when the error carries one. */
function position(error: unknown): number | undefined {
  const raw = (error as { position?: unknown } | null)?.position;
  const n = typeof raw === 'string' ? Number.parseInt(raw, 10) : typeof raw === 'number' ? raw : NaN;
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

function errorOffset(error: unknown, text: string): number | undefined {
  const p = position(error);
  return p === undefined ? undefined : codePointOffsetToIndex(text, p);
}

export const postgresSql: DialectSql = {
  // psql would otherwise carry on after an error and record later steps.
  header: '\\set ON_ERROR_STOP on\n',
  quoteTable(name) {
    const { schema, table } = parseTableName(name, true);
    return schema === undefined ? quoteIdent(table) : `${quoteIdent(schema)}.${quoteIdent(table)}`;
  },
  createTable(name) {
    const { schema } = parseTableName(name, true);
    const create = schema === undefined ? '' : `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)};\n`;
    return `${create}CREATE TABLE IF NOT EXISTS ${this.quoteTable(name)} (${COLUMNS});`;
  },
  ...recordStatements({
    now: 'clock_timestamp()',
    timestamp: (iso) => `${sqlString(iso)}::timestamptz`,
    // Inside the step's transaction `now()` is when its BEGIN ran: the server measures the file.
    duration: () => 'round(extract(epoch FROM clock_timestamp() - now()) * 1000)::integer',
  }),
  scriptGuard: { start: '', afterFile: () => '' },
  errorOffset,
  statementOffset: errorOffset,
};
