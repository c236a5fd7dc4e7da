/**
 * `PHASE_ORDER` (issue #30): a rolling deploy runs the pending pre revisions first and the post
 * ones after the rollout, so a database may see "all pre, then all post" where the folder says
 * version order. On a fresh scratch database of each dialect, check builds that order and
 * compares the schema with the one version order built; a revision that fails in that order, or
 * a schema that differs, is an error naming the revisions involved.
 *
 * Folders whose post revisions all come after their pre ones build the same order twice: nothing
 * runs for them.
 *
 * @module
 */
import type { StepWork } from '../core/step.ts';
import { phaseOf, type Dialect, type Migration } from '../core/files.ts';
import { runStep, StepFailure, toMigrationFailed } from '../core/step.ts';
import type { Driver } from '../core/driver.ts';
import { introspect } from '../catalog/introspect.ts';
import type { Difference, Schema } from '../catalog/schema.ts';
import { compareSnapshots } from '../catalog/schema-compare.ts';
import { identifiers, type Finding } from './lint.ts';

/** One dialect folder as check's round trips left it (check.ts's DialectState, as far as read here). */
export interface PhaseInput {
  dialect: Dialect;
  migrations: readonly Migration[];
  works: ReadonlyMap<string, { up: StepWork; down: StepWork }>;
  /** The schema after each revision in version order. */
  snapshots: readonly Schema[];
}

/** Pre revisions first, then post ones, each in version order: what `head --phase=pre` then `head` runs. */
export function phaseOrder(migrations: readonly Migration[]): Migration[] {
  return [...migrations.filter((m) => phaseOf(m) === 'pre'), ...migrations.filter((m) => phaseOf(m) === 'post')];
}

/** The post revisions `m` runs ahead of in phase order (those older than it, when it is pre). */
function movedAhead(m: Migration, migrations: readonly Migration[]): Migration[] {
  if (phaseOf(m) === 'post') return [];
  return migrations.filter((p) => phaseOf(p) === 'post' && p.version < m.version);
}

/** The pre revisions that run before post revision `m` in phase order though they come after it in version order. */
function movedBehind(m: Migration, migrations: readonly Migration[]): Migration[] {
  return migrations.filter((p) => phaseOf(p) === 'pre' && p.version > m.version);
}

/**
 * Build the phase order on `driver` (a fresh scratch database) and report where it parts from
 * version order. Only for a dialect whose every revision round-tripped (`snapshots` complete).
 */
export async function checkPhaseOrder(
  s: PhaseInput,
  driver: Driver,
  add: (f: Finding) => void,
  signal?: AbortSignal,
): Promise<void> {
  const order = phaseOrder(s.migrations);
  await driver.ensureRecordTable();
  for (const m of order) {
    signal?.throwIfAborted();
    const work = (s.works.get(m.revision) as { up: StepWork }).up;
    try {
      await runStep(driver, work);
    } catch (error) {
      if (!(error instanceof StepFailure)) throw error;
      const failed = toMigrationFailed(error, work, { direction: 'up', migration: m }, []);
      const { file, line, column } = failed.where;
      const ahead = movedAhead(m, s.migrations);
      const state = failed.info.sqlState ? ` (${failed.info.sqlState})` : '';
      // A pre revision fails ahead of an older post one; or a post revision fails after newer pre ones.
      const why =
        phaseOf(m) === 'pre'
          ? `${m.stem} is pre and runs ahead of the post revision${ahead.length === 1 ? '' : 's'} ${names(ahead)}, which ${ahead.length === 1 ? 'comes' : 'come'} before it in version order. Mark ${m.stem} "-- migrate:phase post" too, or make ${names(ahead)} pre.`
          : `${m.stem} is post and runs after ${names(movedBehind(m, s.migrations))}, which ${movedBehind(m, s.migrations).length === 1 ? 'comes' : 'come'} after it in version order. Make ${m.stem} pre, or mark ${names(movedBehind(m, s.migrations))} "-- migrate:phase post" too.`;
      add({
        severity: 'error',
        code: 'PHASE_ORDER',
        file,
        ...(line === undefined ? {} : { line }),
        ...(column === undefined ? {} : { column }),
        message: `fails on ${s.dialect} when run in phase order (all pre revisions, then all post ones, as \`head --phase=pre\` then \`head\` runs them): ${failed.message}${state}. ${why}`,
      });
      return;
    }
  }
  const built = await introspect(driver);
  const expected = s.snapshots[s.snapshots.length - 1] as Schema;
  const diffs = compareSnapshots(expected, built);
  if (diffs.length === 0) return;
  for (const [post, pres] of disagreeing(s.migrations, diffs, s.dialect)) {
    add({
      severity: 'error',
      code: 'PHASE_ORDER',
      file: post.up.path,
      message: `in phase order (all pre, then all post, as \`head --phase=pre\` then \`head\` runs them) ${s.dialect} ends with another schema than in version order: ${diffs.map(describe).join('; ')}. ${post.stem} is post and runs after ${names(pres)}, which ${pres.length === 1 ? 'comes' : 'come'} after it in version order and touch${pres.length === 1 ? 'es' : ''} the same objects. Mark ${names(pres)} "-- migrate:phase post" too, or make ${post.stem} pre.`,
    });
  }
}

/**
 * Each post revision with the later pre revisions it disagrees with: those whose files name an
 * object of the differences; when none does, every later pre revision (all ran ahead of it).
 */
function disagreeing(
  migrations: readonly Migration[],
  diffs: readonly Difference[],
  dialect: Dialect,
): Array<[Migration, Migration[]]> {
  const subjects = new Set(diffs.flatMap((d) => d.subject.toLowerCase().split(/[\s.,()]+/)));
  const names = (m: Migration) => new Set(identifiers(m.up.text, dialect).map((i) => i.name.toLowerCase()));
  const touches = (m: Migration) => [...names(m)].some((n) => subjects.has(n));
  const out: Array<[Migration, Migration[]]> = [];
  for (const post of migrations.filter((m) => phaseOf(m) === 'post')) {
    const later = migrations.filter((m) => phaseOf(m) === 'pre' && m.version > post.version);
    if (later.length === 0) continue;
    const related = later.filter(touches);
    if (related.length > 0) out.push([post, related]);
  }
  if (out.length > 0) return out;
  return migrations
    .filter((m) => phaseOf(m) === 'post')
    .map((post): [Migration, Migration[]] => [
      post,
      migrations.filter((m) => phaseOf(m) === 'pre' && m.version > post.version),
    ])
    .filter(([, later]) => later.length > 0);
}

function describe(d: Difference): string {
  if (d.kind === 'onlyLeft') return `${d.object} exists in version order only`;
  if (d.kind === 'onlyRight') return `${d.object} exists in phase order only`;
  return `${d.at}: ${d.left} in version order, ${d.right} in phase order`;
}

function names(ms: readonly Migration[]): string {
  return ms.map((m) => m.stem).join(', ');
}

/** True when phase order differs from version order: some post revision precedes a pre one. */
export function phasesReorder(migrations: readonly Migration[]): boolean {
  return phaseOrder(migrations).some((m, i) => m !== migrations[i]);
}
