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
import type { StepWork } from '../core/driver.ts';
import { MigrateError } from '../core/errors.ts';
import { displayPath, normaliseText, phaseOf, type Migration } from '../core/files.ts';
import { lineColumn } from '../core/position.ts';
import { splitStatements } from '../core/split.ts';
import { runStep, StepFailure } from '../core/step.ts';
import type { Introspectable, SchemaSource } from '../catalog/introspect.ts';
import { familyOfType } from '../catalog/postgres-schema.ts';
import type { Column, Schema, Table } from '../catalog/schema.ts';
import { dataDb, fillTables } from './data/fill.ts';
import { generateRows, Rng } from './data/generate.ts';
import { DEFAULT_ROWS } from './data/pass.ts';
import type { Finding } from './lint.ts';

/** One statement of the release's file. */
export interface ReleaseStatement {
  sql: string;
  line: number;
  /** INSERT, UPDATE or DELETE (also behind a WITH): executed, not only prepared. */
  writes: boolean;
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

/** A release file read, and the PostgreSQL folder its statements are proven against. */
export interface Release {
  file: string;
  statements: ReleaseStatement[];
  pg: CompatInput;
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
  return { file: displayPath(path), statements: releaseStatements(path), pg };
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
  return splitStatements(text, 'postgres').map((st) => ({
    sql: st.sql.replace(/;\s*$/, ''),
    line: lineColumn(text, st.offset).line,
    writes: /^(?:WITH\b[\s\S]*\b)?(?:INSERT|UPDATE|DELETE)\b/i.test(st.sql.replace(/^\(+/, '')),
  }));
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
  onScratch: <T>(fn: (driver: Introspectable) => Promise<T>) => Promise<T>,
  context: CompatContext,
): Promise<void> {
  const { file, statements, pg } = release;
  if (!pg.runnable || statements.length === 0) return;
  const proven = pg.migrations.slice(0, pg.snapshots.length);
  const worked = new Array<boolean>(statements.length).fill(false);
  const everWorked = new Array<boolean>(statements.length).fill(false);
  const lastError = new Array<Outcome>(statements.length);
  await onScratch(async (driver) => {
    await driver.ensureRecordTable();
    const source = await driver.schemaSource();
    if ('db' in source) throw new Error('check --compat needs a PostgreSQL scratch database');
    const fill = filler(source, context);
    const record = (outcomes: Outcome[]) => {
      outcomes.forEach((o, k) => {
        worked[k] = o === undefined;
        if (o === undefined) everWorked[k] = true;
        else lastError[k] = o;
      });
    };
    record(await runAll(source.query, statements, context));
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
      const outcomes = await runAll(source.query, statements, context);
      if (phaseOf(m) === 'pre') {
        outcomes.forEach((o, k) => {
          if (o !== undefined && before[k]) context.add(compatBreak(file, statements[k] as ReleaseStatement, m, o));
        });
      }
      record(outcomes);
    }
  });
  // A statement that never ran proves nothing either way: said, not counted.
  statements.forEach((st, k) => {
    if (everWorked[k] || lastError[k] === undefined) return;
    context.add({
      severity: 'note',
      code: 'COMPAT_BREAK',
      file,
      line: st.line,
      message: `the running release's statement fails at every revision (last: ${lastError[k]}), so no revision was proven against it. Check it against the release, or give it values that fit (foreign keys are not followed).`,
    });
  });
}

/** Fill the tables a revision made with generated rows (unless --no-data), as the data pass does. */
function filler(source: Extract<SchemaSource, { query: unknown }>, context: CompatContext) {
  const filled = new Set<string>();
  const db = dataDb(source);
  return async (schema: Schema, salt: number) => {
    if (context.data === false) return;
    const fresh = new Set(schema.tables.map((t) => t.name).filter((t) => !filled.has(t)));
    if (fresh.size === 0) return;
    const rows = context.data?.rows ?? DEFAULT_ROWS;
    await fillTables(db, schema, fresh, rows, (context.data?.seed ?? 0) + 7919 * (salt + 1));
    for (const t of fresh) filled.add(t);
  };
}

async function runAll(query: Query, statements: readonly ReleaseStatement[], context: CompatContext) {
  const out: Outcome[] = [];
  for (const [k, st] of statements.entries()) out.push(await runOne(query, st, k, context));
  return out;
}

const NAME = 'migrate_compat';

/**
 * Prepare `st`, and for a write execute it with generated parameter values, in a transaction
 * rolled back: nothing of it stays, whatever it does.
 */
async function runOne(query: Query, st: ReleaseStatement, k: number, context: CompatContext): Promise<Outcome> {
  await query('BEGIN');
  try {
    await query(`PREPARE ${NAME} AS ${st.sql}`);
    if (st.writes) {
      const values = await parameterValues(query, (context.data === false ? 0 : (context.data?.seed ?? 0)) + k);
      await query(`EXECUTE ${NAME}${values.length > 0 ? `(${values.join(', ')})` : ''}`);
    }
    return undefined;
  } catch (error) {
    const e = error as { message?: string; code?: string };
    if (typeof e.code !== 'string' || !/^[0-9A-Z]{5}$/.test(e.code)) throw error;
    return `${e.message} (${e.code})`;
  } finally {
    await query('ROLLBACK');
    await query(`DEALLOCATE ALL`);
  }
}

/** The prepared statement's parameter types, each given a value by the data pass's generator. */
async function parameterValues(query: Query, seed: number): Promise<string[]> {
  const rows = await query(
    `SELECT u.n, t.typname AS base, format_type(t.oid, NULL) AS type, t.typtype AS kind,
            (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder)::text FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid) AS labels
       FROM pg_catalog.pg_prepared_statements p,
            unnest(p.parameter_types) WITH ORDINALITY AS u(oid, n)
       JOIN pg_catalog.pg_type t ON t.oid = u.oid::oid
      WHERE p.name = '${NAME}'
      ORDER BY u.n`,
  );
  if (rows.length === 0) return [];
  const columns: Column[] = rows.map((r) => ({
    name: `p${String(r.n)}`,
    type: String(r.type),
    family: r.kind === 'e' ? 'enum' : familyOfType(String(r.base)),
    nullable: false,
    hasDefault: false,
    default: null,
    generated: false,
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
  return columns.map((c, i) => {
    const value = row[i] ?? 'NULL';
    return value === 'DEFAULT' ? 'NULL' : `${value}::${c.type}`;
  });
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
