/**
 * Waiting for table locks without stalling everyone else: each attempt of a step waits a bounded
 * time for its locks, a step that timed out on one is tried again after a jittered backoff within
 * a total budget, and while a step waits or runs long a second connection looks at what it waits
 * on, so the caller can be told who holds it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type Driver, type Limits, type Observation, StatementFailed } from './driver.ts';
import { MigrateError } from './errors.ts';
import { type StatementKind, statementKind } from './split.ts';

/** How long a step may wait for its locks, and what the caller is told meanwhile. */
export interface LockPolicy {
  limits: Limits;
  /** Total time a step may spend retrying after lock timeouts, ms. */
  retryForMs: number;
  /** Show the blockers' query text (it may hold secrets). */
  showBlockerQuery?: boolean;
  onEvent?: (event: LockEvent) => void;
}

export type LockEvent =
  /** An attempt timed out on a lock and was rolled back; the next starts after `retryInMs`. */
  | ({ type: 'lock-wait'; revision: string; file: string; attempt: number; retryInMs: number } & Observation)
  /** A step has run a while (every 5 s): what it is doing. */
  | ({ type: 'progress'; revision: string; file: string; elapsedMs: number } & Partial<Observation>);

export const DEFAULT_LIMITS: Limits = { lockTimeoutMs: 1000 };
export const DEFAULT_RETRY_FOR_MS = 60_000;
const PROGRESS_EVERY_MS = 5000;

/** The policy from a runner's settings (all in ms; see RunnerConfig). */
export function lockPolicy(
  o: { tableLockTimeoutMs?: number; statementTimeoutMs?: number; retryForMs?: number; showBlockerQuery?: boolean },
  onEvent: (e: LockEvent) => void,
): LockPolicy {
  const limits: Limits = { lockTimeoutMs: o.tableLockTimeoutMs ?? DEFAULT_LIMITS.lockTimeoutMs };
  if (o.statementTimeoutMs !== undefined) limits.statementTimeoutMs = o.statementTimeoutMs;
  return { limits, retryForMs: o.retryForMs ?? DEFAULT_RETRY_FOR_MS, showBlockerQuery: o.showBlockerQuery, onEvent };
}

/** Full jitter (a random wait between 0 and the exponential step) so replicas that collided do not retry in step. */
export function backoff(attempt: number, random = Math.random): number {
  const cap = Math.min(10_000, 200 * 2 ** Math.min(attempt - 1, 10));
  return Math.round(random() * cap);
}

/** The step and its policy, as `withRetries` needs them. */
export interface Attempting {
  driver: Driver;
  policy: LockPolicy;
  revision: string;
  file: string;
}

/**
 * Run `attempt` until it succeeds, fails otherwise, or has spent the budget on lock timeouts
 * (then TABLE_LOCK_TIMEOUT, exit 3). `retryable` says whether a failure did nothing and may run
 * again; by default a rolled-back transaction that stopped on a lock.
 */
export async function withRetries<T>(
  a: Attempting,
  attempt: () => Promise<T>,
  retryable: (error: unknown) => boolean | Promise<boolean> = (e) =>
    e instanceof StatementFailed && e.rolledBack && a.driver.lockBusy(e.cause),
): Promise<T> {
  const started = Date.now();
  // 0: wait as long as it takes, so there is no budget to run out of either.
  const budget = a.policy.limits.lockTimeoutMs === 0 ? Infinity : a.policy.retryForMs;
  for (let n = 1; ; n++) {
    let watch: ReturnType<typeof watcher> | undefined;
    try {
      const running = attempt();
      // An attempt already over (SQLite runs synchronously) ends before any timer could fire: none is set.
      if (!(await settledAtOnce(running))) watch = watcher(a, started);
      return await running;
    } catch (error) {
      if (!(await retryable(error))) throw error;
      // A driver that waits synchronously (SQLite) gave no timer a chance: ask now.
      const seen = (await watch?.latest()) ??
        (await a.driver.observe?.(a.policy.showBlockerQuery ?? false)) ?? {
          blockers: [],
        };
      // Asleep between attempts the step runs nothing and waits on nobody: no progress line may say
      // `running` then (issue #26); the lock-wait event below says when the next attempt starts.
      watch?.stop();
      const delay = backoff(n);
      if (Date.now() - started + delay >= budget) throw timedOut(a, seen, Date.now() - started, error);
      a.policy.onEvent?.({
        type: 'lock-wait',
        revision: a.revision,
        file: a.file,
        attempt: n,
        retryInMs: delay,
        ...seen,
      });
      await sleep(delay);
    } finally {
      watch?.stop();
    }
  }
}

/** Whether `p` has settled by the time the jobs queued so far have run: then it was over before it was awaited. */
async function settledAtOnce(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  const done = () => {
    settled = true;
  };
  p.then(done, done);
  await undefined;
  return settled;
}

/**
 * One timer around one attempt, due at the earlier of two moments: a look at what it waits on
 * shortly before its lock timeout would end it (so a retry can name the blocker), and progress
 * every 5 s once the step runs long. A step that finishes quickly pays for setting and clearing
 * that one timer; nothing is opened or asked.
 */
function watcher(a: Attempting, stepStarted: number) {
  const { driver, policy } = a;
  let last: Promise<Observation | undefined> | undefined;
  let stopped = false;
  const look = () => {
    last = driver.observe?.(policy.showBlockerQuery ?? false) ?? Promise.resolve(undefined);
    return last;
  };
  const lockMs = policy.limits.lockTimeoutMs;
  let early = lockMs > 0 ? Date.now() + Math.max(50, lockMs * 0.6) : Infinity;
  // Progress on every multiple of 5 s of the step's time, across its attempts.
  const nextProgress = (now: number) => now + PROGRESS_EVERY_MS - ((now - stepStarted) % PROGRESS_EVERY_MS);
  let progress = nextProgress(Date.now());
  let timer: NodeJS.Timeout | undefined;
  const fire = () => {
    const now = Date.now();
    if (now >= early) {
      early = Infinity;
      if (now < progress) look(); // else the progress look below serves both
    }
    if (now >= progress) {
      const elapsedMs = now - stepStarted;
      // A caller's handler that throws from a timer must not become an unhandled rejection.
      void look()
        .then((seen) =>
          stopped
            ? undefined
            : policy.onEvent?.({ type: 'progress', revision: a.revision, file: a.file, elapsedMs, ...seen }),
        )
        .catch(() => {});
      progress = nextProgress(now);
    }
    timer = setTimeout(fire, Math.max(0, Math.min(early, progress) - now));
  };
  timer = setTimeout(fire, Math.min(early, progress) - Date.now());
  return {
    latest: () => last ?? Promise.resolve(undefined),
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** One line naming who holds what a step waits on: the relation and each blocking session. */
export function describeWait(seen: Partial<Observation>): string {
  if (seen.transactionWait) {
    const who = sessions(seen, false);
    const table = seen.relation ? ` on ${seen.relation}` : '';
    return `older transactions to end${table}${who ? `: ${who}` : ''}`;
  }
  const on = seen.relation ? `a lock on ${seen.relation}${seen.wanted ? ` (${seen.wanted})` : ''}` : 'a lock';
  if (seen.holder) return `${on}: ${seen.holder}`;
  const who = sessions(seen, true);
  return who ? `${on} held by ${who}` : on;
}

/**
 * What a step that has run a while is doing, for its progress line: an index build's phase (with
 * its blocks in the phases that count them, and the sessions it waits for in those that wait),
 * else what it waits on, else `running`.
 */
export function describeProgress(seen: Partial<Observation>): string {
  const { index } = seen;
  if (!index)
    return seen.relation || seen.holder || (seen.blockers?.length ?? 0) > 0
      ? `waiting for ${describeWait(seen)}`
      : 'running';
  // The view keeps the last phase's counts through the phases that count nothing.
  const blocks =
    /scanning/.test(index.phase) && index.blocksTotal > 0 ? `, ${index.blocksDone}/${index.blocksTotal} blocks` : '';
  // A wait for old snapshots or writers is on each session's transaction, not on a table lock it holds.
  const who = /^waiting/.test(index.phase) ? sessions(seen, false) : '';
  return `index build: ${index.phase}${blocks}${who ? `, on ${who}` : ''}`;
}

/** Each blocking session: pid, application_name, user, state, its transaction's age, and (`mode`) its lock. */
function sessions(seen: Partial<Observation>, mode: boolean): string {
  return (seen.blockers ?? [])
    .map((b) => {
      const age = b.transactionAgeMs === null ? '' : `, transaction open ${(b.transactionAgeMs / 1000).toFixed(1)} s`;
      const holds = mode ? `, holds ${b.mode}` : '';
      const query = b.query === undefined ? '' : `, query: ${JSON.stringify(b.query)}`;
      return `pid ${b.pid} (application_name "${b.applicationName}", user ${b.user}, ${b.state}${age}${holds}${query})`;
    })
    .join('; ');
}

function timedOut(a: Attempting, seen: Observation, spentMs: number, cause: unknown): MigrateError {
  const error = new MigrateError(
    'TABLE_LOCK_TIMEOUT',
    `gave up on ${a.revision} (${a.file}) after ${Math.round(spentMs / 1000)} s of retries waiting for ${describeWait(seen)}. What timed out took no effect (a transactional file: nothing of it), and earlier steps stay applied. End the blocking transaction, or raise --retry-for / --table-lock-timeout, then run again.`,
    { cause },
  );
  return Object.assign(error, { observation: seen });
}

/**
 * An index built, rebuilt or dropped CONCURRENTLY takes SHARE UPDATE EXCLUSIVE, which blocks no
 * read or write: the bot's queries never queue behind it, so a lock timeout would protect nobody.
 * It would only cut short the build's waits for transactions older than itself, leaving an
 * INVALID index. Such a statement waits as long as it takes (the progress lines say on whom); a
 * statement timeout still applies.
 */
export function limitsFor(statement: string, limits: Limits): Limits {
  if (limits.lockTimeoutMs === 0) return limits;
  const kind = statementKind(statement, 'postgres');
  return kind !== undefined && INDEX_WORK.has(kind) ? { ...limits, lockTimeoutMs: 0 } : limits;
}

const INDEX_WORK: ReadonlySet<StatementKind> = new Set([
  'CREATE INDEX CONCURRENTLY',
  'DROP INDEX CONCURRENTLY',
  'REINDEX CONCURRENTLY',
]);

/**
 * A statement that can commit part of its work before it fails: a `DO` block or a `CALL`, which
 * may COMMIT inside when run outside a transaction. A lock timeout there proves nothing about
 * what it did, so it is never run again by the runner (#24).
 */
export function mayCommitInside(statement: string): boolean {
  return /^(?:\s|--[^\n]*\n|\/\*[\s\S]*?\*\/)*(?:do|call)\b/i.test(statement);
}
