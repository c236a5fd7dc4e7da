/**
 * `check` on populated tables, on a scratch database of its own: at each revision, fill every
 * table the revision finds (generate.ts, fill.ts), run the up (a failure here, after the same
 * up ran on empty tables, is FAILS_ON_DATA), read every row, run the down, read again
 * (fingerprint.ts): a row lost, added or changed is DATA_LOSS in the down file, unless a
 * `-- migrate:allow-data-loss <table>[.<column>]: <reason>` line there accepts it.
 *
 * @module
 */
import { DIALECTS, type Direction, type Dialect, type Migration } from '../../core/files.ts';
import { type StepWork, runStep, StepFailure } from '../../core/step.ts';
import type { Finding } from '../lint.ts';
import { reachedTables } from '../scope.ts';
import { introspect } from '../../catalog/introspect.ts';
import type { Driver } from '../../core/driver.ts';
import { lineColumn } from '../../core/position.ts';
import { dataDb, fillTables, ident, type DataDb, type Filled } from './fill.ts';
import type { Schema } from '../../catalog/schema.ts';
import { compareFingerprints, fingerprint, type TablePrint } from './fingerprint.ts';
import { addLateRows, partition, splitByKeys, widened } from './late.ts';
import { diagnose } from './diagnose.ts';
import { acceptedNote, acceptsFailure, readDataWaivers, reportChanges, type DataWaiver } from './waivers.ts';

export interface DataOptions {
  seed: number;
  /** Rows generated per table. */
  rows: number;
}

/** Rows per table when `--rows` is not given: enough for repeats, NULLs and every label, cheap to read twice. */
export const DEFAULT_ROWS = 100;

export interface DataRun {
  dialect: Dialect;
  /** Revisions whose up and down ran on populated tables (a revision that finds no table counts). */
  revisions: number;
  of: number;
}

export interface DataInput {
  dialect: Dialect;
  migrations: readonly Migration[];
  works: ReadonlyMap<string, { up: StepWork; down: StepWork }>;
  snapshots: readonly Schema[];
  /**
   * Whether revision `i` (0-based) round-tripped on empty tables: only those are run here. It
   * may wait for the round trips, which can still be running on another database.
   */
  reached: (i: number) => Promise<boolean>;
  withScratch: Scratch;
  add: (f: Finding) => void;
  options: DataOptions;
  signal?: AbortSignal | undefined;
  /** Called with the number of revisions done after each one. */
  progress?: (done: number) => void;
}

export interface DataSummary {
  /** Give it back as `seed` to generate the same rows again. */
  seed: number;
  rows: number;
  runs: DataRun[];
}

/** One dialect folder as check's round trips left it. */
interface DialectRun {
  dialect: Dialect;
  migrations: readonly Migration[];
  works: ReadonlyMap<string, { up: StepWork; down: StepWork }>;
  /** The schema after each revision, as the round trips read it: not read again here. */
  snapshots: readonly Schema[];
}

/** A scratch database for `fn`; `firstApplied`: it holds the first revision already, on empty tables. */
type Scratch = <T>(fn: (driver: Driver, firstApplied: boolean) => Promise<T>) => Promise<T>;

/**
 * The pass, run once per dialect. `run`: right after its round trips, on the round trips' own
 * scratch database when every applied down brings it back to empty (creating a PostgreSQL
 * database costs more than the whole pass on a short folder), else on a fresh one from `fresh`.
 * `alongside`: on a fresh database while the round trips still run, each revision as soon as
 * they have read its schema (a server runs the two sessions on two cores).
 */
export function dataPass(
  given: { seed?: number; rows?: number } | undefined,
  signal: AbortSignal | undefined,
  onProgress?: (e: { dialect: Dialect; pass: 'data'; done: number; of: number }) => void,
): {
  summary: DataSummary;
  run(
    s: DialectRun,
    roundTripped: number,
    driver: Driver,
    fresh: <T>(fn: (driver: Driver) => Promise<T>) => Promise<T>,
    add: (f: Finding) => void,
  ): Promise<void>;
  alongside(
    s: DialectRun,
    reached: (i: number) => Promise<boolean>,
    fresh: <T>(fn: (driver: Driver) => Promise<T>) => Promise<T>,
    add: (f: Finding) => void,
  ): Promise<void>;
} {
  const options = { seed: given?.seed ?? Math.floor(Math.random() * 1_000_000), rows: given?.rows ?? DEFAULT_ROWS };
  const summary: DataSummary = { ...options, runs: [] };
  const pass = async (
    s: DialectRun,
    reached: DataInput['reached'],
    withScratch: Scratch,
    add: (f: Finding) => void,
  ) => {
    const progress =
      onProgress && ((done: number) => onProgress({ dialect: s.dialect, pass: 'data', done, of: s.migrations.length }));
    const run = await checkData({
      ...s,
      reached,
      withScratch,
      add,
      options,
      signal,
      ...(progress ? { progress } : {}),
    });
    // In the order of the dialect folders, however the passes of the two ran.
    summary.runs.push(run);
    summary.runs.sort((a, b) => DIALECTS.indexOf(a.dialect) - DIALECTS.indexOf(b.dialect));
  };
  return {
    summary,
    async run(s, roundTripped, driver, fresh, add) {
      if (roundTripped === 0) return;
      const reuse: Scratch = async (fn) => {
        // At the first revision, as the round trips end on a one-revision folder: nothing to roll back.
        const record = await driver.readRecord();
        const first = s.migrations[0]?.revision;
        if (record.length === 1 && record[0]?.revision === first && record[0]?.status === 'applied')
          return fn(driver, true);
        return (await rewind(driver, s)) ? fn(driver, false) : fresh((d) => fn(d, false));
      };
      await pass(s, async (i) => i < roundTripped, reuse, add);
    },
    async alongside(s, reached, fresh, add) {
      if (!(await reached(0))) return;
      await pass(s, reached, (fn) => fresh((d) => fn(d, false)), add);
    },
  };
}

/** Roll back every applied revision; true when the database is then as empty as a new one. */
export async function rewind(driver: Driver, s: DialectRun): Promise<boolean> {
  const byRevision = new Map(s.migrations.map((m) => [m.revision, m]));
  for (const row of (await driver.readRecord()).reverse()) {
    const m = byRevision.get(row.revision);
    const work = m && s.works.get(m.revision);
    if (!work || row.status !== 'applied') return false;
    try {
      await runStep(driver, work.down);
    } catch (error) {
      if (error instanceof StepFailure) return false;
      throw error;
    }
  }
  const source = await driver.schemaSource();
  // SQLite answers from its catalog in one query; reading PostgreSQL's schema costs little next to a new database.
  if ('db' in source)
    return (
      source.db
        .prepare(`SELECT 1 FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND tbl_name <> ? LIMIT 1`)
        .get(source.table) === undefined
    );
  const left = await introspect(driver);
  return left.tables.length === 0 && left.enums.length === 0 && Object.keys(left.others).length === 0;
}

/** Run the pass on one dialect; findings go to `add`. */
export async function checkData(input: DataInput): Promise<DataRun> {
  const { dialect, migrations, add } = input;
  const waivers = new Map(
    migrations.map((m) => [
      m.revision,
      [
        ...readDataWaivers(m.down, 'allow-data-loss', add),
        ...readDataWaivers(m.up, 'allow-fails-on-data', add),
        ...readDataWaivers(m.down, 'allow-fails-on-data', add),
      ],
    ]),
  );
  const revisions = await input.withScratch(async (driver, firstApplied) => {
    await driver.ensureRecordTable();
    return revisionsOnData(input, driver, dataDb(await driver.schemaSource()), waivers, firstApplied);
  });
  for (const m of migrations.slice(0, revisions)) {
    for (const w of waivers.get(m.revision) ?? []) {
      if (w.used) continue;
      add({
        severity: 'warning',
        code: 'UNUSED_WAIVER',
        file: w.file,
        line: w.line,
        message:
          w.directive === 'allow-data-loss'
            ? `"-- migrate:allow-data-loss ${w.text}" accepts nothing: the down loses no row or value of "${w.subject}" on populated tables. Remove it, or name the table (or table.column) as check reports it.`
            : `"-- migrate:allow-fails-on-data ${w.text}" accepts nothing: this file does not fail on populated rows of "${w.subject}". Remove it, or name the table as check reports it.`,
      });
    }
  }
  return { dialect, revisions, of: migrations.length };
}

async function revisionsOnData(
  input: DataInput,
  driver: Driver,
  db: DataDb,
  waivers: Map<string, DataWaiver[]>,
  firstApplied: boolean,
): Promise<number> {
  const { migrations, add, options } = input;
  const filled = new Set<string>();
  /** Rows generated per table: a table left empty hides what an up would meet on a database in use. */
  const rowsIn = new Map<string, number>();
  const fill = async (schema: Schema, file: string, salt: number) => {
    const fresh = new Set(schema.tables.map((t) => t.name).filter((t) => !filled.has(t)));
    for (const f of await fillTables(db, schema, fresh, options.rows, options.seed + salt)) {
      filled.add(f.table);
      rowsIn.set(f.table, f.inserted);
      if (f.inserted < f.wanted / 2) add(shortfall(f, file));
    }
  };
  let done = 0;
  for (let i = 0; i < migrations.length && (await input.reached(i)); i++) {
    const m = migrations[i] as Migration;
    const work = input.works.get(m.revision) as { up: StepWork; down: StepWork };
    const mine = waivers.get(m.revision) ?? [];
    const run = async (direction: Direction): Promise<StepFailure | undefined> => {
      input.signal?.throwIfAborted();
      try {
        await runStep(driver, work[direction]);
        return undefined;
      } catch (error) {
        if (error instanceof StepFailure) return error;
        throw error;
      }
    };
    /** Tables emptied so that a failure a waiver accepts could be run past: left out of the comparison. */
    const emptied = new Set<string>();
    /**
     * Run one file; a failure on the generated rows that an `allow-fails-on-data` line of that
     * file accepts empties the table it names and runs the file again. False: it failed (reported).
     */
    const runOnData = async (direction: Direction, report = true): Promise<boolean> => {
      const failure = await run(direction);
      if (!failure) return true;
      const finding = failsOnData(failure, work[direction], options);
      const waiver = acceptsFailure(finding, mine, work[direction].file);
      if (!waiver || !finding.on) {
        if (report) add(finding);
        return false;
      }
      add(acceptedNote(waiver, `fails on generated rows of ${finding.on.table}`));
      const table = finding.on.table;
      try {
        await db.run(`DELETE FROM ${ident(table, db.dialect)}`);
      } catch (error) {
        // Accepted all the same; only the pass cannot go on past it on this database.
        add({
          severity: 'note',
          code: 'DATA_GENERATION',
          file: work[direction].file,
          message: `the pass on populated tables stops here: the rows of ${table} could not be removed to run past the accepted failure (${(error as Error).message}).`,
        });
        return false;
      }
      emptied.add(table);
      const again = await run(direction);
      if (again && report) add(failsOnData(again, work[direction], options));
      return again === undefined;
    };
    const before = i === 0 ? EMPTY : (input.snapshots[i - 1] as Schema);
    // Only the rows this revision can reach are read and compared: reading every table at every
    // revision made check quadratic in the folder's length (issue #26).
    const tables = reachedTables(before, [work.up.sql, work.down.sql], input.dialect);
    await fill(before, m.up.path, 2 * i);
    const rowsBefore = await fingerprint(db, before, tables);
    // On empty tables (the first revision finds none) the round trips' own up stands for this one.
    if (!(i === 0 && firstApplied) && !(await runOnData('up'))) return done;
    const made = input.snapshots[i] as Schema;
    notNullOnUnfilled(before, made, rowsIn, work.up.file, mine, add);
    // Rows written while the revision is applied, using the room a widened column gives (late.ts).
    const grown = widened(before, made, tables).map((t) => t.name);
    let late: TablePrint[] = [];
    if (grown.length > 0) {
      const ahead = await fingerprint(db, made, grown);
      await addLateRows(db, made, widened(before, made, tables), options.rows, options.seed + 2 * i + 1);
      late = splitByKeys(await fingerprint(db, made, grown), ahead).late;
    }
    // The tables this revision made get rows too, so that its down runs on populated tables.
    await fill(made, m.down.path, 2 * i + 1);
    if (!(await runOnData('down'))) return done;
    for (const t of made.tables) if (!before.tables.some((b) => b.name === t.name)) filled.delete(t.name);
    const compared = tables.filter((t) => !emptied.has(t));
    const afterDown = compared.length === 0 ? [] : await fingerprint(db, await introspect(driver), compared);
    const { rest, mine: lateAfter } = partition(afterDown, late);
    const changes = [
      ...compareFingerprints(
        rowsBefore.filter((p) => compared.includes(p.table)),
        rest,
      ),
      ...compareFingerprints(
        late.filter((p) => compared.includes(p.table)),
        lateAfter,
      ),
    ];
    reportChanges(changes, m, work.down.empty, mine, add);
    // The last revision is not applied again: no later one needs it, and the round trips ran it twice.
    if (!(await input.reached(i + 1))) {
      input.progress?.(done + 1);
      return done + 1;
    }
    // After a down that lost rows, the up failing on what is left is the sequel, not news.
    if (!(await runOnData('up', changes.length === 0))) return done;
    done++;
    input.progress?.(done);
  }
  return done;
}

/**
 * A NOT NULL column without a default added to a table check could not fill: on a database in
 * use that table has rows, and the up fails there. Reported, since the pass cannot show it.
 */
function notNullOnUnfilled(
  before: Schema,
  made: Schema,
  rowsIn: ReadonlyMap<string, number>,
  file: string,
  waivers: DataWaiver[],
  add: (f: Finding) => void,
): void {
  for (const t of made.tables) {
    const was = before.tables.find((x) => x.name === t.name);
    if (!was || rowsIn.get(t.name) !== 0) continue;
    for (const c of t.columns) {
      if (c.nullable || c.hasDefault || c.generated || was.columns.some((x) => x.name === c.name)) continue;
      const finding: Finding = {
        severity: 'error',
        code: 'FAILS_ON_DATA',
        file,
        message: `adds ${t.name}.${c.name} NOT NULL without a default: on a table that has rows this fails, and check could generate no row for ${t.name} to show it. Give the column a default (or add it nullable, fill it, then set NOT NULL). If ${t.name} is empty wherever this runs, say why in this file: -- migrate:allow-fails-on-data ${t.name}: <reason>`,
        on: { table: t.name, column: c.name },
      };
      const waiver = acceptsFailure(finding, waivers, file);
      add(waiver ? acceptedNote(waiver, `adds ${t.name}.${c.name} NOT NULL without a default`) : finding);
    }
  }
}

const EMPTY: Schema = { tables: [], enums: [], others: {} };

function shortfall(f: Filled, file: string): Finding {
  return {
    severity: 'note',
    code: 'DATA_GENERATION',
    file,
    message: `check could generate only ${f.inserted} of ${f.wanted} rows for ${f.table}${f.refused ? ` (${f.refused})` : ''}: its rows are checked as far as they go.`,
    on: { table: f.table },
  };
}

function failsOnData(failure: StepFailure, work: StepWork, options: DataOptions): Finding {
  const d = failure.details;
  const offset = d.offset ?? (d.statementIndex === undefined ? undefined : work.statements[d.statementIndex]?.offset);
  const statement =
    d.statementIndex !== undefined
      ? work.statements[d.statementIndex]?.sql
      : offset === undefined
        ? undefined
        : [...work.statements].reverse().find((s) => s.offset <= offset)?.sql;
  const what = diagnose(statement ?? '', failure.message, work.sql);
  const where = offset === undefined ? {} : lineColumn(work.sql, offset);
  const state = d.code ? ` (${d.code})` : '';
  return {
    severity: 'error',
    code: 'FAILS_ON_DATA',
    file: work.file,
    ...where,
    message: `${what.sentence}: ${failure.message}${state}. It runs on empty tables and fails on ${options.rows} generated rows per table (seed ${options.seed}), as it would at deploy on a database in use.`,
    ...(what.table === undefined
      ? {}
      : { on: { table: what.table, ...(what.column === undefined ? {} : { column: what.column }) } }),
  };
}
