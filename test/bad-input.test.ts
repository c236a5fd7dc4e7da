/**
 * Files the runner must refuse before anything runs (exit 2, naming file, line and column), on
 * both dialects: a NUL byte, bytes that are not UTF-8, a COMMIT hidden after a trigger whose
 * body names a column `begin`, and folder entries that cannot be read as files.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixture, runCli } from './support/cli.ts';
import { TEST_DIALECTS, withTestDb, type TestDb } from './support/db.ts';

/** The `basic` fixture, copied, with revision 000009 added whose up file in `dialect` is `up`. */
function folderWith(db: TestDb, up: string | Buffer): { dir: string; file: string } {
  const dir = join(db.dir, 'sql');
  cpSync(fixture('basic'), dir, { recursive: true });
  for (const d of ['postgres', 'sqlite']) {
    writeFileSync(join(dir, d, '000009_bad.up.sql'), d === db.dialect ? up : 'SELECT 1;\n');
    writeFileSync(join(dir, d, '000009_bad.down.sql'), '-- nothing\n');
  }
  return { dir, file: join(dir, db.dialect, '000009_bad.up.sql') };
}

/** `head` is refused with `code` at `file:line:column`, before anything runs: no table, no record. */
async function refusedBeforeAnything(db: TestDb, dir: string, code: string, at: string): Promise<string> {
  const r = await runCli(['head', '--url', db.url, '--dir', dir]);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, new RegExp(`\\[${code}\\]`));
  assert.ok(r.stderr.includes(at), `expected ${at} in:\n${r.stderr}`);
  assert.deepEqual(await db.records(), []);
  assert.deepEqual(await db.tables(), []);
  return r.stderr;
}

for (const dialect of TEST_DIALECTS) {
  describe(`bad input on ${dialect}`, () => {
    it('a NUL byte is refused before anything runs, at its line and column (exit 2)', () =>
      withTestDb(dialect, async (db) => {
        const { dir, file } = folderWith(db, 'CREATE TABLE e1 (v text);\n\0\nCREATE TABLE e2 (x int);');
        const err = await refusedBeforeAnything(db, dir, 'NUL_BYTE', `${file}:2:1:`);
        assert.match(err, /NUL byte/);
        const c = await runCli(['check', '--dir', dir, '--url', 'sqlite::memory:']);
        assert.equal(c.code, 1, c.stdout + c.stderr);
        assert.ok(c.stdout.includes(`${file}:2:1: error: `), c.stdout);
        assert.match(c.stdout, /\[NUL_BYTE\]/);
      }));

    it('bytes that are not UTF-8 (Latin-1 é) are refused at the first bad byte (exit 2)', () =>
      withTestDb(dialect, async (db) => {
        const latin1 = Buffer.from("CREATE TABLE t (v text);\nINSERT INTO t VALUES ('caf\xe9');\n", 'latin1');
        const { dir, file } = folderWith(db, latin1);
        await refusedBeforeAnything(db, dir, 'BAD_ENCODING', `${file}:2:27:`);
        const c = await runCli(['check', '--dir', dir, '--url', 'sqlite::memory:', '--json']);
        const found = (JSON.parse(c.stdout) as { findings: Array<Record<string, unknown>> }).findings;
        assert.deepEqual(
          found.filter((f) => f.code === 'BAD_ENCODING').map((f) => [f.file, f.line, f.column]),
          [[file, 2, 27]],
        );
      }));

    it('a down file that is a directory, and a dangling symbolic link, are named (exit 2, not a Node error)', () =>
      withTestDb(dialect, async (db) => {
        const { dir } = folderWith(db, 'SELECT 1;\n');
        const down = join(dir, dialect, '000009_bad.down.sql');
        rmSync(down);
        mkdirSync(down);
        let r = await runCli(['head', '--url', db.url, '--dir', dir]);
        assert.equal(r.code, 2, r.stderr);
        assert.ok(
          r.stderr.includes(`${down}: cannot be read: it is a directory, not a file. [UNREADABLE_FILE]`),
          r.stderr,
        );
        rmSync(down, { recursive: true });
        symlinkSync(join(dir, 'no-such-file.sql'), down);
        r = await runCli(['head', '--url', db.url, '--dir', dir]);
        assert.equal(r.code, 2, r.stderr);
        assert.ok(r.stderr.includes(`${down}: cannot be read: it is a symbolic link whose target`), r.stderr);
        assert.deepEqual(await db.records(), []);
      }));

    it('a file that cannot be read (a named pipe: unreadable even for root) is named, without hanging', () =>
      withTestDb(dialect, async (db) => {
        const { dir } = folderWith(db, 'SELECT 1;\n');
        const down = join(dir, dialect, '000009_bad.down.sql');
        rmSync(down);
        execFileSync('mkfifo', [down]);
        const r = await runCli(['head', '--url', db.url, '--dir', dir]);
        assert.equal(r.code, 2, r.stderr);
        assert.ok(r.stderr.includes(`${down}: cannot be read: it is a special file`), r.stderr);
        const c = await runCli(['check', '--dir', dir, '--url', 'sqlite::memory:']);
        assert.equal(c.code, 1, c.stdout + c.stderr);
        assert.ok(c.stdout.includes(`${down}: error: cannot be read: it is a special file`), c.stdout);
      }));
  });
}

describe('a stray COMMIT after a SQLite trigger whose body names a column begin', () => {
  const up = `CREATE TABLE t (id integer PRIMARY KEY, begin integer, "end" integer);
CREATE TRIGGER t_touch AFTER INSERT ON t BEGIN
  UPDATE t SET begin = 1 WHERE id = NEW.id;
  UPDATE t SET end = NEW.begin WHERE id = NEW.id;
END;
COMMIT;
CREATE TABLE after_commit (x integer);
`;

  it('is TRANSACTION_CONTROL at the COMMIT, before anything runs (exit 2)', () =>
    withTestDb('sqlite', async (db) => {
      const { dir, file } = folderWith(db, up);
      const err = await refusedBeforeAnything(db, dir, 'TRANSACTION_CONTROL', `${file}:6:1:`);
      assert.match(err, /"COMMIT;" inside a file that already runs in a transaction/);
      assert.equal(readFileSync(file, 'utf8'), up);
    }));
});
