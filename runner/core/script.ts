/**
 * The script `sql` and `--dry-run` print: each step as a person would run it by hand, with its
 * record statements, for psql or sqlite3.
 */
import type { DialectSql } from './record.ts';
import type { StepWork } from './step.ts';

/**
 * A step as a person would run it by hand (`sql`, `--dry-run`): the file as written, the
 * dialect's guard, its tracking statement on `table`, and BEGIN/COMMIT around all of it when
 * the file is transactional.
 */
export function renderStep(d: DialectSql, table: string, step: StepWork): string {
  const r = step.record;
  const track =
    r.kind === 'insert'
      ? d.insert(table, {
          revision: r.revision,
          description: r.description,
          checksum: r.checksum,
          status: 'applied',
          durationMs: 0,
        })
      : d.remove(table, r.revision);
  const body = step.empty ? '' : `${terminated(step).replace(/\s+$/, '')}\n`;
  const guard = d.scriptGuard.afterFile(step.transactional);
  return step.transactional ? `BEGIN;\n${body}${guard}${track};\nCOMMIT;\n` : `${body}${guard}${track};\n`;
}

/** A whole script: the header, the record table when missing, then each step. */
export function renderScript(
  d: DialectSql,
  tableName: string,
  createTable: boolean,
  steps: readonly StepWork[],
): string {
  const head = d.header + d.scriptGuard.start + (createTable ? `${d.createTable(tableName)}\n` : '');
  const table = d.quoteTable(tableName);
  return [head, ...steps.map((s) => renderStep(d, table, s))].join('\n');
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
