/**
 * Waiting for the migration lock out loud: a runner that finds another one holding the lock says
 * so within a few seconds, naming the holder, and again every 5 s (issue #26: a second runner
 * used to wait in silence, by default forever). The drivers find the holder; this module says
 * when to ask and how to name it.
 */

/** The runner that holds the migration lock, as far as the database can tell. */
export interface LockHolder {
  pid?: number;
  /** PostgreSQL's application_name of the holding session. */
  applicationName?: string;
  user?: string;
  /** The machine, where the database cannot tell (a SQLite file on a shared disk). */
  host?: string;
  /** Since when it holds the lock (ISO 8601, UTC), or since its session began where only that is known. */
  since?: string;
  /** Whether `since` is the session's start rather than the moment it took the lock. */
  sinceSession?: boolean;
}

/** What a runner waiting for the migration lock is told: first within 2 s, then every 5 s. */
export interface LockWaitEvent {
  /** The database, password hidden. */
  database: string;
  elapsedMs: number;
  /** `--lock-timeout`, when one is set. */
  limitMs?: number;
  /** Who holds it; undefined when it could not be found (it may have just let go). */
  holder?: LockHolder;
}

export const FIRST_LOCK_NOTE_MS = 2000;
export const LOCK_NOTE_EVERY_MS = 5000;

/** `pid 4242 (application_name "sql-migrate", user bot, since 05:20:11 UTC, 12 s ago)`. */
export function describeHolder(holder: LockHolder | undefined, now = Date.now()): string {
  if (holder === undefined) return 'another runner (it could not be named: it may have just let go)';
  const parts: string[] = [];
  if (holder.applicationName !== undefined) parts.push(`application_name "${holder.applicationName}"`);
  if (holder.user !== undefined) parts.push(`user ${holder.user}`);
  if (holder.host !== undefined) parts.push(`host ${holder.host}`);
  if (holder.since !== undefined) {
    const at = new Date(holder.since);
    const ago = Math.max(0, Math.round((now - at.getTime()) / 1000));
    const time = at
      .toISOString()
      .replace('T', ' ')
      .replace(/\.\d+Z$/, ' UTC');
    parts.push(`${holder.sinceSession ? 'session since' : 'since'} ${time}, ${ago} s ago`);
  }
  const who = holder.pid === undefined ? 'another runner' : `pid ${holder.pid}`;
  return parts.length > 0 ? `${who} (${parts.join(', ')})` : who;
}

/**
 * Call `tick()` on every poll of a lock that is busy: it asks `find` for the holder and calls
 * `onWait` at {@link FIRST_LOCK_NOTE_MS}, then every {@link LOCK_NOTE_EVERY_MS}. `last()` is the
 * holder now (else the one seen last), for LOCK_TIMEOUT's message.
 */
export function lockWaiter(
  database: string,
  limitMs: number | undefined,
  find: () => Promise<LockHolder | undefined>,
  onWait: ((event: LockWaitEvent) => void) | undefined,
) {
  const started = Date.now();
  let due = started + FIRST_LOCK_NOTE_MS;
  let seen: LockHolder | undefined;
  const ask = async () => {
    seen = await find().catch(() => undefined);
    return seen;
  };
  return {
    async tick(): Promise<void> {
      const now = Date.now();
      if (now < due) return;
      due = now + LOCK_NOTE_EVERY_MS - ((now - started) % LOCK_NOTE_EVERY_MS);
      const holder = await ask();
      const event: LockWaitEvent = { database, elapsedMs: Date.now() - started, holder };
      if (limitMs !== undefined) event.limitMs = limitMs;
      onWait?.(event);
    },
    async last(): Promise<LockHolder | undefined> {
      const before = seen;
      return (await ask()) ?? before;
    },
  };
}
