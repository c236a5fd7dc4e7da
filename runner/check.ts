/**
 * `check`: prove that the folder is sound, that every down undoes its up exactly, and that the
 * dialect folders describe the same schema.
 *
 * 1. Without a database, every file of every dialect folder: names, pairs, the same revisions
 *    in each folder, directives (waivers included), transaction control in a transactional
 *    file, statements PostgreSQL refuses inside a transaction, no-transaction files of several
 *    statements, identifiers longer than PostgreSQL keeps, up files without a statement
 *    (lint.ts).
 * 2. On scratch databases (a SQLite file; a PostgreSQL database created and dropped on the
 *    server the URL names, or else an embedded PostgreSQL made for the run), through the
 *    runner's own `runStep`, revision by revision: snapshot, up, snapshot, down, compare with
 *    the first snapshot, up again, compare with the second.
 * 3. The two dialects' snapshots after each revision, on what both can express (schema.ts).
 *
 * Findings are returned, never printed; the database the URL names is never touched.
 *
 * @module
 */
import { join } from 'node:path';
import type { Direction, StepWork } from './driver.ts';
import type { MigrationFailed } from './errors.ts';
import { DEFAULT_DIR, DEFAULT_TABLE, DEFAULT_URL, parseUrl } from './config.ts';
import { DIALECTS, dialectFolder, displayPath, isDirectory, type Dialect, type Migration } from './files.ts';
import { lintFolders, type Finding, type FolderState, type Waiver } from './lint.ts';
import { embeddedLacks, lackedExtension } from './embedded.ts';
import { runStep, StepFailure, toMigrationFailed } from './step.ts';
import { checkLocks } from './check-locks.ts';
import { type Scratch, withScratch } from './scratch.ts';
import { introspect, type Introspectable } from './introspect.ts';
import { compareDialects, compareSnapshots, normaliseSubject, type Difference, type Schema } from './schema.ts';
import type { DataSummary } from './data/pass.ts';

export type { CheckCode, Finding } from './lint.ts';

export interface CheckConfig {
  /**
   * A `postgres://` URL adds the PostgreSQL half: a scratch database is created on that server
   * (the role needs CREATEDB) and dropped afterwards. The database the URL names is not touched.
   * A SQLite URL, or none: the PostgreSQL half runs on an embedded PostgreSQL (PGlite) instead.
   */
  url?: string;
  /** Root of the dialect folders, or a folder holding .sql files directly. Default `sql`. */
  dir?: string;
  /** The record table the scratch databases keep (left out of every comparison). */
  table?: string;
  /** The pass on populated tables (runner/data/): false skips it; seed and rows per table otherwise. */
  data?: false | { seed?: number; rows?: number };
}

export interface CheckOptions {
  /** Stop between two steps; the scratch databases are still removed. */
  signal?: AbortSignal;
}

export interface RoundTrips {
  dialect: Dialect;
  /** Revisions whose up, down and up again ran on the scratch database. */
  revisions: number;
  of: number;
  /** Why the scratch database was not used at all. */
  skipped?: string;
  /** PostgreSQL: the database the round trips ran on, for people (a server's scratch database, or the embedded one). */
  database?: string;
}

export interface CheckResult {
  /** No errors (warnings allowed). */
  ok: boolean;
  errors: number;
  warnings: number;
  findings: Finding[];
  /** The dialect folders checked. */
  dialects: Dialect[];
  roundTrips: RoundTrips[];
  /** Revisions at which the two dialects' schemas were compared. */
  compared: { revisions: number; skipped?: string };
  /** The pass on populated tables; absent when skipped. */
  data?: DataSummary;
}

interface DialectState extends FolderState {
  /** The schema after each revision's up, in order, as far as the round trips got. */
  snapshots: Schema[];
  roundTrips?: RoundTrips;
}

/** Check the folder, and the migrations on scratch databases. Throws only for usage (NO_MIGRATIONS, BAD_URL) and an unreachable server. */
export async function check(config: CheckConfig = {}, options: CheckOptions = {}): Promise<CheckResult> {
  const dir = config.dir ?? DEFAULT_DIR;
  const connection = parseUrl(config.url ?? DEFAULT_URL);
  const findings: Finding[] = [];
  const add = (f: Finding) => findings.push(f);

  const present = DIALECTS.filter((d) => isDirectory(join(dir, d)));
  // A folder of .sql files without dialect folders is the URL's dialect (as for every command).
  const states: DialectState[] = (present.length > 0 ? present : [connection.dialect]).map((dialect) => ({
    dialect,
    folder: dialectFolder(dir, dialect),
    runnable: true,
    migrations: [],
    works: new Map(),
    snapshots: [],
  }));

  const waivers: Waiver[] = [];
  const sameRevisions = lintFolders(states, add, waivers);
  const data =
    config.data === false ? undefined : (await import('./data/pass.ts')).dataPass(config.data, add, options.signal);

  for (const s of states) {
    options.signal?.throwIfAborted();
    const of = s.migrations.length;
    if (!s.runnable) {
      s.roundTrips = { dialect: s.dialect, revisions: 0, of, skipped: `errors in ${displayPath(s.folder)}/` };
    } else {
      let database = '';
      const table = config.table ?? DEFAULT_TABLE;
      const revisions = await withScratch(s.dialect, connection, table, async (driver, scratch) => {
        database = scratch.label;
        const done = await roundTrip(s, driver, waivers, add, options.signal, scratch);
        await data?.run(s, done, driver, (fn) => withScratch(s.dialect, connection, table, fn));
        return done;
      });
      // Which PostgreSQL proved the folder is worth saying: a server's scratch database, or the embedded one.
      s.roundTrips = { dialect: s.dialect, revisions, of, ...(s.dialect === 'postgres' ? { database } : {}) };
    }
  }

  const compared = compareAcross(states, sameRevisions, waivers, add);

  const reachedRoundTrip = new Map(states.map((s) => [s.dialect, s.roundTrips?.revisions ?? 0]));
  const order = new Map((states[0]?.migrations ?? []).map((m, i) => [m.revision, i]));
  for (const w of waivers) {
    if (w.used) continue;
    // Unused only when every comparison that could have used it ran: an up file's waiver may be
    // meant for the dialects' comparison, which needs both round trips to get that far.
    const at =
      states.find((s) => s.dialect === w.dialect)?.migrations.findIndex((m) => m.revision === w.revision) ?? -1;
    const roundTripped = at >= 0 && at < (reachedRoundTrip.get(w.dialect) ?? 0);
    const compareRan = states.length < 2 || (order.get(w.revision) ?? Infinity) < compared.revisions;
    if (roundTripped && (w.direction === 'down' || compareRan)) {
      add({
        severity: 'warning',
        code: 'UNUSED_WAIVER',
        file: w.file,
        ...(w.line === undefined ? {} : { line: w.line }),
        message: `"-- migrate:allow-difference ${w.text}" accepts nothing: no difference named "${w.subject}" appears at this revision. Remove it, or name the difference as check reports it (a difference between the dialects is accepted in an up file of the revision where it first appears).`,
      });
    }
  }

  if (states.every((s) => s.runnable)) {
    const { staleSchemaFindings } = await import('./schema-command.ts');
    findings.push(...(await staleSchemaFindings({ dir, table: config.table, url: config.url })));
  }

  const errors = findings.filter((f) => f.severity === 'error').length;
  return {
    ok: errors === 0,
    errors,
    warnings: findings.filter((f) => f.severity === 'warning').length,
    findings,
    dialects: states.map((s) => s.dialect),
    roundTrips: states.map((s) => s.roundTrips as RoundTrips),
    compared,
    ...(data ? { data: data.summary } : {}),
  };
}

/**
 * Every revision in order: up, down (the schema must be back where it started), up again (the
 * schema must be what the first up made). Returns how many revisions completed; stops at the
 * first failure, since the database is then in no known state.
 */
async function roundTrip(
  s: DialectState,
  driver: Introspectable,
  waivers: Waiver[],
  add: (f: Finding) => void,
  signal: AbortSignal | undefined,
  scratch: Scratch,
): Promise<number> {
  await driver.ensureRecordTable();
  let before = await introspect(driver);
  let done = 0;
  for (const m of s.migrations) {
    const work = s.works.get(m.revision) as { up: StepWork; down: StepWork };
    /** Run one file of the pair; a failure comes back as a finding-to-be (file:line:column and message), not thrown. */
    const run = async (direction: Direction): Promise<MigrationFailed | undefined> => {
      signal?.throwIfAborted();
      try {
        await runStep(driver, work[direction]);
        return undefined;
      } catch (error) {
        if (!(error instanceof StepFailure)) throw error;
        return toMigrationFailed(error, work[direction], { direction, migration: m }, []);
      }
    };
    const report = (failed: MigrationFailed, what: string, severity: 'error' | 'warning', suffix: string) => {
      const { file, line, column } = failed.where;
      const at = { file, ...(line === undefined ? {} : { line }), ...(column === undefined ? {} : { column }) };
      const lacked = scratch.embedded ? lackedExtension(failed) : undefined;
      if (lacked) {
        add({ severity: 'warning', code: 'MIGRATION_FAILED', ...at, message: embeddedLacks(lacked, s.dialect) });
        return;
      }
      const state = failed.info.sqlState ? ` (${failed.info.sqlState})` : '';
      add({
        severity,
        code: 'MIGRATION_FAILED',
        ...at,
        message: `${what}: ${failed.message}${state}.${suffix}`,
      });
    };
    const stopped = ` Later revisions were not run on ${s.dialect}.`;

    // Measured before the real up, in a transaction rolled back, against the schema before it.
    if (s.dialect === 'postgres') await checkLocks(driver, m, work.up, add);
    const upFailed = await run('up');
    if (upFailed) {
      report(upFailed, `fails on a scratch ${s.dialect} database`, 'error', stopped);
      return done;
    }
    const after = await introspect(driver);
    const downFailed = await run('down');
    if (downFailed) {
      report(downFailed, `fails on a scratch ${s.dialect} database, right after its up`, 'error', stopped);
      return done;
    }
    const back = await introspect(driver);
    const left = unwaived(compareSnapshots(before, back), waivers, s.dialect, m.revision, ['up', 'down']);
    for (const d of left) {
      add({
        severity: 'error',
        code: 'ROUND_TRIP',
        file: m.down.path,
        message: roundTripMessage(d, m),
        subject: d.subject,
      });
    }
    const againFailed = await run('up');
    if (againFailed) {
      // After a down that left something behind, the second up failing is the expected sequel.
      report(
        againFailed,
        `fails when run again after its down (as after "-1" then "head")`,
        left.length > 0 ? 'warning' : 'error',
        left.length > 0 ? ` That follows from the incomplete down above.${stopped}` : stopped,
      );
      return done;
    }
    const again = await introspect(driver);
    if (left.length === 0) {
      for (const d of unwaived(compareSnapshots(after, again), waivers, s.dialect, m.revision, ['up', 'down'])) {
        add({ severity: 'error', code: 'REAPPLY', file: m.up.path, message: reapplyMessage(d), subject: d.subject });
      }
    }
    s.snapshots.push(again);
    before = again;
    done++;
  }
  return done;
}

function roundTripMessage(d: Difference, m: Migration): string {
  const what =
    d.kind === 'onlyRight'
      ? `leaves ${d.object} behind: it was not there before ${m.stem}.up.sql ran, and the down must remove what the up made.`
      : d.kind === 'onlyLeft'
        ? `removes ${d.object}, which was there before ${m.stem}.up.sql ran.`
        : `does not restore ${d.at}: ${d.left} before the up, ${d.right} after the down.`;
  return `${what} If it cannot be undone, say why in this file: -- migrate:allow-difference ${d.subject}: <reason>`;
}

function reapplyMessage(d: Difference): string {
  if (d.kind === 'onlyLeft') return `run again after its down, no longer creates ${d.object}.`;
  if (d.kind === 'onlyRight') return `run again after its down, also creates ${d.object}.`;
  return `run again after its down, gives ${d.at}: ${d.right}, where the first run gave ${d.left}.`;
}

/** The differences no waiver of this revision's files (in these dialects and directions) accepts; marks the waivers used. */
function unwaived(
  diffs: Difference[],
  waivers: Waiver[],
  dialects: Dialect | Dialect[],
  revision: string,
  directions: Array<'up' | 'down'>,
): Difference[] {
  const ds = Array.isArray(dialects) ? dialects : [dialects];
  return diffs.filter((d) => {
    const subject = normaliseSubject(d.subject);
    const hits = waivers.filter(
      (w) =>
        ds.includes(w.dialect) && w.revision === revision && directions.includes(w.direction) && w.subject === subject,
    );
    for (const w of hits) w.used = true;
    return hits.length === 0;
  });
}

// ---------------------------------------------------------------------------------------------
// The dialects against each other
// ---------------------------------------------------------------------------------------------

/**
 * The schemas after each revision, PostgreSQL against SQLite. A difference is reported at the
 * revision where it appears (and again only if it goes away and comes back), in the file to
 * look at: the folder that lacks the object, or the SQLite file (the port) when both have it.
 */
function compareAcross(
  states: DialectState[],
  sameRevisions: boolean,
  waivers: Waiver[],
  add: (f: Finding) => void,
): { revisions: number; skipped?: string } {
  const pg = states.find((s) => s.dialect === 'postgres');
  const lite = states.find((s) => s.dialect === 'sqlite');
  if (!pg || !lite) return { revisions: 0, skipped: 'only one dialect folder' };
  if (!sameRevisions) return { revisions: 0, skipped: 'the dialect folders hold different revisions' };
  if (pg.roundTrips?.skipped || lite.roundTrips?.skipped)
    return {
      revisions: 0,
      skipped: (pg.roundTrips?.skipped
        ? `postgres: ${pg.roundTrips.skipped}`
        : `sqlite: ${lite.roundTrips?.skipped}`) as string,
    };
  const count = Math.min(pg.snapshots.length, lite.snapshots.length);
  let previous = new Set<string>();
  for (let i = 0; i < count; i++) {
    const mp = pg.migrations[i] as Migration;
    const ml = lite.migrations[i] as Migration;
    const diffs = compareDialects(pg.snapshots[i] as Schema, lite.snapshots[i] as Schema);
    const key = (d: Difference) => `${d.kind}\0${d.subject}\0${d.left ?? ''}\0${d.right ?? ''}`;
    const fresh = diffs.filter((d) => !previous.has(key(d)));
    previous = new Set(diffs.map(key));
    for (const d of unwaived(fresh, waivers, ['postgres', 'sqlite'], mp.revision, ['up'])) {
      const file = d.kind === 'onlyRight' ? mp.up.path : ml.up.path;
      const text =
        d.kind === 'onlyLeft'
          ? `${d.object} exists in postgres only`
          : d.kind === 'onlyRight'
            ? `${d.object} exists in sqlite only`
            : `${d.at}: ${d.left} in postgres, ${d.right} in sqlite`;
      add({
        severity: 'error',
        code: 'DIALECT_DIFFERENCE',
        file,
        message: `${text} (after ${mp.stem}). If intended, say why in either up file: -- migrate:allow-difference ${d.subject}: <reason>`,
        subject: d.subject,
      });
    }
  }
  return { revisions: count };
}
