/**
 * PostgreSQL's schema in the shape both dialects share (runner/schema.ts), read from the system
 * catalogs (the scratch databases `check` migrates are in postgres-scratch.ts).
 *
 * Every schema but the system ones is read. Names in the current schema (`public` as a rule)
 * stay unqualified, so they line up with SQLite's; others are `schema.name`. Objects that belong
 * to an extension are left out (the extension itself is listed), as are indexes that back a
 * primary key, UNIQUE or EXCLUDE constraint (their names are PostgreSQL's: `users_pkey`), whose
 * uniqueness is kept as a unique column set.
 *
 * @module
 */
import type { Column, EnumType, Family, ForeignKey, Index, Schema, Table } from './schema.ts';

/** Runs one query on the caller's connection; rows as postgres.js returns them. */
export type Query = (text: string, params?: unknown[]) => Promise<ReadonlyArray<Record<string, unknown>>>;

const USER_SCHEMA = (n: string) =>
  `${n}.nspname NOT IN ('pg_catalog', 'information_schema') AND ${n}.nspname !~ '^pg_(toast|temp_)'`;
const NOT_EXTENSION = (catalog: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend dep WHERE dep.classid = '${catalog}'::regclass AND dep.objid = ${oid} AND dep.deptype = 'e')`;

const TABLES = `
  SELECT c.oid, n.nspname, c.relname
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND ${USER_SCHEMA('n')}
    AND NOT (n.nspname = $1 AND c.relname = $2)
    AND ${NOT_EXTENSION('pg_catalog.pg_class', 'c.oid')}`;

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

const ON_DELETE: Record<string, string> = {
  a: 'NO ACTION',
  r: 'RESTRICT',
  c: 'CASCADE',
  n: 'SET NULL',
  d: 'SET DEFAULT',
};

export const ENUMS_SQL = `SELECT t.oid::text AS oid, n.nspname, t.typname, json_agg(e.enumlabel ORDER BY e.enumsortorder)::text AS labels
     FROM pg_catalog.pg_type t
     JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
     JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid
     WHERE ${USER_SCHEMA('n')} AND ${NOT_EXTENSION('pg_catalog.pg_type', 't.oid')}
     GROUP BY t.oid, n.nspname, t.typname
     ORDER BY n.nspname, t.typname`;

const COLUMNS_SQL = (only = '') => `WITH tabs AS (${TABLES}${only})
     SELECT t.oid::text AS table_oid, t.nspname, t.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS type,
            bt.oid::text AS base_oid, bt.typname AS base, bt.typtype AS base_kind, bt.typcategory AS category,
            CASE WHEN ty.typtype = 'd' THEN ty.typtypmod ELSE a.atttypmod END AS typmod,
            a.attnotnull AS notnull, a.attidentity AS identity, a.attgenerated AS computed,
            pg_get_expr(d.adbin, d.adrelid) AS default_expr
     FROM tabs t
     JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
     JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
     JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.oid END
     LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     ORDER BY t.nspname, t.relname, a.attnum`;

const CONSTRAINTS_SQL = (only = '') => `WITH tabs AS (${TABLES}${only})
     SELECT t.oid::text AS table_oid, t.nspname, t.relname, con.contype::text AS kind, con.confdeltype::text AS on_delete,
            (SELECT json_agg(a.attname ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num)::text AS cols,
            fn.nspname AS ref_schema, fc.relname AS ref_table,
            (SELECT json_agg(a.attname ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num)::text AS ref_cols,
            pg_get_constraintdef(con.oid, true) AS def
     FROM tabs t
     JOIN pg_catalog.pg_constraint con ON con.conrelid = t.oid
     LEFT JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid
     LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
     WHERE con.contype IN ('p', 'f', 'c')
     ORDER BY t.nspname, t.relname, con.conname`;

const INDEXES_SQL = (only = '') => `WITH tabs AS (${TABLES}${only})
     SELECT t.oid::text AS table_oid, t.nspname, t.relname, ic.relname AS name, i.indisunique AS is_unique, i.indisprimary AS is_primary,
            EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x')) AS backs_constraint,
            (SELECT json_agg(
                      CASE WHEN i.indkey[k - 1] = 0 THEN '(' || pg_get_indexdef(i.indexrelid, k, true) || ')'
                           ELSE (SELECT a.attname FROM pg_catalog.pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = i.indkey[k - 1]) END
                      || CASE WHEN (i.indoption[k - 1] & 1) = 1 THEN ' DESC' ELSE '' END
                      ORDER BY k)
               FROM generate_series(1, i.indnkeyatts) k)::text AS cols,
            (SELECT bool_and(i.indkey[k - 1] <> 0) FROM generate_series(1, i.indnkeyatts) k) AS plain,
            pg_get_expr(i.indpred, i.indrelid, true) AS predicate
     FROM tabs t
     JOIN pg_catalog.pg_index i ON i.indrelid = t.oid
     JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
     ORDER BY t.nspname, t.relname, ic.relname`;

/**
 * Per table, the row versions (xmin) of every catalog row its model is read from: the table and
 * its schema, its columns with their types and defaults, its constraints with the tables they
 * reference, its indexes. DDL writes new row versions, so an unchanged string means an unchanged
 * table; a rolled-back change leaves the old versions. Lets check read again only what changed
 * (issue #26: reading every table after every step made it quadratic in the folder's length).
 */
export const VERSIONS_SQL = `WITH tabs AS (${TABLES}),
     att AS (SELECT a.attrelid AS oid, string_agg(a.xmin::text || ':' || ty.xmin::text || ':' || coalesce(d.xmin::text, ''), ',' ORDER BY a.attnum) AS v
          FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
          LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE a.attrelid IN (SELECT oid FROM tabs) AND a.attnum > 0 GROUP BY a.attrelid),
     con AS (SELECT con.conrelid AS oid, string_agg(con.xmin::text || ':' || coalesce(fc.xmin::text, '') || ':' || coalesce(fn.xmin::text, ''), ',' ORDER BY con.oid) AS v
          FROM pg_catalog.pg_constraint con LEFT JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid
          LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
          WHERE con.conrelid IN (SELECT oid FROM tabs) GROUP BY con.conrelid),
     idx AS (SELECT i.indrelid AS oid, string_agg(i.xmin::text || ':' || ic.xmin::text, ',' ORDER BY i.indexrelid) AS v
          FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
          WHERE i.indrelid IN (SELECT oid FROM tabs) GROUP BY i.indrelid)
     SELECT t.oid::text AS oid, concat_ws('|', c.xmin::text, n.xmin::text, att.v, con.v, idx.v) AS v
     FROM tabs t JOIN pg_catalog.pg_class c ON c.oid = t.oid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN att ON att.oid = t.oid LEFT JOIN con ON con.oid = t.oid LEFT JOIN idx ON idx.oid = t.oid`;

/** What one connection's last reading found, per table oid, to read again only the tables that changed. */
export interface PostgresSchemaCache {
  versions: Map<string, string>;
  tables: Map<string, Table>;
  /** The enum types and the current schema as last read: when they change, every table is read again. */
  context: string;
}

/** Every other object a migration can leave behind, as (kind, schema, name, extra, definition). */
export const OTHERS_SQL = `SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'c' THEN 'type' ELSE 'foreign table' END AS kind,
            n.nspname, c.relname AS name, NULL::text AS extra,
            CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) ELSE '' END AS def
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('v', 'm', 'S', 'c', 'f') AND ${USER_SCHEMA('n')} AND ${NOT_EXTENSION('pg_catalog.pg_class', 'c.oid')}
     UNION ALL
     SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
            n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), md5(coalesce(p.prosrc, '') || pg_get_function_result(p.oid))
     FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE ${USER_SCHEMA('n')} AND ${NOT_EXTENSION('pg_catalog.pg_proc', 'p.oid')}
     UNION ALL
     SELECT 'trigger', n.nspname, tg.tgname, c.relname, pg_get_triggerdef(tg.oid, true)
     FROM pg_catalog.pg_trigger tg JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE NOT tg.tgisinternal AND ${USER_SCHEMA('n')} AND NOT (n.nspname = $1 AND c.relname = $2)
     UNION ALL
     SELECT CASE t.typtype WHEN 'd' THEN 'domain' ELSE 'range type' END, n.nspname, t.typname, NULL, format_type(t.typbasetype, t.typtypmod)
     FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
     WHERE t.typtype IN ('d', 'r') AND ${USER_SCHEMA('n')} AND ${NOT_EXTENSION('pg_catalog.pg_type', 't.oid')}
     UNION ALL
     SELECT 'schema', n.nspname, n.nspname, NULL, ''
     FROM pg_catalog.pg_namespace n WHERE ${USER_SCHEMA('n')} AND n.nspname <> 'public'
     UNION ALL
     SELECT 'extension', NULL, e.extname, NULL, e.extversion FROM pg_catalog.pg_extension e WHERE e.extname <> 'plpgsql'`;

/** Names in the current schema stay bare; tables are made on first mention. */
interface Reading {
  qualify(schema: unknown, name: unknown): string;
  tableOf(r: Record<string, unknown>): Table;
}

/**
 * The schema `query` sees, without the record table `record` (schema and name). Reads only.
 * Arrays come back as JSON text, so the caller's connection needs no array type parsers. The
 * five catalog queries are sent at once: postgres.js pipelines them on the one connection.
 */
export async function introspectPostgres(
  query: Query,
  record: { schema: string; table: string },
  cache?: PostgresSchemaCache,
  names?: readonly string[],
  others = true,
): Promise<Schema> {
  const params = [record.schema, record.table];
  // Only tables of these (lower-cased, bare) names; with a cache, only those whose catalog rows changed.
  const named =
    names === undefined
      ? ''
      : ` AND lower(c.relname) IN (${[...new Set(names.map((n) => n.split('.').pop() as string))].map((n) => `'${n.replace(/'/g, "''")}'`).join(', ') || 'NULL'})`;
  const [[home], enumRows, otherRows, versionRows] = await Promise.all([
    query('SELECT current_schema() AS s'),
    query(ENUMS_SQL),
    others ? query(OTHERS_SQL, params) : Promise.resolve([]),
    cache ? query(VERSIONS_SQL, params) : Promise.resolve(undefined),
  ]);
  const current = typeof home?.s === 'string' ? home.s : 'public';
  const context = `${current}\0${JSON.stringify(enumRows)}`;
  const fresh = !cache || cache.context !== context;
  // The tables to read: every one, or (with a cache) those whose catalog rows changed.
  const changed = versionRows?.filter((r) => fresh || cache?.versions.get(String(r.oid)) !== String(r.v));
  const only =
    changed === undefined ? named : ` AND c.oid IN (${changed.map((r) => `${Number(r.oid)}`).join(', ') || 'NULL'})`;
  const [columnRows, constraintRows, indexRows] =
    changed?.length === 0
      ? [[], [], []]
      : await Promise.all([
          query(COLUMNS_SQL(only), params),
          query(CONSTRAINTS_SQL(only), params),
          query(INDEXES_SQL(only), params),
        ]);
  const tables = new Map<string, Table>();
  const oids = new Map<Table, string>();
  const qualify = (schema: unknown, name: unknown) =>
    schema === current ? String(name) : `${String(schema)}.${String(name)}`;
  const tableOf = (r: Record<string, unknown>): Table => {
    const name = qualify(r.nspname, r.relname);
    let t = tables.get(name);
    if (!t) {
      t = { name, columns: [], primaryKey: [], foreignKeys: [], uniques: [], indexes: [], checks: [] };
      tables.set(name, t);
      oids.set(t, String(r.table_oid));
    }
    return t;
  };
  const reading: Reading = { qualify, tableOf };
  const enums: EnumType[] = enumRows.map((r) => ({
    name: reading.qualify(r.nspname, r.typname),
    values: JSON.parse(String(r.labels)) as string[],
  }));
  const enumLabels = new Map(enumRows.map((r) => [String(r.oid), JSON.parse(String(r.labels)) as string[]]));
  readColumns(columnRows, reading, enumLabels);
  readConstraints(constraintRows, reading);
  readIndexes(indexRows, reading);
  for (const t of tables.values()) {
    t.uniques.sort((a, b) => a.join(',').localeCompare(b.join(',')));
    t.checks.sort();
  }
  if (cache && versionRows) {
    const read = new Map([...oids].map(([t, oid]) => [oid, t]));
    const next = new Map<string, Table>();
    for (const r of versionRows) {
      const oid = String(r.oid);
      const t = read.get(oid) ?? (changed?.includes(r) ? undefined : cache.tables.get(oid));
      if (!t) continue;
      next.set(oid, t);
      tables.set(t.name, t);
    }
    cache.versions = new Map(versionRows.map((r) => [String(r.oid), String(r.v)]));
    cache.tables = next;
    cache.context = context;
  }
  return {
    tables: [...tables.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    enums,
    others: readOthers(otherRows, reading),
  };
}

type Rows = ReadonlyArray<Record<string, unknown>>;

function readColumns(columnRows: Rows, { tableOf }: Reading, enumLabels: ReadonlyMap<string, string[]>): void {
  for (const r of columnRows) {
    const t = tableOf(r);
    const base = String(r.base);
    const isEnum = r.base_kind === 'e';
    const isArray = r.category === 'A';
    const expr = r.default_expr === null ? null : String(r.default_expr);
    const identity = r.identity === 'a' || r.identity === 'd';
    const computed = r.computed === 's' || r.computed === 'v';
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
    const columns = JSON.parse(String(r.cols)) as string[];
    const where = r.predicate === null ? null : String(r.predicate);
    if (r.is_unique === true && r.is_primary !== true && where === null && r.plain === true)
      t.uniques.push(columns.map((c) => c.replace(/ DESC$/, '')).sort());
    if (r.backs_constraint !== true) {
      const index: Index = { name: qualify(r.nspname, r.name), columns, unique: r.is_unique === true, where };
      t.indexes.push(index);
    }
  }
}

function readOthers(otherRows: Rows, { qualify }: Reading): Record<string, string> {
  const others: Record<string, string> = {};
  for (const r of otherRows) {
    const name = r.kind === 'schema' || r.kind === 'extension' ? String(r.name) : qualify(r.nspname, r.name);
    const key =
      r.kind === 'trigger'
        ? `trigger ${name} on ${qualify(r.nspname, r.extra)}`
        : r.extra !== null && r.extra !== undefined
          ? `${String(r.kind)} ${name}(${String(r.extra)})`
          : `${String(r.kind)} ${name}`;
    others[key] = String(r.def ?? '');
  }
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
