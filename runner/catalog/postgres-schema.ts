/**
 * PostgreSQL's schema in the shape both dialects share (catalog/schema.ts), built from the rows
 * catalog/postgres-read.ts reads, the same rows the exact `Catalog` (catalog/postgres.ts) is
 * built from.
 *
 * Every schema but the system ones is read. Names in the current schema (`public` as a rule)
 * stay unqualified, so they line up with SQLite's; others are `schema.name`. Objects that belong
 * to an extension are left out (the extension itself is listed), as are indexes that back a
 * primary key, UNIQUE or EXCLUDE constraint (their names are PostgreSQL's: `users_pkey`), whose
 * uniqueness is kept as a unique column set.
 *
 * @module
 */
import { type PostgresRows, type Query, type Row, type Rows, readPostgresRows } from './postgres-read.ts';
import { type ChangedRows, readChangedRows, type RowsCache } from './postgres-changes.ts';
import type { Column, EnumType, Family, ForeignKey, Index, Schema, Table } from './schema.ts';

/** pg_type names → family. Domains are read through to their base type first. */
const FAMILIES: Record<string, Family> = {
  int2: 'integer',
  int4: 'integer',
  int8: 'integer',
  text: 'text',
  varchar: 'text',
  bpchar: 'text',
  name: 'text',
  citext: 'text',
  bool: 'boolean',
  timestamp: 'timestamp',
  timestamptz: 'timestamp',
  date: 'timestamp',
  time: 'timestamp',
  timetz: 'timestamp',
  json: 'json',
  jsonb: 'json',
  numeric: 'numeric',
  money: 'numeric',
  float4: 'float',
  float8: 'float',
};

/** The family of a pg_type name (`int4`, `varchar`): what check's value generator needs of a type. */
export function familyOfType(typname: string): Family {
  return FAMILIES[typname] ?? 'other';
}

const ON_DELETE: Record<string, string> = {
  a: 'NO ACTION',
  r: 'RESTRICT',
  c: 'CASCADE',
  n: 'SET NULL',
  d: 'SET DEFAULT',
};

/** Names in the current schema stay bare; tables are made on first mention. */
interface Reading {
  qualify(schema: unknown, name: unknown): string;
  tableOf(r: Row): Table;
}

/**
 * The schema `query` sees, without the record table `record` (schema and name). Reads only. With
 * `cache`, only the tables whose catalog rows changed since its last reading are read again
 * (postgres-changes.ts).
 */
export async function introspectPostgres(
  query: Query,
  record: { schema: string; table: string },
  cache?: RowsCache,
): Promise<Schema> {
  if (!cache) return schemaOf(await readPostgresRows(query, record));
  return schemaOf(await readChangedRows(query, record, cache), cache.models);
}

/**
 * The cross-dialect schema of the rows catalog/postgres-read.ts read. Through a cache
 * (`models`), a table whose rows were not read again keeps the model made of them while the
 * rest of what it depends on reads the same: the current schema, which names stay bare, and
 * the labels of its enum types. Two readings then share the object, and comparing them skips it.
 */
function schemaOf(rows: PostgresRows | ChangedRows, models?: RowsCache['models']): Schema {
  const current = rows.home;
  const enumRows = rows.types.filter((r) => r.kind === 'e' && r.labels !== null);
  const qualify = (schema: unknown, name: unknown) =>
    schema === current ? String(name) : `${String(schema)}.${String(name)}`;
  const enums: EnumType[] = enumRows.map((r) => ({
    name: qualify(r.nspname, r.typname),
    values: JSON.parse(String(r.labels)) as string[],
  }));
  const enumLabels = new Map(enumRows.map((r) => [String(r.oid), JSON.parse(String(r.labels)) as string[]]));
  const tables: Table[] = [];
  if (models && 'owned' in rows) {
    for (const own of rows.owned) {
      const labels = own.columns.filter((r) => r.base_kind === 'e').map((r) => enumLabels.get(String(r.base_oid)));
      const context = `${current}\0${JSON.stringify(labels)}`;
      let model = models.get(own);
      if (model?.context !== context)
        models.set(own, (model = { context, tables: tablesOf(own, qualify, enumLabels) }));
      tables.push(...(model.tables as Table[]));
    }
    tables.push(...tablesOf(rows.unowned, qualify, enumLabels));
  } else tables.push(...tablesOf(rows, qualify, enumLabels));
  return {
    tables: tables.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    enums,
    others: readOthers(rows, qualify),
  };
}

/** The tables these rows describe (columns, constraints, indexes). */
function tablesOf(
  rows: Pick<PostgresRows, 'columns' | 'constraints' | 'indexes'>,
  qualify: Reading['qualify'],
  enumLabels: ReadonlyMap<string, string[]>,
): Table[] {
  const tables = new Map<string, Table>();
  const tableOf = (r: Row): Table => {
    const name = qualify(r.nspname, r.relname);
    let t = tables.get(name);
    if (!t) {
      t = { name, columns: [], primaryKey: [], foreignKeys: [], uniques: [], indexes: [], checks: [] };
      tables.set(name, t);
    }
    return t;
  };
  const reading: Reading = { qualify, tableOf };
  readColumns(rows.columns, reading, enumLabels);
  readConstraints(
    rows.constraints.filter((r) => r.kind === 'p' || r.kind === 'f' || r.kind === 'c'),
    reading,
  );
  readIndexes(
    rows.indexes.filter((r) => r.is_table === true),
    reading,
  );
  for (const t of tables.values()) {
    t.uniques.sort((a, b) => a.join(',').localeCompare(b.join(',')));
    t.checks.sort();
  }
  return [...tables.values()];
}

function readColumns(columnRows: Rows, { tableOf }: Reading, enumLabels: ReadonlyMap<string, string[]>): void {
  for (const r of columnRows) {
    const t = tableOf(r);
    const base = String(r.base);
    const isEnum = r.base_kind === 'e';
    const isArray = r.category === 'A';
    const expr = r.dflt === null ? null : String(r.dflt);
    const identity = r.identity === 'a' || r.identity === 'd';
    const computed = r.generated === 's' || r.generated === 'v';
    const serial = expr !== null && /^nextval\(/.test(expr);
    const column: Column = {
      name: String(r.attname),
      type: String(r.type),
      family: isArray ? 'other' : isEnum ? 'enum' : (FAMILIES[base] ?? 'other'),
      nullable: r.notnull !== true,
      hasDefault: expr !== null && !serial && !computed,
      default: computed ? null : identity ? null : expr,
      generated: identity || serial || computed,
    };
    if (identity) column.default = `GENERATED ${r.identity === 'a' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY`;
    if (computed) column.default = `GENERATED ALWAYS AS (${expr ?? ''})`;
    if (isEnum && !isArray) column.values = enumLabels.get(String(r.base_oid)) ?? [];
    const typmod = Number(r.typmod);
    if ((base === 'varchar' || base === 'bpchar') && !isArray && typmod > 4) column.maxLength = typmod - 4;
    t.columns.push(column);
  }
}

function readConstraints(constraintRows: Rows, { tableOf, qualify }: Reading): void {
  for (const r of constraintRows) {
    const t = tableOf(r);
    const columns = r.cols === null ? [] : (JSON.parse(String(r.cols)) as string[]);
    if (r.kind === 'p') t.primaryKey = columns;
    else if (r.kind === 'f') {
      const fk: ForeignKey = {
        columns,
        refTable: qualify(r.ref_schema, r.ref_table),
        refColumns: r.ref_cols === null ? [] : (JSON.parse(String(r.ref_cols)) as string[]),
        onDelete: ON_DELETE[String(r.on_delete)] ?? String(r.on_delete),
      };
      t.foreignKeys.push(fk);
    } else {
      const def = String(r.def).replace(/^CHECK /, '');
      // A CHECK that made a text column an enum or length-limited is compared as that column's
      // fact; `checks` keeps the rest, so one change is not reported twice.
      if (columns.length !== 1 || !applyCheck(t, columns[0] as string, def)) t.checks.push(def);
    }
  }
}

function readIndexes(indexRows: Rows, { tableOf, qualify }: Reading): void {
  for (const r of indexRows) {
    const t = tableOf(r);
    const columns = JSON.parse(String(r.key_cols)) as string[];
    const where = r.predicate === null ? null : String(r.predicate);
    if (r.is_unique === true && r.is_primary !== true && where === null && r.plain === true)
      t.uniques.push(columns.map((c) => c.replace(/ DESC$/, '')).sort());
    if (r.backs_constraint !== true) {
      const index: Index = { name: qualify(r.nspname, r.index_name), columns, unique: r.is_unique === true, where };
      t.indexes.push(index);
    }
  }
}

const RELATION_KINDS: Record<string, string> = {
  v: 'view',
  m: 'materialized view',
  S: 'sequence',
  c: 'type',
  f: 'foreign table',
};
const FUNCTION_KINDS: Record<string, string> = { p: 'procedure', a: 'aggregate' };

/** Every other object a migration can leave behind, keyed `kind name`, valued by its definition. */
function readOthers(rows: PostgresRows, qualify: Reading['qualify']): Record<string, string> {
  const others: Record<string, string> = {};
  for (const r of rows.relations) {
    const kind = RELATION_KINDS[String(r.relkind)];
    if (kind !== undefined) others[`${kind} ${qualify(r.nspname, r.relname)}`] = String(r.viewdef ?? '');
  }
  for (const r of rows.functions) {
    const kind = FUNCTION_KINDS[String(r.prokind)] ?? 'function';
    others[`${kind} ${qualify(r.nspname, r.proname)}(${String(r.args)})`] = String(r.digest ?? '');
  }
  for (const r of rows.triggers)
    others[`trigger ${qualify(r.nspname, r.tgname)} on ${qualify(r.nspname, r.relname)}`] = String(r.def ?? '');
  for (const r of rows.types) {
    if (r.kind === 'd' || r.kind === 'r')
      others[`${r.kind === 'd' ? 'domain' : 'range type'} ${qualify(r.nspname, r.typname)}`] = String(r.base ?? '');
  }
  for (const r of rows.schemas) others[`schema ${String(r.nspname)}`] = '';
  for (const r of rows.extensions) others[`extension ${String(r.name)}`] = String(r.version ?? '');
  return others;
}

/**
 * What a one-column CHECK says in the forms PostgreSQL prints back: an IN list of strings
 * (`(status)::text = ANY ((ARRAY['a'::character varying, …])::text[])`) makes a text column an
 * enum, as on SQLite; `length(col) <= n` is a length limit.
 */
function applyCheck(t: Table, column: string, def: string): boolean {
  const c = t.columns.find((x) => x.name === column);
  if (!c) return false;
  const anyArray = /^\(*\(?"?[\w$]+"?\)?(?:::[\w ]+)? = ANY \(\(?ARRAY\[(.*)\]\)?(?:::[\w ]+\[\])?\)\)*$/.exec(def);
  if (anyArray && c.family === 'text') {
    const labels = [...(anyArray[1] as string).matchAll(/'((?:[^']|'')*)'(?:::[\w ]+)?/g)].map((m) =>
      (m[1] as string).replace(/''/g, "'"),
    );
    if (labels.length === 0) return false;
    c.family = 'enum';
    c.values = labels;
    return true;
  }
  const length = /^\(*(?:char_)?length\(\(?"?[\w$]+"?\)?(?:::text)?\) (<=|<) (\d+)\)*$/.exec(def);
  if (!length || c.maxLength !== undefined) return false;
  c.maxLength = length[1] === '<' ? Number(length[2]) - 1 : Number(length[2]);
  return true;
}
