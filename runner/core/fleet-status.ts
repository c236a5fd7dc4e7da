/**
 * `fleet status`: where every database of a fleet stands, read-only (each through status(), as
 * `current` reads one), counted per revision.
 */
import { hideSecrets, parseUrl } from './config.ts';
import { MigrateError } from './errors.ts';
import { versionOf } from './files.ts';
import { DEFAULT_PARALLEL, type FleetConfig, type FleetError, pool } from './fleet.ts';
import { status } from './migrator.ts';

export interface FleetStanding {
  /** The database URL with its password hidden. */
  url: string;
  /** Its last applied revision, `base`, or null when it could not be read. */
  current: string | null;
  /** Revisions of the folder it has not applied. */
  pending: number;
  /** Why `current` is null. */
  error?: FleetError;
  /** CONNECTION_FAILED: the database could not be reached (else another refusal: a foreign record table, …). */
  unreachable?: true;
}

export interface FleetStatusResult {
  /** How many databases stand at each revision (`base` not among them). */
  revisions: Record<string, number>;
  /** How many have no revision applied. */
  base: number;
  /** How many have every revision of the folder applied. */
  atHead: number;
  unreachable: number;
  /** Reached, but their record could not be read (another tool's table, a refused login, …). */
  unreadable: number;
  total: number;
  /** One per database, in the order they were listed. */
  targets: FleetStanding[];
}

/** Read every database's record, at most `parallel` at once; changes nothing, creates no file or table. */
export async function fleetStatus(
  config: FleetConfig,
  options: { parallel?: number; signal?: AbortSignal; onEvent?: (s: FleetStanding, index: number) => void } = {},
): Promise<FleetStatusResult> {
  if (config.urls.length === 0) throw new MigrateError('BAD_OPTION', 'the fleet lists no database.');
  const connections = config.urls.map((u) => parseUrl(u));
  const parallel = options.parallel ?? DEFAULT_PARALLEL;
  if (!Number.isSafeInteger(parallel) || parallel < 1)
    throw new MigrateError('BAD_OPTION', `--parallel takes a whole number (at least 1), not "${parallel}".`);
  const { urls, ...single } = config;
  const targets: FleetStanding[] = [];
  await pool(
    urls.length,
    { parallel, canary: 0 },
    async (index) => {
      const c = connections[index] as (typeof connections)[number];
      try {
        const s = await status({ ...single, url: urls[index] as string });
        const pending = s.revisions.filter((r) => r.state === 'pending').length;
        targets[index] = { url: c.display, current: s.current?.revision ?? 'base', pending };
      } catch (error) {
        const secrets = c.dialect === 'postgres' ? c.secrets : [];
        const code = error instanceof MigrateError ? error.code : 'UNEXPECTED';
        const message = hideSecrets(error instanceof Error ? error.message : String(error), secrets);
        targets[index] = {
          url: c.display,
          current: null,
          pending: 0,
          error: { code, message },
          ...(code === 'CONNECTION_FAILED' ? { unreachable: true as const } : {}),
        };
      }
      options.onEvent?.(targets[index] as FleetStanding, index);
      return true;
    },
    () => options.signal?.aborted === true,
  );
  const revisions: Record<string, number> = {};
  let base = 0;
  for (const t of targets) {
    if (t === undefined || t.current === null) continue;
    if (t.current === 'base') base++;
    else revisions[t.current] = (revisions[t.current] ?? 0) + 1;
  }
  const read = targets.filter((t) => t !== undefined && t.current !== null);
  return {
    revisions: Object.fromEntries(Object.entries(revisions).sort(([a], [b]) => (versionOf(a) < versionOf(b) ? -1 : 1))),
    base,
    atHead: read.filter((t) => t.pending === 0).length,
    unreachable: targets.filter((t) => t?.unreachable).length,
    unreadable: targets.filter((t) => t !== undefined && t.current === null && !t.unreachable).length,
    total: urls.length,
    targets: targets.filter((t) => t !== undefined),
  };
}
