/**
 * `check`'s lock pass: on the scratch PostgreSQL database, before a revision's up runs for real,
 * run its statements one by one in a transaction that is always rolled back, and after each read
 * which locks this session then holds (`pg_locks`) and which tables got a new storage file
 * (`pg_class.relfilenode`). The server says what each statement locks; nothing is guessed from
 * the SQL text.
 *
 * Only tables that existed before the revision are reported: nobody else can be waiting on a
 * table the revision creates. A lock on an index, or on a sequence a table owns, counts toward its
 * table.
 *
 * @module
 */
import { type Statement, isTransactionControl, statementKind } from '../core/split.ts';
import type { StepWork } from '../core/step.ts';
import type { Migration } from '../core/files.ts';
import type { Driver, SchemaSource } from '../core/driver.ts';
import { allowLockLines, parseAllowLock, type Finding } from './lint.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { lineColumn } from '../core/position.ts';
import { connect } from '../core/connect.ts';
import { sqlString } from '../core/quote.ts';

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

/**
 * Each relation of the user's schemas mapped to the table it belongs to; the record table left
 * out. With `oids`, only those relations.
 */
const RELATIONS_SQL = (schema: string, table: string, oids?: readonly string[]) => `
SELECT c.oid::int8::text AS oid, c.oid::regclass::text AS name, c.relkind::text AS kind, c.relfilenode::int8::text AS filenode,
       t.oid::int8::text AS table_oid, t.oid::regclass::text AS table_name
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_depend d ON c.relkind = 'S' AND d.classid = 'pg_class'::regclass AND d.objid = c.oid
  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
JOIN pg_class t ON t.oid = COALESCE(i.indrelid, d.refobjid, c.oid)
JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT (tn.nspname = ${sqlString(schema)} AND t.relname = ${sqlString(table)})${oids ? ` AND c.oid IN (${oids.join(', ') || 'NULL'})` : ''}`;

/**
 * The relation locks this session holds, and the current storage file of each table or
 * materialized view among them: a rewrite takes an ACCESS EXCLUSIVE lock on what it rewrites.
 */
const HELD_SQL = `
SELECT 'lock' AS k, relation::int8::text AS oid, mode AS v FROM pg_locks
WHERE pid = pg_backend_pid() AND locktype = 'relation' AND granted
UNION ALL
SELECT 'file', c.oid::int8::text, c.relfilenode::int8::text FROM pg_class c
WHERE c.relkind IN ('r', 'm') AND c.oid IN (SELECT relation FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'relation' AND granted)`;

/** The relations of the user's schemas before the revision, each mapped to its table. */
interface Before {
  tableOf: Map<string, string>;
  nameOf: Map<string, string>;
  /** Each table's storage file (`relfilenode`), to see a rewrite. */
  files: Map<string, string>;
}

/**
 * Measure each statement of `work` and leave the database as it was. A transactional file runs
 * in a transaction that is rolled back. A no-transaction file whose first statement is
 * `CREATE INDEX CONCURRENTLY` has that statement watched from a second session (`url`), and the
 * index it built dropped again. Only the relations a statement locked are looked up, never the
 * whole catalog.
 */
export async function measureLocks(
  query: Query,
  schema: string,
  table: string,
  work: StepWork,
  url?: string,
): Promise<Measured> {
  const first = work.statements[0];
  if (!work.transactional && first && statementKind(first.sql, 'postgres') === 'CREATE INDEX CONCURRENTLY') {
    if (url === undefined) return { locks: [], complete: false };
    const before = beforeOf(await query(RELATIONS_SQL(schema, table)));
    if (before.tableOf.size === 0) return { locks: [], complete: true };
    const locks = await measureConcurrently(query, url, first, before, RELATIONS_SQL(schema, table));
    return { locks: locks ?? [], complete: locks !== undefined && work.statements.length === 1 };
  }
  return measureInTransaction(query, work, (oids) => query(RELATIONS_SQL(schema, table, oids)));
}

/** The relations as RELATIONS_SQL read them. */
function beforeOf(rows: ReadonlyArray<Record<string, unknown>>): Before {
  const before: Before = { tableOf: new Map(), nameOf: new Map(), files: new Map() };
  for (const r of rows) {
    before.tableOf.set(String(r.oid), String(r.table_oid));
    before.nameOf.set(String(r.table_oid), String(r.table_name));
    // Tables and materialized views have storage a rewrite replaces; a partitioned table has none of its own.
    if ((r.kind === 'r' || r.kind === 'm') && r.oid === r.table_oid)
      before.files.set(String(r.oid), String(r.filenode));
  }
  return before;
}

/**
 * Run the statements in a transaction, reading after each the locks this session holds; after
 * the rollback, which leaves the database as it was before the revision, `relations` reads
 * what the locked relations were then: the tables they belong to (a lock on an index or an
 * owned sequence counts toward its table), their names and storage files. A relation the
 * revision made is not there any more, and is not reported. Only the relations locked are
 * read, never the whole catalog.
 */
async function measureInTransaction(
  query: Query,
  work: StepWork,
  relations: (oids: readonly string[]) => ReturnType<Query>,
): Promise<Measured> {
  const ran: Array<{ statement: Statement; held: Array<[string, string]>; files: Map<string, string> }> = [];
  let complete = true;
  await query('BEGIN');
  try {
    for (const statement of work.statements) {
      // A no-transaction file may hold what no transaction can run; measuring stops there.
      if (isTransactionControl(statement.sql, 'postgres') || statementKind(statement.sql, 'postgres') !== undefined) {
        complete = false;
        break;
      }
      try {
        await query(statement.sql);
      } catch {
        complete = false;
        break;
      }
      const held: Array<[string, string]> = [];
      const files = new Map<string, string>();
      for (const r of await query(HELD_SQL)) {
        if (r.k === 'lock') held.push([String(r.oid), String(r.v)]);
        else files.set(String(r.oid), String(r.v));
      }
      ran.push({ statement, held, files });
    }
  } finally {
    await query('ROLLBACK');
  }
  const locked = [...new Set(ran.flatMap((r) => r.held.map(([oid]) => oid)))];
  if (locked.length === 0) return { locks: [], complete };
  const { tableOf, nameOf, files } = beforeOf(await relations(locked));
  const locks: MeasuredLock[] = [];
  let before = new Set<string>();
  for (const { statement, held, files: now } of ran) {
    const holds = new Set<string>();
    for (const [oid, mode] of held) {
      const t = tableOf.get(oid);
      if (t !== undefined) holds.add(`${t} ${mode}`);
    }
    const rewritten = new Set<string>();
    for (const [oid, file] of now) {
      if (!files.has(oid)) continue;
      if (files.get(oid) !== file) rewritten.add(oid);
      files.set(oid, file);
    }
    locks.push(...newLocks(statement, before, holds, rewritten, nameOf));
    before = holds;
  }
  return { locks, complete };
}

/** `CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`, `REINDEX … CONCURRENTLY`, `DETACH PARTITION … CONCURRENTLY`. */
const CONCURRENTLY = /^(?:CREATE|DROP|REINDEX|ALTER)\b[^;]*\bCONCURRENTLY\b/i;
const SUE = MODES.indexOf('ShareUpdateExclusiveLock');

/**
 * `CREATE INDEX CONCURRENTLY` cannot run in a transaction, and its own session cannot look at
 * it while it runs. A second session holding a REPEATABLE READ snapshot makes the build wait
 * for it before it finishes (the build waits out every older snapshot of the database); while
 * it waits, that session reads the build's locks. Then the index is dropped, so that the round
 * trip finds the schema as it was. Undefined when the build was not seen waiting.
 */
async function measureConcurrently(
  query: Query,
  url: string,
  statement: Statement,
  before: Before,
  relationsSql: string,
): Promise<MeasuredLock[] | undefined> {
  // 30 s: postgres.js' default, which this watcher has always had.
  const watcher = connect(url, { name: 'sql-migrate (lock watcher)', connectTimeout: 30 });
  let seen: Array<Record<string, unknown>> | undefined;
  let running: Promise<unknown> | undefined;
  try {
    const [me] = await query('SELECT pg_backend_pid() AS pid');
    await watcher.unsafe('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await watcher.unsafe('SELECT 1');
    let settled = false;
    running = query(statement.sql).then(
      () => undefined,
      (error: unknown) => error,
    );
    void running.finally(() => {
      settled = true;
    });
    const deadline = Date.now() + WATCH_MS;
    while (!settled && Date.now() < deadline) {
      const rows = await watcher.unsafe(
        `SELECT relation::int8::text AS oid, mode, granted FROM pg_locks WHERE pid = ${Number(me?.pid)} AND (NOT granted OR locktype = 'relation')`,
      );
      if (rows.some((r) => r.granted === false)) {
        seen = rows.filter((r) => r.granted === true);
        break;
      }
      await sleep(10);
    }
    await watcher.unsafe('COMMIT');
  } catch {
    // The second session could not watch (a connection refused, say): the build goes unmeasured.
    seen = undefined;
  } finally {
    // Closing the watcher ends its snapshot, so the build finishes in any case.
    await watcher.end({ timeout: 5 });
    await running;
    // The built (or, after a failure, invalid) index goes: the real up builds it again.
    for (const r of await query(relationsSql)) {
      if (r.kind === 'i' && !before.tableOf.has(String(r.oid))) await query(`DROP INDEX ${String(r.name)}`);
    }
  }
  if (!seen) return undefined;
  const now = new Set<string>();
  for (const r of seen) {
    const t = before.tableOf.get(String(r.oid));
    if (t !== undefined) now.add(`${t} ${r.mode}`);
  }
  return newLocks(statement, new Set(), now, new Set(), before.nameOf);
}

/** How long the watcher waits to see a concurrent build wait for it. */
const WATCH_MS = 10_000;

/** Per table: the strongest mode held now and not before this statement, and whether it was rewritten. */
function newLocks(
  statement: Statement,
  before: Set<string>,
  now: Set<string>,
  rewritten: Set<string>,
  nameOf: Map<string, string>,
): MeasuredLock[] {
  const rankOf = (key: string) => {
    const [t, mode] = key.split(' ') as [string, string];
    return [t, MODES.indexOf(mode as (typeof MODES)[number])] as const;
  };
  // A lock weaker than one an earlier statement of the transaction holds on the table changes
  // nothing for others: naming it would understate what the table is held in (issue #26).
  const held = new Map<string, number>();
  for (const key of before) {
    const [t, rank] = rankOf(key);
    if (rank > (held.get(t) ?? -1)) held.set(t, rank);
  }
  const strongest = new Map<string, number>();
  for (const key of now) {
    if (before.has(key)) continue;
    const [t, rank] = rankOf(key);
    if (rank > (strongest.get(t) ?? -1) && rank > (held.get(t) ?? -1)) strongest.set(t, rank);
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
  driver: Driver,
  m: Migration,
  work: StepWork,
  add: (f: Finding) => void,
  /** The scratch database's URL on a server: a concurrent index build is watched from a second session. */
  serverUrl: string | undefined,
): Promise<void> {
  if (work.empty) return;
  const source = await driver.schemaSource();
  if (!('query' in source)) return;
  const { locks, complete } = await measureLocks(source.query, source.schema, source.table, work, serverUrl);
  const file = m.up;
  const lines = allowLockLines(file.text);
  const waivers = (file.allowLocks ?? []).flatMap((text, k) => {
    const parsed = parseAllowLock(text);
    return parsed ? [{ text, line: lines[k], key: tableKey(parsed.table, source.schema), used: false }] : [];
  });
  for (const lock of locks) {
    const accepted = waivers.filter((w) => w.key === tableKey(lock.table, source.schema));
    for (const w of accepted) w.used = true;
    // What a CONCURRENTLY form takes (SHARE UPDATE EXCLUSIVE) is the point of the form: reads and writes go on.
    const concurrent = !work.transactional && CONCURRENTLY.test(lock.statement.sql);
    const reported =
      lock.mode === undefined || (concurrent && MODES.indexOf(lock.mode as (typeof MODES)[number]) <= SUE)
        ? undefined
        : BLOCKS[lock.mode];
    if (accepted.length > 0 || (!reported && !lock.rewritten)) continue;
    const where = { file: file.path, ...lineColumn(file.text, lock.statement.offset) };
    const way = ` If that is acceptable (a small table, a quiet hour), say why in this file: -- migrate:allow-lock ${lock.table}: <reason>`;
    if (reported) {
      add({
        severity: 'warning',
        code: 'LOCKS_TABLE',
        ...where,
        // Outside a transaction the lock goes when the statement ends.
        message: `${reported.name} on ${lock.table}: ${work.transactional ? reported.blocks : reported.blocks.replace('until commit', 'until the statement ends')}.${way}`,
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
