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
 * The rule of the layout: check/ may import core/, scratch/ and catalog/; nothing imports check/
 * but runner/index.ts and the CLI (docs/architecture.md).
 *
 * @module
 */
import { join } from 'node:path';
import { DEFAULT_DIR, DEFAULT_TABLE, DEFAULT_URL, parseUrl } from '../core/config.ts';
import { DIALECTS, dialectFolder, displayPath, isDirectory, type Dialect, type Migration } from '../core/files.ts';
import { lintFolders, unwaived, type Finding, type Waiver } from './lint.ts';
import type { Scratch } from '../scratch/scratch.ts';
import { withScratch } from './scratch.ts';
import type { Driver } from '../core/driver.ts';
import type { Difference, Schema } from '../catalog/schema.ts';
import { compareDialects } from '../catalog/schema-compare.ts';
import {
  type DialectState,
  roundTrip,
  roundTripInParts,
  type RoundTrips,
  SPLIT_FROM,
  snapshotFeed,
  type TripContext,
} from './round-trip.ts';
import { orderConflicts } from './base.ts';
import type { dataPass, DataSummary } from './data/pass.ts';
import { phasesReorder } from './phases.ts';
import type { CompatContext, CompatSummary, Release } from './compat.ts';

export type { CheckCode, Finding } from './lint.ts';
export type { DialectState, RoundTrips } from './round-trip.ts';

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
  /**
   * A git ref (`main`, `origin/main`): revisions added since it that sort before its newest are
   * `ORDER_CONFLICT` (base.ts). An unknown ref or a folder outside a git repository throws BAD_BASE.
   */
  base?: string;
  /**
   * A file of the running release's PostgreSQL statements (`$n` parameters, `;`-separated): each
   * must still prepare, and INSERT/UPDATE/DELETE run, after every pre revision (issue #30).
   */
  compat?: string;
}

export interface CheckOptions {
  /** Stop between two steps; the scratch databases are still removed. */
  signal?: AbortSignal;
  /** Called after each revision of each pass, for a progress line (the CLI shows one on a terminal). */
  onProgress?: (e: CheckProgress) => void;
  /**
   * On a PostgreSQL server, a folder of at least this many revisions has its round trips run in
   * two parts at once, on two scratch databases, and its pass on populated tables beside them on
   * a third (default 200; `Infinity`: never). What check finds is the same either way; for tests
   * and benchmarks.
   */
  partsFrom?: number;
}

/** How far one pass of check has got: `round trips` or `data` (on populated tables), per dialect. */
export interface CheckProgress {
  dialect: Dialect;
  pass: 'round trips' | 'data';
  done: number;
  of: number;
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
  /** `--compat`: the release's statements, how many ran at some point, against how many revisions. */
  compat?: CompatSummary;
}

/** Check the folder, and the migrations on scratch databases. Throws only for usage (NO_MIGRATIONS, BAD_URL) and an unreachable server. */
export async function check(config: CheckConfig = {}, options: CheckOptions = {}): Promise<CheckResult> {
  const dir = config.dir ?? DEFAULT_DIR;
  const connection = parseUrl(config.url ?? DEFAULT_URL);
  const findings: Finding[] = [];
  const add = (f: Finding) => findings.push(f);

  const states = dialectStates(dir, connection.dialect);
  // Before any scratch work: an unknown ref is a usage error, and the conflicts need no database.
  const conflicts =
    config.base === undefined
      ? []
      : orderConflicts(
          states.map((s) => s.folder),
          config.base,
        );
  // Read first: a --compat file that cannot be read is a usage error, before any scratch is made.
  const release =
    config.compat === undefined ? undefined : (await import('./compat.ts')).readRelease(config.compat, states);
  const waivers: Waiver[] = [];
  const sameRevisions = lintFolders(states, add, waivers);
  findings.push(...conflicts);
  const table = config.table ?? DEFAULT_TABLE;
  options.signal?.throwIfAborted();
  // With a server, the dialects run at the same time, each on scratch databases of its own:
  // SQLite's work fills the time this process would otherwise wait for PostgreSQL's answers (the
  // embedded PostgreSQL runs in this process, where the two would only take turns). Each keeps
  // its findings apart; they are added in the order of the folders, as if one had run after the
  // other. The first failure stops the other dialect and is the one thrown.
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const abort = (error: unknown) => {
    failure ??= { error };
    stop.abort(error);
  };
  const data =
    config.data === false
      ? undefined
      : (await import('./data/pass.ts')).dataPass(config.data, signal, options.onProgress);
  let failure: { error: unknown } | undefined;
  const found = states.map(() => ({ trips: [] as Finding[], data: [] as Finding[], compat: [] as Finding[] }));
  const runDialect = async (s: DialectState, i: number) => {
    const own = found[i] as (typeof found)[number];
    const scratch: OnScratch = (fn) => withScratch(s.dialect, connection, table, fn);
    const compat =
      release && s.dialect === 'postgres'
        ? { release, context: { add: (f: Finding) => own.compat.push(f), data: config.data, signal } }
        : undefined;
    const progress = options.onProgress;
    try {
      s.roundTrips = await dialectRoundTrips(
        s,
        scratch,
        {
          waivers,
          add: (f) => own.trips.push(f),
          signal,
          ...(options.partsFrom === undefined ? {} : { partsFrom: options.partsFrom }),
          ...(progress
            ? {
                progress: (done: number) =>
                  progress({ dialect: s.dialect, pass: 'round trips', done, of: s.migrations.length }),
              }
            : {}),
        },
        data && { pass: data, add: (f) => own.data.push(f) },
        abort,
        compat,
      );
    } catch (error) {
      abort(error);
    }
  };
  if (connection.dialect === 'postgres') await Promise.all(states.map(runDialect));
  else for (const [i, s] of states.entries()) await runDialect(s, i);
  if (failure) throw failure.error;
  for (const f of found) findings.push(...f.trips, ...f.data, ...f.compat);

  for (const s of states) {
    const trips = s.roundTrips;
    if (!trips || trips.skipped || trips.revisions < s.migrations.length || !phasesReorder(s.migrations)) continue;
    options.signal?.throwIfAborted();
    const { checkPhaseOrder } = await import('./phases.ts');
    await withScratch(s.dialect, connection, table, (driver) => checkPhaseOrder(s, driver, add, options.signal));
  }

  const compared = compareAcross(states, sameRevisions, waivers, add);
  unusedWaivers(states, waivers, compared.revisions, add);
  if (states.every((s) => s.runnable)) {
    const { staleSchemaFindings } = await import('./stale.ts');
    // check --url names a server for scratch databases: the committed file is built there too.
    const scratchUrl = connection.dialect === 'postgres' ? connection.url : undefined;
    const stale = { dir, table: config.table, url: config.url, scratchUrl };
    findings.push(...(await staleSchemaFindings(stale, { signal: options.signal })));
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
    ...(release ? { compat: release.summary } : {}),
  };
}

/** Each dialect folder present, or a folder of .sql files without them as the URL's dialect (as for every command). */
function dialectStates(dir: string, urlDialect: Dialect): DialectState[] {
  const present = DIALECTS.filter((d) => isDirectory(join(dir, d)));
  return (present.length > 0 ? present : [urlDialect]).map((dialect) => ({
    dialect,
    folder: dialectFolder(dir, dialect),
    runnable: true,
    migrations: [],
    works: new Map(),
    snapshots: [],
  }));
}

/** The pass on populated tables (loaded only when it runs), and where its findings go. */
type DataPass = { pass: ReturnType<typeof dataPass>; add: (f: Finding) => void };

/** A fresh scratch database of one dialect for `fn`, removed afterwards. */
type OnScratch = <T>(fn: (driver: Driver, scratch: Scratch) => Promise<T>) => Promise<T>;

/**
 * One dialect's round trips, then its pass on populated tables, on a scratch database; a folder
 * with errors is not run. For a long folder on a PostgreSQL server the pass runs beside the
 * round trips instead, on a database of its own, each revision once the round trips have read
 * its schema: the server gives each session a core of its own (on a short folder a new database
 * costs more than the pass). The embedded PostgreSQL and SQLite run in this process, where the
 * pass could only take turns with the round trips: it follows them there, on the same database
 * rolled back through the downs.
 */
async function dialectRoundTrips(
  s: DialectState,
  onScratch: OnScratch,
  context: TripContext,
  data: DataPass | undefined,
  /** Stops every pass of the run (both dialects), with the error to throw. */
  abort: (error: unknown) => void,
  compat?: { release: Release; context: CompatContext },
): Promise<RoundTrips> {
  const of = s.migrations.length;
  if (!s.runnable) return { dialect: s.dialect, revisions: 0, of, skipped: `errors in ${displayPath(s.folder)}/` };
  let database = '';
  const revisions = await onScratch(async (driver, scratch) => {
    database = scratch.label;
    const feed = snapshotFeed(s);
    const inParts =
      s.dialect === 'postgres' && !scratch.embedded && s.migrations.length >= (context.partsFrom ?? SPLIT_FROM);
    const beside = data && inParts ? data.pass.alongside(s, feed.reached, onScratch, data.add) : undefined;
    // A pass that fails stops the round trips too, at once.
    const besideEnded = beside?.then(
      () => undefined,
      (error: unknown) => {
        abort(error);
        return { error };
      },
    );
    const trip = { ...context, s, driver, scratch, onSnapshot: feed.wake };
    let done = 0;
    try {
      done = await (inParts ? roundTripInParts(trip, onScratch) : roundTrip(trip));
    } catch (error) {
      abort(error);
      feed.end();
      // Waited for (its database dropped) before this one goes.
      await besideEnded;
      throw error;
    }
    feed.end();
    const ended = await besideEnded;
    if (ended) throw ended.error;
    if (!beside) await data?.pass.run(s, done, driver, onScratch, data.add);
    // On the same scratch database, rolled back to empty through the downs: cheaper than a new one.
    if (compat) {
      const { checkCompat } = await import('./compat.ts');
      const { rewind } = await import('./data/pass.ts');
      await checkCompat(
        compat.release,
        async (fn) => ((await rewind(driver, s)) ? fn(driver) : onScratch((fresh) => fn(fresh))),
        compat.context,
      );
    }
    return done;
  });
  // Which PostgreSQL proved the folder is worth saying: a server's scratch database, or the embedded one.
  return { dialect: s.dialect, revisions, of, ...(s.dialect === 'postgres' ? { database } : {}) };
}

/**
 * A waiver nothing used is reported only when every comparison that could have used it ran: an
 * up file's waiver may be meant for the dialects' comparison, which needs both round trips to
 * get that far (`comparedRevisions`).
 */
function unusedWaivers(
  states: DialectState[],
  waivers: Waiver[],
  comparedRevisions: number,
  add: (f: Finding) => void,
): void {
  const reachedRoundTrip = new Map(states.map((s) => [s.dialect, s.roundTrips?.revisions ?? 0]));
  const order = new Map((states[0]?.migrations ?? []).map((m, i) => [m.revision, i]));
  for (const w of waivers) {
    if (w.used) continue;
    const at =
      states.find((s) => s.dialect === w.dialect)?.migrations.findIndex((m) => m.revision === w.revision) ?? -1;
    const roundTripped = at >= 0 && at < (reachedRoundTrip.get(w.dialect) ?? 0);
    const compareRan = states.length < 2 || (order.get(w.revision) ?? Infinity) < comparedRevisions;
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
