/**
 * The database URL and the connection as a user meets them through the CLI: passwords that
 * never show, URL options from the bot's Python settings, `--wait` as a deadline that retries
 * only what waiting can fix, and the line saying which database a command used.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, runCli, startCli } from './support/cli.ts';
import { TEST_DIALECTS, withTestDb } from './support/db.ts';
import { hasPostgresServer } from './support/postgres.ts';

const BASIC = fixture('basic');
const onServer = {
  skip: (!hasPostgresServer || !TEST_DIALECTS.includes('postgres')) && 'needs a PostgreSQL server (TEST_POSTGRES_URL)',
};
/** The same database, with a password put into the URL (the test server trusts every login). */
const withPassword = (url: string, password: string) => url.replace('postgres@', `postgres:${password}@`);

describe('passwords in the URL', () => {
  it('a password of 000 hides itself, not the zeros of revisions, in --json', onServer, () =>
    withTestDb('postgres', async (db) => {
      const url = withPassword(db.url, '000');
      const r = await runCli(['head', '--json', '--url', url, '--dir', BASIC]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assert.deepEqual(
        out.steps.map((s: { revision: string }) => s.revision),
        ['000001', '000002', '000003'],
      );
      assert.equal(out.current.revision, '000003');
      assert.equal(out.database, db.url.replace('postgres@', 'postgres:****@'));
      assert.equal(out.urlFrom, '--url');
      const h = await runCli(['history', '--json', '--url', url, '--dir', BASIC]);
      assert.doesNotMatch(h.stdout, /\*\*\*\*0/);
    }),
  );

  it('a ?password= value holding @ connects, and no part of it is printed', onServer, () =>
    withTestDb('postgres', async (db) => {
      const url = `${db.url}?password=pw@MyS3cretTail`;
      const r = await runCli(['head', '--url', url, '--dir', BASIC]);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout + r.stderr, /S3cret|pw@/);
      assert.match(r.stderr, /database: postgres:\/\/postgres@127\.0\.0\.1:\d+\/\w+\?password=\*\*\*\* \(from --url\)/);
    }),
  );

  for (const password of ['pw@MyS3cretTail', 'pw#MyS3cretTail', '12#MyS3cretTail']) {
    it(`a raw ${password.slice(2, 3)} in the password: BAD_URL, exit 2, nothing sent to DNS`, async () => {
      const r = await runCli(['head', '--url', `postgres://bot:${password}@127.0.0.1:1/bot`, '--dir', BASIC]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /\[BAD_URL\]/);
      assert.doesNotMatch(r.stderr, /S3cret|ENOTFOUND|getaddrinfo/);
    });
  }
});

describe('URL options', () => {
  it('postgresql+asyncpg://…?prepared_statement_cache_size=0 migrates, with a note', onServer, () =>
    withTestDb('postgres', async (db) => {
      const url = `${db.url.replace(/^postgres:/, 'postgresql+asyncpg:')}?prepared_statement_cache_size=0&application_name=bot`;
      const r = await runCli(['head', '--url', url, '--dir', BASIC]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^note: ignored URL option\(s\) prepared_statement_cache_size: /m);
      assert.deepEqual(
        (await db.records()).map((x) => x.revision),
        ['000001', '000002', '000003'],
      );
    }),
  );

  it('sqlite+aiosqlite:///x.db?check_same_thread=false migrates, with the same note', () =>
    withTestDb('sqlite', async (db) => {
      const path = db.url.slice('sqlite:'.length);
      const r = await runCli(['head', '--url', `sqlite+aiosqlite:///${path}?check_same_thread=false`, '--dir', BASIC]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^note: ignored URL option\(s\) check_same_thread: /m);
      assert.deepEqual(
        (await db.records()).map((x) => x.revision),
        ['000001', '000002', '000003'],
      );
    }));
});

describe('--wait retries only what waiting can fix, within its limit', () => {
  it('--wait=5 against a closed port exits 3 within 6.5 s, 10 runs of 10, saying that it waits', async () => {
    const runs = Array.from({ length: 10 }, () => {
      const child = startCli(['head', '--wait=5', '--url', 'postgres://bot@127.0.0.1:1/bot', '--dir', BASIC]);
      // Timed from the first sign of life, not from spawn: starting tsx on a busy machine is not the runner's wait.
      let waitingSince = 0;
      child.child.stderr?.on('data', () => {
        waitingSince ||= Date.now();
      });
      return child.done.then((r) => ({ ...r, ms: Date.now() - waitingSince }));
    });
    for (const r of await Promise.all(runs)) {
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /^waiting for postgres:\/\/bot@127\.0\.0\.1:1\/bot \(up to 5 s\): /m);
      assert.match(r.stderr, /kept trying for 5 s\) \[CONNECTION_FAILED\]/);
      assert.ok(r.ms < 6500, `took ${r.ms} ms after it started waiting`);
    }
  });

  for (const [what, url, message] of [
    ['an unknown role (28000)', (u: string) => u.replace('postgres@', 'no_such_role_migrate@'), /refused the login/],
    [
      'an unknown database (3D000)',
      (u: string) => u.replace(/\/\w+$/, '/no_such_database_migrate'),
      /Create the database/,
    ],
  ] as const) {
    it(`${what} fails at once, however long --wait is`, onServer, () =>
      withTestDb('postgres', async (db) => {
        const started = Date.now();
        const r = await runCli(['head', '--wait=60', '--url', url(db.url), '--dir', BASIC]);
        assert.equal(r.code, 3, r.stderr);
        assert.match(r.stderr, message);
        assert.match(r.stderr, /not retried/);
        assert.doesNotMatch(r.stderr, /waiting for/);
        assert.ok(Date.now() - started < 30_000, 'not the whole wait');
      }),
    );
  }
});

describe('which database, and where its URL came from', () => {
  for (const dialect of TEST_DIALECTS) {
    it(`${dialect}: --url, DATABASE_URL, .env and the default are each named, on stderr`, () =>
      withTestDb(dialect, async (db) => {
        const home = mkdtempSync(join(tmpdir(), 'migrate-which-'));
        try {
          const shown = db.url;
          const byFlag = await runCli(['head', '--url', db.url, '--dir', BASIC], { cwd: home });
          assert.equal(byFlag.code, 0, byFlag.stderr);
          assert.ok(byFlag.stderr.includes(`database: ${shown} (from --url)`), byFlag.stderr);
          assert.doesNotMatch(byFlag.stdout, /database:/, 'stdout stays clean');
          const byEnv = await runCli(['current', '--dir', BASIC], { cwd: home, env: { DATABASE_URL: db.url } });
          assert.ok(byEnv.stderr.includes(`database: ${shown} (from DATABASE_URL)`), byEnv.stderr);
          writeFileSync(join(home, '.env'), `DATABASE_URL=${db.url}\n`);
          const byFile = await runCli(['history', '--dir', BASIC], { cwd: home });
          assert.ok(byFile.stderr.includes(`database: ${shown} (from .env)`), byFile.stderr);
          const json = await runCli(['current', '--json', '--dir', BASIC], { cwd: home });
          assert.equal(json.stderr, '');
          assert.deepEqual(JSON.parse(json.stdout), {
            ok: true,
            command: 'current',
            current: { revision: '000003', name: 'add_email' },
            database: shown,
            urlFrom: '.env',
          });
          rmSync(join(home, '.env'));
          const byDefault = await runCli(['sql', 'head', '--dir', BASIC], { cwd: home });
          assert.match(byDefault.stderr, /database: sqlite:bot\.db \(the default\)/);
        } finally {
          rmSync(home, { recursive: true, force: true });
        }
      }));
  }
});
