/**
 * `stamp`: the record rewritten to list exactly the local revisions up to a target, running no
 * migration SQL; it says what it forgot, recorded and accepted (issue #26).
 */
import { DEFAULT_TABLE } from './config.ts';
import type { Migration } from './files.ts';
import { appliedAfter, parseTarget, plan, type Target } from './plan.ts';
import { holdsStatement } from './split.ts';
import { writeRecord } from './step.ts';
import { withSession, type RunnerConfig } from './session.ts';
import { confirmed, readRecordChecked, refuseMissingRights, type MigrateOptions, type Revision } from './migrator.ts';

export interface StampResult {
  current: Revision | null;
  /** Revisions now recorded, in order. */
  recorded: string[];
  /** Revisions taken off the record (no SQL ran: what they built stays), newest first. */
  forgotten: Revision[];
  /** Revisions recorded as applied without running them. */
  added: Revision[];
  /** Revisions kept whose record changed: an edited file's checksum accepted, or a failed row resolved. */
  rerecorded: Revision[];
}

/**
 * Record the database as being at `target` without running any SQL: adopts a database built by
 * Alembic or `create_all`, accepts reviewed edits (re-records checksums), and resolves a
 * `failed` row. The record afterwards lists exactly the local revisions up to the target.
 */
export async function stamp(
  config: RunnerConfig,
  target: string | Target,
  options: Pick<MigrateOptions, 'confirm'> = {},
): Promise<StampResult> {
  const parsed = typeof target === 'string' ? parseTarget(target) : target;
  const table = config.table ?? DEFAULT_TABLE;
  return withSession(config, true, async ({ connection, migrations, driver }) =>
    driver.withLock(
      async () => {
        const rows = await readRecordChecked(driver, table, true);
        // Stamping is the way out of a failed, edited or missing revision, so those are not refused.
        // A failed row counts as recorded here: `stamp -1` forgets it, `stamp <its revision>` keeps it.
        const recorded = rows.map((r) => ({ ...r, status: 'applied' as const }));
        const { steps } = plan(migrations, recorded, parsed, { enforce: false });
        const keep = new Map(rows.map((r) => [r.revision, r]));
        const downs = steps.filter((s) => s.direction === 'down').map((s) => s.migration);
        // A failed row is exempt: its way out (FAILED_MIGRATION) has the operator repair by hand first.
        const risky = downs.filter(
          (m) => keep.get(m.revision)?.status === 'applied' && holdsStatement(m.up.text, driver.capabilities.folder),
        );
        await confirmed(steps, options, 'forgetting', risky);
        const after = appliedAfter(migrations, recorded, steps);
        const now = new Date().toISOString();
        await refuseMissingRights(driver, connection.display);
        await driver.ensureRecordTable();
        await writeRecord(
          driver,
          after.map((m) => {
            const old = keep.get(m.revision);
            return {
              revision: m.revision,
              description: m.description,
              checksum: m.up.checksum,
              appliedAt: old?.appliedAt ?? now,
              durationMs: old?.status === 'applied' ? old.durationMs : 0,
            };
          }),
        );
        const last = after[after.length - 1];
        const named = (m: Migration): Revision => ({ revision: m.revision, name: m.description });
        return {
          current: last ? named(last) : null,
          recorded: after.map((m) => m.revision),
          forgotten: downs.map(named),
          added: after.filter((m) => !keep.has(m.revision)).map(named),
          rerecorded: after
            .filter((m) => {
              const old = keep.get(m.revision);
              return old !== undefined && (old.status !== 'applied' || old.checksum !== m.up.checksum);
            })
            .map(named),
        };
      },
      config.lockTimeoutMs,
      config.onLockWait,
    ),
  );
}
