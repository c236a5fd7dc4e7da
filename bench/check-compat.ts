/**
 * `check --compat=FILE` with 50 of the release's statements against `check` alone, on the bot's
 * folder, in one process (no start-up time in the figures), alternating the two so that a busy
 * machine weighs on both alike (as bench/check-data.ts does).
 *
 *   npx tsx bench/check-compat.ts [postgres://…] [--dir sql] [--runs 5] [--statements 50] [--print]
 *
 * The statements are made from the folder's committed PostgreSQL schema (<dir>/schema/postgres.sql):
 * per table a SELECT by key, a SELECT of every column, an INSERT of the NOT NULL columns without
 * a default, an UPDATE and a DELETE, in turn until there are enough. Without a URL, PostgreSQL
 * runs on the embedded PGlite. Prints the median of each and their ratio; `--print` prints the
 * statements instead.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { check } from '../runner/check/check.ts';

const { values, positionals } = parseArgs({
  options: {
    dir: { type: 'string', default: 'sql' },
    runs: { type: 'string', default: '5' },
    statements: { type: 'string', default: '50' },
    print: { type: 'boolean' },
  },
  allowPositionals: true,
});
const url = positionals[0] ?? 'sqlite::memory:';
const runs = Number(values.runs);

interface Table {
  name: string;
  columns: Array<{ name: string; required: boolean }>;
  key: string;
}

/** Tables and columns of a canonical schema file, as `schema --write` prints it. */
function tablesOf(text: string): Table[] {
  const out: Table[] = [];
  for (const m of text.matchAll(/^CREATE TABLE (\w+) \(\n([\s\S]*?)\n\);/gm)) {
    const columns = (m[2] as string)
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => !l.startsWith('CONSTRAINT'))
      .map((l) => {
        const name = l.split(' ')[0] as string;
        return { name, required: /NOT NULL/.test(l) && !/DEFAULT|GENERATED/.test(l) };
      });
    const key = /PRIMARY KEY \((\w+)/.exec(m[2] as string)?.[1] ?? (columns[0]?.name as string);
    out.push({ name: m[1] as string, columns, key });
  }
  return out;
}

function statements(tables: readonly Table[], count: number): string[] {
  const kinds = [
    (t: Table) => `SELECT * FROM ${t.name} WHERE ${t.key} = $1`,
    (t: Table) => `SELECT ${t.columns.map((c) => c.name).join(', ')}\n  FROM ${t.name}\n ORDER BY ${t.key} LIMIT $1`,
    (t: Table) => {
      const cols = t.columns.filter((c) => c.required);
      return cols.length === 0
        ? `INSERT INTO ${t.name} DEFAULT VALUES`
        : `INSERT INTO ${t.name} (${cols.map((c) => c.name).join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`;
    },
    (t: Table) => {
      const other = t.columns.find((c) => c.name !== t.key) ?? (t.columns[0] as { name: string });
      return `UPDATE ${t.name} SET ${other.name} = $2 WHERE ${t.key} = $1`;
    },
    (t: Table) => `DELETE FROM ${t.name} WHERE ${t.key} = $1`,
  ];
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const t = tables[i % tables.length] as Table;
    out.push(`-- ${i + 1}\n${(kinds[Math.floor(i / tables.length) % kinds.length] as (t: Table) => string)(t)};`);
  }
  return out;
}

const tables = tablesOf(readFileSync(join(values.dir, 'schema', 'postgres.sql'), 'utf8'));
if (values.print) {
  console.log(statements(tables, Number(values.statements)).join('\n\n'));
  process.exit(0);
}
const scratch = mkdtempSync(join(tmpdir(), 'bench-compat-'));
const release = join(scratch, 'release.sql');
writeFileSync(release, `${statements(tables, Number(values.statements)).join('\n\n')}\n`);

async function timed(compat: boolean): Promise<number> {
  const started = performance.now();
  const r = await check({ dir: values.dir, url, data: { seed: 1 }, ...(compat ? { compat: release } : {}) });
  if (!r.ok)
    throw new Error(`check found problems: ${JSON.stringify(r.findings.filter((f) => f.severity === 'error'))}`);
  return performance.now() - started;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
try {
  await timed(true); // warm-up: module loads, the server's caches, the embedded PostgreSQL's copy
  const alone: number[] = [];
  const withCompat: number[] = [];
  for (let i = 0; i < runs; i++) {
    alone.push(await timed(false));
    withCompat.push(await timed(true));
  }
  const a = median(alone);
  const b = median(withCompat);
  console.log(`${tables.length} tables, ${values.statements} statements, ${url}`);
  console.log(`check            median ${a.toFixed(0)} ms  (${alone.map((x) => x.toFixed(0)).join(' ')})`);
  console.log(`check --compat   median ${b.toFixed(0)} ms  (${withCompat.map((x) => x.toFixed(0)).join(' ')})`);
  console.log(`ratio ${(b / a).toFixed(2)}`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
