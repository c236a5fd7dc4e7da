/**
 * The catalog of a live PostgreSQL database, read and nothing else (#24): a READ ONLY
 * transaction, a bounded wait for locks, and an end at once when the caller aborts.
 *
 * @module
 */
import { connectUrl } from '../core/drivers/postgres-client.ts';
import type { ServerRole } from '../core/hosts.ts';
import { MigrateError } from '../core/errors.ts';
import type { Catalog } from './model.ts';
import { DISPLAY, readPostgresCatalog } from './postgres.ts';

/**
 * The catalog of the database `url` names, in a READ ONLY transaction: a role that may only
 * read suffices, and nothing is written. A lock another session holds on a live table (the
 * server's printers lock what a view reads) is waited for {@link LIVE_LOCK_TIMEOUT_MS} at most,
 * then TABLE_LOCK_TIMEOUT; `signal` ends the read at once, its connection closed (#24).
 */
export async function readPostgresUrl(
  url: string,
  display: string,
  record: { schema?: string; table: string },
  signal?: AbortSignal,
  /** Told which server was read (the host chosen by target_session_attrs), and whether it is a hot standby. */
  onServer?: (role: ServerRole) => void,
): Promise<Catalog> {
  signal?.throwIfAborted();
  // The host chosen by libpq's rules, the role learnt in the same first query (core/hosts.ts).
  const { sql, role } = await connectUrl(url, display, 'sql-migrate (catalog)');
  onServer?.(role);
  const stop = () => void sql.end({ timeout: 0 }).catch(() => {});
  signal?.addEventListener('abort', stop, { once: true });
  try {
    return await sql.begin('READ ONLY', async (tx) => {
      const [row] = await tx.unsafe(
        // No JIT: the reading is one statement whose estimate can pass jit_above_cost, where a
        // server would compile it for a second to run it in milliseconds (postgres-read.ts).
        `SELECT current_schema() AS s, set_config('lock_timeout', '${LIVE_LOCK_TIMEOUT_MS}ms', true) AS l, set_config('jit', 'off', true) AS j`,
      );
      const home = typeof row?.s === 'string' ? row.s : 'public';
      // The server's printers qualify a name unless the search_path finds it: one schema on
      // the path, whatever the role's settings, makes every run print the same.
      await tx.unsafe(`SELECT set_config('search_path', quote_ident($1), true)`, [home]);
      // A constant in a default or a view prints through the reader's own settings (a
      // timestamptz in its TimeZone, an interval in its IntervalStyle): the database's or the
      // role's settings must not change the file.
      await tx.unsafe(
        `SELECT set_config(name, setting, true) FROM (VALUES ${Object.keys(DISPLAY)
          .map((_, i) => `($${2 * i + 1}, $${2 * i + 2})`)
          .join(', ')}) AS v(name, setting)`,
        Object.entries(DISPLAY).flat(),
      );
      return readPostgresCatalog((text, params) => tx.unsafe(text, (params ?? []) as never[]) as never, {
        schema: record.schema ?? home,
        table: record.table,
      });
    });
  } catch (error) {
    signal?.throwIfAborted();
    const code = String((error as { code?: unknown }).code ?? '');
    if (code === '55P03')
      throw new MigrateError(
        'TABLE_LOCK_TIMEOUT',
        `reading the catalog of ${display} waited ${LIVE_LOCK_TIMEOUT_MS / 1000} s for a lock another session holds on one of its tables (an ALTER in progress?); nothing was changed. Run again once it is released.`,
        { cause: error },
      );
    // Not a PostgreSQL error (a refused or lost connection), or one about connecting at all.
    if (/^(08|28|3D)/.test(code) || !/^[0-9A-Z]{5}$/.test(code)) {
      throw new MigrateError('CONNECTION_FAILED', `cannot read ${display}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    throw error;
  } finally {
    signal?.removeEventListener('abort', stop);
    await sql.end({ timeout: 5 });
  }
}

/** How long a live catalog read waits for a lock held by another session. */
export const LIVE_LOCK_TIMEOUT_MS = 3000;
