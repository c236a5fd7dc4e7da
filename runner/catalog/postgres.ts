/**
 * A PostgreSQL database's catalog (catalog/model.ts), built from the rows catalog/postgres-read.ts
 * reads from the system catalogs (the rows the cross-dialect `Schema` is built from too), with the
 * server's own printers (format_type, pg_get_expr, pg_get_constraintdef, pg_get_indexdef,
 * pg_get_viewdef, pg_get_functiondef, pg_get_triggerdef): an expression reads the same however
 * a migration spelled it, and no pg_dump of a matching major version is needed.
 *
 * The caller runs this inside a READ ONLY transaction with search_path pinned to one schema,
 * which those printers consult when they decide whether to qualify a name; objects of that
 * schema are then unqualified, every other one is `schema.name`.
 *
 * Left out: the record table (and what belongs to it), objects that belong to an extension
 * (the extension is listed), system schemas, owners, privileges and comments.
 *
 * @module
 */
import { quoteIdent, sqlString } from '../core/quote.ts';
import type { Catalog, CatalogObject } from './model.ts';
import { type Query, readPostgresRows } from './postgres-read.ts';

type Row = Record<string, unknown>;

const CONSTRAINT_KINDS: Record<string, string> = {
  p: 'primary key',
  u: 'unique',
  c: 'check',
  f: 'foreign key',
  x: 'exclude',
  t: 'trigger',
};

/** The catalog `query` sees, without the record table (`record`: its schema and name). Reads only. */
export async function readPostgresCatalog(query: Query, record: { schema: string; table: string }): Promise<Catalog> {
  const rows = await readPostgresRows(query, record);
  const { extensions, columns, constraints } = rows;
  const schemas = rows.schemas.filter((r) => r.own === true && r.record_only !== true);
  const types = rows.types.filter((r) => r.kind === 'e' || r.kind === 'd' || r.kind === 'c');
  const relations = rows.relations.filter((r) => r.in_catalog === true);
  const indexes = rows.indexes.filter((r) => r.backs_constraint !== true);
  const functions = rows.functions.filter((r) => r.prokind === 'f' || r.prokind === 'p');
  const triggers = rows.triggers.filter((r) => r.in_catalog === true);
  const objects: CatalogObject[] = [];
  for (const r of extensions) {
    objects.push({
      kind: 'extension',
      name: s(r.name),
      props: { version: s(r.version), schema: s(r.schema) },
      sql: `CREATE EXTENSION IF NOT EXISTS ${identAsPrinted(s(r.name))} WITH SCHEMA ${identAsPrinted(s(r.schema))}`,
    });
  }
  for (const r of schemas)
    objects.push({ kind: 'schema', name: s(r.name), props: {}, sql: `CREATE SCHEMA ${s(r.name)}` });
  for (const r of types) objects.push(typeObject(r));
  relationObjects(relations, objects);
  tableObjects(relations, columns, constraints, objects);
  for (const r of indexes) {
    objects.push({
      kind: 'index',
      name: s(r.name),
      table: s(r.tbl),
      props: {
        columns: s(r.cols),
        unique: r.is_unique === true ? 'unique' : 'not unique',
        method: s(r.method),
        predicate: r.predicate === null ? '(none)' : s(r.predicate),
        valid: r.valid === true ? 'valid' : 'INVALID (a failed CREATE INDEX CONCURRENTLY?)',
        definition: s(r.def),
      },
      sql: s(r.def),
    });
  }
  for (const r of functions) {
    objects.push({ kind: 'function', name: s(r.name), props: { definition: s(r.def) }, sql: s(r.def).trimEnd() });
  }
  for (const r of triggers) {
    objects.push({
      kind: 'trigger',
      name: s(r.name),
      table: s(r.tbl),
      props: { definition: s(r.def), enabled: s(r.enabled) },
      sql: s(r.def),
    });
  }
  return { dialect: 'postgres', objects };
}

/** The settings a value's text depends on, pinned to PostgreSQL's defaults (TimeZone to UTC) while reading. */
export const DISPLAY: Record<string, string> = {
  DateStyle: 'ISO, MDY',
  IntervalStyle: 'postgres',
  TimeZone: 'UTC',
  extra_float_digits: '1',
  bytea_output: 'hex',
  standard_conforming_strings: 'on',
};

function typeObject(r: Row): CatalogObject {
  const name = s(r.name);
  if (r.kind === 'e') {
    const labels = (JSON.parse(s(r.labels ?? '[]')) as string[]).map(sqlString).join(', ');
    return { kind: 'type', name, props: { labels }, sql: `CREATE TYPE ${name} AS ENUM (${labels})` };
  }
  if (r.kind === 'd') {
    const def =
      `${s(r.base)}` +
      (r.dflt === null ? '' : ` DEFAULT ${s(r.dflt)}`) +
      (r.notnull === true ? ' NOT NULL' : '') +
      (r.checks === null ? '' : s(r.checks));
    return { kind: 'type', name, props: { domain: def }, sql: `CREATE DOMAIN ${name} AS ${def}` };
  }
  const fields = s(r.fields ?? '');
  return { kind: 'type', name, props: { fields }, sql: `CREATE TYPE ${name} AS (${fields})` };
}

/** Sequences, views and materialized views; tables come from tableObjects(). */
function relationObjects(relations: readonly Row[], objects: CatalogObject[]): void {
  for (const r of relations) {
    const name = s(r.qname);
    if (r.relkind === 'S') {
      if (r.identity_seq === true) continue; // an identity column's: its column says it
      const props: Record<string, string> = {
        type: s(r.seqtype),
        start: s(r.seqstart),
        increment: s(r.seqinc),
        minvalue: s(r.seqmin),
        maxvalue: s(r.seqmax),
        cache: s(r.seqcache),
        cycle: r.seqcycle === true ? 'CYCLE' : 'NO CYCLE',
        'owned by': r.owned_by === null ? '(none)' : s(r.owned_by),
      };
      objects.push({
        kind: 'sequence',
        name,
        props,
        sql: `CREATE SEQUENCE ${name} AS ${props.type} START WITH ${props.start} INCREMENT BY ${props.increment} MINVALUE ${props.minvalue} MAXVALUE ${props.maxvalue} CACHE ${props.cache} ${props.cycle}`,
      });
      if (r.owned_by !== null) {
        objects.push({
          kind: 'sequence',
          name: `${name} owner`,
          props: {},
          sql: `ALTER SEQUENCE ${name} OWNED BY ${s(r.owned_by)}`,
          late: true,
          printOnly: true,
        });
      }
    } else if (r.relkind === 'v' || r.relkind === 'm') {
      const def = s(r.viewdef).trim().replace(/;$/, '');
      const materialized = r.relkind === 'm';
      objects.push({
        kind: 'view',
        name,
        props: { definition: def, ...(materialized ? { materialized: 'yes' } : {}) },
        sql: materialized
          ? `CREATE MATERIALIZED VIEW ${name} AS\n${def}\nWITH NO DATA`
          : `CREATE VIEW ${name} AS\n${def}`,
      });
    }
  }
}

/**
 * Tables, their columns and their constraints. Primary keys, UNIQUE, CHECK and EXCLUDE go
 * inside CREATE TABLE; foreign keys and constraints not yet validated are added after every
 * table, where whatever they name exists.
 */
function tableObjects(
  relations: readonly Row[],
  columns: readonly Row[],
  constraints: readonly Row[],
  objects: CatalogObject[],
): void {
  const lines = new Map<string, string[]>();
  const tables: CatalogObject[] = [];
  for (const r of relations) {
    if (r.relkind !== 'r' && r.relkind !== 'p') continue;
    const name = s(r.qname);
    lines.set(name, []);
    tables.push({
      kind: 'table',
      name,
      props: {
        persistence: r.relpersistence === 'u' ? 'UNLOGGED' : 'logged',
        'row level security': r.relrowsecurity === true ? 'enabled' : 'disabled',
      },
      sql: '',
    });
  }
  for (const r of columns) {
    const table = s(r.tbl);
    const props: Record<string, string> = {
      type: s(r.type),
      nullable: r.notnull === true ? 'NOT NULL' : 'nullable',
      default: r.dflt === null || r.generated !== '' ? '(none)' : s(r.dflt),
    };
    if (r.identity !== '') props.identity = r.identity === 'a' ? 'ALWAYS' : 'BY DEFAULT';
    if (r.generated !== '') props.generated = `ALWAYS AS (${s(r.dflt)}) STORED`;
    if (r.collation !== null) props.collation = s(r.collation);
    objects.push({ kind: 'column', name: `${table}.${s(r.name)}`, table, props, sql: '' });
    let line = `${s(r.name)} ${props.type}`;
    if (props.collation) line += ` COLLATE ${props.collation}`;
    if (props.generated) line += ` GENERATED ${props.generated}`;
    else if (props.identity) line += ` GENERATED ${props.identity} AS IDENTITY`;
    else if (r.dflt !== null) line += ` DEFAULT ${s(r.dflt)}`;
    if (r.notnull === true) line += ' NOT NULL';
    lines.get(table)?.push(line);
  }
  const sorted = [...constraints].sort((a, b) => (s(a.name) < s(b.name) ? -1 : s(a.name) > s(b.name) ? 1 : 0));
  for (const r of sorted) {
    const table = s(r.tbl);
    const late = r.kind === 'f' || r.validated !== true;
    const def = s(r.def);
    objects.push({
      kind: 'constraint',
      name: s(r.name),
      table,
      props: {
        type: CONSTRAINT_KINDS[s(r.kind)] ?? s(r.kind),
        definition: def,
        validated: r.validated === true ? 'yes' : 'NOT VALID',
      },
      sql: late ? `ALTER TABLE ONLY ${table} ADD CONSTRAINT ${s(r.name)} ${def}` : '',
      late,
    });
    if (!late) lines.get(table)?.push(`CONSTRAINT ${s(r.name)} ${def}`);
  }
  for (const t of tables) {
    const body = lines.get(t.name) ?? [];
    const unlogged = t.props.persistence === 'UNLOGGED' ? 'UNLOGGED ' : '';
    t.sql = `CREATE ${unlogged}TABLE ${t.name} (${body.length === 0 ? '' : `\n    ${body.join(',\n    ')}\n`})`;
    if (t.props['row level security'] === 'enabled') {
      objects.push({
        kind: 'table',
        name: `${t.name} row level security`,
        props: {},
        sql: `ALTER TABLE ${t.name} ENABLE ROW LEVEL SECURITY`,
        late: true,
        printOnly: true,
      });
    }
    objects.push(t);
  }
}

/** A row with the scratch schema's name, where a printer qualified with it, read as `public`. */
function s(v: unknown): string {
  return v === null || v === undefined ? '' : String(v);
}

/** `name` bare when PostgreSQL would print it so (quote_ident's rule for a plain lower-case name). */
function identAsPrinted(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : quoteIdent(name);
}
