/**
 * The run's session lock on a direct connection: the fast path that makes a second runner wait
 * for the whole run and say who holds it (issue #26). Nothing depends on it for correctness:
 * each step takes its own exclusion in its own transaction (catalog.expect, issue #25).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describeHolder, type LockHolder, type LockWaitEvent, lockWaiter } from '../lock-wait.ts';
import { MigrateError } from '../errors.ts';
import postgres from 'postgres';
import { connect } from '../connect.ts';
import type { PostgresServer } from '../config.ts';
import { toLockHolder, transactionMode } from './postgres-client.ts';
import type { Run } from './postgres-record.ts';
import { catalog } from './postgres-sql.ts';

export interface SessionLockPoll {
  /** The record table's name as given, and the database, for messages. */
  label: string;
  display: string;
  timeoutMs: number | undefined;
  onWait: ((event: LockWaitEvent) => void) | undefined;
  /** One `pg_try_advisory_lock` (catalog.tryLock): its row. `first`: the first try of the run. */
  attempt: (first: boolean) => Promise<Record<string, unknown> | undefined>;
  /** The server process ping saw, or undefined when it could not tell. */
  pid: number | undefined;
  holder: () => Promise<LockHolder | undefined>;
}

/**
 * Poll for the lock with `pg_try_advisory_lock`, so a waiter holds no transaction and no
 * snapshot between polls (a blocking `pg_advisory_lock` would hold one, and stall the holder's
 * CREATE INDEX CONCURRENTLY). True once taken; false when another server session than ping's
 * answered (a pooler the startup key did not show: nothing was locked, since the lock is taken
 * only on ping's session). LOCK_TIMEOUT, naming the holder, once `timeoutMs` has passed.
 */
export async function pollSessionLock(p: SessionLockPoll): Promise<boolean> {
  const deadline = p.timeoutMs === undefined ? Infinity : Date.now() + p.timeoutMs;
  const waiter = lockWaiter(p.display, p.timeoutMs, p.holder, p.onWait);
  for (let first = true; ; first = false) {
    const row = await p.attempt(first);
    if (p.pid !== undefined && row?.pid !== p.pid) return false;
    if (row?.ok === true) return true;
    if (Date.now() >= deadline) {
      throw new MigrateError(
        'LOCK_TIMEOUT',
        `${describeHolder(await waiter.last())} holds the migration lock for ${p.label} on ${p.display} (waited ${Math.round((p.timeoutMs ?? 0) / 1000)} s; see --lock-timeout). Wait for it to finish, or end that session if it is stuck, then run again.`,
      );
    }
    await waiter.tick();
    await sleep(50 + Math.random() * 50);
  }
}

/** The session that holds the migration lock's advisory lock `key` in this database, from pg_locks. */
export async function lockHolder(run: Run, key: string): Promise<LockHolder | undefined> {
  return toLockHolder((await run((sql) => sql.unsafe(catalog.lockHolder(key))))[0]);
}

/**
 * Ask the backend to abort a statement whose client is gone (kill -9, OOM), so it neither holds
 * the lock nor commits a no-transaction file unrecorded (client_connection_check_interval,
 * PostgreSQL 14+); servers without it, or refusing it (PGlite), carry on without.
 */
export async function watchClient(run: Run): Promise<void> {
  await run((sql) => sql.unsafe(catalog.watchClient)).catch((error: unknown) => {
    if (!(error instanceof postgres.PostgresError)) throw error;
  });
}

/** Behind a pooler: what kind of pool, as far as a probe can tell (advice only: transactionMode). */
export async function poolMode(
  target: PostgresServer,
  deadline: number | undefined,
  run: Run,
  pid: number | undefined,
): Promise<'transaction' | 'session'> {
  const probe = connect(target, { name: 'sql-migrate (pooler probe)', deadline });
  const ours = async (query: string) => (await run((sql) => sql.unsafe(query)))[0];
  return (await transactionMode(probe, ours, pid)) ? 'transaction' : 'session';
}
