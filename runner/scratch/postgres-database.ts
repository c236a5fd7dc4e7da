/**
 * The scratch databases `check`, `schema` and `drift` migrate on a PostgreSQL server:
 * `migrate_check_<created, epoch seconds hex>_<random>`, created from `template0` and dropped
 * afterwards. A run killed before it could drop its own leaves one behind; the next run drops
 * this role's that are over an hour old and that nobody is connected to.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type postgres from 'postgres';
import { connect } from '../core/connect.ts';
import { hideSecrets } from '../core/config.ts';
import { MigrateError } from '../core/errors.ts';

/** How old a scratch database must be before a later run takes it for a leftover: far longer than any check. */
const LEFTOVER_AGE_SECONDS = 3600;

export interface ScratchDatabase {
  /** A URL for the scratch database: the given one with its database name replaced. */
  url: string;
  name: string;
  /** Drop it, `WITH (FORCE)` where the server has it (13+). Safe to call twice. */
  drop(): Promise<void>;
  /** Leftover scratch databases of this role dropped before this one was made. */
  swept: string[];
}

/**
 * Create an empty database, `migrate_check_<epoch>_<random>`, from `template0` (nothing a site added to
 * template1), through a connection to `url`. Throws `MigrateError('CONNECTION_FAILED')` when
 * the server cannot be reached or refuses (no CREATEDB), or when a connection to the new
 * database lands anywhere else: an embedded PGlite accepts CREATE DATABASE but serves its one
 * database under every name, and migrating that would not be a scratch database at all.
 */
export async function createScratchDatabase(
  url: string,
  display: string,
  secrets: readonly string[],
): Promise<ScratchDatabase> {
  const fail = (what: string, error: unknown) =>
    new MigrateError(
      'CONNECTION_FAILED',
      `${what} on ${display}: ${hideSecrets((error as Error)?.message ?? String(error), secrets)}`,
      { cause: error },
    );
  let name = 'migrate_check_…';
  let swept: string[] = [];
  await admin(url, async (sql) => {
    const [row] = await sql.unsafe(`SELECT floor(extract(epoch FROM now()))::bigint::text AS now,
      (SELECT json_agg(datname) FROM pg_catalog.pg_database
        WHERE datname ~ '^migrate_check_[0-9a-f]+_[0-9a-f]+$' AND pg_catalog.pg_get_userbyid(datdba) = current_user)::text AS ours`);
    const now = Number(row?.now);
    swept = await sweep(sql, JSON.parse(String(row?.ours ?? '[]')) as string[], now);
    name = `migrate_check_${now.toString(16)}_${randomBytes(4).toString('hex')}`;
    await sql.unsafe(`CREATE DATABASE ${name} TEMPLATE template0`);
  }).catch((error: unknown) => {
    const denied = (error as { code?: unknown })?.code === '42501';
    throw fail(
      denied
        ? `check cannot create its scratch database: the role may not create databases (grant it CREATEDB, or give check another server)`
        : `check could not create its scratch database ${name}`,
      error,
    );
  });
  const target = new URL(url);
  target.pathname = `/${name}`;
  let dropped = false;
  const scratch: ScratchDatabase = {
    url: target.toString(),
    name,
    swept,
    async drop() {
      if (dropped) return;
      dropped = true;
      await admin(url, (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).catch(
        async (error: unknown) => {
          // Before PostgreSQL 13 there is no FORCE; check has closed its own connections by now.
          if ((error as { code?: string }).code !== '42601') throw error;
          await admin(url, (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name}`));
        },
      );
    },
  };
  try {
    const sql = connect(scratch.url, { name: 'sql-migrate (scratch)' });
    try {
      const [row] = await sql.unsafe('SELECT current_database() AS db');
      if (row?.db !== name) {
        throw new MigrateError(
          'CONNECTION_FAILED',
          `${display} accepted CREATE DATABASE ${name} but a connection to it reached database "${String(row?.db)}": this server does not keep databases apart (an embedded PGlite?), so check cannot migrate a scratch database on it.`,
        );
      }
    } finally {
      await sql.end({ timeout: 5 });
    }
  } catch (error) {
    await scratch.drop().catch(() => {});
    throw error instanceof MigrateError
      ? error
      : fail(`check could not connect to its scratch database ${name}`, error);
  }
  return scratch;
}

async function admin(url: string, work: (sql: postgres.Sql) => Promise<unknown>): Promise<void> {
  const sql = connect(url, { name: 'sql-migrate (scratch admin)' });
  try {
    await work(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * Drop `names` made over {@link LEFTOVER_AGE_SECONDS} before `now` (the server's clock). Without
 * FORCE: a database someone is connected to (a check still running) is refused and kept.
 */
async function sweep(sql: postgres.Sql, names: readonly string[], now: number): Promise<string[]> {
  const dropped: string[] = [];
  for (const name of [...names].sort()) {
    if (!(now - Number.parseInt(name.split('_')[2] ?? '', 16) > LEFTOVER_AGE_SECONDS)) continue;
    const ok = await sql.unsafe(`DROP DATABASE IF EXISTS ${name}`).then(
      () => true,
      () => false,
    );
    if (ok) dropped.push(name);
  }
  return dropped;
}
