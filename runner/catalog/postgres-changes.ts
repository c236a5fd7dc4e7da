/**
 * Which tables a PostgreSQL reading must read again: check reads its scratch database after every
 * step, and reading every table each time made it quadratic in the folder's length (issue #26:
 * 1000 revisions read the catalog of up to 670 tables 3000 times). What changed is read from the
 * catalogs themselves, never guessed from the SQL that ran.
 *
 * The rule it rests on: a DDL statement writes new row versions into the system catalogs, and
 * every row version it writes carries its transaction's id (`xmin`), which is newer than every
 * id handed out before. A reading keeps the first id not yet handed out (its horizon); the next
 * reading takes as changed every table with a catalog row at or past it: the table's own row,
 * its columns, defaults, constraints, indexes (and their names) and triggers, the tables its
 * foreign keys reference, the types of its columns, the sequences and other relations its
 * parts depend on. A row deleted leaves no version behind, so the constraints, indexes,
 * triggers and defaults of the tables are also counted, and a count that drops is traced to its
 * table. A change to what every table's text may name (a schema, function, type, operator,
 * collation, extension, the search path) reads every table again. `age()` compares ids, so the
 * wrap-around of the 32-bit counter is no concern.
 *
 * @module
 */
import { type PostgresRows, type Query, type Rows, readPostgresRows } from './postgres-read.ts';

/** The catalogs of a table's parts whose rows can be deleted while the table stays. */
const PARTS = {
  constraint: { catalog: 'pg_catalog.pg_constraint', rel: 'conrelid' },
  index: { catalog: 'pg_catalog.pg_index', rel: 'indrelid', oid: 'indexrelid' },
  trigger: { catalog: 'pg_catalog.pg_trigger', rel: 'tgrelid' },
  default: { catalog: 'pg_catalog.pg_attrdef', rel: 'adrelid' },
} as const;
type Part = keyof typeof PARTS;

/** Written at or past the horizon `$1` (every row when `$1` is null). */
const FRESH = (row: string) => `(age(${row}.xmin) <= (SELECT coalesce(age($1::text::xid), 2147483647)))`;
const USER = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'`;
/**
 * How many names of `catalog` objects made after initdb are taken in more than one schema: a name
 * printed bare or qualified (a `regclass` in a default, a type, a function) depends on which
 * schema on the search path has it first, so one made, renamed or dropped there reads every
 * table again. Counted only when it can have changed (`$2`, or a row made or renamed that takes
 * a name another schema has, initdb's own included: a superuser may rename those): a count can
 * only grow through such a row, and only fall from above zero. Counting costs more than the
 * rest of the query at 600 tables.
 */
const SHADOWS = (catalog: string, name: string, namespace: string) =>
  `(SELECT count(*) FROM (SELECT x.${name} FROM pg_catalog.${catalog} x
     WHERE x.${name} IN (SELECT y.${name} FROM pg_catalog.${catalog} y WHERE y.oid >= 16384)
     GROUP BY x.${name} HAVING count(DISTINCT x.${namespace}) > 1) d)::text`;
/** Objects made after initdb: their oids start at FirstNormalObjectId. */
const MADE = (oid: string) => `${oid} >= 16384`;

const CHANGES = `WITH cls AS MATERIALIZED (
    SELECT c.oid, c.relname, c.relnamespace, c.relkind, ${FRESH('c')} AS fresh,
      c.relkind IN ('r', 'p') AND EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.oid = c.relnamespace AND ${USER}) AS is_table
    FROM pg_catalog.pg_class c
    WHERE ${FRESH('c')} OR (c.relkind IN ('r', 'p') AND ${MADE('c.oid')})),
  tab AS (SELECT oid FROM cls WHERE is_table),
  other AS (SELECT oid FROM cls WHERE fresh AND ${MADE('oid')} AND relkind NOT IN ('r', 'p', 'i', 'I')),
  moved AS (
    SELECT oid FROM cls WHERE fresh AND ${MADE('oid')}
    UNION SELECT a.attrelid FROM pg_catalog.pg_attribute a WHERE a.attrelid::int8 >= 16384 AND a.attnum > 0 AND ${FRESH('a')}),
  types AS (SELECT t.oid FROM pg_catalog.pg_type t WHERE ${MADE('t.oid')} AND ${FRESH('t')}),
  touched AS (
    SELECT oid FROM moved
    UNION SELECT d.adrelid FROM pg_catalog.pg_attrdef d WHERE ${FRESH('d')}
    UNION SELECT c.conrelid FROM pg_catalog.pg_constraint c WHERE ${FRESH('c')}
    UNION SELECT c.conrelid FROM pg_catalog.pg_constraint c WHERE c.confrelid IN (SELECT oid FROM moved)
    UNION SELECT i.indrelid FROM pg_catalog.pg_index i WHERE ${FRESH('i')} OR i.indexrelid IN (SELECT oid FROM moved)
    UNION SELECT g.tgrelid FROM pg_catalog.pg_trigger g WHERE ${FRESH('g')}
    UNION SELECT d.objid FROM pg_catalog.pg_depend d
      WHERE d.refclassid = 'pg_catalog.pg_type'::regclass AND d.refobjid IN (SELECT oid FROM types)
        AND d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid > 0
    UNION SELECT d.refobjid FROM pg_catalog.pg_depend d
      WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid IN (SELECT oid FROM other) AND d.refclassid = 'pg_catalog.pg_class'::regclass
    UNION SELECT CASE d.classid
        WHEN 'pg_catalog.pg_attrdef'::regclass THEN (SELECT x.adrelid FROM pg_catalog.pg_attrdef x WHERE x.oid = d.objid)
        WHEN 'pg_catalog.pg_constraint'::regclass THEN (SELECT x.conrelid FROM pg_catalog.pg_constraint x WHERE x.oid = d.objid)
        WHEN 'pg_catalog.pg_trigger'::regclass THEN (SELECT x.tgrelid FROM pg_catalog.pg_trigger x WHERE x.oid = d.objid)
        WHEN 'pg_catalog.pg_class'::regclass THEN coalesce((SELECT x.indrelid FROM pg_catalog.pg_index x WHERE x.indexrelid = d.objid), d.objid)
      END
      FROM pg_catalog.pg_depend d WHERE d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid IN (SELECT oid FROM other)),
  shadowing AS (
    SELECT EXISTS (SELECT 1 FROM cls c JOIN pg_catalog.pg_class o ON o.relname = c.relname AND o.relnamespace <> c.relnamespace
        WHERE c.fresh)
      OR EXISTS (SELECT 1 FROM pg_catalog.pg_type t JOIN pg_catalog.pg_type o ON o.typname = t.typname AND o.typnamespace <> t.typnamespace
        WHERE ${FRESH('t')})
      OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc x WHERE ${FRESH('x')}) AS shadowing),
  parts AS (
    ${(Object.entries(PARTS) as [Part, (typeof PARTS)[Part]][])
      .map(
        ([part, p]) =>
          `SELECT '${part}' AS part, x.${'oid' in p ? p.oid : 'oid'}::text AS oid, x.${p.rel}::text AS rel, ${FRESH('x')} AS fresh
           FROM ${p.catalog} x JOIN tab ON tab.oid = x.${p.rel}`,
      )
      .join('\n    UNION ALL ')})
  SELECT
    (SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                 WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.backend_xid IS NOT NULL)
      THEN txid_snapshot_xmin(txid_current_snapshot()) ELSE txid_snapshot_xmax(txid_current_snapshot()) END % 4294967296)::text AS horizon,
    current_schema() || ' ' || current_setting('search_path') AS context,
    txid_current_if_assigned() IS NOT NULL AS writing,
    (EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE ${FRESH('n')})
      OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc x WHERE ${MADE('x.oid')} AND ${FRESH('x')})
      OR EXISTS (SELECT 1 FROM pg_catalog.pg_type t WHERE t.oid IN (SELECT oid FROM types)
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e JOIN pg_catalog.pg_class c ON c.oid = e.typrelid
          WHERE (e.oid = t.oid OR (t.typcategory = 'A' AND e.oid = t.typelem)) AND c.relkind IN ('r', 'p')))
      OR (SELECT shadowing FROM shadowing)
      OR EXISTS (SELECT 1 FROM pg_catalog.pg_collation x WHERE ${MADE('x.oid')} AND ${FRESH('x')})
      OR EXISTS (SELECT 1 FROM pg_catalog.pg_operator x WHERE ${MADE('x.oid')} AND ${FRESH('x')})
      OR EXISTS (SELECT 1 FROM pg_catalog.pg_opclass x WHERE ${MADE('x.oid')} AND ${FRESH('x')})
      OR EXISTS (SELECT 1 FROM pg_catalog.pg_ts_config x WHERE ${MADE('x.oid')} AND ${FRESH('x')})
      OR EXISTS (SELECT 1 FROM pg_catalog.pg_extension x WHERE ${FRESH('x')})
      OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend x WHERE x.refclassid = 'pg_catalog.pg_extension'::regclass AND ${FRESH('x')})) AS everything,
    (SELECT count(*) FROM pg_catalog.pg_depend x WHERE x.refclassid = 'pg_catalog.pg_extension'::regclass)::text AS members,
    CASE WHEN $2::bool OR (SELECT shadowing FROM shadowing) THEN ${SHADOWS('pg_class', 'relname', 'relnamespace')} || ' ' || ${SHADOWS('pg_type', 'typname', 'typnamespace')}
      || ' ' || ${SHADOWS('pg_proc', 'proname', 'pronamespace')} END AS shadows,
    (SELECT json_agg(oid::text) FROM tab)::text AS tables,
    (SELECT json_agg(oid::text) FROM touched WHERE oid IN (SELECT oid FROM tab))::text AS changed,
    (SELECT json_agg(json_build_array(part, oid, rel)) FROM parts WHERE fresh)::text AS fresh_parts,
    (SELECT json_object_agg(part, n) FROM (SELECT part, count(*) AS n FROM parts GROUP BY part) c)::text AS counts`;

/** What the last reading found: the horizon, and each table's parts that could be deleted. */
export interface ChangeState {
  horizon?: string;
  context?: string;
  /** The names taken in more than one schema, counted per catalog (SHADOWS), when last counted. */
  shadows?: string;
  /** Per part, oid → the table's oid. */
  parts: Record<Part, Map<string, string>>;
}

export function newChangeState(): ChangeState {
  return { parts: { constraint: new Map(), index: new Map(), trigger: new Map(), default: new Map() } };
}

/** The tables now, and those to read again (every one on the first reading). Updates `state`. */
export async function changedTables(
  query: Query,
  state: ChangeState,
): Promise<{ tables: string[]; changed: Set<string> }> {
  const first = state.horizon === undefined;
  const [row] = await query(CHANGES, [state.horizon ?? null, first || state.shadows !== '0 0 0']);
  if (first) state.parts = newChangeState().parts;
  const tables = JSON.parse(String(row?.tables ?? 'null')) ?? [];
  const present = new Set<string>(tables);
  // An object leaving an extension deletes its pg_depend row and writes nothing: counted.
  const shadows = typeof row?.shadows === 'string' ? row.shadows : state.shadows;
  const context = `${String(row?.context)} ${String(row?.members)} ${shadows}`;
  const everything = first || row?.everything === true || context !== state.context;
  const changed = new Set<string>(everything ? tables : (JSON.parse(String(row?.changed ?? 'null')) ?? []));
  const counts: Partial<Record<Part, number>> = JSON.parse(String(row?.counts ?? 'null')) ?? {};
  for (const map of Object.values(state.parts)) for (const [oid, rel] of map) if (!present.has(rel)) map.delete(oid);
  for (const [part, oid, rel] of (JSON.parse(String(row?.fresh_parts ?? 'null')) ?? []) as [Part, string, string][])
    state.parts[part].set(oid, rel);
  for (const part of Object.keys(state.parts) as Part[]) {
    if (state.parts[part].size === (counts[part] ?? 0)) continue;
    // A part was deleted (DROP INDEX, DROP CONSTRAINT, DROP TRIGGER, DROP DEFAULT): find its table.
    const all = await query(CHANGES, [null, false]);
    const now = new Map<string, string>(
      ((JSON.parse(String(all[0]?.fresh_parts ?? 'null')) ?? []) as [Part, string, string][])
        .filter(([p]) => p === part)
        .map(([, oid, rel]) => [oid, rel]),
    );
    for (const [oid, rel] of state.parts[part]) if (!now.has(oid)) changed.add(rel);
    state.parts[part] = now;
  }
  // Read inside a transaction that wrote: what it wrote may yet be rolled back, leaving rows
  // older than the horizon. The next reading starts over.
  state.horizon = row?.writing === true ? undefined : String(row?.horizon);
  state.context = context;
  state.shadows = shadows;
  return { tables, changed };
}

/** The rows of a relation that belong to it alone. */
const OWN = ['relations', 'columns', 'constraints', 'indexes', 'triggers'] as const;
export type OwnRows = Record<(typeof OWN)[number], Rows>;

/** One connection's readings: the change state, and each table's rows as last read. */
export interface RowsCache {
  state: ChangeState;
  tables: Map<string, OwnRows>;
  /** What postgres-schema.ts made of a table's rows, kept while they are the same rows (the same object). */
  models: WeakMap<OwnRows, { context: string; tables: unknown[] }>;
}

export function newRowsCache(): RowsCache {
  return { state: newChangeState(), tables: new Map(), models: new WeakMap() };
}

/**
 * A reading through a cache: every row, as readPostgresRows gives them, and apart, the rows of
 * each table (`owned`: the same object for a table not read again) and the rows of the tables'
 * kinds that belong to no table (`unowned`).
 */
export interface ChangedRows extends PostgresRows {
  owned: OwnRows[];
  unowned: OwnRows;
}

/**
 * The rows `query` sees, as readPostgresRows reads them, reading again only the tables whose
 * catalog rows changed since the last reading through `cache`; the other tables' rows are the
 * ones read then. Every relation that is not a table, and every object that is not a relation's
 * part, is read each time.
 */
export async function readChangedRows(
  query: Query,
  record: { schema: string; table: string },
  cache: RowsCache,
): Promise<ChangedRows> {
  const { tables, changed } = await changedTables(query, cache.state);
  for (const oid of tables) if (!cache.tables.has(oid)) changed.add(oid);
  const fresh = await readPostgresRows(query, record, [...changed]);
  const present = new Set(tables);
  const unowned: OwnRows = { relations: [], columns: [], constraints: [], indexes: [], triggers: [] };
  const merged: ChangedRows = {
    ...fresh,
    relations: [],
    columns: [],
    constraints: [],
    indexes: [],
    triggers: [],
    owned: [],
    unowned,
  };
  const read = new Map<string, Record<(typeof OWN)[number], Rows[number][]>>();
  for (const kind of OWN) {
    for (const r of fresh[kind]) {
      const oid = String(r.rel_oid);
      if (!present.has(oid)) {
        (merged[kind] as Rows[number][]).push(r);
        (unowned[kind] as Rows[number][]).push(r);
        continue;
      }
      let own = read.get(oid);
      if (!own) read.set(oid, (own = { relations: [], columns: [], constraints: [], indexes: [], triggers: [] }));
      own[kind].push(r);
    }
  }
  for (const oid of changed)
    cache.tables.set(oid, read.get(oid) ?? { relations: [], columns: [], constraints: [], indexes: [], triggers: [] });
  for (const oid of cache.tables.keys()) if (!present.has(oid)) cache.tables.delete(oid);
  for (const oid of tables) {
    const own = cache.tables.get(oid) as OwnRows;
    merged.owned.push(own);
    for (const kind of OWN) for (const r of own[kind]) (merged[kind] as Rows[number][]).push(r);
  }
  return merged;
}
