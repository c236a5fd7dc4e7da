/**
 * check reads its PostgreSQL scratch database after every step, reading again only the tables
 * whose catalog rows changed (runner/catalog/postgres-changes.ts). After each of these
 * statements, on a real database, that reading must equal a whole one: the changes that reach a
 * table without touching its own rows (a referenced table or column renamed, a sequence,
 * function, type or schema renamed) and the ones that only delete rows (DROP INDEX, DROP
 * CONSTRAINT, DROP TRIGGER, DROP DEFAULT) and a name that another schema on the search path
 * comes to hide, or stops hiding, included.
 *
 * Runs on TEST_POSTGRES_URL when set, else on the embedded PostgreSQL.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { introspectPostgres } from '../runner/catalog/postgres-schema.ts';
import { newRowsCache } from '../runner/catalog/postgres-changes.ts';
import { createPostgresDatabase } from './support/postgres.ts';

/** One step each, in order; each runs as one simple-protocol query (one transaction). */
const STEPS = [
  `CREATE TABLE schema_migrations (version text PRIMARY KEY)`,
  `CREATE TABLE a (id int PRIMARY KEY, name text NOT NULL); CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a (id) ON DELETE CASCADE)`,
  `SELECT 1`,
  `ALTER TABLE a RENAME COLUMN id TO a_key`,
  `ALTER TABLE a RENAME TO a2`,
  `CREATE SCHEMA s; ALTER TABLE a2 SET SCHEMA s`,
  `ALTER SCHEMA s RENAME TO s2`,
  `CREATE SEQUENCE seq; ALTER TABLE b ADD COLUMN n bigint DEFAULT nextval('seq')`,
  `ALTER SEQUENCE seq RENAME TO seq2`,
  `CREATE INDEX b_n ON b (n)`,
  `ALTER INDEX b_n RENAME TO b_n2`,
  `DROP INDEX b_n2`,
  `ALTER TABLE b DROP CONSTRAINT b_a_id_fkey`,
  `CREATE TYPE mood AS ENUM ('ok', 'sad'); ALTER TABLE b ADD COLUMN m mood`,
  `ALTER TYPE mood RENAME TO mood2`,
  `ALTER TYPE mood2 ADD VALUE 'glad'`,
  `CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$; CREATE TRIGGER t BEFORE INSERT ON b FOR EACH ROW EXECUTE FUNCTION f()`,
  `ALTER FUNCTION f() RENAME TO f2`,
  `DROP TRIGGER t ON b`,
  `ALTER TABLE b ALTER COLUMN n DROP DEFAULT`,
  `CREATE TABLE c (id serial PRIMARY KEY, x int CHECK (x > 0), u text UNIQUE)`,
  `ALTER TABLE c DROP CONSTRAINT c_x_check`,
  `ALTER TABLE c DROP CONSTRAINT c_u_key`,
  `ALTER SEQUENCE c_id_seq RENAME TO c_seq`,
  `CREATE VIEW v AS SELECT id, x FROM c`,
  `ALTER TABLE c RENAME COLUMN x TO y`,
  `BEGIN; ALTER TABLE c ADD COLUMN rolled int; ROLLBACK`,
  `DROP VIEW v; ALTER TABLE c ALTER COLUMN y TYPE bigint; ALTER TABLE c ALTER COLUMN y SET NOT NULL`,
  `CREATE TABLE d (id int); CREATE TABLE e (d_row d, ds d[])`,
  `ALTER TABLE d RENAME TO d2`,
  `CREATE DOMAIN posint AS int CHECK (VALUE > 0); ALTER TABLE c ADD COLUMN p posint`,
  `ALTER DOMAIN posint RENAME TO posint2`,
  `CREATE TABLE p (id int, k int) PARTITION BY RANGE (k); CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10)`,
  `ALTER TABLE p DETACH PARTITION p1`,
  `CREATE TABLE g (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, h int GENERATED ALWAYS AS (id * 2) STORED)`,
  `ALTER TABLE g ALTER COLUMN id DROP IDENTITY`,
  `DROP TABLE b`,
  `CREATE TABLE l (id int); ALTER TABLE l ADD CONSTRAINT l_c CHECK (id IN (1, 2)) NOT VALID`,
  `ALTER TABLE l VALIDATE CONSTRAINT l_c; ALTER TABLE l RENAME CONSTRAINT l_c TO l_c2`,
  `DROP TABLE c CASCADE`,
  `SET search_path = public, other`,
  `CREATE SCHEMA other; CREATE SEQUENCE other.s2; CREATE TABLE q (id bigint DEFAULT nextval('other.s2'))`,
  `CREATE SEQUENCE public.s2`,
  `DROP SEQUENCE public.s2`,
  `ALTER SEQUENCE other.s2 RENAME TO s3`,
  `CREATE TABLE public.s3 (id int)`,
  // No name is taken twice from here on: the steps below must make the count be taken again.
  `DROP TABLE public.s3`,
  // A table's row type comes to hide a type of another schema, then stops: no row of the
  // column's own table changes either time.
  `CREATE DOMAIN other.dom3 AS int; CREATE TABLE r (d other.dom3)`,
  `CREATE TABLE public.dom3 (id int)`,
  `DROP TABLE public.dom3`,
  `CREATE FUNCTION other.f3() RETURNS int LANGUAGE sql AS 'SELECT 1'; CREATE TABLE w (n int DEFAULT other.f3())`,
  `CREATE FUNCTION public.f3() RETURNS int LANGUAGE sql AS 'SELECT 2'`,
  `DROP FUNCTION public.f3()`,
  // One of initdb's own functions renamed to take the name (a superuser may), then given back.
  `CREATE FUNCTION public.f4() RETURNS timestamptz LANGUAGE sql AS 'SELECT now()'; CREATE TABLE x (t timestamptz DEFAULT f4())`,
  `ALTER FUNCTION pg_catalog.pg_postmaster_start_time() RENAME TO f4`,
  `ALTER FUNCTION pg_catalog.f4() RENAME TO pg_postmaster_start_time`,
];

describe('PostgreSQL readings that read again only the changed tables', () => {
  it('equal a whole reading after every kind of change', async () => {
    const db = await createPostgresDatabase();
    const sql = postgres(db.url, { max: 1, onnotice: () => {}, connection: { jit: 'off' } });
    try {
      const query = (text: string, params: unknown[] = []) =>
        sql.unsafe(text, params as never[], { prepare: true }) as unknown as Promise<Array<Record<string, unknown>>>;
      const record = { schema: 'public', table: 'schema_migrations' };
      const cache = newRowsCache();
      const same = async (after: string) =>
        assert.deepEqual(
          await introspectPostgres(query, record, cache),
          await introspectPostgres(query, record),
          after,
        );
      for (const step of ['SELECT 1', ...STEPS]) {
        await sql.unsafe(step).simple();
        await same(`after: ${step}`);
      }
      // Read inside a transaction that is then rolled back: what it read must not stand.
      await sql.unsafe('BEGIN; ALTER TABLE q ADD COLUMN gone int; CREATE TABLE gone (id int)').simple();
      await same('inside a transaction');
      await sql.unsafe('ROLLBACK');
      await same('after its rollback');
    } finally {
      await sql.end({ timeout: 5 });
      await db.drop();
    }
  });
});
