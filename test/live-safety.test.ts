/**
 * Safe by construction (#24): folder SQL never runs in a database the user named as live, the
 * server reads SQL text as the runner's lexer does, a lock timeout never re-runs what may have
 * committed, live reads are bounded, bad option values are refused before connecting.
 *
 * The reproductions of the fault trial are the fixtures: a session pooler that drops `options`,
 * `U&"\0070ublic"`, `setval(E'\x70ublic…')`, `ALTER FUNCTION lower`, the
 * standard_conforming_strings pair, a DO block that commits per batch behind a 6 s lock.
 * Needs TEST_POSTGRES_URL (and PgBouncer for the pooler case).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { runCli, startCli } from './support/cli.ts';
import { createPostgresDatabase, hasPostgresServer, type TestDatabase } from './support/postgres.ts';
import { PGBOUNCER, startBouncer } from './support/pgbouncer.ts';
import { parseUrl } from '../runner/core/config.ts';
import { openDriver } from '../runner/core/session.ts';
import { loadMigrations } from '../runner/core/files.ts';
import { runStep, stepWork } from '../runner/core/step.ts';
import { splitStatements } from '../runner/core/split.ts';
import { check } from '../runner/check/check.ts';
import { DataDirCache } from '../runner/scratch/embedded-cache.ts';

const SERVER = process.env.TEST_POSTGRES_URL || undefined;
const NEEDS_SERVER = hasPostgresServer ? false : 'needs TEST_POSTGRES_URL: the live databases are on a server';

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** A migrations root with a postgres/ folder: one revision per up text (`000001_r1`, …). */
function folder(...ups: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'mig-live-'));
  roots.push(dir);
  mkdirSync(join(dir, 'postgres'));
  ups.forEach((up, i) => {
    writeFileSync(join(dir, 'postgres', `00000${i + 1}_r${i + 1}.up.sql`), up);
    writeFileSync(join(dir, 'postgres', `00000${i + 1}_r${i + 1}.down.sql`), '-- nothing\n');
  });
  return dir;
}

const LIVE = `CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);
INSERT INTO users (name) VALUES ('ann'), ('bob');
CREATE VIEW user_names AS SELECT name FROM users;`;

/** The pending files of a feature branch that reach for the live database. */
const REACHING: Record<string, string> = {
  'U&"\\0070ublic"': `DELETE FROM U&"\\0070ublic".users;\nCREATE TABLE U&"\\0070ublic".planted (a int);`,
  'setval/nextval escapes': `SELECT setval(E'\\x70ublic.users_id_seq', 1000);\nSELECT nextval(E'\\x70ublic.users_id_seq');\nCREATE TABLE planted (a int);`,
  'ALTER FUNCTION lower': `ALTER FUNCTION lower(text) RENAME TO lower_gone;\nCREATE TABLE planted (a int);`,
};

/** What a live database holds, for before/after comparisons. */
async function liveState(url: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {}, fetch_types: false });
  try {
    const q = async (text: string) => JSON.stringify(await sql.unsafe(text));
    return {
      record: await q(`SELECT revision, status FROM schema_migrations ORDER BY revision`),
      rows: await q('SELECT id, name FROM users ORDER BY id'),
      columns: await q(
        `SELECT table_schema, table_name, column_name FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3`,
      ),
      tables: await q(
        `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' ORDER BY 1, 2`,
      ),
      schemas: await q('SELECT nspname FROM pg_namespace ORDER BY 1'),
      sequence: await q('SELECT last_value, is_called FROM users_id_seq'),
      lower: await q(`SELECT lower('ABC') AS l, to_regproc('pg_catalog.lower_gone') AS gone`),
    };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

describe('folder SQL never runs in the live database (postgres server)', { skip: NEEDS_SERVER }, () => {
  let db: TestDatabase;
  const live = folder(LIVE);
  before(async () => {
    db = await createPostgresDatabase();
    const r = await runCli(['head', '--url', db.url, '--dir', live]);
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => db?.drop());

  for (const [name, up] of Object.entries(REACHING)) {
    it(`${name}: schema (DATABASE_URL at the live database), drift and check --url change nothing live`, async () => {
      const branch = folder(LIVE, up);
      const before = await liveState(db.url);
      const schema = await runCli(['schema', '--dir', branch], { env: { DATABASE_URL: db.url } });
      assert.equal(schema.code, 0, schema.stderr);
      assert.match(schema.stdout, /CREATE TABLE planted /);
      assert.match(schema.stderr, /built on the embedded PostgreSQL/);
      assert.deepEqual(await liveState(db.url), before, 'schema');

      const checked = await runCli(['check', '--url', db.url, '--dir', branch, '--no-data']);
      assert.ok(checked.code === 0 || checked.code === 1, checked.stderr);
      assert.deepEqual(await liveState(db.url), before, 'check');

      // drift builds what the record lists: stamped, the branch's file is built, never run live.
      const stamped = await runCli(['stamp', '000002', '--url', db.url, '--dir', branch]);
      assert.equal(stamped.code, 0, stamped.stderr);
      const recorded = await liveState(db.url);
      const drift = await runCli(['drift', '--url', db.url, '--dir', branch]);
      assert.ok(drift.code === 0 || drift.code === 1, drift.stderr);
      assert.deepEqual(await liveState(db.url), recorded, 'drift');
      const back = await runCli(['stamp', '000001', '--url', db.url, '--dir', branch, '--yes']);
      assert.equal(back.code, 0, back.stderr);
    });
  }
});

describe('through a session pooler that drops `options` (postgres server, PgBouncer)', {
  skip: NEEDS_SERVER || (!PGBOUNCER && 'needs pgbouncer (apt-get install -y pgbouncer)'),
}, () => {
  let db: TestDatabase;
  let bouncer: Awaited<ReturnType<typeof startBouncer>>;
  const live = folder(LIVE);
  before(async () => {
    db = await createPostgresDatabase();
    assert.equal((await runCli(['head', '--url', db.url, '--dir', live])).code, 0);
    bouncer = await startBouncer(SERVER as string, 'session');
  });
  after(async () => {
    await bouncer?.stop();
    await db?.drop();
  });

  it('schema with DATABASE_URL at the pooler, and check --url the pooler, leave the live database as it was', async () => {
    const pooled = new URL(bouncer.through(db.url));
    pooled.searchParams.set('options', '-c search_path=elsewhere');
    const branch = folder(LIVE, REACHING['U&"\\0070ublic"'] as string);
    const before = await liveState(db.url);
    const schema = await runCli(['schema', '--dir', branch], { env: { DATABASE_URL: pooled.toString() } });
    assert.equal(schema.code, 0, schema.stderr);
    // The folder's schema: the branch's table, the users table its first revision made.
    assert.match(schema.stdout, /CREATE TABLE planted /);
    assert.match(schema.stdout, /CREATE TABLE users /);
    assert.deepEqual(await liveState(db.url), before);
    const checked = await runCli(['check', '--url', pooled.toString(), '--dir', branch, '--no-data']);
    assert.ok(checked.code === 0 || checked.code === 1, checked.stdout + checked.stderr);
    assert.deepEqual(await liveState(db.url), before);
  });
});

describe('drift --url with a superuser URL (postgres server)', { skip: NEEDS_SERVER }, () => {
  let db: TestDatabase;
  let admin: postgres.Sql;
  const role = `drift_su_${randomBytes(4).toString('hex')}`;
  const live = folder(LIVE);
  let url: string;
  before(async () => {
    db = await createPostgresDatabase();
    assert.equal((await runCli(['head', '--url', db.url, '--dir', live])).code, 0);
    admin = postgres(SERVER as string, { max: 1, onnotice: () => {}, fetch_types: false });
    await admin.unsafe(`CREATE ROLE ${role} SUPERUSER LOGIN`);
    const u = new URL(db.url);
    u.username = role;
    url = u.toString();
  });
  after(async () => {
    await admin?.unsafe(`DROP ROLE IF EXISTS ${role}`);
    await admin?.end({ timeout: 5 });
    await db?.drop();
  });

  it('creates no database on the server and no schema in the live database (sampled all along)', async () => {
    const inLive = postgres(db.url, { max: 1, onnotice: () => {}, fetch_types: false });
    const seen = { databases: new Set<string>(), schemas: new Set<string>() };
    const baseline = (await inLive.unsafe('SELECT nspname FROM pg_namespace')).map((r) => r.nspname as string);
    let running = true;
    const sampling = (async () => {
      let samples = 0;
      while (running || samples === 0) {
        for (const r of await admin.unsafe(`SELECT datname FROM pg_database WHERE pg_get_userbyid(datdba) = '${role}'`))
          seen.databases.add(r.datname as string);
        for (const r of await inLive.unsafe('SELECT nspname FROM pg_namespace'))
          if (!baseline.includes(r.nspname as string)) seen.schemas.add(r.nspname as string);
        samples++;
        await new Promise((r) => setTimeout(r, 25));
      }
      return samples;
    })();
    try {
      const r = await runCli(['drift', '--url', url, '--dir', live]);
      running = false;
      const samples = await sampling;
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^drift: none/m);
      assert.ok(samples > 1, `sampled ${samples} time(s)`);
      assert.deepEqual([...seen.databases], []);
      assert.deepEqual([...seen.schemas], []);
    } finally {
      running = false;
      await sampling.catch(() => {});
      await inLive.end({ timeout: 5 });
    }
  });

  it('SIGTERM while a live table is locked ends it at once (exit 130), while the lock is still held', async () => {
    const holder = postgres(db.url, { max: 1, onnotice: () => {}, fetch_types: false });
    const watch = postgres(db.url, { max: 1, onnotice: () => {}, fetch_types: false });
    try {
      await holder.unsafe('BEGIN');
      await holder.unsafe('LOCK TABLE users IN ACCESS EXCLUSIVE MODE');
      const run = startCli(['drift', '--url', url, '--dir', live]);
      for (let i = 0; ; i++) {
        const waiting = await watch.unsafe(
          `SELECT 1 FROM pg_locks l WHERE NOT l.granted AND l.relation = 'users'::regclass`,
        );
        if (waiting.length > 0) break;
        assert.ok(i < 600, 'drift never waited for the lock');
        await new Promise((r) => setTimeout(r, 50));
      }
      run.child.kill('SIGTERM');
      // The lock stays held until drift has ended: it cannot have waited the lock out.
      const ended = await Promise.race([run.done, new Promise((r) => setTimeout(() => r('still running'), 10_000))]);
      assert.notEqual(ended, 'still running');
      const r = await run.done;
      assert.equal(r.code, 130, r.stderr);
      assert.match(r.stderr, /drift: interrupted/);
    } finally {
      await holder.unsafe('ROLLBACK').catch(() => {});
      await holder.end({ timeout: 5 });
      await watch.end({ timeout: 5 });
    }
  });

  it('schema --url waits a bounded time for a locked live table: exit 3 TABLE_LOCK_TIMEOUT, nothing written', async () => {
    const holder = postgres(db.url, { max: 1, onnotice: () => {}, fetch_types: false });
    try {
      await holder.unsafe('BEGIN');
      await holder.unsafe('LOCK TABLE users IN ACCESS EXCLUSIVE MODE');
      const r = await runCli(['schema', '--url', url]);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /waited 3 s for a lock .*nothing was changed.*\[TABLE_LOCK_TIMEOUT\]/);
    } finally {
      await holder.unsafe('ROLLBACK').catch(() => {});
      await holder.end({ timeout: 5 });
    }
  });
});

describe('the lexer and the server read SQL alike (postgres server)', { skip: NEEDS_SERVER }, () => {
  const OFF = 'SET standard_conforming_strings = off;\n';
  const HIDDEN = `SELECT '\\' -- '; COMMIT; CREATE TABLE sneaky (a int); SELECT 1 -- ';\n`;
  let db: TestDatabase;
  before(async () => {
    db = await createPostgresDatabase();
  });
  after(() => db?.drop());

  const tables = async () => {
    const sql = postgres(db.url, { max: 1, onnotice: () => {}, fetch_types: false });
    try {
      const rows = await sql.unsafe(`SELECT relname FROM pg_class WHERE relname IN ('sneaky', 'schema_migrations')`);
      const record = rows.some((r) => r.relname === 'schema_migrations')
        ? await sql.unsafe('SELECT revision, status, error FROM schema_migrations ORDER BY revision')
        : [];
      return { sneaky: rows.some((r) => r.relname === 'sneaky'), record: [...record] };
    } finally {
      await sql.end({ timeout: 5 });
    }
  };

  it('the pair: the file that turns standard_conforming_strings off is refused at file:line before anything runs; check says so', async () => {
    const dir = folder('CREATE TABLE t (a int);', OFF, HIDDEN);
    const r = await runCli(['head', '--url', db.url, '--dir', dir]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /000002_r2\.up\.sql:1:5: standard_conforming_strings changes how the server reads SQL text.*\[READING_SETTING\]/,
    );
    assert.deepEqual(await tables(), { sneaky: false, record: [] });
    for (const spelling of [
      `SELECT set_config('standard_conforming_strings', 'off', false);`,
      `ALTER DATABASE current SET standard_conforming_strings = off;`,
      `RESET standard_conforming_strings;`,
      `SET backslash_quote = off;`,
      `DO $$ BEGIN EXECUTE 'SET standard_conforming_strings TO off'; END $$;`,
    ]) {
      const f = folder(spelling);
      const refused = await runCli(['sql', 'head', '--url', db.url, '--dir', f]);
      assert.equal(refused.code, 2, `${spelling}: ${refused.stderr}`);
      assert.match(refused.stderr, /\[READING_SETTING\]/, spelling);
    }
    const result = await check({ dir, url: 'sqlite::memory:', data: false });
    assert.ok(
      result.findings.some(
        (f) => f.code === 'READING_SETTING' && /000002_r2\.up\.sql$/.test(f.file ?? '') && f.line === 1,
      ),
      JSON.stringify(result.findings),
    );
  });

  it('a session whose setting is off is refused before any step (SESSION_SETTING), nothing run', async () => {
    const dir = folder(HIDDEN);
    const off = new URL(db.url);
    off.searchParams.set('options', '-c standard_conforming_strings=off');
    const r = await runCli(['head', '--url', off.toString(), '--dir', dir]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /standard_conforming_strings off.*nothing was run.*\[SESSION_SETTING\]/);
    assert.equal((await tables()).sneaky, false);
  });

  it('a session turned off after it was checked: each step pins it on and runs exactly what the lexer read', async () => {
    for (const directive of ['', '-- migrate:no-transaction\n']) {
      const dir = folder(directive + HIDDEN);
      const driver = await openDriver(parseUrl(db.url), `rec_${randomBytes(3).toString('hex')}`, true);
      try {
        await driver.ping();
        await driver.ensureRecordTable();
        await driver.exec('SET standard_conforming_strings = off');
        const [m] = loadMigrations(dir, 'postgres');
        await runStep(driver, stepWork({ direction: 'up', migration: m as never } as never, 'postgres'));
        const rows = await (async () => {
          const sql = postgres(db.url, { max: 1, onnotice: () => {}, fetch_types: false });
          try {
            return await sql.unsafe(`SELECT status FROM ${await driver.recordTable()}`);
          } finally {
            await sql.end({ timeout: 5 });
          }
        })();
        assert.deepEqual(
          rows.map((r) => r.status),
          ['applied'],
          directive,
        );
        assert.equal((await tables()).sneaky, false, `the hidden COMMIT did not run (${directive || 'transactional'})`);
      } finally {
        await driver.close();
      }
    }
  });

  it('a file that ends the runner’s transaction itself is recorded failed, never applied, and the message says what ran', async () => {
    const table = `rec_${randomBytes(3).toString('hex')}`;
    const driver = await openDriver(parseUrl(db.url), table, true);
    const sql = postgres(db.url, { max: 1, onnotice: () => {}, fetch_types: false });
    try {
      await driver.ping();
      await driver.ensureRecordTable();
      // What a lexer that misread a file would let through: stepWork refuses a COMMIT it can see.
      const text = 'CREATE TABLE before_commit (a int);\nCOMMIT;\nCREATE TABLE after_commit (a int);\n';
      const work = {
        file: 'sql/postgres/000009_hidden.up.sql',
        sql: text,
        statements: splitStatements(text, 'postgres'),
        transactional: true,
        empty: false,
        record: { kind: 'insert' as const, revision: '000009', description: 'hidden', checksum: 'x' },
      };
      await assert.rejects(runStep(driver, work), (error: Error) => {
        assert.match(error.message, /ended the runner's transaction itself/);
        assert.match(error.message, /in autocommit, and stays/);
        return true;
      });
      const [row] = await sql.unsafe(`SELECT status, error FROM ${table} WHERE revision = '000009'`);
      assert.equal(row?.status, 'failed');
      assert.match(String(row?.error), /ended the runner's transaction itself/);
      const made = await sql.unsafe(
        `SELECT relname FROM pg_class WHERE relname IN ('before_commit', 'after_commit') ORDER BY 1`,
      );
      assert.deepEqual(
        made.map((r) => r.relname),
        ['after_commit', 'before_commit'],
      );
    } finally {
      await sql.unsafe('DROP TABLE IF EXISTS before_commit, after_commit').catch(() => {});
      await sql.end({ timeout: 5 });
      await driver.close();
    }
  });
});

describe('a DO block that commits per batch, behind a 6 s lock (postgres server)', { skip: NEEDS_SERVER }, () => {
  const DO_BATCHES = `-- migrate:no-transaction
DO $$
BEGIN
  INSERT INTO batches VALUES (1);
  COMMIT;
  LOCK TABLE users IN ACCESS EXCLUSIVE MODE;
  INSERT INTO batches VALUES (2);
  COMMIT;
END $$;
`;
  for (const extra of [[], ['--retry-for=3']]) {
    it(`its batch commits at most once, the run stops, the record says failed ${extra.join(' ')}`, async () => {
      const db = await createPostgresDatabase();
      const sql = postgres(db.url, { max: 1, onnotice: () => {}, fetch_types: false });
      const holder = postgres(db.url, { max: 1, onnotice: () => {}, fetch_types: false });
      try {
        await sql.unsafe('CREATE TABLE users (id int); CREATE TABLE batches (n int)');
        await holder.unsafe('BEGIN');
        await holder.unsafe('SELECT count(*) FROM users');
        const release = setTimeout(() => void holder.unsafe('COMMIT').catch(() => {}), 6000);
        const r = await runCli(['head', '--url', db.url, '--dir', folder(DO_BATCHES), ...extra]);
        clearTimeout(release);
        await holder.unsafe('COMMIT').catch(() => {});
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /DO block or CALL, which can commit inside/);
        const batches = await sql.unsafe('SELECT n FROM batches ORDER BY n');
        assert.deepEqual(
          batches.map((b) => b.n),
          [1],
        );
        const [row] = await sql.unsafe('SELECT status, statements_run FROM schema_migrations');
        assert.equal(row?.status, 'failed');
        assert.equal(row?.statements_run, 0);
      } finally {
        await holder.end({ timeout: 5 });
        await sql.end({ timeout: 5 });
        await db.drop();
      }
    });
  }

  it('check warns on a no-transaction DO or CALL (COMMITS_INSIDE)', async () => {
    const dir = folder(
      'CREATE TABLE users (id int); CREATE TABLE batches (n int);',
      DO_BATCHES.replace(/LOCK[^;]*;/, ''),
    );
    const result = await check({ dir, url: 'sqlite::memory:', data: false });
    const warned = result.findings.filter((f) => f.code === 'COMMITS_INSIDE');
    assert.equal(warned.length, 1, JSON.stringify(result.findings));
    assert.equal(warned[0]?.severity, 'warning');
    assert.equal(warned[0]?.line, 2);
  });
});

describe('options checked before connecting', () => {
  it('timeouts under 1 ms or over PostgreSQL’s limit, --rows over its bound: exit 2 BAD_OPTION naming the range', async () => {
    // Nothing listens on port 1: a run that tried to connect would end with exit 3.
    const url = 'postgres://nobody@127.0.0.1:1/nowhere';
    const cases: string[][] = [
      ['head', '--table-lock-timeout=0.0001'],
      ['head', '--statement-timeout=0.0001'],
      ['head', '--statement-timeout=3000000'],
      ['head', '--lock-timeout=1e10'],
      ['drift', '--retry-for=-1'],
      ['check', '--rows=1e9'],
      ['check', '--rows=100001'],
    ];
    for (const args of cases) {
      const r = await runCli([...args, '--url', url]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /\[BAD_OPTION\]/, args.join(' '));
      assert.match(r.stderr, /from 0\.001 \(1 ms\) to 2147483\.647|from 1 to 100000/, args.join(' '));
    }
    const env = await runCli(['head', '--url', url], { env: { MIGRATE_TABLE_LOCK_TIMEOUT: '0.00001' } });
    assert.equal(env.code, 2, env.stderr);
  });
});

describe('resources', () => {
  it('a dump cache with a header that matches bad contents is removed, not handed to PGlite', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'mig-cache-bad-'));
    roots.push(tmp);
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    try {
      const cache = DataDirCache.open();
      assert.ok(cache);
      const uid = process.getuid?.() as number;
      const file = join(tmp, `sql-migrate-${uid}`, 'pglite-fresh-datadir.bin');
      // gzip's magic, then noise: PGlite would try it as gzip and end the process (Z_DATA_ERROR).
      const tar = Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0]), randomBytes(4092)]);
      const { createHash } = await import('node:crypto');
      const header = {
        format: 'sql-migrate pglite dump 1',
        version: 'PostgreSQL 18.6',
        bytes: tar.length,
        sha256: createHash('sha256').update(tar).digest('hex'),
      };
      writeFileSync(file, Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), tar]), { mode: 0o600 });
      assert.equal(cache.read(), undefined);
      assert.equal(existsSync(file), false);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });

  it('a full disk names the file being written (SQLite)', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'mig-full-'));
    roots.push(tmp);
    const dir = join(tmp, 'sql');
    mkdirSync(dir);
    writeFileSync(
      join(dir, '000001_fill.up.sql'),
      'PRAGMA max_page_count = 8;\nCREATE TABLE big (a blob);\nINSERT INTO big SELECT randomblob(4000) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) SELECT i FROM n);\n',
    );
    writeFileSync(join(dir, '000001_fill.down.sql'), 'DROP TABLE big;\n');
    const db = join(tmp, 'full.db');
    const r = await runCli(['head', '--url', `sqlite:${db}`, '--dir', dir]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /database or disk is full: writing the migration's changes to .*full\.db/);
    assert.ok(readFileSync(db).length > 0);
  });
});
