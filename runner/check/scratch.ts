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
