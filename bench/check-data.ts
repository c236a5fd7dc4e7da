/**
 * `check` with its pass on populated tables against `check --no-data`, in one process (no start-up
 * time in the figures), alternating the two so that a busy machine weighs on both alike.
 *
 *   npx tsx bench/check-data.ts [postgres://…] [--dir sql] [--runs 7]
 *
 * Without a URL, SQLite alone. Prints the median of each and their ratio.
 */
import { parseArgs } from 'node:util';
import { check } from '../runner/check/check.ts';

const { values, positionals } = parseArgs({
  options: { dir: { type: 'string', default: 'sql' }, runs: { type: 'string', default: '7' } },
  allowPositionals: true,
});
const url = positionals[0] ?? 'sqlite::memory:';
const runs = Number(values.runs);

async function timed(data: boolean, seed: number): Promise<number> {
  const started = performance.now();
  const r = await check({ dir: values.dir, url, data: data ? { seed } : false });
  if (!r.ok) throw new Error(`check found problems: ${JSON.stringify(r.findings)}`);
  return performance.now() - started;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
await timed(true, 0); // warm-up: module loads, the server's caches
const withData: number[] = [];
const without: number[] = [];
for (let i = 0; i < runs; i++) {
  without.push(await timed(false, i));
  withData.push(await timed(true, i));
}
const a = median(without);
const b = median(withData);
console.log(`check --no-data  median ${a.toFixed(0)} ms  (${without.map((x) => x.toFixed(0)).join(' ')})`);
console.log(`check (data)     median ${b.toFixed(0)} ms  (${withData.map((x) => x.toFixed(0)).join(' ')})`);
console.log(`ratio ${(b / a).toFixed(2)}`);
