import type { Catalog, CatalogObject } from './model.ts';

/** Runs one query on the caller's connection; rows as postgres.js returns them. */
export type Query = (text: string, params?: unknown[]) => Promise<ReadonlyArray<Record<string, unknown>>>;

type Row = Record<string, unknown>;

/** The schemas read: every one but the system's. */
const USER_SCHEMA = (n: string) =>
  `${n}.nspname NOT IN ('pg_catalog', 'information_schema') AND ${n}.nspname !~ '^pg_(toast|temp_|toast_temp_)'`;
const NOT_EXTENSION = (catalog: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend dep WHERE dep.classid = '${catalog}'::regclass AND dep.objid = ${oid} AND dep.deptype = 'e')`;
/** `name` in the pinned schema, `schema.name` elsewhere; both quoted as needed. */
const QNAME = (n: string, name: string) =>
  `CASE WHEN ${n}.nspname = current_schema() THEN quote_ident(${name}) ELSE quote_ident(${n}.nspname) || '.' || quote_ident(${name}) END`;

const RELATIONS = `
  SELECT c.oid, c.relname, c.relkind, c.relpersistence, c.relrowsecurity, n.nspname, ${QNAME('n', 'c.relname')} AS qname
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND NOT c.relispartition AND ${USER_SCHEMA('n')}
    AND NOT (n.nspname = $1 AND c.relname = $2)
    AND ${NOT_EXTENSION('pg_catalog.pg_class', 'c.oid')}`;

/** The catalog queries. */
const QUERIES = {
  extensions: `SELECT e.extname AS name, e.extversion AS version, n.nspname AS schema
    FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname <> 'plpgsql'`,
  schemas: `SELECT quote_ident(n.nspname) AS name FROM pg_catalog.pg_namespace n
    WHERE ${USER_SCHEMA('n')} AND n.nspname <> 'public' AND ${NOT_EXTENSION('pg_catalog.pg_namespace', 'n.oid')}
      AND NOT (n.nspname = $1 AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.relnamespace = n.oid AND c.relname <> $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'c', 'f')))`,
  types: `SELECT ${QNAME('n', 't.typname')} AS name, t.typtype AS kind,
      (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid)::text AS labels,
      format_type(t.typbasetype, t.typtypmod) AS base, t.typnotnull AS notnull, t.typdefault AS dflt,
      (SELECT string_agg(' CONSTRAINT ' || quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid, true), '' ORDER BY c.conname)
         FROM pg_catalog.pg_constraint c WHERE c.contypid = t.oid) AS checks,
      (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
         FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) AS fields
    FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
    WHERE (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c'))
      AND ${USER_SCHEMA('n')} AND ${NOT_EXTENSION('pg_catalog.pg_type', 't.oid')}`,
  relations: `WITH rel AS (${RELATIONS})
    SELECT r.qname, r.relkind, r.relpersistence, r.relrowsecurity,
      CASE WHEN r.relkind IN ('v', 'm') THEN pg_get_viewdef(r.oid, true) END AS viewdef,
      s.seqtypid::regtype::text AS seqtype, s.seqstart::text AS seqstart, s.seqincrement::text AS seqinc,
      s.seqmin::text AS seqmin, s.seqmax::text AS seqmax, s.seqcache::text AS seqcache, s.seqcycle AS seqcycle,
      (SELECT ${QNAME('on2', 'oc.relname')} || '.' || quote_ident(a.attname)
         FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class oc ON oc.oid = d.refobjid
         JOIN pg_catalog.pg_namespace on2 ON on2.oid = oc.relnamespace
         JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
         WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = r.oid AND d.deptype = 'a' AND d.refobjsubid > 0) AS owned_by,
      EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = r.oid AND d.deptype = 'i') AS identity_seq
    FROM rel r LEFT JOIN pg_catalog.pg_sequence s ON s.seqrelid = r.oid`,
  columns: `WITH rel AS (${RELATIONS})
    SELECT r.qname AS tbl, quote_ident(a.attname) AS name, format_type(a.atttypid, a.atttypmod) AS type,
      a.attnotnull AS notnull, a.attidentity AS identity, a.attgenerated AS generated,
      pg_get_expr(d.adbin, d.adrelid) AS dflt,
      CASE WHEN a.attcollation <> t.typcollation THEN (SELECT quote_ident(co.collname) FROM pg_catalog.pg_collation co WHERE co.oid = a.attcollation) END AS collation
    FROM rel r
    JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE r.relkind IN ('r', 'p')
    ORDER BY r.qname, a.attnum`,
  // 18 also lists each NOT NULL as a constraint (`t_a_not_null`); every version says it as the
  // column's nullability, read alone, so the embedded PostgreSQL (18) reads as a 15 server.
  constraints: `WITH rel AS (${RELATIONS})
    SELECT r.qname AS tbl, quote_ident(c.conname) AS name, c.contype AS kind, c.convalidated AS validated,
      pg_get_constraintdef(c.oid, true) AS def
    FROM rel r JOIN pg_catalog.pg_constraint c ON c.conrelid = r.oid
    WHERE r.relkind IN ('r', 'p') AND c.contype <> 'n'`,
  indexes: `WITH rel AS (${RELATIONS})
    SELECT r.qname AS tbl, ${QNAME('n', 'ic.relname')} AS name, pg_get_indexdef(i.indexrelid) AS def,
      i.indisunique AS is_unique, i.indisvalid AS valid, am.amname AS method,
      (SELECT string_agg(pg_get_indexdef(i.indexrelid, k, true), ', ' ORDER BY k) FROM generate_series(1, i.indnatts) k) AS cols,
      pg_get_expr(i.indpred, i.indrelid, true) AS predicate
    FROM rel r JOIN pg_catalog.pg_index i ON i.indrelid = r.oid
    JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
    JOIN pg_catalog.pg_am am ON am.oid = ic.relam
    WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x'))`,
  functions: `SELECT ${QNAME('n', 'p.proname')} || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS name,
      pg_get_functiondef(p.oid) AS def
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE p.prokind IN ('f', 'p') AND ${USER_SCHEMA('n')} AND ${NOT_EXTENSION('pg_catalog.pg_proc', 'p.oid')}`,
  triggers: `WITH rel AS (${RELATIONS})
    SELECT r.qname AS tbl, quote_ident(tg.tgname) AS name, pg_get_triggerdef(tg.oid, true) AS def, tg.tgenabled AS enabled
    FROM rel r JOIN pg_catalog.pg_trigger tg ON tg.tgrelid = r.oid
    WHERE NOT tg.tgisinternal`,
};

const CONSTRAINT_KINDS: Record<string, string> = {
  p: 'primary key',
  u: 'unique',
  c: 'check',
  f: 'foreign key',
  x: 'exclude',
  t: 'trigger',
};

/**
 * The catalog `query` sees, without the record table (`record`: its schema and name). Reads
 * only.
 */
export async function readPostgresCatalog(read: Query, record: { schema: string; table: string }): Promise<Catalog> {
  const params = [record.schema, record.table];
  const query = read;
  const [extensions, schemas, types, relations, columns, constraints, indexes, functions, triggers] = await Promise.all(
    [
      query(QUERIES.extensions),
      query(QUERIES.schemas, params),
      query(QUERIES.types),
      query(QUERIES.relations, params),
      query(QUERIES.columns, params),
      query(QUERIES.constraints, params),
      query(QUERIES.indexes, params),
      query(QUERIES.functions),
      query(QUERIES.triggers, params),
    ],
  );
  const objects: CatalogObject[] = [];
  for (const r of extensions) {
    objects.push({
      kind: 'extension',
      name: s(r.name),
      props: { version: s(r.version), schema: s(r.schema) },
      sql: `CREATE EXTENSION IF NOT EXISTS ${quoteIdent(s(r.name))} WITH SCHEMA ${quoteIdent(s(r.schema))}`,
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
    const labels = (JSON.parse(s(r.labels ?? '[]')) as string[]).map(quoteLiteral).join(', ');
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

function s(v: unknown): string {
  return v === null || v === undefined ? '' : String(v);
}

function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
