/**
 * `check --compat=FILE` (issue #30): the running release's own statements, proven against each
 * revision. FILE holds PostgreSQL statements as the application sends them (`$n` parameters,
 * `;`-separated, comments allowed), split with the project's one lexer. On a scratch PostgreSQL
 * database, before the first revision and after each one, every statement is prepared and, for
 * INSERT/UPDATE/DELETE, executed in a transaction that is rolled back, with parameter values made
 * for their types by the data pass's generator (on populated tables unless `--no-data`). A
 * statement that worked before a pre revision and fails after it is COMPAT_BREAK at FILE:line;
 * after a post revision that is what post means (the old release is gone), so it is not reported.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import type { StepWork } from '../core/step.ts';
import { MigrateError } from '../core/errors.ts';
import { displayPath, normaliseText, phaseOf, type Migration } from '../core/files.ts';
import { lineColumn } from '../core/position.ts';
import { splitStatements } from '../core/split.ts';
import { runStep, StepFailure } from '../core/step.ts';
import type { Driver, SchemaSource } from '../core/driver.ts';
import { familyOfType } from '../catalog/postgres-schema.ts';
import type { Column, Schema, Table } from '../catalog/schema.ts';
import { dataDb, type DataDb, fillTables, parentKeys } from './data/fill.ts';
import { generateRows, type ParentKeys, Rng } from './data/generate.ts';
import { DEFAULT_ROWS } from './data/pass.ts';
import type { Finding } from './lint.ts';

/** One statement of the release's file. */
export interface ReleaseStatement {
  sql: string;
  line: number;
  /** INSERT, UPDATE or DELETE (also behind a WITH): executed, not only prepared. */
  writes: boolean;
  /** `INSERT INTO t (a, b) VALUES ($1, $2)`: the table, and the column each parameter fills. */
  insert?: { table: string; columns: Map<number, string> };
}

const INSERT = /^INSERT\s+INTO\s+("[^"]+"|[\w.]+)\s*\(([^)]*)\)\s*VALUES\s*\(([^)]*)\)\s*(?:RETURNING\b.*)?$/is;

/** The table and the columns a plain INSERT's parameters fill, so that they get values fit for those columns. */
function insertTarget(sql: string): ReleaseStatement['insert'] {
  const m = INSERT.exec(sql);
  if (!m) return undefined;
  const name = (s: string) => (s.trim().startsWith('"') ? s.trim().slice(1, -1) : s.trim().toLowerCase());
  const columns = (m[2] as string).split(',').map(name);
  const values = (m[3] as string).split(',').map((v) => v.trim());
  if (columns.length !== values.length) return undefined;
  const out = new Map<number, string>();
  values.forEach((v, i) => {
    const n = /^\$(\d+)$/.exec(v);
    if (n) out.set(Number(n[1]), columns[i] as string);
  });
  return { table: name(m[1] as string).replace(/^public\./, ''), columns: out };
}

/** The PostgreSQL folder as check's round trips left it (what is read of check.ts's DialectState). */
export interface CompatInput {
  migrations: readonly Migration[];
  works: ReadonlyMap<string, { up: StepWork; down: StepWork }>;
  snapshots: readonly Schema[];
  runnable: boolean;
}

export interface CompatContext {
  add: (f: Finding) => void;
  data: false | { seed?: number; rows?: number } | undefined;
  signal: AbortSignal | undefined;
}

/** What `check --compat` did, for its summary line. */
export interface CompatSummary {
  file: string;
  statements: number;
  /** Statements that prepared (and ran, for writes) at some point: the ones proven. */
  proven: number;
  /** Revisions the statements were run after, of those in the folder. */
  revisions: number;
  of: number;
}

/** A release file read, and the PostgreSQL folder its statements are proven against. */
export interface Release {
  file: string;
  statements: ReleaseStatement[];
  pg: CompatInput;
  /** Filled in as the pass runs. */
  summary: CompatSummary;
}

/**
 * The statements of a release file, each with its line, and the folder's PostgreSQL state; an
 * unreadable file, or no postgres/ folder, is a usage error (exit 2).
 */
export function readRelease(path: string, states: ReadonlyArray<CompatInput & { dialect: string }>): Release {
  const pg = states.find((s) => s.dialect === 'postgres');
  if (!pg) {
    throw new MigrateError(
      'BAD_OPTION',
      `--compat needs a postgres/ folder: the release's statements are PostgreSQL and are proven on PostgreSQL.`,
    );
  }
  const file = displayPath(path);
  const statements = releaseStatements(path);
  return {
    file,
    statements,
    pg,
    summary: { file, statements: statements.length, proven: 0, revisions: 0, of: pg.migrations.length },
  };
}

function releaseStatements(path: string): ReleaseStatement[] {
  let text: string;
  try {
    text = normaliseText(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new MigrateError(
      'BAD_OPTION',
      `--compat=${path}: cannot read the file (${(error as Error).message}). Name a file of the running release's SQL.`,
      { cause: error },
    );
  }
  return splitStatements(text, 'postgres').map((st) => {
    const sql = st.sql.replace(/;\s*$/, '');
    const insert = insertTarget(sql);
    return {
      sql,
      line: lineColumn(text, st.offset).line,
      writes: /^(?:WITH\b[\s\S]*\b)?(?:INSERT|UPDATE|DELETE)\b/i.test(sql.replace(/^\(+/, '')),
      ...(insert ? { insert } : {}),
    };
  });
}

type Query = Extract<SchemaSource, { query: unknown }>['query'];

/** How one statement fared at one point: undefined when it worked, else the server's error. */
type Outcome = string | undefined;

/**
 * Run the release's statements against the PostgreSQL folder's revisions, on a scratch database
 * from `onScratch`, and report the breaks.
 */
export async function checkCompat(
  release: Release,
  onScratch: <T>(fn: (driver: Driver) => Promise<T>) => Promise<T>,
  context: CompatContext,
): Promise<void> {
  const { file, statements, pg } = release;
  release.summary.of = pg.migrations.length;
  if (!pg.runnable || statements.length === 0) return;
  const proven = pg.migrations.slice(0, pg.snapshots.length);
  const worked = new Array<boolean>(statements.length).fill(false);
  const everWorked = new Array<boolean>(statements.length).fill(false);
  const lastError = new Array<Outcome>(statements.length);
  await onScratch(async (driver) => {
    await driver.ensureRecordTable();
    const source = await driver.schemaSource();
    if ('db' in source) throw new Error('check --compat needs a PostgreSQL scratch database');
    const db = dataDb(source);
    const fill = filler(db, context);
    const point = (schema: Schema): Point => ({
      query: source.query,
      db,
      schema,
      seed: seedOf(context),
      parents: new Map(),
    });
    const record = (outcomes: Outcome[]) => {
      outcomes.forEach((o, k) => {
        worked[k] = o === undefined;
        if (o === undefined) everWorked[k] = true;
        else lastError[k] = o;
      });
    };
    record(await runAll(point(EMPTY), statements));
    for (const [i, m] of proven.entries()) {
      context.signal?.throwIfAborted();
      const work = (pg.works.get(m.revision) as { up: StepWork }).up;
      try {
        await runStep(driver, work);
      } catch (error) {
        // The round trips ran it on this very schema; on populated tables it may fail (FAILS_ON_DATA says so).
        if (error instanceof StepFailure) return;
        throw error;
      }
      await fill(pg.snapshots[i] as Schema, i);
      const before = [...worked];
      const outcomes = await runAll(point(pg.snapshots[i] as Schema), statements);
      if (phaseOf(m) === 'pre') {
        outcomes.forEach((o, k) => {
          if (o !== undefined && before[k]) context.add(compatBreak(file, statements[k] as ReleaseStatement, m, o));
        });
      }
      record(outcomes);
      release.summary.revisions = i + 1;
    }
  });
  release.summary.proven = everWorked.filter(Boolean).length;
  // A statement that never ran proves nothing either way: said, not counted.
  statements.forEach((st, k) => {
    if (everWorked[k] || lastError[k] === undefined) return;
    context.add({
      severity: 'note',
      code: 'COMPAT_BREAK',
      file,
      line: st.line,
      message: `the running release's statement fails at every revision (last: ${lastError[k]}), so no revision was proven against it. Check it against the release: its parameters get values made for their types (for a plain INSERT, for its columns), which may not fit every rule.`,
    });
  });
}

/** Fill the tables a revision made with generated rows (unless --no-data), as the data pass does. */
function filler(db: DataDb, context: CompatContext) {
  const filled = new Set<string>();
  return async (schema: Schema, salt: number) => {
    if (context.data === false) return;
    const fresh = new Set(schema.tables.map((t) => t.name).filter((t) => !filled.has(t)));
    if (fresh.size === 0) return;
    const rows = context.data?.rows ?? DEFAULT_ROWS;
    await fillTables(db, schema, fresh, rows, (context.data?.seed ?? 0) + 7919 * (salt + 1));
    for (const t of fresh) filled.add(t);
  };
}

const EMPTY: Schema = { tables: [], enums: [], others: {} };

function seedOf(context: CompatContext): number {
  return context.data === false ? 0 : (context.data?.seed ?? 0);
}

/** Where the statements run: the scratch session, its tables, the schema they have now. */
interface Point {
  query: Query;
  db: DataDb;
  schema: Schema;
  seed: number;
  /** Parent keys by table, read once per point. */
  parents: Map<string, Promise<ParentKeys>>;
}

/**
 * Every statement prepared, and each write executed with generated parameter values in a
 * transaction rolled back: nothing of them stays. Queries are pipelined on the session (sent
 * without waiting for the answer before), which is most of the time such a pass costs.
 */
async function runAll(point: Point, statements: readonly ReleaseStatement[]): Promise<Outcome[]> {
  const { query } = point;
  // Outside a transaction each PREPARE stands alone: one that fails does not abort the others.
  const prepared = await Promise.allSettled(statements.map((st, k) => query(`PREPARE ${NAME}${k} AS ${st.sql}`)));
  const out = prepared.map((p) => (p.status === 'fulfilled' ? undefined : outcomeOf(p.reason)));
  const writes = statements.flatMap((st, k) => (st.writes && out[k] === undefined ? [k] : []));
  const types = writes.length > 0 ? await parameterTypes(query) : new Map<string, Row[]>();
  for (const k of writes) {
    const st = statements[k] as ReleaseStatement;
    const values = await parameterValues(point, st, types.get(`${NAME}${k}`) ?? [], point.seed + k);
    const args = values.length > 0 ? `(${values.join(', ')})` : '';
    const [begun, ran] = await Promise.allSettled([
      query('BEGIN'),
      query(`EXECUTE ${NAME}${k}${args}`),
      query('ROLLBACK'),
    ]);
    if (begun.status === 'rejected') throw begun.reason;
    if (ran.status === 'rejected') out[k] = outcomeOf(ran.reason);
  }
  await query('DEALLOCATE ALL');
  return out;
}

/** The server's error as an outcome; anything else (a lost connection) is thrown on. */
function outcomeOf(error: unknown): Outcome {
  const e = error as { message?: string; code?: string };
  if (typeof e.code !== 'string' || !/^[0-9A-Z]{5}$/.test(e.code)) throw error;
  return `${e.message} (${e.code})`;
}

const NAME = 'migrate_compat_';

type Row = Record<string, unknown>;

/** The parameter types of every statement prepared here, in one query: by statement name, in order. */
async function parameterTypes(query: Query): Promise<Map<string, Row[]>> {
  const rows = await query(
    `SELECT p.name, u.n, t.typname AS base, format_type(t.oid, NULL) AS type, t.typtype AS kind,
            (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder)::text FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid) AS labels
       FROM pg_catalog.pg_prepared_statements p,
            unnest(p.parameter_types) WITH ORDINALITY AS u(oid, n)
       JOIN pg_catalog.pg_type t ON t.oid = u.oid::oid
      WHERE p.name LIKE '${NAME.replace(/_/g, '\\_')}%'
      ORDER BY p.name, u.n`,
  );
  const out = new Map<string, Row[]>();
  for (const r of rows) {
    const name = String(r.name);
    out.set(name, [...(out.get(name) ?? []), r]);
  }
  return out;
}

/** Values for a prepared statement's parameters, by type through the data pass's generator. */
async function parameterValues(point: Point, st: ReleaseStatement, rows: Row[], seed: number): Promise<string[]> {
  if (rows.length === 0) return [];
  const columns: Column[] = rows.map((r) => ({
    name: `p${String(r.n)}`,
    type: String(r.type),
    family: r.kind === 'e' ? 'enum' : familyOfType(String(r.base)),
    nullable: false,
    hasDefault: false,
    default: null,
    generated: false,
    // The parameter's type carries no length (varchar, not varchar(10)): short values fit most.
    maxLength: 8,
    ...(typeof r.labels === 'string' ? { values: JSON.parse(r.labels) as string[] } : {}),
  }));
  // Each parameter as a unique column: counted values, apart from the generated rows' keys.
  const table: Table = {
    name: 'release_parameters',
    columns,
    primaryKey: [],
    foreignKeys: [],
    uniques: columns.map((c) => [c.name]),
    indexes: [],
    checks: [],
  };
  const [group] = generateRows(table, 'postgres', 1, new Rng(seed), new Map(), 100_000 + seed);
  const row = group?.rows[0] ?? [];
  const fitted = await insertValues(point, st, seed);
  return columns.map((c, i) => {
    const value = fitted.get(i + 1) ?? row[i] ?? 'NULL';
    return value === 'DEFAULT' ? 'NULL' : `${value}::${c.type}`;
  });
}

/**
 * For a plain INSERT, values made for the columns its parameters fill, as the data pass makes a
 * row of that table: lengths, enum labels, CHECK bounds, and foreign keys pointing at parent rows.
 */
async function insertValues(point: Point, st: ReleaseStatement, seed: number): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  const table = st.insert && point.schema.tables.find((t) => t.name === st.insert?.table);
  if (!table || !st.insert) return out;
  let parents = point.parents.get(table.name);
  if (!parents) point.parents.set(table.name, (parents = parentKeys(point.db, point.schema, table)));
  const groups = generateRows(table, 'postgres', 1, new Rng(seed), await parents, 100_000 + seed);
  const group = groups[groups.length - 1];
  if (!group) return out;
  for (const [n, column] of st.insert.columns) {
    const at = group.columns.indexOf(column);
    if (at >= 0) out.set(n, group.rows[0]?.[at] as string);
  }
  return out;
}

function compatBreak(file: string, st: ReleaseStatement, m: Migration, error: string): Finding {
  const first = st.sql.split('\n')[0] as string;
  return {
    severity: 'error',
    code: 'COMPAT_BREAK',
    file,
    line: st.line,
    message: `the running release's statement (${first.length > 60 ? `${first.slice(0, 57)}...` : first}) works before ${m.stem} and fails after it: ${error}. ${m.stem} is pre: it runs while replicas of that release still serve. Split the change (expand in a pre revision, contract in a "-- migrate:phase post" one; docs/folder.md), or mark ${m.stem} post if the release does not need what it changes.`,
  };
}
