/**
 * `check` on folders of N revisions, to see how its time grows with the folder (issue #26: 250,
 * 500 and 1000 revisions took 17, 56 and 255 s). Each revision is what a team writes: a new
 * table with an index and a row, a column added to an earlier table, or a data fix.
 *
 *   npx tsx bench/check-scale.ts [--sizes 100,250,500,1000] [--url postgres://…] [--no-data] [--parts-from N]
 *
 * Prints one line per size: seconds in all, and per revision.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { check } from '../runner/check/check.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '100,250,500,1000' },
    url: { type: 'string' },
    'no-data': { type: 'boolean' },
    // On a server: from how many revisions the round trips run in two parts (check's partsFrom; default 200).
    'parts-from': { type: 'string' },
  },
});

/** The i-th revision (1-based), the same SQL in both dialects. */
function revision(i: number): { up: string; down: string } {
  const t = (k: number) => `scale_${String(k).padStart(5, '0')}`;
  if (i % 3 !== 0 || i < 3) {
    return {
      up: `CREATE TABLE ${t(i)} (\n  id bigint NOT NULL PRIMARY KEY,\n  name text NOT NULL,\n  amount integer\n);\nCREATE INDEX ${t(i)}_name ON ${t(i)} (name);\nINSERT INTO ${t(i)} (id, name, amount) VALUES (1, 'one', 1);\n`,
      down: `DROP TABLE ${t(i)};\n`,
    };
  }
  if (i % 6 === 0) {
    return {
      up: `ALTER TABLE ${t(i - 1)} ADD COLUMN note text;\n`,
      down: `ALTER TABLE ${t(i - 1)} DROP COLUMN note;\n`,
    };
  }
  return {
    up: `UPDATE ${t(i - 2)} SET amount = 0 WHERE amount IS NULL;\n`,
    down: `-- Nothing to undo: this revision only filled in missing amounts.\n`,
  };
}

function folder(n: number): string {
  const root = mkdtempSync(join(tmpdir(), 'check-scale-'));
  for (const dialect of ['postgres', 'sqlite']) {
    const dir = join(root, dialect);
    mkdirSync(dir);
    for (let i = 1; i <= n; i++) {
      const stem = `${String(i).padStart(6, '0')}_step_${i}`;
      const { up, down } = revision(i);
      writeFileSync(join(dir, `${stem}.up.sql`), up);
      writeFileSync(join(dir, `${stem}.down.sql`), down);
    }
  }
  return root;
}

for (const n of (values.sizes as string).split(',').map(Number)) {
  const dir = folder(n);
  try {
    const started = performance.now();
    const r = await check(
      { dir, url: values.url ?? 'sqlite::memory:', data: values['no-data'] ? false : { seed: 1 } },
      values['parts-from'] === undefined ? {} : { partsFrom: Number(values['parts-from']) },
    );
    const s = (performance.now() - started) / 1000;
    const problems = r.findings.filter((f) => f.severity === 'error');
    console.log(
      `${String(n).padStart(5)} revisions  ${s.toFixed(1).padStart(6)} s  ${((s / n) * 1000).toFixed(1)} ms/revision  errors ${problems.length}${problems[0] ? ` (first: ${problems[0].code} ${problems[0].message.slice(0, 120)})` : ''}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
