/**
 * PostgreSQL's system catalogs, read once for both models built from them: the exact `Catalog`
 * that `schema` and `drift` compare (catalog/postgres.ts) and the cross-dialect `Schema` that
 * `check` compares (catalog/postgres-schema.ts). SQLite works the same way: catalog/sqlite.ts is
 * built from catalog/sqlite-schema.ts.
 *
 * Each query returns the union of what the two models need, with flags where they keep different
 * sets (`in_catalog`, `is_table`, `backs_constraint`, …); each model picks its rows. Names come
 * back twice: raw (`nspname`, `relname`) for the `Schema`, and quoted and qualified against
 * `current_schema()` (`qname`) for the `Catalog`. Arrays come back as JSON text, so the
 * caller's connection needs no array type parsers.
 *
 * Left out everywhere: system schemas, objects that belong to an extension (the extension is
 * listed), and the record table with what hangs off it.
 *
 * @module
 */

/** Runs one query on the caller's connection; rows as postgres.js returns them. */
export type Query = (text: string, params?: unknown[]) => Promise<ReadonlyArray<Record<string, unknown>>>;

export type Row = Record<string, unknown>;
export type Rows = ReadonlyArray<Row>;

/** The rows of every catalog either model reads; `home` is `current_schema()`. */
export interface PostgresRows {
  home: string;
  extensions: Rows;
  schemas: Rows;
  types: Rows;
  relations: Rows;
  columns: Rows;
  constraints: Rows;
  indexes: Rows;
  functions: Rows;
  triggers: Rows;
}

/** The schemas read: every one but the system's. */
const USER_SCHEMA = (n: string) =>
  `${n}.nspname NOT IN ('pg_catalog', 'information_schema') AND ${n}.nspname !~ '^pg_(toast|temp_|toast_temp_)'`;
/**
 * Whether `from` finds no row, asked per row through the catalogs' indexes: the planner turns a
 * `[NOT] EXISTS` in a select list into a hash over the whole catalog (all of pg_depend,
 * pg_constraint), which costs as much for a reading of one table (postgres-changes.ts) as for all.
 */
const NONE = (from: string) => `(SELECT count(*) FROM ${from}) = 0`;
/** Not an extension's member; the rows looked at are found from the extension's side (an index), not by scanning pg_depend. */
const NOT_EXTENSION = (catalog: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend dep WHERE dep.refclassid = 'pg_catalog.pg_extension'::regclass AND dep.classid = '${catalog}'::regclass AND dep.objid = ${oid} AND dep.deptype = 'e')`;
/** `name` in the current schema, `schema.name` elsewhere; both quoted as needed. */
const QNAME = (n: string, name: string) =>
  `CASE WHEN ${n}.nspname = current_schema() THEN quote_ident(${name}) ELSE quote_ident(${n}.nspname) || '.' || quote_ident(${name}) END`;
const IS_RECORD = `(n.nspname = $1 AND c.relname = $2)`;

/**
 * Every relation a model lists. `in_catalog`: one the `Catalog` lists (no partition, composite
 * type or foreign table); `is_table`: a table whose columns and constraints both models read.
 */
const RELATIONS = (scoped?: boolean) => `
  SELECT c.oid, c.relname, c.relkind, c.relpersistence, c.relrowsecurity, n.nspname, ${QNAME('n', 'c.relname')} AS qname,
    (c.relkind IN ('r', 'p', 'v', 'm', 'S') AND NOT c.relispartition AND NOT ${IS_RECORD}) AS in_catalog,
    (c.relkind IN ('r', 'p') AND NOT c.relispartition AND NOT ${IS_RECORD}) AS is_table
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'c', 'f') AND ${USER_SCHEMA('n')}
    AND ${NOT_EXTENSION('pg_catalog.pg_class', 'c.oid')}${scoped ? ` AND ${IN_SCOPE('c')}` : ''}`;

/** With a scope (`$3`, table oids): those tables, and every relation that is not a table. */
const IN_SCOPE = (c: string) => `(${c}.relkind NOT IN ('r', 'p') OR ${c}.oid = ANY ($3::text::oid[]))`;

/** Each relation's parts, looked up through the catalog's index on the relation (`OFFSET 0` keeps it a loop per relation). */
const PER_RELATION = (catalog: string, column: string, columns: string) =>
  `CROSS JOIN LATERAL (SELECT ${columns} FROM ${catalog} x WHERE x.${column} = r.oid OFFSET 0)`;

/**
 * An index's first `count` columns, numbered from 1 (`k`; `attnum` 0 for an expression). Not
 * generate_series: the planner takes that for a thousand rows per index, and the estimate of a
 * reading passed a million, where a server compiles the statement (JIT) for seconds.
 */
const KEYS = (count: string) => `unnest(i.indkey::int2[]) WITH ORDINALITY u(attnum, k) WHERE u.k <= ${count}`;

/**
 * The parts of the reading, each a query over `rel` (the relations read, made once per reading).
 * Each relation's rows carry its oid (`rel_oid`).
 */
const queries = (scoped: boolean) => ({
  extensions: `SELECT e.extname AS name, e.extversion AS version, n.nspname AS schema
    FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname <> 'plpgsql'`,
  // own: not an extension's; record_only: the record table's schema, holding nothing else.
  schemas: `SELECT n.nspname, quote_ident(n.nspname) AS name, ${NOT_EXTENSION('pg_catalog.pg_namespace', 'n.oid')} AS own,
      (n.nspname = $1 AND ${NONE(`pg_catalog.pg_class c WHERE c.relnamespace = n.oid AND c.relname <> $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'c', 'f')`)}) AS record_only
    FROM pg_catalog.pg_namespace n
    WHERE ${USER_SCHEMA('n')} AND n.nspname <> 'public'`,
  types: `SELECT t.oid::text AS oid, n.nspname, t.typname, ${QNAME('n', 't.typname')} AS name, t.typtype::text AS kind,
      (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid)::text AS labels,
      format_type(t.typbasetype, t.typtypmod) AS base, t.typnotnull AS notnull, t.typdefault AS dflt,
      (SELECT string_agg(' CONSTRAINT ' || quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid, true), '' ORDER BY c.conname)
         FROM pg_catalog.pg_constraint c WHERE c.contypid = t.oid) AS checks,
      (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
         FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) AS fields
    FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
    WHERE (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c'))
      AND ${USER_SCHEMA('n')} AND ${NOT_EXTENSION('pg_catalog.pg_type', 't.oid')}
    ORDER BY n.nspname, t.typname`,
  relations: `SELECT r.oid::text AS rel_oid, r.nspname, r.relname, r.qname, r.relkind, r.relpersistence, r.relrowsecurity, r.in_catalog,
      CASE WHEN r.relkind IN ('v', 'm') THEN pg_get_viewdef(r.oid, true) END AS viewdef,
      s.seqtypid::regtype::text AS seqtype, s.seqstart::text AS seqstart, s.seqincrement::text AS seqinc,
      s.seqmin::text AS seqmin, s.seqmax::text AS seqmax, s.seqcache::text AS seqcache, s.seqcycle AS seqcycle,
      (SELECT ${QNAME('on2', 'oc.relname')} || '.' || quote_ident(a.attname)
         FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class oc ON oc.oid = d.refobjid
         JOIN pg_catalog.pg_namespace on2 ON on2.oid = oc.relnamespace
         JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
         WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = r.oid AND d.deptype = 'a' AND d.refobjsubid > 0) AS owned_by,
      NOT ${NONE(`pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = r.oid AND d.deptype = 'i'`)} AS identity_seq
    FROM rel r LEFT JOIN pg_catalog.pg_sequence s ON s.seqrelid = r.oid`,
  columns: `SELECT r.oid::text AS rel_oid, r.nspname, r.relname, r.qname AS tbl, a.attname, quote_ident(a.attname) AS name,
      format_type(a.atttypid, a.atttypmod) AS type,
      bt.oid::text AS base_oid, bt.typname AS base, bt.typtype AS base_kind, bt.typcategory AS category,
      CASE WHEN ty.typtype = 'd' THEN ty.typtypmod ELSE a.atttypmod END AS typmod,
      a.attnotnull AS notnull, a.attidentity AS identity, a.attgenerated AS generated,
      pg_get_expr(d.adbin, d.adrelid) AS dflt,
      CASE WHEN a.attcollation <> ty.typcollation THEN (SELECT quote_ident(co.collname) FROM pg_catalog.pg_collation co WHERE co.oid = a.attcollation) END AS collation
    FROM rel r
    ${PER_RELATION('pg_catalog.pg_attribute', 'attrelid', 'x.attrelid, x.attnum, x.attname, x.atttypid, x.atttypmod, x.attnotnull, x.attidentity, x.attgenerated, x.attcollation, x.attisdropped')} a
    JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
    JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.oid END
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE r.is_table AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY r.nspname, r.relname, a.attnum`,
  // 18 also lists each NOT NULL as a constraint (`t_a_not_null`); every version says it as the
  // column's nullability, read alone, so the embedded PostgreSQL (18) reads as a 15 server.
  constraints: `SELECT r.oid::text AS rel_oid, r.nspname, r.relname, r.qname AS tbl, quote_ident(c.conname) AS name, c.contype::text AS kind,
      c.convalidated AS validated, pg_get_constraintdef(c.oid, true) AS def, c.confdeltype::text AS on_delete,
      (SELECT json_agg(a.attname ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY k(num, ord)
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num)::text AS cols,
      fn.nspname AS ref_schema, fc.relname AS ref_table,
      (SELECT json_agg(a.attname ORDER BY k.ord) FROM unnest(c.confkey) WITH ORDINALITY k(num, ord)
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num)::text AS ref_cols
    FROM rel r ${PER_RELATION('pg_catalog.pg_constraint', 'conrelid', 'x.oid, x.conname, x.contype, x.convalidated, x.confdeltype, x.conrelid, x.confrelid, x.conkey, x.confkey')} c
    LEFT JOIN pg_catalog.pg_class fc ON fc.oid = c.confrelid
    LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
    WHERE r.is_table AND c.contype <> 'n'
    ORDER BY r.nspname, r.relname, c.conname`,
  // cols: every column, as pg_get_indexdef prints it; key_cols: the key's, `(expr)` and ` DESC` marked.
  indexes: `SELECT r.oid::text AS rel_oid, r.nspname, r.relname, r.qname AS tbl, r.is_table, ic.relname AS index_name, ${QNAME('n', 'ic.relname')} AS name,
      pg_get_indexdef(i.indexrelid) AS def, i.indisunique AS is_unique, i.indisprimary AS is_primary,
      i.indisvalid AS valid, am.amname AS method,
      NOT ${NONE(`pg_catalog.pg_constraint c WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x')`)} AS backs_constraint,
      (SELECT string_agg(pg_get_indexdef(i.indexrelid, k::int, true), ', ' ORDER BY k) FROM ${KEYS('i.indnatts')}) AS cols,
      (SELECT json_agg(
                CASE WHEN u.attnum = 0 THEN '(' || pg_get_indexdef(i.indexrelid, k::int, true) || ')'
                     ELSE (SELECT a.attname FROM pg_catalog.pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = u.attnum) END
                || CASE WHEN (i.indoption[k - 1] & 1) = 1 THEN ' DESC' ELSE '' END
                ORDER BY k)
         FROM ${KEYS('i.indnkeyatts')})::text AS key_cols,
      (SELECT bool_and(u.attnum <> 0) FROM ${KEYS('i.indnkeyatts')}) AS plain,
      pg_get_expr(i.indpred, i.indrelid, true) AS predicate
    FROM rel r ${PER_RELATION('pg_catalog.pg_index', 'indrelid', 'x.indexrelid, x.indrelid, x.indisunique, x.indisprimary, x.indisvalid, x.indnatts, x.indnkeyatts, x.indkey, x.indoption, x.indpred')} i
    JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
    JOIN pg_catalog.pg_am am ON am.oid = ic.relam
    WHERE r.in_catalog
    ORDER BY r.nspname, r.relname, ic.relname`,
  // pg_get_functiondef refuses an aggregate: the `Catalog` lists functions and procedures only.
  functions: `SELECT n.nspname, p.proname, p.prokind::text AS prokind, pg_get_function_identity_arguments(p.oid) AS args,
      ${QNAME('n', 'p.proname')} || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS name,
      CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) END AS def,
      md5(coalesce(p.prosrc, '') || pg_get_function_result(p.oid)) AS digest
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE ${USER_SCHEMA('n')} AND ${NOT_EXTENSION('pg_catalog.pg_proc', 'p.oid')}`,
  // Every trigger outside the record table; in_catalog: on a relation the `Catalog` lists.
  triggers: `SELECT c.oid::text AS rel_oid, n.nspname, c.relname, ${QNAME('n', 'c.relname')} AS tbl, tg.tgname, quote_ident(tg.tgname) AS name,
      pg_get_triggerdef(tg.oid, true) AS def, tg.tgenabled AS enabled,
      EXISTS (SELECT 1 FROM rel r WHERE r.oid = c.oid AND r.in_catalog) AS in_catalog
    FROM pg_catalog.pg_trigger tg JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE NOT tg.tgisinternal AND ${USER_SCHEMA('n')} AND NOT ${IS_RECORD}${scoped ? ` AND ${IN_SCOPE('c')}` : ''}`,
});

type Part = keyof ReturnType<typeof queries>;
const PARTS = Object.keys(queries(false)) as Part[];

/**
 * The whole reading as one statement: `rel` is made once, and each part comes back as one JSON
 * array. One statement, not nine: a pooler in transaction mode stops answering a client that
 * pipelines nine (test/pooler.test.ts), and sent one after another each paid a round trip, on
 * the embedded PostgreSQL a turn of its socket server's queue.
 */
const READING = (scoped: boolean) => {
  const q = queries(scoped);
  return `WITH rel AS MATERIALIZED (${RELATIONS(scoped)})
  SELECT current_schema() AS home,
    ${PARTS.map((part) => `(SELECT json_agg(x) FROM (${q[part]}) x)::text AS ${part}`).join(',\n    ')}`;
};
const READINGS = { scoped: READING(true), whole: READING(false) };

/**
 * The rows `query` sees, without the record table (`record`: its schema and name). Reads only.
 * With `tables` (oids), the rows of those tables alone, besides every relation that is not a table
 * (postgres-changes.ts).
 */
export async function readPostgresRows(
  query: Query,
  record: { schema: string; table: string },
  tables?: readonly string[],
): Promise<PostgresRows> {
  const params = [record.schema, record.table];
  // An array literal in text: the caller's connection needs no array type serializers.
  const scoped = tables !== undefined;
  const [row] = await query(
    scoped ? READINGS.scoped : READINGS.whole,
    scoped ? [...params, `{${tables.join(',')}}`] : params,
  );
  const part = (name: Part): Rows => JSON.parse(String(row?.[name] ?? 'null')) ?? [];
  return {
    home: typeof row?.home === 'string' ? row.home : 'public',
    extensions: part('extensions'),
    schemas: part('schemas'),
    types: part('types'),
    relations: part('relations'),
    columns: part('columns'),
    constraints: part('constraints'),
    indexes: part('indexes'),
    functions: part('functions'),
    triggers: part('triggers'),
  };
}
