/**
 * Who holds a SQLite database's migration lock. The lock is an exclusive transaction on a side
 * file, which names nobody, so the holder writes a note next to it (`<db>.migrate-lock.holder`:
 * its pid, host and since when) once it has the lock; a waiter reads it. A note left by a runner
 * that died is overwritten by the next holder before anyone could wait on it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { LockHolder } from '../lock-wait.ts';

export function holderNotePath(lockPath: string): string {
  return `${lockPath}.holder`;
}

/** Written under the lock; a note that cannot be written only costs the waiters a name. */
export function writeHolderNote(lockPath: string): void {
  const note: LockHolder = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  try {
    writeFileSync(holderNotePath(lockPath), `${JSON.stringify(note)}\n`);
  } catch {
    // A read-only directory, say: the lock itself still holds.
  }
}

export function readHolderNote(lockPath: string): LockHolder | undefined {
  try {
    const note = JSON.parse(readFileSync(holderNotePath(lockPath), 'utf8')) as Record<string, unknown>;
    const holder: LockHolder = {};
    if (typeof note.pid === 'number') holder.pid = note.pid;
    if (typeof note.host === 'string') holder.host = note.host;
    if (typeof note.since === 'string') holder.since = note.since;
    return holder;
  } catch {
    return undefined;
  }
}
