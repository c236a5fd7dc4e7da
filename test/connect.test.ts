/**
 * The one way to connect (runner/core/connect.ts) and the one way to quote (runner/core/quote.ts),
 * against a real PostgreSQL (TEST_POSTGRES_URL, or the embedded PGlite): each client says which
 * of the runner's clients it is in `application_name`, and quoted text reads back as itself.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../runner/core/connect.ts';
import { quoteIdent, sqlString } from '../runner/core/quote.ts';
import { PostgresDriver } from '../runner/core/drivers/postgres.ts';
import { createPostgresDatabase, hasPostgresServer } from './support/postgres.ts';

/** The embedded PGlite is one session that keeps no application_name and no pg_stat_activity. */
const onServer = {
  skip: !hasPostgresServer && 'needs a PostgreSQL server (TEST_POSTGRES_URL): PGlite keeps no application_name',
};

async function withDatabase(fn: (url: string) => Promise<void>): Promise<void> {
  const db = await createPostgresDatabase();
  try {
    await fn(db.url);
  } finally {
    await db.drop();
  }
}

describe('connect', () => {
  it('names the client in application_name; a URL that names it itself wins', onServer, () =>
    withDatabase(async (url) => {
      const named = connect(url, { name: 'sql-migrate (test)' });
      const own = connect(`${url}${url.includes('?') ? '&' : '?'}application_name=bot_migrations`, { name: 'unused' });
      try {
        const [a] = await named.unsafe('SELECT current_setting($1) AS v', ['application_name']);
        const [b] = await own.unsafe('SELECT current_setting($1) AS v', ['application_name']);
        assert.equal(a?.v, 'sql-migrate (test)');
        assert.equal(b?.v, 'bot_migrations');
      } finally {
        await named.end();
        await own.end();
      }
    }),
  );

  it("the driver's session is `sql-migrate` in pg_stat_activity while it holds the lock", onServer, () =>
    withDatabase(async (url) => {
      const driver = new PostgresDriver({ url, display: url, table: 'schema_migrations', create: true });
      const outside = connect(url, { name: 'sql-migrate (test observer)' });
      try {
        const names = await driver.withLock(async () => {
          const rows = await outside.unsafe(
            'SELECT application_name AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
          );
          return rows.map((r) => String(r.n));
        }, 5000);
        assert.ok(names.includes('sql-migrate'), `sessions seen: ${names.join(', ')}`);
      } finally {
        await driver.close();
        await outside.end();
      }
    }),
  );
});

describe('quote', () => {
  const tricky = ["it's", "''", 'back\\slash', 'two\nlines', 'dollar $$ quote', 'ünï', ''];

  it('sqlString: every value reads back as itself', () =>
    withDatabase(async (url) => {
      const sql = connect(url, { name: 'sql-migrate (test)' });
      try {
        for (const v of tricky) {
          const [row] = await sql.unsafe(`SELECT ${sqlString(v)} AS v`);
          assert.equal(row?.v, v);
        }
      } finally {
        await sql.end();
      }
    }));

  it('quoteIdent: a table named with quotes, dots and capitals is created and found by that name', () =>
    withDatabase(async (url) => {
      const sql = connect(url, { name: 'sql-migrate (test)' });
      const name = 'We"ird.Name';
      try {
        await sql.unsafe(`CREATE TABLE ${quoteIdent(name)} (${quoteIdent('a"b')} int)`);
        const rows = await sql.unsafe('SELECT relname FROM pg_class WHERE relname = $1', [name]);
        assert.equal(rows.length, 1);
        const cols = await sql.unsafe(
          `SELECT attname FROM pg_attribute WHERE attrelid = ${sqlString(quoteIdent(name))}::regclass AND attnum > 0`,
        );
        assert.deepEqual(
          cols.map((c) => c.attname),
          ['a"b'],
        );
      } finally {
        await sql.end();
      }
    }));
});
