import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { formatWhere, MigrateError, type Where } from '../runner/core/errors.ts';
import { failure } from './support/assert.ts';
import { checksumOf, listFolder, loadMigrations, normaliseText, parseName } from '../runner/core/files.ts';

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** A temp folder holding `files` (paths relative to it); returns its absolute path. */
function folder(files: Record<string, string | Buffer>): string {
  const root = mkdtempSync(join(tmpdir(), 'files-test-'));
  roots.push(root);
  for (const [rel, body] of Object.entries(files)) {
    const full = join(root, rel);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, body);
  }
  return root;
}

const pair = (stem: string, up: string | Buffer = 'SELECT 1;\n', down: string | Buffer = 'SELECT 2;\n') => ({
  [`${stem}.up.sql`]: up,
  [`${stem}.down.sql`]: down,
});

describe('parseName', () => {
  test('timestamp version YYYYMMDD_HHMMSS', () => {
    assert.deepEqual(parseName('20250128_140000_initial_schema.up.sql'), {
      revision: '20250128_140000',
      version: 20250128140000n,
      description: 'initial_schema',
      stem: '20250128_140000_initial_schema',
      direction: 'up',
    });
  });

  test('golang-migrate style 000001', () => {
    assert.deepEqual(parseName('000001_init.down.sql'), {
      revision: '000001',
      version: 1n,
      description: 'init',
      stem: '000001_init',
      direction: 'down',
    });
  });

  test('sqlx style 14-digit version', () => {
    const p = parseName('20210422143411_x.up.sql');
    assert.equal(p?.revision, '20210422143411');
    assert.equal(p?.version, 20210422143411n);
    assert.equal(p?.description, 'x');
    assert.equal(p?.direction, 'up');
  });

  test('timestamp form and plain digits of the same instant share a version', () => {
    assert.equal(parseName('20250128_140000_a.up.sql')?.version, parseName('20250128140000_b.up.sql')?.version);
  });

  test('descriptions keep their dots', () => {
    const p = parseName('20240101_000000_release_v6.0.up.sql');
    assert.equal(p?.description, 'release_v6.0');
    assert.equal(p?.stem, '20240101_000000_release_v6.0');
    assert.equal(p?.direction, 'up');
    assert.equal(parseName('3_v6.0.1.down.sql')?.description, 'v6.0.1');
  });

  for (const bad of [
    'init.up.sql',
    '000001.up.sql',
    '000001_.up.sql',
    '000001_init.sql',
    '000001_init.up.SQL',
    '000001_init.sideways.sql',
    'v1_init.up.sql',
    '_init.up.sql',
    '000001_init.up.sql.bak',
    'README.md',
  ]) {
    test(`rejects ${JSON.stringify(bad)}`, () => {
      assert.equal(parseName(bad), undefined);
    });
  }

  test('versions order as integers, not as text', () => {
    const names = ['10_a.up.sql', '2_b.up.sql', '1_c.up.sql', '0100_d.up.sql'];
    const sorted = names
      .map((n) => parseName(n)!)
      .sort((a, b) => (a.version < b.version ? -1 : a.version > b.version ? 1 : 0));
    assert.deepEqual(
      sorted.map((p) => p.stem),
      ['1_c', '2_b', '10_a', '0100_d'],
    );
  });
});

describe('normaliseText', () => {
  test('drops a BOM and turns CRLF into LF', () => {
    assert.equal(normaliseText('\ufeffa;\r\nb;\r\n'), 'a;\nb;\n');
    assert.equal(normaliseText('a;\nb;'), 'a;\nb;');
  });
});

describe('loadMigrations', () => {
  test('pairs up and down files and orders versions as integers', () => {
    const dir = folder({
      ...pair('sqlite/10_a', 'CREATE TABLE a (id int);\n', 'DROP TABLE a;\n'),
      ...pair('sqlite/2_b'),
      ...pair('sqlite/1_c'),
    });
    const ms = loadMigrations(dir, 'sqlite');
    assert.deepEqual(
      ms.map((m) => m.revision),
      ['1', '2', '10'],
    );
    assert.deepEqual(
      ms.map((m) => m.version),
      [1n, 2n, 10n],
    );
    const a = ms[2]!;
    assert.equal(a.stem, '10_a');
    assert.equal(a.description, 'a');
    assert.equal(a.up.path, join(dir, 'sqlite', '10_a.up.sql'));
    assert.equal(a.down.path, join(dir, 'sqlite', '10_a.down.sql'));
    assert.equal(a.up.text, 'CREATE TABLE a (id int);\n');
    assert.equal(a.down.text, 'DROP TABLE a;\n');
    assert.equal(a.up.checksum, checksumOf('CREATE TABLE a (id int);\n'));
    assert.equal(a.up.transactional, true);
    assert.deepEqual(a.up.allowDifferences, []);
    // A caller logging what it was handed (a Step's files, say) sees the checksum too.
    assert.deepEqual(JSON.parse(JSON.stringify(a.up)), {
      path: a.up.path,
      text: a.up.text,
      checksum: checksumOf(a.up.text),
      transactional: true,
      allowDifferences: [],
    });
  });

  test('reads the timestamp form written by `new`', () => {
    const dir = folder(pair('sqlite/20250128_140000_initial_schema'));
    const [m] = loadMigrations(dir, 'sqlite');
    assert.equal(m?.revision, '20250128_140000');
    assert.equal(m?.version, 20250128140000n);
    assert.equal(m?.stem, '20250128_140000_initial_schema');
  });

  test('a BOM is ignored and CRLF counts as LF, for the text and the checksum', () => {
    const lf = 'CREATE TABLE t (\n  id int\n);\n';
    const crlfBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(lf.replace(/\n/g, '\r\n'), 'utf8')]);
    const a = loadMigrations(folder(pair('sqlite/1_t', lf)), 'sqlite')[0]!;
    const b = loadMigrations(folder(pair('sqlite/1_t', crlfBom)), 'sqlite')[0]!;
    assert.equal(b.up.text, lf);
    assert.equal(b.up.checksum, a.up.checksum);
    assert.equal(a.up.checksum, checksumOf(lf));
    assert.equal(a.up.checksum, createHash('sha256').update(Buffer.from(lf, 'utf8')).digest('hex'));
  });

  test('a BOM before a directive still lets the directive count', () => {
    const dir = folder(pair('sqlite/1_t', '\ufeff-- migrate:no-transaction\r\nCREATE INDEX i ON t (a);\r\n'));
    assert.equal(loadMigrations(dir, 'sqlite')[0]!.up.transactional, false);
  });

  test('-- migrate:no-transaction in the header runs the file outside a transaction', () => {
    const dir = folder(
      pair(
        'postgres/1_idx',
        '-- builds an index without locking writes\n\n-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\n',
      ),
    );
    const [m] = loadMigrations(dir, 'postgres');
    assert.equal(m?.up.transactional, false);
    assert.equal(m?.down.transactional, true);
  });

  test("sqlx's -- no-transaction spelling counts too", () => {
    const dir = folder(pair('postgres/1_idx', '-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\n'));
    assert.equal(loadMigrations(dir, 'postgres')[0]?.up.transactional, false);
  });

  test('-- no-transaction below the first statement is not a directive', () => {
    const dir = folder(pair('postgres/1_idx', 'CREATE TABLE t (a int);\n-- no-transaction\n'));
    assert.equal(loadMigrations(dir, 'postgres')[0]?.up.transactional, true);
  });

  test('-- migrate:allow-difference reasons are collected', () => {
    const dir = folder(
      pair('sqlite/1_t', '-- migrate:allow-difference sqlite has no enum types\nCREATE TABLE t (a text);\n'),
    );
    assert.deepEqual(loadMigrations(dir, 'sqlite')[0]?.up.allowDifferences, ['sqlite has no enum types']);
  });

  test('an unknown -- migrate: directive is UNKNOWN_DIRECTIVE naming the file and line', () => {
    const dir = folder(pair('sqlite/1_t', '-- comment\n-- migrate:foo\nSELECT 1;\n'));
    const msg = failure(() => loadMigrations(dir, 'sqlite'), 'UNKNOWN_DIRECTIVE');
    assert.ok(msg.includes(`${join(dir, 'sqlite', '1_t.up.sql')}:2:`), msg);
    assert.ok(msg.includes('migrate:foo'), msg);
  });

  test("dbmate's -- migrate:up is refused, with the reason", () => {
    const dir = folder(pair('sqlite/1_t', '-- migrate:up\nCREATE TABLE t (a int);\n-- migrate:down\nDROP TABLE t;\n'));
    const msg = failure(() => loadMigrations(dir, 'sqlite'), 'UNKNOWN_DIRECTIVE');
    assert.ok(msg.includes(`${join(dir, 'sqlite', '1_t.up.sql')}:1:`), msg);
    assert.match(msg, /dbmate/);
  });

  test('a directive below the first statement is MISPLACED_DIRECTIVE naming the file and line', () => {
    const dir = folder(pair('sqlite/1_t', 'CREATE TABLE t (a int);\n-- migrate:no-transaction\n'));
    const msg = failure(() => loadMigrations(dir, 'sqlite'), 'MISPLACED_DIRECTIVE');
    assert.ok(msg.includes(`${join(dir, 'sqlite', '1_t.up.sql')}:2:`), msg);
  });

  test('a directive in the down file is checked too', () => {
    const dir = folder(pair('sqlite/1_t', 'SELECT 1;\n', '-- migrate:bogus\n'));
    const msg = failure(() => loadMigrations(dir, 'sqlite'), 'UNKNOWN_DIRECTIVE');
    assert.ok(msg.includes(join(dir, 'sqlite', '1_t.down.sql')), msg);
  });

  test('a lone up file is MISSING_DOWN naming it', () => {
    const dir = folder({ ...pair('sqlite/1_a'), 'sqlite/2_b.up.sql': 'SELECT 1;' });
    const msg = failure(() => loadMigrations(dir, 'sqlite'), 'MISSING_DOWN');
    assert.ok(msg.includes(join(dir, 'sqlite', '2_b.up.sql')), msg);
    assert.ok(msg.includes('2_b.down.sql'), msg);
  });

  test('a lone down file is MISSING_UP naming it', () => {
    const dir = folder({ ...pair('sqlite/1_a'), 'sqlite/2_b.down.sql': 'SELECT 1;' });
    const msg = failure(() => loadMigrations(dir, 'sqlite'), 'MISSING_UP');
    assert.ok(msg.includes(join(dir, 'sqlite', '2_b.down.sql')), msg);
    assert.ok(msg.includes('2_b.up.sql'), msg);
  });

  test('1_a and 001_b share a version: DUPLICATE_VERSION naming both files', () => {
    const dir = folder({ ...pair('sqlite/1_a'), ...pair('sqlite/001_b') });
    const msg = failure(() => loadMigrations(dir, 'sqlite'), 'DUPLICATE_VERSION');
    assert.ok(msg.includes(join(dir, 'sqlite', '1_a.')), msg);
    assert.ok(msg.includes(join(dir, 'sqlite', '001_b.')), msg);
  });

  test('one version, two descriptions: DUPLICATE_VERSION naming both files', () => {
    const dir = folder({ ...pair('sqlite/20250101_000000_add_users'), ...pair('sqlite/20250101_000000_add_posts') });
    const msg = failure(() => loadMigrations(dir, 'sqlite'), 'DUPLICATE_VERSION');
    assert.ok(msg.includes(join(dir, 'sqlite', '20250101_000000_add_users.')), msg);
    assert.ok(msg.includes(join(dir, 'sqlite', '20250101_000000_add_posts.')), msg);
  });

  test('a .sql file whose name does not parse is BAD_FILENAME naming it', () => {
    const dir = folder({ ...pair('sqlite/1_a'), 'sqlite/schema.sql': 'SELECT 1;' });
    const msg = failure(() => loadMigrations(dir, 'sqlite'), 'BAD_FILENAME');
    assert.ok(msg.includes(join(dir, 'sqlite', 'schema.sql')), msg);
  });

  test('files that are not .sql are ignored', () => {
    const dir = folder({
      ...pair('sqlite/1_a'),
      'sqlite/README.md': '# notes',
      'sqlite/.gitkeep': '',
      'sqlite/1_a.up.sql.orig': 'x',
    });
    assert.deepEqual(
      loadMigrations(dir, 'sqlite').map((m) => m.stem),
      ['1_a'],
    );
  });

  test('a name that only just misses is BAD_FILENAME pointing at that file, with the name it was meant to have', () => {
    for (const [wrong, meant] of [
      ['1_a.down.SQL', '1_a.down.sql'],
      ['1_a.down.sql.txt', '1_a.down.sql'],
      ['1_a.down.sql ', '1_a.down.sql'],
      ['1_a .down.sql', '1_a.down.sql'],
      [' 1_a.down.sql', '1_a.down.sql'],
    ] as const) {
      const dir = folder({ 'sqlite/1_a.up.sql': 'SELECT 1;\n', [`sqlite/${wrong}`]: 'SELECT 2;\n' });
      const msg = failure(() => loadMigrations(dir, 'sqlite'), 'BAD_FILENAME');
      assert.ok(msg.startsWith(`${join(dir, 'sqlite', wrong)}: not read as a migration`), JSON.stringify(msg));
      assert.ok(msg.endsWith(`rename it ${meant}.`), msg);
      // check reports it too, next to the lone half it leaves.
      const { problems } = listFolder(join(dir, 'sqlite'));
      assert.deepEqual(
        problems.map((p) => p.code),
        ['BAD_FILENAME', 'MISSING_DOWN'],
      );
    }
  });

  test('each dialect reads its own folder', () => {
    const dir = folder({
      ...pair('postgres/1_a', "CREATE TYPE e AS ENUM ('x');\n"),
      ...pair('sqlite/1_a', 'CREATE TABLE e (x text);\n'),
    });
    assert.equal(loadMigrations(dir, 'postgres')[0]?.up.text, "CREATE TYPE e AS ENUM ('x');\n");
    assert.equal(loadMigrations(dir, 'sqlite')[0]?.up.text, 'CREATE TABLE e (x text);\n');
  });

  test('a revision only in postgres/ is DIALECT_MISMATCH naming the file, whichever dialect is read', () => {
    const dir = folder({ ...pair('postgres/1_a'), ...pair('sqlite/1_a'), ...pair('postgres/2_b') });
    for (const dialect of ['postgres', 'sqlite'] as const) {
      const msg = failure(() => loadMigrations(dir, dialect), 'DIALECT_MISMATCH');
      assert.ok(msg.includes(join(dir, 'postgres', '2_b.up.sql')), msg);
    }
  });

  test('a revision only in sqlite/ is DIALECT_MISMATCH naming the file', () => {
    const dir = folder({ ...pair('postgres/1_a'), ...pair('sqlite/1_a'), ...pair('sqlite/3_c') });
    const msg = failure(() => loadMigrations(dir, 'postgres'), 'DIALECT_MISMATCH');
    assert.ok(msg.includes(join(dir, 'sqlite', '3_c.up.sql')), msg);
  });

  test('a bad file in the other dialect folder is reported before any database is touched', () => {
    const dir = folder({ ...pair('postgres/1_a'), ...pair('sqlite/1_a'), 'postgres/1_a.up.sql.sql': 'x' });
    const msg = failure(() => loadMigrations(dir, 'sqlite'), 'BAD_FILENAME');
    assert.ok(msg.includes(join(dir, 'postgres', '1_a.up.sql.sql')), msg);
  });

  test('a folder holding .sql files directly is used as is, for either dialect', () => {
    const dir = folder({ ...pair('2_b'), ...pair('1_a'), 'notes.txt': 'x' });
    for (const dialect of ['postgres', 'sqlite'] as const) {
      const ms = loadMigrations(dir, dialect);
      assert.deepEqual(
        ms.map((m) => m.stem),
        ['1_a', '2_b'],
      );
      assert.equal(ms[0]?.up.path, join(dir, '1_a.up.sql'));
    }
  });

  test('an empty folder is NO_MIGRATIONS', () => {
    const dir = folder({ 'README.md': 'nothing yet' });
    const msg = failure(() => loadMigrations(dir, 'sqlite'), 'NO_MIGRATIONS');
    assert.ok(msg.includes(join(dir, 'sqlite')), msg);
  });

  test('a missing folder is NO_MIGRATIONS naming it', () => {
    const dir = join(folder({}), 'nope');
    const msg = failure(() => loadMigrations(dir, 'postgres'), 'NO_MIGRATIONS');
    assert.ok(msg.includes(join(dir, 'postgres')), msg);
  });

  test('a root with only the other dialect folder is NO_MIGRATIONS for this one', () => {
    const dir = folder(pair('postgres/1_a'));
    const msg = failure(() => loadMigrations(dir, 'sqlite'), 'NO_MIGRATIONS');
    assert.ok(msg.includes(join(dir, 'sqlite')), msg);
  });

  test('paths below the working directory are shown relative to it', () => {
    const dir = folder(pair('sqlite/1_a'));
    writeFileSync(join(dir, 'sqlite', '2_b.up.sql'), 'SELECT 1;');
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const msg = failure(() => loadMigrations('.', 'sqlite'), 'MISSING_DOWN');
      assert.ok(msg.startsWith(`${join('sqlite', '2_b.up.sql')}:`), msg);
      const abs = failure(() => loadMigrations(realpathSync(dir), 'sqlite'), 'MISSING_DOWN');
      assert.ok(abs.startsWith(`${join('sqlite', '2_b.up.sql')}:`), abs);
    } finally {
      process.chdir(cwd);
    }
  });
});

describe('names the review found', () => {
  test('a timestamp with no description is not a migration name', () => {
    assert.equal(parseName('20250128_140000.up.sql'), undefined);
    assert.equal(parseName('20250128_140000_x.up.sql')?.revision, '20250128_140000');
  });

  test('one version with different descriptions across dialect folders is a mismatch', () => {
    const root = mkdtempSync(join(tmpdir(), 'files-desc-'));
    try {
      for (const [d, desc] of [
        ['postgres', 'add_email'],
        ['sqlite', 'add_mail'],
      ] as const) {
        mkdirSync(join(root, d));
        writeFileSync(join(root, d, `000001_${desc}.up.sql`), 'SELECT 1;\n');
        writeFileSync(join(root, d, `000001_${desc}.down.sql`), 'SELECT 1;\n');
      }
      assert.throws(
        () => loadMigrations(root, 'sqlite'),
        (e: unknown) =>
          e instanceof MigrateError &&
          e.code === 'DIALECT_MISMATCH' &&
          /000001_add_mail\.up\.sql and .*000001_add_email\.up\.sql share a version/.test(e.message),
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('one folder scan: every problem, each with its place as fields', () => {
  test('listFolder returns every bad name, duplicate and lone half, in name order, with stable codes', () => {
    const dir = folder({
      'x.sql': '',
      ...pair('1_a'),
      '001_b.up.sql': '',
      '2_c.up.sql': '',
      '3_d.down.sql': '',
    });
    const { problems } = listFolder(dir);
    assert.deepEqual(
      problems.map((p) => [p.code, p.where]),
      [
        ['DUPLICATE_VERSION', { file: join(dir, '1_a.down.sql') }],
        ['DUPLICATE_VERSION', { file: join(dir, '1_a.up.sql') }],
        ['BAD_FILENAME', { file: join(dir, 'x.sql') }],
        ['MISSING_DOWN', { file: join(dir, '001_b.up.sql') }],
        ['MISSING_DOWN', { file: join(dir, '2_c.up.sql') }],
        ['MISSING_UP', { file: join(dir, '3_d.down.sql') }],
      ],
    );
    for (const p of problems) assert.equal(p.message, `${formatWhere(p.where as Where)}: ${p.reason}`);
    // The runner stops at the first.
    assert.equal(
      failure(() => loadMigrations(dir, 'sqlite'), 'DUPLICATE_VERSION'),
      problems[0]?.message,
    );
  });

  test('formatWhere: file, file:line, file:line:column', () => {
    assert.equal(formatWhere({ file: 'a.sql' }), 'a.sql');
    assert.equal(formatWhere({ file: 'a.sql', line: 3 }), 'a.sql:3');
    assert.equal(formatWhere({ file: 'a.sql', line: 3, column: 7 }), 'a.sql:3:7');
  });

  test('a directive error carries its line as a field', () => {
    const dir = folder(pair('1_a', 'SELECT 1;\n-- migrate:no-transaction\n'));
    try {
      loadMigrations(dir, 'sqlite');
      assert.fail('expected MISPLACED_DIRECTIVE');
    } catch (e) {
      assert.ok(e instanceof MigrateError);
      assert.deepEqual(e.where, { file: join(dir, '1_a.up.sql'), line: 2 });
    }
  });
});

describe('file contents refused before anything runs', () => {
  test('a NUL byte is NUL_BYTE at its line and column (CRLF and a BOM counted as the runner counts)', () => {
    const dir = folder(
      pair('1_a', Buffer.from('\uFEFFCREATE TABLE e1 (v text);\r\nSELECT 1;\0\nCREATE TABLE e2 (x int);')),
    );
    const msg = failure(() => loadMigrations(dir, 'sqlite'), 'NUL_BYTE');
    assert.ok(msg.startsWith(`${join(dir, '1_a.up.sql')}:2:10: `), msg);
  });

  test('invalid UTF-8 is BAD_ENCODING at the first bad byte, columns counted in characters', () => {
    const text = Buffer.concat([Buffer.from("SELECT 'é😀';\nSELECT 'caf"), Buffer.from([0xe9]), Buffer.from("';\n")]);
    const msg = failure(() => loadMigrations(folder(pair('1_a', text)), 'sqlite'), 'BAD_ENCODING');
    assert.match(msg, /1_a\.up\.sql:2:12: is not valid UTF-8/);
    for (const bad of [
      [0xc0, 0x80],
      [0xed, 0xa0, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
      [0xe2, 0x82],
    ]) {
      const m = failure(
        () => loadMigrations(folder(pair('1_a', Buffer.from([0x41, ...bad, 0x42]))), 'sqlite'),
        'BAD_ENCODING',
      );
      assert.match(m, /1_a\.up\.sql:1:2: /, `bytes ${bad.map((b) => b.toString(16)).join(' ')}`);
    }
  });

  test('valid UTF-8 beyond ASCII loads', () => {
    const [m] = loadMigrations(folder(pair('1_a', "SELECT 'café 😀 日本';\n")), 'sqlite');
    assert.equal(m?.up.text, "SELECT 'café 😀 日本';\n");
  });
});

describe('run from the wrong folder', () => {
  test('a migrations folder that does not exist suggests --dir and says where it looked', () => {
    const cwd = folder({ 'README.md': 'a project without sql/' });
    const msg = failure(() => loadMigrations(join(cwd, 'sql'), 'sqlite'), 'NO_MIGRATIONS');
    assert.match(msg, /--dir <path>/);
    assert.ok(msg.includes(`looked in ${join(cwd, 'sql')}`), msg);
    assert.doesNotMatch(msg, /new <description>/);
  });
});
