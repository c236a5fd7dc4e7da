/**
 * `schema`: the canonical file per dialect. Stable from run to run, loadable into an empty
 * database (psql -v ON_ERROR_STOP=1 -f, better-sqlite3) and read back unchanged, changed only
 * where a migration changes the schema, and kept current by `check` (SCHEMA_STALE).
 *
 * The PostgreSQL half builds on a server (TEST_POSTGRES_URL as --scratch-url: a scratch
 * database there); without one those tests are skipped, as twenty builds on the embedded
 * PostgreSQL would take minutes (schema-scratch.test.ts covers that one).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ROOT, runCli } from './support/cli.ts';
import { createPostgresDatabase, hasPostgresServer } from './support/postgres.ts';
import { tempSqliteUrl } from './support/sqlite.ts';
import { schemaOf } from '../runner/catalog/schema-command.ts';
import { unifiedDiff } from '../runner/check/stale.ts';
import { check } from '../runner/check/check.ts';

const SERVER = process.env.TEST_POSTGRES_URL || undefined;
const NEEDS_SERVER = hasPostgresServer ? false : 'needs TEST_POSTGRES_URL: schema builds in a scratch database there';

/** A copy of the project's sql/ in a temp dir, for tests that add migrations to it. */
function copyOfSql(): { dir: string; cleanup(): void } {
  const root = mkdtempSync(join(tmpdir(), 'mig-schema-'));
  const dir = join(root, 'sql');
  cpSync(join(ROOT, 'sql'), dir, { recursive: true });
  rmSync(join(dir, 'schema'), { recursive: true, force: true });
  return { dir, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/**
 * One column and one index on users, in both dialects, under names no team would use and a
 * version after any the team will write: the copy may hold the team's own migrations (a
 * `users.nickname`, say), and this must still add exactly these lines.
 */
const PROBE = 'zz_test_probe_4f1c';
function addColumnAndIndex(dir: string): void {
  const stem = `99991231_235959_${PROBE}`;
  writeFileSync(
    join(dir, 'postgres', `${stem}.up.sql`),
    `ALTER TABLE users ADD COLUMN ${PROBE} varchar(40);\nCREATE INDEX ix_${PROBE} ON users (${PROBE});\n`,
  );
  writeFileSync(
    join(dir, 'postgres', `${stem}.down.sql`),
    `DROP INDEX ix_${PROBE};\nALTER TABLE users DROP COLUMN ${PROBE};\n`,
  );
  writeFileSync(
    join(dir, 'sqlite', `${stem}.up.sql`),
    `ALTER TABLE users ADD COLUMN ${PROBE} TEXT NULL CHECK (length(${PROBE}) <= 40);\nCREATE INDEX ix_${PROBE} ON users (${PROBE});\n`,
  );
  writeFileSync(
    join(dir, 'sqlite', `${stem}.down.sql`),
    `DROP INDEX ix_${PROBE};\nALTER TABLE users DROP COLUMN ${PROBE};\n`,
  );
}

/** The schema `dir`'s `dialect` folder builds: through a view of `dir` holding that folder alone, so the other is not built for nothing. */
async function built(dir: string, dialect: 'postgres' | 'sqlite'): Promise<string> {
  const view = mkdtempSync(join(tmpdir(), 'mig-schema-one-'));
  try {
    symlinkSync(join(dir, dialect), join(view, dialect));
    const [s] = await schemaOf({ dir: view, ...(dialect === 'postgres' ? { scratchUrl: SERVER } : {}) });
    assert.equal(s?.dialect, dialect);
    assert.ok(s?.text, `no ${dialect} schema`);
    return s.text;
  } finally {
    rmSync(view, { recursive: true, force: true });
  }
}

function psqlFile(url: string, file: string): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', file], (error, _out, stderr) =>
      error ? reject(new Error(stderr || String(error))) : resolve(),
    ),
  );
}

/** Lines in `after` not in `before` and the reverse, as multisets. */
function lineChanges(before: string, after: string): { added: string[]; removed: string[] } {
  const count = (text: string) => {
    const m = new Map<string, number>();
    for (const l of text.split('\n')) m.set(l, (m.get(l) ?? 0) + 1);
    return m;
  };
  const a = count(before);
  const b = count(after);
  const diff = (x: Map<string, number>, y: Map<string, number>) =>
    [...x].flatMap(([l, n]) => Array<string>(Math.max(0, n - (y.get(l) ?? 0))).fill(l));
  return { added: diff(b, a), removed: diff(a, b) };
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  const skip = dialect === 'postgres' ? NEEDS_SERVER : false;

  describe(`schema (${dialect})`, () => {
    it('20 consecutive runs give one byte-identical file', { skip }, async () => {
      const first = await built(join(ROOT, 'sql'), dialect);
      for (let i = 1; i < 20; i++) assert.equal(await built(join(ROOT, 'sql'), dialect), first, `run ${i + 1}`);
      assert.doesNotMatch(first, /^SET |OWNER TO|GRANT |\\restrict|PostgreSQL \d+\.\d+/m);
      assert.doesNotMatch(first, /schema_migrations/);
    });

    it('loaded into an empty database and read back with `schema --url`, it is the same file', { skip }, async () => {
      const text = await built(join(ROOT, 'sql'), dialect);
      const tmp = mkdtempSync(join(tmpdir(), 'mig-schema-load-'));
      const file = join(tmp, `${dialect}.sql`);
      writeFileSync(file, text);
      try {
        if (dialect === 'sqlite') {
          const db = tempSqliteUrl();
          try {
            const conn = new Database(db.path);
            conn.exec(text);
            conn.close();
            const back = await runCli(['schema', '--url', db.url]);
            assert.equal(back.code, 0, back.stderr);
            assert.equal(back.stdout, text);
          } finally {
            db.cleanup();
          }
        } else {
          const db = await createPostgresDatabase();
          try {
            await psqlFile(db.url, file);
            const back = await runCli(['schema', '--url', db.url]);
            assert.equal(back.code, 0, back.stderr);
            assert.equal(back.stdout, text);
          } finally {
            await db.drop();
          }
        }
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });

    it('a migration adding one column and one index changes only those lines', { skip }, async () => {
      const sql = copyOfSql();
      try {
        const before = await built(sql.dir, dialect);
        addColumnAndIndex(sql.dir);
        const after = await built(sql.dir, dialect);
        const { added, removed } = lineChanges(before, after);
        const index =
          dialect === 'postgres'
            ? `CREATE INDEX ix_${PROBE} ON public.users USING btree (${PROBE});`
            : `CREATE INDEX ix_${PROBE} ON users (${PROBE});`;
        const column =
          dialect === 'postgres'
            ? new RegExp(`^ {4}${PROBE} character varying\\(40\\),?$`)
            : new RegExp(`^ {4}${PROBE} TEXT NULL CHECK \\(length\\(${PROBE}\\) <= 40\\),?$`);
        // The line before a new last column gains a comma, and nothing else changes.
        assert.ok(removed.length <= 1, `removed: ${removed.join(' | ')}`);
        for (const r of removed) assert.ok(added.includes(`${r},`), `${r} changed beyond a comma`);
        const rest = added.filter((l) => !removed.some((r) => l === `${r},`));
        assert.equal(rest.length, 2, `added: ${rest.join(' | ')}`);
        assert.ok(rest.includes(index), `added: ${rest.join(' | ')}`);
        assert.ok(
          rest.some((l) => column.test(l)),
          `added: ${rest.join(' | ')}`,
        );
      } finally {
        sql.cleanup();
      }
    });

    it('check reports SCHEMA_STALE once a migration is added without `schema --write`', { skip }, async () => {
      const sql = copyOfSql();
      try {
        const url = dialect === 'postgres' ? SERVER : 'sqlite::memory:';
        // Only this dialect's file is committed: the other's has no file, so no finding.
        mkdirSync(join(sql.dir, 'schema'));
        writeFileSync(join(sql.dir, 'schema', `${dialect}.sql`), await built(sql.dir, dialect));
        // What check promises on the team's folder is no error; its warnings are the team's call.
        const clean = await check({ dir: sql.dir, url });
        assert.deepEqual(
          clean.findings.filter((f) => f.severity === 'error').map((f) => f.code),
          [],
        );
        addColumnAndIndex(sql.dir);
        const stale = await check({ dir: sql.dir, url });
        const found = stale.findings.filter((f) => f.code === 'SCHEMA_STALE');
        assert.equal(stale.ok, false);
        assert.equal(found.length, 1);
        assert.equal(found[0]?.severity, 'error');
        assert.match(found[0]?.file ?? '', new RegExp(`schema/${dialect}\\.sql$`));
        assert.match(found[0]?.message ?? '', /schema --write/);
        assert.match(found[0]?.message ?? '', new RegExp(`^\\+CREATE INDEX ix_${PROBE}`, 'm'));
        assert.match(found[0]?.message ?? '', new RegExp(`^\\+ {4}${PROBE} `, 'm'));
      } finally {
        sql.cleanup();
      }
    });
  });
}

describe('schema files of this project', () => {
  it('sql/schema/sqlite.sql is what sql/ builds', async () => {
    assert.equal(
      readFileSync(join(ROOT, 'sql', 'schema', 'sqlite.sql'), 'utf8'),
      await built(join(ROOT, 'sql'), 'sqlite'),
    );
  });

  it('sql/schema/postgres.sql is what sql/ builds', { skip: NEEDS_SERVER }, async () => {
    assert.equal(
      readFileSync(join(ROOT, 'sql', 'schema', 'postgres.sql'), 'utf8'),
      await built(join(ROOT, 'sql'), 'postgres'),
    );
  });

  it('`schema --write` writes both files under --dir', { skip: NEEDS_SERVER }, async () => {
    const sql = copyOfSql();
    try {
      const r = await runCli(['schema', '--write', '--dir', sql.dir, '--scratch-url', SERVER as string]);
      assert.equal(r.code, 0, r.stderr);
      for (const d of ['postgres', 'sqlite'] as const)
        assert.equal(readFileSync(join(sql.dir, 'schema', `${d}.sql`), 'utf8'), await built(sql.dir, d));
    } finally {
      sql.cleanup();
    }
  });
});

describe('unifiedDiff', () => {
  it('shows the changed lines with context and hunk headers', () => {
    const a = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].join('\n');
    const b = ['a', 'b', 'c', 'D', 'e', 'f', 'g', 'h', 'i'].join('\n');
    assert.equal(
      unifiedDiff(a, b, 'x.sql'),
      [
        '--- x.sql (committed)',
        '+++ x.sql (built from the migrations)',
        '@@ -1,8 +1,9 @@',
        ' a',
        ' b',
        ' c',
        '-d',
        '+D',
        ' e',
        ' f',
        ' g',
        ' h',
        '+i',
      ].join('\n'),
    );
  });
});
