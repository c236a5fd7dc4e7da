/**
 * A SQLite database's catalog (catalog/model.ts). SQLite keeps each object's CREATE statement
 * as it was written (sqlite_master.sql) and prints no normalised form, so the statement is
 * normalised here: comments removed, blanks outside quotes collapsed, a table's columns and
 * constraints one per line. Loading the result stores that text, which normalises to itself,
 * so a file read back from a database it built is byte-identical.
 *
 * The properties `drift` compares come from the PRAGMAs, through runner/drivers/sqlite-schema.ts.
 *
 * @module
 */
import Database from 'better-sqlite3';
import { MigrateError } from '../errors.ts';
import { introspectSqlite } from '../drivers/sqlite-schema.ts';
import { skipQuoted } from '../split.ts';
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
  const open = flat.indexOf('(');
  if (open < 0) return flat; // CREATE TABLE … AS SELECT keeps no column list of its own
  const items: string[] = [];
  let depth = 0;
  let start = open + 1;
  let end = flat.length;
  for (let i = open + 1; i < flat.length; i++) {
    const c = flat.charCodeAt(i);
    if (c === 39 || c === 34 || c === 96) i = skipQuoted(flat, i + 1, c) - 1;
    else if (c === 91) i = flat.indexOf(']', i + 1) < 0 ? flat.length : flat.indexOf(']', i + 1);
    else if (c === 40) depth++;
    else if (c === 41 && depth > 0) depth--;
    else if (c === 41) {
      end = i;
      break;
    } else if (c === 44 && depth === 0) {
      items.push(flat.slice(start, i).trim());
      start = i + 1;
    }
  }
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
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 39 || c === 34 || c === 96) {
      const j = skipQuoted(sql, i + 1, c);
      out.push(sql.slice(i, j));
      i = j;
    } else if (c === 91) {
      const j = sql.indexOf(']', i + 1);
      const k = j < 0 ? n : j + 1;
      out.push(sql.slice(i, k));
      i = k;
    } else if (c === 45 && sql.charCodeAt(i + 1) === 45) {
      const j = sql.indexOf('\n', i);
      i = j < 0 ? n : j;
    } else if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      const j = sql.indexOf('*/', i + 2);
      i = j < 0 ? n : j + 2;
      blank(' ');
    } else if (/\s/.test(sql[i] as string)) {
      let j = i;
      let newline = false;
      while (j < n && /\s/.test(sql[j] as string)) {
        if (sql[j] === '\n') newline = true;
        j++;
      }
      blank(newline && !flat ? '\n' : ' ');
      i = j;
    } else {
      let j = i + 1;
      while (j < n && !/[\s'"`[\-/]/.test(sql[j] as string)) j++;
      out.push(sql.slice(i, j));
      i = j;
    }
  }
  return out;
}
