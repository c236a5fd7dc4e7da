/**
 * A SQLite database's catalog (catalog/model.ts). SQLite keeps each object's CREATE statement
 * as it was written (sqlite_master.sql) and prints no normalised form, so the statement is
 * normalised here: comments removed, blanks outside quotes collapsed, a table's columns and
 * constraints one per line. Loading the result stores that text, which normalises to itself,
 * so a file read back from a database it built is byte-identical.
 *
 * The properties `drift` compares come from the PRAGMAs, through catalog/sqlite-schema.ts.
 *
 * @module
 */
import Database from 'better-sqlite3';
import { MigrateError } from '../core/errors.ts';
import { introspectSqlite } from './sqlite-schema.ts';
import { Lexer } from '../core/lexer.ts';
import type { Catalog, CatalogObject } from './model.ts';

interface MasterRow {
  type: string;
  name: string;
  tbl_name: string;
  sql: string | null;
}

/** The catalog of the `main` database, without `sqlite_*` objects and the record table. */
export function readSqliteCatalog(db: Database.Database, recordTable: string): Catalog {
  const schema = introspectSqlite(db, recordTable);
  const objects: CatalogObject[] = [];
  const master = db
    .prepare(`SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name`)
    .all() as MasterRow[];
  const statement = new Map<string, string>();
  for (const r of master) {
    if (r.name.startsWith('sqlite_') || r.tbl_name === recordTable) continue;
    statement.set(`${r.type} ${r.name}`, r.type === 'table' ? normaliseTable(r.sql ?? '') : normalise(r.sql ?? ''));
  }
  for (const t of schema.tables) {
    objects.push({
      kind: 'table',
      name: t.name,
      props: {
        'primary key': `(${t.primaryKey.join(', ')})`,
        checks: t.checks.length === 0 ? '(none)' : t.checks.join('; '),
        'unique columns': t.uniques.map((u) => `(${u.join(', ')})`).join(', ') || '(none)',
      },
      sql: statement.get(`table ${t.name}`) ?? '',
    });
    for (const c of t.columns) {
      objects.push({
        kind: 'column',
        name: `${t.name}.${c.name}`,
        table: t.name,
        props: {
          type: c.type,
          nullable: c.nullable ? 'nullable' : 'NOT NULL',
          default: c.default ?? '(none)',
          generated: c.generated ? 'generated' : 'no',
          // What a CHECK on the column says (read as the column's, so not among the table's
          // checks): a hand-made rebuild that changes it is drift too (issue #26).
          ...checkedAs(c),
        },
        sql: '',
      });
    }
    for (const f of t.foreignKeys) {
      objects.push({
        kind: 'constraint',
        name: `foreign key (${f.columns.join(', ')})`,
        table: t.name,
        props: { references: `${f.refTable} (${f.refColumns.join(', ')})`, 'on delete': f.onDelete },
        sql: '',
      });
    }
    for (const i of t.indexes) {
      objects.push({
        kind: 'index',
        name: i.name,
        table: t.name,
        props: {
          columns: i.columns.join(', '),
          unique: i.unique ? 'unique' : 'not unique',
          predicate: i.where ?? '(none)',
          definition: statement.get(`index ${i.name}`) ?? '',
        },
        sql: statement.get(`index ${i.name}`) ?? '',
      });
    }
  }
  for (const r of master) {
    if (r.name.startsWith('sqlite_') || r.tbl_name === recordTable) continue;
    if (r.type !== 'view' && r.type !== 'trigger') continue;
    const sql = statement.get(`${r.type} ${r.name}`) ?? '';
    objects.push({
      kind: r.type === 'view' ? 'view' : 'trigger',
      name: r.name,
      ...(r.type === 'trigger' ? { table: r.tbl_name } : {}),
      props: { definition: sql },
      sql,
    });
  }
  return { dialect: 'sqlite', objects };
}

/** The catalog of the SQLite file `filename`, opened read-only (it must exist). */
export function readSqliteFile(filename: string, display: string, recordTable: string): Catalog {
  let db: Database.Database;
  try {
    db = new Database(filename, { readonly: true, fileMustExist: true });
  } catch (error) {
    throw new MigrateError('CONNECTION_FAILED', `cannot open ${display} read-only: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    return readSqliteCatalog(db, recordTable);
  } finally {
    db.close();
  }
}

/** One statement: comments gone, each line trimmed, blank lines dropped, blanks outside quotes collapsed. */
export function normalise(sql: string): string {
  return pieces(sql)
    .join('')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .join('\n')
    .replace(/;$/, '');
}

/**
 * CREATE TABLE with each column and table constraint on its own line, in the order written,
 * so that adding a column adds a line.
 */
export function normaliseTable(sql: string): string {
  const flat = pieces(sql, true).join('').trim();
  const lexer = new Lexer(flat, 'sqlite');
  const items: string[] = [];
  let open = -1;
  let depth = 0;
  let start = 0;
  let end = flat.length;
  while (lexer.next()) {
    if (lexer.kind !== 'punct') continue;
    const c = flat.charCodeAt(lexer.start);
    if (c === 40 && depth++ === 0) {
      open = lexer.start;
      start = lexer.end;
    } else if (c === 41 && depth > 0 && --depth === 0) {
      end = lexer.start;
      break;
    } else if (c === 44 && depth === 1) {
      items.push(flat.slice(start, lexer.start).trim());
      start = lexer.end;
    }
  }
  if (open < 0) return flat; // CREATE TABLE … AS SELECT keeps no column list of its own
  items.push(flat.slice(start, end).trim());
  const tail = flat.slice(end + 1).trim();
  return `${flat.slice(0, open).trim()} (\n    ${items.join(',\n    ')}\n)${tail === '' ? '' : ` ${tail}`}`;
}

/**
 * The statement as pieces of text, comments removed; outside quotes every run of blanks is one
 * space, or, unless `flat`, a line break when the run held one.
 */
function pieces(sql: string, flat = false): string[] {
  const out: string[] = [];
  const blank = (b: string) => {
    const last = out[out.length - 1];
    if (last !== ' ' && last !== '\n') out.push(b);
    else if (b === '\n') out[out.length - 1] = b;
  };
  const space = (gap: string) => {
    if (gap !== '') blank(gap.includes('\n') && !flat ? '\n' : ' ');
  };
  const lexer = new Lexer(sql, 'sqlite');
  let last = 0;
  while (lexer.next()) {
    space(sql.slice(last, lexer.start));
    last = lexer.end;
    // A line comment ends with its line break; a block comment counts as a blank.
    if (lexer.kind === 'comment') space(sql.charCodeAt(lexer.start) === 45 ? '\n' : ' ');
    else out.push(lexer.value);
  }
  space(sql.slice(last));
  return out;
}

/** A column's CHECK as a property: its labels, its length limit, or boolean/json. */
function checkedAs(c: { family: string; values?: string[]; maxLength?: number }): Record<string, string> {
  const props: Record<string, string> = {};
  if (c.family === 'boolean' || c.family === 'json') props.check = c.family;
  if (c.values !== undefined) props.check = `one of ${c.values.map((v) => `'${v.replace(/'/g, "''")}'`).join(', ')}`;
  if (c.maxLength !== undefined) props['max length'] = String(c.maxLength);
  return props;
}
