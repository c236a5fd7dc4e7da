/**
 * `check` on populated tables as a team meets it (issue #26): `-- migrate:allow-fails-on-data`,
 * a data fix with a comments-only down, waivers that accept only what they name (and say so in
 * one short line), the generator's boundary values (negative amounts, `@`, spaces, empty
 * strings) that a careless down drops, and a NOT NULL column added to a table check could not
 * fill. SQLite folders, so that each case runs in a second or two without a server; the lock
 * findings (CONCURRENTLY, the mode a line names) need a real PostgreSQL server.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check, type CheckResult, type Finding } from '../runner/check/check.ts';
import { createPostgresDatabase, hasPostgresServer } from './support/postgres.ts';

/** A folder of one dialect with one `[up, down]` pair per revision, checked with a fixed seed. */
async function checkPairs(
  dialect: 'sqlite' | 'postgres',
  pairs: Array<[up: string, down: string]>,
  url = 'sqlite::memory:',
  data: false | { seed: number; rows?: number } = { seed: 3, rows: 40 },
): Promise<CheckResult> {
  const dir = mkdtempSync(join(tmpdir(), 'check-waivers-'));
  try {
    mkdirSync(join(dir, dialect));
    pairs.forEach(([up, down], i) => {
      const stem = `00000${i + 1}_r${i + 1}`;
      writeFileSync(join(dir, dialect, `${stem}.up.sql`), up);
      writeFileSync(join(dir, dialect, `${stem}.down.sql`), down);
    });
    return await check({ dir, url, data });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ITEMS = 'CREATE TABLE items (id INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, amount NUMERIC, note TEXT);\n';
const DROP_ITEMS = 'DROP TABLE items;\n';

const of = (r: CheckResult, code: Finding['code'], severity?: Finding['severity']) =>
  r.findings.filter((f) => f.code === code && (severity === undefined || f.severity === severity));
const show = (r: CheckResult) => JSON.stringify(r.findings, null, 1);

describe('allow-fails-on-data', () => {
  const uniqueIndex = 'CREATE UNIQUE INDEX ux_items_name ON items (name);\n';
  const dropIndex = 'DROP INDEX ux_items_name;\n';

  it('without it, a unique index over repeated values is FAILS_ON_DATA; with it, one short note and no error', async () => {
    const bare = await checkPairs('sqlite', [
      [ITEMS, DROP_ITEMS],
      [uniqueIndex, dropIndex],
    ]);
    const [failed] = of(bare, 'FAILS_ON_DATA', 'error');
    assert.ok(failed, show(bare));
    assert.equal(failed.on?.table, 'items');

    const waived = await checkPairs('sqlite', [
      [ITEMS, DROP_ITEMS],
      [
        `-- migrate:allow-fails-on-data items: names are de-duplicated by the bot before this ships\n${uniqueIndex}`,
        dropIndex,
      ],
    ]);
    assert.equal(waived.errors, 0, show(waived));
    const [note] = of(waived, 'FAILS_ON_DATA', 'note');
    assert.ok(note, show(waived));
    assert.equal(note.message, 'fails on generated rows of items: accepted (-- migrate:allow-fails-on-data items).');
    assert.equal(note.line, 1);
    assert.deepEqual(of(waived, 'UNUSED_WAIVER'), []);
    // The pass went on past the accepted failure, to the end of the folder.
    assert.deepEqual(
      waived.data?.runs.map((d) => [d.revisions, d.of]),
      [[2, 2]],
    );
  });

  it('names a table: a waiver for another table accepts nothing', async () => {
    const r = await checkPairs('sqlite', [
      [ITEMS, DROP_ITEMS],
      [`-- migrate:allow-fails-on-data users: not this table\n${uniqueIndex}`, dropIndex],
    ]);
    assert.equal(of(r, 'FAILS_ON_DATA', 'error').length, 1, show(r));
    assert.deepEqual(of(r, 'FAILS_ON_DATA', 'note'), []);
  });

  it('is a directive the folder scan knows, and a malformed one is BAD_WAIVER', async () => {
    const r = await checkPairs('sqlite', [[`-- migrate:allow-fails-on-data items\n${ITEMS}`, DROP_ITEMS]]);
    assert.deepEqual(
      r.findings.map((f) => f.code),
      ['BAD_WAIVER'],
    );
  });
});

describe('a data fix with a comments-only down', () => {
  it('is not DATA_LOSS: one note says the rollback keeps what the up did', async () => {
    const r = await checkPairs('sqlite', [
      [ITEMS, DROP_ITEMS],
      [
        "UPDATE items SET note = 'checked' WHERE note IS NULL;\nDELETE FROM items WHERE amount IS NULL;\n",
        '-- Nothing to undo: this revision only corrected rows in items.\n',
      ],
    ]);
    assert.equal(r.errors, 0, show(r));
    const notes = of(r, 'DATA_LOSS', 'note');
    assert.equal(notes.length, 1, show(r));
    assert.match(
      notes[0]?.message ?? '',
      /^holds only comments, so a rollback keeps what 000002_r2\.up\.sql did to the rows: items: \d+ of 40 rows lost; items\.note: \d+ of 40 values changed\.$/,
    );
  });
});

describe('allow-data-loss accepts only what it names', () => {
  const dropNote = 'ALTER TABLE items DROP COLUMN note;\n';
  // The down brings the column back empty (the loss the waiver names), and also breaks name and deletes rows.
  const sloppyDown =
    "ALTER TABLE items ADD COLUMN note TEXT;\nUPDATE items SET name = 'x';\nDELETE FROM items WHERE id % 3 = 0;\n";

  it('a table-level waiver accepts rows lost, not values of a column: the suggestion names the column', async () => {
    const r = await checkPairs('sqlite', [
      [ITEMS, DROP_ITEMS],
      [dropNote, `-- migrate:allow-data-loss items: the notes are not worth keeping\n${sloppyDown}`],
    ]);
    const errors = of(r, 'DATA_LOSS', 'error');
    assert.deepEqual(
      errors.map((f) => f.subject),
      ['items.name', 'items.note'],
      show(r),
    );
    for (const f of errors) assert.match(f.message, new RegExp(`-- migrate:allow-data-loss ${f.subject}: <reason>$`));
    const [note] = of(r, 'DATA_LOSS', 'note');
    assert.match(note?.message ?? '', /^items: \d+ of 40 rows lost: accepted \(-- migrate:allow-data-loss items\)\.$/);
  });

  it('a column waiver accepts that column only; rows lost and other columns stay errors', async () => {
    const r = await checkPairs('sqlite', [
      [ITEMS, DROP_ITEMS],
      [dropNote, `-- migrate:allow-data-loss items.note: the notes are not worth keeping\n${sloppyDown}`],
    ]);
    assert.deepEqual(
      of(r, 'DATA_LOSS', 'error')
        .map((f) => f.subject)
        .sort(),
      ['items', 'items.name'],
      show(r),
    );
    const [note] = of(r, 'DATA_LOSS', 'note');
    assert.match(
      note?.message ?? '',
      /^items\.note: \d+ of 40 values changed: accepted \(-- migrate:allow-data-loss items\.note\)\.$/,
    );
    // Accepted waivers print one short line, never a row's values.
    assert.ok((note?.message.length ?? 0) < 100);
  });
});

describe('the generator covers the values a careless down drops', () => {
  const cases: Array<[what: string, down: string, subject: string]> = [
    ['negative amounts', 'DELETE FROM items WHERE amount < 0;\n', 'items'],
    ["strings with '@'", "DELETE FROM items WHERE name LIKE '%@%';\n", 'items'],
    ['spaces at either end', 'UPDATE items SET name = trim(name);\n', 'items.name'],
    ['empty strings', "UPDATE items SET note = NULL WHERE note = '';\n", 'items.note'],
  ];
  for (const [what, down, subject] of cases) {
    it(`a down that drops ${what} is DATA_LOSS on ${subject}`, async () => {
      const r = await checkPairs('sqlite', [
        [ITEMS, DROP_ITEMS],
        [
          '-- a revision whose down is careless\nCREATE INDEX ix_items_amount ON items (amount);\n',
          `DROP INDEX ix_items_amount;\n${down}`,
        ],
      ]);
      assert.deepEqual(
        of(r, 'DATA_LOSS', 'error').map((f) => f.subject),
        [subject],
        show(r),
      );
    });
  }
});

describe('rows written while a revision is applied', () => {
  it('a down that narrows a widened column with USING left(v, 50) cuts them: DATA_LOSS', async () => {
    const r = await checkPairs('postgres', [
      ['CREATE TABLE notes (id int PRIMARY KEY, body varchar(50) NOT NULL);\n', 'DROP TABLE notes;\n'],
      [
        'ALTER TABLE notes ALTER COLUMN body TYPE varchar(200);\n',
        'ALTER TABLE notes ALTER COLUMN body TYPE varchar(50) USING left(body, 50);\n',
      ],
    ]);
    const [loss] = of(r, 'DATA_LOSS', 'error');
    assert.ok(loss, show(r));
    assert.deepEqual(loss.on, { table: 'notes', column: 'body' });
    assert.match(loss.file, /000002_r2\.down\.sql$/);
  });
});

describe('a NOT NULL column added to a table check could not fill', () => {
  it('is FAILS_ON_DATA at the up, not a note only', async () => {
    // Every generated row breaks the CHECK, which the generator cannot read: the table stays empty.
    // PostgreSQL (embedded without a server): SQLite refuses such an ADD COLUMN even on an empty table.
    const odd = "CREATE TABLE odd (id int PRIMARY KEY, code text NOT NULL CHECK (code ~ '^Z[0-9]{2}$'));\n";
    const r = await checkPairs('postgres', [
      [odd, 'DROP TABLE odd;\n'],
      ['ALTER TABLE odd ADD COLUMN owner TEXT NOT NULL;\n', 'ALTER TABLE odd DROP COLUMN owner;\n'],
    ]);
    assert.ok(of(r, 'DATA_GENERATION').length > 0, show(r));
    const failed = of(r, 'FAILS_ON_DATA', 'error');
    assert.equal(failed.length, 1, show(r));
    assert.deepEqual(failed[0]?.on, { table: 'odd', column: 'owner' });
    assert.match(failed[0]?.message ?? '', /-- migrate:allow-fails-on-data odd: <reason>$/);
  });
});

const NEEDS_SERVER = hasPostgresServer ? false : 'needs TEST_POSTGRES_URL: locks are measured on a real server';

describe('lock findings name what the table is held in', { skip: NEEDS_SERVER }, () => {
  const onServer = async (pairs: Array<[string, string]>) => {
    const db = await createPostgresDatabase();
    try {
      return await checkPairs('postgres', pairs, db.url, false);
    } finally {
      await db.drop();
    }
  };
  const users = ['CREATE TABLE users (id int PRIMARY KEY, name text);\n', 'DROP TABLE users;\n'] as [string, string];

  it('CREATE INDEX CONCURRENTLY and DROP INDEX CONCURRENTLY in no-transaction files draw no LOCKS_TABLE', async () => {
    const r = await onServer([
      users,
      [
        '-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY ix_users_name ON users (name);\n',
        '-- migrate:no-transaction\nDROP INDEX CONCURRENTLY ix_users_name;\n',
      ],
      [
        '-- migrate:no-transaction\nDROP INDEX CONCURRENTLY ix_users_name;\n',
        'CREATE INDEX ix_users_name ON users (name);\n',
      ],
    ]);
    assert.deepEqual(of(r, 'LOCKS_TABLE'), [], show(r));
    assert.equal(r.errors, 0, show(r));
  });

  it('a statement after one that took ACCESS EXCLUSIVE does not claim the weaker SHARE', async () => {
    const r = await onServer([
      users,
      [
        'ALTER TABLE users ADD COLUMN email text;\nCREATE INDEX ix_users_email ON users (email);\n',
        'ALTER TABLE users DROP COLUMN email;\n',
      ],
    ]);
    const locks = of(r, 'LOCKS_TABLE').map((f) => `${f.line}: ${f.message.split(':')[0]}`);
    assert.deepEqual(locks, ['1: ACCESS EXCLUSIVE on users'], show(r));
  });
});
