/**
 * Every way out a refusal names, run as printed (issue #26): the commands in its backticks are
 * taken from the message itself and run in order, and the database must end where the message
 * says. An empty up file is refused before anything runs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixture, onTerminal, runCli, type CliResult } from './support/cli.ts';
import { createTestDb, TEST_DIALECTS, withTestDb, type TestDb } from './support/db.ts';

/** The commands a message names in backticks, in order, each as an argument list. */
function commandsIn(message: string, from: RegExp): string[][] {
  const part = message.slice(message.search(from));
  return [...part.matchAll(/`([^`]+)`/g)].map((m) => (m[1] as string).split(' '));
}

for (const dialect of TEST_DIALECTS) {
  describe(`ways out on ${dialect}`, () => {
    const setUp = (db: TestDb): string => {
      const dir = join(db.dir, 'sql');
      cpSync(fixture('basic'), dir, { recursive: true });
      return dir;
    };
    const cli = (db: TestDb, dir: string, args: string[]): Promise<CliResult> =>
      runCli([...args, '--url', db.url, '--dir', dir]);
    const revisions = async (db: TestDb) => (await db.records()).map((r) => r.revision);

    it('head refuses a pending up file with no statement: EMPTY_UP, exit 2, nothing applied', () =>
      withTestDb(dialect, async (db) => {
        const dir = setUp(db);
        writeFileSync(join(dir, dialect, '000002_create_posts.up.sql'), '-- TODO: write it\n/* later */\n');
        const r = await cli(db, dir, ['head']);
        assert.equal(r.code, 2, r.stdout + r.stderr);
        assert.match(r.stderr, /000002_create_posts\.up\.sql holds no statement, only comments.*\[EMPTY_UP\]/);
        assert.deepEqual(await revisions(db), [], 'nothing applied, not even 000001');
        const json = await cli(db, dir, ['head', '--json']);
        assert.equal(JSON.parse(json.stdout).error.code, 'EMPTY_UP');
      }));

    it('an edit that never ran (an empty file recorded, then filled in): the advice, run as printed, applies it', () =>
      withTestDb(dialect, async (db) => {
        const dir = setUp(db);
        const up = join(dir, dialect, '000002_create_posts.up.sql');
        const { readFileSync } = await import('node:fs');
        const body = readFileSync(up, 'utf8');
        // What an older runner let through: the empty file recorded as applied (stamp does it here).
        writeFileSync(up, '-- to be written\n');
        assert.equal((await cli(db, dir, ['+1'])).code, 0);
        assert.equal((await cli(db, dir, ['stamp', '000002'])).code, 0);
        assert.equal((await cli(db, dir, ['head'])).code, 0);
        writeFileSync(up, body);
        const refused = await cli(db, dir, ['head']);
        assert.equal(refused.code, 2, refused.stderr);
        assert.match(refused.stderr, /\[CHECKSUM_MISMATCH\]/);
        const steps = commandsIn(refused.stderr, /if the edit never ran/);
        assert.deepEqual(steps, [['-1'], ['stamp', '-1', '--yes'], ['head']], refused.stderr);
        for (const step of steps) {
          const r = await cli(db, dir, step);
          assert.equal(r.code, 0, `${step.join(' ')}: ${r.stdout}${r.stderr}`);
          if (step[0] === 'stamp') assert.match(r.stdout, /^forgot {4}000002 {2}create_posts/m);
        }
        assert.deepEqual(await revisions(db), ['000001', '000002', '000003']);
        assert.ok((await db.tables()).includes('posts'), 'the filled-in file ran');
      }));

    it('an edit already in the database: the stamp it names accepts it, says so, and head goes on', () =>
      withTestDb(dialect, async (db) => {
        const dir = setUp(db);
        assert.equal((await cli(db, dir, ['+2'])).code, 0);
        writeFileSync(
          join(dir, dialect, '000001_create_users.up.sql'),
          '-- reviewed\nCREATE TABLE users (\n  id   integer PRIMARY KEY,\n  name text    NOT NULL\n);\n',
        );
        const refused = await cli(db, dir, ['head']);
        assert.equal(refused.code, 2, refused.stderr);
        const [accept] = commandsIn(refused.stderr, /review and run/);
        assert.deepEqual(accept, ['stamp', '000002']);
        const s = await cli(db, dir, accept as string[]);
        assert.equal(s.code, 0, s.stderr);
        assert.match(s.stdout, /^accepted {2}000001 {2}create_users {2}\(its file as it is now\)$/m);
        assert.doesNotMatch(s.stdout, /^forgot/m);
        const h = await cli(db, dir, ['head']);
        assert.equal(h.code, 0, h.stderr);
        assert.deepEqual(await revisions(db), ['000001', '000002', '000003']);
      }));

    it('stamp says which revisions it records without running them', () =>
      withTestDb(dialect, async (db) => {
        const dir = setUp(db);
        const s = await cli(db, dir, ['stamp', '000002']);
        assert.equal(s.code, 0, s.stderr);
        assert.match(s.stdout, /^recorded {2}000001 {2}create_users {2}\(as applied, without running it\)$/m);
        assert.match(s.stdout, /^recorded {2}000002 {2}create_posts/m);
        assert.deepEqual(await db.tables(), ['schema_migrations'], 'no SQL ran');
        // Forgetting what never ran leaves nothing behind: still, it ran statements when applied
        // elsewhere for all stamp knows, so one forgotten revision with statements asks.
        const refused = await cli(db, dir, ['stamp', '-1']);
        assert.equal(refused.code, 2);
        assert.match(refused.stderr, /`-1` rolls back instead/);
      }));
  });
}

describe('stamp on a terminal', () => {
  it('forgetting one revision that ran statements asks first; no keeps it, yes forgets it and says so', async () => {
    const db = await createTestDb('sqlite');
    try {
      const dir = fixture('basic');
      assert.equal((await runCli(['head', '--url', db.url, '--dir', dir])).code, 0);
      const args = ['stamp', '-1', '--url', db.url, '--dir', dir];
      const no = await onTerminal(args, 'n');
      assert.match(
        no.out,
        /About to forget 1 revision \(from the record only: no SQL runs, and what they built stays in the database\):\s+000003_add_email/,
      );
      assert.match(no.out, /Forget it\? \[y\/N\]/);
      assert.equal(no.code, 2);
      assert.equal((await db.records()).length, 3, 'nothing forgotten');
      const yes = await onTerminal(args, 'y');
      assert.equal(yes.code, 0, yes.out);
      assert.match(yes.out, /forgot {4}000003 {2}add_email/);
      assert.equal((await db.records()).length, 2);
    } finally {
      await db.drop();
    }
  });
});
