/**
 * Where `schema` builds PostgreSQL's file: the embedded PostgreSQL (PGlite, PostgreSQL 18) by
 * default, whose file of the bot's schema is the committed one a 15 server built; and that the
 * catalog is read with its display settings pinned, whatever the reader's are.
 *
 * The server half needs TEST_POSTGRES_URL; the embedded half runs everywhere.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { ROOT, runCli } from './support/cli.ts';
import { postgresFolder as folder } from './support/folder.ts';
import { liveSchema, schemaOf } from '../runner/catalog/schema-command.ts';
import { migrate } from '../runner/core/migrator.ts';
import { createPostgresDatabase, hasPostgresServer, type TestDatabase } from './support/postgres.ts';
import { check } from '../runner/check/check.ts';

const NEEDS_SERVER = hasPostgresServer ? false : 'needs TEST_POSTGRES_URL';
const BOT = join(ROOT, 'sql');

describe('the live catalog read (postgres server)', { skip: NEEDS_SERVER }, () => {
  const EV = `CREATE TABLE ev (id int primary key, at timestamptz DEFAULT '2024-01-01 00:00:00'::timestamptz, span interval DEFAULT '1 day 2 hours');`;
  let db: TestDatabase;
  let sql: postgres.Sql;
  before(async () => {
    db = await createPostgresDatabase();
    sql = postgres(db.url, { max: 1, onnotice: () => {}, fetch_types: false });
  });
  after(async () => {
    await sql?.end({ timeout: 5 });
    await db?.drop();
  });

  it('is read with the display settings pinned, whatever the reader’s are', async () => {
    const f = folder(EV);
    try {
      await migrate({ url: db.url, dir: f.dir }, 'head');
      const tokyo = new URL(db.url);
      tokyo.searchParams.set('options', '-c timezone=Asia/Tokyo -c intervalstyle=iso_8601 -c datestyle=German');
      const text = await liveSchema({ url: tokyo.toString() });
      assert.equal(text, await liveSchema({ url: db.url }));
      assert.match(text, /DEFAULT '2024-01-01 00:00:00\+00'::timestamp with time zone/);
      assert.match(text, /DEFAULT '1 day 02:00:00'::interval/);
    } finally {
      f.cleanup();
    }
  });
});

describe('schema without --scratch-url: the embedded PostgreSQL', () => {
  it('builds the committed sql/schema/postgres.sql (made on a 15 server) byte for byte', async () => {
    const [pg] = (await schemaOf({ dir: BOT })).filter((s) => s.dialect === 'postgres');
    assert.match(pg?.builtOn ?? '', /^embedded PostgreSQL/);
    assert.equal(pg?.text, readFileSync(join(BOT, 'schema', 'postgres.sql'), 'utf8'));
  });

  it('check without a server holds the committed postgres.sql to it (SCHEMA_STALE)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'mig-schema-stale-'));
    try {
      const dir = join(root, 'sql');
      cpSync(BOT, dir, { recursive: true });
      rmSync(join(dir, 'schema', 'sqlite.sql'));
      const file = join(dir, 'schema', 'postgres.sql');
      writeFileSync(file, readFileSync(file, 'utf8').replace(/^CREATE INDEX idx_status_expiry .*\n/m, ''));
      const result = await check({ dir, url: 'sqlite::memory:', data: false });
      const stale = result.findings.filter((f) => f.code === 'SCHEMA_STALE');
      assert.equal(stale.length, 1, JSON.stringify(result.findings));
      assert.match(stale[0]?.file ?? '', /schema\/postgres\.sql$/);
      assert.match(stale[0]?.message ?? '', /^\+CREATE INDEX idx_status_expiry /m);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('the CLI prints it and says where it was built, on stderr, whatever DATABASE_URL names', async () => {
    // A postgres:// DATABASE_URL nobody answers at: schema never connects to it.
    const r = await runCli(['schema', '--dir', BOT], { env: { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/live' } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^schema: postgres built on the embedded PostgreSQL .*: no --scratch-url was given$/m);
    assert.ok(r.stdout.includes(readFileSync(join(BOT, 'schema', 'postgres.sql'), 'utf8')), r.stdout.slice(0, 400));
  });
});
