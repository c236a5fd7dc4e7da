/**
 * `check` on a PostgreSQL server runs a long folder's round trips in two parts at once, on two
 * scratch databases (round-trip.ts, roundTripInParts), and the pass on populated tables beside
 * them on a third. What check finds must not depend on it: each folder here is checked in parts
 * (from 4 revisions) and on one database, and the two results must be the same, wherever the
 * first error falls, and whatever rows the first part leaves behind.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check, type CheckProgress, type CheckResult } from '../runner/check/check.ts';
import { createPostgresDatabase, hasPostgresServer } from './support/postgres.ts';

const NEEDS_SERVER = hasPostgresServer
  ? false
  : 'needs TEST_POSTGRES_URL: only a server runs the round trips in parts (the embedded PostgreSQL shares this process)';

/** Twelve revisions of what a team writes: tables with an index and a row, a column added, a data fix. */
function revisions(): Array<{ up: string; down: string }> {
  const out: Array<{ up: string; down: string }> = [];
  for (let i = 1; i <= 12; i++) {
    const t = `part_${i}`;
    if (i % 4 === 0) {
      out.push({
        up: `ALTER TABLE part_${i - 1} ADD COLUMN note text;\nUPDATE part_${i - 1} SET note = 'n';\n`,
        down: `ALTER TABLE part_${i - 1} DROP COLUMN note;\n`,
      });
    } else {
      out.push({
        up: `CREATE TABLE ${t} (id bigint PRIMARY KEY, name text NOT NULL, amount integer);\nCREATE INDEX ${t}_name ON ${t} (name);\nINSERT INTO ${t} VALUES (1, 'one', 1);\n`,
        down: `DROP TABLE ${t};\n`,
      });
    }
  }
  return out;
}

function folder(revs: Array<{ up: string; down: string }>): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'check-parts-'));
  mkdirSync(join(dir, 'postgres'));
  revs.forEach(({ up, down }, i) => {
    const stem = `${String(i + 1).padStart(6, '0')}_r${i + 1}`;
    writeFileSync(join(dir, 'postgres', `${stem}.up.sql`), up);
    writeFileSync(join(dir, 'postgres', `${stem}.down.sql`), down);
  });
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The result, without the scratch database's name, and the round trips' progress as reported. */
async function run(dir: string, url: string, partsFrom: number): Promise<{ result: unknown; progress: number[] }> {
  const progress: number[] = [];
  const onProgress = (e: CheckProgress) => {
    if (e.pass === 'round trips') progress.push(e.done);
  };
  const r: CheckResult = await check({ dir, url, data: { seed: 7, rows: 20 } }, { partsFrom, onProgress });
  return { result: { ...r, roundTrips: r.roundTrips.map(({ database: _, ...t }) => t) }, progress };
}

/** Checked in parts and on one database: the same result. */
async function same(revs: Array<{ up: string; down: string }>): Promise<{ result: CheckResult; parts: number[] }> {
  const f = folder(revs);
  const db = await createPostgresDatabase();
  try {
    const parts = await run(f.dir, db.url, 4);
    const one = await run(f.dir, db.url, Number.POSITIVE_INFINITY);
    assert.deepEqual(parts.result, one.result);
    return { result: one.result as CheckResult, parts: parts.progress };
  } finally {
    await db.drop();
    f.cleanup();
  }
}

const codes = (r: CheckResult) => r.findings.map((f) => `${f.code} ${f.file.split('/').pop()}`);

describe('check in parts on a server', { skip: NEEDS_SERVER }, () => {
  it('finds the same on a clean folder, and really runs it in two parts', async () => {
    const { result, parts } = await same(revisions());
    assert.equal(result.errors, 0, codes(result).join('\n'));
    assert.deepEqual(result.roundTrips, [{ dialect: 'postgres', revisions: 12, of: 12 }]);
    // The first part reports each of its 6 revisions; the second part's 6 are counted when it is taken.
    assert.deepEqual(parts, [1, 2, 3, 4, 5, 6, 12]);
  });

  it('finds the same when a down in the first part leaves a table behind (the second part is dropped)', async () => {
    const revs = revisions();
    revs[2] = { up: revs[2]?.up as string, down: '-- forgot the DROP\n' };
    const { result, parts } = await same(revs);
    assert.ok(codes(result).includes('ROUND_TRIP 000003_r3.down.sql'), codes(result).join('\n'));
    assert.deepEqual(parts, [1, 2]);
  });

  it('finds the same when a down in the second part leaves a table behind', async () => {
    const revs = revisions();
    revs[9] = { up: revs[9]?.up as string, down: '-- forgot the DROP\n' };
    const { result } = await same(revs);
    assert.ok(codes(result).includes('ROUND_TRIP 000010_r10.down.sql'), codes(result).join('\n'));
  });

  it('finds the same when the first part leaves rows a later revision trips on (the replay keeps them)', async () => {
    const revs = revisions();
    // Kept by its down (waived), so up, down, up again inserts the row twice.
    revs[4] = {
      up: "CREATE TABLE IF NOT EXISTS tags (name text);\nINSERT INTO tags VALUES ('a');\n",
      down: '-- migrate:allow-difference tags: kept on purpose\n',
    };
    revs[9] = { up: 'CREATE UNIQUE INDEX tags_name ON tags (name);\n', down: 'DROP INDEX tags_name;\n' };
    const { result, parts } = await same(revs);
    assert.ok(codes(result).includes('MIGRATION_FAILED 000010_r10.up.sql'), codes(result).join('\n'));
    assert.deepEqual(parts, [1, 2, 3, 4, 5, 6, 9]);
  });

  it('finds the same when an up in the second part fails, and a waiver there is used', async () => {
    const revs = revisions();
    revs[8] = {
      up: 'CREATE TABLE IF NOT EXISTS part_9 (id int);\n',
      down: '-- migrate:allow-difference part_9: kept on purpose\n',
    };
    revs[10] = { up: 'ALTER TABLE no_such_table ADD COLUMN x int;\n', down: '-- nothing\n' };
    const { result } = await same(revs);
    assert.ok(codes(result).includes('MIGRATION_FAILED 000011_r11.up.sql'), codes(result).join('\n'));
    assert.ok(!codes(result).some((c) => c.startsWith('UNUSED_WAIVER')), codes(result).join('\n'));
    assert.deepEqual(result.roundTrips, [{ dialect: 'postgres', revisions: 10, of: 12 }]);
  });
});
