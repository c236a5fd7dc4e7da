/**
 * check's round trips on one dialect's scratch database: every revision up, down (the schema
 * must be back where it started) and up again (the schema must be what the first up made),
 * through the runner's own `runStep`, with what each statement locks measured on PostgreSQL.
 *
 * @module
 */
import type { Dialect, Direction, Migration } from '../core/files.ts';
import { type StepWork, runStep, StepFailure, toMigrationFailed } from '../core/step.ts';
import type { MigrationFailed } from '../core/errors.ts';
import { type Finding, type FolderState, unwaived, type Waiver } from './lint.ts';
import { embeddedLacks, lackedExtension } from '../scratch/embedded.ts';
import { checkLocks } from './locks.ts';
import type { Scratch } from '../scratch/scratch.ts';
import { introspect } from '../catalog/introspect.ts';
import type { Driver } from '../core/driver.ts';
import type { Difference, Schema } from '../catalog/schema.ts';
import { compareSnapshots } from '../catalog/schema-compare.ts';

/** What one dialect's round trips share besides its state and database. */
export interface TripContext {
  waivers: Waiver[];
  add: (f: Finding) => void;
  signal: AbortSignal | undefined;
  /** Called with the number of revisions done after each one. */
  progress?: (done: number) => void;
  /** Called once the schema after a revision is in `snapshots` (the data pass may be waiting for it). */
  onSnapshot?: () => void;
  /** From how many revisions a server's round trips run in two parts (roundTripInParts), the data pass beside them; default {@link SPLIT_FROM}. */
  partsFrom?: number;
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

export interface DialectState extends FolderState {
  /** The schema after each revision's up, in order, as far as the round trips got. */
  snapshots: Schema[];
  roundTrips?: RoundTrips;
}

/** One dialect's round trips on its scratch database. */
export interface Trip extends TripContext {
  s: DialectState;
  driver: Driver;
  scratch: Scratch;
}

/**
 * Every revision in order (those from `from` to before `to`): up, down (the schema must be back
 * where it started), up again (the schema must be what the first up made). `start` is the schema
 * before revision `from` (read here when not given). Returns how many revisions completed;
 * stops at the first failure, since the database is then in no known state.
 */
export async function roundTrip(
  t: Trip,
  from = 0,
  to = t.s.migrations.length,
  start: Schema | undefined = t.s.snapshots[from - 1],
): Promise<number> {
  if (from === 0) await t.driver.ensureRecordTable();
  let before = start ?? (await introspect(t.driver));
  let done = 0;
  for (const m of t.s.migrations.slice(from, to)) {
    const again = await roundTripOne(t, m, before);
    if (!again) return done;
    t.s.snapshots.push(again);
    t.onSnapshot?.();
    before = again;
    done++;
    t.progress?.(from + done);
  }
  return done;
}

/**
 * Folders shorter than this run on one database, with the pass on populated tables after the
 * round trips: a second database costs a CREATE DATABASE, and the ups before its part.
 */
export const SPLIT_FROM = 200;

/**
 * Where the first part ends, as a share of the folder: a reading costs more as the schema grows,
 * and the second part first replays the revisions before it. At 1000 revisions on the server the
 * second part ended 31 s after the first at 0.4 and 25 s after at 0.45 (bench/check-scale.ts).
 */
const CUT = 0.5;

/**
 * On a PostgreSQL server, a long folder's round trips in two parts at once, each on a scratch
 * database of its own: the first database takes the first revisions; the second replays on
 * itself what the first does to them (the lock measurement's rolled-back run, up, down, up
 * again: every statement, so that rows and sequences end as they do there), without the
 * readings, then takes the rest. A reading costs more as the schema grows, hence the uneven
 * cut. Each part is the one session of a server process, so the two run on two cores.
 *
 * The second part's findings, snapshots and waivers count only if the first part went through
 * all of its revisions, whatever it found on the way: its database then holds what the second
 * part's replay made. Otherwise the second part is dropped, as one database would have stopped.
 * Its snapshots are handed on from then, as they come (the pass on populated tables follows
 * them); its findings and waivers once it ends.
 */
export async function roundTripInParts(
  t: Trip,
  fresh: <T>(fn: (driver: Driver, scratch: Scratch) => Promise<T>) => Promise<T>,
): Promise<number> {
  const n = t.s.migrations.length;
  if (n < 2) return roundTrip(t);
  const cut = Math.max(1, Math.round(n * CUT));
  const stop = new AbortController();
  const signal = t.signal ? AbortSignal.any([t.signal, stop.signal]) : stop.signal;
  const waivers = t.waivers.map((w) => ({ ...w }));
  const found: Finding[] = [];
  const rest: DialectState = { ...t.s, snapshots: [] };
  // Once the first part has gone through, the second part's snapshots are handed on as they
  // come, in order: the pass on populated tables then follows the second part as it goes.
  let firstDone = false;
  let handed = 0;
  const handOn = () => {
    if (!firstDone || handed === rest.snapshots.length) return;
    t.s.snapshots.push(...rest.snapshots.slice(handed));
    handed = rest.snapshots.length;
    t.onSnapshot?.();
  };
  const second = fresh(async (driver, scratch) => {
    await driver.ensureRecordTable();
    for (const m of t.s.migrations.slice(0, cut)) {
      const work = t.s.works.get(m.revision) as { up: StepWork; down: StepWork };
      signal.throwIfAborted();
      await checkLocks(driver, m, work.up, () => {}, scratch.serverUrl);
      for (const step of [work.up, work.down, work.up]) await runStep(driver, step);
    }
    const start = await introspect(driver);
    const part: Trip = { s: rest, driver, scratch, waivers, add: (f) => found.push(f), signal, onSnapshot: handOn };
    return roundTrip(part, cut, n, start);
  }).then(
    (done) => ({ done }),
    (error: unknown) => ({ error }),
  );
  let first: number;
  try {
    first = await roundTrip(t, 0, cut);
  } catch (error) {
    stop.abort(error);
    await second;
    throw error;
  }
  if (first === cut) {
    firstDone = true;
    handOn();
    const other = await second;
    if ('done' in other) {
      handOn();
      for (const f of found) t.add(f);
      for (const [i, w] of waivers.entries()) if (w.used) (t.waivers[i] as Waiver).used = true;
      // Its revisions are counted when it is taken, as its findings are.
      if (other.done > 0) t.progress?.(cut + other.done);
      return cut + other.done;
    }
    // Its snapshots are in use already: the run ends with the error, as one database's would.
    if (handed > 0) throw other.error;
    // The second part could not run (a refused connection, say): the first goes on alone.
    t.signal?.throwIfAborted();
    return cut + (await roundTrip(t, cut, n));
  }
  stop.abort();
  await second;
  return first;
}

/**
 * The round trips' snapshots as they come: `reached(i)` waits until revision `i` has its
 * snapshot (true) or the round trips have ended without it (false).
 */
export function snapshotFeed(s: DialectState): {
  reached: (i: number) => Promise<boolean>;
  wake: () => void;
  end: () => void;
} {
  let ended = false;
  let waiting: Array<() => void> = [];
  const wake = () => {
    const now = waiting;
    waiting = [];
    for (const w of now) w();
  };
  return {
    async reached(i) {
      while (s.snapshots.length <= i && !ended) await new Promise<void>((resolve) => waiting.push(resolve));
      return s.snapshots.length > i;
    },
    wake,
    end() {
      ended = true;
      wake();
    },
  };
}

/** One revision's up, down and up again, from `before`; the schema it ends with, or undefined where it stopped. */
async function roundTripOne(t: Trip, m: Migration, before: Schema): Promise<Schema | undefined> {
  const { s, driver, waivers, add } = t;
  const work = s.works.get(m.revision) as { up: StepWork; down: StepWork };
  const run = (direction: Direction) => runFile(t, m, work[direction], direction);
  // Each reading reads again only what the catalog says changed since the last (introspect.ts).
  const read = () => introspect(driver);
  const stopped = ` Later revisions were not run on ${s.dialect}.`;

  // Measured before the real up, in a transaction rolled back, against the schema before it.
  if (s.dialect === 'postgres') await checkLocks(driver, m, work.up, add, t.scratch.serverUrl);
  const upFailed = await run('up');
  if (upFailed) return reportFailed(t, upFailed, `fails on a scratch ${s.dialect} database`, 'error', stopped);
  const after = await read();
  const downFailed = await run('down');
  if (downFailed) {
    return reportFailed(
      t,
      downFailed,
      `fails on a scratch ${s.dialect} database, right after its up`,
      'error',
      stopped,
    );
  }
  const back = await read();
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
    return reportFailed(
      t,
      againFailed,
      `fails when run again after its down (as after "-1" then "head")`,
      left.length > 0 ? 'warning' : 'error',
      left.length > 0 ? ` That follows from the incomplete down above.${stopped}` : stopped,
    );
  }
  const again = await read();
  if (left.length === 0) {
    for (const d of unwaived(compareSnapshots(after, again), waivers, s.dialect, m.revision, ['up', 'down'])) {
      add({ severity: 'error', code: 'REAPPLY', file: m.up.path, message: reapplyMessage(d), subject: d.subject });
    }
  }
  return again;
}

/** Run one file of the pair; a failure comes back as a finding-to-be (file:line:column and message), not thrown. */
async function runFile(
  t: Trip,
  migration: Migration,
  work: StepWork,
  direction: Direction,
): Promise<MigrationFailed | undefined> {
  t.signal?.throwIfAborted();
  try {
    await runStep(t.driver, work);
    return undefined;
  } catch (error) {
    if (!(error instanceof StepFailure)) throw error;
    return toMigrationFailed(error, work, { direction, migration }, []);
  }
}

/** A file that failed on the scratch database, as a finding; on the embedded PostgreSQL, an extension it lacks only warns. */
function reportFailed(
  t: Trip,
  failed: MigrationFailed,
  what: string,
  severity: 'error' | 'warning',
  suffix: string,
): undefined {
  const { file, line, column } = failed.where;
  const at = { file, ...(line === undefined ? {} : { line }), ...(column === undefined ? {} : { column }) };
  const lacked = t.scratch.embedded ? lackedExtension(failed) : undefined;
  if (lacked) {
    t.add({ severity: 'warning', code: 'MIGRATION_FAILED', ...at, message: embeddedLacks(lacked, t.s.dialect) });
    return undefined;
  }
  const state = failed.info.sqlState ? ` (${failed.info.sqlState})` : '';
  t.add({ severity, code: 'MIGRATION_FAILED', ...at, message: `${what}: ${failed.message}${state}.${suffix}` });
  return undefined;
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
