/**
 * `check` on populated tables, on a scratch database of its own: at each revision, fill every
 * table the revision finds (generate.ts, fill.ts), run the up (a failure here, after the same
 * up ran on empty tables, is FAILS_ON_DATA), read every row, run the down, read again
 * (fingerprint.ts): a row lost, added or changed is DATA_LOSS in the down file, unless a
 * `-- migrate:allow-data-loss <table>[.<column>]: <reason>` line there accepts it.
 *
 * @module
 */
import type { Direction, Dialect, Migration, MigrationFile } from '../../core/files.ts';
import { type StepWork, runStep, StepFailure } from '../../core/step.ts';
import type { Finding } from '../lint.ts';
import { introspect } from '../../catalog/introspect.ts';
import type { Driver } from '../../core/driver.ts';
import { lineColumn } from '../../core/position.ts';
import { dataDb, fillTables, type DataDb, type Filled } from './fill.ts';
import type { Schema } from '../../catalog/schema.ts';
import { compareFingerprints, fingerprint, type RowChange } from './fingerprint.ts';
import { diagnose } from './diagnose.ts';

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

interface DataWaiver {
  file: string;
  line: number;
  text: string;
  /** `table` or `table.column`, lower case. */
  subject: string;
  used: boolean;
}

export interface DataInput {
  dialect: Dialect;
  migrations: readonly Migration[];
  works: ReadonlyMap<string, { up: StepWork; down: StepWork }>;
  snapshots: readonly Schema[];
  /** How many revisions round-tripped on empty tables: only those are run here. */
  roundTripped: number;
  withScratch: Scratch;
  add: (f: Finding) => void;
  options: DataOptions;
  signal?: AbortSignal | undefined;
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
 * The pass, run once per dialect right after its round trips, on the round trips' own scratch
 * database when every applied down brings it back to empty (creating a PostgreSQL database
 * costs more than the whole pass on a short folder), else on a fresh one from `fresh`.
 */
export function dataPass(
  given: { seed?: number; rows?: number } | undefined,
  add: (f: Finding) => void,
  signal: AbortSignal | undefined,
): {
  summary: DataSummary;
  run(
    s: DialectRun,
    roundTripped: number,
    driver: Driver,
    fresh: <T>(fn: (driver: Driver) => Promise<T>) => Promise<T>,
  ): Promise<void>;
} {
  const options = { seed: given?.seed ?? Math.floor(Math.random() * 1_000_000), rows: given?.rows ?? DEFAULT_ROWS };
  const summary: DataSummary = { ...options, runs: [] };
  return {
    summary,
    async run(s, roundTripped, driver, fresh) {
      if (roundTripped === 0) return;
      const reuse: Scratch = async (fn) => {
        // At the first revision, as the round trips end on a one-revision folder: nothing to roll back.
        const record = await driver.readRecord();
        const first = s.migrations[0]?.revision;
        if (record.length === 1 && record[0]?.revision === first && record[0]?.status === 'applied')
          return fn(driver, true);
        return (await rewind(driver, s)) ? fn(driver, false) : fresh((d) => fn(d, false));
      };
      summary.runs.push(await checkData({ ...s, roundTripped, withScratch: reuse, add, options, signal }));
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
  const waivers = new Map(migrations.map((m) => [m.revision, readDataWaivers(m.down, add)]));
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
        message: `"-- migrate:allow-data-loss ${w.text}" accepts nothing: the down loses no row or value of "${w.subject}" on populated tables. Remove it, or name the table (or table.column) as check reports it.`,
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
  const fill = async (schema: Schema, file: string, salt: number) => {
    const fresh = new Set(schema.tables.map((t) => t.name).filter((t) => !filled.has(t)));
    for (const f of await fillTables(db, schema, fresh, options.rows, options.seed + salt)) {
      filled.add(f.table);
      if (f.inserted < f.wanted / 2) add(shortfall(f, file));
    }
  };
  let done = 0;
  for (const [i, m] of migrations.slice(0, input.roundTripped).entries()) {
    const work = input.works.get(m.revision) as { up: StepWork; down: StepWork };
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
    const stop = (failure: StepFailure, direction: Direction) => {
      add(failsOnData(failure, work[direction], options));
      return done;
    };
    const before = i === 0 ? EMPTY : (input.snapshots[i - 1] as Schema);
    const tables = before.tables.map((t) => t.name);
    await fill(before, m.up.path, 2 * i);
    const rowsBefore = await fingerprint(db, before, tables);
    // On empty tables (the first revision finds none) the round trips' own up stands for this one.
    const upFailed = i === 0 && firstApplied ? undefined : await run('up');
    if (upFailed) return stop(upFailed, 'up');
    // The tables this revision made get rows too, so that its down runs on populated tables.
    const made = input.snapshots[i] as Schema;
    await fill(made, m.down.path, 2 * i + 1);
    const downFailed = await run('down');
    if (downFailed) return stop(downFailed, 'down');
    for (const t of made.tables) if (!tables.includes(t.name)) filled.delete(t.name);
    const changes =
      tables.length === 0
        ? []
        : compareFingerprints(rowsBefore, await fingerprint(db, await introspect(driver), tables));
    for (const c of changes) add(dataLoss(c, m, waivers.get(m.revision) ?? []));
    // The last revision is not applied again: no later one needs it, and the round trips ran it twice.
    if (i === input.roundTripped - 1) return done + 1;
    const againFailed = await run('up');
    if (againFailed) {
      // After a down that lost rows, the up failing on what is left is the sequel, not news.
      if (changes.length === 0) stop(againFailed, 'up');
      return done;
    }
    done++;
  }
  return done;
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

function dataLoss(c: RowChange, m: Migration, waivers: DataWaiver[]): Finding {
  const at = c.column === undefined ? c.table : `${c.table}.${c.column}`;
  const first =
    c.kind === 'changed'
      ? `first: ${c.key}: ${c.before} before the up, ${c.after} after the down`
      : c.kind === 'lost'
        ? `first: ${c.key}: ${c.before}`
        : `first: ${c.key}: ${c.after}`;
  const what =
    c.kind === 'lost'
      ? `loses ${c.rows} of the ${c.of} rows of ${c.table} that were there before ${m.stem}.up.sql ran`
      : c.kind === 'added'
        ? `leaves ${c.rows} rows in ${c.table} that were not there before ${m.stem}.up.sql ran (duplicated or made up)`
        : `changes ${at} in ${c.rows} of ${c.of} rows`;
  const subjects = [c.table.toLowerCase(), at.toLowerCase()];
  const hits = waivers.filter((w) => subjects.includes(w.subject));
  for (const w of hits) w.used = true;
  const finding: Finding = {
    severity: hits.length > 0 ? 'note' : 'error',
    code: 'DATA_LOSS',
    file: m.down.path,
    message:
      hits.length > 0
        ? `${what} (${first}); accepted by "-- migrate:allow-data-loss ${hits[0]?.text}".`
        : `${what} (${first}). A down must give back the rows its up found. If it cannot, say why in this file: -- migrate:allow-data-loss ${at}: <reason>`,
    subject: at,
    on: { table: c.table, ...(c.column === undefined ? {} : { column: c.column }) },
  };
  return finding;
}

const WAIVER = /^\s*--\s*migrate:allow-data-loss\b\s*(.*)$/;

/** The `-- migrate:allow-data-loss` lines of a down file's leading comment block; a malformed one is BAD_WAIVER. */
function readDataWaivers(file: MigrationFile, add: (f: Finding) => void): DataWaiver[] {
  if (!file.text.includes('migrate:allow-data-loss')) return [];
  const out: DataWaiver[] = [];
  const lines = file.text.split('\n');
  for (const [i, line] of lines.entries()) {
    if (line.trim() !== '' && !line.trim().startsWith('--')) break;
    const m = WAIVER.exec(line);
    if (!m) continue;
    const text = (m[1] as string).trim();
    const parsed = /^([^\s:]+):\s*(\S.*)$/.exec(text);
    if (!parsed) {
      add({
        severity: 'error',
        code: 'BAD_WAIVER',
        file: file.path,
        line: i + 1,
        message: `"-- migrate:allow-data-loss ${text}" must name a table or column and say why: "-- migrate:allow-data-loss <table>[.<column>]: <why>".`,
      });
      continue;
    }
    out.push({ file: file.path, line: i + 1, text, subject: (parsed[1] as string).toLowerCase(), used: false });
  }
  return out;
}
