/**
 * The waivers of check's pass on populated tables, and how what they accept is reported:
 * `-- migrate:allow-data-loss <table>[.<column>]: <reason>` in a down file, and
 * `-- migrate:allow-fails-on-data <table>: <reason>` in the file that fails on the generated rows.
 * A waiver accepts only what it names; what it accepted is one short line, never the rows.
 *
 * @module
 */
import type { Migration, MigrationFile } from '../../core/files.ts';
import type { Finding } from '../lint.ts';
import type { RowChange } from './fingerprint.ts';

export interface DataWaiver {
  /** `allow-data-loss` (in a down file) or `allow-fails-on-data` (in the file that fails). */
  directive: DataDirective;
  file: string;
  line: number;
  text: string;
  /** `table` or `table.column`, lower case. */
  subject: string;
  used: boolean;
}

export type DataDirective = 'allow-data-loss' | 'allow-fails-on-data';

export /** The `allow-fails-on-data` line of `file` that names the table a failure is about. */
function acceptsFailure(finding: Finding, waivers: DataWaiver[], file: string): DataWaiver | undefined {
  const table = finding.on?.table.toLowerCase();
  const w = waivers.find(
    (x) => x.directive === 'allow-fails-on-data' && x.file === file && table !== undefined && x.subject === table,
  );
  if (w) w.used = true;
  return w;
}

/** One short line for what a waiver accepted: no rows, no values. */
export function acceptedNote(w: DataWaiver, what: string): Finding {
  const [table, column] = w.subject.split('.') as [string, string | undefined];
  return {
    severity: 'note',
    code: w.directive === 'allow-data-loss' ? 'DATA_LOSS' : 'FAILS_ON_DATA',
    file: w.file,
    line: w.line,
    message: `${what}: accepted (-- migrate:${w.directive} ${w.subject}).`,
    subject: w.subject,
    on: { table, ...(column === undefined ? {} : { column }) },
  };
}

export /**
 * The rows a revision's down did not give back. A comments-only down is a deliberate no-op
 * (docs/folder.md): what the up did to the rows stays, said in one note. Otherwise each change is
 * an error unless a waiver names it: `<table>` accepts rows lost or added in it, `<table>.<column>`
 * values changed in that column; each waiver's acceptance is one short line.
 */
function reportChanges(
  changes: RowChange[],
  m: Migration,
  emptyDown: boolean,
  waivers: DataWaiver[],
  add: (f: Finding) => void,
): void {
  if (changes.length === 0) return;
  if (emptyDown) {
    add({
      severity: 'note',
      code: 'DATA_LOSS',
      file: m.down.path,
      message: `holds only comments, so a rollback keeps what ${m.stem}.up.sql did to the rows: ${changes.map(briefly).join('; ')}.`,
    });
    return;
  }
  const accepted = new Map<DataWaiver, RowChange[]>();
  for (const c of changes) {
    const subject = (c.column === undefined ? c.table : `${c.table}.${c.column}`).toLowerCase();
    const w = waivers.find((x) => x.directive === 'allow-data-loss' && x.subject === subject);
    if (!w) {
      add(dataLoss(c, m));
      continue;
    }
    w.used = true;
    accepted.set(w, [...(accepted.get(w) ?? []), c]);
  }
  for (const [w, list] of accepted) add(acceptedNote(w, list.map(briefly).join('; ')));
}

/** `users: 25 of 100 rows lost`, `users.email: 35 of 100 values changed`. */
function briefly(c: RowChange): string {
  if (c.kind === 'lost') return `${c.table}: ${c.rows} of ${c.of} rows lost`;
  if (c.kind === 'added') return `${c.table}: ${c.rows} rows added`;
  return `${c.table}.${c.column}: ${c.rows} of ${c.of} values changed`;
}

function dataLoss(c: RowChange, m: Migration): Finding {
  const at = c.column === undefined ? c.table : `${c.table}.${c.column}`;
  const first =
    c.kind === 'changed'
      ? `first: ${c.key}: ${clip(c.before)} before the up, ${clip(c.after)} after the down`
      : c.kind === 'lost'
        ? `first: ${c.key}: ${clip(c.before)}`
        : `first: ${c.key}: ${clip(c.after)}`;
  const what =
    c.kind === 'lost'
      ? `loses ${c.rows} of the ${c.of} rows of ${c.table} that were there before ${m.stem}.up.sql ran`
      : c.kind === 'added'
        ? `leaves ${c.rows} rows in ${c.table} that were not there before ${m.stem}.up.sql ran (duplicated or made up)`
        : `changes ${at} in ${c.rows} of ${c.of} rows`;
  return {
    severity: 'error',
    code: 'DATA_LOSS',
    file: m.down.path,
    message: `${what} (${first}). A down must give back the rows its up found. If it cannot, say why in this file: -- migrate:allow-data-loss ${at}: <reason>`,
    subject: at,
    on: { table: c.table, ...(c.column === undefined ? {} : { column: c.column }) },
  };
}

/** A generated value shown in a message: long ones cut, so that a finding stays a line or two. */
function clip(value: string | undefined): string {
  if (value === undefined) return '';
  return value.length <= 40 ? value : `${value.slice(0, 37)}…`;
}

export /** The `-- migrate:<directive>` lines of a file's leading comment block; a malformed one is BAD_WAIVER. */
function readDataWaivers(file: MigrationFile, directive: DataDirective, add: (f: Finding) => void): DataWaiver[] {
  if (!file.text.includes(`migrate:${directive}`)) return [];
  const pattern = new RegExp(`^\\s*--\\s*migrate:${directive}(?![\\w-])\\s*(.*)$`);
  const out: DataWaiver[] = [];
  const lines = file.text.split('\n');
  for (const [i, line] of lines.entries()) {
    if (line.trim() !== '' && !line.trim().startsWith('--')) break;
    const m = pattern.exec(line);
    if (!m) continue;
    const text = (m[1] as string).trim();
    const parsed = /^([^\s:]+):\s*(\S.*)$/.exec(text);
    const form = directive === 'allow-data-loss' ? '<table>[.<column>]' : '<table>';
    if (!parsed || (directive === 'allow-fails-on-data' && (parsed[1] as string).includes('.'))) {
      add({
        severity: 'error',
        code: 'BAD_WAIVER',
        file: file.path,
        line: i + 1,
        message: `"-- migrate:${directive} ${text}" must name ${directive === 'allow-data-loss' ? 'a table or column' : 'a table'} and say why: "-- migrate:${directive} ${form}: <why>".`,
      });
      continue;
    }
    out.push({
      directive,
      file: file.path,
      line: i + 1,
      text,
      subject: (parsed[1] as string).toLowerCase(),
      used: false,
    });
  }
  return out;
}
