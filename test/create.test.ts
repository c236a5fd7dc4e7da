import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMigration, slugify } from '../runner/core/create.ts';
import { failure } from './support/assert.ts';
import { loadMigrations } from '../runner/core/files.ts';
import { runCli } from './support/cli.ts';

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function tempRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'create-test-'));
  roots.push(root);
  return root;
}

const NOW = new Date(Date.UTC(2025, 0, 28, 14, 0, 0, 750));

describe('slugify', () => {
  for (const [input, want] of [
    ['add_email', 'add_email'],
    ['Add e-mail', 'add_e_mail'],
    ['  VIP subscriptions: v6.0!  ', 'vip_subscriptions_v6_0'],
    ['free__channel   requests', 'free_channel_requests'],
    ['Ünïcode naïve', 'n_code_na_ve'],
    ['2fa', '2fa'],
  ] as const) {
    test(`${JSON.stringify(input)} → ${want}`, () => {
      assert.equal(slugify(input), want);
    });
  }
});

describe('createMigration', () => {
  test('writes a pair with one timestamp in every dialect folder of a fresh root', () => {
    const root = tempRoot();
    const dir = join(root, 'sql');
    const written = createMigration(dir, 'Add e-mail', NOW);
    assert.deepEqual(written, [
      join(dir, 'postgres', '20250128_140000_add_e_mail.up.sql'),
      join(dir, 'postgres', '20250128_140000_add_e_mail.down.sql'),
      join(dir, 'sqlite', '20250128_140000_add_e_mail.up.sql'),
      join(dir, 'sqlite', '20250128_140000_add_e_mail.down.sql'),
    ]);
    assert.deepEqual(readdirSync(join(dir, 'postgres')).sort(), [
      '20250128_140000_add_e_mail.down.sql',
      '20250128_140000_add_e_mail.up.sql',
    ]);
    assert.deepEqual(readdirSync(join(dir, 'sqlite')).sort(), [
      '20250128_140000_add_e_mail.down.sql',
      '20250128_140000_add_e_mail.up.sql',
    ]);
  });

  test('the timestamp is UTC', () => {
    const root = tempRoot();
    const [up] = createMigration(root, 'x', new Date('2025-03-01T23:59:59-05:00'));
    assert.equal(up, join(root, 'postgres', '20250302_045959_x.up.sql'));
  });

  test('the files load, hold only comments, and run in a transaction', () => {
    const root = tempRoot();
    createMigration(root, 'add email', NOW);
    for (const dialect of ['postgres', 'sqlite'] as const) {
      const ms = loadMigrations(root, dialect);
      assert.equal(ms.length, 1);
      const [m] = ms;
      assert.equal(m?.revision, '20250128_140000');
      assert.equal(m?.description, 'add_email');
      assert.equal(m?.up.transactional, true);
      for (const text of [m!.up.text, m!.down.text]) {
        const code = text.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('--'));
        assert.deepEqual(code, [], text);
      }
    }
  });

  test('a description that reads like a directive stays a comment', () => {
    const root = tempRoot();
    createMigration(root, 'no-transaction', NOW);
    createMigration(root, 'migrate:users', NOW);
    createMigration(root, 'two\nlines', NOW);
    const ms = loadMigrations(root, 'sqlite');
    assert.deepEqual(
      ms.map((m) => m.description),
      ['no_transaction', 'migrate_users', 'two_lines'],
    );
    for (const m of ms) {
      assert.equal(m.up.transactional, true, m.up.text);
      for (const text of [m.up.text, m.down.text]) {
        assert.deepEqual(
          text.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('--')),
          [],
          text,
        );
      }
    }
  });

  test('a second call in the same second takes the next second; nothing is overwritten', () => {
    const root = tempRoot();
    const first = createMigration(root, 'one', NOW);
    writeFileSync(first[0]!, '-- edited by hand\nCREATE TABLE one (id int);\n');
    const second = createMigration(root, 'two', NOW);
    const third = createMigration(root, 'one', NOW);
    assert.equal(second[0], join(root, 'postgres', '20250128_140001_two.up.sql'));
    assert.equal(third[0], join(root, 'postgres', '20250128_140002_one.up.sql'));
    assert.equal(readFileSync(first[0]!, 'utf8'), '-- edited by hand\nCREATE TABLE one (id int);\n');
    assert.deepEqual(
      loadMigrations(root, 'sqlite').map((m) => m.revision),
      ['20250128_140000', '20250128_140001', '20250128_140002'],
    );
  });

  test('a timestamp taken in only one dialect folder is skipped in both', () => {
    const root = tempRoot();
    mkdirSync(join(root, 'postgres'));
    mkdirSync(join(root, 'sqlite'));
    writeFileSync(join(root, 'sqlite', '20250128_140000_x.up.sql'), '');
    const written = createMigration(root, 'y', NOW);
    assert.ok(
      written.every((p) => p.includes('20250128_140001_y.')),
      written.join(', '),
    );
    assert.equal(written.length, 4);
  });

  test('writes only into the dialect folders present', () => {
    const root = tempRoot();
    mkdirSync(join(root, 'sqlite'));
    const written = createMigration(root, 'only sqlite', NOW);
    assert.deepEqual(written, [
      join(root, 'sqlite', '20250128_140000_only_sqlite.up.sql'),
      join(root, 'sqlite', '20250128_140000_only_sqlite.down.sql'),
    ]);
    assert.deepEqual(readdirSync(root), ['sqlite']);
  });

  test('a flat folder of .sql files gets the pair directly', () => {
    const root = tempRoot();
    writeFileSync(join(root, '000001_init.up.sql'), 'SELECT 1;');
    writeFileSync(join(root, '000001_init.down.sql'), '');
    const written = createMigration(root, 'next', NOW);
    assert.deepEqual(written, [join(root, '20250128_140000_next.up.sql'), join(root, '20250128_140000_next.down.sql')]);
    assert.deepEqual(
      loadMigrations(root, 'postgres').map((m) => m.revision),
      ['000001', '20250128_140000'],
    );
  });

  for (const bad of ['', '   ', '---', '!!!', 'ÜÖ']) {
    test(`${JSON.stringify(bad)} is BAD_DESCRIPTION and writes nothing`, () => {
      const root = tempRoot();
      failure(() => createMigration(root, bad, NOW), 'BAD_DESCRIPTION');
      assert.deepEqual(readdirSync(root), []);
    });
  }
});

/** Every file under `root`, hidden ones included, as paths relative to it. */
function everything(root: string): string[] {
  return (readdirSync(root, { recursive: true }) as string[]).sort();
}

describe('createMigration: all files or none, with the path named', () => {
  test('a 300-character description is BAD_DESCRIPTION naming the folder, and writes nothing', () => {
    const root = tempRoot();
    mkdirSync(join(root, 'postgres'));
    mkdirSync(join(root, 'sqlite'));
    const msg = failure(() => createMigration(root, 'a'.repeat(300), NOW), 'BAD_DESCRIPTION');
    assert.match(msg, /too long: .*postgres\/20250128_140000_a+\.down\.sql would pass the 255 bytes/);
    assert.deepEqual(everything(root), ['postgres', 'sqlite']);
  });

  test('the CLI says so and exits 2 (no ENAMETOOLONG stack)', async () => {
    const root = tempRoot();
    const r = await runCli(['new', 'x'.repeat(300), '--dir', root]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /too long.*\[BAD_DESCRIPTION\]/);
    assert.doesNotMatch(r.stderr, /ENAMETOOLONG|at .*\.ts:\d+/);
  });

  test('a folder that cannot be made (its parent is a file) is WRITE_FAILED naming it; nothing is left', () => {
    const root = tempRoot();
    writeFileSync(join(root, 'sql'), 'not a folder');
    const msg = failure(() => createMigration(join(root, 'sql'), 'add email', NOW), 'WRITE_FAILED');
    assert.ok(msg.startsWith(`${join(root, 'sql', 'postgres')}:`), msg);
    assert.deepEqual(everything(root), ['sql']);
  });

  test('a read-only second dialect folder leaves no half pair in the first (chattr +i: read-only even for root)', (t) => {
    const root = tempRoot();
    mkdirSync(join(root, 'postgres'));
    mkdirSync(join(root, 'sqlite'));
    try {
      execFileSync('chattr', ['+i', join(root, 'sqlite')], { stdio: 'ignore' });
    } catch {
      t.skip('chattr +i is not available here');
      return;
    }
    try {
      const msg = failure(() => createMigration(root, 'add email', NOW), 'WRITE_FAILED');
      assert.ok(msg.startsWith(`${join(root, 'sqlite')}:`), msg);
      assert.match(msg, /Nothing was written/);
      assert.deepEqual(everything(root), ['postgres', 'sqlite']);
    } finally {
      execFileSync('chattr', ['-i', join(root, 'sqlite')]);
    }
  });
});
