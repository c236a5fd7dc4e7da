/**
 * `check`'s lock pass: on the scratch PostgreSQL database, before a revision's up runs for real,
 * run its statements one by one in a transaction that is always rolled back, and after each read
 * which locks this session then holds (`pg_locks`) and which tables got a new storage file
 * (`pg_class.relfilenode`). The server says what each statement locks; nothing is guessed from
 * the SQL text.
 *
 * Only tables that existed before the revision are reported: nobody else can be waiting on a
 * table the revision creates. A lock on an index, a sequence a table owns, or a TOAST relation
 * counts toward its table.
 *
 * @module
 */
import type { Statement, StepWork } from './driver.ts';
import type { Migration } from './files.ts';
import type { Introspectable, SchemaSource } from './introspect.ts';
import type { Finding } from './lint.ts';
import { lineColumn } from './position.ts';
import { isTransactionControl } from './split.ts';

type Query = Extract<SchemaSource, { query: unknown }>['query'];

/** Lock modes in PostgreSQL's order of strength, as `pg_locks.mode` names them. */
const MODES = [
  'AccessShareLock',
  'RowShareLock',
  'RowExclusiveLock',
  'ShareUpdateExclusiveLock',
  'ShareLock',
  'ShareRowExclusiveLock',
  'ExclusiveLock',
  'AccessExclusiveLock',
] as const;

/**
 * What each reported mode keeps others from doing while it is held, from the conflict table of
 * https://www.postgresql.org/docs/15/explicit-locking.html#LOCKING-TABLES. The modes below
 * SHARE UPDATE EXCLUSIVE are what reads and writes themselves take: not reported.
 */
const BLOCKS: Record<string, { name: string; blocks: string }> = {
  ShareUpdateExclusiveLock: {
    name: 'SHARE UPDATE EXCLUSIVE',
    blocks: 'blocks schema changes, VACUUM and other index builds until commit; reads and writes go on',
  },
  ShareLock: { name: 'SHARE', blocks: 'blocks writes until commit' },
  ShareRowExclusiveLock: { name: 'SHARE ROW EXCLUSIVE', blocks: 'blocks writes and schema changes until commit' },
  ExclusiveLock: {
    name: 'EXCLUSIVE',
    blocks: 'blocks writes and SELECT … FOR UPDATE/SHARE until commit; plain reads go on',
  },
  AccessExclusiveLock: { name: 'ACCESS EXCLUSIVE', blocks: 'blocks reads and writes until commit' },
};

/** What one statement did to one table that existed before the revision. */
export interface MeasuredLock {
  statement: Statement;
  /** The table as PostgreSQL prints it (`users`, `ops.users`). */
  table: string;
  /** The strongest mode the statement newly took on it, in `pg_locks` spelling; undefined when below the reported ones. */
  mode?: string;
  rewritten: boolean;
}

export interface Measured {
  locks: MeasuredLock[];
  /** Every statement ran and was measured. False when one failed (the round trip reports that) or cannot run in a transaction. */
  complete: boolean;
}

/** Each relation of the user's schemas mapped to the table it belongs to; the record table left out. */
const RELATIONS_SQL = (schema: string, table: string) => `
SELECT c.oid::int8::text AS oid, c.relkind::text AS kind, c.relfilenode::int8::text AS filenode,
       t.oid::int8::text AS table_oid, t.oid::regclass::text AS table_name
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_depend d ON c.relkind = 'S' AND d.classid = 'pg_class'::regclass AND d.objid = c.oid
  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
JOIN pg_class t ON t.oid = COALESCE(i.indrelid, d.refobjid, c.oid)
JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT (tn.nspname = ${literal(schema)} AND t.relname = ${literal(table)})`;

/** The relation locks this session holds, and the current storage file of each table watched. */
const AFTER_SQL = (tables: string[]) => `
SELECT 'lock' AS k, relation::int8::text AS oid, mode AS v FROM pg_locks
WHERE pid = pg_backend_pid() AND locktype = 'relation' AND granted
UNION ALL
SELECT 'file', oid::int8::text, relfilenode::int8::text FROM pg_class WHERE oid IN (${tables.join(', ') || 'NULL'})`;

function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/**
 * Run `work`'s statements in a transaction that is rolled back, and measure each. A file of
 * the revision's own creations only (the first revision of a folder, say) costs one query.
 */
export async function measureLocks(query: Query, schema: string, table: string, work: StepWork): Promise<Measured> {
  const rows = await query(RELATIONS_SQL(schema, table));
  if (rows.length === 0) return { locks: [], complete: true };
  const tableOf = new Map<string, string>();
  const nameOf = new Map<string, string>();
  const files = new Map<string, string>();
  for (const r of rows) {
    tableOf.set(String(r.oid), String(r.table_oid));
    nameOf.set(String(r.table_oid), String(r.table_name));
    // Tables and materialized views have storage a rewrite replaces; a partitioned table has none of its own.
    if ((r.kind === 'r' || r.kind === 'm') && r.oid === r.table_oid) files.set(String(r.oid), String(r.filenode));
  }
  const watched = [...files.keys()];
  const locks: MeasuredLock[] = [];
  let held = new Set<string>();
  await query('BEGIN');
  try {
    for (const statement of work.statements) {
      // A no-transaction file may hold what no transaction can run; measuring stops there.
      if (isTransactionControl(statement.sql, 'postgres') || NOT_IN_TRANSACTION.test(statement.sql)) {
        return { locks, complete: false };
      }
      try {
        await query(statement.sql);
      } catch {
        return { locks, complete: false };
      }
      const now = new Set<string>();
      const rewritten = new Set<string>();
      for (const r of await query(AFTER_SQL(watched))) {
        if (r.k === 'lock') {
          const t = tableOf.get(String(r.oid));
          if (t !== undefined) now.add(`${t} ${r.v}`);
        } else if (files.get(String(r.oid)) !== String(r.v)) {
          rewritten.add(String(r.oid));
          files.set(String(r.oid), String(r.v));
        }
      }
      locks.push(...newLocks(statement, held, now, rewritten, nameOf));
      held = now;
    }
    return { locks, complete: true };
  } finally {
    await query('ROLLBACK');
  }
}

/** PostgreSQL refuses these inside a transaction block (the lint pass reports them in transactional files). */
const NOT_IN_TRANSACTION =
  /^(?:CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY|DROP\s+INDEX\s+CONCURRENTLY|REINDEX\b[^;]*\bCONCURRENTLY|ALTER\s+TABLE\b[^;]*\bDETACH\s+PARTITION\b[^;]*\bCONCURRENTLY|VACUUM|(?:CREATE|DROP)\s+(?:DATABASE|TABLESPACE)|ALTER\s+SYSTEM)\b/i;

/** Per table: the strongest mode held now and not before this statement, and whether it was rewritten. */
function newLocks(
  statement: Statement,
  before: Set<string>,
  now: Set<string>,
  rewritten: Set<string>,
  nameOf: Map<string, string>,
): MeasuredLock[] {
  const strongest = new Map<string, number>();
  for (const key of now) {
    if (before.has(key)) continue;
    const [t, mode] = key.split(' ') as [string, string];
    const rank = MODES.indexOf(mode as (typeof MODES)[number]);
    if (rank > (strongest.get(t) ?? -1)) strongest.set(t, rank);
  }
  const out: MeasuredLock[] = [];
  for (const t of new Set([...strongest.keys(), ...rewritten])) {
    const rank = strongest.get(t) ?? -1;
    out.push({
      statement,
      table: nameOf.get(t) as string,
      ...(rank >= 0 ? { mode: MODES[rank] } : {}),
      rewritten: rewritten.has(t),
    });
  }
  return out;
}

/** `-- migrate:allow-lock <table>: <reason>`, parsed; undefined when the table or the reason is missing. */
export function parseAllowLock(text: string): { table: string; reason: string } | undefined {
  const m = /^(.+?):(?=\s|$)\s*(.*)$/s.exec(text);
  const table = m?.[1]?.trim() ?? '';
  const reason = m?.[2]?.trim() ?? '';
  if (table === '' || reason === '' || /[\s*]/.test(table)) return undefined;
  return { table, reason };
}

/** The 1-based line of each `-- migrate:allow-lock` line of a file, in order. */
export function allowLockLines(text: string): number[] {
  return text.split('\n').flatMap((l, i) => (/^\s*--\s*migrate:allow-lock\b/.test(l) ? [i + 1] : []));
}

/** A table name compared as PostgreSQL resolves it: unquoted parts fold to lower case, the default schema may be left out. */
function tableKey(name: string, schema: string): string {
  const parts = (name.match(/"(?:[^"]|"")*"|[^.]+/g) ?? []).map((p) =>
    p.startsWith('"') ? p.slice(1, -1).replace(/""/g, '"') : p.toLowerCase(),
  );
  if (parts.length === 2 && parts[0] === schema) parts.shift();
  return parts.join('.');
}

/**
 * Measure the up file of `m` on the scratch database `driver` (PostgreSQL), and report each
 * lock and rewrite of a table that existed before it, unless an `allow-lock` line accepts it.
 */
export async function checkLocks(
  driver: Introspectable,
  m: Migration,
  work: StepWork,
  add: (f: Finding) => void,
): Promise<void> {
  if (work.empty) return;
  const source = await driver.schemaSource();
  if (!('query' in source)) return;
  const { locks, complete } = await measureLocks(source.query, source.schema, source.table, work);
  const file = m.up;
  const lines = allowLockLines(file.text);
  const waivers = (file.allowLocks ?? []).flatMap((text, k) => {
    const parsed = parseAllowLock(text);
    return parsed ? [{ text, line: lines[k], key: tableKey(parsed.table, source.schema), used: false }] : [];
  });
  for (const lock of locks) {
    const accepted = waivers.filter((w) => w.key === tableKey(lock.table, source.schema));
    for (const w of accepted) w.used = true;
    const reported = lock.mode === undefined ? undefined : BLOCKS[lock.mode];
    if (accepted.length > 0 || (!reported && !lock.rewritten)) continue;
    const where = { file: file.path, ...lineColumn(file.text, lock.statement.offset) };
    const way = ` If ${lock.table} is small enough for that, say so in this file: -- migrate:allow-lock ${lock.table}: <reason>`;
    if (reported) {
      add({
        severity: 'warning',
        code: 'LOCKS_TABLE',
        ...where,
        message: `${reported.name} on ${lock.table}: ${reported.blocks}.${way}`,
        subject: lock.table,
      });
    }
    if (lock.rewritten) {
      add({
        severity: 'warning',
        code: 'REWRITES_TABLE',
        ...where,
        message: `rewrites ${lock.table}: every row and index is copied while the lock is held, so the lock lasts as long as the copy.${way}`,
        subject: lock.table,
      });
    }
  }
  if (!complete) return;
  for (const w of waivers) {
    if (w.used) continue;
    add({
      severity: 'warning',
      code: 'UNUSED_WAIVER',
      file: file.path,
      ...(w.line === undefined ? {} : { line: w.line }),
      message: `"-- migrate:allow-lock ${w.text}" accepts nothing: no statement of this file locks or rewrites that table beyond what reads and writes take. Remove it, or name the table as check reports it.`,
    });
  }
}
