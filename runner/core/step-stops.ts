/**
 * What a step leaves when it stops part-way, and when it may run again (#24): a statement is
 * retried only when that provably did nothing, and a file that ended the runner's transaction
 * itself is recorded `failed`, never `applied` in autocommit.
 */
import type { Driver, TransactionEnded } from './driver.ts';
import type { Direction } from './files.ts';
import { mayCommitInside } from './locks.ts';
import { concurrentIndexName } from './split.ts';
import { failedNote } from './record.ts';

/** What of a step's work these need (step.ts's StepWork, named here without importing it). */
interface StepWork {
  file: string;
  statements: ReadonlyArray<{ sql: string }>;
  record:
    | { kind: 'insert'; revision: string; description: string; checksum: string }
    | { kind: 'delete'; revision: string };
}

/**
 * A statement of a no-transaction file that stopped on a lock is run again only when that
 * provably did nothing of the file (#24): it is the file's first statement, not a `DO` block or
 * `CALL` (which can commit inside before they wait), and not a `CREATE INDEX CONCURRENTLY` that
 * got as far as leaving an INVALID index behind. Otherwise the run stops, the record says
 * `failed` with the statements counted, and the message says what may have committed.
 */
export async function retryStatement(driver: Driver, work: StepWork, index: number, error: unknown): Promise<boolean> {
  if (!driver.lockBusy(error) || index > 0) return false;
  const statement = work.statements[index]?.sql ?? '';
  if (mayCommitInside(statement)) return false;
  const name = concurrentIndexName(statement);
  return name === undefined || !(await driver.invalidIndex?.(name));
}

/** What a lock timeout that was not retried leaves behind, for the failed row and the message. */
export function lockStopNote(driver: Driver, work: StepWork, ran: number, error: unknown): string {
  if (!driver.lockBusy(error)) return '';
  const statement = work.statements[ran]?.sql ?? '';
  const inside = mayCommitInside(statement)
    ? ' It is a DO block or CALL, which can commit inside: what it committed before it waited stays, and it was not run again.'
    : ' It did nothing itself, but was not run again: the file had run part-way.';
  return ` (it waited for a lock past the lock timeout).${inside} ${ran} statement(s) before it took effect; none after it ran. Check the database, then run \`stamp\`.`;
}

/** The way a record change moves: an insert applies (up), a delete rolls back (down). */
export function directionOf(r: { kind: 'insert' | 'delete' }): Direction {
  return r.kind === 'insert' ? 'up' : 'down';
}

/**
 * The file ended the transaction the runner opened for it (a COMMIT or ROLLBACK its reader did
 * not see as one), so what followed ran in autocommit and the record change was not made. The
 * record says `failed` (written in a transaction of its own, never in the file's autocommit),
 * and the message (returned) says what ran: the operator repairs and runs `stamp`.
 */
export async function recordEndedInside(
  driver: Driver,
  work: StepWork,
  table: string,
  ended: TransactionEnded,
): Promise<string> {
  const r = work.record;
  const direction = directionOf(r);
  const failedToo =
    ended.statementError === undefined ? '' : ` It then failed: ${(ended.statementError as Error).message}.`;
  const message = `${work.file} ended the runner's transaction itself (a COMMIT or ROLLBACK inside it that the runner did not read as one): what it ran before that committed or rolled back there, and every statement after it ran on its own, in autocommit, and stays.${failedToo} The record says failed. Check the database, then run \`stamp\`.`;
  const note = failedNote(direction, message);
  await driver.transaction([
    r.kind === 'insert'
      ? driver.sql.insert(table, { ...r, status: 'failed', durationMs: 0, error: note })
      : driver.sql.progress(table, r.revision, 0, note),
  ]);
  return message;
}
