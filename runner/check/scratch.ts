/** check's scratch databases opened as drivers: its round trips, lock measurements and data pass run on them. */
import { parseUrl, type Connection } from '../core/config.ts';
import type { Driver } from '../core/driver.ts';
import type { Dialect } from '../core/files.ts';
import { openDriver } from '../core/session.ts';
import { type Scratch, withScratchPlace } from '../scratch/scratch.ts';

/**
 * A fresh database of `dialect` for `fn`, opened as a driver (what check's round trips use):
 * never a scratch schema, since check also measures locks and fills tables from a second session.
 */
export async function withScratch<T>(
  dialect: Dialect,
  connection: Connection,
  table: string,
  fn: (driver: Driver, scratch: Scratch) => Promise<T>,
): Promise<T> {
  return withScratchPlace(dialect, connection, async (place) => {
    const opened = { ...parseUrl(place.url), display: place.display } as Connection;
    const name = dialect === 'sqlite' ? (table.split('.').pop() as string) : table;
    const driver = await openDriver(opened, name, true);
    const source = await driver.schemaSource();
    if ('db' in source) {
      // A scratch file is thrown away: no fsync per commit, no journal file made and removed per
      // step. Rollbacks behave the same; only a crash could leave it damaged (bench/check-scale.ts).
      source.db.pragma('synchronous = OFF');
      source.db.pragma('journal_mode = MEMORY');
    } else {
      // The same for a scratch database: a commit does not wait for its WAL to reach the disk.
      // And check reads the catalog after every step: a server compiles a catalog query whose
      // estimate passes jit_above_cost, about 0.5 s each time, to run it in a few milliseconds.
      // Only how statements are executed changes, not what they do (bench/check-scale.ts).
      await source.query('SET synchronous_commit = off');
      await source.query('SET jit = off');
    }
    try {
      return await fn(driver, {
        label: place.label,
        embedded: place.embedded,
        ...(place.server ? { serverUrl: place.url } : {}),
      });
    } finally {
      await driver.close();
    }
  });
}
